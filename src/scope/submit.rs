//! Submitting a data task: the [`DataSubmit`] builder, checking the declared
//! accesses, and the submission protocol (rules D1-D4 in [`crate::data`]).
//!
//! Two paths, both under the tree's lock. The one pass
//! ([`Scope::submit_in_one_pass`]) reserves the task's slot first, so that the task's
//! id is known, and checks, looks up and records each access in one step; a
//! rejection takes the records back. The general path checks every access, looks
//! them up (lookups change the maps only once every check has passed), submits,
//! then records. Either way a rejected submission leaves the maps as they were.

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Range;
use std::pin::Pin;

use smallvec::SmallVec;

use super::Scope;
use super::ScopeKind;
use super::body::{
    AsyncBody, AsyncViewsFn, BoxError, DataflowBody, SyncBody, TaskBody, TryAsyncBody, TrySyncBody,
};
use super::tree::TreeGuard;
use crate::data::{
    AccessInfo, Accesses, Bounds, CellHint, DepMap, DepSink, MAX_RANK, OneBox, RegionProblem,
    Replaced, TensorMeta, ViewsOf,
};
use crate::error::DataError;
use crate::graph::{EdgeSource, GraphEdge, GraphTask};
use crate::{Inputs, Reservation, Task, TaskId};

/// A data task about to be submitted: set its name and explicit dependencies, then
/// `.submit().await` it (or just `.await` it, or `.submit_blocking()`).
///
/// Submitting checks the declared accesses (regions in bounds and of the right rank,
/// no region declared twice, no write overlapping another access of the task,
/// tensors of this scope tree, only manual tensors in a manual scope) and the scope's
/// size, derives the task's dependencies from the accesses, adds the explicit ones
/// and the typed inputs, and submits. It resolves to the task's handle, or to the
/// [`DataError`] that rejected it (then nothing was submitted).
#[must_use = "a task is submitted only by .submit().await, .await or .submit_blocking()"]
pub struct DataSubmit<'s, 'p, A, B> {
    scope: &'s Scope<'p>,
    accesses: A,
    body: B,
    name: Option<Cow<'static, str>>,
    after: Vec<TaskId>,
}

