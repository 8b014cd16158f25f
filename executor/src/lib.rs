//! The taskweave dataflow executor: task ids and slots, dependency wiring, the worker
//! pool, typed task handles and back-pressure.
//!
//! Submit tasks to a [`Runtime`]; each task is a closure or a future, may depend on
//! other tasks (explicit [`TaskId`]s via [`Submit::after`], or typed inputs via
//! [`Runtime::dataflow`]), and resolves through its [`Task`] handle. The runtime runs a
//! task once everything it depends on has finished; a failure fails every dependent
//! (transitively) and nothing else.
//!
//! The protocol rules that make the lock-free parts sound are written down in the
//! `task` module's documentation (`executor/src/task/mod.rs`).
//!
//! ```
//! use taskweave_executor::{Runtime, TaskId};
//! let rt = Runtime::builder().workers(2).build();
//! rt.block_on(async {
//!     // A chain of ten tasks, each after the previous one.
//!     let mut prev = TaskId::INVALID;
//!     for i in 0..10 {
//!         let t = rt.task(move || i).after([prev]).await;
//!         prev = t.id();
//!     }
//!     rt.wait(prev).await;
//! });
//! ```

mod atomic_waker;
mod block_on;
mod blocking;
mod console;
mod deferred;
mod deps;
mod error;
mod extensions;
mod handle;
mod held;
mod id_waiters;
mod injector;
mod inputs;
#[cfg(taskweave_loom)]
#[doc(hidden)]
pub mod loom_hooks;
mod mailbox;
mod monitor;
mod priority;
mod runtime;
mod shared;
mod sleep;
mod stats;
mod submit;
mod sync;
pub mod task;
mod trace;
mod window;
mod worker;

pub use deferred::{CompletionToken, NotInTask, defer, try_defer};
pub use error::TaskError;
pub use handle::{SharedTask, Task, TaskWatch, WaitTask, WhenAll, when_all};
pub use held::HeldTasks;
pub use inputs::Inputs;
pub use monitor::{Stall, StallReport};
pub use runtime::{DEFAULT_WINDOW, HostWait, Runtime, RuntimeBuilder};
pub use stats::{Stats, WorkerStats};
pub use submit::{Reservation, Submission, Submit};
pub use task::{BoxError, TaskId};
#[cfg(feature = "trace")]
pub use trace::{LaneSpan, PollRecord, Polls, TaskRecord, Tasks, Trace};
