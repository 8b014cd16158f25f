//! The data-dependency workloads on taskweave: every task declares what it reads and
//! writes and the dependency map derives every edge (none is given by hand).
//!
//! As in `on_taskweave`, graph building is part of the timing, handles are dropped
//! right after submission, and every function verifies what it computed (from the
//! tensors' final contents) and returns its task count. Tasks are submitted in
//! nested scopes of [`SCOPE_TASKS`] tasks, as a program would: a scope holds its
//! tasks' slots until it ends, so one scope per chunk keeps the window flowing.
//!
//! Peers: `linear_chain_data` is the OpenMP `depend(inout: x)` chain, whose
//! hand-wired equivalents are `on_taskweave::linear_chain` (this project, explicit
//! ids) and `on_tokio::linear_chain`; `cholesky` is compared with
//! [`cholesky_sequential`], the same tile kernels run in order on one thread.

use std::time::Instant;

use taskweave::data::Write;
use taskweave::{Access, Region, Runtime, Scope, ViewMut};

use crate::run_state;

const SYSTEM: &str = "taskweave";

/// Tasks per scope: scopes hold their tasks' slots until they end.
pub const SCOPE_TASKS: usize = 4096;

/// `tasks` tasks, each `ReadWrite` on the same one-element region (OpenMP's
/// `depend(inout: x)` chain); each adds one to it, so a missing edge loses a count.
pub fn linear_chain_data(rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    let counted = rt.block_on(async {
        let root = Scope::new(rt, "linear_chain_data");
        let counter = root.zeros::<u64>("counter", [1]);
        let mut left = tasks;
        while left > 0 {
            let chunk = left.min(SCOPE_TASKS);
            let scope = root.scope("chunk").expect("an auto scope");
            for _ in 0..chunk {
                let task = scope.task(counter.read_write(..), increment).submit().await;
                drop(task.expect("submission"));
            }
            left -= chunk;
        }
        root.read(&counter, ..).await.expect("host read")[0]
    });
    run.check("linear_chain_data", SYSTEM, tasks as u64, counted)
}

fn increment(mut counter: ViewMut<'_, u64>) {
    counter[[0]] += 1;
}

/// A `side` x `side` grid of blocks: block (i, j) writes its own element and reads
/// its upper and left neighbours; it stores `1 + max(upper, left)`, so the final
/// grid holds `i + j + 1` only if every block ran after both neighbours.
pub fn wavefront_data(rt: &Runtime, side: usize) -> u64 {
    let run = run_state::begin();
    let wrong = rt.block_on(async {
        let root = Scope::new(rt, "wavefront_data");
        let grid = root.zeros::<u32>("grid", [side, side]);
        // An empty tile for the missing neighbours of the first row and column: the
        // accesses keep one type, and an empty region has no dependencies.
        let none = Region::tile([0, 0], [0, 0]);
        for i in 0..side {
            let row = root.scope("row").expect("an auto scope");
            for j in 0..side {
                let up = if i > 0 {
                    Region::element([i - 1, j])
                } else {
                    none
                };
                let left = if j > 0 {
                    Region::element([i, j - 1])
                } else {
                    none
                };
                let accesses = (
                    grid.write(Region::element([i, j])),
                    grid.read(up),
                    grid.read(left),
                );
                let task = row
                    .task(accesses, |(mut me, up, left)| {
                        let up = up.get(&[0, 0]).copied().unwrap_or(0);
                        let left = left.get(&[0, 0]).copied().unwrap_or(0);
                        me[[0, 0]] = 1 + up.max(left);
                    })
                    .submit()
                    .await;
                drop(task.expect("submission"));
            }
        }
        // Checked in place: a copy of the grid would add its own 4 bytes per task
        // to the peak RSS that `wavefront_data`'s memory goal measures.
        root.read_with(&grid, .., move |values| {
            values
                .rows()
                .enumerate()
                .map(|(i, row)| {
                    row.iter()
                        .enumerate()
                        .filter(|&(j, &v)| v as usize != i + j + 1)
                        .count()
                })
                .sum::<usize>()
        })
        .await
        .expect("host read")
    });
    if wrong > 0 {
        run_state::order_violated();
    }
    let blocks = (side * side) as u64;
    run.check("wavefront_data", SYSTEM, blocks, blocks)
}

/// `submit_cost` with no access (the scope and submission overhead alone).
pub fn submit_cost_0(rt: &Runtime, tasks: usize) -> u64 {
    submit_cost::<0>("submit_cost_0", rt, tasks)
}

