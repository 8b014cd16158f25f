//! Submitting a task: the `Submit` builder, waiting for a window slot, and wiring the
//! new task's dependencies (DESIGN.md §2 steps 1–3).

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::Runtime;
use crate::block_on::block_on;
use crate::console::TaskSpan;
use crate::deps::DepList;
use crate::handle::{Task, TaskWatch};
use crate::shared::Shared;
use crate::stats::SAMPLE_EVERY;
use crate::sync::{Arc, thread};
use crate::task::{BoxError, FnBody, MAX_DEPS, TaskId, install, run_state, wire};

/// Attempts at a free slot, yielding between them, before a submitter sleeps.
const WINDOW_RETRIES: u32 = 32;

/// A task about to be submitted: set its name and dependencies, then `.submit().await`
/// (or just `.await`) it to get its [`Task`] handle.
///
/// ```
/// use taskweave_executor::{Runtime, TaskId};
/// let rt = Runtime::builder().workers(1).build();
/// let first = rt.task(|| 20).name("first").submit_blocking();
/// let second = rt.task(|| 22).name("second").after([first.id(), TaskId::INVALID]).submit_blocking();
/// assert_eq!(first.wait_blocking().unwrap() + second.wait_blocking().unwrap(), 42);
/// ```
#[must_use = "a task is submitted only by .submit().await, .await or .submit_blocking()"]
pub struct Submit<'rt, T, B> {
    runtime: &'rt Runtime,
    name: Option<Cow<'static, str>>,
    deadline: Option<Duration>,
    /// Where the task was submitted from (for tokio-console).
    location: &'static Location<'static>,
    deps: DepList,
    body: B,
    output: PhantomData<fn() -> T>,
}

impl<'rt, T, B> Submit<'rt, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    #[track_caller]
    pub(crate) fn new(runtime: &'rt Runtime, body: B) -> Self {
        Submit {
            runtime,
            name: None,
            deadline: None,
            location: Location::caller(),
            deps: DepList::default(),
            body,
            output: PhantomData,
        }
    }

    pub(crate) fn with_deps(mut self, deps: DepList) -> Self {
        self.deps = deps;
        self
    }

    /// Names the task (shown in errors and diagnostics).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Gives the task's deferred completions (see [`defer`](crate::defer)) at most
    /// `deadline` after its body returned; if tokens are still outstanding then, the
    /// task fails with [`TaskError::Stalled`](crate::TaskError::Stalled) naming them.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Adds explicit dependencies: the task runs after every one of them has finished.
    /// [`TaskId::INVALID`] entries are skipped, duplicates removed, and stale ids (tasks
    /// finished long ago) are already satisfied.
    ///
    /// A dependency that *failed* fails this task with
    /// [`TaskError::DependencyFailed`](crate::TaskError::DependencyFailed), as long as the
    /// failed task's slot is still held (by its handle, or because it is recent); a stale
    /// id carries no outcome and counts as done. Hold the `Task` handle, or pass it as a
    /// dataflow input, when the failure must propagate.
    pub fn after<I: IntoIterator<Item = TaskId>>(mut self, deps: I) -> Self {
        for id in deps {
            self.deps.push(id);
        }
        self
    }

    /// Submits the task, waiting while the task window is full (back-pressure).
    ///
    /// If the runtime is shutting down the returned handle resolves to
    /// [`TaskError::Shutdown`](crate::TaskError::Shutdown).
    pub fn submit(self) -> Submission<'rt, T, B> {
        Submission {
            submit: Some(self),
            retries: 0,
        }
    }

    /// Submits from a non-async caller, blocking while the task window is full.
    ///
    /// Do not call this from inside a task body when the window may be full: the
    /// worker would block until another worker frees a slot.
    pub fn submit_blocking(self) -> Task<T> {
        block_on(self.submit())
    }
}

impl<'rt, T, B> IntoFuture for Submit<'rt, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    type Output = Task<T>;
    type IntoFuture = Submission<'rt, T, B>;

    fn into_future(self) -> Self::IntoFuture {
        self.submit()
    }
}

/// The future of [`Submit::submit`]: resolves to the task's handle once it has a slot.
#[must_use = "futures do nothing unless awaited"]
pub struct Submission<'rt, T, B> {
    submit: Option<Submit<'rt, T, B>>,
    retries: u32,
}

// The body is moved into its slot, never pinned here.
impl<T, B> Unpin for Submission<'_, T, B> {}

