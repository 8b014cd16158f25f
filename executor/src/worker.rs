//! Worker threads: each owns a LIFO deque, takes a handed-over successor first, then
//! its own queue, then the injector and other workers' queues, and sleeps by the
//! protocol in [`crate::sleep`] when all are empty.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::time::Instant;

use crossbeam_deque::Worker;

use crate::shared::Shared;
use crate::sync::{Arc, Ordering, spin_hint, thread};

/// What a worker thread knows about itself, reachable from wakers and submissions
/// that run on it.
struct Context {
    shared: *const Shared,
    index: usize,
    local: Worker<u32>,
    /// The slot whose body this worker is polling (`u32::MAX`: none), for `defer`.
    current_task: Cell<u32>,
    /// Strong counts of `shared` this worker holds ahead for token books (see
    /// [`take_runtime_count`]); given back when the worker exits.
    token_credits: Cell<u32>,
    /// Slots this worker reclaimed and has not returned to the window yet (see
    /// [`stash_free_slot`]).
    freed: RefCell<Vec<u32>>,
}

/// Strong counts of the runtime a worker takes at once for the token books of the
/// tasks it runs (rule R12 in `crate::deferred`), and the most it keeps of those
/// given back by the slots it reclaims: a count per task taken and given back on the
/// shared counter would move its cache line between threads twice per task.
const TOKEN_CREDITS: u32 = 64;
const MAX_TOKEN_CREDITS: u32 = 4 * TOKEN_CREDITS;

thread_local! {
    static CURRENT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

/// Pushes to the current thread's local queue if it is a worker of `shared`.
#[inline]
pub(crate) fn push_local(shared: &Shared, index: u32) -> bool {
    CURRENT.with(|current| {
        let ctx = current.get();
        // SAFETY: a non-null CURRENT points to the Context on this thread's stack in
        // `run_worker`, which outlives every use during the worker's life.
        match unsafe { ctx.as_ref() } {
            Some(ctx) if std::ptr::eq(ctx.shared, shared) => {
                ctx.local.push(index);
                true
            }
            _ => false,
        }
    })
}

/// The runtime and slot of the task body running on this thread, if any. The
/// pointer is valid while this worker runs.
pub(crate) fn current_task() -> Option<(NonNull<Shared>, u32)> {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        let ctx = unsafe { current.get().as_ref() }?;
        let index = ctx.current_task.get();
        (index != u32::MAX).then(|| (NonNull::from(shared_of(ctx)), index))
    })
}

fn shared_of(ctx: &Context) -> &Shared {
    // SAFETY: `ctx.shared` came from `Arc::as_ptr` of the `Arc` this worker holds for
    // its whole life (`run_worker`), which outlives `ctx`.
    unsafe { &*ctx.shared }
}

/// Keeps slot `index`, just reclaimed on this worker, to return it to the window's
/// free list together with others ([`Window::push_chain`](crate::window::Window::push_chain)):
/// one CAS on the list's head per batch instead of one per task, on the line every
/// submission CASes. Returns them when [`Window::free_batch`](crate::window::Window::free_batch)
/// are kept, when a submitter waits for a slot, and when the worker finds no work
/// or stops, so kept slots never keep anyone waiting. `false` off `shared`'s
/// workers: the caller returns the slot itself.
#[inline]
pub(crate) fn stash_free_slot(shared: &Shared, index: u32) -> bool {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        match unsafe { current.get().as_ref() } {
            Some(ctx) if std::ptr::eq(ctx.shared, shared) => {
                let full = {
                    let mut freed = ctx.freed.borrow_mut();
                    freed.push(index);
                    freed.len() >= shared.window.free_batch()
                };
                if full || shared.window.has_waiters() {
                    return_freed(shared, ctx);
                }
                true
            }
            _ => false,
        }
    })
}

