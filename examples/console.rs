//! Something for tokio-console to watch: waves of named taskweave tasks — CPU work,
//! bodies that sleep on tokio timers, deferred completions finished by tokio tasks,
//! blocking work on tokio's blocking pool — plus one long-lived heartbeat task, until
//! Ctrl-C or `--seconds N` (default 60).
//!
//! ```text
//! cargo run --release --features console --example console -- [--seconds N]
//! tokio-console            # in another terminal (cargo install --locked tokio-console)
//! ```
//!
//! Each taskweave task shows up in tokio-console as a task with its name, id, polls,
//! busy and idle time and wakers; its location is where it was submitted (this file).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use taskweave::{Runtime, Task, defer};

/// A new wave starts this often.
const WAVE_EVERY: Duration = Duration::from_millis(150);
/// Waves whose results have not been collected yet, at most.
const WAVES_IN_FLIGHT: usize = 3;
/// Timer-bound tasks per wave.
const FETCHES: u64 = 4;

fn seconds_arg() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--seconds") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("--seconds takes a whole number of seconds");
                std::process::exit(2)
            }),
        None => 60,
    }
}

/// A small deterministic generator for varied sleeps.
fn jitter(wave: u64, i: u64, range_ms: u64) -> Duration {
    let mut z = (wave << 8 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^= z >> 31;
    Duration::from_millis(z % range_ms)
}

/// Submits one wave and returns the handle of its final reduction.
async fn submit_wave(rt: &Runtime, wave: u64) -> Task<u64> {
    // CPU: a shared input for the crunchers.
    let load = rt
        .task(move || Arc::new((0..20_000u64).map(|x| x ^ wave).collect::<Vec<u64>>()))
        .name(format!("wave {wave}: load"))
        .await
        .shared();
    let mut crunches = Vec::new();
    let mut transfers = Vec::new();
    for i in 0..FETCHES {
        // Idle time: the body waits on a tokio timer (the runtime has a tokio handle).
        let fetch = rt
            .task_async(async move {
                tokio::time::sleep(Duration::from_millis(20) + jitter(wave, i, 180)).await;
                i + 1
            })
            .name(format!("wave {wave}: fetch {i}"))
            .await;
        // Busy time: a dataflow task on the load and the fetch.
        let crunch = rt
            .dataflow(
                (load.clone(), fetch),
                |(data, rounds): (Arc<Vec<u64>>, u64)| {
                    let mut acc = 0u64;
                    for round in 0..rounds * 20 {
                        acc = data.iter().fold(acc, |a, x| {
                            a.wrapping_mul(31).wrapping_add(x.rotate_left(round as u32))
                        });
                    }
                    acc % 1000
                },
            )
            .name(format!("wave {wave}: crunch {i}"))
            .await;
        crunches.push(crunch);
        // A deferred completion: the body returns at once, a tokio task completes the
        // token later (as a DMA engine or an I/O callback would).
        let transfer = rt
            .task(move || {
                let token = defer(format!("wave {wave}: transfer {i}"));
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10) + jitter(wave, i + 7, 60)).await;
                    token.complete();
                });
            })
            .name(format!("wave {wave}: transfer {i}"))
            .await;
        transfers.push(transfer);
    }
    // Many polls and wakes: a body that sleeps in small steps.
    let ticker = rt
        .task_async(async move {
            let ticks = 8;
            for _ in 0..ticks {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ticks
        })
        .name(format!("wave {wave}: ticker"))
        .await;
    // Blocking work stays off the workers: it runs on tokio's blocking pool.
    let blocking = rt
        .task_blocking(move || {
            std::thread::sleep(Duration::from_millis(15));
            wave
        })
        .name(format!("wave {wave}: blocking read"))
        .await;
    rt.dataflow(
        (crunches, ticker, blocking, transfers),
        |(crunches, ticks, _wave, _transfers): (Vec<u64>, u64, u64, Vec<()>)| {
            crunches.iter().sum::<u64>() + ticks
        },
    )
    .name(format!("wave {wave}: reduce"))
    .await
}

fn main() {
    let seconds = seconds_arg();
    // Publishes the spans taskweave's `console` feature emits, on 127.0.0.1:6669.
    if std::panic::catch_unwind(console_subscriber::init).is_err() {
        eprintln!(
            "console-subscriber refused to start: it must be compiled with \
             `--cfg console_without_tokio_unstable` (set in .cargo/config.toml; a RUSTFLAGS \
             environment variable replaces that setting)"
        );
        std::process::exit(2);
    }
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tokio-io")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rt = Runtime::builder()
        .workers(2)
        .tokio_handle(tokio_rt.handle().clone())
        .build();
    eprintln!(
        "console: serving taskweave's tasks on 127.0.0.1:6669 — run `tokio-console` in another \
         terminal; stopping after {seconds} s or on Ctrl-C"
    );

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (waves, beats) = tokio_rt.block_on(async {
        // One long-lived task: polled every 250 ms for the whole run.
        let heartbeat = {
            let stop = Arc::clone(&stop);
            rt.task_async(async move {
                let mut beats = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    beats += 1;
                }
                beats
            })
            .name("heartbeat")
            .await
        };
        let deadline = tokio::time::sleep(Duration::from_secs(seconds));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(deadline, ctrl_c);
        let mut in_flight: VecDeque<(u64, Task<u64>)> = VecDeque::new();
        let mut wave = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = &mut ctrl_c => {
                    eprintln!("console: Ctrl-C, finishing the waves in flight");
                    break;
                }
                _ = &mut deadline => break,
                _ = tokio::time::sleep(WAVE_EVERY) => {}
            }
            in_flight.push_back((wave, submit_wave(&rt, wave).await));
            wave += 1;
            while in_flight.len() > WAVES_IN_FLIGHT {
                let (done, reduce) = in_flight.pop_front().expect("not empty");
                report(done, reduce.await);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for (done, reduce) in in_flight {
            report(done, reduce.await);
        }
        let beats = heartbeat.await.expect("the heartbeat task");
        rt.shutdown().await;
        (wave, beats)
    });
    println!(
        "console: {waves} waves and {beats} heartbeats in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{}", rt.stats());
    // Dropping the runtime joins its workers: do it outside the tokio runtime.
    drop(rt);
}

fn report(wave: u64, result: Result<u64, taskweave::TaskError>) {
    match result {
        Ok(value) if wave.is_multiple_of(20) => println!("console: wave {wave} reduced to {value}"),
        Ok(_) => {}
        Err(error) => eprintln!("console: wave {wave} failed: {error}"),
    }
}
