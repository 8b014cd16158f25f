//! A decode step of paged attention (the shape of PTO2's paged-attention example) on
//! the simulated device.
//!
//! The host first reads each sequence's context length — computed by a task, read
//! back with host access — to decide how many KV blocks each sequence needs. Then,
//! per sequence: DMA transfers prefetch its KV pages into device memory (deferred
//! completions), one SPMD kernel launch with `block_num` = the sequence's block count
//! computes per-block partial attention on the device's cube cores, and a CPU task
//! reduces the partials (log-sum-exp merge). The result is checked against a plain
//! sequential computation.
//!
//! ```text
//! cargo run --release --example paged_attention -- [--sequences N] [--max-context T]
//! cargo run --release --features trace --example paged_attention -- --trace pa.json
//! ```
//!
//! With `--trace FILE` (feature `trace`) the run is recorded — workers' polls, the
//! dependencies, each kernel block on its device core's lane — and written to FILE
//! as Chrome trace JSON (open it in <https://ui.perfetto.dev>, or plot it with
//! `cargo run --release --example trace_plot -- FILE out.svg`).

use std::sync::Arc;
use std::time::Instant;

use taskweave::Runtime;
use taskweave::device::{CoreKind, Device, DeviceBuffer};

const HEAD_DIM: usize = 64;
const BLOCK_TOKENS: usize = 16;

/// Deterministic pseudo-random numbers in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The KV cache in host memory: pages of `BLOCK_TOKENS` keys and values.
struct KvCache {
    keys: Vec<Arc<[f32]>>,
    values: Vec<Arc<[f32]>>,
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// The value after `name`, if given.
fn string_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    Some(
        args.get(i + 1)
            .unwrap_or_else(|| panic!("{name} takes a value"))
            .clone(),
    )
}

/// `--trace FILE`: record the run and write it as Chrome trace JSON.
#[cfg(feature = "trace")]
mod trace_file {
    use taskweave::Runtime;

    pub fn start(rt: &Runtime, path: Option<&str>) {
        if path.is_some() {
            rt.start_trace();
        }
    }

    pub fn finish(rt: &Runtime, path: Option<&str>) {
        let Some(path) = path else { return };
        let trace = rt.stop_trace();
        std::fs::write(path, trace.to_chrome_json())
            .unwrap_or_else(|e| panic!("cannot write the trace to {path}: {e}"));
        println!(
            "trace: {} tasks, {} polls, {} device block spans written to {path} \
             (open it in https://ui.perfetto.dev)",
            trace.tasks().len(),
            trace.polls().len(),
            trace.lanes().len()
        );
    }
}

/// Without the `trace` feature, `--trace` is refused.
#[cfg(not(feature = "trace"))]
mod trace_file {
    use taskweave::Runtime;

    pub fn start(_rt: &Runtime, path: Option<&str>) {
        if path.is_some() {
            eprintln!(
                "--trace needs the trace feature: \
                 cargo run --release --features trace --example paged_attention -- --trace FILE"
            );
            std::process::exit(2);
        }
    }

    pub fn finish(_rt: &Runtime, _path: Option<&str>) {}
}