/// `submit_cost` with one access per task.
pub fn submit_cost_1(rt: &Runtime, tasks: usize) -> u64 {
    submit_cost::<1>("submit_cost_1", rt, tasks)
}

/// `submit_cost` with five accesses per task.
pub fn submit_cost_5(rt: &Runtime, tasks: usize) -> u64 {
    submit_cost::<5>("submit_cost_5", rt, tasks)
}

/// `submit_cost` with sixteen accesses per task.
pub fn submit_cost_16(rt: &Runtime, tasks: usize) -> u64 {
    submit_cost::<16>("submit_cost_16", rt, tasks)
}

/// `tasks` independent tasks, each writing `K` distinct one-element regions of a
/// tensor (no two tasks share a region, so no edge is derived), then a wait for all
/// (the host read that checks what they wrote is untimed).
/// The bodies are trivial and two workers keep up with one submitter, so the time
/// per task is the submission cost: checking `K` accesses, `K` map look-ups and
/// records, and the executor's submit (StarPU/SuperGlue/PTO2's emplacement cost).
fn submit_cost<const K: usize>(name: &str, rt: &Runtime, tasks: usize) -> u64 {
    let run = run_state::begin();
    let root = Scope::new(rt, "submit_cost");
    let cells = root.zeros::<u8>("cells", [(tasks * K).max(1)]);
    rt.block_on(async {
        let mut next = 0;
        while next < tasks {
            let end = (next + SCOPE_TASKS).min(tasks);
            let scope = root.scope("chunk").expect("an auto scope");
            for task in next..end {
                let accesses: [Access<'_, u8, Write>; K] = std::array::from_fn(|k| {
                    let at = task * K + k;
                    cells.write(Region::range(at..at + 1))
                });
                let submitted = scope
                    .task(accesses, |views: [ViewMut<'_, u8>; K]| {
                        for mut view in views {
                            view[[0]] = 1;
                        }
                        run_state::count_task();
                    })
                    .submit()
                    .await;
                drop(submitted.expect("submission"));
            }
            next = end;
            // The scope ends without blocking.
        }
        // The run ends when every task has run (with no access, `K = 0`, a read
        // would wait for nothing: wait for the runtime).
        rt.synchronize().await;
    });
    // Checking what the tasks wrote is not part of the submission cost: untimed.
    let written = run_state::untimed(|| {
        rt.block_on(async {
            let ones = root.read(&cells, ..).await.expect("host read");
            ones.iter().filter(|&&x| x == 1).count()
        })
    });
    if written != tasks * K {
        run_state::order_violated();
    }
    run.check(name, SYSTEM, tasks as u64, run_state::counted())
}

/// The tile size of [`cholesky`] at size `n`: 256 (the classic configuration) for
/// `n >= 1024`, else `n / 4`.
pub fn cholesky_tile(n: usize) -> usize {
    if n >= 1024 { 256 } else { (n / 4).max(1) }
}

/// Tasks of a tiled Cholesky of `n / tile` tiles per side: POTRF, TRSM, SYRK, GEMM.
pub fn cholesky_tasks(n: usize) -> u64 {
    let t = (n / cholesky_tile(n)) as u64;
    t + t * (t - 1) + t * (t - 1) * (t.saturating_sub(2)) / 6
}

/// Floating-point operations of a Cholesky factorization of order `n` (`n^3 / 3`),
/// for GFLOP/s: `cholesky_flops(n) / seconds / 1e9`.
pub fn cholesky_flops(n: usize) -> f64 {
    (n as f64).powi(3) / 3.0
}

