//! Typed outputs: `Task<T>` resolves to the body's value, dataflow passes outputs on as
//! inputs (tuples, `Vec`, arrays, `SharedTask`), `when_all`, `Runtime::wait` on a bare
//! `TaskId`, and every output is dropped exactly once whether it was taken or not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use futures::channel::oneshot;
use taskweave::{Runtime, Task, TaskError, TaskId, when_all};

mod support;
use support::hang_guard;

/// Counts how many `Tracked` values were created (including clones) and dropped.
#[derive(Default, Debug)]
struct Census {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Census {
    fn created(&self) -> usize {
        self.created.load(SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(SeqCst)
    }
}

/// An output whose every copy is counted by a `Census`.
#[derive(Debug)]
struct Tracked {
    value: u64,
    census: Arc<Census>,
}

impl Tracked {
    fn new(value: u64, census: &Arc<Census>) -> Tracked {
        census.created.fetch_add(1, SeqCst);
        Tracked {
            value,
            census: census.clone(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Tracked {
        Tracked::new(self.value, &self.census)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, SeqCst);
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn a_task_resolves_to_its_value() {
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        assert_eq!(rt.task(|| 6 * 7).await.await.unwrap(), 42);
        assert_eq!(
            rt.task(|| String::from("weave")).await.await.unwrap(),
            "weave"
        );
        assert_eq!(rt.task(|| vec![1u8, 2, 3]).await.await.unwrap(), [1, 2, 3]);
        assert_eq!(rt.task(|| (1u8, 'x')).await.await.unwrap(), (1, 'x'));
        assert_eq!(rt.task_async(async { 9u64 }).await.await.unwrap(), 9);
        rt.task(|| ()).await.await.unwrap();
    });
    // The same from a plain thread.
    let task = rt.task(|| "blocking").name("blocking").submit_blocking();
    assert_eq!(task.wait_blocking().unwrap(), "blocking");
    rt.shutdown_blocking();
}

#[test]
fn dataflow_passes_outputs_as_inputs() {
    let _guard = hang_guard("dataflow_passes_outputs_as_inputs", 30);
    let rt = Runtime::builder().workers(2).build();
    let body_runs = counter();
    let counted = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, SeqCst);
        }
    };

