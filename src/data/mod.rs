//! Data: tensors, regions, declared accesses, views, and the dependency map that
//! turns accesses into dependencies.
//!
//! A [`Tensor`] is an n-d row-major buffer owned by the runtime. A task declares
//! [`Access`]es to [`Region`]s of tensors (`Read`, `Write`, `ReadWrite`); the
//! runtime orders conflicting accesses in submission order (read-after-write,
//! write-after-read, write-after-write; never read/read; never disjoint regions) and
//! the body receives [`View`]s (shared) and [`ViewMut`]s (exclusive) of exactly what
//! it declared. There is no other way to reach tensor data while tasks may run:
//! the orchestrator reads and writes through [`Scope::read`](crate::Scope::read) and
//! [`Scope::write`](crate::Scope::write), which are tasks themselves.
//!
//! # Why it is sound
//!
//! Views hand out `&[T]` and `&mut [T]` to a buffer that many threads share. That is
//! sound because no two tasks that conflict on an element (both access it, one
//! writes) ever run at the same time, and whichever runs second happens-after the
//! first. The rules that make it so (each `// SAFETY:` comment that creates views
//! cites them):
//!
//! - **D1 (one order per tree).** Every submission in a scope tree holds the tree's
//!   submission lock from its map lookups to the recording of its accesses
//!   (`src/scope/tree.rs`), and a tensor is used only in the tree that created
//!   it (checked at submit). So each tensor's map sees the submissions in one total
//!   order: the submission order.
//! - **D2 (the map finds every earlier conflict).** Invariant: for every access
//!   `(u, box b)` recorded on a tracked tensor and every element `e` of `b`, the map
//!   holds an entry containing `e` whose writer or one of whose readers is `u`, or
//!   whose writer runs after `u` (it depended on `u`), or `u` has finished (only
//!   finished tasks are cleaned up, after the submitter saw them finish with an
//!   acquire load, so whatever it submits next, which the executor publishes to the
//!   worker that runs it, happens-after them). Recording keeps it (a write replaces the entry
//!   of its box and retires only entries it covers, after depending on their writer
//!   and readers); so a new access overlapping `e` finds that entry and gets an edge
//!   to `u`, to a task after `u`, or needs none. The edge kinds are in
//!   `src/data/dep_map.rs` (RAW to writers, WAR to readers, WAW to writers with no
//!   reader since). A task whose dependency failed never runs its body.
//! - **D3 (a task's own views do not alias).** At submit, two accesses of one task
//!   to overlapping regions are rejected unless both read, and the same region
//!   declared twice is rejected.
//! - **D4 (views live inside the body).** A view borrows the accesses the task body
//!   owns (which keep the tensor's buffer alive) for a lifetime `'v` that is
//!   universally quantified in the body's type (`for<'v> FnOnce(Views<'v>) -> T`), so
//!   the body can neither return a view nor move it anywhere that outlives the call
//!   (see the `compile_fail` examples below). The executor completes a task only after
//!   its body returned (the body, or the future holding the views, is gone), and an
//!   edge orders the producer's completion before the consumer's body.
//! - **D5 (manual tensors are checked).** Manual tensors are in no map. A task
//!   registers its accesses to them in the tensor's checker (a mutex-protected list)
//!   before its views exist and removes them when its body is done; a registration
//!   that conflicts with a registered access fails the task
//!   ([`DataError::Conflict`](crate::DataError::Conflict)) instead of creating views.
//!   The mutex orders each removal before the next conflicting registration.
//!
//! The one way around these rules is `unsafe`: [`Access::no_dep`] opts an access of a
//! tracked tensor out of the map, and its caller promises the ordering.
//!
//! # What does not compile
//!
//! Writing through a region declared `Read`:
//!
//! ```compile_fail
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let scope = Scope::new(&rt, "main");
//! let x = scope.zeros::<f64>("x", [4]);
//! scope.task(x.read(..), |view| {
//!     view.as_slice().unwrap()[0] = 1.0; // a shared view: cannot assign
//! });
//! ```
//!
//! A view escaping its body, by returning it:
//!
//! ```compile_fail
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let scope = Scope::new(&rt, "main");
//! let x = scope.zeros::<f64>("x", [4]);
//! let escaped = scope.task(x.read(..), |view| view).submit_blocking();
//! ```
//!
//! by moving it to another thread:
//!
//! ```compile_fail
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let scope = Scope::new(&rt, "main");
//! let x = scope.zeros::<f64>("x", [4]);
//! scope.task(x.write(..), |mut view| {
//!     std::thread::spawn(move || view.fill(1.0));
//! });
//! ```
//!
//! or out of an async body:
//!
//! ```compile_fail
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let scope = Scope::new(&rt, "main");
//! let x = scope.zeros::<f64>("x", [4]);
//! scope.task_async(x.read(..), |view| Box::pin(async move { view }));
//! ```
//!
//! A tensor outliving the scope that created it:
//!
//! ```compile_fail
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let x;
//! {
//!     let scope = Scope::new(&rt, "short");
//!     x = scope.zeros::<f64>("x", [4]);
//! }
//! println!("{}", x.len());
//! ```
//!
//! The same programs with what is allowed:
//!
//! ```
//! # use taskweave::{Runtime, Scope};
//! # let rt = Runtime::builder().workers(1).build();
//! let scope = Scope::new(&rt, "main");
//! let x = scope.zeros::<f64>("x", [4]);
//! scope.task(x.read_write(..), |mut view| {
//!     view.as_mut_slice().unwrap()[0] = 1.0;
//! }).submit_blocking().unwrap();
//! let copy = scope.task(x.read(..), |view| view.to_vec()).submit_blocking().unwrap();
//! assert_eq!(copy.wait_blocking().unwrap(), [1.0, 0.0, 0.0, 0.0]);
//! scope.task_async(x.read(..), |view| Box::pin(async move { view.len() })).submit_blocking().unwrap();
//! ```

#![allow(
    clippy::result_large_err,
    reason = "`DataError` names the task, tensor, regions and shape; submission errors are rare and not worth a box"
)]

mod access;
mod cells;
mod checker;
pub(crate) mod dep_map;
mod element;
mod region;
mod tensor;
mod view;

pub use access::{
    Access, AccessKind, Accesses, Kept, Mode, OwnedAccess, OwnedAccesses, Read, ReadWrite, ViewsOf,
    Write,
};
pub use element::Element;
pub use region::{MAX_RANK, Region};
pub use tensor::Tensor;
pub use view::{RowsMut, View, ViewMut};

pub(crate) use access::AccessInfo;
pub(crate) use checker::{CheckGuard, Checker};
pub(crate) use dep_map::{CellHint, DepMap, DepSink, Replaced};
pub(crate) use region::{Bounds, OneBox, RegionProblem, Shape, ShapeProblem};
pub(crate) use tensor::{Keepers, TensorInner, TensorMeta};
