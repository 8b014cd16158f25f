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
//! `meta.error` before `BODY` is cleared (Release); a failed or dropped token's error
//! is recorded in the slot's `token_error` by the thread reporting it, before it
//! posts the report, hence before the count is decremented, so the finisher sees
//! every condition reported for the task before it completes it. Each token holds a
//! slot reference (R10) until its report has been applied, so a task cut early keeps
//! its slot until its late tokens have reported.
//!
//! # The token book (what the watchdog and the errors name)
//!
//! Each slot has a [`TokenBook`]: the descriptions its task's tokens were taken with,
//! one [`TokenEntry`] per run of equal descriptions (the first in the book, later
//! ones boxed so their addresses stay put), each with how many tokens it
//! stands for (`taken`) and how many of those have reported (`reported`). A token
//! points at its entry; its report names the entry, and the drainer counts a run of
//! reports of one entry with one `fetch_add` — except for the first entry, whose
//! share is the task's outstanding count less the other entries', so a task whose
//! tokens share one description costs the drainer no write to the book. Nothing
//! global is locked per token.
//!
//! - Only the body's worker (R4) writes the book while the body runs (`BODY` set):
//!   it starts entries (writing the description before the entry's first token
//!   exists) and counts `taken` (loads and stores, no RMW: it is the only writer).
//! - A description is read-only from its entry's first token until reclaim; a token
//!   reads its own entry's description (for `TokenFailed`/`TokenDropped`) through its
//!   pointer, which its slot reference (R10) keeps valid.
//! - The watchdog reads the whole book only holding a slot reference and after an
//!   Acquire load of `deferred` saw `BODY` clear: the body's writes happened before
//!   its Release clearing `BODY`, and there are no later ones until reclaim.
//! - Reclaim (R6) empties the book. The book itself is allocated by the slot's
//!   first task that takes a token and kept for its later ones (the slot holds a
//!   pointer to it: 8 bytes, not the book's 64).
//!
//! # Keeping the runtime alive (rule R12)
//!
//! Tokens hold a raw pointer to the runtime's [`Shared`], not a strong count each.
//! The first token an occupancy takes moves one strong count (from the worker's
//! pre-taken credits, `worker::take_runtime_count`) into the slot's book; reclaim
//! gives it back as its last step. That count outlives every token of the task and
//! every report in flight: each token holds a slot reference until its report was
//! applied, and the slot is reclaimed only when the last reference is gone. A
//! reporting thread touches the runtime only until it *publishes* its message (it
//! decides whether to wake a sleeper before the publish, see `crate::mailbox`), so
//! once a drainer can see the report, the reporter is done with the runtime — unless
//! it has a sleeper to wake: then it took a strong count of its own before the
//! publish, and wakes through that. After the workers stopped, a report is applied on
//! the reporting thread, which likewise first takes a strong count of its own.

use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::error::TaskError;
use crate::shared::Shared;
use crate::sync::{Arc, AtomicU32, Ordering, UnsafeCell};
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

/// One mailbox message: a token of the task in slot `index`, taken with the
/// description of `entry`, reports. A failed or dropped token's error was recorded
/// in the slot before the message was posted (R11), so the message says no more.
pub(crate) struct Completion {
    entry: NonNull<TokenEntry>,
    index: u32,
    /// Whether the entry counts its reports (not the book's first entry, see
    /// [`TokenEntry::reported`]).
    counted: bool,
}

// SAFETY: `entry` points into the slot's token book, which the token's slot reference
// keeps in place until the report is applied (R10); the drainer only touches the
// entry's atomics.
unsafe impl Send for Completion {}

/// One run of equal token descriptions in a task's [`TokenBook`].
pub(crate) struct TokenEntry {
    /// Written by the body's worker before the entry's first token exists, read-only
    /// from then until reclaim (see "The token book").
    description: UnsafeCell<Cow<'static, str>>,
    /// Tokens taken with this description (written only by the body's worker).
    taken: AtomicU32,
    /// Tokens of this entry whose reports were applied. Not counted for a book's
    /// first entry: its outstanding tokens are the task's less the other entries',
    /// so a task whose tokens share one description (the common case) costs the
    /// drainer no write to the book.
    reported: AtomicU32,
}

impl TokenEntry {
    fn new(description: Cow<'static, str>) -> Self {
        TokenEntry {
            description: UnsafeCell::new(description),
            taken: AtomicU32::new(0),
            reported: AtomicU32::new(0),
        }
    }

