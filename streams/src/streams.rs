//! `Streams`: the stream layer of one runtime — its default stream, stream creation,
//! the pool of worker streams, and runtime-wide synchronize.

use std::fmt;
use std::future::Future;

use taskweave_executor::Runtime;

use crate::error::StreamError;
use crate::stream::{Stream, StreamShared};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, Weak, lock};

/// The stream layer of a [`Runtime`]: create one per runtime and share it (it is a
/// cheap handle, `Clone`).
///
/// - [`Streams::create_stream`] makes a named [`Stream`]; [`Streams::default_stream`]
///   is the stream that always exists (an ordinary stream: it does not implicitly
///   synchronize with the others, unlike CUDA's legacy default stream).
/// - [`Streams::synchronize`] waits for *every* task of the runtime — on every
///   stream, on none, submitted by anyone — then reports the first error of the
///   streams created here (quadrants' `qd.sync()` waited only for the default stream;
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
/// ```
#[derive(Clone)]
pub struct Streams {
    shared: Arc<StreamsShared>,
}

struct StreamsShared {
    runtime: Runtime,
    default_stream: Stream,
    /// Streams made by `create_stream` (and the default one), for runtime-wide errors.
    registry: Mutex<Vec<Weak<StreamShared>>>,
    /// Idle worker streams for `stream_parallel`.
    pool: Mutex<Vec<Stream>>,
    /// Numbers the names of worker and scoped streams.
    next_number: AtomicU64,
}

impl Streams {
    /// The stream layer of `runtime`, with a fresh default stream named `default`.
    pub fn new(runtime: &Runtime) -> Streams {
        let default_stream = Stream::new(runtime.clone(), Arc::from("default"));
        let registry = vec![Arc::downgrade(&default_stream.shared)];
        Streams {
            shared: Arc::new(StreamsShared {
                runtime: runtime.clone(),
                default_stream,
                registry: Mutex::new(registry),
                pool: Mutex::new(Vec::new()),
                next_number: AtomicU64::new(0),
            }),
        }
    }

    /// The runtime the streams launch on.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// The runtime's default stream (named `default`).
    pub fn default_stream(&self) -> &Stream {
        &self.shared.default_stream
    }

    /// A new, empty stream named `name` (names need not be unique; they appear in
    /// errors and `Debug`).
    pub fn create_stream(&self, name: impl Into<Arc<str>>) -> Stream {
        let stream = Stream::new(self.shared.runtime.clone(), name.into());
        let mut registry = lock(&self.shared.registry);
        if registry.len() == registry.capacity() {
            // Forget dropped streams before growing (amortised O(1) per creation).
            registry.retain(|s| s.strong_count() > 0);
        }
        registry.push(Arc::downgrade(&stream.shared));
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
            this.shared.runtime.synchronize().await;
            let mut first = Ok(());
            for stream in this.live_streams() {
                let outcome = stream.synchronize().await;
                if first.is_ok() {
                    first = outcome;
                }
            }
            first
        }
    }

    /// [`Streams::synchronize`] for non-async callers: blocks the calling thread.
    pub fn synchronize_blocking(&self) -> Result<(), StreamError> {
        self.shared.runtime.block_on(self.synchronize())
    }

    fn live_streams(&self) -> Vec<Stream> {
        lock(&self.shared.registry)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|shared| Stream { shared })
            .collect()
    }

    /// A name `prefix-N`, unique among this layer's worker and scoped streams.
    pub(crate) fn numbered_name(&self, prefix: &str) -> Arc<str> {
        let number = self.shared.next_number.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{prefix}-{number}"))
    }

    /// An unnamed stream that is not registered (worker and scoped streams report
    /// their errors through their launch stream or their scope).
    pub(crate) fn unregistered_stream(&self, name: Arc<str>) -> Stream {
        Stream::new(self.shared.runtime.clone(), name)
    }

    /// An idle worker stream from the pool, or a new one.
    pub(crate) fn take_worker(&self) -> Stream {
        if let Some(worker) = lock(&self.shared.pool).pop() {
            return worker;
        }
        self.unregistered_stream(self.numbered_name("worker"))
    }

    /// Gives a joined worker stream back to the pool, unless a handle of it is still
    /// held elsewhere (then it stays an ordinary stream of its holder).
    pub(crate) fn return_worker(&self, worker: Stream) {
        if Arc::strong_count(&worker.shared) == 1 {
            // The launch stream has joined its work, so the next fork that takes it
            // starts it afresh.
            worker.lane().reset();
            lock(&self.shared.pool).push(worker);
        }
    }
}

impl fmt::Debug for Streams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streams")
            .field("runtime", &self.shared.runtime)
            .field("default_stream", &self.shared.default_stream)
            .field("pooled_workers", &lock(&self.shared.pool).len())
            .finish()
    }
}