    rt.block_on(async {
        // A tuple of differently typed inputs.
        let number = rt.task(|| 3u32).name("number").await;
        let word = rt.task(|| String::from("abc")).name("word").await;
        let bytes = rt.task(|| vec![7u8; 2]).name("bytes").await;
        let ran = counted(&body_runs);
        let tuple = rt
            .dataflow((number, word, bytes), move |(n, w, b)| {
                ran();
                format!("{n}-{w}-{b:?}")
            })
            .name("tuple")
            .await;
        assert_eq!(tuple.await.unwrap(), "3-abc-[7, 7]");

        // A one-element tuple.
        let single = rt.task(|| 5i64).await;
        let ran = counted(&body_runs);
        let single = rt
            .dataflow((single,), move |(x,)| {
                ran();
                -x
            })
            .await;
        assert_eq!(single.await.unwrap(), -5);

        // A Vec of inputs, in order.
        let mut parts = Vec::new();
        for i in 0..10u64 {
            parts.push(rt.task(move || i * i).await);
        }
        let ran = counted(&body_runs);
        let squares = rt
            .dataflow(parts, move |values: Vec<u64>| {
                ran();
                values
            })
            .await;
        assert_eq!(
            squares.await.unwrap(),
            (0..10).map(|i| i * i).collect::<Vec<_>>()
        );

        // An array of inputs.
        let a = rt.task(|| 1u32).await;
        let b = rt.task(|| 2u32).await;
        let c = rt.task(|| 3u32).await;
        let d = rt.task(|| 4u32).await;
        let ran = counted(&body_runs);
        let array = rt
            .dataflow([a, b, c, d], move |values| {
                ran();
                values.into_iter().fold(0u32, |acc, v| acc * 10 + v)
            })
            .await;
        assert_eq!(array.await.unwrap(), 1234, "array inputs out of order");

        // Nested: a tuple holding a Vec and a task, feeding a second dataflow level.
        let mut lengths = Vec::new();
        for s in ["a", "bb", "ccc"] {
            lengths.push(rt.task(move || s.len()).await);
        }
        let label = rt.task(|| "total").await;
        let ran = counted(&body_runs);
        let total = rt
            .dataflow((lengths, label), move |(lengths, label)| {
                ran();
                format!("{label}={}", lengths.iter().sum::<usize>())
            })
            .await;
        let ran = counted(&body_runs);
        let shout = rt
            .dataflow_async(total, move |total| async move {
                ran();
                total.to_uppercase()
            })
            .name("shout")
            .await;
        assert_eq!(shout.await.unwrap(), "TOTAL=6");
        rt.shutdown().await;
    });
    assert_eq!(body_runs.load(SeqCst), 6);
}

#[test]
fn shared_task_feeds_several_consumers() {
    let _guard = hang_guard("shared_task_feeds_several_consumers", 30);
    let rt = Runtime::builder().workers(2).build();
    let census = Arc::new(Census::default());
    let producer_runs = counter();

    rt.block_on(async {
        let producer = {
            let (census, runs) = (census.clone(), producer_runs.clone());
            rt.task(move || {
                runs.fetch_add(1, SeqCst);
                Tracked::new(7, &census)
            })
            .name("producer")
            .await
        };
        let shared = producer.shared();
        let mut consumers = Vec::new();
        for k in 1..=3u64 {
            consumers.push(
                rt.dataflow(shared.clone(), move |t: Tracked| t.value * k)
                    .await,
            );
        }
        // The same producer twice in one input tuple.
        let twice = rt
            .dataflow(
                (shared.clone(), shared.clone()),
                |(x, y): (Tracked, Tracked)| x.value + y.value,
            )
            .await;
        let products: Vec<u64> = when_all(consumers).await.unwrap();
        assert_eq!(products, [7, 14, 21]);
        assert_eq!(twice.await.unwrap(), 14);
        // Awaiting clones of the handle itself.
        let id = shared.id();
        let other = shared.clone();
        assert_eq!(shared.await.unwrap().value, 7);
        assert_eq!(other.await.unwrap().value, 7);
        let late = rt.dataflow(rt.task(|| 1u64).await, |x| x).after([id]).await;
        assert_eq!(late.await.unwrap(), 1);
        rt.shutdown().await;
    });
    drop(rt);

    assert_eq!(producer_runs.load(SeqCst), 1);
    // How many clones are made is the handle's business (the last reader may move the
    // output out instead of cloning it); every copy must be dropped exactly once.
    assert!(census.created() >= 1);
    assert_eq!(
        census.dropped(),
        census.created(),
        "a shared output leaked or double-dropped"
    );
}

#[test]
fn shared_task_read_by_many_consumers_at_once() {
    const ROUNDS: u64 = 1_000;
    const CONSUMERS: u64 = 16;
    let _guard = hang_guard("shared_task_read_by_many_consumers_at_once", 60);
    let rt = Runtime::builder().workers(2).build();
    let consumer_runs = counter();

    rt.block_on(async {
        for round in 0..ROUNDS {
            let (open, gate) = oneshot::channel::<()>();
            let shared = rt
                .task_async(async move {
                    gate.await.expect("gate sender dropped");
                    round
                })
                .name("producer")
                .await
                .shared();
            // Consumers on both workers become ready at the same moment and read the
            // same shared output concurrently: each must get it.
            let mut consumers = Vec::new();
            for k in 0..CONSUMERS {
                let runs = consumer_runs.clone();
                let consumer = rt
                    .dataflow(shared.clone(), move |value: u64| {
                        runs.fetch_add(1, SeqCst);
                        value * CONSUMERS + k
                    })
                    .name(format!("consumer-{k}"))
                    .await;
                consumers.push(consumer);
            }
            open.send(()).expect("producer is waiting");
            let expected: Vec<u64> = (0..CONSUMERS).map(|k| round * CONSUMERS + k).collect();
            let values = when_all(consumers).await;
            let values = values.unwrap_or_else(|err| panic!("round {round}: {err}"));
            assert_eq!(values, expected, "round {round}");
        }
        rt.shutdown().await;
    });
    assert_eq!(consumer_runs.load(SeqCst), (ROUNDS * CONSUMERS) as usize);
}

#[test]
fn when_all_collects_in_order_and_the_first_error_wins() {
    let _guard = hang_guard("when_all_collects_in_order_and_the_first_error_wins", 30);
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..20u64 {
            tasks.push(rt.task(move || i * i).await);
        }
        assert_eq!(
            when_all(tasks).await.unwrap(),
            (0..20).map(|i| i * i).collect::<Vec<_>>()
        );

        let none: Vec<Task<u8>> = Vec::new();
        assert_eq!(when_all(none).await.unwrap(), Vec::<u8>::new());

        let mut tasks = Vec::new();
        for i in 0..5u64 {
            tasks.push(rt.try_task(move || Ok::<_, &str>(i)).await);
        }
        let failing = rt.try_task(|| Err::<u64, _>("bad input")).name("bad").await;
        let failing_id = failing.id();
        tasks.insert(2, failing);
        let err = when_all(tasks).await.expect_err("one input failed");
        assert_eq!(err.task(), failing_id);
        assert!(matches!(err, TaskError::Failed { .. }), "{err:?}");
        rt.shutdown().await;
    });
}

