//! Runs every workload on taskweave and its peers, each (workload, system) pair in
//! a child process of its own so that its peak RSS is its own, and reports times,
//! taskweave/peer ratios and the goals of DESIGN.md §8; also writes
//! `target/bench-report.json`.
//!
//! ```text
//! cargo run --release -p taskweave-benches --bin report -- \
//!     [--quick] [--only NAME,PREFIX,..] [--rounds N] [--threads T] [--timeout SECS]
//! ```
//!
//! Internally the report re-executes itself as
//! `report --child WORKLOAD SYSTEM --size S --rounds R --threads T`, which prints
//! one report line on stdout.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use taskweave_benches::goals::{goals, time_ratio};
use taskweave_benches::measurement::{self, Measurement, median};
use taskweave_benches::run_state;
use taskweave_benches::workload::{self, System, SystemRuntime, Workload};

const USAGE: &str = "usage: report [--quick] [--only NAME,PREFIX,..] [--rounds N] [--threads T] \
                     [--timeout SECS]";

/// Options of the parent process.
struct Options {
    quick: bool,
    only: String,
    rounds: usize,
    threads: usize,
    timeout: Duration,
}

/// What one child process measures.
struct ChildJob {
    workload: &'static Workload,
    system: System,
    size: usize,
    rounds: usize,
    threads: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.first().map(String::as_str) == Some("--child") {
        parse_child(&args[1..]).map(measure_in_this_process)
    } else {
        parse_options(&args).and_then(|options| report(&options))
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("report: {message}");
            ExitCode::from(2)
        }
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut quick = false;
    let mut only = String::new();
    let mut rounds = None;
    let mut threads = workload::default_threads();
    let mut timeout = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => only = value()?.clone(),
            "--rounds" => rounds = Some(positive(arg, value()?)?),
            "--threads" => threads = positive(arg, value()?)?,
            "--timeout" => timeout = Some(Duration::from_secs(positive(arg, value()?)? as u64)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Options {
        quick,
        only,
        rounds: rounds.unwrap_or(if quick { 1 } else { 5 }),
        threads,
        timeout: timeout.unwrap_or(Duration::from_secs(if quick { 120 } else { 900 })),
    })
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive integer, got `{value}`")),
    }
}

