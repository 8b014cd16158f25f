//! One measured (workload, system) pair: the report line that carries it from the
//! child process to the parent, its JSON form, and how time and memory are read.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use crate::workload::System;

/// The result of measuring one workload on one system.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Workload name.
    pub workload: String,
    /// System it ran on.
    pub system: System,
    /// Tasks per run.
    pub tasks: u64,
    /// Worker threads.
    pub threads: usize,
    /// Median wall time of one run, in milliseconds.
    pub ms: f64,
    /// `ms` divided by `tasks`, in nanoseconds.
    pub ns_per_task: f64,
    /// Peak resident set of the measuring process, in MiB.
    pub peak_rss_mb: f64,
}

impl Measurement {
    /// Builds a measurement from the median run time.
    pub fn new(
        workload: &str,
        system: System,
        tasks: u64,
        threads: usize,
        median: Duration,
        peak_rss_mb: f64,
    ) -> Measurement {
        let ms = median.as_secs_f64() * 1e3;
        Measurement {
            workload: workload.to_owned(),
            system,
            tasks,
            threads,
            ms,
            ns_per_task: median.as_secs_f64() * 1e9 / tasks.max(1) as f64,
            peak_rss_mb,
        }
    }
}

/// The report line:
/// `workload=NAME system=NAME tasks=N threads=T ms=X ns_per_task=Y peak_rss_mb=Z`.
impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workload={} system={} tasks={} threads={} ms={:.3} ns_per_task={:.1} peak_rss_mb={:.1}",
            self.workload,
            self.system,
            self.tasks,
            self.threads,
            self.ms,
            self.ns_per_task,
            self.peak_rss_mb
        )
    }
}

/// Parses the report line written by `Display`.
impl FromStr for Measurement {
    type Err = String;

    fn from_str(line: &str) -> Result<Measurement, String> {
        let mut fields = line.split_whitespace().map(|field| {
            field
                .split_once('=')
                .ok_or_else(|| format!("`{field}` is not key=value"))
        });
        let mut next = |key: &str| -> Result<&str, String> {
            match fields.next().transpose()? {
                Some((k, value)) if k == key => Ok(value),
                Some((k, _)) => Err(format!("expected `{key}=`, found `{k}=`")),
                None => Err(format!("missing `{key}=`")),
            }
        };
        fn number<T: FromStr>(key: &str, value: &str) -> Result<T, String> {
            value
                .parse()
                .map_err(|_| format!("`{key}={value}` is not a number"))
        }
        let workload = next("workload")?.to_owned();
        let system = next("system")?.parse()?;
        let tasks = number("tasks", next("tasks")?)?;
        let threads = number("threads", next("threads")?)?;
        let ms = number("ms", next("ms")?)?;
        let ns_per_task = number("ns_per_task", next("ns_per_task")?)?;
        let peak_rss_mb = number("peak_rss_mb", next("peak_rss_mb")?)?;
        if fields.next().is_some() {
            return Err("unexpected fields after peak_rss_mb".to_owned());
        }
        Ok(Measurement {
            workload,
            system,
            tasks,
            threads,
            ms,
            ns_per_task,
            peak_rss_mb,
        })
    }
}

/// The measurements as a JSON array of flat objects with the keys `workload`,
/// `system`, `tasks`, `threads`, `ms`, `ns_per_task`, `peak_rss_mb`.
pub fn to_json(measurements: &[Measurement]) -> String {
    let mut json = String::from("[");
    for (i, m) in measurements.iter().enumerate() {
        let separator = if i == 0 { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = write!(
            json,
            "{separator}\n  {{\"workload\": {}, \"system\": {}, \"tasks\": {}, \"threads\": {}, \
             \"ms\": {:.3}, \"ns_per_task\": {:.1}, \"peak_rss_mb\": {:.1}}}",
            json_string(&m.workload),
            json_string(m.system.name()),
            m.tasks,
            m.threads,
            finite(m.ms),
            finite(m.ns_per_task),
            finite(m.peak_rss_mb),
        );
    }
    json.push_str("\n]\n");
    json
}

/// JSON has no NaN or infinity.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn json_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The median of `samples` (the mean of the middle two for an even count).
///
/// # Panics
///
/// If `samples` is empty.
pub fn median(samples: &mut [Duration]) -> Duration {
    assert!(!samples.is_empty(), "median of no samples");
    samples.sort_unstable();
    let middle = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[middle]
    } else {
        (samples[middle - 1] + samples[middle]) / 2
    }
}

/// This process's peak resident set in MiB (`VmHWM` of `/proc/self/status`),
/// or `None` where that file does not exist.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Measurement {
        Measurement::new(
            "linear_chain",
            System::Tokio,
            1000,
            2,
            Duration::from_micros(1500),
            12.34,
        )
    }

    #[test]
    fn report_line_round_trips() {
        let line = sample().to_string();
        assert_eq!(
            line,
            "workload=linear_chain system=tokio tasks=1000 threads=2 ms=1.500 \
             ns_per_task=1500.0 peak_rss_mb=12.3"
        );
        let parsed: Measurement = line.parse().unwrap();
        assert_eq!(parsed.to_string(), line);
        assert!(
            "workload=x system=tokio tasks=1"
                .parse::<Measurement>()
                .is_err()
        );
    }

    #[test]
    fn json_has_exactly_the_report_keys() {
        let json = to_json(&[sample(), sample()]);
        assert!(json.starts_with("[\n  {\"workload\": \"linear_chain\", \"system\": \"tokio\", "));
        assert!(json.contains("\"tasks\": 1000, \"threads\": 2, \"ms\": 1.500, "));
        assert!(json.contains("\"ns_per_task\": 1500.0, \"peak_rss_mb\": 12.3}"));
        assert_eq!(json.matches('{').count(), 2);
        assert_eq!(to_json(&[]), "[\n]\n");
    }

    #[test]
    fn median_takes_the_middle() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mb().unwrap() > 0.0);
        }
    }
}
