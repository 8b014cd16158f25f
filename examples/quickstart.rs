//! Quickstart: a small named dataflow graph on taskweave.
//!
//! `load` produces a vector of samples; four `transform-*` tasks each work on one
//! quarter of it in parallel (they depend on `load` through its shared output);
//! `combine` receives the four partial results as typed inputs and adds them up. The
//! program prints which task ran on which worker thread, then the result.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::sync::{Arc, Mutex};
use std::thread;

use taskweave::Runtime;

/// One line of the "what ran where" report.
#[derive(Debug)]
struct Ran {
    task: String,
    thread: String,
    detail: String,
}

/// Where the calling body runs: the worker thread's name, or its id if it has none.
fn current_thread() -> String {
    let current = thread::current();
    match current.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", current.id()),
    }
}

fn main() {
    const SAMPLES: u64 = 1_000_000;
    const PARTS: usize = 4;

    let rt = Runtime::builder().workers(4).build();
    let log: Arc<Mutex<Vec<Ran>>> = Arc::default();
    let record = {
        let log = log.clone();
        move |task: &str, detail: String| {
            log.lock().unwrap().push(Ran {
                task: task.to_owned(),
                thread: current_thread(),
                detail,
            });
        }
    };

    let total = rt.block_on(async {
        // load: the source of the graph.
        let load = {
            let record = record.clone();
            rt.task(move || {
                let samples: Vec<u64> = (1..=SAMPLES).collect();
                record("load", format!("{} samples", samples.len()));
                Arc::new(samples)
            })
            .name("load")
            .await
            .shared()
        };

        // Four transforms, each on its own quarter, all waiting for `load`.
        let mut transforms = Vec::new();
        for part in 0..PARTS {
            let record = record.clone();
            let name = format!("transform-{part}");
            let task_name = name.clone();
            let transform = rt
                .dataflow(load.clone(), move |samples: Arc<Vec<u64>>| {
                    let chunk = samples.len().div_ceil(PARTS);
                    let quarter = samples.chunks(chunk).nth(part).unwrap_or(&[]);
                    let sum_of_squares: u64 = quarter.iter().map(|x| x * x % 1_000_003).sum();
                    record(
                        &task_name,
                        format!("{} samples -> {sum_of_squares}", quarter.len()),
                    );
                    sum_of_squares
                })
                .name(name)
                .await;
            transforms.push(transform);
        }

        // combine: its inputs are the four typed outputs, in order.
        let combine = {
            let record = record.clone();
            rt.dataflow(transforms, move |partials: Vec<u64>| {
                let total: u64 = partials.iter().sum();
                record("combine", format!("{partials:?} -> {total}"));
                total
            })
            .name("combine")
            .await
        };
        combine.await
    });

    rt.shutdown_blocking();
    println!("taskweave quickstart: {} workers", rt.workers());
    for ran in log.lock().unwrap().iter() {
        println!("  {:<12} on {:<20} {}", ran.task, ran.thread, ran.detail);
    }
    match total {
        Ok(total) => println!("result: {total}"),
        Err(err) => {
            eprintln!("the graph failed: {err}");
            std::process::exit(1);
        }
    }
}