fn main() {
    let sequences = arg("--sequences", 32);
    let max_context = arg("--max-context", 1024);
    let trace_path = string_arg("--trace");
    let rt = Runtime::builder().build();
    let device = Device::builder().cube_cores(2).vector_cores(2).build(&rt);

    // Inputs: one query per sequence, a block table per sequence, the paged KV cache.
    let mut rng = Rng(42);
    let pages_per_seq = max_context.div_ceil(BLOCK_TOKENS);
    let total_pages = sequences * pages_per_seq;
    let cache = Arc::new(KvCache {
        keys: (0..total_pages)
            .map(|_| (0..BLOCK_TOKENS * HEAD_DIM).map(|_| rng.unit()).collect())
            .collect(),
        values: (0..total_pages)
            .map(|_| (0..BLOCK_TOKENS * HEAD_DIM).map(|_| rng.unit()).collect())
            .collect(),
    });
    let queries: Arc<Vec<Vec<f32>>> = Arc::new(
        (0..sequences)
            .map(|_| (0..HEAD_DIM).map(|_| rng.unit()).collect())
            .collect(),
    );
    // Pages are shuffled: sequence s's j-th block lives in page block_table[s][j].
    let mut pages: Vec<usize> = (0..total_pages).collect();
    for i in (1..pages.len()).rev() {
        pages.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let block_table: Arc<Vec<Vec<usize>>> =
        Arc::new(pages.chunks(pages_per_seq).map(<[usize]>::to_vec).collect());
    let seed = rng.next();

    trace_file::start(&rt, trace_path.as_deref());
    let started = Instant::now();
    let (outputs, tasks) = rt.block_on(async {
        // The context lengths come out of a task (as from a scheduler step); the host
        // reads them to shape the rest of the graph.
        let lengths = rt
            .task(move || {
                let mut rng = Rng(seed);
                (0..sequences)
                    .map(|_| 1 + (rng.next() as usize % max_context))
                    .collect::<Vec<usize>>()
            })
            .name("context-lengths")
            .await;
        let lengths = lengths.await.expect("context lengths");
        let mut tasks = 1;

        let mut reductions = Vec::new();
        for (s, &length) in lengths.iter().enumerate() {
            let blocks = length.div_ceil(BLOCK_TOKENS);
            let k_dev = DeviceBuffer::zeros(blocks * BLOCK_TOKENS * HEAD_DIM);
            let v_dev = DeviceBuffer::zeros(blocks * BLOCK_TOKENS * HEAD_DIM);
            // Prefetch the sequence's pages into device memory.
            let mut copies = Vec::new();
            for (b, &page) in block_table[s][..blocks].iter().enumerate() {
                let offset = b * BLOCK_TOKENS * HEAD_DIM;
                let k = device
                    .dma_task(
                        format!("dma K s{s} b{b}"),
                        cache.keys[page].clone(),
                        &k_dev,
                        offset,
                    )
                    .await;
                let v = device
                    .dma_task(
                        format!("dma V s{s} b{b}"),
                        cache.values[page].clone(),
                        &v_dev,
                        offset,
                    )
                    .await;
                copies.push(k.id());
                copies.push(v.id());
                tasks += 2;
            }
            // One launch per sequence, one block per KV page: partial attention.
            let partials = DeviceBuffer::zeros(blocks * (HEAD_DIM + 2));
            let (query, out) = (queries[s].clone(), partials.clone());
            let kernel = device
                .launch(
                    format!("paged_attention s{s}"),
                    CoreKind::Cube,
                    blocks,
                    move |block| {
                        let b = block.index();
                        let valid = (length - b * BLOCK_TOKENS).min(BLOCK_TOKENS);
                        let scale = 1.0 / (HEAD_DIM as f32).sqrt();
                        let base = b * BLOCK_TOKENS * HEAD_DIM;
                        let scores: Vec<f32> = (0..valid)
                            .map(|t| {
                                (0..HEAD_DIM)
                                    .map(|d| query[d] * k_dev.get(base + t * HEAD_DIM + d))
                                    .sum::<f32>()
                                    * scale
                            })
                            .collect();
                        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let slot = b * (HEAD_DIM + 2);
                        let mut sum = 0.0;
                        let mut acc = [0f32; HEAD_DIM];
                        for (t, score) in scores.iter().enumerate() {
                            let w = (score - max).exp();
                            sum += w;
                            for (d, a) in acc.iter_mut().enumerate() {
                                *a += w * v_dev.get(base + t * HEAD_DIM + d);
                            }
                        }
                        out.set(slot, max);
                        out.set(slot + 1, sum);
                        out.write_slice(slot + 2, &acc);
                    },
                )
                .after(copies)
                .await;
            // Merge the partials on the CPU.
            let reduce = rt
                .task(move || {
                    let p = partials.to_vec();
                    let global_max = (0..blocks)
                        .map(|b| p[b * (HEAD_DIM + 2)])
                        .fold(f32::NEG_INFINITY, f32::max);
                    let mut total = 0.0;
                    let mut acc = vec![0f32; HEAD_DIM];
                    for b in 0..blocks {
                        let slot = b * (HEAD_DIM + 2);
                        let w = (p[slot] - global_max).exp();
                        total += p[slot + 1] * w;
                        for (d, a) in acc.iter_mut().enumerate() {
                            *a += p[slot + 2 + d] * w;
                        }
                    }
                    acc.iter().map(|a| a / total).collect::<Vec<f32>>()
                })
                .after([kernel.id()])
                .name(format!("reduce s{s}"))
                .await;
            tasks += 2;
            reductions.push(reduce);
        }
        let outputs = taskweave::when_all(reductions)
            .await
            .expect("paged attention");
        (outputs, (tasks, lengths))
    });
    let elapsed = started.elapsed();
    trace_file::finish(&rt, trace_path.as_deref());
    let (tasks, lengths) = tasks;

    // The straightforward sequential computation.
    let mut worst = 0f32;
    for (s, output) in outputs.iter().enumerate() {
        let length = lengths[s];
        let scale = 1.0 / (HEAD_DIM as f32).sqrt();
        let key = |t: usize| {
            &cache.keys[block_table[s][t / BLOCK_TOKENS]][(t % BLOCK_TOKENS) * HEAD_DIM..]
                [..HEAD_DIM]
        };
        let value = |t: usize| {
            &cache.values[block_table[s][t / BLOCK_TOKENS]][(t % BLOCK_TOKENS) * HEAD_DIM..]
                [..HEAD_DIM]
        };
        let scores: Vec<f32> = (0..length)
            .map(|t| {
                key(t)
                    .iter()
                    .zip(&queries[s])
                    .map(|(k, q)| k * q)
                    .sum::<f32>()
                    * scale
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f32> = scores.iter().map(|x| (x - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        for (d, actual) in output.iter().enumerate() {
            let expected: f32 = (0..length).map(|t| weights[t] * value(t)[d]).sum::<f32>() / total;
            worst = worst.max((expected - actual).abs());
        }
    }
    let tokens: usize = lengths.iter().sum();
    println!(
        "paged attention decode: {sequences} sequences, {tokens} context tokens, {tasks} tasks, {:.2} ms ({:.1} Mtoken/s), max |error| {worst:.2e}",
        elapsed.as_secs_f64() * 1e3,
        tokens as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert!(
        worst < 1e-4,
        "paged attention differs from the sequential computation by {worst}"
    );
    println!("{}", rt.stats());
}