#[test]
fn outputs_are_dropped_exactly_once_whether_taken_or_not() {
    const EACH: usize = 50;
    let _guard = hang_guard("outputs_are_dropped_exactly_once_whether_taken_or_not", 30);
    let rt = Runtime::builder().workers(2).build();
    let taken = Arc::new(Census::default());
    let left_in_handle = Arc::new(Census::default());
    let consumed = Arc::new(Census::default());
    let runs = counter();
    let produce = |census: &Arc<Census>, value: u64| {
        let (census, runs) = (census.clone(), runs.clone());
        move || {
            runs.fetch_add(1, SeqCst);
            Tracked::new(value, &census)
        }
    };

    let held = rt.block_on(async {
        // Taken: the test owns the outputs afterwards.
        let mut held = Vec::new();
        for i in 0..EACH {
            let task = rt.task(produce(&taken, i as u64)).await;
            held.push(task.await.unwrap());
        }

        // Completed but never taken: the handle is dropped with the output inside.
        for i in 0..EACH {
            let task = rt.task(produce(&left_in_handle, i as u64)).await;
            rt.wait(task.id()).await;
            drop(task);
        }

        // Taken by a dataflow consumer, which drops them in its body.
        let mut inputs = Vec::new();
        for i in 0..EACH {
            inputs.push(rt.task(produce(&consumed, i as u64)).await);
        }
        let consumed_census = consumed.clone();
        let count = rt
            .dataflow(inputs, move |values: Vec<Tracked>| {
                let n = values.len();
                drop(values);
                (n, consumed_census.dropped())
            })
            .await;
        assert_eq!(
            count.await.unwrap(),
            (EACH, EACH),
            "inputs not moved into the body"
        );

        rt.shutdown().await;
        held
    });
    drop(rt);

    assert_eq!(runs.load(SeqCst), 3 * EACH);
    assert_eq!(taken.created(), EACH);
    assert_eq!(
        taken.dropped(),
        0,
        "the runtime dropped an output it had handed out"
    );
    assert_eq!(
        held.iter().map(|t| t.value).sum::<u64>(),
        (0..EACH as u64).sum()
    );
    drop(held);
    assert_eq!(taken.dropped(), EACH);
    assert_eq!(
        (left_in_handle.created(), left_in_handle.dropped()),
        (EACH, EACH)
    );
    assert_eq!((consumed.created(), consumed.dropped()), (EACH, EACH));
}

#[test]
fn fire_and_forget_runs_once_and_drops_its_output_once() {
    const TASKS: usize = 1_000;
    let _guard = hang_guard("fire_and_forget_runs_once_and_drops_its_output_once", 30);
    // A small window, so most slots are reclaimed and reused along the way.
    let rt = Runtime::builder().workers(2).window(16).build();
    let census = Arc::new(Census::default());
    let runs = counter();

    rt.block_on(async {
        for i in 0..TASKS {
            let (census, runs) = (census.clone(), runs.clone());
            let handle = rt
                .task(move || {
                    runs.fetch_add(1, SeqCst);
                    Tracked::new(i as u64, &census)
                })
                .await;
            drop(handle);
        }
        rt.shutdown().await;
    });
    drop(rt);

    assert_eq!(runs.load(SeqCst), TASKS);
    assert_eq!((census.created(), census.dropped()), (TASKS, TASKS));
}

#[test]
fn large_bodies_and_outputs_of_every_size_run_once_and_drop_once() {
    // Bodies and outputs past a slot's inline bytes live in the slot's spill block,
    // kept from one task to the next and grown when a larger one comes (or, past its
    // limit, in a box). Sizes that grow, shrink and grow again through a small window
    // reuse, regrow and skip the blocks; each body sees its own bytes.
    const TASKS: usize = 600;
    let _guard = hang_guard(
        "large_bodies_and_outputs_of_every_size_run_once_and_drop_once",
        30,
    );
    // Small enough that slots are reused many times; large enough for the handles
    // kept (each holds its slot).
    let rt = Runtime::builder().workers(2).window(32).build();
    let census = Arc::new(Census::default());
    let sums = counter();

    fn submit<const N: usize>(
        rt: &Runtime,
        i: usize,
        census: &Arc<Census>,
        sums: &Arc<AtomicUsize>,
    ) -> Task<(Tracked, [u64; N])> {
        let words: [u64; N] = std::array::from_fn(|k| (i * 1_000 + k) as u64);
        let (census, sums) = (census.clone(), sums.clone());
        let body = move || {
            let expected: u64 = (0..N).map(|k| (i * 1_000 + k) as u64).sum();
            assert_eq!(
                words.iter().sum::<u64>(),
                expected,
                "a body saw other bytes"
            );
            sums.fetch_add(1, SeqCst);
            (Tracked::new(i as u64, &census), words)
        };
        rt.task(body).submit_blocking()
    }

    let mut kept = Vec::new();
    for i in 0..TASKS {
        // 2, 40, 56 and 200 words: inline, spilled (and regrown), and boxed. One
        // 56-word task in ten is kept and its output taken at the end; the other
        // handles are dropped at once.
        match i % 4 {
            0 => drop(submit::<2>(&rt, i, &census, &sums)),
            1 => drop(submit::<40>(&rt, i, &census, &sums)),
            2 if i % 40 == 2 => kept.push(submit::<56>(&rt, i, &census, &sums)),
            2 => drop(submit::<56>(&rt, i, &census, &sums)),
            _ => drop(submit::<200>(&rt, i, &census, &sums)),
        }
    }
    for task in kept {
        let (tracked, words) = task.wait_blocking().unwrap();
        assert_eq!(words[55], tracked.value * 1_000 + 55);
    }
    rt.block_on(rt.synchronize());
    drop(rt);
    assert_eq!(sums.load(SeqCst), TASKS);
    assert_eq!((census.created(), census.dropped()), (TASKS, TASKS));
}