/// Tiled Cholesky factorization (lower, right-looking; POTRF/TRSM/SYRK/GEMM per
/// tile, the StarPU/PaRSEC benchmark) of a random SPD matrix of order `n`, with
/// [`cholesky_tile`] tiles stored tile-major (a 4-d tensor `[t, t, b, b]`, so every
/// tile is one contiguous slice). Every dependency is derived from the accesses.
/// Verifies `L (L^T x) = A x` for a random `x` and returns the task count.
///
/// Prints the GFLOP/s to stderr (the report shows time per task only).
pub fn cholesky(rt: &Runtime, n: usize) -> u64 {
    let b = cholesky_tile(n);
    assert!(
        n.is_multiple_of(b),
        "cholesky: n = {n} is not a multiple of the tile {b}"
    );
    let t = n / b;
    let started = Instant::now();
    let (factor, tasks) = rt.block_on(async {
        let root = Scope::new(rt, "cholesky");
        let a = root
            .from_vec("A", [t, t, b, b], spd_tiles(n, b))
            .expect("the matrix fills the tensor");
        let tile = |i: usize, j: usize| Region::tile([i, j, 0, 0], [1, 1, b, b]);
        let mut tasks = 0u64;
        for k in 0..t {
            // One scope per step: at n = 4096 a step has up to 256 tasks.
            let step = root.scope("step").expect("an auto scope");
            let submit = |r: Result<taskweave::Task<()>, taskweave::DataError>| {
                drop(r.expect("submission"));
            };
            submit(
                step.task(a.read_write(tile(k, k)), move |mut akk| {
                    potrf(akk.as_mut_slice().expect("tiles are contiguous"), b);
                })
                .name("potrf")
                .submit()
                .await,
            );
            for i in k + 1..t {
                submit(
                    step.task(
                        (a.read(tile(k, k)), a.read_write(tile(i, k))),
                        move |(l, mut x)| {
                            trsm(
                                l.as_slice().expect("contiguous"),
                                x.as_mut_slice().expect("contiguous"),
                                b,
                            );
                        },
                    )
                    .name("trsm")
                    .submit()
                    .await,
                );
            }
            for i in k + 1..t {
                submit(
                    step.task(
                        (a.read(tile(i, k)), a.read_write(tile(i, i))),
                        move |(x, mut c)| {
                            syrk(
                                x.as_slice().expect("contiguous"),
                                c.as_mut_slice().expect("contiguous"),
                                b,
                            );
                        },
                    )
                    .name("syrk")
                    .submit()
                    .await,
                );
                for j in k + 1..i {
                    submit(
                        step.task(
                            (
                                a.read(tile(i, k)),
                                a.read(tile(j, k)),
                                a.read_write(tile(i, j)),
                            ),
                            move |(x, y, mut c)| {
                                gemm_nt(
                                    x.as_slice().expect("contiguous"),
                                    y.as_slice().expect("contiguous"),
                                    c.as_mut_slice().expect("contiguous"),
                                    b,
                                );
                            },
                        )
                        .name("gemm")
                        .submit()
                        .await,
                    );
                }
            }
            tasks +=
                1 + 2 * (t - k - 1) as u64 + ((t - k - 1) * (t - k).saturating_sub(2) / 2) as u64;
        }
        (root.read(&a, ..).await.expect("host read"), tasks)
    });
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "cholesky n={n} tile={b}: {tasks} tasks, {:.3} s, {:.2} GFLOP/s",
        seconds,
        cholesky_flops(n) / seconds / 1e9
    );
    check_factor(&factor, n, b);
    assert_eq!(tasks, cholesky_tasks(n));
    tasks
}

