//! Scopes: where data tasks are submitted, tensors created, and task slots held.
//!
//! A [`Scope`] is *auto* (accesses to tracked tensors derive dependencies through the
//! dependency map) or *manual* (only explicit dependencies; no map lookups). Scopes
//! nest: `scope.scope(..)` opens an auto scope inside, `scope.manual_scope(..)` a
//! manual one; an auto scope inside a manual one is an error
//! ([`DataError::AutoScopeInManualScope`]). A nested scope borrows its parent, so it
//! ends first.
//!
//! A scope bounds two lifetimes:
//!
//! - **Tensors** created in it borrow it: they cannot be used after it ends (the
//!   compiler says so). Their buffers stay alive until the last task using them has
//!   finished.
//! - **Task slots**: a scope holds the slot of every task submitted in it (a
//!   [`HeldTasks`]) until it ends, so the tasks' ids keep their
//!   outcome (a later task depending on a failed one fails too, deterministically)
//!   and the slots are reclaimed when the scope ends and the tasks have finished (by
//!   a worker, for a large scope). Ending a scope never waits.
//!
//! Because held slots are not reused while the scope is open, a scope (with its
//! enclosing scopes) may hold at most `window - 1` tasks: the submission that would
//! reach the window fails at once with [`DataError::ScopeTooLarge`], instead of
//! waiting forever for a slot. Loops open one scope per iteration. A `TaskId` from an
//! ended scope still works as a dependency (it is done, or stale, which counts as
//! done).

#![allow(
    clippy::result_large_err,
    reason = "`DataError` names the task, tensor, regions and shape; submission errors are rare and not worth a box"
)]

mod body;
mod host;
mod submit;
pub(crate) mod tree;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use body::{AsyncViewsFn, BoxFuture, TaskBody};
pub use submit::DataSubmit;

use crate::data::{Checker, DepMap, Shape, ShapeProblem};
use crate::data::{Element, Tensor};
use crate::data::{Keepers, TensorInner, TensorMeta};
use crate::error::DataError;
use crate::graph::{Graph, GraphTensor};
use crate::{HeldTasks, Runtime, Task, TaskId};
use tree::{Tree, TreeCell, TreeGuard};

/// Whether a scope derives dependencies from data accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// Accesses to tracked tensors derive dependencies through the dependency map.
    Auto,
    /// Only explicit dependencies; the dependency map is not consulted. Only manual
    /// tensors may be accessed.
    Manual,
}

/// A scope of data tasks: creates tensors, submits tasks that declare their
/// accesses, and holds its tasks' slots until it ends (see the [module
/// docs](crate::scope)).
///
/// ```
/// use taskweave::{Region, Runtime, Scope};
/// let rt = Runtime::builder().workers(2).build();
/// rt.block_on(async {
///     let main = Scope::new(&rt, "main");
///     let v = main.zeros::<u64>("v", [8]);
///     for round in 0..3 {
///         // One scope per iteration: its slots are released when it ends.
///         let step = main.scope(format!("round {round}")).unwrap();
///         for half in [0..4, 4..8] {
///             // Each round's tasks follow the previous round's (read-after-write).
///             step.task(v.read_write(half), |mut h| h.as_mut_slice().unwrap().iter_mut().for_each(|x| *x += 1))
///                 .name("inc")
///                 .await
///                 .unwrap();
///         }
///     }
///     assert_eq!(main.read(&v, ..).await.unwrap(), [3; 8]);
/// });
/// ```
pub struct Scope<'p> {
    tree: Arc<Tree>,
    name: Cow<'static, str>,
    kind: ScopeKind,
    /// The slots of the tasks submitted in this scope (under the tree lock).
    held: TreeCell<HeldTasks>,
    /// `held.len()`, readable without the lock.
    held_count: AtomicUsize,
    enclosing: PhantomData<&'p ()>,
}

