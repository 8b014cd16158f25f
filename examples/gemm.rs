//! Tiled matrix multiply `C = A B`, written only with declared accesses: the task
//! for `(i, j, k)` reads tiles `A[i][k]` and `B[k][j]` and read-writes `C[i][j]`, so
//! the `k` updates of one `C` tile form a chain and different `C` tiles run in
//! parallel; taskweave derives all of it. The tile kernel is nalgebra's GEMM (on
//! copies of the tiles).
//!
//! ```text
//! cargo run --release --example gemm -- [N] [TILE]
//! ```
//!
//! Multiplies random `N` x `N` matrices (default 1024) in tiles of `TILE` (default
//! 128), checks the product against nalgebra's and prints sizes, tasks, time and
//! GFLOP/s of both.

use std::time::Instant;

use nalgebra::DMatrix;
use taskweave::{Region, Runtime, Scope, View, ViewMut};

fn main() {
    let mut sizes = std::env::args().skip(1).map(|a| {
        a.parse::<usize>()
            .expect("N and TILE are positive integers")
    });
    let n = sizes.next().unwrap_or(1024);
    let b = sizes.next().unwrap_or(128);
    assert!(
        n > 0 && b > 0 && n % b == 0,
        "N = {n} must be a multiple of TILE = {b}"
    );
    let t = n / b;

    let a = random(n, 1);
    let bm = random(n, 2);
    let rt = Runtime::new();
    println!(
        "gemm: n = {n}, tile = {b} ({t} x {t} tiles), {} workers",
        rt.workers()
    );

    let started = Instant::now();
    let (c, tasks) = rt.block_on(async {
        let root = Scope::new(&rt, "gemm");
        let row_major = |m: &DMatrix<f64>| m.transpose().as_slice().to_vec();
        let ta = root
            .from_vec("A", [n, n], row_major(&a))
            .expect("n * n elements");
        let tb = root
            .from_vec("B", [n, n], row_major(&bm))
            .expect("n * n elements");
        let tc = root.zeros::<f64>("C", [n, n]);
        let tile = |i: usize, j: usize| Region::tile([i * b, j * b], [b, b]);
        let mut tasks = 0;
        for k in 0..t {
            // One scope per k: t * t tasks.
            let step = root.scope(format!("k={k}")).expect("auto scope");
            for i in 0..t {
                for j in 0..t {
                    let accesses = (
                        ta.read(tile(i, k)),
                        tb.read(tile(k, j)),
                        tc.read_write(tile(i, j)),
                    );
                    let task = step.task(accesses, |(x, y, mut c)| gemm(&x, &y, &mut c));
                    drop(task.name("gemm").await.expect("submit"));
                    tasks += 1;
                }
            }
        }
        (root.read(&tc, ..).await.expect("host read"), tasks)
    });
    let seconds = started.elapsed().as_secs_f64();
    let flops = 2.0 * (n as f64).powi(3);
    println!(
        "taskweave: {tasks} tasks in {:.3} s, {:.2} GFLOP/s",
        seconds,
        flops / seconds / 1e9
    );

    let started = Instant::now();
    let reference = &a * &bm;
    let reference_seconds = started.elapsed().as_secs_f64();
    println!(
        "nalgebra:  {:.3} s, {:.2} GFLOP/s (sequential reference, matrixmultiply)",
        reference_seconds,
        flops / reference_seconds / 1e9
    );
    let c = DMatrix::from_row_slice(n, n, &c);
    let error = (&c - &reference).abs().max() / reference.abs().max();
    println!("max |C - C_nalgebra| / max |C_nalgebra| = {error:.2e}");
    assert!(error < 1e-12, "the product is wrong");
}

fn random(n: usize, seed: u64) -> DMatrix<f64> {
    let mut state = seed;
    DMatrix::from_fn(n, n, |_, _| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    })
}

/// A tile as an nalgebra matrix (a copy; O(b^2) next to the kernel's O(b^3)).
fn load(tile: &View<'_, f64>) -> DMatrix<f64> {
    DMatrix::from_row_slice(tile.row_count(), tile.row_len(), &tile.to_vec())
}

/// `c := c + x y`, with nalgebra's GEMM on copies of the tiles.
fn gemm(x: &View<'_, f64>, y: &View<'_, f64>, c: &mut ViewMut<'_, f64>) {
    let mut m = load(&c.as_view());
    m.gemm(1.0, &load(x), &load(y), 1.0);
    for (i, row) in c.rows_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = m[(i, j)];
        }
    }
}
