//! Async bodies: a body that returns `Pending` is polled again only when woken — from
//! another thread, by itself, or while it is still being polled — and completes with an
//! exact poll count; a waker used after its task finished (or after the runtime
//! is gone) is harmless.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;
use taskweave::Runtime;

mod support;
use support::hang_guard;

/// Wraps a future, counting its polls and reporting the first time it returns `Pending`.
struct CountPolls<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
    first_pending: Option<mpsc::Sender<()>>,
}

impl<F: Future> CountPolls<F> {
    fn new(inner: F, polls: &Arc<AtomicUsize>, first_pending: mpsc::Sender<()>) -> Self {
        CountPolls {
            inner: Box::pin(inner),
            polls: polls.clone(),
            first_pending: Some(first_pending),
        }
    }
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        let poll = self.inner.as_mut().poll(cx);
        if poll.is_pending() {
            // Sent while the body is still inside `poll`: the test may wake it before
            // the worker has even seen `Pending`, and that wake must not be lost.
            if let Some(first_pending) = self.first_pending.take() {
                first_pending.send(()).expect("test is listening");
            }
        }
        poll
    }
}

/// How a `Yield` body asks to be polled again.
#[derive(Clone)]
enum WakeBy {
    /// `cx.waker().wake_by_ref()` before returning `Pending`.
    Ref,
    /// A clone of the waker, consumed by `wake()` before returning `Pending`.
    OwnedClone,
    /// A clone of the waker sent to a helper thread, which wakes it.
    OtherThread(mpsc::Sender<Waker>),
}

/// Returns `Pending` `remaining` times, waking itself each time, then `Ready` with the
/// number of polls it saw.
struct Yield {
    remaining: usize,
    wake_by: WakeBy,
    polls: Arc<AtomicUsize>,
}

impl Future for Yield {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = self.polls.fetch_add(1, SeqCst) + 1;
        if self.remaining == 0 {
            return Poll::Ready(polls);
        }
        self.remaining -= 1;
        match &self.wake_by {
            WakeBy::Ref => cx.waker().wake_by_ref(),
            WakeBy::OwnedClone => {
                // Deliberately not `wake_by_ref`: this exercises the owned-waker path.
                let owned = cx.waker().clone();
                owned.wake();
            }
            WakeBy::OtherThread(waker_tx) => waker_tx
                .send(cx.waker().clone())
                .expect("waker thread is running"),
        }
        Poll::Pending
    }
}

#[test]
fn body_woken_from_another_thread_completes_after_two_polls() {
    let _guard = hang_guard(
        "body_woken_from_another_thread_completes_after_two_polls",
        30,
    );
    let rt = Runtime::builder().workers(2).build();
    let polls = Arc::new(AtomicUsize::new(0));
    let (value_tx, value_rx) = oneshot::channel::<u64>();
    let (pending_tx, pending_rx) = mpsc::channel();

    let task = rt
        .task_async(CountPolls::new(value_rx, &polls, pending_tx))
        .name("await-oneshot")
        .submit_blocking();
    pending_rx.recv().expect("the body returned Pending");
    assert_eq!(polls.load(SeqCst), 1);

    let completer = std::thread::spawn(move || value_tx.send(7).expect("body is waiting"));
    assert_eq!(task.wait_blocking().expect("task"), Ok(7));
    completer.join().unwrap();
    assert_eq!(polls.load(SeqCst), 2, "one poll before the wake, one after");
    rt.shutdown_blocking();
}

#[test]
fn many_bodies_woken_from_another_thread_in_reverse_order() {
    const TASKS: usize = 200;
    let _guard = hang_guard("many_bodies_woken_from_another_thread_in_reverse_order", 30);
    let rt = Runtime::builder().workers(2).build();
    let (pending_tx, pending_rx) = mpsc::channel();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    let mut poll_counts = Vec::new();
    for i in 0..TASKS {
        let polls = Arc::new(AtomicUsize::new(0));
        let (value_tx, value_rx) = oneshot::channel::<usize>();
        let body = CountPolls::new(value_rx, &polls, pending_tx.clone());
        tasks.push(rt.task_async(body).submit_blocking());
        senders.push((i, value_tx));
        poll_counts.push(polls);
    }
    // Every body is parked (async bodies do not hold a worker), then one thread wakes
    // them all, last first.
    for _ in 0..TASKS {
        pending_rx.recv().expect("a body returned Pending");
    }
    let completer = std::thread::spawn(move || {
        for (i, value_tx) in senders.into_iter().rev() {
            value_tx.send(i).expect("body is waiting");
        }
    });
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.wait_blocking().expect("task"), Ok(i));
    }
    completer.join().unwrap();
    for (i, polls) in poll_counts.iter().enumerate() {
        assert_eq!(
            polls.load(SeqCst),
            2,
            "task {i} polled a wrong number of times"
        );
    }
    rt.shutdown_blocking();
}

