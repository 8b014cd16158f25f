//! `Streams`: the stream layer of one runtime — its default stream, stream creation,
//! the pool of worker streams, and runtime-wide synchronize.

use std::fmt;
use std::future::Future;

use taskweave_executor::Runtime;

use crate::backend::OnRuntime;
use crate::error::StreamError;
use crate::lane::Lane;
use crate::stream::Stream;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, Weak, lock};

/// The stream layer of a [`Runtime`]. There is one per runtime: [`Streams::new`] (or
/// [`RuntimeStreams::streams`](crate::RuntimeStreams::streams) on the runtime)
/// returns a handle of it, and every handle of one runtime shares its default stream,
/// its streams' errors and its pool of worker streams. It is a cheap handle (`Clone`).
///
/// - [`Streams::create_stream`] makes a named [`Stream`]; [`Streams::default_stream`]
///   is the runtime's stream that always exists (an ordinary stream: it does not
///   implicitly synchronize with the others, unlike CUDA's legacy default stream).
/// - [`Streams::synchronize`] waits for *every* task of the runtime — on every
///   stream, on none, submitted by anyone — then reports the first error of the
///   runtime's streams (quadrants' `qd.sync()` waited only for the default stream;
///   this does not).
/// - [`Streams::stream_parallel`] and [`Streams::parallel`] fork work onto worker
///   streams and join it back; [`Streams::with_stream`] is the scoped stream.
///
/// ```
/// use taskweave_executor::Runtime;
/// use taskweave_streams::Streams;
///
/// let rt = Runtime::builder().workers(2).build();
/// let streams = Streams::new(&rt);
/// let a = streams.create_stream("a");
/// let _ = a.task(|| ()).name("on-a").submit_blocking();
/// let _ = streams.default_stream().task(|| ()).submit_blocking();
/// let _ = rt.task(|| ()).name("on-no-stream").submit_blocking();
/// streams.synchronize_blocking().unwrap(); // all three have finished
/// assert!(a.query() && streams.default_stream().query());
/// // One stream layer per runtime: the same default stream through any handle.
/// assert!(Streams::new(&rt).default_stream().same_stream(streams.default_stream()));
/// ```
#[derive(Clone)]
pub struct Streams {
    default_stream: Stream,
    state: Arc<StreamsState>,
}

/// The runtime's stream layer, kept in the runtime ([`Runtime::extension`]). It must
/// not hold a `Runtime` (that would be a cycle keeping the runtime alive), so it keeps
/// lanes; handles pair them with a runtime.
struct StreamsState {
    default_lane: Arc<Lane<OnRuntime>>,
    /// Lanes made by `create_stream` (and the default one), for runtime-wide errors.
    registry: Mutex<Vec<Weak<Lane<OnRuntime>>>>,
    /// Idle worker lanes for `stream_parallel`.
    pool: Mutex<Vec<Arc<Lane<OnRuntime>>>>,
    /// Numbers the names of worker and scoped streams.
    next_number: AtomicU64,
}

impl StreamsState {
    fn new() -> StreamsState {
        let default_lane = Arc::new(Lane::new(Arc::from("default")));
        let registry = vec![Arc::downgrade(&default_lane)];
        StreamsState {
            default_lane,
            registry: Mutex::new(registry),
            pool: Mutex::new(Vec::new()),
            next_number: AtomicU64::new(0),
        }
    }
}

impl Streams {
    /// The stream layer of `runtime` (created with its default stream, named
    /// `default`, on first use; later calls return handles of the same layer).
    pub fn new(runtime: &Runtime) -> Streams {
        let state = runtime.extension(StreamsState::new);
        Streams {
            default_stream: Stream::from_lane(runtime.clone(), Arc::clone(&state.default_lane)),
            state,
        }
    }

    /// The runtime the streams launch on.
    pub fn runtime(&self) -> &Runtime {
        self.default_stream.runtime()
    }

    /// The runtime's default stream (named `default`).
    pub fn default_stream(&self) -> &Stream {
        &self.default_stream
    }

    /// A new, empty stream named `name` (names need not be unique; they appear in
    /// errors and `Debug`).
    pub fn create_stream(&self, name: impl Into<Arc<str>>) -> Stream {
        let stream = Stream::new(self.runtime().clone(), name.into());
        let mut registry = lock(&self.state.registry);
        if registry.len() == registry.capacity() {
            // Forget dropped streams before growing (amortised O(1) per creation).
            registry.retain(|s| s.strong_count() > 0);
        }
        registry.push(Arc::downgrade(&stream.lane));
        drop(registry);
        stream
    }

