//! The state every worker, handle and waker of one runtime shares, and the paths a
//! task takes through it: schedule, run, finish (walk the fan-out), release, reclaim.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use crossbeam_deque::{Steal, Stealer};

use crate::console::TaskSpan;
use crate::deferred::{BODY, Completion, body_return_finishes, cancel_wins};
use crate::error::TaskError;
use crate::id_waiters::IdWaiters;
use crate::injector::Injector;
use crate::mailbox::Mailbox;
use crate::monitor::Monitor;
use crate::sleep::Sleep;
use crate::stats::{GlobalCounters, SAMPLE_EVERY, WorkerState, nanos_since};
use crate::sync::{AtomicU8, AtomicUsize, Ordering, thread};
use crate::task::{Closed, Fanout, TaskId, borrowed_waker, close_and_walk, run_state};
use crate::trace::Tracer;
use crate::window::Window;
use crate::worker;

/// Runtime lifecycle (`Shared::lifecycle`).
pub(crate) mod lifecycle {
    /// Accepting submissions.
    pub(crate) const OPEN: u8 = 0;
    /// `shutdown()` called: no new submissions, workers finish what is outstanding.
    pub(crate) const DRAINING: u8 = 1;
    /// Workers exit; whatever has not finished is cancelled.
    pub(crate) const STOPPING: u8 = 2;
}

/// A value alone on its cache lines (no false sharing with its neighbours).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Everything one runtime's threads share.
pub(crate) struct Shared {
    pub(crate) window: Window,
    pub(crate) injector: Injector,
    pub(crate) stealers: Box<[Stealer<u32>]>,
    pub(crate) sleep: Sleep,
    pub(crate) id_waiters: IdWaiters,
    /// Deferred completions on their way to a worker (DESIGN.md §6).
    pub(crate) mailbox: Mailbox<Completion>,
    /// Deadlines and the watchdog.
    pub(crate) monitor: Monitor,
    /// Per-worker progress, current task and counters.
    pub(crate) worker_states: Box<[WorkerState]>,
    /// Counters written off the workers.
    pub(crate) counters: GlobalCounters,
    /// Time zero of the runtime's sampled timestamps.
    pub(crate) epoch: std::time::Instant,
    /// Trace recording (a no-op type without the `trace` feature).
    pub(crate) tracer: Tracer,
    pub(crate) lifecycle: AtomicU8,
    /// Submissions in progress (see `begin_submit`); written on every submission, so
    /// on a cache line of its own.
    pub(crate) submitters: Padded<AtomicUsize>,
    /// Slot holds handed to the workers by [`HeldTasks::release_later`](crate::HeldTasks::release_later).
    pub(crate) releases: Padded<crate::held::ReleaseQueue>,
    /// Worker threads that have not exited; the last one cancels what is left (R7).
    pub(crate) workers_alive: AtomicUsize,
}