impl<'p> Scope<'p> {
    /// A task whose body receives the views of `accesses` and returns a value.
    ///
    /// `accesses` is one [`Access`](crate::Access) (from [`Tensor::read`](crate::Tensor::read),
    /// [`write`](crate::Tensor::write) or [`read_write`](crate::Tensor::read_write)),
    /// a tuple of up to eight, a `Vec` or an array of them, or `()`; the body gets the
    /// views in the same shape.
    ///
    /// ```
    /// use taskweave::{Region, Runtime, Scope};
    /// let rt = Runtime::builder().workers(2).build();
    /// let scope = Scope::new(&rt, "main");
    /// let a = scope.from_vec("a", [2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    /// let b = scope.zeros::<f64>("b", [2, 2]);
    /// let scale = scope
    ///     .task((a.read(..), b.write(..)), |(a, mut b)| {
    ///         for (from, to) in a.rows().zip(b.rows_mut()) {
    ///             for (x, y) in from.iter().zip(to) {
    ///                 *y = 2.0 * x;
    ///             }
    ///         }
    ///     })
    ///     .name("scale")
    ///     .submit_blocking()
    ///     .unwrap();
    /// // Reads `b` after `scale` wrote it: the dependency is derived.
    /// let sum = scope.task(b.read(..), |b| b.rows().flatten().sum::<f64>()).submit_blocking().unwrap();
    /// assert_eq!(sum.wait_blocking().unwrap(), 20.0);
    /// # let _ = scale;
    /// ```
    pub fn task<A, F, T>(&self, accesses: A, body: F) -> DataSubmit<'_, 'p, A, SyncBody<F, T>>
    where
        A: Accesses,
        F: for<'v> FnOnce(ViewsOf<'v, A>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submission(accesses, SyncBody(body, PhantomData))
    }

    /// A task whose body may fail: `Err` fails the task with
    /// [`TaskError::Failed`](crate::TaskError::Failed) (and its dependents with
    /// `DependencyFailed`).
    pub fn try_task<A, F, T, E>(
        &self,
        accesses: A,
        body: F,
    ) -> DataSubmit<'_, 'p, A, TrySyncBody<F, T, E>>
    where
        A: Accesses,
        F: for<'v> FnOnce(ViewsOf<'v, A>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.submission(accesses, TrySyncBody(body, PhantomData))
    }

    /// A task whose body is async: it receives the views and returns a boxed future
    /// that may hold them across `.await`s (`|views| Box::pin(async move { .. })`).
    ///
    /// ```
    /// use taskweave::{Runtime, Scope};
    /// let rt = Runtime::builder().workers(2).build();
    /// let scope = Scope::new(&rt, "main");
    /// let v = scope.zeros::<i32>("v", [3]);
    /// scope
    ///     .task_async(v.write(..), |mut v| {
    ///         Box::pin(async move {
    ///             let first = async { 7 }.await; // the view lives across the await
    ///             v.fill(first);
    ///         })
    ///     })
    ///     .submit_blocking()
    ///     .unwrap();
    /// assert_eq!(scope.read_blocking(&v, ..).unwrap(), [7, 7, 7]);
    /// ```
    pub fn task_async<A, F, T>(
        &self,
        accesses: A,
        body: F,
    ) -> DataSubmit<'_, 'p, A, AsyncBody<F, T>>
    where
        A: Accesses,
        F: for<'v> AsyncViewsFn<'v, ViewsOf<'v, A>, T> + Send + 'static,
        T: Send + 'static,
    {
        self.submission(accesses, AsyncBody(body, PhantomData))
    }

    /// An async task whose future may fail (see [`Scope::task_async`], [`Scope::try_task`]).
    pub fn try_task_async<A, F, T, E>(
        &self,
        accesses: A,
        body: F,
    ) -> DataSubmit<'_, 'p, A, TryAsyncBody<F, T, E>>
    where
        A: Accesses,
        F: for<'v> AsyncViewsFn<'v, ViewsOf<'v, A>, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.submission(accesses, TryAsyncBody(body, PhantomData))
    }

    /// A task with typed inputs (other tasks' outputs, as for
    /// [`Runtime::dataflow`](crate::Runtime::dataflow)) *and* data accesses: it runs
    /// after its inputs and after the tasks its accesses depend on, and its body
    /// receives both.
    ///
    /// ```
    /// use taskweave::{Runtime, Scope};
    /// let rt = Runtime::builder().workers(2).build();
    /// let scope = Scope::new(&rt, "main");
    /// let v = scope.zeros::<f64>("v", [4]);
    /// let factor = rt.task(|| 2.5).submit_blocking();
    /// scope
    ///     .dataflow(factor, v.write(..), |factor, mut v| v.fill(factor))
    ///     .submit_blocking()
    ///     .unwrap();
    /// assert_eq!(scope.read_blocking(&v, 1..2).unwrap(), [2.5]);
    /// ```
    pub fn dataflow<I, A, F, T>(
        &self,
        inputs: I,
        accesses: A,
        body: F,
    ) -> DataSubmit<'_, 'p, A, DataflowBody<I, F, T>>
    where
        I: Inputs,
        A: Accesses,
        F: for<'v> FnOnce(I::Values, ViewsOf<'v, A>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submission(accesses, DataflowBody(inputs, body, PhantomData))
    }

    /// A barrier: a task without a body that runs after every one of `deps`. Making
    /// `M` tasks depend on a barrier after `N` tasks costs `N + M` edges instead of
    /// `N * M`. Returns the barrier's id.
    ///
    /// # Errors
    /// [`DataError::ScopeTooLarge`], as any submission.
    pub async fn barrier(
        &self,
        deps: impl IntoIterator<Item = TaskId>,
    ) -> Result<TaskId, DataError> {
        let task = self
            .task((), |()| ())
            .name("barrier")
            .after(deps)
            .submit()
            .await?;
        Ok(task.id())
    }

    /// [`Scope::barrier`] for non-async callers.
    pub fn barrier_blocking(
        &self,
        deps: impl IntoIterator<Item = TaskId>,
    ) -> Result<TaskId, DataError> {
        self.tree.rt.block_on(self.barrier(deps))
    }

    fn submission<A, B>(&self, accesses: A, body: B) -> DataSubmit<'_, 'p, A, B> {
        DataSubmit {
            scope: self,
            accesses,
            body,
            name: None,
            after: Vec::new(),
        }
    }
}

/// The declared accesses of one task, checked (off the fast path, see
/// [`Scope::check_and_look_up`]).
#[derive(Default)]
struct Plan<'a> {
    accesses: SmallVec<[Planned<'a>; PLANNED_INLINE]>,
    /// The boxes of every access, in declaration order.
    boxes: SmallVec<[Bounds; PLANNED_INLINE]>,
}

/// Accesses (and boxes) a plan holds without allocating.
const PLANNED_INLINE: usize = 8;

/// One declared access, checked.
struct Planned<'a> {
    info: AccessInfo<'a>,
    /// Its boxes, in `Plan::boxes`.
    boxes: Range<u32>,
    /// The last element, in row-major order, of every box of this tensor declared
    /// so far by the task, up to this access (the greatest `end - 1` by
    /// [`row_major`]); `None` while every such box is empty.
    last: Option<[u32; MAX_RANK]>,
    /// Whether the dependency map orders it (auto scope, tracked tensor, not `no_dep`).
    tracked: bool,
}

