//! Wakers of task bodies: a waker is a pointer to the task's slot (rule R10 holder
//! when owned), and waking moves `run_state` (rule R4).

use std::mem::ManuallyDrop;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::slot::{Slot, run_state};
use crate::sync::{Arc, Ordering};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_waker, wake, wake_by_ref, drop_waker);

/// A waker for the poll in progress that holds no reference: valid while the worker
/// polls (it holds the execution reference). Cloning it makes an owned waker.
pub(crate) fn borrowed_waker(slot: &Slot) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new((slot as *const Slot).cast(), &VTABLE);
    // SAFETY: the vtable functions uphold the RawWaker contract for a slot pointer; the
    // ManuallyDrop keeps the borrowed waker from releasing a reference it does not own.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}

unsafe fn clone_waker(ptr: *const ()) -> RawWaker {
    // SAFETY: `ptr` is a live slot: the waker being cloned holds (or borrows from the
    // polling worker) a reference (R10).
    let slot = unsafe { &*ptr.cast::<Slot>() };
    slot.waker_tag.event("waker.clone");
    slot.acquire_more();
    // SAFETY: `home` is the runtime's `Arc<Shared>` allocation; the clone owns one count.
    unsafe { Arc::increment_strong_count(slot.home) };
    RawWaker::new(ptr, &VTABLE)
}

unsafe fn wake(ptr: *const ()) {
    // SAFETY: an owned waker is consumed: wake, then release what it held.
    unsafe {
        (*ptr.cast::<Slot>()).waker_tag.event("waker.wake");
        schedule_from_waker(&*ptr.cast::<Slot>());
        release(ptr);
    }
}

unsafe fn wake_by_ref(ptr: *const ()) {
    // SAFETY: the waker keeps the slot and the runtime alive (R10).
    let slot = unsafe { &*ptr.cast::<Slot>() };
    slot.waker_tag.event("waker.wake_by_ref");
    schedule_from_waker(slot);
}

unsafe fn drop_waker(ptr: *const ()) {
    // SAFETY: an owned waker is dropped: it releases what it held.
    unsafe {
        (*ptr.cast::<Slot>()).waker_tag.event("waker.drop");
        release(ptr);
    }
}

/// Releases what an owned waker held: a slot reference and a runtime count.
///
/// # Safety
/// `ptr` is the slot pointer of an owned waker, which is consumed.
unsafe fn release(ptr: *const ()) {
    // SAFETY: per the caller's contract the waker held one slot reference and one
    // runtime count, so both are still valid here.
    unsafe {
        let slot = &*ptr.cast::<Slot>();
        let home = slot.home;
        if slot.release() {
            (*home).reclaim(slot.index);
        }
        Arc::decrement_strong_count(home);
    }
}

/// The wake transition: `IDLE → SCHEDULED` pushes the task, `RUNNING → NOTIFIED` asks
/// the polling worker to poll again; anything else is already handled (R4).
pub(crate) fn schedule_from_waker(slot: &Slot) {
    let mut state = slot.run_state.load(Ordering::Acquire);
    loop {
        let next = match state {
            run_state::IDLE => run_state::SCHEDULED,
            run_state::RUNNING => run_state::NOTIFIED,
            _ => return,
        };
        match slot
            .run_state
            .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                if next == run_state::SCHEDULED {
                    // SAFETY: `home` outlives every waker (each holds a count).
                    unsafe { (*slot.home).schedule(slot.index) };
                }
                return;
            }
            Err(now) => state = now,
        }
    }
}
