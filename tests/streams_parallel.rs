//! `stream_parallel` (fork onto worker streams, several launches per worker in order,
//! join back, caller never blocked, workers pooled) and scoped streams
//! (`with_stream`: synchronize, then destroy).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use taskweave::Runtime;
use taskweave::streams::{Stream, Streams};

mod support;
use support::hang_guard;

fn busy(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// Counters a round of the fork/join test checks.
#[derive(Default)]
struct Round {
    /// Set by the launch stream's task before the fork.
    before_fork: AtomicU64,
    /// Per branch: how many of its steps have run (load/store, so overlap shows).
    steps: [AtomicU64; BRANCHES],
    /// Branch steps that ran before the launch stream's pre-fork task.
    early: AtomicU64,
    /// Branch steps that ran out of order on their worker.
    out_of_order: AtomicU64,
}

const BRANCHES: usize = 4;
const LOOPS: u64 = 3;
const STEPS_PER_LOOP: u64 = 10;

#[test]
fn stream_parallel_orders_fork_branches_and_join() {
    let _guard = hang_guard("stream_parallel", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let main = streams.create_stream("main");
    let mut worker_names = BTreeSet::new();
    rt.block_on(async {
        for _ in 0..20 {
            let round = Arc::new(Round::default());
            // Nothing of the round can run before the gate opens, after the whole
            // round has been launched: a branch not ordered after the fork point, or
            // a join not ordered after the branches, would run too early.
            let (open_gate, gate) = oneshot::channel::<()>();
            let r = round.clone();
            drop(
                main.task_async(async move {
                    gate.await.unwrap();
                    r.before_fork.store(1, SeqCst)
                })
                .name("before-fork")
                .await,
            );
            let branches = (0..BRANCHES).map(|branch| {
                let round = round.clone();
                move |worker: Stream| async move {
                    // Several loops per worker stream, each several launches.
                    for _ in 0..LOOPS {
                        for _ in 0..STEPS_PER_LOOP {
                            let r = round.clone();
                            drop(
                                worker
                                    .task(move || {
                                        if r.before_fork.load(SeqCst) != 1 {
                                            r.early.fetch_add(1, SeqCst);
                                        }
                                        let done = r.steps[branch].load(SeqCst);
                                        busy(100);
                                        if r.steps[branch].load(SeqCst) != done {
                                            r.out_of_order.fetch_add(1, SeqCst);
                                        }
                                        r.steps[branch].store(done + 1, SeqCst);
                                    })
                                    .await,
                            );
                        }
                    }
                    worker.name().to_owned()
                }
            });
            let names = streams.stream_parallel(&main, branches).await;
            assert_eq!(names.len(), BRANCHES);
            assert_eq!(
                names.iter().collect::<BTreeSet<_>>().len(),
                BRANCHES,
                "each branch has its own worker stream"
            );
            worker_names.extend(names);
            let r = round.clone();
            let after_join = main
                .task(move || r.steps.iter().map(|s| s.load(SeqCst)).collect::<Vec<_>>())
                .name("after-join")
                .await;
            open_gate.send(()).unwrap();
            assert_eq!(
                after_join.await.unwrap(),
                vec![LOOPS * STEPS_PER_LOOP; BRANCHES],
                "the launch stream ran before every branch had finished"
            );
            assert_eq!(
                round.early.load(SeqCst),
                0,
                "a branch ran before the fork point"
            );
            assert_eq!(round.out_of_order.load(SeqCst), 0);
        }
        main.synchronize().await.unwrap();
    });
    assert_eq!(
        worker_names.len(),
        BRANCHES,
        "worker streams come back to the pool: {worker_names:?}"
    );
}

#[test]
fn stream_parallel_does_not_block_the_caller() {
    let _guard = hang_guard("stream_parallel_does_not_block", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let main = streams.default_stream();
    let (open_gate, gate) = oneshot::channel::<()>();
    let gate = futures::future::FutureExt::shared(gate);
    let ran = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let branches = (0..3).map(|_| {
            let (gate, ran) = (gate.clone(), ran.clone());
            move |worker: Stream| async move {
                drop(
                    worker
                        .task_async(async move {
                            gate.await.unwrap();
                            ran.fetch_add(1, SeqCst);
                        })
                        .await,
                );
            }
        });
        // Resolves although no branch can run yet: the caller waits for nothing.
        streams.stream_parallel(main, branches).await;
        assert_eq!(ran.load(SeqCst), 0);
        let r = ran.clone();
        let joined = main.task(move || r.load(SeqCst)).await;
        assert!(
            !joined.is_finished(),
            "the join did not wait for the branches"
        );
        open_gate.send(()).unwrap();
        assert_eq!(joined.await.unwrap(), 3);
    });
}

#[test]
fn fork_guard_with_different_work_per_worker() {
    let _guard = hang_guard("fork_guard", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let main = streams.create_stream("main");
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let l = log.clone();
        drop(main.task(move || l.lock().unwrap().push("init")).await);
        let mut fork = streams.parallel(&main);
        assert!(fork.launch_stream().same_stream(&main));
        let copy = fork.worker();
        let compute = fork.worker();
        let l = log.clone();
        drop(copy.task(move || l.lock().unwrap().push("copy")).await);
        let l = log.clone();
        let numbers = compute.task(|| vec![1u64, 2, 3]).await;
        drop(
            compute
                .dataflow(numbers, move |v: Vec<u64>| {
                    l.lock().unwrap().push("compute");
                    v.iter().sum::<u64>()
                })
                .await,
        );
        drop((copy, compute));
        fork.join();
        let l = log.clone();
        drop(main.task(move || l.lock().unwrap().push("finish")).await);
        main.synchronize().await.unwrap();
    });
    let log = log.lock().unwrap();
    assert_eq!(log.first(), Some(&"init"));
    assert_eq!(log.last(), Some(&"finish"));
    assert_eq!(log.len(), 4);
}

#[test]
fn scoped_stream_synchronizes_before_it_returns() {
    let _guard = hang_guard("scoped_stream", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let done = Arc::new(AtomicU64::new(0));
    for _ in 0..20 {
        done.store(0, SeqCst);
        let d = done.clone();
        let output = rt.block_on(streams.with_stream(|s| async move {
            for _ in 0..50 {
                let d = d.clone();
                // Fire and forget: the scope, not the handles, waits for them.
                drop(
                    s.task(move || {
                        busy(200);
                        d.fetch_add(1, SeqCst)
                    })
                    .await,
                );
            }
            s.name().to_owned()
        }));
        assert!(output.unwrap().starts_with("scoped-"));
        assert_eq!(
            done.load(SeqCst),
            50,
            "with_stream returned before its work finished"
        );
    }
}

#[test]
fn scoped_stream_waits_only_for_its_own_work() {
    let _guard = hang_guard("scoped_stream_own_work", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let other = streams.create_stream("other");
    let (open_gate, gate) = oneshot::channel::<()>();
    let gated = other
        .task_async(async move { gate.await.unwrap() })
        .submit_blocking();
    let out = rt.block_on(
        streams.with_named_stream("mine", |s| async move { s.task(|| 5).await.await.unwrap() }),
    );
    assert_eq!(out.unwrap(), 5);
    assert!(!gated.is_finished());
    open_gate.send(()).unwrap();
    gated.wait_blocking().unwrap();
}
