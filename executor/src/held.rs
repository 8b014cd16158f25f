//! Holding many tasks' slots at once ([`HeldTasks`]), and releasing them off the
//! submitter's path ([`ReleaseQueue`]).
//!
//! A [`TaskWatch`](crate::TaskWatch) per task costs a runtime reference per task;
//! a scope that holds thousands of tasks needs only their ids and one reference.
//! Releasing the last hold of a finished task reclaims its slot (drops its output,
//! returns the slot to the free list): work that [`HeldTasks::release_later`] hands
//! to a worker, which is usually idle while a submitter is the bottleneck.

use std::fmt;

use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::sync::{Arc, AtomicBool, Mutex, MutexGuard, Ordering};
use crate::task::TaskId;
use crate::{Task, worker};

/// Fewer holds than this are released at once by [`HeldTasks::release_later`]:
/// queueing them would cost more than releasing them.
const RELEASE_INLINE: usize = 64;

/// Lists of held ids waiting for a worker to release them, and emptied lists kept
/// for the next [`HeldTasks`].
///
/// Keeping the lists matters more than it seems: a list is filled on a submitter's
/// thread and emptied on a worker's, so without reuse the worker frees what the
/// submitter allocated, and the two contend on the allocator's lock (futex calls
/// on both sides, seen with `perf` in `submit_cost_5`).
pub(crate) struct ReleaseQueue {
    /// Whether `lists.queued` may be non-empty (read by workers on every look for
    /// work).
    pending: AtomicBool,
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    /// Lists waiting for a worker.
    queued: Vec<Vec<TaskId>>,
    /// Emptied lists, at most [`SPARE_LISTS`], each of at most [`SPARE_LIST_IDS`]
    /// ids' room.
    spare: Vec<Vec<TaskId>>,
}

/// Emptied lists kept for reuse, at most.
const SPARE_LISTS: usize = 4;

/// Room (in ids) of the largest list kept for reuse: 512 KiB.
const SPARE_LIST_IDS: usize = 1 << 16;

impl ReleaseQueue {
    pub(crate) fn new() -> Self {
        ReleaseQueue {
            pending: AtomicBool::new(false),
            lists: Mutex::new(Lists::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether lists are waiting (a hint: the lock decides).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    fn push(&self, ids: Vec<TaskId>) {
        let mut lists = self.lock();
        lists.queued.push(ids);
        // SeqCst: pairs with the sleep protocol's last look (`Shared::has_work`), like
        // a push to the injector before `notify_one`.
        self.pending.store(true, Ordering::SeqCst);
    }

    fn take(&self) -> Vec<Vec<TaskId>> {
        let mut lists = self.lock();
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut lists.queued)
    }

    /// Keeps the emptied lists of `taken` (what [`ReleaseQueue::take`] returned) for
    /// reuse, as many as there is room for, and `taken` itself for the next
    /// queue; frees the rest.
    fn give_back(&self, mut taken: Vec<Vec<TaskId>>) {
        let mut lists = self.lock();
        while lists.spare.len() < SPARE_LISTS
            && let Some(list) = taken.pop()
        {
            if list.capacity() <= SPARE_LIST_IDS {
                debug_assert!(list.is_empty());
                lists.spare.push(list);
            }
        }
        if lists.queued.capacity() == 0 && taken.is_empty() {
            std::mem::swap(&mut lists.queued, &mut taken);
        }
    }

    /// An empty list, with room if a spare one is kept.
    fn spare_list(&self) -> Vec<TaskId> {
        self.lock().spare.pop().unwrap_or_default()
    }
}

impl Shared {
    /// Releases every queued hold; `true` if there were any. Called by workers when
    /// they look for work, by submitters that find the window full, and at shutdown.
    pub(crate) fn run_releases(&self) -> bool {
        if !self.releases.is_pending() {
            return false;
        }
        let mut lists = self.releases.take();
        let any = !lists.is_empty();
        for list in &mut lists {
            for id in list.drain(..) {
                self.release(id.index());
            }
        }
        self.releases.give_back(lists);
        any
    }
}

/// Holds the slots of many tasks of one runtime, so that their ids keep their
/// outcome (a later task depending on a failed one fails too) until the holds are
/// released; as a [`TaskWatch`](crate::TaskWatch) per task would, but with one
/// runtime reference for all of them and no per-task allocation.
///
/// Dropping it releases every hold at once; [`HeldTasks::release_later`] hands the
/// releases to a worker instead. Either way nothing waits: a task still running
/// keeps its slot until it finishes.
///
/// ```
/// use taskweave_executor::{HeldTasks, Runtime};
/// let rt = Runtime::builder().workers(1).build();
/// let mut held = HeldTasks::new(&rt);
/// let failed = rt.try_task(|| Err::<(), _>("no")).submit_blocking();
/// assert!(held.hold(&failed));
/// let id = failed.id();
/// drop(failed);
/// // The slot is held: a task after it still sees the failure.
/// let after = rt.task(|| ()).after([id]).submit_blocking();
/// assert!(after.wait_blocking().is_err());
/// held.release_later();
/// ```
pub struct HeldTasks {
    shared: Arc<Shared>,
    ids: Vec<TaskId>,
}

impl HeldTasks {
    /// An empty set of holds on `rt`'s tasks (reusing the room of a set that was
    /// released by a worker, if the runtime kept one).
    pub fn new(rt: &Runtime) -> Self {
        HeldTasks {
            shared: Arc::clone(&rt.shared),
            ids: rt.shared.releases.spare_list(),
        }
    }

    /// Holds `task`'s slot; `false` (nothing held) if the task was rejected at
    /// submission or, its output already taken, has left its slot.
    ///
    /// # Panics
    /// If `task` belongs to another runtime.
    pub fn hold<T: Send + 'static>(&mut self, task: &Task<T>) -> bool {
        assert!(
            Arc::ptr_eq(&self.shared, &task.shared),
            "taskweave: HeldTasks::hold of a task of another runtime"
        );
        if !task.hold_slot() {
            return false;
        }
        self.ids.push(task.id());
        true
    }

    /// Whether these holds are on tasks of the runtime `shared`.
    pub(crate) fn is_of(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Notes the hold of task `id`, a task of this runtime published with one holder
    /// more for it ([`Reservation::submit_held`](crate::Reservation::submit_held)).
    #[inline]
    pub(crate) fn push_held(&mut self, id: TaskId) {
        self.ids.push(id);
    }

    /// The held tasks' ids, in the order they were held.
    pub fn ids(&self) -> &[TaskId] {
        &self.ids
    }

    /// How many tasks are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no task is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Releases every hold now, on this thread; keeps the allocation.
    pub fn release(&mut self) {
        for id in self.ids.drain(..) {
            self.shared.release(id.index());
        }
    }

    /// Releases every hold soon, on a worker (a few holds, or when called on a
    /// worker, at once), leaving the set empty: the submitter does not pay for
    /// reclaiming the slots. A submitter that finds the window full releases queued
    /// holds itself, so queued holds never keep a submission waiting.
    pub fn release_later(&mut self) {
        if self.ids.len() < RELEASE_INLINE || worker::is_worker_of(&self.shared) {
            self.release();
            return;
        }
        let ids = std::mem::take(&mut self.ids);
        self.shared.releases.push(ids);
        self.shared.sleep.notify_one();
    }
}

impl Drop for HeldTasks {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for HeldTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldTasks")
            .field("held", &self.ids.len())
            .finish_non_exhaustive()
    }
}
