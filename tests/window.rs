//! The bounded task window: 10 million tasks pass through 1,024 slots with flat memory,
//! submission waits (back-pressure) while the window is full (and, given up, submits
//! nothing), and a dependency on a stale `TaskId` (its slot reclaimed and reused)
//! counts as done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::mpsc::{self};

use futures::channel::oneshot;
use taskweave::{Runtime, Task, TaskId};

mod support;
use support::hang_guard;

/// Increments its counter when dropped.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Resident set size of this process, from `/proc/self/status`.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS is a number of kB");
    kib * 1024
}

/// An async body that stays pending until the test sends on the returned sender.
fn gated() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (open, gate) = oneshot::channel::<()>();
    (
        open,
        async move { gate.await.expect("gate sender dropped") },
    )
}

/// 10 million tasks through 1,024 slots (a few seconds even in a debug build).
const TASKS: usize = 10_000_000;
/// Every `CHAIN_EVERY`-th task is the next link of one long chain; the rest are
/// independent fire-and-forget tasks.
const CHAIN_EVERY: usize = 1_000;
/// Resident memory is sampled after this many tasks and again at the end.
const BASELINE_AFTER: usize = 1_000_000;
/// Allowed growth between the two samples: generous for allocator noise, yet a leak of
/// even 8 bytes per task (9 million tasks after the baseline) exceeds it.
const MAX_GROWTH: u64 = 64 << 20;

#[test]
fn ten_million_tasks_through_a_1024_slot_window_with_flat_memory() {
    let _guard = hang_guard("ten_million_tasks_through_a_1024_slot_window", 300);
    let rt = Runtime::builder().workers(2).window(1024).build();
    assert_eq!(rt.window(), 1024);
    // One run counter per task, allocated (and touched) before the first sample.
    let runs: Arc<[AtomicU8]> = (0..TASKS).map(|_| AtomicU8::new(0)).collect();
    let chain_seq = Arc::new(AtomicU64::new(0));

    let (baseline, last_link) = rt.block_on(async {
        let mut baseline = None;
        let mut prev_link = TaskId::INVALID;
        let mut last_link: Option<Task<()>> = None;
        for i in 0..TASKS {
            if i == BASELINE_AFTER {
                baseline = Some(resident_bytes());
            }
            let runs = runs.clone();
            if i % CHAIN_EVERY == 0 {
                let link = (i / CHAIN_EVERY) as u64;
                let chain_seq = chain_seq.clone();
                let task = rt
                    .task(move || {
                        runs[i].fetch_add(1, Relaxed);
                        assert_eq!(chain_seq.load(SeqCst), link, "chain link {link} too early");
                        chain_seq.store(link + 1, SeqCst);
                    })
                    .after([prev_link])
                    .await;
                prev_link = task.id();
                last_link = Some(task);
            } else {
                // Fire and forget: the handle is dropped at the end of the iteration.
                let _fire_and_forget = rt
                    .task(move || {
                        runs[i].fetch_add(1, Relaxed);
                    })
                    .await;
            }
        }
        let last_link = last_link.expect("at least one link").await;
        rt.shutdown().await;
        (baseline.expect("baseline sampled"), last_link)
    });
    let end = resident_bytes();
    println!(
        "resident memory: {} MiB after {BASELINE_AFTER} tasks, {} MiB after {TASKS}",
        baseline >> 20,
        end >> 20
    );

    last_link.expect("last chain link");
    assert_eq!(chain_seq.load(SeqCst), TASKS.div_ceil(CHAIN_EVERY) as u64);
    let mut never_ran = 0usize;
    let mut ran_twice = 0usize;
    for count in runs.iter() {
        match count.load(Relaxed) {
            0 => never_ran += 1,
            1 => {}
            _ => ran_twice += 1,
        }
    }
    assert_eq!(
        (never_ran, ran_twice),
        (0, 0),
        "every body must run exactly once"
    );
    let growth = end.saturating_sub(baseline);
    assert!(
        growth < MAX_GROWTH,
        "resident memory grew by {} MiB between task {BASELINE_AFTER} and task {TASKS} \
         (baseline {} MiB, end {} MiB)",
        growth >> 20,
        baseline >> 20,
        end >> 20
    );
}