impl Plan<'_> {
    /// The boxes of `access`.
    #[inline]
    fn boxes(&self, access: &Planned<'_>) -> &[Bounds] {
        &self.boxes[access.boxes.start as usize..access.boxes.end as usize]
    }
}

/// Coordinates as one number that compares as the elements' row-major order does
/// (lexicographically).
#[inline]
fn row_major(at: [u32; MAX_RANK]) -> u128 {
    at.iter().fold(0, |key, &c| key << 32 | c as u128)
}

impl<'s, 'p, A, B> DataSubmit<'s, 'p, A, B>
where
    A: Accesses,
    B: TaskBody<A::Owned>,
{
    /// Names the task (shown in errors, diagnostics and graph exports).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds explicit dependencies, on top of the derived ones. [`TaskId::INVALID`]
    /// entries are skipped (loop carries, "no producer yet"); ids of tasks finished
    /// long ago, including those of ended scopes, are already satisfied.
    pub fn after(mut self, ids: impl IntoIterator<Item = TaskId>) -> Self {
        self.after
            .extend(ids.into_iter().filter(|id| id.is_valid()));
        self
    }

    /// Submits the task: resolves to its handle once it has a slot (waiting while
    /// the task window is full), or to the error that rejected it.
    // Not an `async fn`: the signature promises `Send`, which `IntoFuture` relies on.
    pub fn submit(self) -> impl Future<Output = Result<Task<B::Output>, DataError>> + Send {
        self.submit_noting_deps(None)
    }

    /// Submits the task as a host access named `what` on `tensor` and waits for its
    /// output, telling the watchdog what the orchestrator waits for meanwhile
    /// ([`Runtime::host_wait`](crate::Runtime::host_wait)).
    pub(crate) async fn run_as_host_access(
        self,
        what: String,
        tensor: &TensorMeta,
    ) -> Result<B::Output, DataError> {
        let rt = &self.scope.tree.rt;
        let mut waits_for = Vec::new();
        let task = self
            .name(Cow::Owned(what.clone()))
            .submit_noting_deps(Some(&mut waits_for))
            .await?;
        let _waiting = rt.host_wait(task.id(), what, waits_for);
        task.await.map_err(|error| DataError::HostAccess {
            tensor: tensor.name.clone(),
            error,
        })
    }

    /// [`DataSubmit::submit`], also copying the task's dependencies (explicit,
    /// inputs, derived) to `noted` (for the watchdog's view of host accesses).
    ///
    /// An `async` block rather than an `async fn`: the block keeps `self` where the
    /// caller's move put it, where an `async fn` copies its arguments again when
    /// first polled (hundreds of bytes for a few accesses).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn copies its arguments when first polled"
    )]
    fn submit_noting_deps<'n>(
        self,
        noted: Option<&'n mut Vec<TaskId>>,
    ) -> impl Future<Output = Result<Task<B::Output>, DataError>> + Send + use<'s, 'p, 'n, A, B>
    {
        async move {
            // Fields taken by reference where they stay put: moving the accesses out
            // would copy them.
            let DataSubmit {
                scope,
                ref accesses,
                body,
                ref name,
                ref after,
            } = self;
            let tree = &*scope.tree;
            // D1: from here to the end, this submission is the only one of the tree.
            let mut guard = tree.lock().await;
            let recording = tree.recorder.is_on();
            // The dependencies: explicit ones, typed inputs, then the derived ones.
            let mut deps = DepSink::new(recording);
            if !after.is_empty() {
                deps.ids.extend_from_slice(after);
            }
            body.for_each_input(&mut |id| deps.ids.push(id));
            let given = deps.ids.len();
            let mut body = Some(body);
            // Whether the scope holds the task's slot already (made in a reserved slot).
            let mut held = true;
            let task = match scope
                .submit_in_one_pass(accesses, &mut body, name, &mut guard, &mut deps)?
            {
                // Recorded as it was looked up.
                Some(task) => task,
                None => {
                    let body = body.take().expect("the body is made once");
                    let mut hints = Hints::new();
                    scope.check_and_look_up(accesses, name, &mut guard, &mut deps, &mut hints)?;
                    // Made in its slot when the window has room (no copy of a large body).
                    let holds = scope.held.get(&mut guard);
                    let task = match body.spawn_now(&tree.rt, accesses, name, &deps.ids, holds) {
                        Ok(task) => task,
                        Err(body) => {
                            // SAFETY: the owned accesses go whole into the task body, which
                            // keeps them together until it drops them.
                            let owned = unsafe { accesses.to_owned() };
                            held = false;
                            body.spawn(&tree.rt, owned, name.clone(), &deps.ids).await
                        }
                    };
                    if task.id().is_valid() {
                        // D2: record the accesses before any later submission can look
                        // them up.
                        scope.record(accesses, &hints, task.id(), &mut guard);
                    }
                    task
                }
            };
            let id = task.id();
            if let Some(noted) = noted {
                noted.extend_from_slice(&deps.ids);
            }
            if !id.is_valid() {
                // Rejected: the runtime is shutting down and nothing will run again.
                return Ok(task);
            }
            if held {
                scope.note_held(&mut guard);
            } else {
                scope.hold(&mut guard, &task);
            }
            if recording {
                let explicit = after.len();
                record_task(scope, id, name, &deps, explicit, given);
            }
            drop(guard);
            Ok(task)
        }
    }

    /// Submits from a non-async caller, blocking while the task window is full.
    ///
    /// Do not call this from inside a task body when the window may be full.
    pub fn submit_blocking(self) -> Result<Task<B::Output>, DataError> {
        let scope = self.scope;
        scope.tree.rt.block_on(self.submit())
    }
}

