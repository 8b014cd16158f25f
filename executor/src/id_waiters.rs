//! Futures waiting on a bare `TaskId` (no handle): a short registry that finishing
//! tasks consult only when it is non-empty.
//!
//! Why no wake-up is lost: a waiter registers (count stored SeqCst) and then looks at
//! the task's fan-out list (SeqCst load); a finishing task closes the list (SeqCst
//! swap) and then reads the count (SeqCst). In the single order of SeqCst operations
//! either the look comes after the close (the waiter sees the task finished) or the
//! registration comes before the count read (the finisher wakes the waiter).

use std::task::Waker;

use crate::sync::{AtomicUsize, Mutex, Ordering};

struct Entry {
    token: u64,
    slot: u32,
    waker: Waker,
}

/// The registry of bare-id waiters.
pub(crate) struct IdWaiters {
    entries: Mutex<(u64, Vec<Entry>)>,
    count: AtomicUsize,
}

impl IdWaiters {
    pub(crate) fn new() -> Self {
        IdWaiters {
            entries: Mutex::new((0, Vec::new())),
            count: AtomicUsize::new(0),
        }
    }

    /// Registers (or refreshes, with the same `token`) a waiter on `slot`; returns its token.
    pub(crate) fn register(&self, token: Option<u64>, slot: u32, waker: &Waker) -> u64 {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (next_token, entries) = &mut *guard;
        if let Some(token) = token
            && let Some(entry) = entries.iter_mut().find(|e| e.token == token)
        {
            entry.waker.clone_from(waker);
            return token;
        }
        *next_token += 1;
        let token = *next_token;
        entries.push(Entry {
            token,
            slot,
            waker: waker.clone(),
        });
        self.count.store(entries.len(), Ordering::SeqCst);
        token
    }

    /// Removes a waiter (its future was dropped or finished).
    pub(crate) fn unregister(&self, token: u64) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entries = &mut guard.1;
        if let Some(pos) = entries.iter().position(|e| e.token == token) {
            entries.swap_remove(pos);
            self.count.store(entries.len(), Ordering::SeqCst);
        }
    }

    /// Called by every finishing task after it closed its list: wakes the waiters of
    /// `slot`. Costs one load when nobody waits.
    #[inline]
    pub(crate) fn wake_slot(&self, slot: u32) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let woken: Vec<Waker> = {
            let guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            guard
                .1
                .iter()
                .filter(|e| e.slot == slot)
                .map(|e| e.waker.clone())
                .collect()
        };
        // No lock held across a wake.
        for waker in woken {
            waker.wake();
        }
    }
}