#[test]
fn submit_waits_while_the_window_is_full() {
    let _guard = hang_guard("submit_waits_while_the_window_is_full", 30);
    let rt = Runtime::builder().workers(2).window(4).build();
    assert_eq!(rt.window(), 4);
    let fifth_runs = Arc::new(AtomicUsize::new(0));
    let abandoned_runs = Arc::new(AtomicUsize::new(0));
    let abandoned_drops = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        // Four tasks that cannot complete until released: the window is full.
        let mut opens = Vec::new();
        let mut blocked = Vec::new();
        for _ in 0..4 {
            let (open, body) = gated();
            blocked.push(rt.task_async(body).await);
            opens.push(open);
        }

        let fifth_runs2 = fifth_runs.clone();
        let mut fifth = std::pin::pin!(
            rt.task(move || {
                fifth_runs2.fetch_add(1, SeqCst);
                5
            })
            .name("fifth")
            .submit()
        );
        for _ in 0..3 {
            assert!(
                futures::poll!(fifth.as_mut()).is_pending(),
                "fifth submit got a slot"
            );
        }
        assert_eq!(fifth_runs.load(SeqCst), 0);

        // A waiting submission that is given up (its future dropped) submits nothing:
        // its body is dropped unrun, once.
        {
            let (runs, flag) = (abandoned_runs.clone(), DropFlag(abandoned_drops.clone()));
            let mut abandoned = std::pin::pin!(
                rt.task(move || {
                    let _flag = flag;
                    runs.fetch_add(1, SeqCst);
                })
                .name("abandoned")
                .submit()
            );
            assert!(futures::poll!(abandoned.as_mut()).is_pending());
        }
        assert_eq!(
            abandoned_drops.load(SeqCst),
            1,
            "abandoned body not dropped once"
        );

        // Release one task from another thread, only once the fifth submission has
        // returned Pending again (so this thread is about to park): the slot is freed
        // on a worker (the handle is dropped, fire and forget), and only the window's
        // wake-up can admit the waiting submission now.
        drop(blocked.remove(0));
        let first_open = opens.remove(0);
        let (parked_tx, parked) = mpsc::channel::<()>();
        let releaser = std::thread::spawn(move || {
            parked.recv().expect("submission parked");
            first_open.send(()).expect("first task is waiting");
        });
        let mut parked_tx = Some(parked_tx);
        let fifth = futures::future::poll_fn(|cx| {
            let poll = fifth.as_mut().poll(cx);
            if poll.is_pending()
                && let Some(parked_tx) = parked_tx.take()
            {
                parked_tx.send(()).expect("releaser is waiting");
            }
            poll
        })
        .await;
        releaser.join().expect("releaser thread");
        assert_eq!(fifth.await.expect("fifth task"), 5);

        for open in opens {
            open.send(()).expect("task is waiting");
        }
        for task in blocked {
            task.await.expect("blocked task");
        }
        rt.shutdown().await;
    });

    assert_eq!(fifth_runs.load(SeqCst), 1);
    assert_eq!(
        abandoned_runs.load(SeqCst),
        0,
        "an abandoned submission ran"
    );
    assert_eq!(abandoned_drops.load(SeqCst), 1);
}

#[test]
fn submit_blocking_waits_while_the_window_is_full() {
    let _guard = hang_guard("submit_blocking_waits_while_the_window_is_full", 30);
    let rt = Runtime::builder().workers(2).window(4).build();
    let mut opens = Vec::new();
    let mut blocked = Vec::new();
    for _ in 0..4 {
        let (open, body) = gated();
        blocked.push(rt.task_async(body).submit_blocking());
        opens.push(open);
    }

    // A second orchestrator thread submits a fifth task; it cannot get a slot until a
    // blocked task is released and its slot reclaimed.
    let (admitted_tx, admitted) = mpsc::channel();
    let submitter = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            let task = rt.task(|| 5).name("fifth").submit_blocking();
            admitted_tx.send(()).expect("test is listening");
            task.wait_blocking()
        })
    };
    // While all four are blocked the submitter cannot have been admitted. (A blocked
    // thread cannot be observed without timing, so this check can only catch a runtime
    // that admits too early, never fail a correct one.)
    assert!(
        admitted.try_recv().is_err(),
        "fifth task admitted into a full window"
    );
    for open in opens {
        open.send(()).expect("task is waiting");
    }
    for task in blocked {
        task.wait_blocking().expect("blocked task");
    }
    admitted.recv().expect("fifth submission admitted");
    assert_eq!(
        submitter
            .join()
            .expect("submitter thread")
            .expect("fifth task"),
        5
    );
    rt.shutdown_blocking();
}

#[test]
fn dependency_on_a_stale_id_counts_as_done() {
    let _guard = hang_guard("dependency_on_a_stale_id_counts_as_done", 30);
    let rt = Runtime::builder().workers(2).window(4).build();
    let consumer_runs = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        // A task that completes; taking its output and dropping the handle lets its
        // slot be reclaimed.
        let old = rt.task(|| 1).name("old").await;
        let old_id = old.id();
        assert_eq!(old.await.expect("old task"), 1);

        // Fill the window with tasks that stay pending until released. With every slot
        // taken, one of them must occupy the old task's slot.
        let mut opens = Vec::new();
        let mut occupants = Vec::new();
        for _ in 0..rt.window() {
            let (open, body) = gated();
            occupants.push(rt.task_async(body).name("occupant").await);
            opens.push(open);
        }
        let reuse = occupants
            .iter()
            .position(|t| t.id().index() == old_id.index())
            .expect("the old task's slot was never reused");
        assert_ne!(
            occupants[reuse].id(),
            old_id,
            "two live tasks share one TaskId"
        );
        assert_ne!(occupants[reuse].id().generation(), old_id.generation());

        // Release every other occupant, keeping only the new tenant of the old slot
        // blocked, so there is room for one more task.
        let new_tenant = occupants.remove(reuse);
        let tenant_open = opens.remove(reuse);
        for open in opens {
            open.send(()).expect("occupant is waiting");
        }
        for occupant in occupants {
            occupant.await.expect("occupant");
        }

        // Depending on the stale id must not wait for the slot's new tenant.
        let consumer = {
            let consumer_runs = consumer_runs.clone();
            rt.task(move || {
                consumer_runs.fetch_add(1, SeqCst);
                "ran"
            })
            .name("after-stale")
            .after([old_id])
            .await
        };
        assert_eq!(consumer.await.expect("consumer of a stale id"), "ran");
        // Waiting on the stale id does not wait for the new tenant either.
        rt.wait(old_id).await;

        tenant_open.send(()).expect("new tenant is waiting");
        new_tenant.await.expect("new tenant");
        rt.shutdown().await;
    });

    assert_eq!(consumer_runs.load(SeqCst), 1);
}

