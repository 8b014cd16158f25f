//! taskweave: an async dataflow runtime.
//!
//! Tasks are closures or futures; a task's inputs are other tasks (their ids or typed
//! outputs) or the data it declares it reads and writes; the runtime derives the
//! dependency graph, runs ready tasks on its worker threads and wakes dependents as
//! producers finish. This crate is the facade users depend on: it re-exports the
//! executor ([`Runtime`], [`Task`], [`TaskId`], ...) and the streams crate, and adds
//! data dependencies: [`Scope`]s, [`Tensor`]s, [`Region`]s, declared accesses and
//! their [`View`]s ([`data`], [`scope`]), and [`graph`] export.
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
//!
//! With data dependencies, tasks say what they access and the runtime orders them:
//!
//! ```
//! use taskweave::{Region, Runtime, Scope};
//! let rt = Runtime::builder().workers(2).build();
//! rt.block_on(async {
//!     let scope = Scope::new(&rt, "main");
//!     let x = scope.zeros::<f64>("x", [2, 4]);
//!     // Two writers of disjoint rows may run at once...
//!     for row in 0..2 {
//!         scope.task(x.write(Region::tile([row, 0], [1, 4])), move |mut r| r.fill(row as f64 + 1.0))
//!             .await
//!             .unwrap();
//!     }
//!     // ...and a reader of both runs after both (read-after-write).
//!     let sum = scope.task(x.read(..), |x| x.rows().flatten().sum::<f64>()).await.unwrap();
//!     assert_eq!(sum.await.unwrap(), 12.0);
//! });
//! ```

pub mod device;

pub use taskweave_executor::*;
pub use taskweave_streams as streams;

pub mod data;
mod error;
pub mod graph;
pub mod scope;

pub use data::{Access, AccessKind, Element, Region, Tensor, View, ViewMut};
pub use error::DataError;
pub use graph::{DepKind, EdgeSource, Graph};
pub use scope::{DataSubmit, Scope, ScopeKind};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
