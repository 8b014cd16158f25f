//! The random layered DAG of the graph-traversal workload (Taskflow's `LevelGraph`),
//! generated from a fixed seed with a small PRNG of our own.
//!
//! Generation follows Taskflow: every node of level `l` gets 1–4 out-edges (uniform),
//! taken in turn from a shuffled permutation of level `l + 1` (reshuffled when used
//! up), so only the last level has sinks and no node has two edges to the same
//! successor. The graph is then stored inverted, as each node's in-edges in CSR
//! form, because both taskweave (`after(ids)`) and tokio (await the predecessors'
//! handles) express a task's dependencies from the consumer's side.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use crate::run_state;

/// Seed of every generated graph, so all systems traverse the same one.
const SEED: u64 = 0x7a5c_3ea7_e000_0001;
/// Out-edges per node are uniform in `1..=MAX_OUT_EDGES`, as in Taskflow.
const MAX_OUT_EDGES: u32 = 4;

/// A DAG of `levels` levels of `width` nodes; edges go from level `l` to `l + 1`.
///
/// Node `n` is `(level, index) = (n / width, n % width)`.
pub struct LayeredGraph {
    width: u32,
    levels: u32,
    /// In-edges of node `n` are `sources[first_source[n]..first_source[n + 1]]`,
    /// given as indices within the previous level.
    first_source: Box<[u32]>,
    sources: Box<[u32]>,
    /// Epoch of the run that last visited each node (see [`run_state::begin`]).
    visited_in: Box<[AtomicU32]>,
}

impl LayeredGraph {
    /// Generates the graph of `levels` levels of `width` nodes from the fixed seed.
    pub fn generate(width: u32, levels: u32) -> LayeredGraph {
        assert!(
            width >= 1 && levels >= 1,
            "a layered graph needs at least one node"
        );
        let nodes = width as usize * levels as usize;
        let mut rng = SplitMix64(SEED);
        let mut first_source = Vec::with_capacity(nodes + 1);
        let mut sources = Vec::new();
        // Level 0 has no predecessors.
        first_source.extend(std::iter::repeat_n(0, width as usize));

        let mut successors: Vec<u32> = (0..width).collect();
        let mut edges: Vec<(u32, u32)> = Vec::new(); // (successor, source) of one level
        for _level in 1..levels {
            edges.clear();
            rng.shuffle(&mut successors);
            let mut start = 0;
            for source in 0..width {
                let wanted = 1 + rng.below(MAX_OUT_EDGES);
                let end = (start + wanted).min(width);
                edges.extend(
                    successors[start as usize..end as usize]
                        .iter()
                        .map(|&s| (s, source)),
                );
                if end == width {
                    rng.shuffle(&mut successors);
                    start = 0;
                } else {
                    start = end;
                }
            }
            edges.sort_unstable();
            let mut next_edge = edges.iter().peekable();
            for successor in 0..width {
                first_source.push(u32::try_from(sources.len()).expect("too many edges"));
                while let Some(&(_, source)) = next_edge.next_if(|(s, _)| *s == successor) {
                    sources.push(source);
                }
            }
        }
        first_source.push(u32::try_from(sources.len()).expect("too many edges"));

        LayeredGraph {
            width,
            levels,
            first_source: first_source.into_boxed_slice(),
            sources: sources.into_boxed_slice(),
            visited_in: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The `side` x `side` graph (`side` levels of `side` nodes), generated once per
    /// process and kept for good, so task bodies can borrow it for `'static`.
    pub fn square(side: usize) -> &'static LayeredGraph {
        static GENERATED: Mutex<Vec<&'static LayeredGraph>> = Mutex::new(Vec::new());
        let side = u32::try_from(side).expect("graph side must fit in u32");
        let mut generated = GENERATED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(graph) = generated
            .iter()
            .find(|g| g.width == side && g.levels == side)
        {
            return graph;
        }
        let graph: &'static LayeredGraph = Box::leak(Box::new(LayeredGraph::generate(side, side)));
        generated.push(graph);
        graph
    }

    /// Nodes per level.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Number of levels.
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// Number of nodes (= tasks of one traversal).
    pub fn nodes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.levels)
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.sources.len()
    }

    /// Predecessors of `node`, as indices within the previous level.
    pub fn predecessors(&self, node: u32) -> &[u32] {
        let node = node as usize;
        &self.sources[self.first_source[node] as usize..self.first_source[node + 1] as usize]
    }

    /// The task body: marks `node` visited in run `epoch`, after checking that
    /// every predecessor was visited in the same run (Taskflow's `Node::mark`).
    pub fn visit(&self, node: u32, epoch: u32) {
        let previous_level_start = (node / self.width).saturating_sub(1) * self.width;
        let predecessors_done = self
            .predecessors(node)
            .iter()
            .all(|&p| self.visited_in[(previous_level_start + p) as usize].load(Relaxed) == epoch);
        if !predecessors_done {
            run_state::order_violated();
        }
        self.visited_in[node as usize].store(epoch, Relaxed);
    }

    /// How many nodes were visited in run `epoch`.
    pub fn visited(&self, epoch: u32) -> u64 {
        self.visited_in
            .iter()
            .filter(|v| v.load(Relaxed) == epoch)
            .count() as u64
    }
}

/// Vigna's splitmix64: tiny, fast and good enough to shape a benchmark graph.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias is negligible here).
    fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }

    /// Fisher–Yates.
    fn shuffle(&mut self, items: &mut [u32]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_above_the_last_level_has_one_to_four_successors() {
        let graph = LayeredGraph::generate(64, 8);
        let mut out_degree = vec![0u32; graph.nodes() as usize];
        for node in graph.width()..graph.nodes() as u32 {
            let level_start = (node / graph.width() - 1) * graph.width();
            let predecessors = graph.predecessors(node);
            let mut distinct = predecessors.to_vec();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                predecessors.len(),
                "duplicate edge into {node}"
            );
            for &p in predecessors {
                out_degree[(level_start + p) as usize] += 1;
            }
        }
        let above_last = (graph.nodes() - u64::from(graph.width())) as usize;
        assert!(
            out_degree[..above_last]
                .iter()
                .all(|&d| (1..=4).contains(&d))
        );
        assert!(out_degree[above_last..].iter().all(|&d| d == 0));
        assert!(graph.edges() > 64 * 7 && graph.edges() < 64 * 7 * 4);
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (LayeredGraph::generate(32, 4), LayeredGraph::generate(32, 4));
        assert_eq!(a.sources, b.sources);
        assert_eq!(a.first_source, b.first_source);
    }
}