    /// The entry's description.
    ///
    /// # Safety
    /// The caller holds a token of this entry, or a slot reference with `BODY` seen
    /// clear (the description is not being written; see "The token book").
    unsafe fn description(&self) -> Cow<'static, str> {
        // SAFETY: per the caller's contract the description is read-only now.
        self.description.with(|d| unsafe { (*d).clone() })
    }

    /// Tokens of this (not first) entry not yet reported (the watchdog's
    /// approximate view).
    fn outstanding(&self) -> u32 {
        let reported = self.reported.load(Ordering::Relaxed);
        self.taken.load(Ordering::Relaxed).saturating_sub(reported)
    }
}

/// What [`Book::take`] returns.
struct Taken {
    /// The token's entry.
    entry: NonNull<TokenEntry>,
    /// The occupancy's first token: the caller moves a strong count of the runtime
    /// into the book (R12).
    first_use: bool,
    /// The entry counts its reports (it is not the book's first).
    counted: bool,
}

/// A slot's token book (see "The token book"): allocated by the slot's first task
/// that takes a token and kept, emptied, for the slot's later tasks, so a slot grows
/// by a pointer rather than by the book, and a task taking tokens allocates nothing
/// (the slot's first occupancy that does excepted). Written only by the body's
/// worker (R4), and only from `None` to `Some`; freed with the slot.
pub(crate) struct TokenBook(UnsafeCell<Option<Box<Book>>>);

impl TokenBook {
    pub(crate) fn new() -> Self {
        TokenBook(UnsafeCell::new(None))
    }

    /// The book, if allocated.
    ///
    /// # Safety
    /// Not concurrently with the allocation in `take`: the caller is the body's
    /// worker (R4), holds a token, saw `BODY` clear holding a slot reference, or
    /// reclaims (R6). The box is never freed before the slot, so the reference may
    /// live as long as `self`.
    unsafe fn book(&self) -> Option<&Book> {
        // SAFETY: per the caller's contract the option is not being written.
        self.0.with(|book| unsafe { (*book).as_deref() })
    }

    /// See [`Book::take`].
    ///
    /// # Safety
    /// The caller is the worker running the task's body (R4).
    unsafe fn take(&self, description: Cow<'static, str>) -> Taken {
        // SAFETY: R4: only the body's worker allocates the book.
        unsafe {
            let book = match self.book() {
                Some(book) => book,
                None => {
                    self.0.with_mut(|book| *book = Some(Box::new(Book::new())));
                    self.book().expect("just allocated")
                }
            };
            book.take(description)
        }
    }

    /// See [`Book::outstanding`].
    ///
    /// # Safety
    /// As [`Book::outstanding`].
    unsafe fn outstanding(&self, total: u32) -> Vec<String> {
        // SAFETY: per the caller's contract.
        unsafe {
            self.book()
                .map_or_else(Vec::new, |book| book.outstanding(total))
        }
    }

    /// See [`Book::reset`].
    ///
    /// # Safety
    /// The caller reclaims the slot (R6).
    #[inline]
    pub(crate) unsafe fn reset(&self) -> bool {
        // SAFETY: R6: exclusive access.
        unsafe { self.book().is_some_and(|book| book.reset()) }
    }
}

/// The descriptions of the tokens one task took (see "The token book").
struct Book {
    first: TokenEntry,
    /// Entries after the first, boxed so their addresses stay put while it grows.
    #[expect(
        clippy::vec_box,
        reason = "tokens point at their entries while the body adds more"
    )]
    more: UnsafeCell<Vec<Box<TokenEntry>>>,
    /// Whether this occupancy took a token, so `first` is live and the book holds one
    /// strong count of the runtime (R12).
    in_use: UnsafeCell<bool>,
}

impl Book {
    fn new() -> Self {
        Book {
            first: TokenEntry::new(Cow::Borrowed("")),
            more: UnsafeCell::new(Vec::new()),
            in_use: UnsafeCell::new(false),
        }
    }

    /// Counts one more token described by `description` and returns its entry: the
    /// last entry if its description is equal, else a new one.
    ///
    /// # Safety
    /// The caller is the worker running the task's body (R4).
    unsafe fn take(&self, description: Cow<'static, str>) -> Taken {
        // SAFETY: R4: only the body's worker writes `in_use`, `more` and the entries'
        // descriptions and `taken`, and no token of a new entry exists before its
        // description is written.
        unsafe {
            let first_use = !self.in_use.with(|in_use| *in_use);
            let entry: &TokenEntry = if first_use {
                self.in_use.with_mut(|in_use| *in_use = true);
                self.first.description.with_mut(|d| *d = description);
                &self.first
            } else {
                let last = self
                    .more
                    .with(|more| (*more).last().map(|e| &raw const **e))
                    .unwrap_or(&raw const self.first);
                if (*last).description.with(|d| *d == description) {
                    &*last
                } else {
                    let entry = Box::new(TokenEntry::new(description));
                    let raw = &raw const *entry;
                    self.more.with_mut(|more| (*more).push(entry));
                    &*raw
                }
            };
            // The only writer: a load and a store.
            let taken = entry.taken.load(Ordering::Relaxed);
            entry.taken.store(taken + 1, Ordering::Relaxed);
            Taken {
                entry: NonNull::from(entry),
                first_use,
                counted: !std::ptr::eq(entry, &self.first),
            }
        }
    }

