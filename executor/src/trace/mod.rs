//! Recording a run for a Chrome / Perfetto trace (feature `trace`).
//!
//! With the feature off, [`Tracer`] is a zero-sized type whose methods do nothing and
//! whose `enabled()` is a constant `false`, so the hooks in the hot paths compile
//! away. With it on, recording is switched on and off at run time
//! ([`Runtime::start_trace`](crate::Runtime::start_trace)); while it is off each hook
//! costs one relaxed load.
//!
//! What is recorded: per task its name, submission time and dependencies (by the
//! submitting thread); per poll its worker, start and end (by the worker); the time
//! the task became ready; the ready-queue depth (sampled by the monitor thread); and
//! spans on custom lanes such as device cores.
//!
//! Cost while recording: a clock stamp per event ([`clock`]: the CPU's counter where
//! it is a clock), a compact fixed-size record per task and per poll ([`record`]: no
//! allocation per task), written into the recording thread's own buffer — one per
//! worker, one for other threads, each behind its own uncontended lock on its own
//! cache line.

#[cfg(feature = "trace")]
mod chunked;
#[cfg(feature = "trace")]
mod clock;
#[cfg(feature = "trace")]
mod export;
#[cfg(feature = "trace")]
mod record;

#[cfg(feature = "trace")]
pub(crate) use enabled::*;
#[cfg(feature = "trace")]
pub use export::{LaneSpan, PollRecord, Polls, TaskRecord, Tasks, Trace};

#[cfg(not(feature = "trace"))]
pub(crate) use disabled::*;

#[cfg(not(feature = "trace"))]
mod disabled {
    use std::borrow::Cow;

    use crate::task::TaskId;

    /// Recording compiled out: every method is a no-op.
    pub(crate) struct Tracer;

    impl Tracer {
        pub(crate) fn new(_workers: usize, _epoch: std::time::Instant) -> Self {
            Tracer
        }
        #[inline(always)]
        pub(crate) fn enabled(&self) -> bool {
            false
        }
        #[inline(always)]
        pub(crate) fn stamp(&self) -> u64 {
            0
        }
        #[inline(always)]
        pub(crate) fn stamp_ordered(&self) -> u64 {
            0
        }
        #[inline(always)]
        pub(crate) fn ready_stamp(&self) -> u64 {
            0
        }
        #[inline(always)]
        pub(crate) fn as_ready_stamp(&self, _stamp: u64) -> u64 {
            0
        }
        #[inline(always)]
        pub(crate) fn elapsed_since_ready(&self, _ready_at: u64) -> Option<u64> {
            None
        }
        #[inline(always)]
        pub(crate) fn submitted(
            &self,
            _worker: Option<usize>,
            _id: TaskId,
            _name: &Option<Cow<'static, str>>,
            _deps: &[TaskId],
            _at: u64,
        ) {
        }
        #[inline(always)]
        pub(crate) fn polled(
            &self,
            _worker: Option<usize>,
            _id: TaskId,
            _ready: u64,
            _start: u64,
            _end: u64,
        ) {
        }
        #[inline(always)]
        pub(crate) fn queue_depth(&self, _at: u64, _depth: usize) {}
    }
}

#[cfg(feature = "trace")]
mod enabled {
    use std::borrow::Cow;
    use std::time::Instant;

    use super::clock::{Anchor, Clock};
    use super::export::{LaneSpan, Trace};
    use super::record::{Buffer, STAMPED};
    use crate::shared::Padded;
    use crate::sync::{AtomicBool, Mutex, Ordering};
    use crate::task::TaskId;

    /// The recorder of one runtime.
    pub(crate) struct Tracer {
        on: Padded<AtomicBool>,
        epoch: Instant,
        clock: Clock,
        /// Taken by `start`, paired with one taken by `stop` to convert stamps.
        started: Mutex<Anchor>,
        /// One buffer per worker (only its worker writes), then one for other threads.
        threads: Box<[Padded<Mutex<Buffer>>]>,
        lanes: Mutex<Vec<LaneSpan>>,
        queue_depth: Mutex<Vec<(u64, usize)>>,
    }

    fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl Tracer {
        pub(crate) fn new(workers: usize, epoch: Instant) -> Self {
            Tracer {
                on: Padded(AtomicBool::new(false)),
                epoch,
                clock: Clock::new(epoch),
                started: Mutex::new(Anchor::default()),
                threads: (0..=workers)
                    .map(|_| Padded(Mutex::new(Buffer::default())))
                    .collect(),
                lanes: Mutex::new(Vec::new()),
                queue_depth: Mutex::new(Vec::new()),
            }
        }

        #[inline]
        pub(crate) fn enabled(&self) -> bool {
            self.on.0.load(Ordering::Relaxed)
        }

        /// A raw clock stamp, for `submitted` and `polled`.
        #[inline]
        pub(crate) fn stamp(&self) -> u64 {
            self.clock.stamp()
        }

        /// A raw clock stamp that follows everything this thread has observed, for a
        /// poll's start.
        #[inline]
        pub(crate) fn stamp_ordered(&self) -> u64 {
            self.clock.stamp_ordered()
        }

        /// The value a slot's `ready_at` gets while recording: a stamp, marked as one.
        #[inline]
        pub(crate) fn ready_stamp(&self) -> u64 {
            STAMPED | self.clock.stamp()
        }

        /// `stamp` (from [`Tracer::stamp`]) as a [`Tracer::ready_stamp`].
        #[inline]
        pub(crate) fn as_ready_stamp(&self, stamp: u64) -> u64 {
            STAMPED | stamp
        }

        /// Nanoseconds since `ready_at` if it is a [`Tracer::ready_stamp`] (`None`:
        /// it is nanoseconds since the epoch).
        pub(crate) fn elapsed_since_ready(&self, ready_at: u64) -> Option<u64> {
            (ready_at & STAMPED != 0).then(|| self.clock.elapsed_ns(ready_at & !STAMPED))
        }

        pub(crate) fn ns_of(&self, at: Instant) -> u64 {
            at.saturating_duration_since(self.epoch).as_nanos() as u64
        }

        pub(crate) fn start(&self) {
            let _ = self.take();
            *lock(&self.started) = self.clock.anchor();
            self.on.0.store(true, Ordering::SeqCst);
        }

        pub(crate) fn stop(&self) -> Trace {
            self.on.0.store(false, Ordering::SeqCst);
            self.take()
        }

        fn take(&self) -> Trace {
            let calibration = self
                .clock
                .calibrate(*lock(&self.started), self.clock.anchor());
            Trace {
                threads: self
                    .threads
                    .iter()
                    .map(|buffer| std::mem::take(&mut *lock(&buffer.0)))
                    .collect(),
                calibration,
                lanes: std::mem::take(&mut *lock(&self.lanes)),
                queue_depth: std::mem::take(&mut *lock(&self.queue_depth)),
            }
        }

        fn buffer(&self, worker: Option<usize>) -> &Mutex<Buffer> {
            &self.threads[worker.unwrap_or(self.threads.len() - 1)].0
        }

        /// Records a submission by `worker` (`None`: another thread) at stamp `at`.
        pub(crate) fn submitted(
            &self,
            worker: Option<usize>,
            id: TaskId,
            name: &Option<Cow<'static, str>>,
            deps: &[TaskId],
            at: u64,
        ) {
            if self.enabled() {
                lock(self.buffer(worker)).push_task(id, name, deps, at);
            }
        }

        /// Records a poll by `worker` from stamp `start` to `end` of a task whose
        /// slot said it was ready at `ready` (its `ready_at`: 0, a
        /// [`Tracer::ready_stamp`], or nanoseconds since the epoch).
        pub(crate) fn polled(
            &self,
            worker: Option<usize>,
            id: TaskId,
            ready: u64,
            start: u64,
            end: u64,
        ) {
            lock(self.buffer(worker)).push_poll(id, ready, start, end);
        }

        /// Records a ready-queue depth sample (`at`: ns since the epoch).
        pub(crate) fn queue_depth(&self, at: u64, depth: usize) {
            if self.enabled() {
                lock(&self.queue_depth).push((at, depth));
            }
        }

        pub(crate) fn lane_span(
            &self,
            lane: Cow<'static, str>,
            name: Cow<'static, str>,
            start: Instant,
            end: Instant,
        ) {
            if self.enabled() {
                let span = LaneSpan {
                    lane,
                    name,
                    start_ns: self.ns_of(start),
                    end_ns: self.ns_of(end),
                };
                lock(&self.lanes).push(span);
            }
        }
    }
}
