//! `stream_parallel`: fork work from a launch stream onto worker streams and join it
//! back, without blocking the caller.
//!
//! The two rules quadrants had to add after the fact are the whole protocol:
//!
//! - **Fork.** Every worker stream first waits for the launch stream's point at the
//!   fork (an event recorded there), so no branch races work launched before it.
//! - **Join.** The launch stream then waits for every worker stream's point at the
//!   join, so nothing launched on it afterwards races a branch.
//!
//! Both are waits added to lanes (rule L1); nobody blocks.

use std::fmt;
use std::future::Future;

use crate::backend::{Backend, OnRuntime};
use crate::lane::{Lane, Snapshot};
use crate::stream::Stream;
use crate::streams::Streams;

/// The fork point of a launch lane (the ordering core behind [`StreamParallel`]).
pub struct ForkPoint<X: Backend> {
    point: Snapshot<X>,
}

impl<X: Backend> ForkPoint<X> {
    /// Records the launch lane's current point.
    pub fn new(launch: &Lane<X>) -> Self {
        ForkPoint {
            point: launch.snapshot(),
        }
    }

    /// Fork: `worker`'s next launch waits for the fork point.
    pub fn start(&self, worker: &Lane<X>) {
        worker.wait_for(self.point.clone());
    }
}

/// Join: `launch`'s next launch waits for everything launched on `worker` so far.
pub fn join_into<X: Backend>(launch: &Lane<X>, worker: &Lane<X>) {
    launch.wait_for(worker.snapshot());
}

/// A fork in progress (see [`Streams::parallel`]): hands out worker streams that
/// start after the launch stream's point at the fork, and joins them back into the
/// launch stream when [joined](StreamParallel::join) or dropped.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use taskweave_executor::Runtime;
/// use taskweave_streams::Streams;
///
/// let rt = Runtime::builder().workers(2).build();
/// let streams = Streams::new(&rt);
/// let main = streams.create_stream("main");
/// let total = Arc::new(AtomicU64::new(0));
/// rt.block_on(async {
///     let t = total.clone();
///     let _ = main.task(move || t.store(100, Ordering::Relaxed)).name("init").await;
///     let mut fork = streams.parallel(&main);
///     let (copy, compute) = (fork.worker(), fork.worker()); // different kinds of work
///     let t = total.clone();
///     let _ = copy.task(move || t.fetch_add(1, Ordering::Relaxed)).await;
///     let t = total.clone();
///     let _ = compute.task(move || t.fetch_add(10, Ordering::Relaxed)).await;
///     fork.join(); // `main` waits for both; nothing blocks
///     let t = total.clone();
///     let sum = main.task(move || t.load(Ordering::Relaxed)).await;
///     assert_eq!(sum.await.unwrap(), 111);
/// });
/// ```
#[must_use = "a fork joins its workers when it is dropped"]
pub struct StreamParallel {
    streams: Streams,
    launch: Stream,
    fork: ForkPoint<OnRuntime>,
    workers: Vec<Stream>,
}

impl StreamParallel {
    /// The stream the work was forked from (and is joined back into).
    pub fn launch_stream(&self) -> &Stream {
        &self.launch
    }

    /// A worker stream (from the pool) whose first launch waits for the launch
    /// stream's point at the fork. Launches on it run in order, concurrently with
    /// the other workers. Launch the branch's work before the join: launches made on
    /// a worker after the join are not part of it.
    pub fn worker(&mut self) -> Stream {
        let worker = self.streams.take_worker();
        self.fork.start(worker.lane());
        self.workers.push(worker.clone());
        worker
    }

    /// Joins: the launch stream's later launches wait for everything launched on the
    /// workers, and the workers go back to the pool. Never blocks. (Dropping the
    /// `StreamParallel` does the same.)
    pub fn join(self) {}
}

impl Drop for StreamParallel {
    fn drop(&mut self) {
        for worker in self.workers.drain(..) {
            join_into(self.launch.lane(), worker.lane());
            self.streams.return_worker(worker);
        }
    }
}

impl fmt::Debug for StreamParallel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamParallel")
            .field("launch", &self.launch.name())
            .field(
                "workers",
                &self.workers.iter().map(Stream::name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Streams {
    /// Forks from `launch`: the returned [`StreamParallel`] hands out worker streams
    /// ordered after everything launched on `launch` so far, and joins them back into
    /// `launch` when joined or dropped. Launches made on `launch` during the fork run
    /// concurrently with the workers (the fork point is fixed now).
    pub fn parallel(&self, launch: &Stream) -> StreamParallel {
        StreamParallel {
            streams: self.clone(),
            launch: launch.clone(),
            fork: ForkPoint::new(launch.lane()),
            workers: Vec::new(),
        }
    }

    /// Runs each branch with its own worker stream (quadrants' `qd.stream_parallel()`):
    /// the branches' launches on a worker run in order, after everything launched on
    /// `launch` so far; the workers run concurrently; and `launch`'s later launches
    /// wait for every branch. Resolves to the branches' outputs, in order, as soon as
    /// they have *launched* their work: the caller never waits for the work itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use taskweave_executor::Runtime;
    /// use taskweave_streams::Streams;
    ///
    /// let rt = Runtime::builder().workers(2).build();
    /// let streams = Streams::new(&rt);
    /// let main = streams.default_stream();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// rt.block_on(async {
    ///     let branches = (0..3).map(|b| {
    ///         let log = log.clone();
    ///         move |worker: taskweave_streams::Stream| async move {
    ///             for step in 0..4 {
    ///                 let log = log.clone();
    ///                 let _ = worker.task(move || log.lock().unwrap().push((b, step))).await;
    ///             }
    ///             worker.name().to_owned()
    ///         }
    ///     });
    ///     let names = streams.stream_parallel(main, branches).await;
    ///     assert_eq!(names.len(), 3);
    ///     let log2 = log.clone();
    ///     let after = main.task(move || log2.lock().unwrap().len()).await;
    ///     assert_eq!(after.await.unwrap(), 12); // joined: every branch step ran
    /// });
    /// let log = log.lock().unwrap();
    /// for b in 0..3 {
    ///     let steps: Vec<_> = log.iter().filter(|(x, _)| *x == b).map(|(_, s)| *s).collect();
    ///     assert_eq!(steps, vec![0, 1, 2, 3]); // in order on each worker
    /// }
    /// ```
    pub async fn stream_parallel<I, F, Fut>(&self, launch: &Stream, branches: I) -> Vec<Fut::Output>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(Stream) -> Fut,
        Fut: Future,
    {
        let mut fork = self.parallel(launch);
        let branches: Vec<Fut> = branches
            .into_iter()
            .map(|branch| branch(fork.worker()))
            .collect();
        let outputs = futures::future::join_all(branches).await;
        fork.join();
        outputs
    }
}