    /// Waits until every task of the runtime submitted before the call has finished
    /// (on any stream or none), then until every stream made by
    /// [`Streams::create_stream`] (and the default stream) is idle. Resolves to the
    /// first of those streams' errors, in creation order.
    pub fn synchronize(&self) -> impl Future<Output = Result<(), StreamError>> + Send + 'static {
        let this = self.clone();
        async move {
            this.runtime().synchronize().await;
            let mut first = Ok(());
            for lane in this.live_lanes() {
                let name = Arc::clone(lane.name());
                let outcome = lane.snapshot().finished().await;
                if first.is_ok() {
                    first = outcome.map_err(|error| StreamError::new(name, error));
                }
            }
            first
        }
    }

    /// [`Streams::synchronize`] for non-async callers: blocks the calling thread.
    pub fn synchronize_blocking(&self) -> Result<(), StreamError> {
        self.runtime().block_on(self.synchronize())
    }

    fn live_lanes(&self) -> Vec<Arc<Lane<OnRuntime>>> {
        lock(&self.state.registry)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// A name `prefix-N`, unique among this runtime's worker and scoped streams.
    pub(crate) fn numbered_name(&self, prefix: &str) -> Arc<str> {
        let number = self.state.next_number.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{prefix}-{number}"))
    }

    /// An unnamed stream that is not registered (worker and scoped streams report
    /// their errors through their launch stream or their scope).
    pub(crate) fn unregistered_stream(&self, name: Arc<str>) -> Stream {
        Stream::new(self.runtime().clone(), name)
    }

    /// An idle worker stream from the pool, or a new one.
    pub(crate) fn take_worker(&self) -> Stream {
        if let Some(lane) = lock(&self.state.pool).pop() {
            return Stream::from_lane(self.runtime().clone(), lane);
        }
        self.unregistered_stream(self.numbered_name("worker"))
    }

    /// Gives a joined worker stream back to the pool, unless a handle of it is still
    /// held elsewhere (then it stays an ordinary stream of its holder).
    pub(crate) fn return_worker(&self, worker: Stream) {
        if Arc::strong_count(&worker.lane) == 1 {
            // The launch stream has joined its work, so the next fork that takes it
            // starts it afresh.
            worker.lane().reset();
            lock(&self.state.pool).push(worker.lane);
        }
    }
}

impl fmt::Debug for Streams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streams")
            .field("runtime", self.runtime())
            .field("default_stream", &self.default_stream)
            .field("pooled_workers", &lock(&self.state.pool).len())
            .finish()
    }
}

/// The runtime's stream layer, reached from the [`Runtime`] itself: its default
/// stream, and runtime-wide synchronize through [`Streams::synchronize`] (which waits
/// for every stream and every task, as does
/// [`Runtime::synchronize`](taskweave_executor::Runtime::synchronize) without the
/// streams' errors).
///
/// ```
/// use taskweave_executor::Runtime;
/// use taskweave_streams::RuntimeStreams;
///
/// let rt = Runtime::builder().workers(2).build();
/// let first = rt.default_stream().task(|| 1).submit_blocking();
/// // Another handle of the same default stream: this launch runs after `first`.
/// let second = rt.default_stream().task(|| 2).submit_blocking();
/// rt.synchronize_blocking(); // every task, on every stream
/// assert!(first.is_finished() && second.is_finished());
/// assert!(rt.streams().synchronize_blocking().is_ok()); // and the streams' errors
/// ```
pub trait RuntimeStreams {
    /// The runtime's stream layer (the same as [`Streams::new`]).
    fn streams(&self) -> Streams;

    /// The runtime's default stream: every call returns a handle of the same stream
    /// (as [`Streams::default_stream`]).
    fn default_stream(&self) -> Stream;
}

impl RuntimeStreams for Runtime {
    fn streams(&self) -> Streams {
        Streams::new(self)
    }

    fn default_stream(&self) -> Stream {
        let state = self.extension(StreamsState::new);
        Stream::from_lane(self.clone(), Arc::clone(&state.default_lane))
    }
}
