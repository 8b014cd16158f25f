//! The completion mailbox: bounded multi-producer, single-consumer rings that carry
//! deferred completions from any thread (device cores, DMA engines, I/O callbacks) to
//! the scheduler, which drains it in batches (DESIGN.md §6).
//!
//! # Protocol
//!
//! Each cell has a sequence number. A producer claims position `p` with one
//! `fetch_add` on `tail`, waits until cell `p % N` has sequence `p` (the cell is free
//! for lap `p / N`), writes the message and publishes it by storing sequence `p + 1`
//! (Release). The one drainer (whoever holds `draining`) reads cells in order from
//! `head`: a cell whose sequence is `head + 1` holds the next message (Acquire pairs
//! with the producer's Release, so the payload is visible); it takes the message and
//! frees the cell for the next lap by storing sequence `head + N`.
//!
//! Messages of one producer keep their order (its claims are increasing), none is
//! lost or read twice (each position is claimed once and read once), and a full ring
//! makes producers wait — they never drop a message and never hold a lock while
//! waiting. A drainer that meets a claimed but unpublished cell stops its batch there.
//!
//! # Lanes
//!
//! The mailbox is a few such rings (*lanes*, 8 in a runtime) with one drainer for
//! all of them. A producer thread posts to a lane of its own, picked once per thread
//! (threads beyond the lane count share lanes, which the ring protocol allows), so
//! producers posting at the same time do not fight over one `tail` and over the
//! cache lines of neighbouring cells — the cost that dominates a single shared ring
//! (and crossbeam-channel's) when several threads complete tokens at once. A
//! producer's messages stay in order (one lane, one ring); the drainer takes each
//! lane in order and starts each batch one lane further, so no lane starves. The
//! proofs below hold per lane; "the ring" is the producer's lane, and a worker's
//! last look ([`Mailbox::has_claims`]) reads every lane.
//!
//! # Sleepy lanes: the claim tells whether to look at the sleepers
//!
//! The top bit of each lane's `tail` is `SLEEPY`. A worker about to sleep sets it on
//! every lane (`fetch_or`, after announcing itself to the sleep protocol) and reads,
//! from the values those RMWs return, whether any lane has an undrained claim: its
//! decisive last look. A worker that is awake again (woken, or withdrawn) clears it.
//! A producer's claim (`fetch_add`) returns the bit with the position: only if it is
//! set does the producer look at the sleep protocol's counters (a SeqCst fence and
//! two loads, see "Notifying before the publish"); otherwise it skips them.
//!
//! Why no report is left with every worker asleep: all the bit's writes and the
//! claims are RMWs of the one `tail` word, so they are totally ordered. A worker
//! whose set comes after a claim sees that claim and does not sleep. A claim that
//! saw the bit clear came after the last clear before it, made by a worker that was
//! awake then; that worker sets the bit again before it sleeps, after the claim, and
//! so sees it. So while a claim is undrained, not every worker can be asleep unless
//! one of them set the bit before it and the producer saw the bit set; that producer
//! then runs the sleep protocol's notification as any push does (`crate::sleep`).
//! The set is a Release RMW and the claim an Acquire one, so a producer that sees the
//! bit also sees the announcement made before it. This argument is about one word's
//! modification order, which loom models exactly (`loom-tests/tests/mailbox.rs`).
//!
//! One exception (`crate::worker`): a worker going to sleep while another thread
//! holds the drain flag does not mark the lanes: the drainer is awake and never
//! sleeps with a claim left (it drains again, or its own last look marks the lanes
//! and sees the claim), so during a flood of reports the idle worker sleeps and the
//! reports skip the fence.
//!
//! # Closing
//!
//! When the runtime's last worker leaves, it closes the mailbox: a `fetch_or` of
//! `CLOSED` into each lane's `tail` returns how far producers had claimed, and it
//! drains exactly up to there, waiting for claims still being published. A claim
//! ordered after the close (the same word's modification order) sees `CLOSED`,
//! publishes nothing and gets its message back, for the reporting thread to apply
//! itself. So no report is left in a mailbox that nobody will drain again.
//!
//! # A full ring
//!
//! A producer whose cell is still taken (the ring is full) looks at it a few times
//! with a spin hint, then with a yield, then sleeps: it counts itself in
//! `waiting_for_room`, issues a SeqCst fence, and waits on a condition variable,
//! looking at its cell under the lock before each wait. A drainer that freed cells
//! issues a SeqCst fence at the end of its batch and, if a producer is counted, takes
//! and drops the lock and notifies every sleeper. Either the producer's fence comes
//! first in the SeqCst order, and the drainer sees it counted, or the drainer's does,
//! and the producer's look sees the freed cell; the lock closes the gap between a
//! producer's last look and its wait. Sleeping rather than yielding matters on a
//! machine with fewer cores than threads: producers yielding to one another starve
//! the one thread that can make room.
//!
//! # Notifying before the publish
//!
//! [`Mailbox::push`] runs the caller's `before_publish` *after the claim and before
//! the publish*, so that the publishing store can be the producer's last access to
//! the mailbox and whatever owns it: once a drainer can see the message, the producer
//! is done, and the drainer may let the runtime go (rule R12 in `crate::deferred`).
//! The completion path decides there whether a sleeper must be woken (the first half
//! of the sleep protocol's notification: its SeqCst fence and reads); only if one
//! must, it takes a strong count of the runtime before the publish and wakes the
//! sleeper after it (so a woken worker finds the message published, rather than
//! preempting the producer before its publish and spinning on it).
//!
//! For the sleep protocol the claim is the push: the claims a worker's marks return
//! (tail ≠ head) are its decisive last look, so a worker that would sleep sees a
//! claimed message even before it is published, and keeps looking (it does not
//! sleep) until the publish lets it drain. A claim that saw a mark runs the sleep
//! protocol's notification (its SeqCst fence and reads) as any push does; one that
//! saw none needs no fence (see "Sleepy lanes"). (A SeqCst claim could stand in for
//! the fence in C++20's model, but loom models SeqCst accesses as AcqRel and could
//! not check it; the fence stays on the marked path.)
//!
//! Why not `async-channel` or crossbeam-channel: the scheduler wants to take a batch
//! of completions under one drain flag without per-message synchronization on the
//! consumer side, and the ring needs no allocation per message. The `mailbox`
//! benchmark compares it with both in the same run.

