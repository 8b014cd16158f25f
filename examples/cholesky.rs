//! Tiled Cholesky factorization (the StarPU/PaRSEC benchmark), written only with
//! declared accesses: every dependency between the POTRF, TRSM, SYRK and GEMM tasks
//! is derived by taskweave from the tiles each task reads and writes. The tile
//! kernels are nalgebra's (on copies of the tiles); taskweave orders and runs them.
//!
//! ```text
//! cargo run --release --example cholesky -- [N] [TILE] [--dot FILE]
//! ```
//!
//! Factors a random symmetric positive definite matrix of order `N` (default 1024)
//! in tiles of `TILE` (default 128), checks the factor against nalgebra's and prints
//! the sizes, the task count, the time and GFLOP/s of both, and the residual
//! `|A - L L^T| / |A|`. `--dot FILE` writes the task graph as Graphviz DOT.

use std::time::Instant;

use nalgebra::DMatrix;
use taskweave::{Region, Runtime, Scope, View, ViewMut};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut sizes = Vec::new();
    let mut dot = None;
    while let Some(arg) = args.next() {
        if arg == "--dot" {
            dot = Some(args.next().expect("--dot needs a file name"));
        } else {
            sizes.push(
                arg.parse::<usize>()
                    .expect("N and TILE are positive integers"),
            );
        }
    }
    let n = sizes.first().copied().unwrap_or(1024);
    let b = sizes.get(1).copied().unwrap_or(128);
    assert!(
        n > 0 && b > 0 && n % b == 0,
        "N = {n} must be a multiple of TILE = {b}"
    );
    let t = n / b;

    let a = random_spd(n, 2024);
    let rt = Runtime::new();
    println!(
        "cholesky: n = {n}, tile = {b} ({t} x {t} tiles), {} workers",
        rt.workers()
    );

    let started = Instant::now();
    let (factor, tasks, graph) = rt.block_on(async {
        let root = Scope::new(&rt, "cholesky");
        if dot.is_some() {
            root.record_graph();
        }
        let m = root
            .from_vec("A", [n, n], a.transpose().as_slice().to_vec()) // row-major
            .expect("n * n elements");
        let tile = |i: usize, j: usize| Region::tile([i * b, j * b], [b, b]);
        let mut tasks = 0;
        for k in 0..t {
            // One scope per step: it holds its tasks' slots until the next step.
            let step = root
                .scope(format!("k={k}"))
                .expect("auto scope in auto scope");
            let potrf = step.task(m.read_write(tile(k, k)), move |mut akk| potrf(&mut akk));
            drop(potrf.name("potrf").await.expect("submit"));
            tasks += 1;
            for i in k + 1..t {
                let trsm = step.task(
                    (m.read(tile(k, k)), m.read_write(tile(i, k))),
                    |(l, mut x)| trsm(&l, &mut x),
                );
                drop(trsm.name("trsm").await.expect("submit"));
                tasks += 1;
            }
            for i in k + 1..t {
                let syrk = step.task(
                    (m.read(tile(i, k)), m.read_write(tile(i, i))),
                    |(x, mut c)| syrk(&x, &mut c),
                );
                drop(syrk.name("syrk").await.expect("submit"));
                tasks += 1;
                for j in k + 1..i {
                    let accesses = (
                        m.read(tile(i, k)),
                        m.read(tile(j, k)),
                        m.read_write(tile(i, j)),
                    );
                    let gemm = step.task(accesses, |(x, y, mut c)| gemm_nt(&x, &y, &mut c));
                    drop(gemm.name("gemm").await.expect("submit"));
                    tasks += 1;
                }
            }
        }
        // The host read waits for every task that writes A.
        let factor = root.read(&m, ..).await.expect("host read");
        (factor, tasks, root.graph())
    });
    let seconds = started.elapsed().as_secs_f64();
    let flops = (n as f64).powi(3) / 3.0;
    println!(
        "taskweave: {tasks} tasks in {:.3} s, {:.2} GFLOP/s",
        seconds,
        flops / seconds / 1e9
    );

    let started = Instant::now();
    let reference = a.clone().cholesky().expect("the matrix is SPD");
    let reference_seconds = started.elapsed().as_secs_f64();
    println!(
        "nalgebra:  {:.3} s, {:.2} GFLOP/s (sequential reference)",
        reference_seconds,
        flops / reference_seconds / 1e9
    );

    // The lower triangle of the result is L (the upper one still holds A).
    let l = DMatrix::from_fn(n, n, |i, j| if j <= i { factor[i * n + j] } else { 0.0 });
    let difference = (&l - reference.l()).abs().max();
    let residual = (&a - &l * l.transpose()).norm() / a.norm();
    println!(
        "max |L - L_nalgebra| = {difference:.2e}, residual |A - L L^T| / |A| = {residual:.2e}"
    );
    assert!(
        difference < 1e-8 && residual < 1e-12,
        "the factorization is wrong"
    );

    if let Some(path) = dot {
        std::fs::write(&path, graph.to_dot()).expect("cannot write the DOT file");
        println!(
            "wrote the task graph ({} edges) to {path}",
            graph.edges.len()
        );
    }
}

/// A random symmetric matrix with a dominant diagonal, hence positive definite.
fn random_spd(n: usize, seed: u64) -> DMatrix<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut a = DMatrix::from_fn(n, n, |_, _| next());
    a = (&a + a.transpose()) * 0.5;
    for i in 0..n {
        a[(i, i)] += n as f64;
    }
    a
}

/// A tile as an nalgebra matrix (a copy; O(b^2) next to the kernels' O(b^3)).
fn load(tile: &View<'_, f64>) -> DMatrix<f64> {
    DMatrix::from_row_slice(tile.row_count(), tile.row_len(), &tile.to_vec())
}

/// Writes `m` into the tile.
fn store(m: &DMatrix<f64>, tile: &mut ViewMut<'_, f64>) {
    for (i, row) in tile.rows_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = m[(i, j)];
        }
    }
}

/// In-place lower Cholesky factor of the diagonal tile (POTRF).
fn potrf(a: &mut ViewMut<'_, f64>) {
    let factor = load(&a.as_view())
        .cholesky()
        .expect("a diagonal tile is SPD");
    store(&factor.l(), a);
}

/// `x := x L^-T` (TRSM: right side, lower, transposed), as `x^T := L^-1 x^T`.
fn trsm(l: &View<'_, f64>, x: &mut ViewMut<'_, f64>) {
    let mut xt = load(&x.as_view()).transpose();
    assert!(
        load(l).solve_lower_triangular_mut(&mut xt),
        "a singular diagonal tile"
    );
    store(&xt.transpose(), x);
}

/// `c := c - x x^T` (SYRK, computed on the whole tile).
fn syrk(x: &View<'_, f64>, c: &mut ViewMut<'_, f64>) {
    let x = load(x);
    let mut m = load(&c.as_view());
    m.gemm(-1.0, &x, &x.transpose(), 1.0);
    store(&m, c);
}

/// `c := c - x y^T` (GEMM).
fn gemm_nt(x: &View<'_, f64>, y: &View<'_, f64>, c: &mut ViewMut<'_, f64>) {
    let mut m = load(&c.as_view());
    m.gemm(-1.0, &load(x), &load(y).transpose(), 1.0);
    store(&m, c);
}
