//! The task window: a fixed array of slots, a lock-free free list, and the waiters
//! that back-pressure puts to sleep when every slot is taken.

use std::task::Waker;

use crate::shared::Shared;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, fence};
use crate::task::Slot;

const NIL: u32 = u32::MAX;

/// All task slots of one runtime; memory is fixed at `len` slots for its whole life.
pub(crate) struct Window {
    pub(crate) slots: Box<[Slot]>,
    /// Treiber stack of free slots: ABA tag (high 32) and top index (low 32). On its
    /// own cache line: it is CAS'd on every submission and reclaim, while `slots` (the
    /// pointer) is read on every access to any task.
    free_head: crate::shared::Padded<AtomicU64>,
    /// Submitters waiting for a slot.
    waiters: Mutex<Vec<Waker>>,
    waiter_count: AtomicUsize,
    /// Slots freed by workers since waiters were last woken.
    freed_while_waiting: AtomicUsize,
    /// How many freed slots wake waiting submitters (see `push`).
    wake_batch: usize,
    /// How many slots a worker reclaims before it returns them together (see
    /// [`Window::push_chain`]).
    free_batch: usize,
}

impl Window {
    pub(crate) fn new(len: usize, home: *const Shared) -> Self {
        let slots: Box<[Slot]> = (0..len).map(|i| Slot::new(home, i as u32)).collect();
        for (i, slot) in slots.iter().enumerate() {
            let next = if i + 1 < len { (i + 1) as u32 } else { NIL };
            slot.next_free.store(next, Ordering::Relaxed);
        }
        let top = if len == 0 { NIL } else { 0 };
        Window {
            slots,
            free_head: crate::shared::Padded(AtomicU64::new(top as u64)),
            waiters: Mutex::new(Vec::new()),
            waiter_count: AtomicUsize::new(0),
            freed_while_waiting: AtomicUsize::new(0),
            wake_batch: (len / 8).clamp(1, 64),
            // A small part of the window: the workers' unreturned slots never keep a
            // submitter waiting long (and they return them when they see one wait).
            free_batch: (len / 64).clamp(1, 32),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Takes a free slot (rule R1: the caller now owns it), or `None` if all are taken.
    #[inline]
    pub(crate) fn try_pop(&self) -> Option<u32> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == NIL {
                return None;
            }
            // May read a link that a concurrent pop/push is changing: the tag makes the
            // CAS below fail in that case.
            let next = self.slots[top as usize].next_free.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | next as u64;
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if next != NIL {
                        // The next pop reads this link; a worker last wrote its line.
                        prefetch(&self.slots[next as usize].next_free);
                    }
                    return Some(top);
                }
                Err(now) => head = now,
            }
        }
    }

    /// Starts the slot's next generation and returns it to the free list (the last
    /// step of reclaiming, rule R6), unless `keep` takes it (a worker keeps the slots
    /// it reclaims to return them in a chain, `worker::stash_free_slot`).
    #[inline]
    pub(crate) fn recycle(&self, index: u32, keep: impl FnOnce(u32) -> bool) {
        self.slots[index as usize].next_generation();
        if !keep(index) {
            self.push_chain(&[index], false);
        }
    }

    /// Returns a slot that was popped but never used (its generation unchanged).
    pub(crate) fn give_back(&self, index: u32) {
        self.push_chain(&[index], false);
    }

    /// Slots a worker keeps before returning them with [`Window::push_chain`].
    pub(crate) fn free_batch(&self) -> usize {
        self.free_batch
    }

    /// Returns free slots to the list, `chain[0]` on top, with one successful CAS
    /// (the head's line is the one every submission CASes: a worker that reclaims
    /// slots one by one would take it away once per task), and wakes waiting
    /// submitters. The caller owns the slots (R6: their next generation started).
    pub(crate) fn push_chain(&self, chain: &[u32], batched: bool) {
        let (Some(&first), Some(&last)) = (chain.first(), chain.last()) else {
            return;
        };
        // The links inside the chain; only this thread sees them until the CAS.
        for pair in chain.windows(2) {
            self.slots[pair[0] as usize]
                .next_free
                .store(pair[1], Ordering::Relaxed);
        }
        let mut head = self.free_head.load(Ordering::Relaxed);
        loop {
            self.slots[last as usize]
                .next_free
                .store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | first as u64;
            // SeqCst: pairs with `register_waiter` (push then look vs register then look).
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        if self.waiter_count.load(Ordering::SeqCst) > 0 {
            // A worker wakes waiting submitters once per batch of freed slots, so a
            // submitter that keeps the window full is not woken (a syscall) per task.
            // Nothing is left waiting: a worker wakes them before it goes to sleep, and
            // a release off the workers wakes them at once.
            let freed = self
                .freed_while_waiting
                .fetch_add(chain.len(), Ordering::Relaxed)
                + chain.len();
            if !batched || freed >= self.wake_batch {
                self.wake_waiters();
            }
        }
    }

    /// Registers a submitter to be woken by the next `push`. The caller must try
    /// `try_pop` again afterwards: a push that came before the registration woke nobody.
    pub(crate) fn register_waiter(&self, waker: &Waker) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        self.waiter_count.store(waiters.len(), Ordering::SeqCst);
        drop(waiters);
        // Order the registration before the caller's next look at the free list.
        fence(Ordering::SeqCst);
    }

    /// Whether submitters are waiting for a slot.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiter_count.load(Ordering::SeqCst) > 0
    }

    /// Wakes every waiting submitter (used by `push` and by shutdown).
    pub(crate) fn wake_waiters(&self) {
        let woken = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            self.waiter_count.store(0, Ordering::SeqCst);
            self.freed_while_waiting.store(0, Ordering::Relaxed);
            std::mem::take(&mut *waiters)
        };
        // Wake outside the lock (no lock held across a wake).
        for waker in woken {
            waker.wake();
        }
    }
}

/// Asks for the cache line of `value` ahead of its use (a hint: no effect on
/// correctness).
#[inline(always)]
fn prefetch<T>(value: &T) {
    prefetch_at((value as *const T).cast());
}

/// Asks for the cache line at `at` ahead of its use (a hint: no effect on
/// correctness). Any address is allowed.
#[inline(always)]
pub(crate) fn prefetch_at(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and changes nothing the program sees (any
    // address is allowed, none faults); the `sse` it needs is in every x86_64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