use std::mem::MaybeUninit;

use crate::shared::Padded;
use crate::sync::{
    AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell, fence, spin_hint, thread,
};

/// Looks at a full ring's cell with a spin hint, then with a yield, before a producer
/// sleeps until the drainer frees room (see "A full ring"). Under loom a producer
/// sleeps at once, so the models reach that path.
const ROOM_SPINS: u32 = if cfg!(taskweave_loom) { 0 } else { 64 };
const ROOM_YIELDS: u32 = if cfg!(taskweave_loom) { 0 } else { 16 };

struct Cell<T> {
    sequence: AtomicUsize,
    message: UnsafeCell<MaybeUninit<T>>,
}

/// The top bit of a lane's `tail`: a worker may be asleep (see "Sleepy lanes").
const SLEEPY: usize = 1 << (usize::BITS - 1);
/// The next bit of a lane's `tail`: the mailbox was closed (see "Closing").
const CLOSED: usize = 1 << (usize::BITS - 2);
/// The flag bits of a lane's `tail`; the rest is the next position.
const FLAGS: usize = SLEEPY | CLOSED;

/// Lanes of a runtime's mailbox (one under loom, whose models choose lanes
/// explicitly with [`Mailbox::with_lanes`] and [`Mailbox::push_to`]).
const LANES: usize = if cfg!(taskweave_loom) { 1 } else { 8 };

/// A bounded MPSC mailbox of `T`: a few rings (*lanes*), one drainer for all.
///
/// Each lane's producer index and drainer index sit on cache lines of their own, so
/// a post does not take the line the drainer writes, nor the reverse.
pub(crate) struct Mailbox<T> {
    lanes: Box<[Lane<T>]>,
    /// The drainer's side.
    drainer: Padded<Drainer>,
    /// Where producers facing a full lane sleep (see "A full ring").
    room: Mutex<()>,
    room_freed: Condvar,
}

/// One ring of the mailbox (see "Lanes").
struct Lane<T> {
    cells: Box<[Cell<T>]>,
    /// Next position a producer claims (written by producers only).
    tail: Padded<AtomicUsize>,
    /// Next position the drainer reads (written only by the drainer).
    head: Padded<AtomicUsize>,
}

/// What the draining thread writes, and what it reads once per batch.
struct Drainer {
    /// Held by the one thread draining.
    draining: AtomicBool,
    /// Producers asleep (or about to be) waiting for room in a full lane.
    waiting_for_room: AtomicUsize,
    /// The lane the next batch starts with (written only by the drainer).
    next_lane: AtomicUsize,
}