/// Returns the slots this worker kept ([`stash_free_slot`]) to the window.
#[inline(never)]
fn return_freed(shared: &Shared, ctx: &Context) {
    // Out of the cell while the window wakes waiting submitters: a waker's code
    // could reclaim a slot on this thread and keep it anew.
    let chain = std::mem::take(&mut *ctx.freed.borrow_mut());
    shared.window.push_chain(&chain, true);
    let mut freed = ctx.freed.borrow_mut();
    if freed.is_empty() {
        let mut chain = chain;
        chain.clear();
        *freed = chain;
    }
}

/// Moves one strong count of the current worker's runtime to the caller (a token
/// book, rule R12), from the worker's credits. Called only by `defer` on a worker.
pub(crate) fn take_runtime_count() {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        let ctx = unsafe { current.get().as_ref() }
            .expect("taskweave: a token book's runtime count taken off a worker");
        if ctx.token_credits.get() == 0 {
            for _ in 0..TOKEN_CREDITS {
                // SAFETY: `ctx.shared` came from `Arc::as_ptr` of the `Arc` this worker
                // holds for its whole life, so the allocation is alive; the new counts
                // are this worker's credits until handed out or given back.
                unsafe { Arc::increment_strong_count(ctx.shared) };
            }
            ctx.token_credits.set(TOKEN_CREDITS);
        }
        ctx.token_credits.set(ctx.token_credits.get() - 1);
    })
}

/// Gives back one strong count of `shared` that a token book held (R12): to the
/// credits of the current worker if it is one of `shared`'s, else to the counter.
/// The caller holds a count of its own, so this is never the last one.
pub(crate) fn give_back_runtime_count(shared: &Shared) {
    let kept = CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        match unsafe { current.get().as_ref() } {
            Some(ctx) if std::ptr::eq(ctx.shared, shared) => {
                let credits = ctx.token_credits.get() + 1;
                if credits > MAX_TOKEN_CREDITS {
                    for _ in TOKEN_CREDITS..credits {
                        // SAFETY: each credit is a count this worker holds, beside the
                        // `Arc` it holds for its whole life.
                        unsafe { Arc::decrement_strong_count(ctx.shared) };
                    }
                    ctx.token_credits.set(TOKEN_CREDITS);
                } else {
                    ctx.token_credits.set(credits);
                }
                true
            }
            _ => false,
        }
    });
    if !kept {
        // SAFETY: the count was taken on this `Arc` allocation (`take_runtime_count`)
        // and the caller holds another one, so the allocation stays alive.
        unsafe { Arc::decrement_strong_count(shared as *const Shared) };
    }
}

/// Marks which task body this worker thread is polling (for `defer` and the
/// watchdog); `u32::MAX` / `u64::MAX` when it stops.
#[inline]
pub(crate) fn set_current_task(shared: &Shared, index: u32, id_bits: u64) {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        if let Some(ctx) = unsafe { current.get().as_ref() } {
            ctx.current_task.set(index);
            shared.worker_states[ctx.index]
                .running
                .store(id_bits, Ordering::Relaxed);
        }
    });
}

/// The index of the calling worker thread, if it is one of `shared`'s.
#[inline]
pub(crate) fn current_index(shared: &Shared) -> Option<usize> {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        unsafe { current.get().as_ref() }
            .filter(|ctx| std::ptr::eq(ctx.shared, shared))
            .map(|ctx| ctx.index)
    })
}

/// Whether the calling thread is one of `shared`'s workers.
pub(crate) fn is_worker_of(shared: &Shared) -> bool {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        unsafe { current.get().as_ref() }.is_some_and(|ctx| std::ptr::eq(ctx.shared, shared))
    })
}

/// Wraps a worker thread's whole run (e.g. inside a tokio runtime context).
pub(crate) type ThreadHook = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// Tasks a busy worker runs between looks at the completion mailbox.
const DRAIN_EVERY: u32 = 64;

/// Rounds without work after which a worker counts itself idle (for `stats`).
const IDLE_AFTER: u32 = 8;

