//! Process-wide state that task bodies reach through `'static` references, and the
//! check every workload ends with.
//!
//! Task bodies must be `'static`. Handing each one an `Arc` clone would add two
//! contended reference-count RMWs per task (clone on the orchestrator, drop on a
//! worker), a large part of the ~100 ns per task we measure; Taskflow's bodies
//! capture their counter by reference. So the counters live in statics and a lock
//! makes the runs of one process take turns (unit tests run in parallel threads).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Serialises runs: the statics below belong to the run holding this lock.
static RUN_LOCK: Mutex<()> = Mutex::new(());
/// Incremented by the task bodies of the current run.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Bodies that found a predecessor not yet finished (a dependency was not honoured).
static ORDER_VIOLATIONS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds the current run spent in [`untimed`] phases, which the measuring
/// loops subtract from the run's wall time (see [`take_untimed`]).
static UNTIMED_NS: AtomicU64 = AtomicU64::new(0);
/// Run number, so per-node marks need no reset between runs (see `LayeredGraph`).
static EPOCH: AtomicU32 = AtomicU32::new(0);
/// Per-column progress of the wavefront, grown on demand and never freed.
static COLUMNS: Mutex<&'static [ColumnProgress]> = Mutex::new(&[]);

/// The exclusive right to the process-wide counters for one workload run.
///
/// Created by [`begin`]; [`Run::check`] ends the run and verifies its result.
pub struct Run {
    _turn: MutexGuard<'static, ()>,
    epoch: u32,
}

/// Starts a run: waits for other runs in this process, resets the counters and
/// picks a fresh epoch.
pub fn begin() -> Run {
    let turn = RUN_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    COUNTER.store(0, Relaxed);
    ORDER_VIOLATIONS.store(0, Relaxed);
    // Epoch 0 is what fresh marks hold, so it never names a run.
    let mut epoch = EPOCH.fetch_add(1, Relaxed).wrapping_add(1);
    if epoch == 0 {
        epoch = EPOCH.fetch_add(1, Relaxed).wrapping_add(1);
    }
    Run { _turn: turn, epoch }
}

impl Run {
    /// The number of this run, to store in per-node marks.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Ends the run: panics unless `actual == expected` and no body saw an
    /// unfinished predecessor. Returns `actual` (for `black_box`).
    pub fn check(self, workload: &str, system: &str, expected: u64, actual: u64) -> u64 {
        let violations = ORDER_VIOLATIONS.load(Relaxed);
        assert!(
            actual == expected && violations == 0,
            "{workload} on {system}: expected {expected} task executions, counted {actual}; \
             {violations} tasks ran before one of their predecessors had finished"
        );
        actual
    }
}

/// Runs `phase` of a workload outside its measured time: the measuring loops
/// (the `report` child, the criterion bench) subtract the time spent here from the
/// run's wall time. For setup that must happen inside the workload function (e.g.
/// threads that wait for a go signal, so that the measured phase starts with
/// everything in place).
pub fn untimed<R>(phase: impl FnOnce() -> R) -> R {
    let started = std::time::Instant::now();
    let result = phase();
    UNTIMED_NS.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
    result
}

/// Takes (and resets) the time spent in [`untimed`] phases since the last call.
pub fn take_untimed() -> std::time::Duration {
    std::time::Duration::from_nanos(UNTIMED_NS.swap(0, Relaxed))
}

/// Body of a task whose only work is counting itself: one relaxed `fetch_add` on
/// a counter shared by all tasks (Taskflow's binary tree and async tasks).
pub fn count_task() {
    COUNTER.fetch_add(1, Relaxed);
}

/// Body of a task in a chain: `counter += 1` as a load and a store, not an RMW
/// (Taskflow's linear chain uses a plain `size_t`). Correct only if each task
/// happens-after the previous one, so a missing edge or fence shows as a lost
/// increment.
pub fn count_chained_task() {
    COUNTER.store(COUNTER.load(Relaxed) + 1, Relaxed);
}

/// The value counted by [`count_task`] and [`count_chained_task`] in this run.
pub fn counted() -> u64 {
    COUNTER.load(Relaxed)
}

/// Records that a body ran before one of its predecessors had finished.
pub fn order_violated() {
    ORDER_VIOLATIONS.fetch_add(1, Relaxed);
}

/// Taskflow's embarrassing-parallelism body: 32 rounds of `sin`/`cos` on a value
/// derived from the task index, so the compiler cannot fold it.
pub fn sin_cos_work(index: u64) -> f64 {
    let mut x = (index.wrapping_mul(1_315_423_911) ^ (index >> 3)) as f64 + 1.0;
    let mut sink = 0.0;
    for _ in 0..32 {
        x = x.sin() * 1.000_000_1 + x.cos();
        sink += x;
    }
    sink
}

/// Body of an embarrassingly parallel task: [`sin_cos_work`], then [`count_task`].
pub fn sin_cos_task(index: u64) {
    std::hint::black_box(sin_cos_work(index));
    count_task();
}

/// How many rows of one wavefront column have finished; padded to a cache line so
/// that neighbouring columns, which run concurrently, do not share one.
#[repr(align(64))]
pub struct ColumnProgress(AtomicU32);

/// `columns` zeroed progress counters for a wavefront run (reused between runs).
pub fn wavefront_columns(columns: usize) -> &'static [ColumnProgress] {
    let mut shared = COLUMNS.lock().unwrap_or_else(PoisonError::into_inner);
    if shared.len() < columns {
        // Leaked on purpose: bodies of earlier runs may hold `'static` references to
        // the old buffer; growth happens once per size, so the leak is bounded.
        let grown: Box<[ColumnProgress]> = (0..columns)
            .map(|_| ColumnProgress(AtomicU32::new(0)))
            .collect();
        *shared = Box::leak(grown);
    }
    let columns = &shared[..columns];
    for column in columns {
        column.0.store(0, Relaxed);
    }
    columns
}

/// Body of wavefront block `(row, column)`: checks that `(row - 1, column)` and
/// `(row, column - 1)` have finished, then marks itself finished. Two relaxed loads
/// and a store, next to Taskflow's `return i + j`.
pub fn wavefront_block(columns: &[ColumnProgress], row: u32, column: u32) {
    let column = column as usize;
    let above_done = columns[column].0.load(Relaxed) == row;
    let left_done = column == 0 || columns[column - 1].0.load(Relaxed) > row;
    if !(above_done && left_done) {
        order_violated();
    }
    columns[column].0.store(row + 1, Relaxed);
}

/// Blocks finished in a wavefront run over `columns`.
pub fn wavefront_blocks_done(columns: &[ColumnProgress]) -> u64 {
    columns.iter().map(|c| u64::from(c.0.load(Relaxed))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wavefront_check_accepts_row_major_order_and_rejects_skips() {
        let run = begin();
        let columns = wavefront_columns(3);
        for row in 0..2 {
            for column in 0..3 {
                wavefront_block(columns, row, column);
            }
        }
        assert_eq!(wavefront_blocks_done(columns), 6);
        run.check("test", "seq", 6, wavefront_blocks_done(columns));

        let run = begin();
        let columns = wavefront_columns(3);
        wavefront_block(columns, 0, 1); // (0, 0) has not run
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.check("test", "seq", 1, wavefront_blocks_done(columns))
        }));
        assert!(outcome.is_err());
    }
}