impl Scope<'static> {
    /// A root auto scope on `rt`: accesses derive their dependencies.
    pub fn new(rt: &Runtime, name: impl Into<Cow<'static, str>>) -> Scope<'static> {
        Scope::root(rt, name.into(), ScopeKind::Auto)
    }

    /// A root manual scope on `rt`: only explicit dependencies.
    pub fn new_manual(rt: &Runtime, name: impl Into<Cow<'static, str>>) -> Scope<'static> {
        Scope::root(rt, name.into(), ScopeKind::Manual)
    }

    fn root(rt: &Runtime, name: Cow<'static, str>, kind: ScopeKind) -> Scope<'static> {
        let tree = Arc::new(Tree::new(rt));
        Scope::with_tree(tree, name, kind)
    }
}

impl<'p> Scope<'p> {
    fn with_tree(tree: Arc<Tree>, name: Cow<'static, str>, kind: ScopeKind) -> Scope<'p> {
        let held = TreeCell::new(tree.id, HeldTasks::new(&tree.rt));
        Scope {
            tree,
            name,
            kind,
            held,
            held_count: AtomicUsize::new(0),
            enclosing: PhantomData,
        }
    }

    /// Opens an auto scope inside this one.
    ///
    /// # Errors
    /// [`DataError::AutoScopeInManualScope`] if this scope is manual.
    pub fn scope(&self, name: impl Into<Cow<'static, str>>) -> Result<Scope<'_>, DataError> {
        let name = name.into();
        if self.kind == ScopeKind::Manual {
            return Err(DataError::AutoScopeInManualScope {
                scope: name,
                enclosing: self.name.clone(),
            });
        }
        Ok(Scope::with_tree(
            Arc::clone(&self.tree),
            name,
            ScopeKind::Auto,
        ))
    }

    /// Opens a manual scope inside this one (fine inside an auto scope).
    pub fn manual_scope(&self, name: impl Into<Cow<'static, str>>) -> Scope<'_> {
        Scope::with_tree(Arc::clone(&self.tree), name.into(), ScopeKind::Manual)
    }

    /// Ends the scope (the same as dropping it): releases the slots it holds, without
    /// waiting for its tasks.
    pub fn end(self) {}

    /// The scope's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Auto or manual.
    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// The runtime the scope submits to.
    pub fn runtime(&self) -> &Runtime {
        &self.tree.rt
    }

    /// The number of tasks this scope holds (submitted in it so far).
    pub fn tasks(&self) -> usize {
        self.held_count.load(Ordering::Relaxed)
    }

    /// Waits until every task submitted in this scope so far has finished (in any
    /// way). Ending a scope does not wait; this does.
    pub async fn wait(&self) {
        let ids: Vec<TaskId> = {
            let mut guard = self.tree.lock().await;
            self.held.get(&mut guard).ids().to_vec()
        };
        for id in ids {
            self.tree.rt.wait(id).await;
        }
    }

    /// [`Scope::wait`] for non-async callers.
    pub fn wait_blocking(&self) {
        self.tree.rt.block_on(self.wait());
    }

    /// Starts recording the graph of this scope's tree (every scope nested in the
    /// same root): tasks, tensors and edges submitted from now on.
    pub fn record_graph(&self) {
        self.tree.recorder.start();
    }

    /// What has been recorded so far (empty unless [`Scope::record_graph`] was called).
    pub fn graph(&self) -> Graph {
        self.tree.recorder.snapshot()
    }

    /// A zeroed tracked tensor of `shape` (manual in a manual scope).
    ///
    /// # Panics
    /// If `shape` has no dimension or more than [`MAX_RANK`](crate::data::MAX_RANK), a
    /// dimension exceeds `u32::MAX`, or the element count overflows.
    pub fn zeros<T: Element>(
        &self,
        name: impl Into<Cow<'static, str>>,
        shape: impl AsRef<[usize]>,
    ) -> Tensor<'_, T> {
        let shape = checked_shape(shape.as_ref());
        let data = vec![T::default(); shape.len()];
        self.tensor(name.into(), shape, data, self.kind == ScopeKind::Manual)
    }

    /// A tracked tensor of `shape` holding `data` in row-major order (manual in a
    /// manual scope).
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if `data` does not have one element per entry of
    /// `shape`.
    ///
    /// # Panics
    /// As [`Scope::zeros`].
    pub fn from_vec<T: Element>(
        &self,
        name: impl Into<Cow<'static, str>>,
        shape: impl AsRef<[usize]>,
        data: Vec<T>,
    ) -> Result<Tensor<'_, T>, DataError> {
        let manual = self.kind == ScopeKind::Manual;
        self.tensor_from_vec(name.into(), shape.as_ref(), data, manual)
    }

    /// A zeroed *manual* tensor: it is not in the dependency map, so only explicit
    /// dependencies order the tasks that access it (in any scope). Accesses that
    /// nothing orders and that happen to run at the same time are caught at run time:
    /// the later one fails with [`DataError::Conflict`] instead of racing.
    ///
    /// # Panics
    /// As [`Scope::zeros`].
    pub fn manual_zeros<T: Element>(
        &self,
        name: impl Into<Cow<'static, str>>,
        shape: impl AsRef<[usize]>,
    ) -> Tensor<'_, T> {
        let shape = checked_shape(shape.as_ref());
        let data = vec![T::default(); shape.len()];
        self.tensor(name.into(), shape, data, true)
    }

    /// A manual tensor (see [`Scope::manual_zeros`]) holding `data`.
    ///
    /// # Errors
    /// As [`Scope::from_vec`].
    ///
    /// # Panics
    /// As [`Scope::zeros`].
    pub fn manual_from_vec<T: Element>(
        &self,
        name: impl Into<Cow<'static, str>>,
        shape: impl AsRef<[usize]>,
        data: Vec<T>,
    ) -> Result<Tensor<'_, T>, DataError> {
        self.tensor_from_vec(name.into(), shape.as_ref(), data, true)
    }

    fn tensor_from_vec<T: Element>(
        &self,
        name: Cow<'static, str>,
        dims: &[usize],
        data: Vec<T>,
        manual: bool,
    ) -> Result<Tensor<'_, T>, DataError> {
        let shape = checked_shape(dims);
        if data.len() != shape.len() {
            return Err(DataError::LengthMismatch {
                tensor: name,
                what: "the data",
                region: crate::Region::all(),
                shape: shape.dims(),
                expected: shape.len(),
                got: data.len(),
            });
        }
        Ok(self.tensor(name, shape, data, manual))
    }

    fn tensor<T: Element>(
        &self,
        name: Cow<'static, str>,
        shape: Shape,
        data: Vec<T>,
        manual: bool,
    ) -> Tensor<'_, T> {
        let id = self.tree.next_tensor_id();
        if self.tree.recorder.is_on() {
            self.tree.recorder.with(|graph| {
                graph.tensors.push(GraphTensor {
                    id,
                    name: name.to_string(),
                    dtype: T::NAME,
                    shape: shape.dims(),
                    manual,
                    scope: self.name.to_string(),
                })
            });
        }
        let meta = TensorMeta {
            id,
            tree: self.tree.id,
            name,
            shape,
            manual,
            map: TreeCell::new(self.tree.id, DepMap::default()),
            checker: Checker::default(),
            keepers: Keepers::default(),
        };
        Tensor::new(TensorInner::new(meta, data))
    }

    /// Fails if one more held task would let the tree's open scopes hold every slot.
    fn check_room(&self, guard: &TreeGuard<'_>) -> Result<(), DataError> {
        let held = self.tree.held(guard);
        let window = self.tree.window;
        if held + 1 >= window {
            return Err(DataError::ScopeTooLarge {
                scope: self.name.clone(),
                tasks: self.tasks(),
                held,
                window,
            });
        }
        Ok(())
    }

    /// Holds `task`'s slot until the scope ends.
    fn hold<T: Send + 'static>(&self, guard: &mut TreeGuard<'_>, task: &Task<T>) {
        if self.held.get(guard).hold(task) {
            self.note_held(guard);
        }
    }

    /// Counts a hold just added to `held` (by [`Scope::hold`], or by a submission
    /// that made the task held, [`Reservation::submit_held`](crate::Reservation::submit_held)).
    #[inline]
    fn note_held(&self, guard: &mut TreeGuard<'_>) {
        let held = self.held.get(guard).len();
        // Only submissions (serialised by the lock) and `drop` change it.
        self.held_count.store(held, Ordering::Relaxed);
        self.tree.held_added(guard);
    }
}