/// The sequential reference of [`cholesky`]: the same tile kernels in the same
/// order on the calling thread. Verifies the factor like `cholesky` and returns the
/// number of kernel calls; prints its GFLOP/s to stderr.
pub fn cholesky_sequential(n: usize) -> u64 {
    let b = cholesky_tile(n);
    let t = n / b;
    let started = Instant::now();
    let mut a = spd_tiles(n, b);
    let at = |i: usize, j: usize| (i * t + j) * b * b;
    let mut calls = 0u64;
    for k in 0..t {
        potrf(&mut a[at(k, k)..at(k, k) + b * b], b);
        calls += 1;
        for i in k + 1..t {
            let (head, tail) = a.split_at_mut(at(i, k));
            trsm(&head[at(k, k)..at(k, k) + b * b], &mut tail[..b * b], b);
            calls += 1;
        }
        for i in k + 1..t {
            let (head, tail) = a.split_at_mut(at(i, i));
            syrk(&head[at(i, k)..at(i, k) + b * b], &mut tail[..b * b], b);
            calls += 1;
            for j in k + 1..i {
                let (head, tail) = a.split_at_mut(at(i, j));
                gemm_nt(
                    &head[at(i, k)..at(i, k) + b * b],
                    &head[at(j, k)..at(j, k) + b * b],
                    &mut tail[..b * b],
                    b,
                );
                calls += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "cholesky_sequential n={n} tile={b}: {calls} kernel calls, {:.3} s, {:.2} GFLOP/s",
        seconds,
        cholesky_flops(n) / seconds / 1e9
    );
    check_factor(&a, n, b);
    calls
}

/// Element (i, j) of the test matrix: symmetric, off-diagonal entries in
/// [-0.5, 0.5), diagonal `n`, so it is diagonally dominant and hence SPD.
fn spd_entry(n: usize, i: usize, j: usize) -> f64 {
    if i == j {
        return n as f64;
    }
    let (lo, hi) = (i.min(j) as u64, i.max(j) as u64);
    let mut x = lo.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ hi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

/// The test matrix of order `n` in tile-major layout with tiles of `b`.
fn spd_tiles(n: usize, b: usize) -> Vec<f64> {
    let t = n / b;
    let mut tiles = vec![0.0; n * n];
    for (index, x) in tiles.iter_mut().enumerate() {
        let (tile, within) = (index / (b * b), index % (b * b));
        let i = tile / t * b + within / b;
        let j = tile % t * b + within % b;
        *x = spd_entry(n, i, j);
    }
    tiles
}

/// Checks `L (L^T x) = A x` (relative error below 1e-10) for the lower factor held
/// in the tile-major `factor`: O(n^2).
fn check_factor(factor: &[f64], n: usize, b: usize) {
    let t = n / b;
    let l = |i: usize, j: usize| {
        if j > i {
            0.0
        } else {
            factor[((i / b) * t + j / b) * b * b + (i % b) * b + j % b]
        }
    };
    let x: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64 / 7.0).collect();
    let mut lt_x = vec![0.0; n];
    for (i, &xi) in x.iter().enumerate() {
        for (j, sum) in lt_x.iter_mut().enumerate().take(i + 1) {
            *sum += l(i, j) * xi;
        }
    }
    let mut worst: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for i in 0..n {
        let llt_x: f64 = (0..=i).map(|j| l(i, j) * lt_x[j]).sum();
        let a_x: f64 = (0..n).map(|j| spd_entry(n, i, j) * x[j]).sum();
        worst = worst.max((llt_x - a_x).abs());
        scale = scale.max(a_x.abs());
    }
    assert!(
        worst <= 1e-10 * scale,
        "cholesky: |L L^T x - A x| = {worst:e} (|A x| = {scale:e})"
    );
}

/// `x . y` with eight independent partial sums (so the compiler vectorizes it).
#[inline]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0f64; 8];
    let (xs, ys) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (a, b) in xs.zip(ys) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in xr.iter().zip(yr) {
        sum += a * b;
    }
    sum
}

/// In-place lower Cholesky of the `b` x `b` tile `a` (the upper part is left as is).
fn potrf(a: &mut [f64], b: usize) {
    for j in 0..b {
        let row_j = j * b;
        let d = a[row_j + j] - dot(&a[row_j..row_j + j], &a[row_j..row_j + j]);
        assert!(d > 0.0, "cholesky: the matrix is not positive definite");
        let d = d.sqrt();
        a[row_j + j] = d;
        for i in j + 1..b {
            let row_i = i * b;
            let s = dot(&a[row_i..row_i + j], &a[row_j..row_j + j]);
            a[row_i + j] = (a[row_i + j] - s) / d;
        }
    }
}

/// `x := x L^-T` for the lower tile `l` (a TRSM, right side, lower, transposed).
fn trsm(l: &[f64], x: &mut [f64], b: usize) {
    for row in x.chunks_exact_mut(b) {
        for j in 0..b {
            let s = dot(&row[..j], &l[j * b..j * b + j]);
            row[j] = (row[j] - s) / l[j * b + j];
        }
    }
}

/// `c := c - x x^T`, lower part (a SYRK).
fn syrk(x: &[f64], c: &mut [f64], b: usize) {
    for i in 0..b {
        let xi = &x[i * b..(i + 1) * b];
        for j in 0..=i {
            c[i * b + j] -= dot(xi, &x[j * b..(j + 1) * b]);
        }
    }
}

/// `c := c - x y^T` (a GEMM with the second operand transposed).
fn gemm_nt(x: &[f64], y: &[f64], c: &mut [f64], b: usize) {
    for (i, c_row) in c.chunks_exact_mut(b).enumerate() {
        let xi = &x[i * b..(i + 1) * b];
        for (j, cij) in c_row.iter_mut().enumerate() {
            *cij -= dot(xi, &y[j * b..(j + 1) * b]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_workloads_verify_at_small_sizes() {
        let rt = Runtime::builder().workers(2).build();
        assert_eq!(linear_chain_data(&rt, 10_000), 10_000);
        assert_eq!(wavefront_data(&rt, 64), 64 * 64);
        for f in [submit_cost_0, submit_cost_1, submit_cost_5, submit_cost_16] {
            assert_eq!(f(&rt, 5_000), 5_000);
        }
        assert_eq!(cholesky(&rt, 256), cholesky_tasks(256));
        assert_eq!(cholesky_sequential(256), cholesky_tasks(256));
    }
}
