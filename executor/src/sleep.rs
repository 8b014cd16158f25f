//! How idle workers sleep and who wakes them, without lost wake-ups.
//!
//! # Protocol
//!
//! A worker that found no work *announces* itself: under the `idle` lock it pushes its
//! index and bumps `sleepers` (SeqCst). It then looks at every queue once more. If it
//! finds work it *withdraws* (removes its index if still listed; if someone already
//! took the index, that waker's unpark is consumed). Otherwise it parks until unparked.
//!
//! Whoever makes work available pushes it to a queue, issues a SeqCst fence and reads
//! `sleepers`; if nonzero it pops one index under the lock and unparks that worker.
//!
//! Why no wake-up is lost: the worker's `sleepers` increment is followed by a fence and
//! then its look at the queues; the producer's push is followed by a fence and then its
//! read of `sleepers`. By the fence rules, either the producer sees the sleeper (and
//! unparks it) or the worker's last look sees the work (and it does not park). A parker
//! remembers an unpark that comes before the park, so the order of the two does not
//! matter. Workers are only woken when work was pushed somewhere an awake worker may
//! not reach first; a successor handed over directly wakes nobody.

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

/// The sleep/wake state of a worker pool.
pub(crate) struct Sleep {
    sleepers: AtomicUsize,
    /// Workers woken by `notify_one` (statistics).
    pub(crate) unparks: crate::sync::AtomicU64,
    idle: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
}

impl Sleep {
    pub(crate) fn new(workers: usize) -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            unparks: crate::sync::AtomicU64::new(0),
            idle: Mutex::new(Vec::with_capacity(workers)),
            parkers: (0..workers).map(|_| Parker::new()).collect(),
        }
    }

    /// Step 1 of going to sleep: announce. The caller must then look for work and call
    /// [`Sleep::withdraw`] or [`Sleep::park`].
    pub(crate) fn announce(&self, worker: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(worker);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(idle);
        fence(Ordering::SeqCst);
    }

    /// The worker found work after announcing: take the announcement back.
    pub(crate) fn withdraw(&self, worker: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = idle.iter().position(|&w| w == worker) {
            idle.swap_remove(pos);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
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

    /// Called after work was pushed: wakes one sleeping worker, if any.
    #[inline]
    pub(crate) fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let chosen = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let chosen = idle.pop();
            if chosen.is_some() {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
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
            self.sleepers.store(0, Ordering::SeqCst);
            std::mem::take(&mut *idle)
        };
        for worker in all {
            self.parkers[worker].unpark();
        }
    }
}
