//! Workloads that compare taskweave with tokio and rayon, shared by the criterion
//! bench (`benches/executor.rs`) and the `report` binary.
//!
//! The shapes are Taskflow's benchmarks (linear chain, binary tree, wavefront,
//! graph traversal, async tasks, embarrassing parallelism) with Taskflow's work per
//! task, the same number of workers for every system, and graph building inside
//! the timed region. Every run verifies what it computed and panics on a wrong
//! count or on a task that ran before its predecessors.

pub mod goals;
pub mod layered_graph;
pub mod measurement;
pub mod on_data;
pub mod on_deferred;
pub mod on_rayon;
pub mod on_streams;
pub mod on_taskweave;
pub mod on_tokio;
pub mod run_state;
pub mod workload;

pub use measurement::Measurement;
pub use workload::{System, SystemRuntime, WORKLOADS, Workload};
