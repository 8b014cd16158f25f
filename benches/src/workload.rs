//! The table of workloads (one entry each: name, sizes, and the version per system)
//! and the systems they run on.
//!
//! Adding a workload is one entry in [`WORKLOADS`] plus its functions in the
//! `on_*` modules; the criterion bench and the `report` binary pick it up.

use std::fmt;
use std::str::FromStr;

use crate::layered_graph::LayeredGraph;
use crate::{on_data, on_deferred, on_rayon, on_streams, on_taskweave, on_tokio};

/// A system a workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum System {
    /// This project.
    Taskweave,
    /// tokio's multi-thread runtime.
    Tokio,
    /// A rayon thread pool.
    Rayon,
    /// crossbeam-channel (a peer of the completion mailbox).
    Crossbeam,
    /// async-channel (a peer of the completion mailbox).
    AsyncChannel,
    /// The same kernels run in order on one thread (the reference of `cholesky`).
    Sequential,
}

impl System {
    /// Every system, in report order.
    pub const ALL: [System; 6] = [
        System::Taskweave,
        System::Tokio,
        System::Rayon,
        System::Crossbeam,
        System::AsyncChannel,
        System::Sequential,
    ];

    /// Every system taskweave is compared with.
    pub fn peers() -> impl Iterator<Item = System> {
        System::ALL.into_iter().filter(|s| *s != System::Taskweave)
    }

    /// The lowercase crate name, as used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::Taskweave => "taskweave",
            System::Tokio => "tokio",
            System::Rayon => "rayon",
            System::Crossbeam => "crossbeam",
            System::AsyncChannel => "async-channel",
            System::Sequential => "sequential",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for System {
    type Err = String;

    fn from_str(name: &str) -> Result<System, String> {
        System::ALL
            .into_iter()
            .find(|system| system.name() == name)
            .ok_or_else(|| format!("unknown system `{name}` (expected taskweave, tokio, rayon, crossbeam, async-channel or sequential)"))
    }
}

/// One benchmark shape. `size` means what [`Workload::tasks`] says it means
/// (tasks, tree layers, grid side, ...).
pub struct Workload {
    /// Name used on the command line, in the report and as the criterion group.
    pub name: &'static str,
    /// Size of the full report.
    pub full_size: usize,
    /// Size of `report --quick` (CI).
    pub quick_size: usize,
    /// Size of the criterion bench.
    pub bench_size: usize,
    /// Number of tasks a run of the given size executes.
    pub tasks: fn(usize) -> u64,
    /// Untimed preparation for a size (e.g. generating the random graph).
    pub prepare: fn(usize),
    /// The taskweave version.
    pub taskweave: fn(&taskweave::Runtime, usize) -> u64,
    /// The tokio version.
    pub tokio: Option<fn(&tokio::runtime::Runtime, usize) -> u64>,
    /// The rayon version, for fork-join shapes only.
    pub rayon: Option<fn(&rayon::ThreadPool, usize) -> u64>,
    /// Versions on systems that need no runtime (e.g. a channel between threads).
    pub plain: &'static [PlainVersion],
}

/// Every workload, in report order (Taskflow's benchmark shapes).
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "linear_chain",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::linear_chain,
        tokio: Some(on_tokio::linear_chain),
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "binary_tree",
        full_size: 20,
        quick_size: 14,
        bench_size: 14,
        tasks: tree_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::binary_tree,
        tokio: Some(on_tokio::binary_tree),
        rayon: Some(on_rayon::binary_tree),
        plain: &[],
    },
    Workload {
        name: "wavefront",
        full_size: 2048,
        quick_size: 256,
        bench_size: 128,
        tasks: square_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::wavefront,
        tokio: Some(on_tokio::wavefront),
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "graph_traversal",
        full_size: 1024,
        quick_size: 128,
        bench_size: 128,
        tasks: square_tasks,
        prepare: generate_graph,
        taskweave: on_taskweave::graph_traversal,
        tokio: Some(on_tokio::graph_traversal),
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "async_task",
        full_size: 1 << 21,
        quick_size: 1 << 15,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::async_task,
        tokio: Some(on_tokio::async_task),
        rayon: Some(on_rayon::async_task),
        plain: &[],
    },
    Workload {
        name: "embarrassing_parallelism",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::embarrassing_parallelism,
        tokio: Some(on_tokio::embarrassing_parallelism),
        rayon: Some(on_rayon::embarrassing_parallelism),
        plain: &[],
    },
    #[cfg(feature = "trace")]
    Workload {
        name: "linear_chain_traced",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_taskweave::linear_chain_traced,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "mailbox",
        full_size: 4_000_000,
        quick_size: 64_000,
        bench_size: 64_000,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_deferred::mailbox,
        tokio: None,
        rayon: None,
        plain: &[
            (System::Crossbeam, on_deferred::mailbox_crossbeam),
            (System::AsyncChannel, on_deferred::mailbox_async_channel),
        ],
    },
    Workload {
        name: "mailbox_tokens",
        full_size: 4_000_000,
        quick_size: 64_000,
        bench_size: 64_000,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_deferred::mailbox_tokens,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "deferred_chain",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_deferred::deferred_chain,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "linear_chain_data",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::linear_chain_data,
        tokio: Some(on_tokio::linear_chain),
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "wavefront_data",
        full_size: 2048,
        quick_size: 256,
        bench_size: 128,
        tasks: square_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::wavefront_data,
        tokio: Some(on_tokio::wavefront),
        rayon: None,
        plain: &[],
    },
    // A quarter of `wavefront_data`'s tasks: the two peak RSS give the memory per
    // task (the goal: none beyond the grid's own element).
    Workload {
        name: "wavefront_data_small",
        full_size: 1024,
        quick_size: 128,
        bench_size: 64,
        tasks: square_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::wavefront_data,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "submit_cost_0",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::submit_cost_0,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "submit_cost_1",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::submit_cost_1,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "submit_cost_5",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::submit_cost_5,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "submit_cost_16",
        full_size: 1 << 18,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::submit_cost_16,
        tokio: None,
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "cholesky",
        full_size: 4096,
        quick_size: 1024,
        bench_size: 512,
        tasks: on_data::cholesky_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_data::cholesky,
        tokio: None,
        rayon: None,
        plain: &[(System::Sequential, on_data::cholesky_sequential)],
    },
    Workload {
        name: "stream_chain",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_streams::stream_chain_taskweave,
        tokio: Some(on_streams::stream_chain_tokio),
        rayon: None,
        plain: &[],
    },
    Workload {
        name: "stream_fanout",
        full_size: 1 << 20,
        quick_size: 1 << 14,
        bench_size: 1 << 14,
        tasks: as_tasks,
        prepare: nothing_to_prepare,
        taskweave: on_streams::stream_fanout_taskweave,
        tokio: Some(on_streams::stream_fanout_tokio),
        rayon: None,
        plain: &[],
    },
];