impl<'rt, T, B> Submission<'rt, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    /// Adds explicit dependencies to a submission that has not resolved yet (see
    /// [`Submit::after`]), in place: for a layer above the executor that chooses some
    /// dependencies only at the moment it submits (a stream adds its tail under its
    /// lock). Dependencies added after a poll that returned `Pending` count too: the
    /// task is created only by the poll that resolves.
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// let rt = Runtime::builder().workers(1).build();
    /// let first = rt.task(|| 1).submit_blocking();
    /// let mut second = rt.task(|| 2).submit();
    /// second.after([first.id()]); // chosen after `submit()`, before it resolves
    /// let second = rt.block_on(&mut second);
    /// assert_eq!(first.wait_blocking().unwrap() + second.wait_blocking().unwrap(), 3);
    /// ```
    ///
    /// # Panics
    /// If the submission has already resolved.
    pub fn after<I: IntoIterator<Item = TaskId>>(&mut self, deps: I) -> &mut Self {
        let submit = self
            .submit
            .as_mut()
            .expect("taskweave: dependencies added to a Submission that already resolved");
        for id in deps {
            submit.deps.push(id);
        }
        self
    }

    /// Polls like [`Future::poll`], and on success also returns a [`TaskWatch`] on
    /// the new task, counted in when the task is published (no extra atomic operation
    /// on the task's slot, unlike [`Task::watch`] afterwards). The watch is `None`
    /// when the runtime rejected the task.
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// let rt = Runtime::builder().workers(1).build();
    /// let mut submission = rt.try_task(|| Err::<(), _>("broken")).submit();
    /// let (task, watch) = rt.block_on(std::future::poll_fn(|cx| submission.poll_watched(cx)));
    /// drop(task); // the watch still holds the task: its failure stays readable
    /// assert!(rt.block_on(watch.expect("accepted")).is_err());
    /// ```
    pub fn poll_watched(&mut self, cx: &mut Context<'_>) -> Poll<(Task<T>, Option<TaskWatch>)> {
        self.poll_submit(cx, true)
    }

    /// The submission proper; `watched` adds a [`TaskWatch`] holder (R10).
    #[inline(always)]
    fn poll_submit(
        &mut self,
        cx: &mut Context<'_>,
        watched: bool,
    ) -> Poll<(Task<T>, Option<TaskWatch>)> {
        let this = self;
        let submit = this
            .submit
            .as_mut()
            .expect("taskweave: Submission polled after completion");
        checked_deps(&mut submit.deps);
        let shared = Arc::clone(&submit.runtime.shared);
        let index = loop {
            if !shared.begin_submit() {
                break None;
            }
            if let Some(index) = shared.window.try_pop() {
                break Some(index);
            }
            shared.end_submit();
            // Holds queued for the workers may be all that keeps slots taken.
            if shared.run_releases() {
                continue;
            }
            if this.retries < WINDOW_RETRIES {
                // The window usually frees a slot within microseconds: look again
                // before paying for a sleep and a wake.
                this.retries += 1;
                thread::yield_now();
                continue;
            }
            shared.window.register_waiter(cx.waker());
            if !shared.begin_submit() {
                break None;
            }
            if let Some(index) = shared.window.try_pop() {
                break Some(index);
            }
            shared.end_submit();
            this.retries = 0;
            return Poll::Pending;
        };
        let mut submit = this.submit.take().expect("checked above");
        let Some(index) = index else {
            return Poll::Ready((Task::rejected(shared, submit.name.take()), None));
        };
        // Execution + handle (+ the watch), R10.
        let holders = if watched { 3 } else { 2 };
        let body = submit.body;
        // SAFETY: `index` was just popped from the free list (R1) and `begin_submit`
        // keeps the runtime from cancelling before the task is published.
        let id = unsafe {
            launch(
                &shared,
                index,
                || body,
                submit.name,
                submit.deadline,
                submit.location,
                submit.deps.finish(),
                holders,
            )
        };
        // The third holder published above belongs to this watch.
        let watch = watched.then(|| TaskWatch::new_acquired(Arc::clone(&shared), id));
        Poll::Ready((Task::new(shared, id), watch))
    }
}

impl<T, B> Future for Submission<'_, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    type Output = Task<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Task<T>> {
        self.poll_submit(cx, false).map(|(task, _)| task)
    }
}

