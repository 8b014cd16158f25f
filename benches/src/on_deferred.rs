//! Deferred completions: the completion mailbox under 4 producer threads (peers:
//! crossbeam-channel and async-channel moving the same number of messages to one
//! consumer), the cost of taking the tokens, and a chain whose every task completes
//! through a token that another thread completes.

use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use taskweave::{CompletionToken, Runtime, TaskId, defer, when_all};

use crate::run_state::{self, count_task};

const SYSTEM: &str = "taskweave";
/// Threads that complete tokens (or send messages) in the mailbox workload.
pub const PRODUCERS: usize = 4;
/// Tokens one task takes in the mailbox workload (e.g. one per DMA queue).
const TOKENS_PER_TASK: usize = 1_000;

/// Which phase of the mailbox workload a run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MailboxPhase {
    /// The producers completing the tokens and the runtime draining them.
    Completions,
    /// The task bodies taking the tokens.
    Tokens,
}

/// Mailbox throughput: `completions` token completions from [`PRODUCERS`] threads,
/// drained by the runtime.
///
/// Untimed setup: spawning the producer threads, which wait for a go signal;
/// submitting the tasks, whose bodies each take [`TOKENS_PER_TASK`] tokens (`defer`)
/// and hand them to a producer; waiting until every body ran.
///
/// Timed: from the go signal until every task has completed and the producers are
/// joined: the producers complete every token (mailbox posts) while the workers
/// drain the mailbox and complete the tasks. The peers ([`mailbox_crossbeam`],
/// [`mailbox_async_channel`]) time the same thing: producers spawned and waiting
/// before the clock starts, then from the go signal until the consumer has received
/// every message and the producers are joined. The token-taking cost left out here
/// is measured by [`mailbox_tokens`].
pub fn mailbox(rt: &Runtime, completions: usize) -> u64 {
    mailbox_phase(rt, completions, MailboxPhase::Completions)
}

/// The other half of [`mailbox`]: the same run, timing only the token taking: from
/// the first submission until every body has taken its [`TOKENS_PER_TASK`] tokens
/// and handed them to a producer (spawning the producers before and the
/// completions after are untimed). No peer: channels have no tokens to take.
pub fn mailbox_tokens(rt: &Runtime, completions: usize) -> u64 {
    mailbox_phase(rt, completions, MailboxPhase::Tokens)
}

fn mailbox_phase(rt: &Runtime, completions: usize, timed: MailboxPhase) -> u64 {
    let measure = |phase: MailboxPhase, work: &mut dyn FnMut()| {
        if phase == timed {
            work()
        } else {
            run_state::untimed(work)
        }
    };
    let run = run_state::begin();
    let tasks = completions.div_ceil(TOKENS_PER_TASK);
    let shares: Vec<Arc<Mutex<Vec<CompletionToken>>>> =
        (0..PRODUCERS).map(|_| Arc::default()).collect();
    let completed = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = run_state::untimed(|| {
        shares
            .iter()
            .map(|share| {
                let (share, go, completed) = (share.clone(), go.clone(), completed.clone());
                std::thread::spawn(move || {
                    while !go.load(Acquire) {
                        std::thread::yield_now();
                    }
                    let tokens = std::mem::take(&mut *share.lock().unwrap());
                    let n = tokens.len() as u64;
                    tokens.into_iter().for_each(CompletionToken::complete);
                    completed.fetch_add(n, Relaxed);
                })
            })
            .collect()
    });
    let mut handles = Vec::with_capacity(tasks);
    measure(MailboxPhase::Tokens, &mut || {
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        rt.block_on(async {
            for t in 0..tasks {
                let (share, ready) = (shares[t % PRODUCERS].clone(), ready_tx.clone());
                handles.push(
                    rt.task(move || {
                        let tokens = (0..TOKENS_PER_TASK).map(|_| defer("mailbox benchmark"));
                        share.lock().unwrap().extend(tokens);
                        count_task();
                        ready.send(()).unwrap();
                    })
                    .await,
                );
            }
        });
        for _ in 0..tasks {
            ready_rx.recv().unwrap();
        }
    });
    let mut producers = Some(producers);
    measure(MailboxPhase::Completions, &mut || {
        go.store(true, Release);
        rt.block_on(when_all(std::mem::take(&mut handles)))
            .expect("mailbox tasks");
        for p in producers.take().into_iter().flatten() {
            p.join().unwrap();
        }
    });
    assert_eq!(completed.load(Relaxed), (tasks * TOKENS_PER_TASK) as u64);
    let name = match timed {
        MailboxPhase::Completions => "mailbox",
        MailboxPhase::Tokens => "mailbox_tokens",
    };
    run.check(name, SYSTEM, tasks as u64, run_state::counted()) * TOKENS_PER_TASK as u64
}

