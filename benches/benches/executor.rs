//! Criterion benches of every workload at a small size (about 2^14 tasks), with
//! taskweave and its peers side by side in one group per workload.
//!
//! `cargo bench -p taskweave-benches`; the `report` binary runs the full sizes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use taskweave_benches::run_state;
use taskweave_benches::workload::{self, System, SystemRuntime, WORKLOADS};

fn executor(c: &mut Criterion) {
    let threads = workload::default_threads();
    let runtimes: Vec<SystemRuntime> = System::ALL
        .into_iter()
        .map(|system| SystemRuntime::start(system, threads))
        .collect();
    for workload in WORKLOADS {
        let size = workload.bench_size;
        (workload.prepare)(size);
        let mut group = c.benchmark_group(workload.name);
        group.throughput(Throughput::Elements((workload.tasks)(size)));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for runtime in runtimes.iter().filter(|rt| workload.runs_on(rt.system())) {
            group.bench_function(runtime.system().name(), |b| {
                // Less the workload's untimed phases (`run_state::untimed`).
                b.iter_custom(|iterations| {
                    let mut measured = Duration::ZERO;
                    for _ in 0..iterations {
                        run_state::take_untimed();
                        let started = Instant::now();
                        black_box(runtime.run(workload, size));
                        measured += started.elapsed().saturating_sub(run_state::take_untimed());
                    }
                    measured
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, executor);
criterion_main!(benches);
