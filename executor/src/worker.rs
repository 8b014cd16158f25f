//! Worker threads: each owns a LIFO deque, takes a handed-over successor first, then
//! its own queue, then the injector and other workers' queues, and sleeps by the
//! protocol in [`crate::sleep`] when all are empty.

use std::cell::Cell;

use crossbeam_deque::Worker;

use crate::shared::Shared;
use crate::sync::{Arc, Ordering, spin_hint, thread};

/// What a worker thread knows about itself, reachable from wakers and submissions
/// that run on it.
struct Context {
    shared: *const Shared,
    index: usize,
    local: Worker<u32>,
}

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

/// Whether the calling thread is one of `shared`'s workers.
pub(crate) fn is_worker_of(shared: &Shared) -> bool {
    CURRENT.with(|current| {
        // SAFETY: as in `push_local`.
        unsafe { current.get().as_ref() }.is_some_and(|ctx| std::ptr::eq(ctx.shared, shared))
    })
}

/// Rounds of looking for work with a spin hint, then with a yield, before sleeping.
const SPIN_ROUNDS: u32 = 64;
const YIELD_ROUNDS: u32 = 16;

/// Starts `locals.len()` worker threads.
pub(crate) fn spawn_workers(
    shared: &Arc<Shared>,
    locals: Vec<Worker<u32>>,
    name: &str,
) -> Vec<thread::JoinHandle<()>> {
    locals
        .into_iter()
        .enumerate()
        .map(|(index, local)| {
            let shared = Arc::clone(shared);
            thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || run_worker(shared, index, local))
                .expect("taskweave: failed to spawn a worker thread")
        })
        .collect()
}

fn run_worker(shared: Arc<Shared>, index: usize, local: Worker<u32>) {
    let ctx = Context {
        shared: Arc::as_ptr(&shared),
        index,
        local,
    };
    CURRENT.with(|current| current.set(&ctx));
    work_loop(&shared, &ctx);
    CURRENT.with(|current| current.set(std::ptr::null()));
    // Tasks left in this deque are cancelled below by the last worker out (R7).
    drop(ctx);
    if shared.workers_alive.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.cancel_outstanding();
    }
}

fn work_loop(shared: &Shared, ctx: &Context) {
    let mut handoff = None;
    let mut idle_rounds = 0;
    loop {
        if let Some(index) = handoff
            .take()
            .or_else(|| ctx.local.pop())
            .or_else(|| shared.steal(ctx.index, &ctx.local))
        {
            idle_rounds = 0;
            if shared.is_stopping() {
                return;
            }
            shared.run(index, &mut handoff);
            continue;
        }
        if shared.is_stopping() {
            return;
        }
        idle_rounds += 1;
        if idle_rounds <= SPIN_ROUNDS {
            for _ in 0..16 {
                spin_hint();
            }
            continue;
        }
        if idle_rounds <= SPIN_ROUNDS + YIELD_ROUNDS {
            thread::yield_now();
            continue;
        }
        shared.sleep.announce(ctx.index);
        if shared.has_work() || shared.is_stopping() {
            shared.sleep.withdraw(ctx.index);
        } else {
            shared.sleep.park(ctx.index);
        }
        idle_rounds = 0;
    }
}