/// The same number of messages from [`PRODUCERS`] threads to one consumer over an
/// unbounded crossbeam channel. Timed as [`mailbox`]: the producers are spawned and
/// wait before the clock starts; from the go signal until every message was
/// received and the producers are joined.
pub fn mailbox_crossbeam(completions: usize) -> u64 {
    let (tx, rx) = crossbeam_channel::unbounded::<(u32, u32)>();
    channel_peer(
        completions,
        tx,
        |tx, m| tx.send(m).unwrap(),
        move || rx.iter().count() as u64,
    )
}

/// The same over an unbounded async-channel, the consumer blocking on `recv`; timed
/// as [`mailbox_crossbeam`].
pub fn mailbox_async_channel(completions: usize) -> u64 {
    let (tx, rx) = async_channel::unbounded::<(u32, u32)>();
    channel_peer(
        completions,
        tx,
        |tx, m| tx.send_blocking(m).unwrap(),
        move || {
            let mut received = 0u64;
            while rx.recv_blocking().is_ok() {
                received += 1;
            }
            received
        },
    )
}

/// A channel peer of [`mailbox`]: [`PRODUCERS`] threads, spawned untimed and waiting
/// for the go signal, each `send` their share of `completions` messages on a clone of
/// `tx`; `receive` counts messages until every sender is gone.
fn channel_peer<S: Clone + Send + 'static>(
    completions: usize,
    tx: S,
    send: fn(&S, (u32, u32)),
    receive: impl FnOnce() -> u64,
) -> u64 {
    let per = completions / PRODUCERS;
    let go = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = run_state::untimed(|| {
        (0..PRODUCERS)
            .map(|p| {
                let (tx, go) = (tx.clone(), go.clone());
                std::thread::spawn(move || {
                    while !go.load(Acquire) {
                        std::thread::yield_now();
                    }
                    (0..per).for_each(|i| send(&tx, (p as u32, i as u32)))
                })
            })
            .collect()
    });
    drop(tx);
    go.store(true, Release);
    let received = receive();
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(received, (per * PRODUCERS) as u64);
    received
}

/// Empty polls after which the `deferred_chain` completer yields instead of spinning.
const COMPLETER_SPINS: u32 = 256;

/// `tasks` tasks, each after the previous one, each completing through a token that
/// a separate (polling) completer thread completes.
pub fn deferred_chain(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let completer = std::thread::spawn(move || {
        // Polls without blocking, like a driver polling for DMA completions: spins
        // briefly (a token usually follows within a round trip), then yields so that,
        // on two cores, a worker or the orchestrator sharing its core can run.
        let mut empty_polls = 0u32;
        loop {
            match rx.try_recv() {
                Ok(token) => {
                    token.complete();
                    empty_polls = 0;
                }
                Err(mpsc::TryRecvError::Empty) if stopping.load(Relaxed) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    empty_polls += 1;
                    if empty_polls < COMPLETER_SPINS {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
    });
    // Leaked (one small sender per run) so bodies capture a `&'static` and pay no
    // reference counting per task, as in `run_state`.
    let tx: &'static mpsc::Sender<CompletionToken> = Box::leak(Box::new(tx));
    rt.block_on(async {
        let mut previous = TaskId::INVALID;
        for _ in 0..tasks {
            let task = rt
                .task(move || {
                    run_state::count_chained_task();
                    tx.send(defer("deferred chain")).unwrap();
                })
                .after([previous])
                .await;
            previous = task.id();
        }
        rt.wait(previous).await;
    });
    stop.store(true, Relaxed);
    completer.join().unwrap();
    run.check("deferred_chain", SYSTEM, tasks as u64, run_state::counted())
}
