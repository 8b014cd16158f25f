//! The performance goals of DESIGN.md §8 as a checklist over measured results
//! (informational: missing a goal does not fail the report).

use std::fmt::Write as _;

use crate::measurement::Measurement;
use crate::workload::{System, WORKLOADS};

/// What a goal bounds.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// taskweave's time divided by `peer`'s is at most `ratio`.
    TimeRatio {
        /// The system compared against.
        peer: System,
        /// Highest acceptable taskweave/peer time ratio.
        ratio: f64,
    },
    /// taskweave's time per task is at most this many nanoseconds.
    NsPerTask(f64),
    /// taskweave's peak resident set is below this many MiB.
    PeakRssMb(f64),
    /// taskweave's time per task is at most `ratio` times its time per task on
    /// the workload `other` (e.g. a stream chain against the plain chain).
    WorkloadRatio {
        /// The workload compared against.
        other: &'static str,
        /// Highest acceptable ratio of ns per task.
        ratio: f64,
    },
    /// Peak memory is flat in the number of tasks: between the smaller workload
    /// `other` (same program, fewer tasks) and this one, peak RSS grows by at most
    /// `bytes` per extra task beyond `data` bytes per task (the program's own data).
    RssPerTask {
        /// The same program with fewer tasks.
        other: &'static str,
        /// Bytes of user data each task adds (e.g. its grid element).
        data: f64,
        /// Highest acceptable growth per extra task, in bytes, beyond `data`.
        bytes: f64,
    },
}

/// A goal on one workload.
#[derive(Clone, Copy, Debug)]
pub struct Goal {
    /// The workload it applies to.
    pub workload: &'static str,
    /// What is bounded.
    pub target: Target,
}

/// Goals that are not implied by the workload table.
const LISTED: &[Goal] = &[
    Goal::time_ratio("linear_chain", System::Tokio, 0.33),
    Goal::time_ratio("binary_tree", System::Tokio, 0.33),
    Goal::time_ratio("wavefront", System::Tokio, 0.33),
    Goal::time_ratio("graph_traversal", System::Tokio, 0.33),
    Goal::time_ratio("async_task", System::Tokio, 0.5),
    Goal {
        workload: "linear_chain",
        target: Target::NsPerTask(150.0),
    },
    Goal {
        workload: "wavefront",
        target: Target::PeakRssMb(256.0),
    },
    Goal::time_ratio("mailbox", System::Crossbeam, 1.0),
    Goal {
        workload: "stream_chain",
        target: Target::WorkloadRatio {
            other: "linear_chain",
            ratio: 1.2,
        },
    },
    Goal::time_ratio("stream_chain", System::Tokio, 0.5),
    Goal {
        workload: "linear_chain_data",
        target: Target::WorkloadRatio {
            other: "linear_chain",
            ratio: 1.5,
        },
    },
    Goal::time_ratio("linear_chain_data", System::Tokio, 0.5),
    Goal {
        workload: "submit_cost_5",
        target: Target::NsPerTask(250.0),
    },
    Goal {
        workload: "wavefront_data",
        target: Target::PeakRssMb(256.0),
    },
    Goal {
        workload: "wavefront_data",
        target: Target::RssPerTask {
            other: "wavefront_data_small",
            data: 4.0,
            bytes: 4.0,
        },
    },
    Goal {
        workload: "deferred_chain",
        target: Target::WorkloadRatio {
            other: "linear_chain",
            ratio: 3.0,
        },
    },
    Goal {
        workload: "linear_chain_traced",
        target: Target::WorkloadRatio {
            other: "linear_chain",
            ratio: 2.0,
        },
    },
];

/// Every goal: the listed ones, plus "no slower than rayon" wherever rayon runs.
pub fn goals() -> Vec<Goal> {
    let mut goals = LISTED.to_vec();
    goals.extend(
        WORKLOADS
            .iter()
            .filter(|w| w.rayon.is_some())
            .map(|w| Goal::time_ratio(w.name, System::Rayon, 1.0)),
    );
    goals
}

/// taskweave's time on `workload` divided by `peer`'s, if both were measured.
pub fn time_ratio(measurements: &[Measurement], workload: &str, peer: System) -> Option<f64> {
    let ms = |system| {
        measurements
            .iter()
            .find(|m| m.workload == workload && m.system == system)
            .map(|m| m.ms)
    };
    Some(ms(System::Taskweave)? / ms(peer)?)
}

impl Goal {
    /// taskweave's time on `workload` is at most `ratio` times `peer`'s.
    pub const fn time_ratio(workload: &'static str, peer: System, ratio: f64) -> Goal {
        Goal {
            workload,
            target: Target::TimeRatio { peer, ratio },
        }
    }

