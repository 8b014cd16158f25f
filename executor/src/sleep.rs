//! How idle workers sleep and who wakes them, without lost wake-ups.
//!
//! # Protocol
//!
//! A worker that found no work may become a *searcher*: it keeps looking (spinning,
//! then yielding) for a while before it sleeps. At most `max_searching` workers search
//! at once (half the pool, at least one); the others go to sleep at once, so idle
//! workers do not take the cores that the workers running tasks, and the threads
//! completing their tokens, need.
//!
//! Going to sleep, a worker *announces* itself: under the `idle` lock it pushes its
//! index and bumps `sleepers` (SeqCst); a searcher then gives up its role (decrements
//! `searching`, SeqCst); then a SeqCst fence. It then looks at every queue once more.
//! If it finds work it *withdraws* (removes its index if still listed; if someone
//! already took the index, that waker's unpark is consumed). Otherwise it parks until
//! unparked.
//!
//! Whoever makes work available pushes it to a queue, issues a SeqCst fence and reads
//! `searching` and `sleepers`. If a worker is searching it wakes nobody: the searcher
//! is responsible for the work. Otherwise, if `sleepers` is nonzero, it pops one index
//! under the lock and unparks that worker.
//!
//! A searcher stops searching in one of two ways, both "decrement `searching`, SeqCst
//! fence, look at the queues": it found work (then, if more work is visible, it
//! notifies as a producer would, passing the surplus on), or it goes to sleep (the
//! announcement above). If that last look sees work, the worker withdraws and, once
//! it has taken a piece of work, passes the surplus on the same way: producers that
//! skipped their notification may have counted on it for several pieces.
//!
//! Why no wake-up is lost. Take a push followed by the producer's fence `F_p` and its
//! reads, and a worker's decisive fence `F_w` (after its announcement and/or its
//! `searching` decrement) followed by its look. Either `F_p` precedes `F_w` in the
//! SeqCst order, and the worker's look sees the push (and it withdraws, or passes it
//! on); or `F_w` precedes `F_p`, and the producer sees the worker's announcement and
//! its decrement: it wakes a sleeper unless another searcher is counted, to which the
//! same argument applies when that one stops. A parker remembers an unpark that comes
//! before the park, so the order of the two does not matter. Workers are only woken
//! when work was pushed somewhere an awake worker may not reach first; a successor
//! handed over directly wakes nobody.
//!
//! The completion mailbox refines this for token reports (`crate::mailbox`, "Sleepy
//! lanes"): a worker going to sleep also marks the mailbox's lanes, unless another
//! worker is draining it (that one keeps the mail), and a report runs the fence and
//! reads above only if its claim saw a mark.
//!
//! The loom model `loom-tests/tests/park.rs` runs this protocol with searchers.

use crate::shared::Padded;
use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering, fence};

/// One worker's park/unpark flag: an unpark before the park is remembered.
pub(crate) struct Parker {
    notified: Mutex<bool>,
    condvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            notified: Mutex::new(false),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until `unpark` was called (possibly before), then consumes that call.
    pub(crate) fn park(&self) {
        let mut notified = self.notified.lock().unwrap_or_else(|e| e.into_inner());
        while !*notified {
            notified = self
                .condvar
                .wait(notified)
                .unwrap_or_else(|e| e.into_inner());
        }
        *notified = false;
    }

    pub(crate) fn unpark(&self) {
        *self.notified.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.condvar.notify_one();
    }
}

/// The counters a notification reads.
struct Counts {
    /// Workers announced as sleeping and not yet picked by a notifier.
    sleepers: AtomicUsize,
    /// Workers looking for work before they sleep (at most `max_searching`).
    searching: AtomicUsize,
}

/// The sleep/wake state of a worker pool.
pub(crate) struct Sleep {
    /// Read by every notification, written only when workers search, stop or sleep:
    /// on a cache line of its own.
    counts: Padded<Counts>,
    max_searching: usize,
    /// Workers woken by `notify_one` (statistics).
    pub(crate) unparks: crate::sync::AtomicU64,
    idle: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
}

impl Sleep {
    pub(crate) fn new(workers: usize) -> Self {
        Sleep {
            counts: Padded(Counts {
                sleepers: AtomicUsize::new(0),
                searching: AtomicUsize::new(0),
            }),
            max_searching: (workers / 2).max(1),
            unparks: crate::sync::AtomicU64::new(0),
            idle: Mutex::new(Vec::with_capacity(workers)),
            parkers: (0..workers).map(|_| Parker::new()).collect(),
        }
    }

    /// An idle worker asks to search (look for work for a while before sleeping):
    /// whether it may. A searcher must end with [`Sleep::stop_searching`] or
    /// [`Sleep::announce`] with `searching` set.
    pub(crate) fn start_searching(&self) -> bool {
        let mut searching = self.counts.searching.load(Ordering::Relaxed);
        while searching < self.max_searching {
            match self.counts.searching.compare_exchange_weak(
                searching,
                searching + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => searching = now,
            }
        }
        false
    }

    /// A searcher found work: it stops searching and, if `has_work` still sees work
    /// (pushed while producers counted on it), wakes a sleeper for it.
    pub(crate) fn stop_searching(&self, has_work: impl FnOnce() -> bool) {
        self.counts.searching.fetch_sub(1, Ordering::SeqCst);
        self.pass_on(has_work);
    }