/// The parent: one child per (workload, system), then ratios, goals and JSON.
fn report(options: &Options) -> Result<ExitCode, String> {
    let workloads = workload::select(&options.only)?;
    eprintln!(
        "report: {} workload(s), {} threads, median of {} round(s), {} sizes",
        workloads.len(),
        options.threads,
        options.rounds,
        if options.quick { "quick" } else { "full" }
    );
    let mut measurements = Vec::new();
    let mut failures = 0;
    for &workload in &workloads {
        for system in workload.systems() {
            let job = ChildJob {
                workload,
                system,
                size: if options.quick {
                    workload.quick_size
                } else {
                    workload.full_size
                },
                rounds: options.rounds,
                threads: options.threads,
            };
            match run_child(&job, options.timeout) {
                Ok(measured) => {
                    println!("{measured}");
                    measurements.push(measured);
                }
                Err(failure) => {
                    failures += 1;
                    eprintln!("report: {} on {} FAILED: {failure}", workload.name, system);
                }
            }
        }
    }

    println!();
    print_ratios(&workloads, &measurements);
    print_gflops(&measurements, options.quick);
    println!();
    print_goals(&measurements);

    let path = report_path();
    let written = std::fs::create_dir_all(path.parent().unwrap_or(&path))
        .and_then(|()| std::fs::write(&path, measurement::to_json(&measurements)));
    match written {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(error) => {
            failures += 1;
            eprintln!("report: cannot write {}: {error}", path.display());
        }
    }
    if failures > 0 {
        eprintln!("report: {failures} failure(s)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `job` in a child process and parses the line it prints. On failure the
/// error holds the child's exit status and stderr.
fn run_child(job: &ChildJob, timeout: Duration) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--child", job.workload.name, job.system.name()])
        .args(["--size", &job.size.to_string()])
        .args(["--rounds", &job.rounds.to_string()])
        .args(["--threads", &job.threads.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start child process: {e}"))?;
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let started = Instant::now();
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| format!("cannot wait for child: {e}"))?
        {
            Some(status) => break Some(status),
            None if started.elapsed() > timeout => {
                // Only this child, which we started, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let describe = |what: String| format!("{what}\n--- child stderr ---\n{stderr}--- end ---");
    match status {
        None => Err(describe(format!(
            "timed out after {} s and was killed",
            timeout.as_secs()
        ))),
        Some(status) if !status.success() => Err(describe(format!("child exited with {status}"))),
        Some(_) => stdout
            .lines()
            .find(|line| line.starts_with("workload="))
            .ok_or_else(|| describe(format!("child printed no report line; stdout: {stdout:?}")))?
            .parse()
            .map_err(|e| describe(format!("cannot parse the child's report line: {e}"))),
    }
}

/// `workload  taskweave/tokio=0.21  taskweave/rayon=-` per workload.
fn print_ratios(workloads: &[&Workload], measurements: &[Measurement]) {
    let width = workloads.iter().map(|w| w.name.len()).max().unwrap_or(0);
    println!("taskweave time / peer time (lower is better):");
    for workload in workloads {
        let mut line = format!("{:<width$}", workload.name);
        for peer in System::peers().filter(|peer| workload.runs_on(*peer)) {
            let ratio = time_ratio(measurements, workload.name, peer)
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            line.push_str(&format!("  taskweave/{peer}={ratio}"));
        }
        println!("{line}");
    }
}

/// The Cholesky factorization's rate on each system, from its time and size.
fn print_gflops(measurements: &[Measurement], quick: bool) {
    let Some(cholesky) = Workload::named("cholesky") else {
        return;
    };
    let n = if quick {
        cholesky.quick_size
    } else {
        cholesky.full_size
    };
    let flops = taskweave_benches::on_data::cholesky_flops(n);
    let rates: Vec<String> = measurements
        .iter()
        .filter(|m| m.workload == "cholesky")
        .map(|m| format!("{}={:.2}", m.system, flops / (m.ms * 1e6)))
        .collect();
    if !rates.is_empty() {
        println!(
            "cholesky n={n} tile={} GFLOP/s: {}",
            taskweave_benches::on_data::cholesky_tile(n),
            rates.join("  ")
        );
    }
}

fn print_goals(measurements: &[Measurement]) {
    println!("goals (informational):");
    for goal in goals() {
        if let Some((measured, met)) = goal.evaluate(measurements) {
            println!("  {}", goal.checklist_line(measured, met));
        }
    }
}

/// `bench-report.json` in the target directory: `$CARGO_TARGET_DIR`, else the
/// `target` directory above this executable, else `./target`.
fn report_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench-report.json")
}

fn parse_child(args: &[String]) -> Result<ChildJob, String> {
    let [workload, system, rest @ ..] = args else {
        return Err("--child needs WORKLOAD SYSTEM".to_owned());
    };
    let workload =
        Workload::named(workload).ok_or_else(|| format!("unknown workload `{workload}`"))?;
    let system: System = system.parse()?;
    if !workload.runs_on(system) {
        return Err(format!("{} has no {system} version", workload.name));
    }
    let mut job = ChildJob {
        workload,
        system,
        size: workload.quick_size,
        rounds: 1,
        threads: 1,
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let value = positive(flag, value)?;
        match flag.as_str() {
            "--size" => job.size = value,
            "--rounds" => job.rounds = value,
            "--threads" => job.threads = value,
            other => return Err(format!("unknown child argument `{other}`")),
        }
    }
    Ok(job)
}

/// The child: start the system, prepare, time `rounds` runs (less their
/// [`run_state::untimed`] phases), print the line with the median time and this
/// process's peak RSS.
fn measure_in_this_process(job: ChildJob) -> ExitCode {
    let runtime = SystemRuntime::start(job.system, job.threads);
    (job.workload.prepare)(job.size);
    let mut samples: Vec<Duration> = (0..job.rounds)
        .map(|_| {
            run_state::take_untimed();
            let started = Instant::now();
            std::hint::black_box(runtime.run(job.workload, job.size));
            started.elapsed().saturating_sub(run_state::take_untimed())
        })
        .collect();
    let measured = Measurement::new(
        job.workload.name,
        job.system,
        (job.workload.tasks)(job.size),
        job.threads,
        median(&mut samples),
        measurement::peak_rss_mb().unwrap_or(f64::NAN),
    );
    println!("{measured}");
    drop(runtime);
    ExitCode::SUCCESS
}
