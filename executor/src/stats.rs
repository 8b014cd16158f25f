//! Counters: what the runtime has done, for `Runtime::stats()` and the watchdog.
//!
//! Each worker owns a padded [`WorkerState`] that only it writes (a relaxed load and
//! store, no RMW, no shared cache line); work done off the workers (submissions,
//! completions applied by other threads) goes to [`GlobalCounters`]. Timing is
//! sampled — one task in [`SAMPLE_EVERY`] — so the hot path pays for a clock read only
//! on sampled tasks.

use std::time::{Duration, Instant};

use crate::sync::{AtomicU64, Ordering};

/// One task in this many has its submit cost and ready→start latency timed.
pub(crate) const SAMPLE_EVERY: u64 = 64;

/// A single-writer counter: the owner adds with a load and a store.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's progress and counters, written only by that worker.
#[repr(align(128))]
pub(crate) struct WorkerState {
    /// Tasks polled plus completions drained, ever (the watchdog's progress).
    pub(crate) progress: Counter,
    /// Bits of the `TaskId` whose body the worker is polling, or `u64::MAX`.
    pub(crate) running: AtomicU64,
    pub(crate) polls: Counter,
    pub(crate) completed: Counter,
    pub(crate) failed: Counter,
    pub(crate) steals: Counter,
    pub(crate) parks: Counter,
    pub(crate) drains: Counter,
    pub(crate) drained: Counter,
    pub(crate) busy_ns: Counter,
    pub(crate) idle_ns: Counter,
}

impl WorkerState {
    pub(crate) fn new() -> Self {
        WorkerState {
            progress: Counter::default(),
            running: AtomicU64::new(u64::MAX),
            polls: Counter::default(),
            completed: Counter::default(),
            failed: Counter::default(),
            steals: Counter::default(),
            parks: Counter::default(),
            drains: Counter::default(),
            drained: Counter::default(),
            busy_ns: Counter::default(),
            idle_ns: Counter::default(),
        }
    }
}

/// Counters written by any thread (RMWs, off the workers' paths). Aligned to its own
/// cache lines: `submitted` is written on every submission, and sharing a line with
/// the fields workers read on every task (lifecycle, queues) cost 2-5x on a chain.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct GlobalCounters {
    pub(crate) submitted: AtomicU64,
    pub(crate) submit_samples: AtomicU64,
    pub(crate) submit_ns: AtomicU64,
    pub(crate) completed_elsewhere: AtomicU64,
    pub(crate) failed_elsewhere: AtomicU64,
    pub(crate) latency_samples: AtomicU64,
    pub(crate) latency_ns: AtomicU64,
}

/// A snapshot of what a runtime has done (see [`Runtime::stats`](crate::Runtime::stats)).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks submitted (accepted into the window).
    pub submitted: u64,
    /// Tasks that completed with an output.
    pub completed: u64,
    /// Tasks that failed (error, panic, failed dependency or token, stall, cancellation).
    pub failed: u64,
    /// Tasks submitted and not finished, counted in the window when the snapshot was taken.
    pub outstanding: u64,
    /// Mean cost of one submission (sampled), in nanoseconds.
    pub avg_submit_ns: f64,
    /// Mean time from a task becoming ready to its first poll (sampled), in nanoseconds.
    pub avg_ready_to_start_ns: f64,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Sleeping workers woken.
    pub unparks: u64,
}

/// One worker's share of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Task polls.
    pub polls: u64,
    /// Time spent running tasks and draining completions.
    pub busy: Duration,
    /// Time spent looking for work or asleep.
    pub idle: Duration,
    /// Tasks taken from other workers' queues.
    pub steals: u64,
    /// Times it went to sleep.
    pub parks: u64,
    /// Batches drained from the completion mailbox.
    pub mailbox_drains: u64,
    /// Completions it applied from the mailbox.
    pub mailbox_messages: u64,
}

impl Stats {
    /// Fraction of worker time spent busy, over all workers (0 when nothing ran).
    pub fn utilisation(&self) -> f64 {
        let busy: f64 = self.workers.iter().map(|w| w.busy.as_secs_f64()).sum();
        let idle: f64 = self.workers.iter().map(|w| w.idle.as_secs_f64()).sum();
        if busy + idle == 0.0 {
            0.0
        } else {
            busy / (busy + idle)
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tasks: {} submitted, {} completed, {} failed, {} outstanding",
            self.submitted, self.completed, self.failed, self.outstanding
        )?;
        writeln!(
            f,
            "costs: {:.0} ns per submit, {:.0} ns ready→start (sampled 1 in {SAMPLE_EVERY})",
            self.avg_submit_ns, self.avg_ready_to_start_ns
        )?;
        for (i, w) in self.workers.iter().enumerate() {
            writeln!(
                f,
                "worker {i}: {} polls, busy {:.1?}, idle {:.1?}, {} steals, {} parks, {} mailbox drains ({} completions)",
                w.polls, w.busy, w.idle, w.steals, w.parks, w.mailbox_drains, w.mailbox_messages
            )?;
        }
        write!(
            f,
            "unparks: {}, utilisation {:.0}%",
            self.unparks,
            100.0 * self.utilisation()
        )
    }
}

/// Nanoseconds since `epoch`, as stored in counters and slots.
pub(crate) fn nanos_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

fn mean(total: u64, samples: u64) -> f64 {
    if samples == 0 {
        0.0
    } else {
        total as f64 / samples as f64
    }
}

impl crate::shared::Shared {
    /// The snapshot behind `Runtime::stats`.
    pub(crate) fn stats(&self) -> Stats {
        let g = &self.counters;
        let workers: Vec<WorkerStats> = self
            .worker_states
            .iter()
            .map(|w| WorkerStats {
                polls: w.polls.get(),
                busy: Duration::from_nanos(w.busy_ns.get()),
                idle: Duration::from_nanos(w.idle_ns.get()),
                steals: w.steals.get(),
                parks: w.parks.get(),
                mailbox_drains: w.drains.get(),
                mailbox_messages: w.drained.get(),
            })
            .collect();
        let completed = self
            .worker_states
            .iter()
            .map(|w| w.completed.get())
            .sum::<u64>()
            + g.completed_elsewhere.load(Ordering::Relaxed);
        let failed = self
            .worker_states
            .iter()
            .map(|w| w.failed.get())
            .sum::<u64>()
            + g.failed_elsewhere.load(Ordering::Relaxed);
        Stats {
            submitted: g.submitted.load(Ordering::Relaxed),
            completed,
            failed,
            outstanding: self.count_open_tasks() as u64,
            avg_submit_ns: mean(
                g.submit_ns.load(Ordering::Relaxed),
                g.submit_samples.load(Ordering::Relaxed),
            ),
            avg_ready_to_start_ns: mean(
                g.latency_ns.load(Ordering::Relaxed),
                g.latency_samples.load(Ordering::Relaxed),
            ),
            workers,
            unparks: self.sleep.unparks.load(Ordering::Relaxed),
        }
    }
}