/// Records a submitted task and its edges in the tree's graph: `deps.ids` holds the
/// `explicit` given ids, then typed inputs up to `given`, then the derived ones
/// (whose kinds are in `deps.edges`).
#[cold]
fn record_task(
    scope: &Scope<'_>,
    id: TaskId,
    name: &Option<Cow<'static, str>>,
    deps: &DepSink,
    explicit: usize,
    given: usize,
) {
    scope.tree.recorder.with(|graph| {
        graph.tasks.push(GraphTask {
            id,
            name: name.as_deref().map(str::to_owned),
            scope: scope.name.to_string(),
        });
        let edge = |from, source, kind, tensor| GraphEdge {
            from,
            to: id,
            source,
            kind,
            tensor,
        };
        for &from in &deps.ids[..explicit] {
            graph
                .edges
                .push(edge(from, EdgeSource::Explicit, None, None));
        }
        for &from in &deps.ids[explicit..given] {
            graph.edges.push(edge(from, EdgeSource::Input, None, None));
        }
        let mut data = deps.edges.clone().unwrap_or_default();
        // One edge per producer and tensor (the strongest kind: RAW, then WAR, WAW).
        data.sort_unstable_by_key(|&(from, kind, tensor)| (from, tensor, kind));
        data.dedup_by_key(|&mut (from, _, tensor)| (from, tensor));
        for (from, kind, tensor) in data {
            graph
                .edges
                .push(edge(from, EdgeSource::Data, Some(kind), Some(tensor)));
        }
    });
}

impl<'s, 'p, A, B> IntoFuture for DataSubmit<'s, 'p, A, B>
where
    A: Accesses + 's,
    B: TaskBody<A::Owned>,
{
    type Output = Result<Task<B::Output>, DataError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 's>>;

    /// `.await` on the builder submits it (boxing the submission; `.submit().await`
    /// does not box).
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.submit())
    }
}

/// Accesses (and records) the fast paths keep without allocating; a task with more
/// takes the same paths with its lists on the heap.
const INLINE_ACCESSES: usize = 16;

/// The tensors of a task met so far by a fast path, each with the last element (as
/// a [`row_major`] key) of its boxes so far: D3's bookkeeping.
#[derive(Default)]
struct Seen<'a>(SmallVec<[(&'a TensorMeta, u128); 4]>);

impl<'a> Seen<'a> {
    /// Notes an access of `meta` whose first and last elements have the row-major
    /// keys `first` and `last`; returns whether it must be compared with the task's
    /// earlier accesses of that tensor (only if it does not start after every one
    /// of them ends, as in `check_access`).
    #[inline(always)]
    fn met(&mut self, meta: &'a TensorMeta, first: u128, last: u128) -> bool {
        match self.0.iter_mut().find(|(m, _)| std::ptr::eq(*m, meta)) {
            Some((_, earlier)) => {
                let compare = *earlier >= first;
                *earlier = last.max(*earlier);
                compare
            }
            None => {
                self.0.push((meta, last));
                false
            }
        }
    }
}

/// The state of [`Scope::submit_in_one_pass`]: the tensors met (for D3) and the
/// records made (for taking them back).
#[derive(Default)]
struct OnePass<'a> {
    seen: Seen<'a>,
    /// The accesses recorded, in order: their position and whether the record made
    /// a new entry.
    recorded: SmallVec<[(u32, bool); INLINE_ACCESSES]>,
    replaced: Replaced,
}

