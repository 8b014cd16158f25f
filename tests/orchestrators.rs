//! Several orchestrators at once: threads using `submit_blocking`, async orchestrators
//! joined in one `block_on`, tasks that submit tasks, and tokio tasks holding `Runtime`
//! clones, all submitting into one window; every body runs exactly once and nothing
//! deadlocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use futures::future::join_all;
use taskweave::{Runtime, TaskId, when_all};

mod support;
use support::hang_guard;

const ORCHESTRATORS: usize = 4;
const TASKS_EACH: usize = 10_000;
/// Every `LINK_EVERY`-th task of an orchestrator extends that orchestrator's own chain.
const LINK_EVERY: usize = 10;

/// What one orchestrator observed: each orchestrator keeps its own chain, whose links
/// check they run in order, next to independent tasks.
struct Lane {
    runs: Arc<AtomicUsize>,
    chain_seq: Arc<AtomicU64>,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            runs: Arc::new(AtomicUsize::new(0)),
            chain_seq: Arc::new(AtomicU64::new(0)),
        }
    }

    fn independent(&self) -> impl FnOnce() + Send + 'static {
        let runs = self.runs.clone();
        move || {
            runs.fetch_add(1, SeqCst);
        }
    }

    fn link(&self, link: u64) -> impl FnOnce() + Send + 'static {
        let (runs, chain_seq) = (self.runs.clone(), self.chain_seq.clone());
        move || {
            runs.fetch_add(1, SeqCst);
            assert_eq!(
                chain_seq.load(SeqCst),
                link,
                "chain link {link} ran too early"
            );
            chain_seq.store(link + 1, SeqCst);
        }
    }

    fn check(&self, who: &str) {
        assert_eq!(
            self.runs.load(SeqCst),
            TASKS_EACH,
            "{who}: bodies lost or run twice"
        );
        assert_eq!(
            self.chain_seq.load(SeqCst),
            (TASKS_EACH / LINK_EVERY) as u64,
            "{who}"
        );
    }
}

