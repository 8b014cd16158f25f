//! The state a root scope shares with every scope nested in it: the runtime, the
//! submission lock, the count of held task slots, tensor ids and the graph recorder.
//!
//! # The submission lock
//!
//! Every submission in a scope tree takes the tree's lock, does its map lookups,
//! submits to the executor (which may wait for a window slot), records its accesses
//! and releases the lock. So submissions of one tree are totally ordered (rule D1 in
//! [`crate::data`]): "submission order" is lock order, even when several threads or
//! interleaved futures submit to the same tree. The lock is asynchronous, so a
//! submission waiting for a slot parks its future, not its thread.
//!
//! The dependency maps of the tree's tensors and the slot lists of its scopes live in
//! [`TreeCell`]s, which hand out `&mut` only against the guard of their own tree's
//! lock: the lock is all the synchronisation they need.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::lock::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};

use crate::Runtime;
use crate::graph::Recorder;

/// Source of tree ids (never reused within a process).
static NEXT_TREE: AtomicU64 = AtomicU64::new(1);

/// Shared by a root scope and its nested scopes (behind an `Arc`).
pub(crate) struct Tree {
    pub(crate) id: u64,
    pub(crate) rt: Runtime,
    /// `rt.window()`.
    pub(crate) window: usize,
    lock: AsyncMutex<()>,
    /// Task slots held by the tree's open scopes: [`Tree::held`].
    held_added: AtomicUsize,
    /// Holds counted in `held_added` that ended scopes gave up.
    held_released: AtomicUsize,
    pub(crate) recorder: Recorder,
    next_tensor: AtomicU64,
}

impl Tree {
    pub(crate) fn new(rt: &Runtime) -> Tree {
        Tree {
            id: NEXT_TREE.fetch_add(1, Ordering::Relaxed),
            rt: rt.clone(),
            window: rt.window(),
            lock: AsyncMutex::new(()),
            held_added: AtomicUsize::new(0),
            held_released: AtomicUsize::new(0),
            recorder: Recorder::default(),
            next_tensor: AtomicU64::new(0),
        }
    }

    /// Task slots held by the tree's open scopes (read under the lock).
    #[inline]
    pub(crate) fn held(&self, _guard: &TreeGuard<'_>) -> usize {
        let added = self.held_added.load(Ordering::Relaxed);
        added.wrapping_sub(self.held_released.load(Ordering::Relaxed))
    }

    /// Counts a hold a submission added. Only the lock's holder adds, so a load and a
    /// store do (no locked instruction per task); ending scopes count what they give
    /// up apart ([`Tree::held_released`]).
    #[inline]
    pub(crate) fn held_added(&self, _guard: &TreeGuard<'_>) {
        let added = self.held_added.load(Ordering::Relaxed);
        self.held_added.store(added + 1, Ordering::Relaxed);
    }

    /// Counts `holds` given up by an ending scope (with or without the lock).
    pub(crate) fn held_released(&self, holds: usize) {
        self.held_released.fetch_add(holds, Ordering::Relaxed);
    }

    /// Takes the submission lock.
    #[inline]
    pub(crate) async fn lock(&self) -> TreeGuard<'_> {
        // Uncontended (one orchestrator, the common case), the lock is one atomic
        // operation: no lock future to build, poll and drop.
        let lock = match self.lock.try_lock() {
            Some(lock) => lock,
            None => self.lock.lock().await,
        };
        TreeGuard {
            _lock: lock,
            tree: self.id,
        }
    }

    /// A fresh tensor id (unique within the tree).
    pub(crate) fn next_tensor_id(&self) -> u64 {
        self.next_tensor.fetch_add(1, Ordering::Relaxed)
    }
}

/// Proof that the current code holds the submission lock of tree `tree`.
pub(crate) struct TreeGuard<'a> {
    _lock: AsyncMutexGuard<'a, ()>,
    tree: u64,
}

/// A value that belongs to one scope tree and is touched only under that tree's
/// submission lock (or through `&mut self`, when its owner is being dropped).
pub(crate) struct TreeCell<T> {
    tree: u64,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through `get` (which requires the guard of the
// cell's tree lock, held by one holder at a time and borrowed mutably for as long as
// the reference lives) or `get_mut` (exclusive access to the cell). So at most one
// thread touches it at a time, and the lock's release/acquire orders those touches:
// sharing the cell is sound when moving the value is (`T: Send`).
unsafe impl<T: Send> Sync for TreeCell<T> {}

impl<T> TreeCell<T> {
    pub(crate) fn new(tree: u64, value: T) -> Self {
        TreeCell {
            tree,
            value: UnsafeCell::new(value),
        }
    }

    /// The value, under the lock of the cell's tree.
    ///
    /// # Panics
    /// If `guard` is the lock of another tree (callers check a tensor's tree first
    /// and report [`DataError::ForeignTensor`](crate::DataError::ForeignTensor)).
    #[inline]
    pub(crate) fn get<'a>(&'a self, guard: &'a mut TreeGuard<'_>) -> &'a mut T {
        assert_eq!(
            self.tree, guard.tree,
            "taskweave: a tree cell used under another tree's lock"
        );
        // SAFETY: `guard` proves we hold this tree's lock, and it is borrowed mutably
        // for 'a, so no other reference obtained through the lock is alive; `get_mut`
        // needs `&mut self`, which cannot coexist with our `&'a self`.
        unsafe { &mut *self.value.get() }
    }

    /// The value, through exclusive access to the cell.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}