fn as_tasks(tasks: usize) -> u64 {
    tasks as u64
}

fn tree_tasks(layers: usize) -> u64 {
    (1u64 << layers) - 1
}

fn square_tasks(side: usize) -> u64 {
    (side as u64) * (side as u64)
}

fn nothing_to_prepare(_: usize) {}

fn generate_graph(side: usize) {
    LayeredGraph::square(side);
}

impl Workload {
    /// Whether this workload has a version for `system`.
    pub fn runs_on(&self, system: System) -> bool {
        match system {
            System::Taskweave => true,
            System::Tokio => self.tokio.is_some(),
            System::Rayon => self.rayon.is_some(),
            System::Crossbeam | System::AsyncChannel | System::Sequential => {
                self.plain.iter().any(|(s, _)| *s == system)
            }
        }
    }

    /// The systems this workload has a version for, in report order.
    pub fn systems(&self) -> impl Iterator<Item = System> + '_ {
        System::ALL
            .into_iter()
            .filter(|&system| self.runs_on(system))
    }

    /// The workload called `name`.
    pub fn named(name: &str) -> Option<&'static Workload> {
        WORKLOADS.iter().find(|workload| workload.name == name)
    }
}

/// The workloads selected by `--only`: comma-separated names or name prefixes
/// (`linear` selects `linear_chain`, `submit_cost` every `submit_cost_*`).
/// An empty filter selects everything; a part that matches nothing is an error.
pub fn select(only: &str) -> Result<Vec<&'static Workload>, String> {
    let prefixes: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unmatched) = prefixes
        .iter()
        .find(|prefix| !WORKLOADS.iter().any(|w| w.name.starts_with(**prefix)))
    {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        return Err(format!(
            "`--only {unmatched}` matches no workload; workloads: {}",
            names.join(", ")
        ));
    }
    Ok(WORKLOADS
        .iter()
        .filter(|w| prefixes.is_empty() || prefixes.iter().any(|p| w.name.starts_with(p)))
        .collect())
}