/// `HeldTasks` keeps a failed task's outcome for later dependents until released,
/// and the released slots are reused: slots handed to the workers by
/// `release_later` come back without anyone waiting on the window for them, and a
/// submitter short of slots releases queued holds itself.
#[test]
fn held_tasks_keep_outcomes_and_their_slots_come_back() {
    let _guard = hang_guard("held_tasks_keep_outcomes_and_their_slots_come_back", 60);
    const WINDOW: usize = 256;
    let rt = Runtime::builder().workers(2).window(WINDOW).build();
    let dropped = Arc::new(AtomicUsize::new(0));
    for round in 0..20 {
        let mut held = taskweave::HeldTasks::new(&rt);
        let failed = rt
            .try_task(|| Err::<(), _>("held failure"))
            .submit_blocking();
        assert!(held.hold(&failed));
        let failed_id = failed.id();
        drop(failed);
        // Most of the window, each output counted when its slot is reclaimed.
        for _ in 0..WINDOW - 16 {
            let flag = DropFlag(Arc::clone(&dropped));
            let task = rt.task(move || flag).submit_blocking();
            assert!(held.hold(&task));
        }
        assert_eq!(held.len(), WINDOW - 15);
        rt.synchronize_blocking();
        // Held: the failed task's id still fails its dependents.
        let after = rt.task(|| ()).after([failed_id]).submit_blocking();
        assert!(after.wait_blocking().is_err(), "round {round}");
        // Released by a worker or, when the next round runs short of slots, by the
        // submitter: either way the next round gets its slots.
        held.release_later();
    }
    rt.synchronize_blocking();
    // Every output but (at most) the last round's was dropped by a reclaim; the last
    // round's holds are released by a worker soon after.
    let outputs = 20 * (WINDOW - 16);
    while dropped.load(SeqCst) < outputs {
        std::thread::yield_now();
    }
    assert_eq!(dropped.load(SeqCst), outputs);
}

#[test]
fn try_submit_now_submits_while_there_is_room_and_says_when_there_is_none() {
    let _guard = hang_guard(
        "try_submit_now_submits_while_there_is_room_and_says_when_there_is_none",
        30,
    );
    let rt = Runtime::builder().workers(1).window(2).build();
    let (open, gate) = gated();
    let blocker = rt.task_async(gate).submit_blocking();
    let made = Arc::new(AtomicUsize::new(0));
    let make = |value: u64| {
        let made = made.clone();
        move || {
            made.fetch_add(1, SeqCst);
            let words = [value; 40]; // past the slot's inline bytes
            move || Ok::<_, std::convert::Infallible>(words.iter().sum::<u64>())
        }
    };
    // The second slot: submitted at once, after the blocker.
    let second = rt
        .try_submit_now(&[blocker.id()], &Some("second".into()), make(1))
        .expect("a slot is free");
    // Both slots are taken: nothing is made, and the caller is told.
    assert!(rt.try_submit_now(&[], &None, make(2)).is_none());
    assert_eq!(made.load(SeqCst), 1, "the body was made without a slot");
    assert!(!second.is_finished(), "ran before its dependency");
    open.send(()).unwrap();
    assert_eq!(second.wait_blocking().unwrap(), 40);
    drop(blocker);
    // A maker that panics gives its slot back: the window still has both.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.try_submit_now(
            &[],
            &None,
            || -> fn() -> Result<u64, std::convert::Infallible> { panic!("the maker fails") },
        )
    }));
    assert!(panicked.is_err());
    rt.block_on(rt.synchronize());
    let third = rt
        .try_submit_now(&[], &None, make(3))
        .expect("a slot is free");
    let fourth = rt
        .try_submit_now(&[], &None, make(4))
        .expect("a slot is free");
    assert_eq!(
        third.wait_blocking().unwrap() + fourth.wait_blocking().unwrap(),
        280
    );
    rt.block_on(rt.shutdown());
    drop(rt);
    // On shutdown, a handle that reports it.
    let rt = Runtime::builder().workers(1).build();
    rt.block_on(rt.shutdown());
    let rejected = rt.try_submit_now(&[], &None, make(5)).expect("a handle");
    assert!(matches!(
        rejected.wait_blocking(),
        Err(taskweave::TaskError::Shutdown { .. })
    ));
}
