//! The workloads on taskweave: explicit `TaskId` dependencies, fire-and-forget task
//! handles, the orchestrator in `Runtime::block_on`.
//!
//! Every function builds the graph while it runs (submission is part of the
//! timing, as graph building is in Taskflow's), waits for its sinks, verifies the
//! count and returns it. Handles are dropped right after submission: only the
//! `TaskId`s a later task depends on are kept, so memory stays bounded by the task
//! window plus one row/level of ids.

use taskweave::{Runtime, TaskId};

use crate::layered_graph::LayeredGraph;
use crate::run_state::{self, count_chained_task, count_task};

const SYSTEM: &str = "taskweave";

/// A runtime with `threads` workers and the default task window.
pub fn runtime(threads: usize) -> Runtime {
    Runtime::builder().workers(threads).build()
}

/// `tasks` tasks, each after the previous one.
pub fn linear_chain(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    rt.block_on(async {
        let mut previous = TaskId::INVALID;
        for _ in 0..tasks {
            let task = rt.task(count_chained_task).after([previous]).submit().await;
            previous = task.id();
        }
        rt.wait(previous).await;
    });
    run.check("linear_chain", SYSTEM, tasks as u64, run_state::counted())
}

/// A complete binary tree of `layers` layers; each node precedes its two children.
pub fn binary_tree(rt: &Runtime, layers: usize) -> u64 {
    let run = run_state::begin();
    rt.block_on(async {
        let mut parents: Vec<TaskId> = Vec::new();
        let mut layer: Vec<TaskId> = Vec::new();
        for depth in 0..layers {
            layer.clear();
            for node in 0..1usize << depth {
                let parent = parents.get(node / 2).copied().unwrap_or(TaskId::INVALID);
                let task = rt.task(count_task).after([parent]).submit().await;
                layer.push(task.id());
            }
            std::mem::swap(&mut parents, &mut layer);
        }
        for &leaf in &parents {
            rt.wait(leaf).await;
        }
    });
    run.check(
        "binary_tree",
        SYSTEM,
        (1u64 << layers) - 1,
        run_state::counted(),
    )
}

/// A `side` x `side` grid of blocks; block (i, j) after (i - 1, j) and (i, j - 1).
pub fn wavefront(rt: &Runtime, side: usize) -> u64 {
    let run = run_state::begin();
    let columns = run_state::wavefront_columns(side);
    rt.block_on(async {
        let mut above: Vec<TaskId> = vec![TaskId::INVALID; side];
        for row in 0..side as u32 {
            let mut left = TaskId::INVALID;
            for column in 0..side as u32 {
                let up = &mut above[column as usize];
                let task = rt
                    .task(move || run_state::wavefront_block(columns, row, column))
                    .after([*up, left])
                    .submit()
                    .await;
                left = task.id();
                *up = left;
            }
        }
        // The last block transitively follows every other one.
        rt.wait(above[side - 1]).await;
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
        let mut previous: Vec<TaskId> = Vec::with_capacity(width);
        let mut level: Vec<TaskId> = Vec::with_capacity(width);
        for node in 0..graph.nodes() as u32 {
            let dependencies = graph
                .predecessors(node)
                .iter()
                .map(|&p| previous[p as usize]);
            let task = rt
                .task(move || graph.visit(node, epoch))
                .after(dependencies)
                .submit()
                .await;
            level.push(task.id());
            if level.len() == width {
                std::mem::swap(&mut previous, &mut level);
                level.clear();
            }
        }
        for &sink in &previous {
            rt.wait(sink).await;
        }
    });
    run.check(
        "graph_traversal",
        SYSTEM,
        graph.nodes(),
        graph.visited(epoch),
    )
}

/// `tasks` independent tasks, then wait for all of them (Taskflow's `silent_async`
/// followed by `wait_for_all`).
pub fn async_task(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    independent_tasks(rt, tasks, |_| count_task);
    run.check("async_task", SYSTEM, tasks as u64, run_state::counted())
}

/// `tasks` independent tasks of 32 `sin`/`cos` rounds each.
pub fn embarrassing_parallelism(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    independent_tasks(rt, tasks, |index| move || run_state::sin_cos_task(index));
    run.check(
        "embarrassing_parallelism",
        SYSTEM,
        tasks as u64,
        run_state::counted(),
    )
}

/// Submits `tasks` bodies without dependencies and waits for all of them.
///
/// Waiting goes through the ids, collected in one preallocated vector (no
/// allocation per task); ids of tasks finished long ago are stale and return at once.
fn independent_tasks<B>(rt: &Runtime, tasks: usize, body: impl Fn(u64) -> B)
where
    B: FnOnce() + Send + 'static,
{
    rt.block_on(async {
        let mut ids = Vec::with_capacity(tasks);
        for index in 0..tasks as u64 {
            ids.push(rt.task(body(index)).submit().await.id());
        }
        for id in ids {
            rt.wait(id).await;
        }
    });
}

/// [`linear_chain`] while the runtime records a trace (the cost of recording);
/// verifies that every task's poll was recorded.
#[cfg(feature = "trace")]
pub fn linear_chain_traced(rt: &Runtime, tasks: usize) -> u64 {
    rt.start_trace();
    let counted = linear_chain(rt, tasks);
    let trace = rt.stop_trace();
    assert_eq!(
        trace.polls().len(),
        tasks,
        "linear_chain_traced: every poll recorded"
    );
    counted
}
