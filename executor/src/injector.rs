//! The injector: ready tasks pushed from outside the workers (a submitter's thread,
//! a task re-queued after a wake), for any worker to take.
//!
//! A bounded ring of slot indices (D. Vyukov's bounded MPMC queue) as large as the
//! task window rounded up to a power of two. A ready task is queued at most once
//! (in one worker's deque, or here: R4 in `task/mod.rs`), so the ring does not
//! fill; a push that finds it full anyway goes to an overflow list under a lock (a
//! cold path, exercised by this file's tests and by the loom model of a two-cell
//! ring).
//!
//! It replaced `crossbeam_deque::Injector`, whose unbounded list allocates a block
//! per 63 pushes on the pusher's thread and frees it on the worker's: in
//! `submit_cost_5` that churn contended on the allocator's lock (thousands of
//! futex calls per million tasks on either side). The ring allocates once, at
//! start.
//!
//! # Protocol
//!
//! Positions `head` (next to take) and `tail` (next to fill) count up forever
//! (64 bits). The cell of position `p` is `cells[p % capacity]`; its word holds a
//! *stamp* (high 32 bits) and a slot index (low 32). The stamp says whose turn the
//! cell is, compared with `p` modulo 2^32 (positions of one cell differ by
//! multiples of the capacity, at most 2^20 here):
//! - stamp `p`: free for the producer of position `p`;
//! - stamp `p + 1`: holds the index pushed at `p`, for the consumer of `p`;
//! - stamp `p + capacity`: taken, free for the producer of the next lap.
//!
//! I1. A producer claims position `p` by moving `tail` from `p` to `p + 1`, only
//!     after seeing the cell's stamp `p`; a consumer claims `p` by moving `head`,
//!     only after seeing stamp `p + 1`. So each position has one producer and one
//!     consumer, and the cell is written by one of them at a time.
//! I2. The producer publishes index and stamp `p + 1` in one Release store; the
//!     consumer's Acquire load of that word is what makes the index its own. The
//!     consumer hands the cell back with stamp `p + capacity` (Release), which the
//!     next lap's producer loads (Acquire) before it claims.
//! I3. `tail` moves before the cell is published: a consumer that sees `tail`
//!     beyond a cell still stamped for its producer reports `Retry` (work is coming,
//!     as `crossbeam_deque` does), never `Empty`.
//! I4. The sleep protocol (`crate::sleep`) needs only that a push's move of `tail`
//!     precede the pusher's SeqCst fence, and that a worker's last look read
//!     `head` and `tail` after its own: both hold with Relaxed operations on them.

use std::collections::VecDeque;

use crossbeam_deque::{Steal, Worker};

use crate::shared::Padded;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};

/// Most indices one [`Injector::steal_batch_and_pop`] takes at once (as in
/// `crossbeam_deque`).
const MAX_BATCH: usize = 32;

/// The queue of ready tasks pushed from outside the workers: see the module docs.
pub(crate) struct Injector {
    /// Next position to take.
    head: Padded<AtomicU64>,
    /// Next position to fill.
    tail: Padded<AtomicU64>,
    /// Stamp (high 32 bits) and slot index (low 32) of each cell.
    cells: Box<[AtomicU64]>,
    /// `cells.len() - 1` (the length is a power of two).
    mask: u64,
    /// Pushes that found the ring full.
    overflow: Mutex<VecDeque<u32>>,
    /// `overflow`'s length, changed under its lock: it lets `is_empty`, `len` and
    /// a steal that found the ring empty look without taking the lock (workers do
    /// on every look for work; the list is almost always empty).
    overflowed: AtomicUsize,
}

/// The word of a cell stamped `stamp` holding `index`.
#[inline(always)]
fn word(stamp: u64, index: u32) -> u64 {
    (stamp as u32 as u64) << 32 | u64::from(index)
}

/// How far the stamp of `word` is ahead of `expected` (negative: behind), modulo
/// 2^32.
#[inline(always)]
fn lead(word: u64, expected: u64) -> i32 {
    ((word >> 32) as u32).wrapping_sub(expected as u32) as i32
}