#[test]
fn wait_on_a_bare_task_id() {
    let _guard = hang_guard("wait_on_a_bare_task_id", 30);
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        let (open, gate) = oneshot::channel::<u32>();
        let task = rt
            .task_async(async move { gate.await.unwrap() })
            .name("gated")
            .await;
        let id = task.id();

        let mut waiting = std::pin::pin!(rt.wait(id));
        for _ in 0..3 {
            assert!(
                futures::poll!(waiting.as_mut()).is_pending(),
                "wait ended before the task"
            );
        }
        open.send(11).unwrap();
        waiting.await;
        // Waiting does not take the output.
        assert_eq!(task.await.unwrap(), 11);
        // The handle is gone and the output taken: the id is done (or stale) for good.
        rt.wait(id).await;

        // Waiting never errors, also not on a failed task.
        let failed = rt.try_task(|| Err::<(), _>("nope")).await;
        rt.wait(failed.id()).await;
        assert!(failed.await.is_err());

        // The placeholder id names no task: nothing to wait for.
        rt.wait(TaskId::INVALID).await;
        rt.shutdown().await;
    });
}

#[test]
fn consumer_of_a_failed_input_gets_dependency_failed() {
    let _guard = hang_guard("consumer_of_a_failed_input_gets_dependency_failed", 30);
    let rt = Runtime::builder().workers(2).build();
    let census = Arc::new(Census::default());
    let consumer_runs = counter();

    rt.block_on(async {
        let bad = rt
            .try_task(|| Err::<u64, _>("checksum mismatch"))
            .name("load")
            .await;
        let bad_id = bad.id();
        let good = {
            let census = census.clone();
            rt.task(move || Tracked::new(1, &census)).name("good").await
        };
        let consumer = {
            let runs = consumer_runs.clone();
            rt.dataflow((bad, good), move |(x, t): (u64, Tracked)| {
                runs.fetch_add(1, SeqCst);
                x + t.value
            })
            .name("combine")
            .await
        };
        let consumer_id = consumer.id();
        match consumer.await {
            Err(TaskError::DependencyFailed {
                task,
                name,
                root,
                root_name,
                ..
            }) => {
                assert_eq!(task, consumer_id);
                assert_eq!(name.as_deref(), Some("combine"));
                assert_eq!(root, bad_id);
                assert_eq!(root_name.as_deref(), Some("load"));
            }
            other => panic!("expected DependencyFailed, got {other:?}"),
        }

        // Through a shared handle: every consumer fails, and so does every clone.
        let bad = rt
            .try_task(|| Err::<u64, _>("no device"))
            .name("probe")
            .await;
        let bad_id = bad.id();
        let shared = bad.shared();
        let mut consumers = Vec::new();
        for _ in 0..3 {
            let runs = consumer_runs.clone();
            consumers.push(
                rt.dataflow(shared.clone(), move |x| {
                    runs.fetch_add(1, SeqCst);
                    x
                })
                .await,
            );
        }
        for consumer in consumers {
            let err = consumer
                .await
                .expect_err("consumer of a failed shared input");
            assert!(matches!(err, TaskError::DependencyFailed { .. }), "{err:?}");
            assert_eq!(err.root(), bad_id);
        }
        let err = shared.await.expect_err("the failed task itself");
        assert!(
            matches!(err, TaskError::Failed { task, .. } if task == bad_id),
            "{err:?}"
        );
        rt.shutdown().await;
    });
    drop(rt);

    assert_eq!(
        consumer_runs.load(SeqCst),
        0,
        "a consumer of a failed input ran"
    );
    // The good input was produced but never consumed: still dropped exactly once.
    assert_eq!((census.created(), census.dropped()), (1, 1));
}
