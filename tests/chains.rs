//! Dependency chains and wide fan-in: a 100,000-task chain runs strictly in order, a
//! task with 100,000 dependencies runs once after all of them, and explicit dependency
//! lists skip `TaskId::INVALID` and ignore duplicates.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};

use futures::channel::oneshot;
use taskweave::{Runtime, TaskId};

mod support;
use support::hang_guard;

const CHAIN_LEN: u64 = 100_000;
const FAN_IN: usize = 100_000;

#[test]
fn chain_of_100_000_tasks_runs_in_order() {
    let _guard = hang_guard("chain_of_100_000_tasks_runs_in_order", 120);
    let rt = Runtime::builder().workers(2).build();
    let seq = Arc::new(AtomicU64::new(0));
    let runs = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        let mut prev = TaskId::INVALID;
        let mut last = None;
        for i in 0..CHAIN_LEN {
            let (seq, runs) = (seq.clone(), runs.clone());
            let link = rt
                .task(move || {
                    runs.fetch_add(1, SeqCst);
                    // Body i may only run once body i-1 has stored i.
                    assert_eq!(seq.load(SeqCst), i, "link {i} ran before its predecessor");
                    seq.store(i + 1, SeqCst);
                    i
                })
                .after([prev])
                .await;
            prev = link.id();
            // The previous link's handle is dropped here: fire and forget. The chain is
            // longer than the default window, so slots are reclaimed and reused on the way.
            last = Some(link);
        }
        let last = last.expect("chain is not empty").await;
        assert_eq!(last.expect("last link of the chain"), CHAIN_LEN - 1);
        rt.shutdown().await;
    });

    assert_eq!(seq.load(SeqCst), CHAIN_LEN);
    assert_eq!(runs.load(SeqCst), CHAIN_LEN as usize);
}

#[test]
fn task_with_100_000_pending_dependencies_runs_once_after_all() {
    let _guard = hang_guard(
        "task_with_100_000_pending_dependencies_runs_once_after_all",
        120,
    );
    // Room for the gate, every producer and the consumer at once: all edges are live
    // (attached to fan-out lists) when the consumer is wired.
    let rt = Runtime::builder().workers(2).window(1 << 17).build();
    let producer_runs = Arc::new(AtomicUsize::new(0));
    let consumer_runs = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        let (open, gate) = oneshot::channel::<()>();
        let gate = rt
            .task_async(async move { gate.await.expect("gate sender dropped") })
            .name("gate")
            .await;

        let mut deps = Vec::with_capacity(FAN_IN);
        for _ in 0..FAN_IN {
            let producer_runs = producer_runs.clone();
            let producer = rt
                .task(move || {
                    producer_runs.fetch_add(1, SeqCst);
                })
                .after([gate.id()])
                .await;
            deps.push(producer.id());
        }

        let consumer = {
            let (producer_runs, consumer_runs) = (producer_runs.clone(), consumer_runs.clone());
            rt.task(move || {
                consumer_runs.fetch_add(1, SeqCst);
                producer_runs.load(SeqCst)
            })
            .name("fan-in")
            .after(deps)
            .await
        };

        assert_eq!(
            producer_runs.load(SeqCst),
            0,
            "producers ran before the gate opened"
        );
        open.send(()).expect("gate task is waiting");

        let seen = consumer.await.expect("fan-in task");
        assert_eq!(
            seen, FAN_IN,
            "the consumer ran before all of its dependencies"
        );
        gate.await.expect("gate task");
        rt.shutdown().await;
    });

    assert_eq!(producer_runs.load(SeqCst), FAN_IN);
    assert_eq!(consumer_runs.load(SeqCst), 1);
}

#[test]
fn task_with_100_000_mixed_running_done_and_stale_dependencies_runs_once_after_all() {
    let _guard = hang_guard("task_with_100_000_mixed_..._dependencies", 120);
    // A small window: most producer ids are stale (their slots reused) by the time the
    // consumer is wired, the last ones are still queued or running.
    let rt = Runtime::builder().workers(2).window(1024).build();
    let producer_runs = Arc::new(AtomicUsize::new(0));
    let consumer_runs = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        let mut deps = Vec::with_capacity(FAN_IN);
        for _ in 0..FAN_IN {
            let producer_runs = producer_runs.clone();
            let producer = rt
                .task(move || {
                    producer_runs.fetch_add(1, SeqCst);
                })
                .await;
            deps.push(producer.id());
        }
        let consumer = {
            let (producer_runs, consumer_runs) = (producer_runs.clone(), consumer_runs.clone());
            rt.task(move || {
                consumer_runs.fetch_add(1, SeqCst);
                producer_runs.load(SeqCst)
            })
            .name("fan-in")
            .after(deps)
            .await
        };
        let seen = consumer.await.expect("fan-in task");
        assert_eq!(
            seen, FAN_IN,
            "the consumer ran before all of its dependencies"
        );
        rt.shutdown().await;
    });

    assert_eq!(producer_runs.load(SeqCst), FAN_IN);
    assert_eq!(consumer_runs.load(SeqCst), 1);
}