/// What [`Scope::check_and_look_up`] leaves for [`Scope::record`]: on its fast path,
/// each access the maps order, with where its lookup found it (so that recording
/// need neither resolve the region nor find the cell again); off it, nothing (then
/// `record` resolves every access).
struct Hints<'a> {
    fast: bool,
    records: SmallVec<[Record<'a>; INLINE_ACCESSES]>,
}

impl Hints<'_> {
    pub(crate) fn new() -> Self {
        Hints {
            fast: false,
            records: SmallVec::new(),
        }
    }
}

/// One access for [`Scope::record`] to record: its cell in its map's first grid if
/// the lookup found one (`None` when the map was empty).
#[derive(Clone, Copy)]
struct Record<'a> {
    info: AccessInfo<'a>,
    cell: Option<CellHint>,
}

impl<'p> Scope<'p> {
    /// Checks the declared accesses of one task (see [`DataSubmit`]) and the scope's
    /// room, and adds to `deps` the tasks the accesses must follow (rules D2, D3).
    /// Nothing changes in the maps unless every check passed.
    ///
    /// The fast path takes each access in one step, checked, then looked up: it
    /// applies while every region is one box (or none) and every lookup changes
    /// nothing ([`DepMap::lookup_cell`](crate::data::DepMap::lookup_cell)), so a
    /// rejection found later leaves the maps as they were. Otherwise what it found
    /// is dropped and the general path plans every access, checks, then looks up.
    fn check_and_look_up<'a, A: Accesses>(
        &self,
        accesses: &'a A,
        task: &Option<Cow<'static, str>>,
        guard: &mut TreeGuard<'_>,
        deps: &mut DepSink,
        hints: &mut Hints<'a>,
    ) -> Result<(), DataError> {
        let given = deps.ids.len();
        if self.check_and_look_up_cells(accesses, task, guard, deps, hints)? {
            hints.fast = true;
            return self.check_room(guard);
        }
        deps.truncate(given);
        hints.records.clear();
        let mut plan = Plan::default();
        self.plan(accesses, task, &mut plan)?;
        self.check_room(guard)?;
        for access in plan.accesses.iter().filter(|a| a.tracked) {
            let map = access.info.meta.map.get(guard);
            for bounds in plan.boxes(access) {
                map.lookup(bounds, access.info.kind, access.info.meta.id, deps);
            }
        }
        Ok(())
    }

    /// The one-pass submission, the fast path of every closure task whose accesses
    /// are few and simple: with a slot reserved first (so the task's id is known),
    /// each access is checked, looked up and recorded in one step
    /// ([`DepMap::look_up_and_record`]), then the task is made in its slot with the
    /// dependencies found. A check that fails, an access the step does not take (a
    /// region of several boxes, a map of several grids, a box that is not a cell of
    /// its map's grid), or too many dependencies take every record back, newest
    /// first, and give the slot back: then the maps are as they were, the error is
    /// returned or `Ok(None)` sends the caller to the general path. `Ok(None)` too
    /// when no slot is free now (or the runtime is shutting down), when the body
    /// cannot be made in a reserved slot.
    ///
    /// Cleanups run only after the task is made, so that the maps' cells stay where
    /// the records found them until then.
    fn submit_in_one_pass<A: Accesses, B: TaskBody<A::Owned>>(
        &self,
        accesses: &A,
        body: &mut Option<B>,
        task: &Option<Cow<'static, str>>,
        guard: &mut TreeGuard<'_>,
        deps: &mut DepSink,
    ) -> Result<Option<Task<B::Output>>, DataError> {
        if !B::SPAWNS_RESERVED {
            return Ok(None);
        }
        let mut infos = SmallVec::<[AccessInfo<'_>; INLINE_ACCESSES]>::new();
        accesses.for_each(&mut |info| infos.push(info));
        let rt = &self.tree.rt;
        let Some(reserved) = rt.try_reserve() else {
            return Ok(None);
        };
        let given = deps.ids.len();
        let mut pass = OnePass::default();
        let outcome = self.check_and_record(
            &infos,
            accesses,
            task,
            guard,
            deps,
            reserved.id(),
            &mut pass,
        );
        if !matches!(outcome, Ok(true)) || !Reservation::deps_fit(&deps.ids) {
            for &(at, inserted) in pass.recorded.iter().rev() {
                let info = infos[at as usize];
                let bounds = match info.region.resolve_one(&info.meta.shape) {
                    Ok(OneBox::One(bounds)) => bounds,
                    _ => unreachable!("taskweave: a recorded access is one box"),
                };
                let map = info.meta.map.get(guard);
                map.undo(&bounds, info.kind, inserted, &mut pass.replaced);
            }
            deps.truncate(given);
            drop(reserved);
            return outcome.map(|_| None);
        }
        let body = body.take().expect("the body is made once");
        let holds = self.held.get(guard);
        let made = body.spawn_reserved(reserved, accesses, task, &deps.ids, holds);
        for &(meta, _) in &pass.seen.0 {
            meta.map.get(guard).clean_up_if_due(rt);
        }
        Ok(Some(made))
    }

    /// The steps of [`Scope::submit_in_one_pass`] for each access, in declaration
    /// order, then the room check: `Ok(false)` at the first access it does not take.
    /// Each access gets the checks of [`Scope::check_access`], in the same order and
    /// with the same errors. What it recorded is in `pass`, whatever it returns.
    #[allow(clippy::too_many_arguments, reason = "the state of one submission")]
    #[inline]
    fn check_and_record<'a, A: Accesses>(
        &self,
        infos: &[AccessInfo<'a>],
        accesses: &'a A,
        task: &Option<Cow<'static, str>>,
        guard: &mut TreeGuard<'_>,
        deps: &mut DepSink,
        id: TaskId,
        pass: &mut OnePass<'a>,
    ) -> Result<bool, DataError> {
        let tree = self.tree.id;
        let auto = self.kind != ScopeKind::Manual;
        for (at, &info) in infos.iter().enumerate() {
            let meta = info.meta;
            // `refuses` and `tracks`, with the scope's part read once.
            let ordered = info.wants_map();
            if meta.tree != tree || (!auto && ordered) {
                return Err(self.misplaced(info, task));
            }
            let (kind, tensor) = (info.kind, meta.id);
            // A range of a vector, the most common access, is taken without a box:
            // its row-major keys are its first and last element.
            let recorded = if let Some((start, end)) = info.region.vector_range(&meta.shape) {
                if pass.seen.met(meta, u128::from(start), u128::from(end - 1)) {
                    let bounds = Bounds::of_range((start, end));
                    check_box_overlaps(info, task, &bounds, accesses, at)?;
                }
                if !(auto && ordered) {
                    continue;
                }
                let map = meta.map.get(guard);
                let replaced = &mut pass.replaced;
                map.look_up_and_record_range(start, end, kind, tensor, id, deps, replaced)
            } else {
                let bounds = match info.region.resolve_one(&meta.shape) {
                    Ok(OneBox::One(bounds)) => bounds,
                    // No element: it overlaps nothing, and the map has nothing to say.
                    Ok(OneBox::Empty) => continue,
                    Ok(OneBox::Many) => return Ok(false),
                    Err(problem) => return Err(region_error(info, task, problem)),
                };
                let last = row_major(bounds.end.map(|e| e - 1));
                if pass.seen.met(meta, row_major(bounds.start), last) {
                    check_box_overlaps(info, task, &bounds, accesses, at)?;
                }
                if !(auto && ordered) {
                    continue;
                }
                let map = meta.map.get(guard);
                map.look_up_and_record(&bounds, kind, tensor, id, deps, &mut pass.replaced)
            };
            match recorded {
                Some(inserted) => {
                    pass.recorded.push((at as u32, inserted));
                }
                None => return Ok(false),
            }
        }
        self.check_room(guard)?;
        Ok(true)
    }

    /// The fast path of [`Scope::check_and_look_up`], without the room check:
    /// `Ok(false)` if it does not apply (then `deps` and `hints` may hold part of
    /// what it found, and nothing else changed). Each access gets the checks of
    /// [`Scope::check_access`], in the same order and with the same errors, then its
    /// lookup.
    ///
    /// The accesses are gathered first and then taken in a plain loop, so that what
    /// it keeps from one access to the next lives in registers rather than behind
    /// a closure's captures.
    #[inline]
    fn check_and_look_up_cells<'a, A: Accesses>(
        &self,
        accesses: &'a A,
        task: &Option<Cow<'static, str>>,
        guard: &mut TreeGuard<'_>,
        deps: &mut DepSink,
        hints: &mut Hints<'a>,
    ) -> Result<bool, DataError> {
        let mut infos = SmallVec::<[AccessInfo<'a>; INLINE_ACCESSES]>::new();
        accesses.for_each(&mut |info| infos.push(info));
        let mut seen = Seen::default();
        for (at, &info) in infos.iter().enumerate() {
            let meta = info.meta;
            if self.refuses(&info) {
                return Err(self.misplaced(info, task));
            }
            let bounds = match info.region.one_box(&meta.shape) {
                Some(bounds) => bounds,
                None => match info.region.resolve_one(&meta.shape) {
                    Ok(OneBox::One(bounds)) => bounds,
                    // No element: it overlaps nothing, and the map has nothing to say.
                    Ok(OneBox::Empty) => continue,
                    Ok(OneBox::Many) => return Ok(false),
                    Err(problem) => return Err(region_error(info, task, problem)),
                },
            };
            // D3, as in `check_access`.
            let last = row_major(bounds.end.map(|e| e - 1));
            if seen.met(meta, row_major(bounds.start), last) {
                check_box_overlaps(info, task, &bounds, accesses, at)?;
            }
            if !self.tracks(&info) {
                continue;
            }
            match meta
                .map
                .get(guard)
                .lookup_cell(&bounds, info.kind, meta.id, deps)
            {
                Some(cell) => hints.records.push(Record { info, cell }),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Records the accesses of task `id` in their tensors' maps (rule D2). The
    /// accesses were checked by [`Scope::check_and_look_up`], which left `hints`.
    fn record<A: Accesses>(
        &self,
        accesses: &A,
        hints: &Hints<'_>,
        id: TaskId,
        guard: &mut TreeGuard<'_>,
    ) {
        let rt = &self.tree.rt;
        if hints.fast {
            for record in &hints.records {
                let (meta, kind) = (record.info.meta, record.info.kind);
                let map = meta.map.get(guard);
                if let Some(cell) = record.cell
                    && map.record_cell(cell, kind, id, rt)
                {
                    continue;
                }
                record_region(map, record.info, id, rt);
            }
            return;
        }
        accesses.for_each(&mut |info| {
            if self.tracks(&info) {
                record_region(info.meta.map.get(guard), info, id, rt);
            }
        });
    }
}

/// Records that task `id` accesses `info` (checked) in `map`, box by box.
fn record_region(map: &mut DepMap, info: AccessInfo<'_>, id: TaskId, rt: &crate::Runtime) {
    let shape = &info.meta.shape;
    match info.region.resolve_one(shape) {
        Ok(OneBox::One(bounds)) => map.record(&bounds, info.kind, id, rt),
        Ok(OneBox::Empty) => {}
        Ok(OneBox::Many) => {
            let mut boxes = SmallVec::<[Bounds; 2 * MAX_RANK]>::new();
            let resolved = info.region.resolve_into(shape, &mut boxes);
            debug_assert!(resolved.is_ok());
            for bounds in &boxes {
                map.record(bounds, info.kind, id, rt);
            }
        }
        Err(_) => unreachable!("taskweave: regions are checked at submission"),
    }
}

impl<'p> Scope<'p> {
    /// Checks the declared accesses of one task (see [`DataSubmit`]).
    fn plan<'a, A: Accesses>(
        &self,
        accesses: &'a A,
        task: &Option<Cow<'static, str>>,
        plan: &mut Plan<'a>,
    ) -> Result<(), DataError> {
        let mut outcome = Ok(());
        accesses.for_each(&mut |info| {
            if outcome.is_ok()
                && let Err(error) = self.check_access(info, task, plan)
            {
                // Moved only on failure: the `Ok` path copies no error-sized value.
                outcome = Err(error);
            }
        });
        outcome
    }

    /// Checks one access against its tensor and the task's earlier accesses, and
    /// adds it to `plan`.
    #[inline]
    fn check_access<'a>(
        &self,
        info: AccessInfo<'a>,
        task: &Option<Cow<'static, str>>,
        plan: &mut Plan<'a>,
    ) -> Result<(), DataError> {
        let meta = info.meta;
        if self.refuses(&info) {
            return Err(self.misplaced(info, task));
        }
        let from = plan.boxes.len();
        if let Err(problem) = info.region.resolve_into(&meta.shape, &mut plan.boxes) {
            return Err(region_error(info, task, problem));
        }
        let boxes = &plan.boxes[from..];
        // D3 without comparing every pair in the common case: when each access of a
        // tensor starts after every earlier one ends in row-major order, none can
        // overlap (a box's elements lie between its start and its `end - 1`).
        let earlier = plan
            .accesses
            .iter()
            .rev()
            .find(|p| std::ptr::eq(p.info.meta, meta))
            .and_then(|p| p.last);
        let (first, last) = match boxes {
            [] => (None, None),
            [only] => (Some(only.start), Some(only.end.map(|e| e - 1))),
            _ => (
                boxes
                    .iter()
                    .map(|b| b.start)
                    .min_by_key(|&at| row_major(at)),
                boxes
                    .iter()
                    .map(|b| b.end.map(|e| e - 1))
                    .max_by_key(|&at| row_major(at)),
            ),
        };
        if let (Some(earlier), Some(first)) = (earlier, first)
            && row_major(earlier) >= row_major(first)
        {
            check_overlaps(info, task, plan, from)?;
        }
        let last = match (earlier, last) {
            (Some(earlier), Some(last)) if row_major(earlier) > row_major(last) => Some(earlier),
            (earlier, last) => last.or(earlier),
        };
        plan.accesses.push(Planned {
            info,
            boxes: from as u32..plan.boxes.len() as u32,
            last,
            tracked: self.tracks(&info),
        });
        Ok(())
    }

    /// Whether `info` may not be declared in this scope: a tensor of another tree,
    /// or, in a manual scope, an access the dependency map would order (see
    /// [`Scope::misplaced`] for the error).
    #[inline]
    fn refuses(&self, info: &AccessInfo<'_>) -> bool {
        info.meta.tree != self.tree.id || (self.kind == ScopeKind::Manual && info.wants_map())
    }

    /// Whether the dependency map orders `info` here (rules D2-D4): an auto scope,
    /// a tracked tensor, not `no_dep`.
    #[inline]
    fn tracks(&self, info: &AccessInfo<'_>) -> bool {
        self.kind != ScopeKind::Manual && info.wants_map()
    }

    /// The error for an access to a tensor of another tree, or to a tracked tensor
    /// in a manual scope.
    #[cold]
    fn misplaced(&self, info: AccessInfo<'_>, task: &Option<Cow<'static, str>>) -> DataError {
        let meta = info.meta;
        if meta.tree != self.tree.id {
            DataError::ForeignTensor {
                task: task.clone(),
                tensor: meta.name.clone(),
                scope: self.name.clone(),
            }
        } else {
            DataError::TrackedTensorInManualScope {
                task: task.clone(),
                tensor: meta.name.clone(),
                scope: self.name.clone(),
            }
        }
    }
}

/// The error for a region that does not fit its tensor.
#[cold]
fn region_error(
    info: AccessInfo<'_>,
    task: &Option<Cow<'static, str>>,
    problem: RegionProblem,
) -> DataError {
    let meta = info.meta;
    let (tensor, region, shape) = (meta.name.clone(), *info.region, meta.shape.dims());
    match problem {
        RegionProblem::OutOfBounds => DataError::OutOfBounds {
            task: task.clone(),
            tensor,
            region,
            shape,
        },
        RegionProblem::RankMismatch => DataError::RankMismatch {
            task: task.clone(),
            tensor,
            region,
            shape,
        },
    }
}

/// D3, exactly: the access `info` (whose boxes are `plan.boxes[from..]`) against
/// every earlier access of its tensor in `plan`.
#[inline(never)]
fn check_overlaps(
    info: AccessInfo<'_>,
    task: &Option<Cow<'static, str>>,
    plan: &Plan<'_>,
    from: usize,
) -> Result<(), DataError> {
    let mine = &plan.boxes[from..];
    for other in plan
        .accesses
        .iter()
        .filter(|p| std::ptr::eq(p.info.meta, info.meta))
    {
        let theirs = plan.boxes(other);
        if mine.iter().any(|a| theirs.iter().any(|b| a.overlaps(b))) {
            check_pair(info, other.info, task)?;
        }
    }
    Ok(())
}

/// [`check_overlaps`] for the access `info` of one box, the `at`-th of `accesses`,
/// whose earlier accesses are each one box or none (the fast path's).
#[inline(never)]
fn check_box_overlaps<A: Accesses>(
    info: AccessInfo<'_>,
    task: &Option<Cow<'static, str>>,
    bounds: &Bounds,
    accesses: &A,
    at: usize,
) -> Result<(), DataError> {
    let mut index = 0;
    let mut outcome = Ok(());
    accesses.for_each(&mut |other| {
        let earlier = index < at;
        index += 1;
        if !earlier || outcome.is_err() || !std::ptr::eq(other.meta, info.meta) {
            return;
        }
        let theirs = other.region.resolve_one(&other.meta.shape);
        debug_assert!(matches!(theirs, Ok(OneBox::One(_) | OneBox::Empty)));
        if let Ok(OneBox::One(theirs)) = theirs
            && bounds.overlaps(&theirs)
            && let Err(error) = check_pair(info, other, task)
        {
            outcome = Err(error);
        }
    });
    outcome
}

/// D3 for two overlapping accesses of a task (so neither is empty), `other` declared
/// first: the same region twice, or a write that would alias another view of the
/// task, is an error.
#[inline]
fn check_pair(
    info: AccessInfo<'_>,
    other: AccessInfo<'_>,
    task: &Option<Cow<'static, str>>,
) -> Result<(), DataError> {
    if other.region == info.region {
        return Err(DataError::DuplicateAccess {
            task: task.clone(),
            tensor: info.meta.name.clone(),
            region: *info.region,
            first: other.kind,
            second: info.kind,
        });
    }
    if info.kind.writes() || other.kind.writes() {
        return Err(DataError::OverlappingAccesses {
            task: task.clone(),
            tensor: info.meta.name.clone(),
            first: *other.region,
            first_kind: other.kind,
            second: *info.region,
            second_kind: info.kind,
        });
    }
    Ok(())
}