impl Injector {
    /// An empty injector for a window of `window` slots.
    pub(crate) fn new(window: usize) -> Self {
        let capacity = window.max(2).next_power_of_two();
        Injector {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            // Every cell free for the producer of its first lap.
            cells: (0..capacity as u64)
                .map(|p| AtomicU64::new(word(p, 0)))
                .collect(),
            mask: capacity as u64 - 1,
            overflow: Mutex::new(VecDeque::new()),
            overflowed: AtomicUsize::new(0),
        }
    }

    fn cell(&self, position: u64) -> &AtomicU64 {
        &self.cells[(position & self.mask) as usize]
    }

    /// Queues `index`.
    #[inline]
    pub(crate) fn push(&self, index: u32) {
        let mut position = self.tail.load(Ordering::Relaxed);
        loop {
            let cell = self.cell(position);
            // Acquire: pairs with the Release of the consumer that handed the cell
            // back (I2), so its read of the old index is done before we overwrite.
            let seen = cell.load(Ordering::Acquire);
            match lead(seen, position) {
                0 => match self.tail.compare_exchange_weak(
                    position,
                    position + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // Position claimed (I1): publish the index to its consumer.
                        cell.store(word(position + 1, index), Ordering::Release);
                        return;
                    }
                    Err(now) => position = now,
                },
                // The cell still holds (or is being emptied of) the previous lap's
                // index: the ring is full.
                lead if lead < 0 => return self.push_overflow(index),
                // Another producer took this position: look again.
                _ => position = self.tail.load(Ordering::Relaxed),
            }
        }
    }

    /// [`Injector::push`] when the ring is full: not expected (see the module docs).
    #[cold]
    fn push_overflow(&self, index: u32) {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        overflow.push_back(index);
        self.overflowed.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes an index queued in the overflow list, if any.
    #[cold]
    fn pop_overflow(&self) -> Option<u32> {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        let index = overflow.pop_front()?;
        self.overflowed.fetch_sub(1, Ordering::Relaxed);
        Some(index)
    }

    /// Takes one index, and moves up to half of the rest (at most [`MAX_BATCH`] in
    /// all) to `local`, with one claim of their positions.
    pub(crate) fn steal_batch_and_pop(&self, local: &Worker<u32>) -> Steal<u32> {
        let mut batch = [0u32; MAX_BATCH];
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let queued = self.tail.load(Ordering::Relaxed).wrapping_sub(head);
            if queued == 0 || queued > self.mask + 1 {
                // Empty (or `head` is stale and moved past `tail`: look again).
                let now = self.head.load(Ordering::Relaxed);
                if now != head {
                    head = now;
                    continue;
                }
                return match self.overflowed.load(Ordering::Relaxed) {
                    0 => Steal::Empty,
                    _ => self.pop_overflow().map_or(Steal::Retry, Steal::Success),
                };
            }
            // Half of what is queued, rounded up: the other workers get the rest.
            let want = queued.div_ceil(2).min(MAX_BATCH as u64) as usize;
            let mut ready = 0;
            while ready < want {
                let position = head + ready as u64;
                // Acquire: pairs with the producer's publishing store (I2).
                let seen = self.cell(position).load(Ordering::Acquire);
                if lead(seen, position + 1) != 0 {
                    break;
                }
                batch[ready] = seen as u32;
                ready += 1;
            }
            if ready == 0 {
                // The first cell is not published yet: its producer is between its
                // claim and its store (I3), or `head` is stale.
                let now = self.head.load(Ordering::Relaxed);
                if now != head {
                    head = now;
                    continue;
                }
                return Steal::Retry;
            }
            match self.head.compare_exchange_weak(
                head,
                head + ready as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Positions claimed (I1): the indices read above are ours (no
                    // producer writes a cell before it is handed back). Hand the
                    // cells back to the next lap's producers.
                    let lap = self.mask + 1;
                    for at in 0..ready as u64 {
                        let position = head + at;
                        self.cell(position)
                            .store(word(position + lap, 0), Ordering::Release);
                    }
                    for &index in &batch[1..ready] {
                        local.push(index);
                    }
                    return Steal::Success(batch[0]);
                }
                Err(now) => head = now,
            }
        }
    }

    /// Whether nothing is queued (I4: a look that follows a SeqCst fence sees every
    /// push that preceded the pusher's).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed) == self.tail.load(Ordering::Relaxed)
            && self.overflowed.load(Ordering::Relaxed) == 0
    }

    /// Indices queued (a snapshot, for the monitor).
    pub(crate) fn len(&self) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        (tail.saturating_sub(head) as usize) + self.overflowed.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(taskweave_loom)))]
