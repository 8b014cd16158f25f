//! Deferred completions: a body takes [`CompletionToken`]s with [`defer`]; the task
//! completes once its body has returned *and* every token has completed. Tokens
//! report through the runtime's [`Mailbox`](crate::mailbox::Mailbox); a worker drains
//! it and runs the normal completion path (DESIGN.md §6).
//!
//! # The `deferred` word (rule R11)
//!
//! Each slot's `deferred: AtomicU32` holds the number of outstanding tokens, plus
//! `BODY` while the body has not returned and `CUT` once the task was finished early
//! (deadline, watchdog, cancellation). Exactly one thread finishes a task:
//!
//! - the worker whose body returns and finds no token outstanding (`deferred == BODY`:
//!   only the body creates tokens, so none can appear; no RMW on this fast path), or
//!   whose `fetch_and(!BODY)` finds the count already at zero;
//! - the thread processing the token message whose `fetch_sub` takes the word from
//!   exactly 1 to 0 (body returned, not cut);
//! - the thread whose `fetch_or(CUT)` finds the body returned and tokens outstanding.
//!
//! The finisher has exclusive access to `meta` (like R4). A body error is written to
//! `meta.error` before `BODY` is cleared (Release), token errors are recorded in the
//! slot's `token_error` before the count is decremented, so the finisher sees every
//! condition reported for the task before it completes it. Each token holds a slot
//! reference (R10) until its message has been processed, so a task cut early keeps
//! its slot until its late tokens have reported.

use std::borrow::Cow;
use std::fmt;

use crate::error::TaskError;
use crate::shared::Shared;
use crate::sync::{Arc, AtomicU32, Ordering};
use crate::task::{BoxError, TaskId};
use crate::worker;

/// `deferred` bit: the body has not returned yet.
pub(crate) const BODY: u32 = 1 << 30;
/// `deferred` bit: the task was finished early; late tokens only release.
pub(crate) const CUT: u32 = 1 << 31;
/// `deferred` bits counting outstanding tokens.
pub(crate) const COUNT: u32 = BODY - 1;

/// The body returned: whether this thread now finishes the task (R11). The load
/// avoids an RMW on the common path where the body took no token.
pub(crate) fn body_return_finishes(deferred: &AtomicU32) -> bool {
    deferred.load(Ordering::Acquire) == BODY || deferred.fetch_and(!BODY, Ordering::AcqRel) == BODY
}

/// `count` tokens reported: whether this thread now finishes the task (R11).
pub(crate) fn token_reports_finish(deferred: &AtomicU32, count: u32) -> bool {
    deferred.fetch_sub(count, Ordering::AcqRel) == count
}

/// A deadline or the watchdog wants to finish the task early: whether this thread
/// does (only if the body returned and tokens are still out, R11).
pub(crate) fn cut_wins(deferred: &AtomicU32) -> bool {
    let waiting = |word: u32| word & (BODY | CUT) == 0 && word & COUNT != 0;
    waiting(deferred.load(Ordering::Acquire)) && waiting(deferred.fetch_or(CUT, Ordering::AcqRel))
}

/// The cancel sweep (workers gone) wants to finish the task: whether it does. It
/// loses only if the task already finished or was cut (R7, R11).
pub(crate) fn cancel_wins(deferred: &AtomicU32) -> bool {
    let before = deferred.fetch_or(CUT, Ordering::AcqRel);
    before & CUT == 0 && before & (BODY | COUNT) != 0
}

/// Most reports applied in one drain.
const DRAIN_BATCH: usize = 256;

/// What a token reports.
pub(crate) enum Outcome {
    Done,
    Failed(BoxError),
    Dropped,
}

/// One mailbox message: token `key` of the task in slot `index` reports `outcome`.
pub(crate) struct Completion {
    pub(crate) key: u32,
    pub(crate) index: u32,
    pub(crate) outcome: Outcome,
}

/// What the runtime remembers about an outstanding token (for errors and the watchdog).
pub(crate) struct TokenRecord {
    pub(crate) task: TaskId,
    pub(crate) description: Cow<'static, str>,
}

/// Defers the completion of the task whose body is running on this thread: the task
/// completes only when its body has returned and this token (and every other one it
/// took) has completed.
///
/// # Panics
/// When called outside a task body (see [`try_defer`]).
///
/// ```
/// use taskweave_executor::{Runtime, defer};
/// let rt = Runtime::builder().workers(1).build();
/// let task = rt
///     .task(|| {
///         let token = defer("dma: copy tile 0");
///         // Any thread may complete the token later.
///         std::thread::spawn(move || token.complete());
///         7
///     })
///     .submit_blocking();
/// assert_eq!(task.wait_blocking().unwrap(), 7);
/// ```
pub fn defer(description: impl Into<Cow<'static, str>>) -> CompletionToken {
    match try_defer(description) {
        Ok(token) => token,
        Err(error) => panic!("{error}"),
    }
}