fn checked_shape(dims: &[usize]) -> Shape {
    match Shape::new(dims) {
        Ok(shape) => shape,
        Err(ShapeProblem::Rank(rank)) => panic!(
            "taskweave: a tensor has 1..={} dimensions, got {rank} ({dims:?})",
            crate::data::MAX_RANK
        ),
        Err(ShapeProblem::DimTooLarge(dim)) => {
            panic!("taskweave: tensor dimension {dim} exceeds u32::MAX ({dims:?})")
        }
        Err(ShapeProblem::TooManyElements) => {
            panic!("taskweave: a tensor of shape {dims:?} has too many elements")
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        // Releasing the holds never waits: a task still running keeps its slot until
        // it finishes (its execution is a holder too). Releasing the last hold of a
        // finished task reclaims its slot: a worker does that for a large scope, off
        // the submitter's path (a submitter short of slots does it itself).
        let held = self.held.get_mut();
        self.tree.held_released(held.len());
        held.release_later();
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("tasks", &self.tasks())
            .finish_non_exhaustive()
    }
}

/// Compile-time check of the auto traits users rely on (STYLE.md §6).
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Scope<'static>>();
    send_sync::<Tensor<'static, f64>>();
    send_sync::<crate::View<'static, f64>>();
    send_sync::<crate::ViewMut<'static, f64>>();
    send_sync::<DataError>();
}
