//! `Stream`: an ordered lane of tasks on a runtime.

use std::fmt;
use std::future::Future;

use taskweave_executor::Runtime;

use crate::backend::OnRuntime;
use crate::error::StreamError;
use crate::event::Event;
use crate::lane::Lane;
use crate::sync::Arc;

/// An ordered lane of tasks (CUDA's `cudaStream_t`, quadrants' `qd.create_stream()`):
/// each task launched on a stream runs after the previous launch on it has finished,
/// on top of whatever else it depends on. Streams run concurrently with each other
/// unless an [`Event`] (or [`Stream::wait_stream`]) orders them.
///
/// Create streams with [`Streams::create_stream`](crate::Streams::create_stream).
/// Launch with the same builders as the runtime's — [`Stream::task`],
/// [`Stream::try_task`], [`Stream::task_async`], [`Stream::try_task_async`],
/// [`Stream::task_blocking`], [`Stream::dataflow`], [`Stream::dataflow_async`], or
/// [`Stream::launch`] for any executor [`Submit`](taskweave_executor::Submit) — then
/// `.name(..)`, `.after(ids)`, and `.await` (or `.submit_blocking()`). Each launch returns the task's ordinary
/// [`Task`](taskweave_executor::Task) handle, owns its arguments (the closure's
/// captures), and never waits for the stream's earlier work: only for a window slot
/// when the runtime's task window is full (back-pressure).
///
/// - **Order** is the order in which launches are submitted (their futures first
///   polled). Launching on one stream from several threads is allowed; they are
///   serialised.
/// - **Errors** are sticky: a task that fails makes every later launch on the stream
///   fail with `DependencyFailed` naming it, and [`Stream::synchronize`] returns it.
///   Other streams carry on (unless they wait for this one).
/// - **Handles**: `Stream` is a cheap handle (`Clone`); clones are the same stream.
///   Dropping handles never cancels or loses work: launched tasks run and their
///   `Task` handles resolve.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use taskweave_executor::Runtime;
/// use taskweave_streams::Streams;
///
/// let rt = Runtime::builder().workers(2).build();
/// let streams = Streams::new(&rt);
/// let s = streams.create_stream("log");
/// let log = Arc::new(Mutex::new(Vec::new()));
/// rt.block_on(async {
///     for i in 0..100 {
///         let log = log.clone();
///         // Fire and forget: the handle is dropped, the order is the stream's.
///         let _ = s.task(move || log.lock().unwrap().push(i)).await;
///     }
///     s.synchronize().await.unwrap();
/// });
/// assert_eq!(*log.lock().unwrap(), (0..100).collect::<Vec<_>>());
/// assert!(s.query());
/// ```
///
/// Each launch owns its arguments (quadrants shared one argument buffer between
/// streams, so a launch could see the arguments of a later one). A launch cannot
/// borrow them:
///
/// ```compile_fail
/// # use taskweave_executor::Runtime;
/// # use taskweave_streams::Streams;
/// # let rt = Runtime::builder().workers(1).build();
/// # let s = Streams::new(&rt).create_stream("s");
/// let args = vec![1.0f32, 2.0];
/// let t = s.task(|| args.len()).submit_blocking(); // borrows `args`: not 'static
/// ```
///
/// nor share them with the launching thread through something that is not `Send`:
///
/// ```compile_fail
/// # use taskweave_executor::Runtime;
/// # use taskweave_streams::Streams;
/// # let rt = Runtime::builder().workers(1).build();
/// # let s = Streams::new(&rt).create_stream("s");
/// let args = std::rc::Rc::new(vec![1.0f32, 2.0]);
/// let t = s.task(move || args.len()).submit_blocking(); // `Rc` is not `Send`
/// ```
#[derive(Clone)]
pub struct Stream {
    runtime: Runtime,
    /// The ordering state. The runtime's stream layer keeps lanes (not `Stream`s,
    /// which hold a `Runtime`) for the default stream, the registry and the pool.
    pub(crate) lane: Arc<Lane<OnRuntime>>,
}

impl Stream {
    pub(crate) fn new(runtime: Runtime, name: Arc<str>) -> Stream {
        Stream::from_lane(runtime, Arc::new(Lane::new(name)))
    }

    pub(crate) fn from_lane(runtime: Runtime, lane: Arc<Lane<OnRuntime>>) -> Stream {
        Stream { runtime, lane }
    }

    pub(crate) fn lane(&self) -> &Lane<OnRuntime> {
        &self.lane
    }

    /// The stream's name (shown in errors and `Debug`).
    pub fn name(&self) -> &str {
        self.lane.name()
    }

    /// The runtime the stream launches on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether `self` and `other` are handles of the same stream.
    pub fn same_stream(&self, other: &Stream) -> bool {
        Arc::ptr_eq(&self.lane, &other.lane)
    }

    /// Makes every later launch on this stream wait for the point `event` is
    /// recorded at now (CUDA's `cudaStreamWaitEvent`). Never blocks. Waiting on an
    /// event that was never recorded is a no-op; recording the event again later does
    /// not change what this stream waits for.
    pub fn wait_event(&self, event: &Event) {
        event.cell().wait_on(self.lane());
    }

    /// Records a new [`Event`] at this stream's current point.
    pub fn record_event(&self) -> Event {
        let event = Event::new();
        event.record(self);
        event
    }

    /// Makes every later launch on this stream wait for everything launched on
    /// `other` so far (a record on `other` and a wait here, without an `Event`).
    pub fn wait_stream(&self, other: &Stream) {
        self.lane().wait_for(other.lane().snapshot());
    }

    /// Waits until everything launched on this stream so far (and everything it was
    /// told to wait for) has finished. Resolves to the stream's error if one of those
    /// tasks failed: the root cause, see [`StreamError`]. The work to wait for is
    /// fixed when this method is called, not when the future is first polled.
    pub fn synchronize(&self) -> impl Future<Output = Result<(), StreamError>> + Send + 'static {
        let name = Arc::clone(self.lane().name());
        let point = self.lane().snapshot();
        async move {
            point
                .finished()
                .await
                .map_err(|error| StreamError::new(name, error))
        }
    }

    /// [`Stream::synchronize`] for non-async callers: blocks the calling thread. Do
    /// not call it from inside a task body whose worker the stream's work needs.
    pub fn synchronize_blocking(&self) -> Result<(), StreamError> {
        self.runtime().block_on(self.synchronize())
    }

    /// Whether the stream is idle: everything launched on it (and everything it waits
    /// for) has finished, and no launch is waiting for a window slot. Never blocks.
    pub fn query(&self) -> bool {
        self.lane().is_idle()
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Stream").field(&self.lane).finish()
    }
}