/// [`defer`], with an error instead of a panic outside a task body.
pub fn try_defer(description: impl Into<Cow<'static, str>>) -> Result<CompletionToken, NotInTask> {
    let (shared, index) = worker::current_task().ok_or(NotInTask)?;
    let slot = &shared.window.slots[index as usize];
    let task = TaskId::new(index, slot.generation());
    // The body runs on this thread (BODY is set): the count cannot reach zero under us.
    slot.deferred.fetch_add(1, Ordering::Relaxed);
    slot.acquire_more();
    let key = shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(TokenRecord {
            task,
            description: description.into(),
        });
    Ok(CompletionToken {
        shared,
        key: key as u32,
        index,
        reported: false,
    })
}

/// `defer` was called outside a task body.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("taskweave: defer() must be called from inside a task body running on a taskweave worker")]
pub struct NotInTask;

/// A promise that a task's completion will be reported later, possibly from another
/// thread. Complete it with [`complete`](CompletionToken::complete) or
/// [`fail`](CompletionToken::fail); both consume it, so it reports at most once.
/// Dropping it unreported fails its task with [`TaskError::TokenDropped`].
#[must_use = "a token dropped without completing fails its task"]
pub struct CompletionToken {
    shared: Arc<Shared>,
    key: u32,
    index: u32,
    reported: bool,
}

impl CompletionToken {
    /// Reports success.
    pub fn complete(mut self) {
        self.report(Outcome::Done);
    }

    /// Reports failure: the task fails with [`TaskError::TokenFailed`] carrying `error`
    /// and this token's description.
    pub fn fail(mut self, error: impl Into<BoxError>) {
        self.report(Outcome::Failed(error.into()));
    }

    /// The task this token belongs to.
    pub fn task(&self) -> TaskId {
        let tokens = self.shared.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(self.key as usize)
            .map_or(TaskId::INVALID, |record| record.task)
    }

    fn report(&mut self, outcome: Outcome) {
        self.reported = true;
        self.shared.post_completion(Completion {
            key: self.key,
            index: self.index,
            outcome,
        });
    }
}

impl Drop for CompletionToken {
    fn drop(&mut self) {
        if !self.reported {
            self.report(Outcome::Dropped);
        }
    }
}

