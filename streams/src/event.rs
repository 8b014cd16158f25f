//! Events: a recorded point on one stream that other streams (or the host) wait for.

use std::fmt;
use std::future::Future;

use crate::backend::{Backend, OnRuntime};
use crate::error::StreamError;
use crate::lane::{Lane, Snapshot};
use crate::stream::Stream;
use crate::sync::{Arc, Mutex, lock};

/// An event's state: the point it was last recorded at (the ordering core behind
/// [`Event`], generic so the loom models can drive it).
pub struct EventCell<X: Backend> {
    recorded: Mutex<Option<Recorded<X>>>,
}

/// Where an event was recorded: the stream's name and its snapshot (L5).
pub struct Recorded<X: Backend> {
    /// The stream it was recorded on.
    pub stream: Arc<str>,
    /// That stream's point when it was recorded.
    pub point: Snapshot<X>,
}

impl<X: Backend> Clone for Recorded<X> {
    fn clone(&self) -> Self {
        Recorded {
            stream: Arc::clone(&self.stream),
            point: self.point.clone(),
        }
    }
}

impl<X: Backend> Default for EventCell<X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<X: Backend> EventCell<X> {
    /// A never-recorded event.
    pub fn new() -> Self {
        EventCell {
            recorded: Mutex::new(None),
        }
    }

    /// Records the event at `lane`'s current point, replacing any earlier record.
    pub fn record(&self, lane: &Lane<X>) {
        // L6: the lane's lock is released before the event's is taken.
        let recorded = Recorded {
            stream: Arc::clone(lane.name()),
            point: lane.snapshot(),
        };
        let previous = lock(&self.recorded).replace(recorded);
        // L4: points are dropped unlocked.
        drop(previous);
    }

    /// Makes `lane`'s next launch wait for the point the event was recorded at, as of
    /// now (a later record does not move this wait). Returns `false`, doing nothing,
    /// if the event was never recorded.
    pub fn wait_on(&self, lane: &Lane<X>) -> bool {
        // L6: the event's lock is released before the lane's is taken.
        let point = lock(&self.recorded).as_ref().map(|r| r.point.clone());
        match point {
            Some(point) => {
                lane.wait_for(point);
                true
            }
            None => false,
        }
    }

    /// The last record, if any.
    pub fn recorded(&self) -> Option<Recorded<X>> {
        lock(&self.recorded).clone()
    }
}

/// A point on a stream that other streams and the host can wait for (CUDA's
/// `cudaEvent_t`, quadrants' `qd.create_event()`).
///
/// [`Event::record`] marks the recording stream's current point: everything launched
/// on it so far (and whatever it was itself waiting for). [`Stream::wait_event`] makes
/// the waiting stream's later launches run after that point; the host waits with
/// [`Event::synchronize`] or polls with [`Event::query`].
///
/// - Recording again moves the event to the new point; a `wait_event` made before
///   keeps waiting for the old one.
/// - Waiting on an event that was never recorded is a no-op (as in CUDA), and so is
///   synchronizing on it.
/// - `Event` is a cheap handle (`Clone`); clones are the same event. Record and wait
///   may happen on different threads.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use taskweave_executor::Runtime;
/// use taskweave_streams::{Event, Streams};
///
/// let rt = Runtime::builder().workers(2).build();
/// let streams = Streams::new(&rt);
/// let (copy, compute) = (streams.create_stream("copy"), streams.create_stream("compute"));
/// let buffer = Arc::new(AtomicU64::new(0));
/// rt.block_on(async {
///     let b = buffer.clone();
///     let _ = copy.task(move || b.store(42, Ordering::Relaxed)).name("upload").await;
///     let uploaded = Event::new();
///     uploaded.record(&copy);
///     compute.wait_event(&uploaded);
///     let b = buffer.clone();
///     let read = compute.task(move || b.load(Ordering::Relaxed)).name("kernel").await;
///     assert_eq!(read.await.unwrap(), 42);
///     uploaded.synchronize().await.unwrap();
///     assert!(uploaded.query());
/// });
/// ```
#[derive(Clone, Default)]
pub struct Event {
    cell: Arc<EventCell<OnRuntime>>,
}

impl Event {
    /// A new, never-recorded event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Records the event at `stream`'s current point (everything launched on it so
    /// far), replacing any earlier record. Never blocks.
    pub fn record(&self, stream: &Stream) {
        self.cell.record(stream.lane());
    }

    /// Whether the event has been recorded.
    pub fn is_recorded(&self) -> bool {
        self.cell.recorded().is_some()
    }

    /// Whether the recorded point has been reached: every task it covers has
    /// finished. `true` for a never-recorded event.
    pub fn query(&self) -> bool {
        self.cell
            .recorded()
            .is_none_or(|recorded| recorded.point.is_finished())
    }

    /// Waits until the point recorded *now* has been reached. Resolves to the first
    /// failure among the tasks it covers (named after the recording stream);
    /// `Ok(())` at once for a never-recorded event.
    pub fn synchronize(&self) -> impl Future<Output = Result<(), StreamError>> + Send + 'static {
        let recorded = self.cell.recorded();
        async move {
            match recorded {
                None => Ok(()),
                Some(Recorded { stream, point }) => point
                    .finished()
                    .await
                    .map_err(|error| StreamError::new(stream, error)),
            }
        }
    }

    /// [`Event::synchronize`] for non-async callers: blocks the calling thread. Do not
    /// call it from inside a task body whose worker the recorded work needs.
    pub fn synchronize_blocking(&self) -> Result<(), StreamError> {
        futures::executor::block_on(self.synchronize())
    }

    pub(crate) fn cell(&self) -> &EventCell<OnRuntime> {
        &self.cell
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.recorded() {
            None => f.debug_struct("Event").field("recorded", &false).finish(),
            Some(recorded) => f
                .debug_struct("Event")
                .field("stream", &recorded.stream)
                .field("point", &recorded.point)
                .finish(),
        }
    }
}