    /// The measured value and whether the goal is met, if it was measured.
    pub fn evaluate(&self, measurements: &[Measurement]) -> Option<(f64, bool)> {
        let taskweave = || {
            measurements
                .iter()
                .find(|m| m.workload == self.workload && m.system == System::Taskweave)
        };
        match self.target {
            Target::TimeRatio { peer, ratio } => {
                let measured = time_ratio(measurements, self.workload, peer)?;
                Some((measured, measured <= ratio))
            }
            Target::NsPerTask(limit) => {
                let measured = taskweave()?.ns_per_task;
                Some((measured, measured <= limit))
            }
            Target::PeakRssMb(limit) => {
                let measured = taskweave()?.peak_rss_mb;
                Some((measured, measured < limit))
            }
            Target::WorkloadRatio { other, ratio } => {
                let base = measurements
                    .iter()
                    .find(|m| m.workload == other && m.system == System::Taskweave)?;
                let measured = taskweave()?.ns_per_task / base.ns_per_task;
                Some((measured, measured <= ratio))
            }
            Target::RssPerTask { other, data, bytes } => {
                let small = measurements
                    .iter()
                    .find(|m| m.workload == other && m.system == System::Taskweave)?;
                let large = taskweave()?;
                let extra_tasks = large.tasks.checked_sub(small.tasks).filter(|&n| n > 0)?;
                let grown = (large.peak_rss_mb - small.peak_rss_mb) * (1 << 20) as f64;
                let measured = grown / extra_tasks as f64 - data;
                Some((measured, measured <= bytes))
            }
        }
    }

    /// One checklist line, e.g. `[met]    linear_chain taskweave/tokio = 0.21 (goal <= 0.33)`.
    pub fn checklist_line(&self, measured: f64, met: bool) -> String {
        let mut line = format!(
            "{:<9}{} ",
            if met { "[met]" } else { "[MISSED]" },
            self.workload
        );
        // Writing to a String cannot fail.
        let _ = match self.target {
            Target::TimeRatio { peer, ratio } => {
                write!(
                    line,
                    "taskweave/{peer} = {measured:.2} (goal <= {ratio:.2})"
                )
            }
            Target::NsPerTask(limit) => {
                write!(
                    line,
                    "taskweave ns/task = {measured:.1} (goal <= {limit:.0})"
                )
            }
            Target::PeakRssMb(limit) => {
                write!(
                    line,
                    "taskweave peak RSS = {measured:.1} MB (goal < {limit:.0})"
                )
            }
            Target::WorkloadRatio { other, ratio } => {
                write!(
                    line,
                    "taskweave ns/task vs {other} = {measured:.2}x (goal <= {ratio:.2}x)"
                )
            }
            Target::RssPerTask { other, data, bytes } => {
                write!(
                    line,
                    "taskweave peak RSS growth vs {other} = {measured:.2} B/task beyond {data:.0} B of data (goal <= {bytes:.0})"
                )
            }
        };
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ratio_goals_compare_taskweave_with_the_peer() {
        let m = |system, ms| {
            Measurement::new(
                "linear_chain",
                system,
                1000,
                2,
                Duration::from_millis(ms),
                10.0,
            )
        };
        let measured = [m(System::Taskweave, 1), m(System::Tokio, 4)];
        let goal = goals()[0];
        let (ratio, met) = goal.evaluate(&measured).unwrap();
        assert!((ratio - 0.25).abs() < 1e-9 && met);
        assert_eq!(
            goal.checklist_line(ratio, met),
            "[met]    linear_chain taskweave/tokio = 0.25 (goal <= 0.33)"
        );
        let ns_goal = Goal {
            workload: "linear_chain",
            target: Target::NsPerTask(150.0),
        };
        assert_eq!(ns_goal.evaluate(&measured), Some((1000.0, false)));
        assert!(goals().iter().any(|g| g.workload == "binary_tree"
            && matches!(
                g.target,
                Target::TimeRatio {
                    peer: System::Rayon,
                    ..
                }
            )));
    }

    #[test]
    fn rss_per_task_goal_subtracts_the_data_and_needs_both_sizes() {
        let m = |workload, tasks, rss_mb| {
            Measurement::new(
                workload,
                System::Taskweave,
                tasks,
                2,
                Duration::from_millis(1),
                rss_mb,
            )
        };
        let goal = Goal {
            workload: "wavefront_data",
            target: Target::RssPerTask {
                other: "wavefront_data_small",
                data: 4.0,
                bytes: 4.0,
            },
        };
        // 3 Mi more tasks and 24 MiB more: 8 B per task, 4 beyond the data.
        let flat = [
            m("wavefront_data_small", 1 << 20, 40.0),
            m("wavefront_data", 4 << 20, 64.0),
        ];
        assert_eq!(goal.evaluate(&flat), Some((4.0, true)));
        // 48 MiB more: 16 B per task, 12 beyond the data.
        let growing = [flat[0].clone(), m("wavefront_data", 4 << 20, 88.0)];
        assert_eq!(goal.evaluate(&growing), Some((12.0, false)));
        assert_eq!(goal.evaluate(&flat[1..]), None);
    }
}