impl fmt::Debug for CompletionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionToken")
            .field("key", &self.key)
            .field("slot", &self.index)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Sends a token's report to the scheduler. After the workers stopped, processes
    /// it on the calling thread instead, so nothing waits on a drainer that is gone.
    pub(crate) fn post_completion(&self, completion: Completion) {
        if self.is_stopping() {
            // No worker will run what this completion readies: cancel it here.
            let mut ready = Vec::new();
            let slots = &self.window.slots;
            self.process_completion(completion, &mut |index| {
                ready.push((index, slots[index as usize].generation()))
            });
            self.cancel_ready(ready);
            return;
        }
        self.mailbox.push(completion);
        self.sleep.notify_one();
    }

    /// Drains a batch of token reports on a worker; the first task they make ready
    /// may come back in `handoff`. Returns how many were drained.
    ///
    /// Reports are applied in arrival order, consecutive reports for the same task in
    /// one step (one `fetch_sub(n)` on its deferred word, one release of `n`
    /// references), and the batch's token records are removed under one lock.
    pub(crate) fn drain_mailbox(&self, handoff: &mut Option<u32>) -> usize {
        let mut on_ready = |c| match handoff {
            None => *handoff = Some(c),
            Some(_) => self.schedule(c),
        };
        let mut keys = [0u32; DRAIN_BATCH];
        let mut taken = 0;
        let mut run: Option<(u32, u32)> = None;
        let drained = self.mailbox.drain(
            DRAIN_BATCH,
            |Completion {
                 key,
                 index,
                 outcome,
             }| {
                keys[taken] = key;
                taken += 1;
                if !matches!(outcome, Outcome::Done) {
                    // Recorded before the decrement below: processed before completion.
                    self.record_token_outcome(key, index, outcome);
                }
                match &mut run {
                    Some((task, count)) if *task == index => *count += 1,
                    _ => {
                        if let Some((task, count)) = run.replace((index, 1)) {
                            self.apply_reports(task, count, &mut on_ready);
                        }
                    }
                }
            },
        );
        if let Some((task, count)) = run {
            self.apply_reports(task, count, &mut on_ready);
        }
        if taken > 0 {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            for key in &keys[..taken] {
                tokens.try_remove(*key as usize);
            }
        }
        drained.unwrap_or(0)
    }

    /// Applies one token report (R11) outside a drain (after the workers stopped).
    pub(crate) fn process_completion(&self, completion: Completion, on_ready: &mut dyn FnMut(u32)) {
        let Completion {
            key,
            index,
            outcome,
        } = completion;
        if !matches!(outcome, Outcome::Done) {
            self.record_token_outcome(key, index, outcome);
        }
        self.apply_reports(index, 1, on_ready);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_remove(key as usize);
    }

    /// Records a failed or dropped token's error on its task (R11: before the report
    /// is counted).
    fn record_token_outcome(&self, key: u32, index: u32, outcome: Outcome) {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = tokens.get(key as usize) else {
            return;
        };
        let (task, token) = (record.task, record.description.clone());
        drop(tokens);
        let name = self.slot_name(index);
        let error = match outcome {
            Outcome::Done => return,
            Outcome::Failed(error) => TaskError::TokenFailed {
                task,
                name,
                token,
                error: error.into(),
            },
            Outcome::Dropped => TaskError::TokenDropped { task, name, token },
        };
        self.window.slots[index as usize].record_token_error(error);
    }

    /// Counts `count` reports for the task in slot `index`: finishes it if they were
    /// the last (R11), then drops the tokens' references (R10).
    fn apply_reports(&self, index: u32, count: u32, on_ready: &mut dyn FnMut(u32)) {
        let slot = &self.window.slots[index as usize];
        if token_reports_finish(&slot.deferred, count) {
            self.finish_deferred(index, on_ready);
        }
        if slot.release_many(count) {
            self.reclaim(index);
        }
    }

    /// Finishes a task whose body returned and whose tokens all reported (R11: the
    /// caller won the right to finish it).
    pub(crate) fn finish_deferred(&self, index: u32, on_ready: &mut dyn FnMut(u32)) {
        let slot = &self.window.slots[index as usize];
        let generation = slot.generation();
        // SAFETY: R11: the finisher owns meta.
        let body_failed = slot.meta.with(|meta| unsafe { (*meta).error.is_some() });
        match slot.take_token_error() {
            _ if body_failed => {
                self.finish(index, generation, crate::task::Closed::Failed, on_ready)
            }
            Some(error) => self.fail(index, generation, error, on_ready),
            None => self.finish(index, generation, crate::task::Closed::Ok, on_ready),
        }
    }

    /// Finishes a task early with `error` if its body returned and tokens are still
    /// outstanding (deadline or watchdog). Returns whether it did.
    pub(crate) fn cut(
        &self,
        id: TaskId,
        error: impl FnOnce() -> TaskError,
        on_ready: &mut dyn FnMut(u32),
    ) -> bool {
        let slot = &self.window.slots[id.index() as usize];
        if !slot.try_acquire(id.generation()) {
            return false;
        }
        let cut = cut_wins(&slot.deferred);
        if cut {
            // R11: we won; the tokens still out will only release their references.
            self.fail(id.index(), id.generation(), error(), on_ready);
        }
        self.release(id.index());
        cut
    }

    /// Descriptions of the tokens task `id` still waits for.
    pub(crate) fn outstanding_tokens(&self) -> Vec<(TaskId, String)> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .iter()
            .map(|(_, record)| (record.task, record.description.to_string()))
            .collect()
    }
}

#[cfg(all(test, not(taskweave_loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use crate::Runtime;
    use crate::sync::Arc;

    /// Workers take runtime references for tokens in batches (`worker::current_task`);
    /// what they did not hand out is given back when they exit, so the runtime's
    /// shared state is freed.
    #[test]
    fn the_runtime_is_freed_after_tokens_taken_in_batches() {
        let rt = Runtime::builder().workers(2).build();
        let shared = Arc::downgrade(&rt.shared);
        let (send, receive) = std::sync::mpsc::channel();
        // 100 tokens: more than one batch, and part of a batch left over.
        let task = rt
            .task(move || {
                let tokens: Vec<_> = (0..100)
                    .map(|i| super::defer(format!("token {i}")))
                    .collect();
                send.send(tokens).unwrap();
            })
            .submit_blocking();
        for token in receive.recv().unwrap() {
            token.complete();
        }
        task.wait_blocking().unwrap();
        drop(rt);
        // The monitor thread may still be letting go of its reference.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.upgrade().is_some() {
            assert!(
                Instant::now() < deadline,
                "the runtime's shared state is still referenced after the runtime was dropped"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