mod tests {
    use super::*;

    fn pop(injector: &Injector, local: &Worker<u32>) -> Option<u32> {
        local.pop().or_else(|| {
            loop {
                match injector.steal_batch_and_pop(local) {
                    Steal::Success(index) => break Some(index),
                    Steal::Empty => break None,
                    Steal::Retry => {}
                }
            }
        })
    }

    #[test]
    fn takes_every_index_once_in_order_over_many_laps() {
        let injector = Injector::new(4);
        let local = Worker::new_fifo();
        let mut next = 0;
        for round in 0..100u32 {
            let pushed = round % 5;
            for k in 0..pushed {
                injector.push(round * 10 + k);
            }
            assert_eq!(injector.len(), pushed as usize);
            for k in 0..pushed {
                assert_eq!(pop(&injector, &local), Some(round * 10 + k));
                next += 1;
            }
            assert!(injector.is_empty());
            assert_eq!(pop(&injector, &local), None);
        }
        assert_eq!(next, 200);
    }

    #[test]
    fn a_steal_takes_half_of_what_is_queued_into_the_local_queue() {
        let injector = Injector::new(16);
        let local = Worker::new_fifo();
        for index in 0..10 {
            injector.push(index);
        }
        assert!(matches!(
            injector.steal_batch_and_pop(&local),
            Steal::Success(0)
        ));
        assert_eq!(local.len(), 4);
        assert_eq!(injector.len(), 5);
    }

    #[test]
    fn a_full_ring_overflows_and_loses_nothing() {
        let injector = Injector::new(2);
        let local = Worker::new_fifo();
        for index in 0..7 {
            injector.push(index);
        }
        assert_eq!(injector.len(), 7);
        assert_eq!(injector.overflowed.load(Ordering::Relaxed), 5);
        let mut taken: Vec<u32> = std::iter::from_fn(|| pop(&injector, &local)).collect();
        taken.sort_unstable();
        assert_eq!(taken, (0..7).collect::<Vec<_>>());
        assert!(injector.is_empty());
        // The ring is usable again.
        injector.push(42);
        assert_eq!(pop(&injector, &local), Some(42));
    }

    #[test]
    fn producers_and_consumers_on_threads_take_every_index_once() {
        const PER_PRODUCER: u32 = 50_000;
        let injector = Injector::new(64);
        let taken = std::sync::Mutex::new(Vec::new());
        let remaining = AtomicUsize::new(2 * PER_PRODUCER as usize);
        std::thread::scope(|s| {
            for producer in 0..2u32 {
                let injector = &injector;
                s.spawn(move || {
                    for k in 0..PER_PRODUCER {
                        injector.push(producer * PER_PRODUCER + k);
                    }
                });
            }
            for _ in 0..2 {
                let (injector, taken, remaining) = (&injector, &taken, &remaining);
                s.spawn(move || {
                    let local = Worker::new_fifo();
                    let mut mine = Vec::new();
                    while remaining.load(Ordering::Relaxed) > 0 {
                        if let Some(index) = pop(injector, &local) {
                            mine.push(index);
                            remaining.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    taken.lock().unwrap().extend(mine);
                });
            }
        });
        let mut taken = taken.into_inner().unwrap();
        taken.sort_unstable();
        assert_eq!(taken, (0..2 * PER_PRODUCER).collect::<Vec<_>>());
    }
}