/// Starts the task in the free slot `index` (R2, R3): initialises it, wires its
/// dependencies, and queues it if nothing it depends on is open. Times one
/// submission in [`SAMPLE_EVERY`] and traces it; ends the caller's `begin_submit`
/// mark. Returns its id.
///
/// `make_body` makes the body where it is stored (so a large body is not copied).
/// `holders` is 2 (execution and handle) or 3 (and a `TaskWatch` the caller makes).
///
/// # Safety
/// The caller popped `index` from the free list (so owns it, R1) and holds a
/// `begin_submit` mark.
// The submission's fields one by one: moving the whole `Submit` in costs a copy on
// the submit path.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn launch<T, B>(
    shared: &Arc<Shared>,
    index: u32,
    make_body: impl FnOnce() -> B,
    name: Option<Cow<'static, str>>,
    deadline: Option<Duration>,
    location: &'static Location<'static>,
    deps: &[TaskId],
    holders: u32,
) -> TaskId
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    let sequence = shared
        .counters
        .submitted
        .fetch_add(1, crate::sync::Ordering::Relaxed);
    let timer = sequence
        .is_multiple_of(SAMPLE_EVERY)
        .then(std::time::Instant::now);
    if shared.tracer.enabled() {
        let slot = &shared.window.slots[index as usize];
        let id = TaskId::new(index, slot.generation());
        let at = shared.tracer.stamp();
        shared
            .tracer
            .submitted(crate::worker::current_index(shared), id, &name, deps, at);
        // The earliest the task can be ready (see `Shared::stamp_ready`). The slot
        // is ours until it is published below.
        slot.ready_at.store(
            shared.tracer.as_ready_stamp(at),
            crate::sync::Ordering::Relaxed,
        );
    }
    let slots = &shared.window.slots;
    let slot = &slots[index as usize];
    let generation = slot.generation();
    // The body first: should `make_body` panic, the slot is untouched but for its
    // spill block, and goes back to the free list.
    let unclaimed = Unclaimed { shared, index };
    // SAFETY: R1/R2: the submitter owns every non-atomic field until it publishes.
    let vtable = unsafe { slot.storage.with_mut(|storage| install(storage, make_body)) };
    std::mem::forget(unclaimed);
    // SAFETY: R1/R2, as above.
    unsafe {
        slot.meta.with_mut(|meta| {
            let meta = &mut *meta;
            meta.name = name;
            // The reclaimer took the previous task's error (a fresh slot has none).
            debug_assert!(meta.error.is_none());
            meta.deadline = deadline;
            meta.span = TaskSpan::new(
                TaskId::new(index, generation),
                meta.name.as_deref(),
                location,
            );
            slot.waker_tag.set(&meta.span);
            meta.vtable = Some(vtable);
        });
        slot.prepare_edges(deps.len());
    }
    slot.run_state
        .store(run_state::RUNNING, crate::sync::Ordering::Relaxed);
    slot.deferred
        .store(crate::deferred::BODY, crate::sync::Ordering::Relaxed);
    slot.fan_in
        .store(1 + deps.len() as u32, crate::sync::Ordering::Relaxed);
    // Execution + handle (+ a watch), R10; Release publishes the fields above to
    // acquirers by id.
    slot.publish_holders(generation, holders);
    let id = TaskId::new(index, generation);
    // SAFETY: R2/R8: we are the submitter and prepared one node per dependency.
    let ready = unsafe {
        wire(slots, index, deps, |producer| {
            let p = &slots[producer.index() as usize];
            if p.try_acquire(producer.generation()) {
                // SAFETY: R5: the producer closed, so its meta is read-only, and our
                // reference keeps it from being reclaimed while we read it.
                p.meta.with(|meta| {
                    if let Some(error) = &(*meta).error {
                        slot.record_dep_failure(error);
                    }
                });
                shared.release(producer.index());
            }
        })
    };
    if ready {
        shared.schedule(index);
    }
    if let Some(timer) = timer {
        let counters = &shared.counters;
        counters.submit_ns.fetch_add(
            timer.elapsed().as_nanos() as u64,
            crate::sync::Ordering::Relaxed,
        );
        counters
            .submit_samples
            .fetch_add(1, crate::sync::Ordering::Relaxed);
    }
    shared.end_submit();
    id
}

/// The distinct dependencies of a submission, checked against [`MAX_DEPS`] (edge
/// node references have 20 bits for `j`).
///
/// # Panics
/// If there are more.
#[inline]
fn checked_deps(deps: &mut DepList) -> &[TaskId] {
    let deps = deps.finish();
    assert!(
        deps.len() <= MAX_DEPS,
        "taskweave: a task may have at most {MAX_DEPS} distinct dependencies, got {}",
        deps.len()
    );
    deps
}

