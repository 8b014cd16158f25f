//! taskweave: an async dataflow runtime.
//!
//! Tasks are closures or futures; a task's inputs are other tasks (their ids or typed
//! outputs); the runtime derives the dependency graph, runs ready tasks on its worker
//! threads and wakes dependents as producers finish. This crate is the facade users
//! depend on: it re-exports the executor ([`Runtime`], [`Task`], [`TaskId`], ...) and
//! the streams crate.
//!
//! ```
//! use taskweave::Runtime;
//! let rt = Runtime::builder().workers(2).build();
//! let out = rt.block_on(async {
//!     let load = rt.task(|| vec![1, 2, 3]).name("load").await;
//!     let sum = rt.dataflow(load, |v: Vec<i32>| v.iter().sum::<i32>()).name("sum").await;
//!     sum.await
//! });
//! assert_eq!(out.unwrap(), 6);
//! ```

pub mod device;

pub use taskweave_executor::*;
pub use taskweave_streams as streams;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
