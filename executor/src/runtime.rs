//! The `Runtime`: building it, submitting to it, driving an orchestrator, shutting
//! it down.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crossbeam_deque::Worker;

use crate::block_on::block_on;
use crate::deps::DepList;
use crate::error::TaskError;
use crate::extensions::Extensions;
use crate::handle::{TaskWatch, WaitTask};
use crate::id_waiters::IdWaiters;
use crate::injector::Injector;
use crate::inputs::Inputs;
use crate::mailbox::Mailbox;
use crate::monitor::Monitor;
use crate::monitor::{StallHandler, StallReport, run_monitor};
use crate::shared::{Padded, Shared, lifecycle};
use crate::sleep::Sleep;
use crate::stats::{GlobalCounters, Stats, WorkerState};
use crate::submit::Submit;
use crate::sync::{Arc, AtomicU8, AtomicUsize, Mutex, thread};
use crate::task::{BoxError, Closed, Fanout, FnBody, MAX_WINDOW, TaskId};
use crate::trace::Tracer;
use crate::window::Window;
use crate::worker;

/// Cells in the completion mailbox: producers wait when it is full.
const MAILBOX_CAPACITY: usize = 1 << 16;

/// The default number of task slots.
pub const DEFAULT_WINDOW: usize = 65_536;

/// A taskweave runtime: a pool of worker threads and a fixed window of task slots.
///
/// `Runtime` is a cheap handle (`Clone`). When the last handle is dropped the runtime
/// stops: workers finish the body they are polling, every task that has not finished
/// is cancelled (its handle resolves to [`TaskError::Cancelled`]), and the worker
/// threads are joined. Use [`Runtime::shutdown`] to let outstanding work finish first.
///
/// ```
/// use taskweave_executor::Runtime;
/// let rt = Runtime::builder().workers(2).window(1024).build();
/// let total = rt.block_on(async {
///     let a = rt.task(|| 1).name("a").await;
///     let b = rt.task(|| 2).name("b").await;
///     rt.dataflow((a, b), |(x, y)| x + y).name("sum").await.await
/// });
/// assert_eq!(total.unwrap(), 3);
/// ```
#[derive(Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
    /// The last runtime handle drops it: that stops and joins the workers.
    threads: Arc<Threads>,
}

/// Owns the worker threads; dropping it (with the last `Runtime`) stops them, then
/// drops the extensions.
struct Threads {
    shared: Arc<Shared>,
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
    /// Per-runtime values of the layers above (`Runtime::extension`). Kept here, not
    /// in `Shared`: they live exactly as long as some `Runtime` handle does (so a value
    /// holding `TaskWatch`es, which hold `Shared`, makes no cycle), and `Shared`'s
    /// layout, read on every submission, stays as it was.
    extensions: Extensions,
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.shared.stop_workers();
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        if worker::is_worker_of(&self.shared) {
            // Dropped inside one of our own task bodies: this thread cannot join
            // itself. The workers exit on their own and the last cancels what is left.
            self.extensions.clear();
            return;
        }
        for handle in handles {
            let _ = handle.join();
        }
        // After the workers: every task has finished or been cancelled.
        self.extensions.clear();
    }
}

/// Configures and builds a [`Runtime`].
#[derive(Clone)]
pub struct RuntimeBuilder {
    workers: usize,
    window: usize,
    thread_name: String,
    watchdog: Option<Duration>,
    on_stall: Option<StallHandler>,
    enter: Option<worker::ThreadHook>,
    worker_nice: u8,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("workers", &self.workers)
            .field("window", &self.window)
            .field("thread_name", &self.thread_name)
            .field("watchdog", &self.watchdog)
            .field("worker_nice", &self.worker_nice)
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            window: DEFAULT_WINDOW,
            thread_name: "taskweave-worker".to_owned(),
            watchdog: None,
            on_stall: None,
            enter: None,
            worker_nice: 0,
        }
    }
}

impl RuntimeBuilder {
    /// Number of worker threads (default: the machine's available parallelism).
    ///
    /// # Panics
    /// `build` panics if this is 0.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Number of task slots: how many tasks may be submitted and not yet reclaimed at
    /// once (default [`DEFAULT_WINDOW`]). Memory is fixed by it; a submission that finds
    /// every slot taken waits.
    ///
    /// # Panics
    /// `build` panics unless `1 <= window <= 1_048_575`.
    pub fn window(mut self, slots: usize) -> Self {
        self.window = slots;
        self
    }