/// Rounds of looking for work with a spin hint, then with a yield, before a searching
/// worker sleeps (workers that may not search sleep at once, see [`crate::sleep`]).
const SPIN_ROUNDS: u32 = 64;
const YIELD_ROUNDS: u32 = 16;

/// Starts `locals.len()` worker threads, at nice value `nice` if given
/// (`crate::priority`).
pub(crate) fn spawn_workers(
    shared: &Arc<Shared>,
    locals: Vec<Worker<u32>>,
    name: &str,
    enter: Option<ThreadHook>,
    nice: Option<i32>,
) -> Vec<thread::JoinHandle<()>> {
    locals
        .into_iter()
        .enumerate()
        .map(|(index, local)| {
            let shared = Arc::clone(shared);
            let enter = enter.clone();
            thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    if let Some(nice) = nice {
                        crate::priority::set_own_nice(nice);
                    }
                    let mut body = Some(move || run_worker(shared, index, local));
                    let mut run = || (body.take().expect("a worker runs once"))();
                    match enter {
                        // e.g. enter a tokio runtime for the worker's whole life
                        Some(enter) => enter(&mut run),
                        None => run(),
                    }
                })
                .expect("taskweave: failed to spawn a worker thread")
        })
        .collect()
}

fn run_worker(shared: Arc<Shared>, index: usize, local: Worker<u32>) {
    let ctx = Context {
        shared: Arc::as_ptr(&shared),
        index,
        local,
        current_task: Cell::new(u32::MAX),
        token_credits: Cell::new(0),
        freed: RefCell::new(Vec::with_capacity(shared.window.free_batch())),
    };
    CURRENT.with(|current| current.set(&ctx));
    work_loop(&shared, &ctx);
    CURRENT.with(|current| current.set(std::ptr::null()));
    return_freed(&shared, &ctx);
    for _ in 0..ctx.token_credits.get() {
        // SAFETY: each credit is a strong count this worker took on `shared` and did not
        // hand out; `shared` itself keeps the allocation alive across these decrements.
        unsafe { Arc::decrement_strong_count(ctx.shared) };
    }
    // Tasks left in this deque are cancelled below by the last worker out (R7).
    drop(ctx);
    if shared.workers_alive.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.cancel_outstanding();
    }
}