#[test]
fn self_waking_bodies_complete_with_the_expected_poll_count() {
    const YIELDS: usize = 100;
    const TASKS_PER_KIND: usize = 20;
    let _guard = hang_guard(
        "self_waking_bodies_complete_with_the_expected_poll_count",
        30,
    );
    let rt = Runtime::builder().workers(2).build();

    // A helper thread that wakes every waker it is sent.
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let waker_thread = std::thread::spawn(move || {
        let mut woken = 0usize;
        for waker in waker_rx {
            waker.wake();
            woken += 1;
        }
        woken
    });

    let mut tasks = Vec::new();
    rt.block_on(async {
        for kind in [
            WakeBy::Ref,
            WakeBy::OwnedClone,
            WakeBy::OtherThread(waker_tx),
        ] {
            for _ in 0..TASKS_PER_KIND {
                let polls = Arc::new(AtomicUsize::new(0));
                let body = Yield {
                    remaining: YIELDS,
                    wake_by: kind.clone(),
                    polls: polls.clone(),
                };
                tasks.push((rt.task_async(body).await, polls));
            }
        }
        for (task, polls) in tasks {
            // The body reports the count it saw on its final poll.
            assert_eq!(task.await.expect("yielding task"), YIELDS + 1);
            assert_eq!(
                polls.load(SeqCst),
                YIELDS + 1,
                "a wake was lost or a poll spurious"
            );
        }
        rt.shutdown().await;
    });
    drop(rt);
    assert_eq!(waker_thread.join().unwrap(), TASKS_PER_KIND * YIELDS);
}

/// First poll: keep a clone of the waker, wake itself, return `Pending`. Second: `Ready`.
struct StashWaker {
    stash: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
}

impl Future for StashWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polls.fetch_add(1, SeqCst) == 0 {
            *self.stash.lock().unwrap() = Some(cx.waker().clone());
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// Submits `count` tasks parked on channels; returns their handles, the senders that
/// release them and their poll counters, once every one of them has returned `Pending`.
async fn park(
    rt: &Runtime,
    count: usize,
) -> Vec<(
    taskweave::Task<Result<(), oneshot::Canceled>>,
    oneshot::Sender<()>,
    Arc<AtomicUsize>,
)> {
    let mut parked = Vec::new();
    for _ in 0..count {
        let polls = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let (pending_tx, pending_rx) = mpsc::channel();
        let task = rt
            .task_async(CountPolls::new(released, &polls, pending_tx))
            .await;
        pending_rx.recv().expect("task parked");
        parked.push((task, release, polls));
    }
    parked
}

#[test]
fn stale_wakers_are_harmless_and_give_their_slot_back() {
    let _guard = hang_guard("stale_wakers_are_harmless_and_give_their_slot_back", 30);
    let rt = Runtime::builder().workers(2).window(4).build();
    let stash = Arc::new(Mutex::new(None));
    let old_polls = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        let old = rt
            .task_async(StashWaker {
                stash: stash.clone(),
                polls: old_polls.clone(),
            })
            .name("old")
            .await;
        old.await.expect("old task");
        assert_eq!(old_polls.load(SeqCst), 2);
        let stale_waker: Waker = stash.lock().unwrap().take().expect("waker stashed");

        // Park tasks next to the finished one. (A live waker may keep its task's slot
        // held, so leave room for that: window - 1 tasks.)
        let tenants = park(&rt, rt.window() - 1).await;

        // The finished task's waker, used while other tasks are parked.
        stale_waker.wake_by_ref();
        let clone = stale_waker.clone();
        stale_waker.wake();
        clone.wake_by_ref();
        drop(clone);

        for (task, release, polls) in tenants {
            release.send(()).expect("tenant is waiting");
            task.await.expect("tenant").expect("released");
            assert_eq!(polls.load(SeqCst), 2, "a stale waker polled a parked task");
        }
        assert_eq!(
            old_polls.load(SeqCst),
            2,
            "the finished task was polled again"
        );

        // Every waker and handle is gone, so every slot is free again: a whole window of
        // parked tasks fits. (A slot leaked by a waker makes this wait forever.)
        let full = park(&rt, rt.window()).await;
        for (task, release, polls) in full {
            release.send(()).expect("task is waiting");
            task.await.expect("task").expect("released");
            assert_eq!(polls.load(SeqCst), 2);
        }

        // Stash one more waker, to be used after the runtime is gone.
        let last = StashWaker {
            stash: stash.clone(),
            polls: Arc::new(AtomicUsize::new(0)),
        };
        rt.task_async(last).await.await.expect("last task");
        rt.shutdown().await;
    });
    drop(rt);

    // A waker may outlive its runtime: waking and dropping it then is harmless.
    let waker = stash.lock().unwrap().take().expect("waker stashed");
    waker.wake_by_ref();
    waker.wake();
}