    /// Prefix of the worker threads' names (default `taskweave-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Runs the worker threads `steps` nice values below the thread that calls
    /// [`build`](RuntimeBuilder::build) (Linux; at most 19, the lowest priority; no
    /// effect elsewhere). Default 0: the workers keep that thread's priority.
    ///
    /// For programs whose orchestrator is the bottleneck (many small tasks submitted
    /// from one thread) on a machine with no core to spare for it: when the
    /// orchestrator and the workers want more cores than there are, the operating
    /// system then runs the orchestrator first. A searching worker spins before it
    /// sleeps, and a worker woken for a task may land on the orchestrator's core;
    /// with two workers on two cores, `submit_cost_5` took 0.935 of the time at 5
    /// steps and 0.897 at 19 (45 rotated rounds, `benches/rotate.py`). The cost: the
    /// workers also yield to every other program's threads of normal priority.
    ///
    /// # Panics
    /// If `steps` is above 19.
    pub fn worker_nice(mut self, steps: u8) -> Self {
        assert!(
            steps <= crate::priority::MAX_NICE,
            "taskweave: worker_nice takes 0..=19 steps, got {steps}"
        );
        self.worker_nice = steps;
        self
    }

    /// Turns on the watchdog: when tasks are outstanding and none has made progress
    /// for `stall_after`, it reports what is stuck (see [`Stall`](crate::Stall)) to the
    /// [`on_stall`](RuntimeBuilder::on_stall) handler (default: standard error), and
    /// fails tasks stuck on deferred completions with
    /// [`TaskError::Stalled`] so their handles say so too.
    pub fn watchdog(mut self, stall_after: Duration) -> Self {
        self.watchdog = Some(stall_after);
        self
    }

    /// Where the watchdog's reports go (instead of standard error).
    pub fn on_stall(mut self, handler: impl Fn(&StallReport) + Send + Sync + 'static) -> Self {
        self.on_stall = Some(Arc::new(handler));
        self
    }

    /// Makes every worker thread enter `handle`'s tokio runtime for its whole life, so
    /// task bodies can await tokio timers and I/O (the tokio runtime drives them; the
    /// taskweave worker polls the body when woken). Keep the tokio runtime alive for
    /// as long as this one.
    #[cfg(feature = "tokio")]
    pub fn tokio_handle(mut self, handle: tokio::runtime::Handle) -> Self {
        self.enter = Some(Arc::new(move |run: &mut dyn FnMut()| {
            let _entered = handle.enter();
            run();
        }));
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> Runtime {
        assert!(
            self.workers >= 1,
            "taskweave: a runtime needs at least one worker, got 0"
        );
        assert!(
            (1..=MAX_WINDOW).contains(&self.window),
            "taskweave: the task window must hold 1..={MAX_WINDOW} slots, got {}",
            self.window
        );
        let locals: Vec<Worker<u32>> = (0..self.workers).map(|_| Worker::new_lifo()).collect();
        let stealers = locals.iter().map(Worker::stealer).collect();
        let epoch = std::time::Instant::now();
        let shared = Arc::new_cyclic(|home| Shared {
            window: Window::new(self.window, home.as_ptr()),
            injector: Injector::new(self.window),
            stealers,
            sleep: Sleep::new(self.workers),
            id_waiters: IdWaiters::new(),
            mailbox: Mailbox::new(MAILBOX_CAPACITY),
            monitor: Monitor::new(self.watchdog, self.on_stall.clone()),
            worker_states: (0..self.workers).map(|_| WorkerState::new()).collect(),
            counters: GlobalCounters::default(),
            epoch,
            tracer: Tracer::new(self.workers, epoch),
            lifecycle: AtomicU8::new(lifecycle::OPEN),
            submitters: Padded(AtomicUsize::new(0)),
            releases: Padded(crate::held::ReleaseQueue::new()),
            workers_alive: AtomicUsize::new(self.workers),
        });
        let nice = crate::priority::worker_nice(self.worker_nice);
        let mut handles =
            worker::spawn_workers(&shared, locals, &self.thread_name, self.enter.clone(), nice);
        let monitor_shared = Arc::clone(&shared);
        handles.push(
            thread::Builder::new()
                .name(format!("{}-monitor", self.thread_name))
                .spawn(move || run_monitor(monitor_shared))
                .expect("taskweave: failed to spawn the monitor thread"),
        );
        let threads = Arc::new(Threads {
            shared: Arc::clone(&shared),
            handles: Mutex::new(handles),
            extensions: Extensions::new(),
        });
        Runtime { shared, threads }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Runtime {
    /// A runtime with the default configuration (see [`RuntimeBuilder`]).
    pub fn new() -> Runtime {
        RuntimeBuilder::default().build()
    }

    /// Configures a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.stealers.len()
    }

    /// Number of task slots.
    pub fn window(&self) -> usize {
        self.shared.window.len()
    }

    /// Runs an orchestration future to completion on the calling thread (not a
    /// worker), parking while it waits.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        block_on(future)
    }

    /// A task whose body is a closure (the fast path: it never touches a waker).
    #[track_caller]
    pub fn task<F, T>(
        &self,
        body: F,
    ) -> Submit<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Submit::new(self, FnBody::new(move || Ok(body())))
    }

