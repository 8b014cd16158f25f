//! The fork-join workloads on a rayon thread pool: the binary tree as recursive
//! `join`, async tasks as one `scope` spawn per task, embarrassing parallelism as a
//! parallel iterator (rayon's natural form, which splits the range adaptively
//! instead of making one task per element).

use rayon::ThreadPool;
use rayon::prelude::*;

use crate::run_state::{self, count_task};

const SYSTEM: &str = "rayon";

/// A pool of `threads` threads.
pub fn pool(threads: usize) -> ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("cannot start the rayon pool")
}

/// A complete binary tree of `layers` layers: each node counts itself, then
/// `join`s its two subtrees.
pub fn binary_tree(pool: &ThreadPool, layers: usize) -> u64 {
    fn subtree(layers_below: usize) {
        count_task();
        if layers_below > 1 {
            rayon::join(|| subtree(layers_below - 1), || subtree(layers_below - 1));
        }
    }
    let run = run_state::begin();
    if layers > 0 {
        pool.install(|| subtree(layers));
    }
    run.check(
        "binary_tree",
        SYSTEM,
        (1u64 << layers) - 1,
        run_state::counted(),
    )
}

/// `tasks` independent tasks, one `Scope::spawn` each; the scope waits for all.
pub fn async_task(pool: &ThreadPool, tasks: usize) -> u64 {
    let run = run_state::begin();
    pool.scope(|scope| {
        for _ in 0..tasks {
            scope.spawn(|_| count_task());
        }
    });
    run.check("async_task", SYSTEM, tasks as u64, run_state::counted())
}

/// `tasks` elements of 32 `sin`/`cos` rounds each, as `par_iter().for_each`.
pub fn embarrassing_parallelism(pool: &ThreadPool, tasks: usize) -> u64 {
    let run = run_state::begin();
    pool.install(|| {
        (0..tasks as u64)
            .into_par_iter()
            .for_each(run_state::sin_cos_task)
    });
    run.check(
        "embarrassing_parallelism",
        SYSTEM,
        tasks as u64,
        run_state::counted(),
    )
}