#[test]
fn threads_submitting_at_once_with_submit_blocking() {
    let _guard = hang_guard("threads_submitting_at_once_with_submit_blocking", 120);
    // A window much smaller than the work: the threads contend for slots.
    let rt = Runtime::builder().workers(2).window(64).build();
    let lanes: Vec<Arc<Lane>> = (0..ORCHESTRATORS).map(|_| Arc::new(Lane::new())).collect();
    let start = Arc::new(std::sync::Barrier::new(ORCHESTRATORS));

    let threads: Vec<_> = lanes
        .iter()
        .map(|lane| {
            let (rt, lane, start) = (rt.clone(), lane.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut prev = TaskId::INVALID;
                let mut last = None;
                for i in 0..TASKS_EACH {
                    if i % LINK_EVERY == 0 {
                        let link = (i / LINK_EVERY) as u64;
                        let task = rt.task(lane.link(link)).after([prev]).submit_blocking();
                        prev = task.id();
                        last = Some(task);
                    } else {
                        let _fire_and_forget = rt.task(lane.independent()).submit_blocking();
                    }
                }
                last.expect("at least one link").wait_blocking()
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .expect("orchestrator thread")
            .expect("last chain link");
    }
    rt.shutdown_blocking();
    for (k, lane) in lanes.iter().enumerate() {
        lane.check(&format!("thread {k}"));
    }
}

#[test]
fn async_orchestrators_joined_in_one_block_on() {
    let _guard = hang_guard("async_orchestrators_joined_in_one_block_on", 120);
    let rt = Runtime::builder().workers(2).window(64).build();
    let lanes: Vec<Lane> = (0..ORCHESTRATORS).map(|_| Lane::new()).collect();

    let results = rt.block_on(join_all(lanes.iter().map(|lane| {
        let rt = &rt;
        async move {
            let mut prev = TaskId::INVALID;
            let mut last = None;
            for i in 0..TASKS_EACH {
                if i % LINK_EVERY == 0 {
                    let link = (i / LINK_EVERY) as u64;
                    let task = rt.task(lane.link(link)).after([prev]).await;
                    prev = task.id();
                    last = Some(task);
                } else {
                    let _fire_and_forget = rt.task(lane.independent()).await;
                }
            }
            last.expect("at least one link").await
        }
    })));
    for result in results {
        result.expect("last chain link");
    }
    rt.shutdown_blocking();
    for (k, lane) in lanes.iter().enumerate() {
        lane.check(&format!("orchestrator {k}"));
    }
}

#[test]
fn tasks_that_submit_and_await_tasks() {
    const PARENTS: usize = 4;
    const CHILDREN: u64 = 1_000;
    let _guard = hang_guard("tasks_that_submit_and_await_tasks", 60);
    // Room for every child a parent holds at once, plus the parents.
    let rt = Runtime::builder()
        .workers(2)
        .window(PARENTS * CHILDREN as usize + 64)
        .build();
    let child_runs = Arc::new(AtomicUsize::new(0));

    let sums = rt.block_on(async {
        let mut parents = Vec::new();
        for p in 0..PARENTS {
            // The orchestrator is itself a task: its async body owns a runtime clone,
            // submits children and awaits them without holding a worker.
            let (inner, runs) = (rt.clone(), child_runs.clone());
            let parent = rt
                .task_async(async move {
                    let mut children = Vec::new();
                    for i in 0..CHILDREN {
                        let runs = runs.clone();
                        let child = inner
                            .task(move || {
                                runs.fetch_add(1, SeqCst);
                                i
                            })
                            .await;
                        children.push(child);
                    }
                    when_all(children).await.map(|v| v.iter().sum::<u64>())
                })
                .name(format!("parent-{p}"))
                .await;
            parents.push(parent);
        }
        let mut sums = Vec::new();
        for parent in parents {
            sums.push(parent.await.expect("parent task").expect("children"));
        }
        rt.shutdown().await;
        sums
    });
    assert_eq!(sums, vec![(0..CHILDREN).sum::<u64>(); PARENTS]);
    assert_eq!(child_runs.load(SeqCst), PARENTS * CHILDREN as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_tasks_as_orchestrators() {
    const TOKIO_TASKS: usize = 8;
    const TASKS_EACH: u64 = 1_000;
    const BATCH: u64 = 100;
    let _guard = hang_guard("tokio_tasks_as_orchestrators", 60);
    // Each tokio task holds up to BATCH unfinished handles at once; the window has room
    // for all of them (held handles keep their slots), and the tasks still contend.
    let rt = Runtime::builder().workers(2).window(1024).build();
    let runs = Arc::new(AtomicUsize::new(0));

    let mut joins = Vec::new();
    for t in 0..TOKIO_TASKS as u64 {
        let (rt, runs) = (rt.clone(), runs.clone());
        joins.push(tokio::spawn(async move {
            // Submit and await handles one by one...
            let mut sum = 0;
            for i in 0..TASKS_EACH - BATCH {
                let runs = runs.clone();
                let task = rt
                    .task(move || {
                        runs.fetch_add(1, SeqCst);
                        i
                    })
                    .await;
                sum += task.await.expect("task");
            }
            // ...and in batches joined with when_all and a dataflow.
            let mut batch = Vec::new();
            for i in TASKS_EACH - BATCH..TASKS_EACH {
                let runs = runs.clone();
                batch.push(
                    rt.task(move || {
                        runs.fetch_add(1, SeqCst);
                        i
                    })
                    .await,
                );
            }
            let tail = batch.split_off(batch.len() / 2);
            let tail_sum = rt
                .dataflow(tail, |values: Vec<u64>| values.iter().sum::<u64>())
                .await;
            sum += when_all(batch).await.expect("batch").iter().sum::<u64>();
            sum += tail_sum.await.expect("dataflow");
            (t, sum)
        }));
    }

    // A body that waits for a tokio primitive completed by a tokio task: the wake
    // crosses from tokio's threads to taskweave's.
    let (value_tx, value_rx) = tokio::sync::oneshot::channel::<u64>();
    let cross = rt
        .task_async(async move { value_rx.await.expect("sender kept") })
        .await;
    tokio::spawn(async move { value_tx.send(99).expect("body is waiting") });
    assert_eq!(cross.await.expect("cross-runtime wake"), 99);

    let expected: u64 = (0..TASKS_EACH).sum();
    for join in joins {
        let (t, sum) = join.await.expect("tokio orchestrator");
        assert_eq!(sum, expected, "tokio orchestrator {t} got wrong outputs");
    }
    rt.shutdown().await;
    assert_eq!(runs.load(SeqCst), TOKIO_TASKS * TASKS_EACH as usize);
}
