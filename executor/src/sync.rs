//! The sync shim: the only place that names `std::sync`, atomics, `UnsafeCell` and
//! thread parking (DESIGN.md §9). Under `--cfg taskweave_loom` every item comes from
//! loom instead, so the same protocol code is model-checked unchanged.
//!
//! `UnsafeCell` has loom's `with`/`with_mut` shape in both builds.

#[cfg(not(taskweave_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    #[cfg_attr(not(feature = "trace"), allow(unused_imports))]
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;

    /// `std::cell::UnsafeCell` with loom's closure-based accessors.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Gives `f` a shared raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Gives `f` an exclusive raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// Spin-loop hint (a no-op yield under loom).
    #[inline(always)]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(taskweave_loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    #[cfg_attr(not(feature = "trace"), allow(unused_imports))]
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Under loom a spin must yield so the model can make progress.
    #[inline(always)]
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }
}

pub(crate) use imp::*;

/// Reference counting of the runtime itself and one-time cells are not part of any
/// modelled protocol, so they are std's in both builds (loom's `Arc` lacks `new_cyclic`).
pub(crate) use std::sync::{Arc, OnceLock};