    /// A task whose closure may fail: `Err` fails the task with [`TaskError::Failed`].
    #[track_caller]
    pub fn try_task<F, T, E>(
        &self,
        body: F,
    ) -> Submit<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T, E>>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        Submit::new(self, FnBody::new(move || body().map_err(Into::into)))
    }

    /// A task whose body is a future; it may await anything (timers, channels, I/O
    /// driven elsewhere) and is re-polled when woken.
    #[track_caller]
    pub fn task_async<Fut>(
        &self,
        body: Fut,
    ) -> Submit<
        '_,
        Fut::Output,
        impl Future<Output = Result<Fut::Output, BoxError>> + Send + 'static + use<Fut>,
    >
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        Submit::new(self, async move { Ok(body.await) })
    }

    /// A task whose future may fail: `Err` fails the task with [`TaskError::Failed`].
    #[track_caller]
    pub fn try_task_async<Fut, T, E>(
        &self,
        body: Fut,
    ) -> Submit<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<Fut, T, E>>
    where
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        Submit::new(self, async move { body.await.map_err(Into::into) })
    }

    /// A task whose body blocks (file I/O, a lock, a long computation that must not
    /// hold a worker): `body` runs on a separate thread — tokio's blocking pool when
    /// the current thread is inside a tokio runtime, else a thread of its own — and
    /// the task completes when it returns. Workers are never blocked by it.
    #[track_caller]
    pub fn task_blocking<F, T>(
        &self,
        body: F,
    ) -> Submit<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Submit::new(
            self,
            async move { crate::blocking::run_blocking(body).await },
        )
    }

    /// A dataflow task (HPX `dataflow`): runs after every input task has completed and
    /// receives their outputs. If an input failed, this task fails with
    /// [`TaskError::DependencyFailed`] and `body` does not run.
    #[track_caller]
    pub fn dataflow<I, F, T>(
        &self,
        inputs: I,
        body: F,
    ) -> Submit<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<I, F, T>>
    where
        I: Inputs,
        F: FnOnce(I::Values) -> T + Send + 'static,
        T: Send + 'static,
    {
        let deps = input_deps(&inputs);
        Submit::new(self, FnBody::new(move || Ok(body(inputs.take_values()?)))).with_deps(deps)
    }

    /// A dataflow task whose body is async: `body` receives the inputs' outputs and
    /// returns the future to run.
    #[track_caller]
    pub fn dataflow_async<I, F, Fut>(
        &self,
        inputs: I,
        body: F,
    ) -> Submit<
        '_,
        Fut::Output,
        impl Future<Output = Result<Fut::Output, BoxError>> + Send + 'static + use<I, F, Fut>,
    >
    where
        I: Inputs,
        F: FnOnce(I::Values) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let deps = input_deps(&inputs);
        Submit::new(self, async move { Ok(body(inputs.take_values()?).await) }).with_deps(deps)
    }

    /// Waits until the task `id` has finished in any way. A stale id (its slot was
    /// reclaimed: the task finished long ago) and [`TaskId::INVALID`] are ready at once.
    /// Use the task's [`Task`](crate::Task) handle to learn its outcome.
    pub fn wait(&self, id: TaskId) -> WaitTask {
        WaitTask::new(Arc::clone(&self.shared), id)
    }

    /// A [`TaskWatch`] on task `id`, if it still occupies its slot (`None` for a
    /// stale or invalid id: that task finished long ago).
    pub fn watch(&self, id: TaskId) -> Option<TaskWatch> {
        let slot = self.shared.window.slots.get(id.index() as usize)?;
        slot.try_acquire(id.generation())
            .then(|| TaskWatch::new_acquired(Arc::clone(&self.shared), id))
    }

    /// A snapshot of the runtime's counters: tasks submitted, completed, failed and
    /// outstanding, sampled submit cost and ready→start latency, and per worker its
    /// busy and idle time, steals, sleeps and mailbox drains.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Starts recording a trace of the run (discarding one in progress). Recording
    /// costs three clock reads and about 60 bytes per task (one poll, one
    /// dependency), written into per-thread buffers; see the README.
    #[cfg(feature = "trace")]
    pub fn start_trace(&self) {
        self.shared.tracer.start();
        self.shared.monitor.wake();
    }

    /// Whether a trace is being recorded (cheap: one relaxed load), e.g. to skip
    /// preparing [`Runtime::trace_span`] arguments.
    #[cfg(feature = "trace")]
    pub fn is_tracing(&self) -> bool {
        self.shared.tracer.enabled()
    }

    /// Stops recording and returns the trace (export it with
    /// [`Trace::to_chrome_json`](crate::Trace::to_chrome_json)).
    #[cfg(feature = "trace")]
    pub fn stop_trace(&self) -> crate::Trace {
        self.shared.tracer.stop()
    }

    /// Records a span on a custom lane of the trace (e.g. a device core), if a trace
    /// is being recorded.
    #[cfg(feature = "trace")]
    pub fn trace_span(
        &self,
        lane: impl Into<std::borrow::Cow<'static, str>>,
        name: impl Into<std::borrow::Cow<'static, str>>,
        start: std::time::Instant,
        end: std::time::Instant,
    ) {
        self.shared
            .tracer
            .lane_span(lane.into(), name.into(), start, end);
    }

    /// Whether task `id` has finished (completed, failed, cancelled, or stale).
    pub fn is_finished(&self, id: TaskId) -> bool {
        !self.shared.is_open(id)
    }

    /// How task `id` ended, read with one look at its slot (no holder taken, unlike
    /// [`Runtime::watch`]): `None` while it is open; `Some(true)` if it failed or was
    /// cancelled and its slot still holds that outcome (a dependency on it fails);
    /// `Some(false)` if it completed, or finished so long ago that its slot was
    /// reclaimed (its outcome is gone, as for any stale id).
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// let rt = Runtime::builder().workers(1).build();
    /// let ok = rt.task(|| 1).submit_blocking();
    /// let bad = rt.try_task(|| Err::<(), _>("broken")).submit_blocking();
    /// rt.synchronize_blocking();
    /// assert_eq!((rt.failed(ok.id()), rt.failed(bad.id())), (Some(false), Some(true)));
    /// ```
    #[inline]
    pub fn failed(&self, id: TaskId) -> Option<bool> {
        let Some(slot) = self.shared.window.slots.get(id.index() as usize) else {
            return Some(false);
        };
        match slot.fanout_state(id.generation()) {
            Fanout::Open => None,
            Fanout::Closed(Closed::Failed) => Some(true),
            Fanout::Closed(Closed::Ok) | Fanout::Stale => Some(false),
        }
    }

    /// Tells the watchdog that the orchestrator is about to wait for task `task`, a
    /// host access (`what`, e.g. `host read of 'grid'`) ordered after `waits_for`.
    /// While the returned guard lives, a stall report includes
    /// [`Stall::HostAccess`](crate::Stall::HostAccess) if the task is still open,
    /// naming the producers it still waits for. Drop the guard when the wait ends.
    /// (The data layer's host reads and writes do this for you.)
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// let rt = Runtime::builder().workers(1).build();
    /// let producer = rt.task(|| 41).submit_blocking();
    /// let producer_id = producer.id();
    /// let access = rt.dataflow(producer, |x| x + 1).submit_blocking();
    /// let _waiting = rt.host_wait(access.id(), "host read of 'x'", vec![producer_id]);
    /// assert_eq!(access.wait_blocking().unwrap(), 42);
    /// ```
    pub fn host_wait(
        &self,
        task: TaskId,
        what: impl Into<String>,
        waits_for: Vec<TaskId>,
    ) -> HostWait {
        let record = crate::monitor::HostWaitRecord {
            task,
            what: what.into(),
            waits_for,
        };
        let key = self
            .shared
            .monitor
            .host_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record);
        HostWait {
            shared: Arc::clone(&self.shared),
            key,
        }
    }

    /// Per-runtime state of a layer built on the executor, one value per type `T`:
    /// the first call for a `T` stores `init()`, and every call through any handle of
    /// this runtime returns that same value. The streams crate keeps the runtime's
    /// default stream here (`taskweave::streams::RuntimeStreams`).
    ///
    /// `init` runs without a lock held; if two threads race to initialise the same
    /// `T`, one value is kept and the other dropped.
    ///
    /// Values are dropped when the last `Runtime` handle is dropped, after the
    /// workers have stopped. A value must not hold a `Runtime` handle: that would
    /// keep the runtime, and its worker threads, alive for ever (a reference cycle).
    /// Task references ([`TaskWatch`]) are fine.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use taskweave_executor::Runtime;
    ///
    /// #[derive(Default)]
    /// struct Launches(AtomicU64);
    ///
    /// let rt = Runtime::builder().workers(1).build();
    /// rt.extension(Launches::default).0.fetch_add(1, Ordering::Relaxed);
    /// let clone = rt.clone();
    /// let count = clone.extension(Launches::default).0.load(Ordering::Relaxed);
    /// assert_eq!(count, 1); // the same value, through any handle
    /// ```
    pub fn extension<T: std::any::Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        self.threads.extensions.get_or_init(init)
    }

    /// Waits until every task submitted before this call has finished (tasks
    /// submitted meanwhile may be waited for too). Unlike `shutdown` it leaves the
    /// runtime open.
    pub async fn synchronize(&self) {
        let mut from = 0;
        while let Some((index, id)) = self.shared.first_open_task(from) {
            self.wait(id).await;
            from = index + 1;
        }
    }

    /// [`Runtime::synchronize`] for non-async callers.
    pub fn synchronize_blocking(&self) {
        block_on(self.synchronize());
    }

    /// Stops accepting submissions (later ones resolve to [`TaskError::Shutdown`]),
    /// waits until every outstanding task has finished, then stops the workers.
    /// Tasks submitted by running task bodies during the drain are rejected too.
    pub async fn shutdown(&self) {
        let shared = Arc::clone(&self.shared);
        shared.stop_submissions(lifecycle::DRAINING);
        // No task can be submitted any more, so one pass over the window suffices.
        self.synchronize().await;
        shared.stop_workers();
    }

    /// [`Runtime::shutdown`] for non-async callers.
    pub fn shutdown_blocking(&self) {
        block_on(self.shutdown());
    }
}

fn input_deps<I: Inputs>(inputs: &I) -> DepList {
    let mut deps = DepList::default();
    inputs.for_each_id(&mut |id| deps.push(id));
    deps
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .field("window", &self.window())
            .finish_non_exhaustive()
    }
}

/// Compile-time check of the auto traits users rely on (STYLE.md §6).
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    send_sync::<crate::Task<u32>>();
    send_sync::<TaskError>();
    send_sync::<TaskId>();
}

/// An orchestrator's wait in a host access, known to the watchdog until dropped
/// (see [`Runtime::host_wait`]).
#[must_use = "the watchdog knows of the wait only while the guard lives"]
pub struct HostWait {
    shared: Arc<Shared>,
    key: usize,
}

impl Drop for HostWait {
    fn drop(&mut self) {
        self.shared
            .monitor
            .host_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.key);
    }
}

impl fmt::Debug for HostWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostWait").finish_non_exhaustive()
    }
}