/// [`checked_deps`] of the ids `deps`, collected in `list` (nothing to collect when
/// there are none or one valid id, the common cases).
#[inline]
fn checked_ids<'a>(deps: &'a [TaskId], list: &'a mut DepList) -> &'a [TaskId] {
    match deps {
        // None, or one (a chain's): nothing to drop or deduplicate.
        [] => return deps,
        [one] if one.is_valid() => return deps,
        _ => {}
    }
    list.extend(deps);
    checked_deps(list)
}

/// A popped slot whose body is being made: if that panics, the slot goes back to the
/// free list and the submitter's `begin_submit` mark ends (nothing was published).
struct Unclaimed<'a> {
    shared: &'a Shared,
    index: u32,
}

impl Drop for Unclaimed<'_> {
    fn drop(&mut self) {
        self.shared.window.give_back(self.index);
        self.shared.end_submit();
    }
}

impl Runtime {
    /// Submits a closure task at once if the task window has a free slot, making its
    /// body in the slot: `make` is called there, so a large body is built where it is
    /// stored instead of being moved through a builder and a future. When every slot
    /// is taken it returns `None` without calling `make`; wait for a slot with
    /// [`Runtime::try_task`]`(..).submit().await` instead. If the runtime is shutting
    /// down the handle resolves to [`TaskError::Shutdown`](crate::TaskError::Shutdown),
    /// as for [`Submit::submit`].
    ///
    /// `deps` and `name` are as for [`Submit::after`] and [`Submit::name`]; an `Err`
    /// from the body fails the task, as for [`Runtime::try_task`].
    ///
    /// ```
    /// use taskweave_executor::{Runtime, TaskId};
    /// let rt = Runtime::builder().workers(1).build();
    /// let first = rt.task(|| 20).submit_blocking();
    /// let input = [1u64; 32]; // a body too large for a slot's inline bytes
    /// let sum = rt
    ///     .try_submit_now(&[first.id(), TaskId::INVALID], &None, || {
    ///         move || Ok::<_, std::convert::Infallible>(input.iter().sum::<u64>())
    ///     })
    ///     .expect("the window has room");
    /// assert_eq!(first.wait_blocking().unwrap() + sum.wait_blocking().unwrap(), 52);
    /// ```
    #[track_caller]
    pub fn try_submit_now<F, T, E>(
        &self,
        deps: &[TaskId],
        name: &Option<Cow<'static, str>>,
        make: impl FnOnce() -> F,
    ) -> Option<Task<T>>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        let location = Location::caller();
        // Checked before a slot is taken: a panic leaves nothing to give back.
        let mut list = DepList::default();
        let deps = checked_ids(deps, &mut list);
        match self.reserve() {
            // Execution and handle.
            Ok(reserved) => Some(reserved.launch(deps, name, make, location, 2)),
            Err(NoSlot::Stopping) => Some(Task::rejected(Arc::clone(&self.shared), name.clone())),
            Err(NoSlot::Full) => None,
        }
    }

    /// Takes a free slot for a closure task that [`Reservation::submit`] makes later,
    /// if one is free now and the runtime is not shutting down (`None` otherwise:
    /// then submit as usual, which waits for a slot or gives a rejected handle).
    ///
    /// The reservation knows its task's [`TaskId`] before the task is made, so a
    /// caller can name the task in its own bookkeeping while it finds the task's
    /// dependencies. Dropping the reservation gives the slot back. Hold it briefly:
    /// the slot counts against the window, and shutdown waits for it.
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// let rt = Runtime::builder().workers(1).build();
    /// let first = rt.task(|| 20).submit_blocking();
    /// let reserved = rt.try_reserve().expect("the window has room");
    /// let id = reserved.id();
    /// let second = reserved.submit(&[first.id()], &None, || || Ok::<_, std::convert::Infallible>(22));
    /// assert_eq!(second.id(), id);
    /// assert_eq!(first.wait_blocking().unwrap() + second.wait_blocking().unwrap(), 42);
    /// ```
    #[inline]
    pub fn try_reserve(&self) -> Option<Reservation<'_>> {
        self.reserve().ok()
    }

    /// [`Runtime::try_reserve`], saying why there is no reservation.
    #[inline]
    fn reserve(&self) -> Result<Reservation<'_>, NoSlot> {
        let shared = &self.shared;
        if !shared.begin_submit() {
            return Err(NoSlot::Stopping);
        }
        let Some(index) = shared.window.try_pop() else {
            shared.end_submit();
            return Err(NoSlot::Full);
        };
        let id = TaskId::new(index, shared.window.slots[index as usize].generation());
        Ok(Reservation {
            runtime: self,
            index,
            id,
        })
    }
}

