//! A three-stage, double-buffered pipeline on three streams, ordered by events.
//!
//! `load` fills a buffer with a batch of samples, `transform` squares them in place
//! (mod a prime), `reduce` adds them to a running total. Each stage has its own
//! stream, so batch `i + 1` loads while batch `i` transforms and batch `i - 1`
//! reduces. Two buffers take turns; events say when a buffer may move on:
//!
//! ```text
//! load      ─ L0 ─ L1 ──────── L2 ─────── L3 ...   (L2 waits for `freed[0]`: R0 is done with buffer 0)
//!              ╲loaded  ╲
//! transform     ─ T0 ─── T1 ─── T2 ...
//!                   ╲transformed
//! reduce             ─ R0 ─── R1 ─── R2 ...        (records `freed[slot]`)
//! ```
//!
//! Every task takes its buffer with `try_lock`: if the events did not order the
//! stages, two tasks would hold one buffer at once and the program would stop with
//! an error. At the end the total is checked against a sequential computation, and
//! the throughput is printed.
//!
//! ```text
//! cargo run --release --example streams_pipeline [BATCHES]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use taskweave::Runtime;
use taskweave::streams::{Event, Streams};

/// Samples per batch.
const BATCH: usize = 16_384;
/// The transform works modulo this prime.
const PRIME: u64 = 1_000_003;

/// Sample `j` of batch `i`.
fn sample(i: usize, j: usize) -> u64 {
    let x = (i * BATCH + j) as u64;
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
}

fn transform(x: u64) -> u64 {
    (x * x) % PRIME
}

/// The buffer of `slot`, taken exclusively; the events guarantee nobody else holds it.
fn take<'a>(
    buffers: &'a [Mutex<Vec<u64>>; 2],
    slot: usize,
    stage: &str,
    batch: usize,
) -> std::sync::MutexGuard<'a, Vec<u64>> {
    buffers[slot].try_lock().unwrap_or_else(|_| {
        panic!("{stage} of batch {batch}: buffer {slot} is in use (the stages raced)")
    })
}

fn main() {
    let batches: usize = std::env::args()
        .nth(1)
        .map_or(512, |arg| arg.parse().expect("BATCHES must be a number"));
    let rt = Runtime::new();
    let streams = Streams::new(&rt);
    let (load, transform_stream, reduce) = (
        streams.create_stream("load"),
        streams.create_stream("transform"),
        streams.create_stream("reduce"),
    );
    let buffers: Arc<[Mutex<Vec<u64>>; 2]> =
        Arc::new([Mutex::new(vec![0; BATCH]), Mutex::new(vec![0; BATCH])]);
    // One event per buffer and hand-over; recording again moves an event to the
    // newer batch, and a wait keeps the batch it saw.
    let loaded = [Event::new(), Event::new()];
    let transformed = [Event::new(), Event::new()];
    let freed = [Event::new(), Event::new()];
    let total = Arc::new(AtomicU64::new(0));

    let started = Instant::now();
    rt.block_on(async {
        for batch in 0..batches {
            let slot = batch % 2;

            // Load may refill the buffer once reduce is done with it (a no-op for
            // the first two batches: `freed` was never recorded).
            load.wait_event(&freed[slot]);
            let b = buffers.clone();
            drop(
                load.task(move || {
                    let mut buffer = take(&b, slot, "load", batch);
                    for (j, x) in buffer.iter_mut().enumerate() {
                        *x = sample(batch, j);
                    }
                })
                .name("load")
                .await,
            );
            loaded[slot].record(&load);

            transform_stream.wait_event(&loaded[slot]);
            let b = buffers.clone();
            drop(
                transform_stream
                    .task(move || {
                        let mut buffer = take(&b, slot, "transform", batch);
                        for x in buffer.iter_mut() {
                            *x = transform(*x);
                        }
                    })
                    .name("transform")
                    .await,
            );
            transformed[slot].record(&transform_stream);

            reduce.wait_event(&transformed[slot]);
            let (b, t) = (buffers.clone(), total.clone());
            drop(
                reduce
                    .task(move || {
                        let buffer = take(&b, slot, "reduce", batch);
                        // Only the reduce stream touches the total, one batch at a time.
                        let sum: u64 = buffer.iter().sum();
                        t.store(t.load(Ordering::Relaxed) + sum, Ordering::Relaxed);
                    })
                    .name("reduce")
                    .await,
            );
            freed[slot].record(&reduce);
        }
        // Waits for every stream (and every other task of the runtime).
        if let Err(error) = streams.synchronize().await {
            panic!("the pipeline failed: {error}");
        }
    });
    let elapsed = started.elapsed();

    let expected: u64 = (0..batches)
        .flat_map(|i| (0..BATCH).map(move |j| transform(sample(i, j))))
        .sum();
    let got = total.load(Ordering::Relaxed);
    assert_eq!(got, expected, "the pipeline computed a wrong total");

    let samples = (batches * BATCH) as f64;
    let secs = elapsed.as_secs_f64();
    println!(
        "streams_pipeline: {batches} batches x {BATCH} samples through load -> transform -> reduce \
         on {} workers",
        rt.workers()
    );
    println!("  total {got} (checked against a sequential computation)");
    println!(
        "  {:.1} ms: {:.1} M samples/s, {:.0} batches/s, {:.0} launches/s",
        secs * 1e3,
        samples / secs / 1e6,
        batches as f64 / secs,
        (3 * batches) as f64 / secs
    );
}