    /// Descriptions of the tokens not yet reported, `name (xN)` for several, given
    /// the task's `total` of outstanding tokens (the first entry's share is what the
    /// other entries do not account for).
    ///
    /// # Safety
    /// The caller holds a slot reference and saw `BODY` clear (Acquire) after taking it.
    unsafe fn outstanding(&self, total: u32) -> Vec<String> {
        // SAFETY: per the caller's contract the body's writes are visible and over.
        unsafe {
            if !self.in_use.with(|in_use| *in_use) {
                return Vec::new();
            }
            let more = self.more.with(|more| &*more);
            let others: u32 = more.iter().map(|entry| entry.outstanding()).sum();
            let first = (&self.first, total.saturating_sub(others));
            std::iter::once(first)
                .chain(more.iter().map(|e| (&**e, e.outstanding())))
                .filter(|&(_, n)| n > 0)
                .map(|(entry, n)| match n {
                    1 => entry.description().into_owned(),
                    n => format!("{} (x{n})", entry.description()),
                })
                .collect()
        }
    }

    /// Empties the book for the slot's next task; `true` if it held a strong count of
    /// the runtime, which the caller must give back (R12).
    ///
    /// # Safety
    /// The caller reclaims the slot (R6).
    #[inline]
    unsafe fn reset(&self) -> bool {
        // SAFETY: R6: exclusive access.
        unsafe {
            if !self.in_use.with(|in_use| *in_use) {
                return false;
            }
            self.in_use.with_mut(|in_use| *in_use = false);
            self.first.description.with_mut(|d| *d = Cow::Borrowed(""));
            self.more.with_mut(|more| (*more).clear());
        }
        self.first.taken.store(0, Ordering::Relaxed);
        self.first.reported.store(0, Ordering::Relaxed);
        true
    }
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
    // SAFETY: `current_task` returns this worker's runtime, alive while it runs.
    let slot = &unsafe { shared.as_ref() }.window.slots[index as usize];
    // The body runs on this thread (BODY is set): the count cannot reach zero under us.
    slot.deferred.fetch_add(1, Ordering::Relaxed);
    slot.acquire_more();
    // SAFETY: this worker is polling the task's body (R4).
    let Taken {
        entry,
        first_use,
        counted,
    } = unsafe { slot.tokens.take(description.into()) };
    if first_use {
        // R12: the book holds the runtime for the occupancy's tokens.
        worker::take_runtime_count();
    }
    Ok(CompletionToken {
        shared,
        entry,
        index,
        counted,
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
    /// Kept alive by the strong count in the slot's token book (R12).
    shared: NonNull<Shared>,
    /// This token's entry in the slot's book, kept in place by the slot reference.
    entry: NonNull<TokenEntry>,
    index: u32,
    /// Whether the entry counts its reports ([`TokenEntry::reported`]).
    counted: bool,
}

// SAFETY: the token owns a slot reference and points at the runtime (kept alive by
// R12) and at its book entry (kept in place by the slot reference); every access
// through them is synchronized (atomics, or data read-only while the token exists).
unsafe impl Send for CompletionToken {}
// SAFETY: `&CompletionToken` only reads the slot's generation (an atomic).
unsafe impl Sync for CompletionToken {}

impl CompletionToken {
    /// Reports success.
    pub fn complete(self) {
        ManuallyDrop::new(self).report(None);
    }

    /// Reports failure: the task fails with [`TaskError::TokenFailed`] carrying `error`
    /// and this token's description.
    pub fn fail(self, error: impl Into<BoxError>) {
        ManuallyDrop::new(self).report(Some(error.into()));
    }

    /// The task this token belongs to.
    pub fn task(&self) -> TaskId {
        // The slot reference this token holds keeps the generation (R10).
        TaskId::new(
            self.index,
            self.shared().window.slots[self.index as usize].generation(),
        )
    }

    fn shared(&self) -> &Shared {
        // SAFETY: R12: the slot's book holds a strong count while this token exists.
        unsafe { self.shared.as_ref() }
    }

    /// Records a failure (`Some`) or a drop (`None` from `Drop`) of this token on its
    /// task (R11: before the report is posted).
    fn record_failure(&self, error: Option<BoxError>) {
        let shared = self.shared();
        let task = self.task();
        let name = shared.slot_name(self.index);
        // SAFETY: this token belongs to the entry (see "The token book").
        let token = unsafe { self.entry.as_ref().description() };
        let error = match error {
            Some(error) => TaskError::TokenFailed {
                task,
                name,
                token,
                error: error.into(),
            },
            None => TaskError::TokenDropped { task, name, token },
        };
        shared.window.slots[self.index as usize].record_token_error(error);
    }

    /// Posts the report; `failed` (an error, or a drop) was recorded first. Consumes
    /// the token (the caller wrapped it in `ManuallyDrop`).
    fn report(&self, failed: Option<BoxError>) {
        if let Some(error) = failed {
            self.record_failure(Some(error));
        }
        Shared::post_completion(
            self.shared.as_ptr(),
            Completion {
                entry: self.entry,
                index: self.index,
                counted: self.counted,
            },
        );
    }
}

impl Drop for CompletionToken {
    fn drop(&mut self) {
        self.record_failure(None);
        self.report(None);
    }
}

impl fmt::Debug for CompletionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionToken")
            .field("task", &self.task())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Sends a token's report to the scheduler. After the workers stopped, processes
    /// it on the calling thread instead, so nothing waits on a drainer that is gone.
    ///
    /// Takes a raw pointer: once the report is published, a drainer may apply it and
    /// the runtime may be freed (R12), so no reference to it may outlive the publish.
    fn post_completion(this: *const Shared, completion: Completion) {
        // SAFETY: R12: the report is not applied yet, so the runtime is alive.
        let shared = unsafe { &*this };
        if shared.is_stopping() {
            Self::apply_after_stop(this, completion);
            return;
        }
        // Whether to wake a sleeper is decided before the publish (the claim is what
        // sleepers look for, `crate::mailbox`). After the publish this thread touches
        // the runtime only through a strong count taken before it (R12), which it takes
        // only when it has a sleeper to wake, a syscall that dwarfs the count.
        let posted = shared.mailbox.push(completion, |sleepy| {
            // Only a claim that saw a worker about to sleep looks at the sleepers
            // (`crate::mailbox`, "Sleepy lanes"): no fence on the busy path.
            (sleepy && shared.sleep.must_wake()).then(|| {
                // SAFETY: the report is not published yet, so the runtime is alive
                // (R12), and `this` came from its `Arc`.
                unsafe {
                    Arc::increment_strong_count(this);
                    Arc::from_raw(this)
                }
            })
        });
        match posted {
            Ok(Some(shared)) => shared.sleep.wake_one(),
            Ok(None) => {}
            // The workers stopped after our look and closed the mailbox: nothing was
            // published, so the runtime is still alive (R12).
            Err(completion) => Self::apply_after_stop(this, completion),
        }
    }

    /// Applies a token's report on the reporting thread once the workers stopped, and
    /// cancels what it readies (no worker will run it).
    fn apply_after_stop(this: *const Shared, completion: Completion) {
        // R12: applying the report may reclaim the slot and give back the book's
        // strong count; hold one of our own until we are done.
        // SAFETY: the report is not applied yet, so the runtime is alive, and `this`
        // came from its `Arc`.
        let shared = unsafe {
            Arc::increment_strong_count(this);
            Arc::from_raw(this)
        };
        let mut ready = Vec::new();
        let slots = &shared.window.slots;
        shared.process_completion(completion, &mut |index| {
            ready.push((index, slots[index as usize].generation()))
        });
        shared.cancel_ready(ready);
    }

    /// Drains a batch of token reports on a worker; the first task they make ready
    /// may come back in `handoff`. Returns how many were drained.
    ///
    /// Reports are applied in arrival order, consecutive reports of the same book
    /// entry in one step (one `fetch_sub(n)` on the task's deferred word, one count on
    /// the entry, one release of `n` references).
    pub(crate) fn drain_mailbox(&self, handoff: &mut Option<u32>) -> usize {
        let mut on_ready = |c| match handoff {
            None => *handoff = Some(c),
            Some(_) => self.schedule(c),
        };
        let mut run: Option<(Completion, u32)> = None;
        let drained = self
            .mailbox
            .drain(DRAIN_BATCH, |completion| match &mut run {
                Some((last, count)) if last.entry == completion.entry => *count += 1,
                _ => {
                    if let Some((last, count)) = run.replace((completion, 1)) {
                        self.apply_reports(last, count, &mut on_ready);
                    }
                }
            });
        if let Some((last, count)) = run {
            self.apply_reports(last, count, &mut on_ready);
        }
        drained.unwrap_or(0)
    }

    /// Applies one token report (R11) outside a drain (after the workers stopped).
    pub(crate) fn process_completion(&self, completion: Completion, on_ready: &mut dyn FnMut(u32)) {
        self.apply_reports(completion, 1, on_ready);
    }

    /// Counts `count` reports of `completion`'s entry: finishes the task if they
    /// were the last (R11), then drops the tokens' references (R10).
    fn apply_reports(&self, completion: Completion, count: u32, on_ready: &mut dyn FnMut(u32)) {
        let index = completion.index;
        let slot = &self.window.slots[index as usize];
        if completion.counted {
            // SAFETY: the reports' slot references keep the entry in place (R10).
            unsafe { completion.entry.as_ref() }
                .reported
                .fetch_add(count, Ordering::Relaxed);
        }
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

    /// The descriptions of the tokens task `id` waits for, if its body returned and it
    /// waits for some (and was not cut).
    pub(crate) fn outstanding_tokens_of(&self, id: TaskId) -> Option<Vec<String>> {
        let slot = self.window.slots.get(id.index() as usize)?;
        if !slot.try_acquire(id.generation()) {
            return None;
        }
        let word = slot.deferred.load(Ordering::Acquire);
        let tokens = (word & (BODY | CUT) == 0 && word & COUNT != 0)
            // SAFETY: we hold a slot reference and saw BODY clear (Acquire) after taking
            // it ("The token book").
            .then(|| unsafe { slot.tokens.outstanding(word & COUNT) })
            .filter(|tokens| !tokens.is_empty());
        self.release(id.index());
        tokens
    }

    /// Every task whose body returned and which still waits for tokens, with the
    /// descriptions of those tokens (for the watchdog; a scan of the window).
    pub(crate) fn tasks_waiting_for_tokens(&self) -> Vec<(TaskId, Vec<String>)> {
        let mut waiting = Vec::new();
        for (index, slot) in self.window.slots.iter().enumerate() {
            let generation = slot.generation();
            let word = slot.deferred.load(Ordering::Relaxed);
            if word & (BODY | CUT) != 0 || word & COUNT == 0 {
                continue;
            }
            let id = TaskId::new(index as u32, generation);
            if let Some(tokens) = self.outstanding_tokens_of(id) {
                waiting.push((id, tokens));
            }
        }
        waiting
    }
}

#[cfg(all(test, not(taskweave_loom)))]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, Instant};

    use super::TokenBook;
    use crate::Runtime;
    use crate::sync::{Arc, Ordering};

    /// The book keeps one entry per run of equal descriptions and names only the
    /// descriptions with tokens still out, with their number.
    #[test]
    fn the_token_book_counts_runs_of_equal_descriptions() {
        let book = TokenBook::new();
        // SAFETY: one thread plays the body's worker (`take`), the drainer (`reported`),
        // the watchdog (`outstanding`) and the reclaimer (`reset`) in turn, so each
        // has the exclusive or read-only access its contract asks for.
        unsafe {
            let first = book.take(Cow::Borrowed("dma"));
            assert!(
                first.first_use,
                "the first token of an occupancy holds the runtime"
            );
            assert!(!first.counted, "the first entry's share is derived");
            let again = book.take(Cow::Owned("dma".to_owned()));
            assert!(!again.first_use);
            assert_eq!(
                first.entry, again.entry,
                "an equal description extends the run"
            );
            let other = book.take(Cow::Borrowed("doorbell"));
            let later = book.take(Cow::Borrowed("dma"));
            assert!(other.counted && later.counted);
            assert_ne!(other.entry, first.entry);
            assert_ne!(
                later.entry, first.entry,
                "a new run after another description"
            );
            assert_eq!(book.outstanding(4), ["dma (x2)", "doorbell", "dma"]);
            // Both tokens of the first run (not counted: the task's total drops to 2)
            // and the doorbell (counted) report.
            other
                .entry
                .as_ref()
                .reported
                .fetch_add(1, Ordering::Relaxed);
            assert_eq!(book.outstanding(1), ["dma"]);
            assert!(book.reset(), "the runtime's count goes back");
            assert!(book.outstanding(0).is_empty());
            assert!(!book.reset(), "an unused book holds nothing");
        }
    }

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