/// Why [`Runtime::reserve`] took no slot.
enum NoSlot {
    /// The runtime no longer accepts work.
    Stopping,
    /// Every slot is taken.
    Full,
}

/// A task slot taken by [`Runtime::try_reserve`] for a closure task made later with
/// [`Reservation::submit`]. Dropping it gives the slot back.
#[must_use = "dropping a reservation gives its slot back"]
pub struct Reservation<'rt> {
    runtime: &'rt Runtime,
    index: u32,
    id: TaskId,
}

impl Reservation<'_> {
    /// The id the task will have.
    #[inline]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Whether [`Reservation::submit`] takes `deps`: at most 2^20 distinct valid ids
    /// (more make it panic).
    #[inline]
    pub fn deps_fit(deps: &[TaskId]) -> bool {
        if deps.len() <= MAX_DEPS {
            return true;
        }
        let mut list = DepList::default();
        list.extend(deps);
        list.finish().len() <= MAX_DEPS
    }

    /// Makes the task in the reserved slot and submits it, as
    /// [`Runtime::try_submit_now`] does; its id is [`Reservation::id`].
    ///
    /// # Panics
    /// If `deps` has more than 2^20 distinct ids (see [`Reservation::deps_fit`]); the
    /// slot is given back.
    #[track_caller]
    pub fn submit<F, T, E>(
        self,
        deps: &[TaskId],
        name: &Option<Cow<'static, str>>,
        make: impl FnOnce() -> F,
    ) -> Task<T>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        let location = Location::caller();
        let mut list = DepList::default();
        let deps = checked_ids(deps, &mut list);
        // Execution and handle.
        self.launch(deps, name, make, location, 2)
    }

    /// [`Reservation::submit`], also holding the task's slot in `held` as
    /// [`HeldTasks::hold`](crate::HeldTasks::hold) would, with the hold counted
    /// when the task is published rather than by a second atomic operation on the
    /// slot (which a worker may already be running).
    ///
    /// # Panics
    /// As [`Reservation::submit`], and if `held` is of another runtime (then the slot
    /// is given back).
    #[track_caller]
    pub fn submit_held<F, T, E>(
        self,
        deps: &[TaskId],
        name: &Option<Cow<'static, str>>,
        held: &mut crate::HeldTasks,
        make: impl FnOnce() -> F,
    ) -> Task<T>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        let location = Location::caller();
        assert!(
            held.is_of(&self.runtime.shared),
            "taskweave: Reservation::submit_held with the HeldTasks of another runtime"
        );
        let mut list = DepList::default();
        let deps = checked_ids(deps, &mut list);
        // Execution, handle and the hold.
        let task = self.launch(deps, name, make, location, 3);
        held.push_held(task.id());
        task
    }

    /// Makes and publishes the task with `holders` holders; `deps` were checked
    /// ([`checked_ids`]) while the reservation could still give its slot back.
    #[inline(always)]
    fn launch<F, T, E>(
        self,
        deps: &[TaskId],
        name: &Option<Cow<'static, str>>,
        make: impl FnOnce() -> F,
        location: &'static Location<'static>,
        holders: u32,
    ) -> Task<T>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        // From here `launch` owns the slot (and gives it back should `make` panic).
        let this = std::mem::ManuallyDrop::new(self);
        let shared = &this.runtime.shared;
        let body = || {
            let body = make();
            FnBody::new(move || body().map_err(Into::into))
        };
        // SAFETY: the reservation popped `index` from the free list (R1) and holds
        // the `begin_submit` mark, which `launch` ends; `this` is not dropped.
        let id = unsafe {
            launch(
                shared,
                this.index,
                body,
                name.clone(),
                None,
                location,
                deps,
                holders,
            )
        };
        debug_assert_eq!(id, this.id);
        Task::new(Arc::clone(shared), id)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.runtime.shared.window.give_back(self.index);
        self.runtime.shared.end_submit();
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    #[test]
    fn a_dropped_reservation_gives_its_slot_back() {
        let rt = Runtime::builder().workers(1).window(2).build();
        let a = rt.try_reserve().expect("a free slot");
        let b = rt.try_reserve().expect("a free slot");
        assert!(rt.try_reserve().is_none(), "the window is full");
        let id = a.id();
        drop(a);
        let c = rt.try_reserve().expect("the slot came back");
        assert_eq!(c.id(), id, "never used: the same generation");
        let first = c.submit(&[], &None, || || Ok::<u32, Infallible>(5));
        assert_eq!(first.id(), id);
        let second = b.submit(&[first.id()], &None, || || Ok::<u32, Infallible>(6));
        assert_eq!(
            first.wait_blocking().unwrap() + second.wait_blocking().unwrap(),
            11
        );
        // A reservation with too many dependencies panics and gives its slot back.
        let deps: Vec<TaskId> = (0..=MAX_DEPS as u32).map(|i| TaskId::new(i, 0)).collect();
        assert!(!Reservation::deps_fit(&deps));
        let reserved = rt.try_reserve().expect("a free slot");
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            reserved.submit(&deps, &None, || || Ok::<(), Infallible>(()))
        }));
        assert!(panicked.is_err());
        let last = rt.try_submit_now(&[], &None, || || Ok::<u32, Infallible>(7));
        assert_eq!(last.expect("a free slot").wait_blocking().unwrap(), 7);
        shuts_down_within_20_s(&rt, "a reservation the panic left open");
    }

    /// Fails if `rt.shutdown()` takes more than 20 s (it would wait forever for a
    /// submission `left` open).
    fn shuts_down_within_20_s(rt: &Runtime, left: &str) {
        let stopping = rt.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            stopping.block_on(stopping.shutdown());
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("shutdown waits for {left}"));
    }

    #[test]
    fn a_task_submitted_held_keeps_its_slot_until_the_hold_is_released() {
        let rt = Runtime::builder().workers(1).window(2).build();
        let mut held = crate::HeldTasks::new(&rt);
        let reserved = rt.try_reserve().expect("a free slot");
        let task = reserved.submit_held(&[], &None, &mut held, || || Err::<u32, _>("held failure"));
        let id = task.id();
        assert_eq!(held.ids(), [id]);
        assert!(task.wait_blocking().is_err());
        // Finished and its handle gone, the task keeps its slot and its outcome.
        rt.synchronize_blocking();
        assert_eq!(rt.failed(id), Some(true));
        let other = rt.try_reserve().expect("the other slot");
        assert!(rt.try_reserve().is_none(), "the held slot is not free");
        drop(other);
        // Released, the slot comes back (once a worker or this thread reclaims it).
        held.release();
        let mut both = Vec::new();
        while both.len() < 2 {
            match rt.try_reserve() {
                Some(reserved) => both.push(reserved),
                None => std::thread::yield_now(),
            }
        }
        drop(both);
        // The holds of another runtime are refused, and the slot goes back.
        let elsewhere = Runtime::builder().workers(1).build();
        let mut foreign = crate::HeldTasks::new(&elsewhere);
        let reserved = rt.try_reserve().expect("a free slot");
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            reserved.submit_held(&[], &None, &mut foreign, || || Ok::<(), Infallible>(()))
        }));
        assert!(panicked.is_err());
        assert!(foreign.is_empty());
        let last = rt.try_submit_now(&[], &None, || || Ok::<u32, Infallible>(3));
        assert_eq!(last.expect("a free slot").wait_blocking().unwrap(), 3);
        shuts_down_within_20_s(&rt, "a reservation the panic left open");
    }

    #[test]
    fn too_many_dependencies_panic_before_a_slot_is_taken() {
        let rt = Runtime::builder().workers(1).window(2).build();
        let deps: Vec<TaskId> = (0..=MAX_DEPS as u32).map(|i| TaskId::new(i, 0)).collect();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            rt.try_submit_now(&deps, &None, || || Ok::<(), Infallible>(()))
        }));
        assert!(panicked.is_err());
        // Both slots are still free...
        let one = rt.try_submit_now(&[], &None, || || Ok::<u32, Infallible>(1));
        let two = rt.try_submit_now(&[], &None, || || Ok::<u32, Infallible>(2));
        let (one, two) = (one.expect("a free slot"), two.expect("a free slot"));
        assert_eq!(
            one.wait_blocking().unwrap() + two.wait_blocking().unwrap(),
            3
        );
        // ...and no submission was left open: shutdown would wait for it forever.
        shuts_down_within_20_s(&rt, "a submission the panic left open");
    }
}
