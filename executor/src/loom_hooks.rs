//! Entry points for the loom models in `loom-tests/` (built only with
//! `--cfg taskweave_loom`). They drive the real protocol code — `wire`,
//! `close_and_walk`, the free list, the sleep protocol, the waker cell — without
//! bodies, queues or worker threads around it.

use std::task::Waker;

use crate::error::TaskError;
use crate::task::{Closed, TaskId, close_and_walk, run_state, wire};
use crate::window::Window;

/// A bare task window: slots, edges and the free list.
pub struct Graph {
    window: Window,
}

impl Graph {
    /// A window of `slots` free slots.
    pub fn new(slots: usize) -> Self {
        Graph {
            window: Window::new(slots, std::ptr::null()),
        }
    }

    /// Takes a free slot and wires a task into it depending on `deps`, as a submitter
    /// does; returns its id and whether it was ready at once. `None` if the window is full.
    pub fn submit(&self, deps: &[TaskId]) -> Option<(TaskId, bool)> {
        let index = self.window.try_pop()?;
        let slot = &self.window.slots[index as usize];
        let generation = slot.generation();
        // SAFETY: the slot was just popped (R1).
        unsafe { slot.prepare_edges(deps.len()) };
        slot.run_state
            .store(run_state::RUNNING, crate::sync::Ordering::Relaxed);
        slot.deferred
            .store(crate::deferred::BODY, crate::sync::Ordering::Relaxed);
        slot.fan_in
            .store(1 + deps.len() as u32, crate::sync::Ordering::Relaxed);
        slot.publish_holders(generation, 1);
        let error = TaskError::Cancelled {
            task: TaskId::INVALID,
            name: None,
        };
        // SAFETY: as above; one node prepared per dependency.
        let ready = unsafe {
            wire(&self.window.slots, index, deps, |_| {
                slot.record_dep_failure(&error)
            })
        };
        Some((TaskId::new(index, generation), ready))
    }

    /// Finishes `id` as a worker does (without a body) and returns the consumers it
    /// made ready.
    pub fn complete(&self, id: TaskId, failed: bool) -> Vec<u32> {
        let mut ready = Vec::new();
        let how = if failed { Closed::Failed } else { Closed::Ok };
        let error = TaskError::Cancelled {
            task: id,
            name: None,
        };
        // SAFETY: the model gives each task exactly one completer (R4).
        unsafe {
            close_and_walk(
                &self.window.slots,
                id.index(),
                id.generation(),
                how,
                failed.then_some(&error),
                &mut |c| ready.push(c),
            )
        };
        ready
    }

    /// Drops the task's one holder and, being the last, recycles its slot (R6).
    pub fn release(&self, id: TaskId) {
        if self.window.slots[id.index() as usize].release() {
            self.window.recycle(id.index());
        }
    }

    /// Whether a dependency failure was recorded on `id` (taking it).
    pub fn take_dep_failure(&self, id: TaskId) -> bool {
        self.window.slots[id.index() as usize]
            .take_dep_failure()
            .is_some()
    }

    /// Current generation of slot `index`.
    pub fn generation(&self, index: u32) -> u32 {
        self.window.slots[index as usize].generation()
    }
}

/// The worker sleep protocol of [`crate::sleep`].
pub struct Sleep(crate::sleep::Sleep);

impl Sleep {
    /// For `workers` workers.
    pub fn new(workers: usize) -> Self {
        Sleep(crate::sleep::Sleep::new(workers))
    }
    /// See `sleep::Sleep::announce`.
    pub fn announce(&self, worker: usize) {
        self.0.announce(worker)
    }
    /// See `sleep::Sleep::withdraw`.
    pub fn withdraw(&self, worker: usize) {
        self.0.withdraw(worker)
    }
    /// See `sleep::Sleep::park`.
    pub fn park(&self, worker: usize) {
        self.0.park(worker)
    }
    /// See `sleep::Sleep::notify_one`.
    pub fn notify_one(&self) {
        self.0.notify_one()
    }
}

/// The handle's waker cell.
pub struct AtomicWaker(crate::atomic_waker::AtomicWaker);

impl AtomicWaker {
    /// Empty.
    pub fn new() -> Self {
        AtomicWaker(crate::atomic_waker::AtomicWaker::new())
    }
    /// See `atomic_waker::AtomicWaker::register`.
    pub fn register(&self, waker: &Waker) {
        self.0.register(waker)
    }
    /// See `atomic_waker::AtomicWaker::wake`.
    pub fn wake(&self) {
        self.0.wake()
    }
}

impl Default for AtomicWaker {
    fn default() -> Self {
        Self::new()
    }
}
