//! The sync shim: the only place in this crate that names `std::sync` locks and
//! atomics (DESIGN.md §9). Under `--cfg taskweave_loom` they come from loom, so the
//! loom models in `loom-tests/` drive the same ordering code the runtime uses.

#[cfg(not(taskweave_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use std::sync::{Mutex, MutexGuard};
}

#[cfg(taskweave_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use loom::sync::{Mutex, MutexGuard};
}

pub(crate) use imp::*;

/// Reference counting of handles is not part of any modelled protocol, so `Arc` and
/// `Weak` are std's in both builds (as in the executor's shim).
pub(crate) use std::sync::{Arc, Weak};

/// Locks `mutex`, ignoring poisoning: every critical section in this crate leaves its
/// state consistent before it can panic (they run no user code).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
