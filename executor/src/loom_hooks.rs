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
            self.window.recycle(id.index(), |_| false);
        }
    }

    /// Whether a dependency failure was recorded on `id` (taking it).
    pub fn take_dep_failure(&self, id: TaskId) -> bool {
        self.window.slots[id.index() as usize]
            .take_dep_failure()
            .is_some()
    }

    /// The body of `id` takes a completion token (as `defer` does).
    pub fn take_token(&self, id: TaskId) {
        self.window.slots[id.index() as usize]
            .deferred
            .fetch_add(1, crate::sync::Ordering::Relaxed);
    }

    /// The body of `id` returns: whether this call must finish the task (R11).
    pub fn body_return(&self, id: TaskId) -> bool {
        crate::deferred::body_return_finishes(&self.window.slots[id.index() as usize].deferred)
    }

    /// A token of `id` reports: whether this call must finish the task (R11).
    pub fn token_report(&self, id: TaskId) -> bool {
        crate::deferred::token_reports_finish(&self.window.slots[id.index() as usize].deferred, 1)
    }

    /// A deadline cuts `id`: whether this call must finish the task (R11).
    pub fn cut(&self, id: TaskId) -> bool {
        crate::deferred::cut_wins(&self.window.slots[id.index() as usize].deferred)
    }

    /// Current generation of slot `index`.
    pub fn generation(&self, index: u32) -> u32 {
        self.window.slots[index as usize].generation()
    }
}

/// The completion mailbox, carrying `(producer, sequence)` pairs.
pub struct Mailbox(crate::mailbox::Mailbox<(usize, usize)>);

impl Mailbox {
    /// With `capacity` cells.
    pub fn new(capacity: usize) -> Self {
        Mailbox(crate::mailbox::Mailbox::new(capacity))
    }
    /// With `lanes` lanes of `capacity` cells each.
    pub fn with_lanes(lanes: usize, capacity: usize) -> Self {
        Mailbox(crate::mailbox::Mailbox::with_lanes(lanes, capacity))
    }
    /// See `mailbox::Mailbox::push`.
    pub fn push(&self, message: (usize, usize)) {
        assert!(self.0.push(message, |_| ()).is_ok(), "mailbox closed");
    }
    /// See `mailbox::Mailbox::push_to`.
    pub fn push_to(&self, lane: usize, message: (usize, usize)) {
        assert!(
            self.0.push_to(lane, message, |_| ()).is_ok(),
            "mailbox closed"
        );
    }
    /// See `mailbox::Mailbox::push_to`: `false` if the mailbox was closed (the
    /// message is dropped here).
    pub fn try_push_to(&self, lane: usize, message: (usize, usize)) -> bool {
        self.0.push_to(lane, message, |_| ()).is_ok()
    }
    /// See `mailbox::Mailbox::close`.
    pub fn close(&self, handle: impl FnMut((usize, usize))) {
        self.0.close(handle)
    }
    /// [`Mailbox::push_notifying`] on lane `lane`.
    pub fn push_to_notifying(&self, lane: usize, message: (usize, usize), sleep: &Sleep) {
        if self
            .0
            .push_to(lane, message, |sleepy| sleepy && sleep.0.must_wake())
            == Ok(true)
        {
            sleep.0.wake_one();
        }
    }
    /// Posts `message` as a token's report does: decides before the publish whether
    /// `sleep` has a sleeper to wake, and wakes it after the publish.
    pub fn push_notifying(&self, message: (usize, usize), sleep: &Sleep) {
        if self.0.push(message, |sleepy| sleepy && sleep.0.must_wake()) == Ok(true) {
            sleep.0.wake_one();
        }
    }
    /// See `mailbox::Mailbox::mark_sleepy`.
    pub fn mark_sleepy(&self) -> bool {
        self.0.mark_sleepy()
    }
    /// See `mailbox::Mailbox::clear_sleepy`.
    pub fn clear_sleepy(&self) {
        self.0.clear_sleepy()
    }
    /// See `mailbox::Mailbox::has_claims`.
    pub fn has_claims(&self) -> bool {
        self.0.has_claims()
    }
    /// See `mailbox::Mailbox::drain`.
    pub fn drain(&self, max: usize, handle: impl FnMut((usize, usize))) -> Option<usize> {
        self.0.drain(max, handle)
    }
    /// See `mailbox::Mailbox::is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The worker sleep protocol of [`crate::sleep`].
pub struct Sleep(crate::sleep::Sleep);

impl Sleep {
    /// For `workers` workers.
    pub fn new(workers: usize) -> Self {
        Sleep(crate::sleep::Sleep::new(workers))
    }
    /// See `sleep::Sleep::start_searching`.
    pub fn start_searching(&self) -> bool {
        self.0.start_searching()
    }
    /// See `sleep::Sleep::stop_searching`.
    pub fn stop_searching(&self, has_work: impl FnOnce() -> bool) {
        self.0.stop_searching(has_work)
    }
    /// See `sleep::Sleep::pass_on`.
    pub fn pass_on(&self, has_work: impl FnOnce() -> bool) {
        self.0.pass_on(has_work)
    }
    /// See `sleep::Sleep::announce`.
    pub fn announce(&self, worker: usize, searching: bool) {
        self.0.announce(worker, searching)
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

/// The injector's ring of ready slot indices.
pub struct Injector {
    ring: crate::injector::Injector,
    local: crossbeam_deque::Worker<u32>,
}

impl Injector {
    /// A ring of `capacity` cells (rounded up to a power of two, at least 2).
    pub fn new(capacity: usize) -> Self {
        Injector {
            ring: crate::injector::Injector::new(capacity),
            local: crossbeam_deque::Worker::new_fifo(),
        }
    }
    /// See `injector::Injector::push`.
    pub fn push(&self, index: u32) {
        self.ring.push(index)
    }
    /// One index: from the batch a previous take moved aside, else from the ring
    /// (`steal_batch_and_pop`, retried while a push is half done). `None` if empty.
    pub fn take(&self) -> Option<u32> {
        if let Some(index) = self.local.pop() {
            return Some(index);
        }
        loop {
            match self.ring.steal_batch_and_pop(&self.local) {
                crossbeam_deque::Steal::Success(index) => return Some(index),
                crossbeam_deque::Steal::Empty => return None,
                crossbeam_deque::Steal::Retry => crate::sync::spin_hint(),
            }
        }
    }
    /// See `injector::Injector::is_empty`.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}