#[test]
fn explicit_deps_skip_invalid_and_ignore_duplicates() {
    const PRODUCERS: usize = 8;
    let _guard = hang_guard("explicit_deps_skip_invalid_and_ignore_duplicates", 30);
    let rt = Runtime::builder().workers(2).build();
    let producer_done: Arc<[AtomicBool; PRODUCERS]> = Arc::new(Default::default());
    let producer_runs = Arc::new(AtomicUsize::new(0));
    let consumer_runs = Arc::new(AtomicUsize::new(0));
    let pair_runs = Arc::new(AtomicUsize::new(0));
    let free_runs = Arc::new(AtomicUsize::new(0));

    rt.block_on(async {
        // Producers that stay pending until the test opens them, one gate each.
        let mut opens = Vec::new();
        let mut producers = Vec::new();
        for k in 0..PRODUCERS {
            let (open, gate) = oneshot::channel::<()>();
            let (done, runs) = (producer_done.clone(), producer_runs.clone());
            let producer = rt
                .task_async(async move {
                    gate.await.expect("gate sender dropped");
                    runs.fetch_add(1, SeqCst);
                    done[k].store(true, SeqCst);
                })
                .name(format!("producer-{k}"))
                .await;
            opens.push(open);
            producers.push(producer);
        }

        // Built in a loop: every producer, an INVALID placeholder after each, and
        // every other producer repeated (duplicates), the first one once more at the end.
        let mut deps = Vec::new();
        for (k, producer) in producers.iter().enumerate() {
            deps.push(producer.id());
            deps.push(TaskId::INVALID);
            if k % 2 == 0 {
                deps.push(producer.id());
                deps.push(producer.id());
            }
        }
        deps.push(producers[0].id());
        assert_eq!(deps.len(), 2 * PRODUCERS + PRODUCERS + 1);

        let consumer = {
            let (done, consumer_runs) = (producer_done.clone(), consumer_runs.clone());
            rt.task(move || {
                consumer_runs.fetch_add(1, SeqCst);
                done.iter().filter(|d| d.load(SeqCst)).count()
            })
            .name("consumer")
            .after(deps)
            .await
        };

        // The same from an array literal: two real producers, each twice, and INVALIDs.
        let (first, last) = (producers[0].id(), producers[PRODUCERS - 1].id());
        let pair = {
            let (done, pair_runs) = (producer_done.clone(), pair_runs.clone());
            rt.task(move || {
                pair_runs.fetch_add(1, SeqCst);
                (done[0].load(SeqCst), done[PRODUCERS - 1].load(SeqCst))
            })
            .name("pair")
            .after([first, TaskId::INVALID, last, first, TaskId::INVALID, last])
            .await
        };

        // Only placeholders: no edge at all, so it completes while every producer is
        // still blocked (a hang here means INVALID was treated as a real producer).
        let free = {
            let (runs, free_runs) = (producer_runs.clone(), free_runs.clone());
            rt.task(move || {
                free_runs.fetch_add(1, SeqCst);
                runs.load(SeqCst)
            })
            .name("free")
            .after([TaskId::INVALID; 4])
            .await
        };
        assert_eq!(free.await.expect("free task"), 0);

        // Open the producers from the last to the first, so the ones named twice (even
        // indexes, including producer 0) are the last to complete.
        for open in opens.into_iter().rev() {
            open.send(()).expect("producer is waiting");
        }

        assert_eq!(
            consumer.await.expect("consumer"),
            PRODUCERS,
            "consumer ran too early"
        );
        assert_eq!(
            pair.await.expect("pair"),
            (true, true),
            "pair ran too early"
        );
        for producer in producers {
            producer.await.expect("producer");
        }
        rt.shutdown().await;
    });

    assert_eq!(producer_runs.load(SeqCst), PRODUCERS);
    assert_eq!(consumer_runs.load(SeqCst), 1);
    assert_eq!(pair_runs.load(SeqCst), 1);
    assert_eq!(free_runs.load(SeqCst), 1);
}
