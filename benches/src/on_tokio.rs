//! The workloads on tokio's multi-thread runtime, dependencies expressed the tokio
//! way: a task awaits its predecessors' `JoinHandle`s.
//!
//! A `JoinHandle` has one consumer, which is all a linear chain needs. A
//! predecessor with several successors (binary tree, wavefront, graph) is awaited
//! through [`futures::future::Shared`] wrapped around its `JoinHandle`: the stock,
//! general way to let many tasks await one, with one waker registration per
//! waiting clone. (A `oneshot` per edge would require spawning successors before
//! their predecessors, i.e. building the whole graph before anything runs, which
//! holds every task in memory at once.) As with taskweave, the orchestrator is the
//! future given to `Runtime::block_on` on the calling thread, tasks are spawned in
//! topological order and start as soon as their predecessors are done, and only one
//! row/level of handles is kept.

use futures::FutureExt;
use futures::future::{Map, Shared};
use tokio::runtime::Runtime;
use tokio::task::{JoinError, JoinHandle};

use crate::layered_graph::LayeredGraph;
use crate::run_state::{self, count_chained_task, count_task};

const SYSTEM: &str = "tokio";

/// Completion of a task that several successors await.
type SharedCompletion = Shared<Map<JoinHandle<()>, fn(Result<(), JoinError>)>>;

/// A multi-thread runtime with `threads` workers.
pub fn runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("cannot start the tokio runtime")
}

/// Unwraps a task's outcome: a predecessor that panicked fails its successors.
fn joined(outcome: Result<(), JoinError>) {
    if let Err(error) = outcome {
        panic!("a predecessor task failed: {error}");
    }
}

fn shared(handle: JoinHandle<()>) -> SharedCompletion {
    handle.map(joined as fn(Result<(), JoinError>)).shared()
}

/// `tasks` tasks, each awaiting the previous one's `JoinHandle`.
pub fn linear_chain(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    rt.block_on(async {
        let mut previous: Option<JoinHandle<()>> = None;
        for _ in 0..tasks {
            let predecessor = previous.take();
            previous = Some(tokio::spawn(async move {
                if let Some(predecessor) = predecessor {
                    joined(predecessor.await);
                }
                count_chained_task();
            }));
        }
        if let Some(last) = previous {
            joined(last.await);
        }
    });
    run.check("linear_chain", SYSTEM, tasks as u64, run_state::counted())
}

/// A complete binary tree of `layers` layers; each child awaits its parent.
pub fn binary_tree(rt: &Runtime, layers: usize) -> u64 {
    let run = run_state::begin();
    rt.block_on(async {
        let mut parents: Vec<SharedCompletion> = Vec::new();
        let mut leaves: Vec<JoinHandle<()>> = Vec::new();
        for depth in 0..layers {
            let is_leaf_layer = depth + 1 == layers;
            let mut layer = Vec::with_capacity(if is_leaf_layer { 0 } else { 1 << depth });
            for node in 0..1usize << depth {
                let parent = parents.get(node / 2).cloned();
                let handle = tokio::spawn(async move {
                    if let Some(parent) = parent {
                        parent.await;
                    }
                    count_task();
                });
                if is_leaf_layer {
                    leaves.push(handle);
                } else {
                    layer.push(shared(handle));
                }
            }
            parents = layer;
        }
        for leaf in leaves {
            joined(leaf.await);
        }
    });
    run.check(
        "binary_tree",
        SYSTEM,
        (1u64 << layers) - 1,
        run_state::counted(),
    )
}

/// A `side` x `side` grid of blocks; block (i, j) awaits (i - 1, j) and (i, j - 1).
pub fn wavefront(rt: &Runtime, side: usize) -> u64 {
    let run = run_state::begin();
    let columns = run_state::wavefront_columns(side);
    rt.block_on(async {
        let mut above: Vec<SharedCompletion> = Vec::new();
        for row in 0..side as u32 {
            let mut current: Vec<SharedCompletion> = Vec::with_capacity(side);
            for column in 0..side as u32 {
                let up = above.get(column as usize).cloned();
                let left = current.last().cloned();
                current.push(shared(tokio::spawn(async move {
                    if let Some(up) = up {
                        up.await;
                    }
                    if let Some(left) = left {
                        left.await;
                    }
                    run_state::wavefront_block(columns, row, column);
                })));
            }
            above = current;
        }
        // The last block transitively follows every other one.
        if let Some(last) = above.pop() {
            last.await;
        }
    });
    let expected = (side * side) as u64;
    run.check(
        "wavefront",
        SYSTEM,
        expected,
        run_state::wavefront_blocks_done(columns),
    )
}

/// `side` levels of `side` nodes of the fixed random [`LayeredGraph`].
pub fn graph_traversal(rt: &Runtime, side: usize) -> u64 {
    let graph = LayeredGraph::square(side);
    let run = run_state::begin();
    let epoch = run.epoch();
    rt.block_on(async {
        let width = graph.width() as usize;
        let mut previous: Vec<SharedCompletion> = Vec::new();
        let mut level: Vec<SharedCompletion> = Vec::with_capacity(width);
        for node in 0..graph.nodes() as u32 {
            let predecessors: Vec<SharedCompletion> = graph
                .predecessors(node)
                .iter()
                .map(|&p| previous[p as usize].clone())
                .collect();
            level.push(shared(tokio::spawn(async move {
                for predecessor in predecessors {
                    predecessor.await;
                }
                graph.visit(node, epoch);
            })));
            if level.len() == width {
                previous = std::mem::replace(&mut level, Vec::with_capacity(width));
            }
        }
        for sink in previous {
            sink.await;
        }
    });
    run.check(
        "graph_traversal",
        SYSTEM,
        graph.nodes(),
        graph.visited(epoch),
    )
}

/// `tasks` independent spawned tasks, then await every `JoinHandle`.
pub fn async_task(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    independent_tasks(rt, tasks, |_| async { count_task() });
    run.check("async_task", SYSTEM, tasks as u64, run_state::counted())
}

/// `tasks` independent tasks of 32 `sin`/`cos` rounds each.
pub fn embarrassing_parallelism(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    independent_tasks(
        rt,
        tasks,
        |index| async move { run_state::sin_cos_task(index) },
    );
    run.check(
        "embarrassing_parallelism",
        SYSTEM,
        tasks as u64,
        run_state::counted(),
    )
}

/// Spawns `tasks` bodies and awaits their handles, kept in one preallocated vector.
fn independent_tasks<B>(rt: &Runtime, tasks: usize, body: impl Fn(u64) -> B)
where
    B: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let mut handles = Vec::with_capacity(tasks);
        for index in 0..tasks as u64 {
            handles.push(tokio::spawn(body(index)));
        }
        for handle in handles {
            joined(handle.await);
        }
    });
}
