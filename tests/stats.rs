//! `Runtime::stats()` adds up: every submitted task is completed, failed or
//! outstanding; failures count the failing tasks and their dependents; outstanding
//! counts exactly the tasks still blocked; workers' polls cover the completed tasks.
//! Exact numbers only, no timing assertions.

use std::time::{Duration, Instant};

use futures::channel::oneshot;
use taskweave::{Runtime, Stats, TaskError, TaskId};

fn polls(stats: &Stats) -> u64 {
    stats.workers.iter().map(|w| w.polls).sum()
}

/// A snapshot once every finished task's poll has been counted. A worker counts a
/// poll after the task's run returns — after its handle resolved — so a snapshot
/// taken right after awaiting the last handle may miss the poll of that last task.
fn settled_stats(rt: &Runtime) -> Stats {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = rt.stats();
        if polls(&stats) >= stats.completed || Instant::now() > give_up {
            return stats;
        }
        std::thread::yield_now();
    }
}

#[test]
fn after_synchronize_everything_submitted_completed_or_failed() {
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        // 100 independent tasks and a chain of 20: 120 completions.
        let mut handles = Vec::new();
        for i in 0..100u64 {
            handles.push(
                rt.task(move || i * 2)
                    .name(format!("independent {i}"))
                    .await,
            );
        }
        let mut prev = TaskId::INVALID;
        for step in 0..20u64 {
            let t = rt.task(move || step).after([prev]).await;
            prev = t.id();
            handles.push(t);
        }
        // Three failing roots, each with two dependents that each have one more:
        // 3 × (1 + 2 + 2) = 15 failures. The handles are held, so the failures
        // propagate through the ids.
        let mut failing = Vec::new();
        for root in 0..3 {
            let r = rt
                .try_task(move || Err::<u64, _>(format!("root {root} failed")))
                .name(format!("root {root}"))
                .await;
            for d in 0..2 {
                let dependent = rt
                    .task(|| 0u64)
                    .name(format!("dependent {root}.{d}"))
                    .after([r.id()])
                    .await;
                let second = rt
                    .task(|| 0u64)
                    .name(format!("second {root}.{d}"))
                    .after([dependent.id()])
                    .await;
                failing.push(dependent);
                failing.push(second);
            }
            failing.push(r);
        }
        // A panicking body and its typed dependent: 2 more failures.
        let panics = rt.task(|| -> u64 { panic!("boom") }).name("panics").await;
        failing.push(
            rt.dataflow(panics, |x: u64| x + 1)
                .name("after panic")
                .await,
        );

        rt.synchronize().await;
        for handle in handles {
            handle.await.expect("a succeeding task");
        }
        for handle in failing {
            handle.await.expect_err("a failing task or dependent");
        }
    });
    let stats = settled_stats(&rt);
    assert_eq!(stats.submitted, 137, "{stats}");
    assert_eq!(stats.completed, 120, "{stats}");
    assert_eq!(stats.failed, 17, "{stats}");
    assert_eq!(stats.outstanding, 0, "{stats}");
    assert_eq!(
        stats.submitted,
        stats.completed + stats.failed + stats.outstanding
    );
    assert_eq!(stats.workers.len(), 2);
    assert!(
        polls(&stats) >= stats.completed,
        "polls {} < completed {}: {stats}",
        polls(&stats),
        stats.completed
    );
    // One submission in 64 is timed, the first among them.
    assert!(stats.avg_submit_ns > 0.0, "{stats}");
}

#[test]
fn closure_tasks_are_polled_exactly_once() {
    let rt = Runtime::builder().workers(2).build();
    let handles: Vec<_> = (0..200u64)
        .map(|i| rt.task(move || i).submit_blocking())
        .collect();
    for handle in handles {
        handle.wait_blocking().unwrap();
    }
    let stats = settled_stats(&rt);
    assert_eq!(
        (stats.submitted, stats.completed, stats.failed),
        (200, 200, 0)
    );
    assert_eq!(polls(&stats), 200, "one poll per closure task: {stats}");
    assert!(stats.avg_submit_ns > 0.0, "{stats}");
}

#[test]
fn outstanding_counts_exactly_the_blocked_tasks() {
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        // 70 tasks that finish: at least one of them had its submission timed.
        let mut done = Vec::new();
        for i in 0..70u64 {
            done.push(rt.task(move || i).await);
        }
        for handle in done {
            handle.await.unwrap();
        }
        // 4 bodies that wait on a channel, 2 tasks after the first of them, and one
        // typed dependent of the second: 7 tasks that cannot finish yet.
        let mut senders = Vec::new();
        let mut blocked = Vec::new();
        for i in 0..4u64 {
            let (tx, rx) = oneshot::channel::<u64>();
            senders.push(tx);
            blocked.push(
                rt.task_async(async move { rx.await.unwrap_or(0) + i })
                    .name(format!("waits on channel {i}"))
                    .await,
            );
        }
        let mut dependents = Vec::new();
        for d in 0..2 {
            dependents.push(
                rt.task(|| 1u64)
                    .name(format!("after the first {d}"))
                    .after([blocked[0].id()])
                    .await,
            );
        }
        let second = blocked.remove(1);
        dependents.push(rt.dataflow(second, |x: u64| x * 10).name("typed").await);

        let stats = rt.stats();
        assert_eq!(stats.submitted, 77, "{stats}");
        assert_eq!(stats.outstanding, 7, "{stats}");
        assert_eq!((stats.completed, stats.failed), (70, 0), "{stats}");
        assert_eq!(
            stats.submitted,
            stats.completed + stats.failed + stats.outstanding
        );
        assert!(stats.avg_submit_ns > 0.0, "{stats}");

        // Release them: everything completes.
        for (i, tx) in senders.into_iter().enumerate() {
            tx.send(100 * i as u64).unwrap();
        }
        for handle in blocked.into_iter().chain(dependents) {
            handle.await.unwrap();
        }
        rt.synchronize().await;
    });
    let stats = settled_stats(&rt);
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.failed,
            stats.outstanding
        ),
        (77, 77, 0, 0),
        "{stats}"
    );
    assert!(polls(&stats) >= stats.completed, "{stats}");
}

#[test]
fn a_failure_counts_its_root_and_every_transitive_dependent() {
    let rt = Runtime::builder().workers(1).build();
    let root = rt
        .try_task(|| Err::<u32, _>("no"))
        .name("root")
        .submit_blocking();
    // A fan-out of 5 typed dependents through a shared handle, each with one more.
    let root = root.shared();
    let mut tails = Vec::new();
    for i in 0..5u32 {
        let middle = rt
            .dataflow(root.clone(), move |x: u32| x + i)
            .name(format!("middle {i}"))
            .submit_blocking();
        tails.push(
            rt.dataflow(middle, |x: u32| x * 2)
                .name(format!("tail {i}"))
                .submit_blocking(),
        );
    }
    for tail in tails {
        match tail.wait_blocking() {
            Err(TaskError::DependencyFailed { root_name, .. }) => {
                assert_eq!(root_name.as_deref(), Some("root"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = settled_stats(&rt);
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.failed,
            stats.outstanding
        ),
        (11, 0, 11, 0),
        "{stats}"
    );
}