fn work_loop(shared: &Shared, ctx: &Context) {
    let state = &shared.worker_states[ctx.index];
    let mut handoff = None;
    let mut idle_rounds = 0;
    let mut since_drain = 0u32;
    // Whether this worker holds one of the searching roles (`crate::sleep`).
    let mut searching = false;
    // Gave up searching, then withdrew from sleep because work showed up: the next
    // piece of work taken passes any surplus on (`crate::sleep`).
    let mut pass_on = false;
    // Busy/idle accounting: one clock read per transition, none per task.
    let mut busy = false;
    let mut phase_start = Instant::now();
    loop {
        // Completions first when idle, and every so often when busy, so deferred
        // tasks are never starved by a long local chain or a full local queue (a
        // look at every lane per task would cost independent tasks more than their
        // scheduling). Slot holds handed over by submitters
        // (`HeldTasks::release_later`) likewise.
        if since_drain >= DRAIN_EVERY || (handoff.is_none() && ctx.local.is_empty()) {
            if shared.mailbox.needs_drainer() {
                since_drain = 0;
                let drained = shared.drain_mailbox(&mut handoff);
                if drained > 0 {
                    state.progress.add(1);
                    state.drains.add(1);
                    state.drained.add(drained as u64);
                    // More mail and nothing else to run: drain again at once rather
                    // than going through the search (steal, searcher role) per batch.
                    if handoff.is_none() && ctx.local.is_empty() && shared.mailbox.needs_drainer() {
                        continue;
                    }
                }
            }
            if shared.run_releases() {
                since_drain = 0;
            }
        }
        since_drain += 1;
        if let Some(index) = handoff
            .take()
            .or_else(|| ctx.local.pop())
            .or_else(|| shared.steal(ctx.index, &ctx.local))
        {
            // Work pushed while producers counted on this worker as a searcher may be
            // left: pass it on (`crate::sleep`).
            if searching {
                searching = false;
                shared.sleep.stop_searching(|| shared.has_work());
            } else if pass_on {
                shared.sleep.pass_on(|| shared.has_work());
            }
            pass_on = false;
            if !busy {
                state.idle_ns.add(phase_start.elapsed().as_nanos() as u64);
                phase_start = Instant::now();
                busy = true;
            }
            idle_rounds = 0;
            if shared.is_stopping() {
                return;
            }
            // Counted before the poll, so a handle woken by it never sees fewer
            // polls than completions in `Runtime::stats`.
            state.polls.add(1);
            shared.run(index, &mut handoff);
            state.progress.add(1);
            continue;
        }
        if shared.is_stopping() {
            return;
        }
        idle_rounds += 1;
        if idle_rounds == 1 {
            // Nothing to run: the slots kept for a batch go back now.
            return_freed(shared, ctx);
        }
        // Short gaps between tasks count as busy: reading the clock on every
        // busy/idle flip costs more than the gap itself in a tight chain.
        if busy && idle_rounds == IDLE_AFTER {
            state.busy_ns.add(phase_start.elapsed().as_nanos() as u64);
            phase_start = Instant::now();
            busy = false;
        }
        if idle_rounds == 1 {
            searching = shared.sleep.start_searching();
            // A new searcher is responsible for everything it may find.
            pass_on &= !searching;
        }
        if searching && idle_rounds <= SPIN_ROUNDS {
            // Watch the queues' cheap emptiness checks while spinning, so work (e.g. a
            // token's completion in the mailbox) is taken within a few spins instead of
            // at the end of the round.
            for _ in 0..16 {
                if shared.has_visible_work() {
                    break;
                }
                spin_hint();
            }
            continue;
        }
        if searching && idle_rounds <= SPIN_ROUNDS + YIELD_ROUNDS {
            thread::yield_now();
            continue;
        }
        // Submitters waiting for slots freed in batches must not wait on a sleeper.
        if shared.window.has_waiters() {
            shared.window.wake_waiters();
        }
        let responsible = searching || pass_on;
        shared.sleep.announce(ctx.index, searching);
        searching = false;
        // The mailbox's part of the last look marks its lanes first, so that a
        // token's report claimed from now on looks at the sleepers (`crate::mailbox`).
        // Unless another worker is draining: mail is then that worker's, which does
        // not sleep while a claim is left (it drains again, or its own last look
        // here marks the lanes and sees the claim), so this one may sleep without
        // marking, and reports posted meanwhile skip the sleepers' check.
        // (`has_work` reads the lanes' claims once more after the marks: not needed for
        // correctness, but a report claimed just after them then costs a withdraw
        // instead of a park and a wake; dropping it made `deferred_chain` slower.)
        let work = if shared.mailbox.is_draining() {
            shared.has_visible_work()
        } else {
            shared.mailbox.mark_sleepy() || shared.has_work()
        };
        if work || shared.is_stopping() {
            shared.sleep.withdraw(ctx.index);
            shared.mailbox.clear_sleepy();
            pass_on = responsible;
        } else {
            // The last look saw nothing: whatever producers left to this worker was taken.
            pass_on = false;
            state.parks.add(1);
            // Account the idle time so far before a possibly long sleep, and the
            // sleep itself when it ends, so `stats()` sees parked workers as idle.
            state.idle_ns.add(phase_start.elapsed().as_nanos() as u64);
            phase_start = Instant::now();
            shared.sleep.park(ctx.index);
            shared.mailbox.clear_sleepy();
            state.idle_ns.add(phase_start.elapsed().as_nanos() as u64);
            phase_start = Instant::now();
        }
        idle_rounds = 0;
    }
}