// SAFETY: a message moves from the producer that wrote it to the drainer that reads
// it, with the cell's sequence number ordering the two accesses (see the protocol).
unsafe impl<T: Send> Send for Mailbox<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Mailbox<T> {}

impl<T> Lane<T> {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2).next_power_of_two();
        Lane {
            cells: (0..capacity)
                .map(|i| Cell {
                    sequence: AtomicUsize::new(i),
                    message: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            tail: Padded(AtomicUsize::new(0)),
            head: Padded(AtomicUsize::new(0)),
        }
    }

    fn cell(&self, position: usize) -> &Cell<T> {
        &self.cells[position & (self.cells.len() - 1)]
    }

    /// Whether a claimed message was not drained yet (published or not).
    fn has_claims(&self) -> bool {
        self.tail.load(Ordering::Relaxed) & !FLAGS != self.head.load(Ordering::Relaxed)
    }

    /// Whether the next message to drain is not published yet.
    fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        self.cell(head).sequence.load(Ordering::Acquire) != head.wrapping_add(1)
    }
}

/// The lane a producer thread posts to: its own, picked once per thread by a global
/// counter, so threads posting at the same time rarely share a lane. Any lane would
/// be correct (each is a multi-producer ring); this is a placement hint, so a plain
/// `std` counter and thread-local serve (no protocol of the sync shim involved).
fn lane_of_this_thread() -> usize {
    use std::sync::atomic::{AtomicUsize as HintCounter, Ordering::Relaxed};
    static NEXT: HintCounter = HintCounter::new(0);
    thread_local! {
        static LANE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    LANE.with(|lane| {
        if lane.get() == usize::MAX {
            lane.set(NEXT.fetch_add(1, Relaxed));
        }
        lane.get()
    })
}

impl<T> Mailbox<T> {
    /// A mailbox of about `capacity` cells over the default number of lanes (each
    /// rounded up to a power of two, at least two).
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_lanes(LANES, capacity / LANES)
    }

    /// A mailbox of `lanes` lanes (rounded up to a power of two) of `capacity` cells.
    pub(crate) fn with_lanes(lanes: usize, capacity: usize) -> Self {
        Mailbox {
            lanes: (0..lanes.max(1).next_power_of_two())
                .map(|_| Lane::new(capacity))
                .collect(),
            drainer: Padded(Drainer {
                draining: AtomicBool::new(false),
                waiting_for_room: AtomicUsize::new(0),
                next_lane: AtomicUsize::new(0),
            }),
            room: Mutex::new(()),
            room_freed: Condvar::new(),
        }
    }

    /// Posts `message` on this thread's lane (see [`Mailbox::push_to`]).
    pub(crate) fn push<R>(
        &self,
        message: T,
        before_publish: impl FnOnce(bool) -> R,
    ) -> Result<R, T> {
        let lane = if self.lanes.len() == 1 {
            0
        } else {
            lane_of_this_thread()
        };
        self.push_to(lane, message, before_publish)
    }

    /// Posts `message` on lane `lane` (modulo the lanes), waiting (spinning,
    /// yielding, then sleeping) while that lane is full. `before_publish` runs after
    /// the claim and before the publish (see "Notifying before the publish"), told
    /// whether the claim saw a worker about to sleep (see "Sleepy lanes"), and its
    /// result is returned; the publishing store is the last access to `self`. After
    /// [`Mailbox::close`] the message comes back as `Err` (see "Closing").
    #[cfg_attr(
        taskweave_loom,
        allow(
            clippy::absurd_extreme_comparisons,
            reason = "under loom `ROOM_SPINS` is 0, so the wait yields at once"
        )
    )]
    pub(crate) fn push_to<R>(
        &self,
        lane: usize,
        message: T,
        before_publish: impl FnOnce(bool) -> R,
    ) -> Result<R, T> {
        let lane = &self.lanes[lane & (self.lanes.len() - 1)];
        // Acquire: a set `SLEEPY` brings the announcement made before it.
        let claimed = lane.tail.fetch_add(1, Ordering::Acquire);
        if claimed & CLOSED != 0 {
            // Nobody drains any more: the message goes back to the caller.
            return Err(message);
        }
        let position = claimed & !FLAGS;
        let cell = lane.cell(position);
        let mut spins = 0u32;
        // Wait until the drainer freed this cell for our lap.
        while cell.sequence.load(Ordering::Acquire) != position {
            spins += 1;
            if spins <= ROOM_SPINS {
                spin_hint();
            } else if spins <= ROOM_SPINS + ROOM_YIELDS {
                thread::yield_now();
            } else {
                self.sleep_until_free(cell, position);
            }
        }
        // SAFETY: sequence == position means the cell is free for this lap and only the
        // producer that claimed `position` writes it.
        cell.message
            .with_mut(|slot| unsafe { (*slot).write(message) });
        let result = before_publish(claimed & SLEEPY != 0);
        // Publish the payload to the drainer. Nothing of `self` is touched after this.
        cell.sequence
            .store(position.wrapping_add(1), Ordering::Release);
        Ok(result)
    }

    /// Closes the mailbox and gives every message claimed before the close to
    /// `handle`, waiting for those still being published; a claim after the close
    /// gets its message back from [`Mailbox::push_to`] (see "Closing"). For the last
    /// thread that drains (the runtime's last worker leaving).
    pub(crate) fn close(&self, mut handle: impl FnMut(T)) {
        // The positions claimed before the close, per lane.
        let ends: Vec<usize> = self
            .lanes
            .iter()
            .map(|lane| lane.tail.fetch_or(CLOSED, Ordering::AcqRel) & !FLAGS)
            .collect();
        loop {
            let drained = self.drain(usize::MAX, &mut handle);
            let done = self
                .lanes
                .iter()
                .zip(&ends)
                .all(|(lane, &end)| lane.head.load(Ordering::Relaxed) == end);
            if done {
                return;
            }
            if drained == Some(0) || drained.is_none() {
                // A producer between its claim and its publish, or another drainer.
                thread::yield_now();
            }
        }
    }

    /// Sleeps until the drainer frees `cell` for `position` (see "A full ring").
    fn sleep_until_free(&self, cell: &Cell<T>, position: usize) {
        self.drainer
            .waiting_for_room
            .fetch_add(1, Ordering::Relaxed);
        // Pairs with the drainer's fence: it sees us counted, or we see the cell freed.
        fence(Ordering::SeqCst);
        let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
        while cell.sequence.load(Ordering::Acquire) != position {
            room = self
                .room_freed
                .wait(room)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(room);
        self.drainer
            .waiting_for_room
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether a message was claimed and not yet drained (published or not): the
    /// decisive look of a worker about to sleep (see "Notifying before the publish").
    /// May say `true` spuriously (a stale `head`), never `false` for a claim ordered
    /// before the caller's SeqCst fence.
    pub(crate) fn has_claims(&self) -> bool {
        self.lanes.iter().any(Lane::has_claims)
    }

    /// A worker about to sleep marks every lane `SLEEPY` (after announcing itself)
    /// and returns whether a message was claimed and not drained: its decisive last
    /// look at the mailbox (see "Sleepy lanes").
    pub(crate) fn mark_sleepy(&self) -> bool {
        let mut claims = false;
        for lane in self.lanes.iter() {
            // Release: a producer whose claim sees the bit sees the announcement.
            let tail = lane.tail.fetch_or(SLEEPY, Ordering::AcqRel) & !FLAGS;
            claims |= tail != lane.head.load(Ordering::Relaxed);
        }
        claims
    }

    /// A worker that is awake again clears the `SLEEPY` marks (see "Sleepy lanes");
    /// it sets them again before it next sleeps.
    pub(crate) fn clear_sleepy(&self) {
        for lane in self.lanes.iter() {
            if lane.tail.load(Ordering::Relaxed) & SLEEPY != 0 {
                lane.tail.fetch_and(!SLEEPY, Ordering::Relaxed);
            }
        }
    }

    /// Whether a published message may be waiting (a cheap look for idle workers).
    pub(crate) fn is_empty(&self) -> bool {
        self.lanes.iter().all(Lane::is_empty)
    }

    /// Whether a thread is draining now (a hint: it may stop at once).
    pub(crate) fn is_draining(&self) -> bool {
        self.drainer.draining.load(Ordering::Relaxed)
    }

    /// Whether a published message waits and nobody is draining: the look of an idle
    /// worker for work it can take (a drainer at work is responsible for the rest).
    /// Reads the drainer's line, written once per batch, before any cell.
    pub(crate) fn needs_drainer(&self) -> bool {
        !self.drainer.draining.load(Ordering::Relaxed) && !self.is_empty()
    }

    /// Takes up to `max` messages, each lane's in order, and gives each to `handle`.
    /// Returns how many, or `None` if another thread is draining. A batch starts with
    /// the lane after the previous batch's first, so that no lane waits behind a busy
    /// one for more than a round.
    ///
    /// A lane's `head` is stored once per batch: meanwhile the idle workers' looks
    /// read a stale head, which can only make them see work that is being drained
    /// (and the flag tells them so), never miss a claim.
    pub(crate) fn drain(&self, max: usize, mut handle: impl FnMut(T)) -> Option<usize> {
        // Look before the swap: a worker finding the flag taken leaves the drainer's
        // line shared instead of taking it away once per look.
        if self.drainer.draining.load(Ordering::Relaxed)
            || self.drainer.draining.swap(true, Ordering::Acquire)
        {
            return None;
        }
        let lanes = self.lanes.len();
        let first = self.drainer.next_lane.load(Ordering::Relaxed);
        self.drainer
            .next_lane
            .store(first.wrapping_add(1), Ordering::Relaxed);
        let mut taken = 0;
        for k in 0..lanes {
            if taken >= max {
                break;
            }
            let lane = &self.lanes[first.wrapping_add(k) & (lanes - 1)];
            let start = lane.head.load(Ordering::Relaxed);
            let mut head = start;
            while taken < max {
                let cell = lane.cell(head);
                if cell.sequence.load(Ordering::Acquire) != head.wrapping_add(1) {
                    break;
                }
                // SAFETY: sequence == head + 1: the producer published this payload
                // (Acquire above) and only the drainer, which we are, reads it.
                let message = cell
                    .message
                    .with(|slot| unsafe { (*slot).assume_init_read() });
                // Free the cell for the producer of the next lap.
                cell.sequence
                    .store(head.wrapping_add(lane.cells.len()), Ordering::Release);
                head = head.wrapping_add(1);
                taken += 1;
                handle(message);
            }
            if head != start {
                lane.head.store(head, Ordering::Relaxed);
            }
        }
        self.drainer.draining.store(false, Ordering::Release);
        if taken > 0 {
            // Pairs with a sleeping producer's fence (see "A full ring").
            fence(Ordering::SeqCst);
            if self.drainer.waiting_for_room.load(Ordering::Relaxed) != 0 {
                // Taking the lock orders the frees above before a sleeper's next look,
                // or its wait before the notification; no lock is held across the wake.
                drop(self.room.lock().unwrap_or_else(|e| e.into_inner()));
                self.room_freed.notify_all();
            }
        }
        Some(taken)
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        // Drop messages still in the ring.
        while let Some(n) = self.drain(usize::MAX, drop) {
            if n == 0 {
                break;
            }
        }
    }
}

#[cfg(all(test, not(taskweave_loom)))]
mod tests {
    use super::*;

    #[test]
    fn keeps_per_producer_order_and_loses_nothing() {
        let mailbox = std::sync::Arc::new(Mailbox::<(usize, usize)>::new(8));
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let mailbox = mailbox.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        mailbox.push((p, i), |_| {}).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0usize; 4];
        let mut total = 0;
        while total < 40_000 {
            mailbox.drain(64, |(p, i)| {
                assert_eq!(i, next[p], "producer {p} out of order");
                next[p] += 1;
                total += 1;
            });
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(next, [10_000; 4]);
        assert!(mailbox.is_empty());
    }

    #[test]
    fn closing_drains_what_came_before_and_gives_back_what_comes_after() {
        let mailbox = Mailbox::<u32>::with_lanes(2, 4);
        mailbox.push_to(0, 1, |_| {}).unwrap();
        mailbox.push_to(1, 2, |_| {}).unwrap();
        let mut drained = Vec::new();
        mailbox.close(|m| drained.push(m));
        drained.sort_unstable();
        assert_eq!(drained, [1, 2]);
        assert_eq!(mailbox.push_to(0, 3, |_| {}), Err(3));
        assert_eq!(mailbox.push(4, |_| {}), Err(4));
    }

    #[test]
    fn a_busy_lane_does_not_starve_another() {
        let mailbox = Mailbox::<u32>::with_lanes(2, 8);
        for message in 0..6 {
            mailbox.push_to(0, message, |_| {}).unwrap();
        }
        mailbox.push_to(1, 100, |_| {}).unwrap();
        assert!(mailbox.has_claims());
        // Batches of one: the second batch starts with the other lane.
        let mut seen = Vec::new();
        for _ in 0..2 {
            assert_eq!(mailbox.drain(1, |m| seen.push(m)), Some(1));
        }
        assert!(seen.contains(&100), "lane 1 waited behind lane 0: {seen:?}");
        while mailbox.drain(8, |m| seen.push(m)) != Some(0) {}
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 100]);
        assert!(mailbox.is_empty() && !mailbox.has_claims());
    }
}