/// A version of a workload on a system that needs no runtime.
pub type PlainVersion = (System, fn(usize) -> u64);

/// A started instance of one system, which runs workloads.
pub enum SystemRuntime {
    /// A taskweave runtime.
    Taskweave(taskweave::Runtime),
    /// A tokio multi-thread runtime.
    Tokio(tokio::runtime::Runtime),
    /// A rayon pool.
    Rayon(rayon::ThreadPool),
    /// A system without a runtime of its own.
    Plain(System),
}

impl SystemRuntime {
    /// Starts `system` with `threads` worker threads.
    pub fn start(system: System, threads: usize) -> SystemRuntime {
        match system {
            System::Taskweave => SystemRuntime::Taskweave(on_taskweave::runtime(threads)),
            System::Tokio => SystemRuntime::Tokio(on_tokio::runtime(threads)),
            System::Rayon => SystemRuntime::Rayon(on_rayon::pool(threads)),
            System::Crossbeam | System::AsyncChannel | System::Sequential => {
                SystemRuntime::Plain(system)
            }
        }
    }

    /// Which system this is.
    pub fn system(&self) -> System {
        match self {
            SystemRuntime::Taskweave(_) => System::Taskweave,
            SystemRuntime::Tokio(_) => System::Tokio,
            SystemRuntime::Rayon(_) => System::Rayon,
            SystemRuntime::Plain(system) => *system,
        }
    }

    /// Runs `workload` at `size` once and returns its verified count.
    ///
    /// # Panics
    ///
    /// If the workload has no version for this system, or its result is wrong.
    pub fn run(&self, workload: &Workload, size: usize) -> u64 {
        match (self, workload.tokio, workload.rayon) {
            (SystemRuntime::Taskweave(rt), _, _) => (workload.taskweave)(rt, size),
            (SystemRuntime::Tokio(rt), Some(tokio_version), _) => tokio_version(rt, size),
            (SystemRuntime::Rayon(pool), _, Some(rayon_version)) => rayon_version(pool, size),
            (SystemRuntime::Plain(system), _, _) if workload.runs_on(*system) => {
                let (_, version) = workload
                    .plain
                    .iter()
                    .find(|(s, _)| s == system)
                    .expect("runs_on checked it");
                version(size)
            }
            _ => panic!("{} has no {} version", workload.name, self.system()),
        }
    }
}

/// The default worker count: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matches_prefixes_and_rejects_unknown_names() {
        let names = |only| select(only).map(|ws| ws.iter().map(|w| w.name).collect::<Vec<_>>());
        #[cfg(feature = "trace")]
        {
            assert_eq!(
                names("linear").unwrap(),
                ["linear_chain", "linear_chain_traced", "linear_chain_data"]
            );
            assert_eq!(names("linear_chain_t").unwrap(), ["linear_chain_traced"]);
        }
        #[cfg(not(feature = "trace"))]
        assert_eq!(
            names("linear").unwrap(),
            ["linear_chain", "linear_chain_data"]
        );
        assert_eq!(
            names("wavefront,async").unwrap(),
            [
                "wavefront",
                "async_task",
                "wavefront_data",
                "wavefront_data_small"
            ]
        );
        assert_eq!(names("submit_cost").unwrap().len(), 4);
        assert_eq!(names("").unwrap().len(), WORKLOADS.len());
        assert!(names("nope").is_err());
    }

    /// Every version of every workload at its (small) criterion size, on two workers.
    #[test]
    fn every_version_verifies_at_bench_sizes() {
        let systems: Vec<SystemRuntime> = System::ALL
            .into_iter()
            .map(|s| SystemRuntime::start(s, 2))
            .collect();
        for workload in WORKLOADS {
            (workload.prepare)(workload.bench_size);
            for system in systems.iter().filter(|s| workload.runs_on(s.system())) {
                let expected = (workload.tasks)(workload.bench_size);
                assert_eq!(system.run(workload, workload.bench_size), expected);
            }
        }
    }
}