impl Shared {
    pub(crate) fn slot_name(&self, index: u32) -> Option<Cow<'static, str>> {
        // SAFETY: callers own the task's execution (R4) or it has closed (R5): the name
        // is not being written.
        self.window.slots[index as usize]
            .meta
            .with(|meta| unsafe { (*meta).name.clone() })
    }

    /// The name of task `id`, if it still occupies its slot (safe from any thread).
    pub(crate) fn name_of(&self, id: TaskId) -> Option<Cow<'static, str>> {
        let slot = self.window.slots.get(id.index() as usize)?;
        if !slot.try_acquire(id.generation()) {
            return None;
        }
        // SAFETY: the name is written by the submitter before it publishes the holder
        // count (R2) and not again until reclaim, which our reference holds off (R10).
        let name = slot.meta.with(|meta| unsafe { (*meta).name.clone() });
        self.release(id.index());
        name
    }

    /// The deferred-completion deadline task `id` was submitted with.
    pub(crate) fn deadline_of(&self, id: TaskId) -> Option<std::time::Duration> {
        let slot = self.window.slots.get(id.index() as usize)?;
        if !slot.try_acquire(id.generation()) {
            return None;
        }
        // SAFETY: as in `name_of`: written at submission only.
        let deadline = slot.meta.with(|meta| unsafe { (*meta).deadline });
        self.release(id.index());
        deadline
    }

    /// Whether task `id` has not finished (a stale or out-of-range id has).
    pub(crate) fn is_open(&self, id: TaskId) -> bool {
        self.window
            .slots
            .get(id.index() as usize)
            .is_some_and(|slot| slot.fanout_state(id.generation()) == Fanout::Open)
    }

    /// Makes a ready task runnable: on this runtime's worker thread it goes to the
    /// local queue, elsewhere to the injector; then a sleeping worker may be woken.
    #[inline]
    pub(crate) fn schedule(&self, index: u32) {
        self.schedule_at(index, 0);
    }

    /// [`Shared::schedule`] by a finishing poll that ended at `ready_stamp` (0: not
    /// recorded; see [`Shared::stamp_ready`]).
    #[inline]
    fn schedule_at(&self, index: u32, ready_stamp: u64) {
        self.stamp_ready(index, ready_stamp);
        if !worker::push_local(self, index) {
            self.injector.push(index);
        }
        self.sleep.notify_one();
    }

    /// Notes when a sampled (or traced) task became ready.
    ///
    /// `ready_stamp` (not 0) is the [`Tracer::ready_stamp`] of the end of the poll
    /// whose completion readies the task: the task is stamped ready then, or at its
    /// submission if that was later (the submitter left that stamp in `ready_at`) —
    /// a clock read fewer per task, early by the few tens of nanoseconds of the
    /// finishing bookkeeping, like any unordered stamp ([`Tracer::stamp`]).
    #[inline]
    fn stamp_ready(&self, index: u32, ready_stamp: u64) {
        let ready_at = &self.window.slots[index as usize].ready_at;
        let stamp = if ready_stamp != 0 {
            // Stamps are below 2^63 with the STAMPED bit on top, so they compare as
            // stamps; a value without the bit (a sampled time, or 0) is smaller.
            ready_stamp.max(ready_at.load(Ordering::Relaxed))
        } else if self.tracer.enabled() {
            self.tracer.ready_stamp()
        } else if u64::from(index).is_multiple_of(SAMPLE_EVERY) {
            nanos_since(self.epoch).max(1)
        } else {
            return;
        };
        ready_at.store(stamp, Ordering::Relaxed);
    }

    /// Measures a sampled task's ready→start latency as it starts; returns when it
    /// became ready (0 if not stamped).
    #[inline]
    fn measure_start(&self, index: u32, traced: bool) -> u64 {
        let sampled = u64::from(index).is_multiple_of(SAMPLE_EVERY);
        if !sampled && !traced {
            return 0;
        }
        // Only the thread that runs the task touches `ready_at` between its stamp
        // (before the task was queued) and here, so a load and a store will do (no
        // read-modify-write).
        let ready_at_cell = &self.window.slots[index as usize].ready_at;
        let ready_at = ready_at_cell.load(Ordering::Relaxed);
        if ready_at != 0 {
            ready_at_cell.store(0, Ordering::Relaxed);
        }
        if sampled && ready_at != 0 {
            let latency = self
                .tracer
                .elapsed_since_ready(ready_at)
                .unwrap_or_else(|| nanos_since(self.epoch).saturating_sub(ready_at));
            self.counters
                .latency_ns
                .fetch_add(latency, Ordering::Relaxed);
            self.counters
                .latency_samples
                .fetch_add(1, Ordering::Relaxed);
        }
        ready_at
    }

    /// Counts a finished task on the current worker's counters, or globally.
    fn count_finished(&self, failed: bool) {
        match worker::current_index(self) {
            Some(w) if failed => self.worker_states[w].failed.add(1),
            Some(w) => self.worker_states[w].completed.add(1),
            None if failed => {
                self.counters
                    .failed_elsewhere
                    .fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.counters
                    .completed_elsewhere
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Tasks submitted and not yet finished, counted in the window.
    pub(crate) fn count_open_tasks(&self) -> usize {
        let mut open = 0;
        let mut from = 0;
        while let Some((index, _)) = self.first_open_task(from) {
            open += 1;
            from = index + 1;
        }
        open
    }

    /// Re-queues a task whose body was woken while it ran: to the injector, so other
    /// ready tasks get a turn first.
    fn reschedule(&self, index: u32) {
        self.injector.push(index);
        self.sleep.notify_one();
    }

    /// Whether any queue or the mailbox holds work (the sleep protocol's last look).
    /// A claimed mailbox message counts before it is published (`crate::mailbox`).
    pub(crate) fn has_work(&self) -> bool {
        self.mailbox.has_claims() || self.has_visible_work()
    }

    /// [`Shared::has_work`] without unpublished mailbox claims: the cheap look of a
    /// spinning worker, which keeps off the line the mailbox's producers write.
    pub(crate) fn has_visible_work(&self) -> bool {
        !self.injector.is_empty()
            || self.mailbox.needs_drainer()
            || self.releases.is_pending()
            || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Takes work from the injector or another worker.
    pub(crate) fn steal(&self, me: usize, local: &crossbeam_deque::Worker<u32>) -> Option<u32> {
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(local) {
                Steal::Success(index) => return Some(index),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.stealers.len();
            for k in 1..n {
                match self.stealers[(me + k) % n].steal() {
                    Steal::Success(index) => {
                        self.worker_states[me].steals.add(1);
                        return Some(index);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
            crate::sync::spin_hint();
        }
    }

    /// Polls the ready task in slot `index` once, on a worker (R4). A successor it
    /// readies may come back in `handoff` to run next on this worker.
    pub(crate) fn run(&self, index: u32, handoff: &mut Option<u32>) {
        let slots = &self.window.slots;
        let slot = &slots[index as usize];
        // In a chain the first consumer is the next task to run: its lines, which the
        // submitter wrote, come in while this one runs rather than one by one after.
        if let Some(next) = slot
            .first_consumer_hint()
            .and_then(|c| slots.get(c as usize))
        {
            next.prefetch();
        }
        let generation = slot.generation();
        slot.run_state.store(run_state::RUNNING, Ordering::Relaxed);
        let traced = self.tracer.enabled();
        let ready_at = self.measure_start(index, traced);
        let started = if traced {
            self.tracer.stamp_ordered()
        } else {
            0
        };
        let id = TaskId::new(index, generation);
        if let Some(cause) = slot.take_dep_failure() {
            let error = cause.for_dependent(id, self.slot_name(index));
            self.fail(index, generation, error, &mut |c| self.ready(c, handoff, 0));
            return;
        }
        let waker = borrowed_waker(slot);
        let mut cx = Context::from_waker(&waker);
        worker::set_current_task(self, index, id.to_bits());
        // SAFETY: R4: this worker popped the ready task, so it owns meta and the stage,
        // which the submitter installed (R2).
        let polled = catch_unwind(AssertUnwindSafe(|| unsafe {
            let _entered = (*slot.meta.with(|meta| &raw const (*meta).span)).enter();
            slot.poll_body(&mut cx)
        }));
        worker::set_current_task(self, u32::MAX, u64::MAX);
        // While recording, the successors this poll's completion readies are stamped
        // ready at its end (see `stamp_ready`).
        let mut successors_ready = 0;
        if traced {
            let ended = self.tracer.stamp();
            self.tracer
                .polled(worker::current_index(self), id, ready_at, started, ended);
            successors_ready = self.tracer.as_ready_stamp(ended);
        }
        match polled {
            Ok(Poll::Ready(Ok(()))) => {
                self.body_returned(index, generation, None, handoff, successors_ready)
            }
            Ok(Poll::Ready(Err(error))) => {
                let error = TaskError::Failed {
                    task: id,
                    name: self.slot_name(index),
                    error: error.into(),
                };
                self.body_returned(index, generation, Some(error), handoff, successors_ready);
            }
            Ok(Poll::Pending) => {
                if let Err(_notified) = slot.run_state.compare_exchange(
                    run_state::RUNNING,
                    run_state::IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // Woken during the poll: poll again later.
                    slot.run_state
                        .store(run_state::SCHEDULED, Ordering::Release);
                    self.reschedule(index);
                }
            }
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                let error = TaskError::Panicked {
                    task: id,
                    name: self.slot_name(index),
                    message,
                };
                self.body_returned(index, generation, Some(error), handoff, successors_ready);
            }
        }
    }

    /// The body finished (with an output, or with `error`): finish the task now, or,
    /// if completion tokens are outstanding, leave that to the last of them (R11).
    /// Successors readied here get `ready_stamp` (see [`Shared::stamp_ready`]).
    fn body_returned(
        &self,
        index: u32,
        generation: u32,
        error: Option<TaskError>,
        handoff: &mut Option<u32>,
        ready_stamp: u64,
    ) {
        let slot = &self.window.slots[index as usize];
        let mut on_ready = |c| self.ready(c, handoff, ready_stamp);
        if slot.deferred.load(Ordering::Acquire) == BODY {
            // No token outstanding, and only the body (which has returned) makes them.
            // Tokens it took may all have reported already: a failure among them counts
            // (recorded before the decrements this load saw, R11).
            match error.or_else(|| slot.take_token_error()) {
                None => self.finish(index, generation, Closed::Ok, &mut on_ready),
                Some(error) => self.fail(index, generation, error, &mut on_ready),
            }
            return;
        }
        // SAFETY: R4: the body's worker owns meta until it clears BODY below.
        if let Some(deadline) = slot.meta.with(|meta| unsafe { (*meta).deadline }) {
            self.monitor.add_deadline(
                std::time::Instant::now() + deadline,
                TaskId::new(index, generation),
            );
        }
        if let Some(error) = error {
            // SAFETY: R4: the body's worker still owns the stage and meta until it clears
            // BODY below, which publishes the error to the finisher (R11).
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { slot.drop_body() }));
            // SAFETY: as above.
            slot.meta
                .with_mut(|meta| unsafe { (*meta).error = Some(error) });
        }
        if body_return_finishes(&slot.deferred) {
            // Every token reported while the body ran: finishing is ours (R11).
            self.finish_deferred(index, &mut on_ready);
        }
    }

    /// The first successor readied by a worker runs next on it; the rest are queued.
    #[inline]
    fn ready(&self, consumer: u32, handoff: &mut Option<u32>, ready_stamp: u64) {
        match handoff {
            None => {
                self.stamp_ready(consumer, ready_stamp);
                *handoff = Some(consumer);
            }
            Some(_) => self.schedule_at(consumer, ready_stamp),
        }
    }

    /// Fails the task: drops its body, stores `error` (R4) and finishes it.
    pub(crate) fn fail(
        &self,
        index: u32,
        generation: u32,
        error: TaskError,
        on_ready: &mut dyn FnMut(u32),
    ) {
        let slot = &self.window.slots[index as usize];
        // A body's destructor may panic; the task fails either way.
        // SAFETY: R4/R7: the caller owns the running (or cancelled) task.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { slot.drop_body() }));
        // SAFETY: R4/R7: written before the close that publishes it (R5).
        slot.meta
            .with_mut(|meta| unsafe { (*meta).error = Some(error) });
        self.finish(index, generation, Closed::Failed, on_ready);
    }

    /// Completes the task (R5): close the fan-out list, wake whoever waits, walk the
    /// consumers (R8), then drop the execution's reference.
    pub(crate) fn finish(
        &self,
        index: u32,
        generation: u32,
        how: Closed,
        on_ready: &mut dyn FnMut(u32),
    ) {
        let slots = &self.window.slots;
        let slot = &slots[index as usize];
        slot.run_state.store(run_state::DONE, Ordering::Release);
        // The console span ends with the task (R4: the finisher owns meta until the
        // close below).
        // SAFETY: as stated.
        slot.meta
            .with_mut(|meta| unsafe { (*meta).span = TaskSpan::none() });
        slot.waker_tag.set(&TaskSpan::none());
        let failed = how == Closed::Failed;
        self.count_finished(failed);
        // SAFETY: the caller wrote `meta.error` (if failed) before this point and owns the
        // execution (R4/R7); from the close on `meta` is read-only (R5), and the
        // execution reference keeps the slot from being reclaimed until the release.
        unsafe {
            let error = slot
                .meta
                .with(|meta| if failed { (*meta).error.as_ref() } else { None });
            close_and_walk(slots, index, generation, how, error, on_ready);
        }
        slot.join_waker.wake();
        self.id_waiters.wake_slot(index);
        if slot.release() {
            self.reclaim(index);
        }
    }

    /// Releases one holder of slot `index` (R10), reclaiming it if that was the last.
    pub(crate) fn release(&self, index: u32) {
        if self.window.slots[index as usize].release() {
            self.reclaim(index);
        }
    }

    /// Frees slot `index` for the next task (R6).
    pub(crate) fn reclaim(&self, index: u32) {
        let slot = &self.window.slots[index as usize];
        // An output's destructor may panic; the slot is freed regardless.
        // SAFETY: R6: the last holder has exclusive access to every field.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { slot.drop_stage() }));
        // SAFETY: R6 as above.
        let (name, error) = slot
            .meta
            .with_mut(|meta| unsafe { ((*meta).name.take(), (*meta).error.take()) });
        drop((name, error, slot.take_dep_failure()));
        slot.join_waker.clear();
        // SAFETY: R6.
        unsafe { slot.trim_edges() };
        // SAFETY: R6.
        let held_runtime = unsafe { slot.tokens.reset() };
        self.window
            .recycle(index, |index| worker::stash_free_slot(self, index));
        if held_runtime {
            // R12: the book's strong count goes back last. Every caller holds a count
            // of its own (a worker, a handle, the monitor, a post after stopping).
            worker::give_back_runtime_count(self);
        }
    }

    /// Marks the start of a submission; `false` (and nothing to undo) when the runtime
    /// no longer accepts work. Pairs with `stop_submissions` (both SeqCst).
    #[inline]
    pub(crate) fn begin_submit(&self) -> bool {
        self.submitters.fetch_add(1, Ordering::SeqCst);
        if self.lifecycle.load(Ordering::SeqCst) == lifecycle::OPEN {
            true
        } else {
            self.submitters.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    #[inline]
    pub(crate) fn end_submit(&self) {
        self.submitters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Moves the lifecycle forward to `to` and waits until submissions that started
    /// before have finished, so none can publish a task afterwards.
    pub(crate) fn stop_submissions(&self, to: u8) {
        self.lifecycle.fetch_max(to, Ordering::SeqCst);
        while self.submitters.load(Ordering::SeqCst) != 0 {
            thread::yield_now();
        }
        self.window.wake_waiters();
    }

    /// Tells every worker to exit; the last one cancels what is left (R7).
    pub(crate) fn stop_workers(&self) {
        self.stop_submissions(lifecycle::STOPPING);
        self.sleep.notify_all();
        self.monitor.stop();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.lifecycle.load(Ordering::SeqCst) == lifecycle::STOPPING
    }

    /// The first open task in the window at or after `from`, if any (for draining).
    pub(crate) fn first_open_task(&self, from: usize) -> Option<(usize, TaskId)> {
        (from..self.window.len()).find_map(|i| {
            let slot = &self.window.slots[i];
            let generation = slot.generation();
            let open = slot.holders() > 0 && slot.fanout_state(generation) == Fanout::Open;
            open.then(|| (i, TaskId::new(i as u32, generation)))
        })
    }

    /// Cancels every task that has not finished (R7). Runs once, on the last worker
    /// to exit, so no body is being polled. Tasks are cancelled in dependency order:
    /// only a task whose producers have all finished is cancelled, and cancelling it
    /// readies its consumers, so no fan-out list is walked after its consumer finished.
    pub(crate) fn cancel_outstanding(&self) {
        // Completions that already arrived count: apply them first, including those
        // claimed and still being published (their producers are about to). Later
        // reports are applied by their own threads (`crate::mailbox`, "Closing").
        self.mailbox
            .close(|c| self.process_completion(c, &mut |index| self.schedule(index)));
        let mut cancellable = Vec::new();
        for (index, slot) in self.window.slots.iter().enumerate() {
            // Generation first: if the slot is reclaimed after, `fanout_state` says Stale.
            let generation = slot.generation();
            if slot.holders() > 0
                && slot.fanout_state(generation) == Fanout::Open
                && slot.fan_in.load(Ordering::Acquire) == 0
            {
                cancellable.push((index as u32, generation));
            }
        }
        self.cancel_ready(cancellable);
        self.run_releases();
        self.window.wake_waiters();
    }

    /// Cancels the given ready tasks and, as cancelling them readies their consumers,
    /// those too (R7, R11). Used by the sweep and by completions that arrive after
    /// the workers stopped.
    pub(crate) fn cancel_ready(&self, mut cancellable: Vec<(u32, u32)>) {
        while let Some((index, generation)) = cancellable.pop() {
            let slot = &self.window.slots[index as usize];
            // R11: cut the task so late tokens only release; skip it if its last token
            // finished it meanwhile (reports are processed inline once stopping).
            if !cancel_wins(&slot.deferred) {
                continue;
            }
            slot.run_state.store(run_state::DONE, Ordering::Release);
            drop(slot.take_dep_failure());
            let id = TaskId::new(index, generation);
            let error = TaskError::Cancelled {
                task: id,
                name: self.slot_name(index),
            };
            let slots = &self.window.slots;
            self.fail(index, generation, error, &mut |c| {
                cancellable.push((c, slots[c as usize].generation()))
            });
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Every holder is gone (handles and wakers each own an `Arc<Shared>`), so only
        // stages of tasks that were never reclaimed could remain; drop them.
        for slot in self.window.slots.iter() {
            // SAFETY: `&mut self`: no other thread can reach the slots.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { slot.drop_stage() }));
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
