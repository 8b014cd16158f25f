//! A single-waiter waker cell: the task's `Task<T>` handle registers, the completing
//! thread wakes. The algorithm is the well-known one of `futures::task::AtomicWaker`,
//! written against the sync shim so loom can check it.

use std::task::Waker;

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

/// Holds at most one waker; `register` and `wake` may race from any threads.
pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `waker` is only touched by the thread that won the REGISTERING or WAKING
// bit of `state`, so accesses never overlap; `Waker` is Send + Sync.
unsafe impl Send for AtomicWaker {}
// SAFETY: as above.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` to be woken by the next `wake`. If a wake races with this call, the
    /// waker is woken at once instead.
    pub(crate) fn register(&self, waker: &Waker) {
        match self.state.compare_exchange(
            WAITING,
            REGISTERING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: we hold the REGISTERING bit: no other thread touches the cell.
                self.waker.with_mut(|cell| unsafe {
                    match &*cell {
                        Some(old) if old.will_wake(waker) => {}
                        _ => *cell = Some(waker.clone()),
                    }
                });
                // Release the cell; if a wake arrived meanwhile (WAKING set), wake now.
                if self
                    .state
                    .compare_exchange(REGISTERING, WAITING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // SAFETY: the waker saw REGISTERING and left the cell to us.
                    let taken = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                    self.state.swap(WAITING, Ordering::AcqRel);
                    if let Some(waker) = taken {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => {
                // A wake is in progress: it may not see this waker, so wake it here.
                waker.wake_by_ref();
            }
            Err(_) => {
                // Concurrent register calls: the API never does this (one handle).
            }
        }
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }

    fn take(&self) -> Option<Waker> {
        match self.state.fetch_or(WAKING, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: we hold the WAKING bit and no registration is in progress.
                let waker = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                self.state.fetch_and(!WAKING, Ordering::Release);
                waker
            }
            _ => None,
        }
    }

    /// Drops a stored waker (the reclaimer, rule R6, has exclusive access).
    pub(crate) fn clear(&self) {
        // SAFETY: exclusive access per the caller (R6).
        self.waker.with_mut(|cell| unsafe { *cell = None });
    }
}