    /// A worker that gave up searching in [`Sleep::announce`] but then withdrew (its
    /// last look saw work) took work: like [`Sleep::stop_searching`], it wakes a
    /// sleeper if work is left, since producers may have counted on it for more than
    /// the one piece it took.
    pub(crate) fn pass_on(&self, has_work: impl FnOnce() -> bool) {
        // Order the decrement (here or in `announce`) before the look (see "Why no
        // wake-up is lost").
        fence(Ordering::SeqCst);
        if has_work() {
            self.notify_one();
        }
    }

    /// Step 1 of going to sleep: announce (and, if `searching`, stop searching). The
    /// caller must then look for work and call [`Sleep::withdraw`] or [`Sleep::park`].
    pub(crate) fn announce(&self, worker: usize, searching: bool) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(worker);
        self.counts.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(idle);
        // After the announcement: a producer that sees the searcher gone sees the sleeper.
        if searching {
            self.counts.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// The worker found work after announcing: take the announcement back.
    pub(crate) fn withdraw(&self, worker: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = idle.iter().position(|&w| w == worker) {
            idle.swap_remove(pos);
            self.counts.sleepers.fetch_sub(1, Ordering::SeqCst);
        } else {
            drop(idle);
            // A notifier already chose this worker and will unpark it (or has): consume
            // that unpark so it does not leak into the next sleep.
            self.parkers[worker].park();
        }
    }

    /// Sleeps until a notifier picks this worker.
    pub(crate) fn park(&self, worker: usize) {
        self.parkers[worker].park();
    }

    /// Called after work was pushed: wakes one sleeping worker, unless a worker is
    /// searching (it will find the work, or pass it on when it stops searching).
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.must_wake() {
            self.wake_one();
        }
    }

    /// The first half of [`Sleep::notify_one`], for a producer that must do something
    /// between deciding and waking (the mailbox publishes in between): whether a
    /// sleeper must be woken, i.e. nobody is searching and someone sleeps. If so the
    /// caller calls [`Sleep::wake_one`].
    #[inline]
    pub(crate) fn must_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        self.counts.searching.load(Ordering::Relaxed) == 0
            && self.counts.sleepers.load(Ordering::Relaxed) != 0
    }

    /// The second half of [`Sleep::notify_one`]: wakes one sleeper, if one is still
    /// announced.
    pub(crate) fn wake_one(&self) {
        let chosen = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let chosen = idle.pop();
            if chosen.is_some() {
                self.counts.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            chosen
        };
        if let Some(worker) = chosen {
            self.unparks.fetch_add(1, Ordering::Relaxed);
            self.parkers[worker].unpark();
        }
    }

    /// Wakes every sleeping worker (shutdown).
    pub(crate) fn notify_all(&self) {
        let all = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            self.counts.sleepers.store(0, Ordering::SeqCst);
            std::mem::take(&mut *idle)
        };
        for worker in all {
            self.parkers[worker].unpark();
        }
    }
}

#[cfg(all(test, not(taskweave_loom)))]
mod tests {
    use super::*;

    fn unparks(sleep: &Sleep) -> u64 {
        sleep.unparks.load(Ordering::Relaxed)
    }

    #[test]
    fn half_the_workers_may_search() {
        let sleep = Sleep::new(4);
        assert!(sleep.start_searching());
        assert!(sleep.start_searching());
        assert!(
            !sleep.start_searching(),
            "a third searcher out of four workers"
        );
        sleep.stop_searching(|| false);
        assert!(sleep.start_searching(), "a role given back is free again");
        // One worker alone may always search.
        assert!(Sleep::new(1).start_searching());
    }

    #[test]
    fn a_push_wakes_nobody_while_a_worker_searches() {
        let sleep = Sleep::new(2);
        // Worker 1 sleeps (announced, its last look empty); worker 0 searches.
        sleep.announce(1, false);
        assert!(sleep.start_searching());
        sleep.notify_one();
        sleep.notify_one();
        assert_eq!(unparks(&sleep), 0, "the searcher will find the work");
        // The searcher found work and sees more: it wakes the sleeper, once.
        sleep.stop_searching(|| true);
        assert_eq!(unparks(&sleep), 1);
        // Nobody left asleep or searching: nothing more to wake.
        sleep.notify_one();
        assert_eq!(unparks(&sleep), 1);
    }

    #[test]
    fn a_searcher_that_sees_no_surplus_wakes_nobody() {
        let sleep = Sleep::new(2);
        sleep.announce(1, false);
        assert!(sleep.start_searching());
        sleep.notify_one();
        sleep.stop_searching(|| false);
        assert_eq!(unparks(&sleep), 0);
        // Without a searcher a push wakes the sleeper.
        sleep.notify_one();
        assert_eq!(unparks(&sleep), 1);
    }

    #[test]
    fn a_searcher_going_to_sleep_hands_pushes_to_the_sleepers() {
        let sleep = Sleep::new(2);
        sleep.announce(1, false);
        assert!(sleep.start_searching());
        // The searcher gives up: from its announcement on, pushes wake a sleeper.
        sleep.announce(0, true);
        sleep.notify_one();
        assert_eq!(unparks(&sleep), 1);
        // A withdrawn searcher passes surplus on like one that found work.
        sleep.withdraw(0);
        sleep.pass_on(|| true);
        assert_eq!(unparks(&sleep), 2);
    }
}
