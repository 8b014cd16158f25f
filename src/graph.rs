//! Recording the submitted graph of a scope tree and exporting it as JSON or
//! Graphviz DOT.
//!
//! Recording is off until [`Scope::record_graph`](crate::Scope::record_graph) turns
//! it on for the scope's tree; while it is off a submission pays one relaxed load.
//! Every task submitted through a scope of the tree is recorded with its name and
//! scope, every tensor created with its name, type and shape, and every edge with
//! where it came from (`explicit` `.after` ids, typed `input`s, or `data` accesses)
//! and, for data edges, its kind (`RAW`, `WAR`, `WAW`) and tensor.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::TaskId;

/// Where an edge came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeSource {
    /// An id given to `.after(..)` (or a barrier's dependencies).
    Explicit,
    /// A typed input of a dataflow task.
    Input,
    /// Derived from data accesses by the dependency map.
    Data,
}

impl EdgeSource {
    /// `"explicit"`, `"input"` or `"data"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeSource::Explicit => "explicit",
            EdgeSource::Input => "input",
            EdgeSource::Data => "data",
        }
    }
}

/// The kind of a data edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DepKind {
    /// Read after write: the consumer reads what the producer wrote.
    Raw,
    /// Write after read: the consumer overwrites what the producer read.
    War,
    /// Write after write: the consumer overwrites what the producer wrote.
    Waw,
}

impl DepKind {
    /// `"RAW"`, `"WAR"` or `"WAW"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DepKind::Raw => "RAW",
            DepKind::War => "WAR",
            DepKind::Waw => "WAW",
        }
    }
}

/// A recorded task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphTask {
    /// Its id.
    pub id: TaskId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// The scope it was submitted in.
    pub scope: String,
}

/// A recorded tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphTensor {
    /// Its id ([`Tensor::id`](crate::Tensor::id)).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its element type (`"f64"`).
    pub dtype: &'static str,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Whether it is a manual tensor.
    pub manual: bool,
    /// The scope that created it.
    pub scope: String,
}

/// A recorded edge: `to` runs after `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphEdge {
    /// The producer.
    pub from: TaskId,
    /// The consumer.
    pub to: TaskId,
    /// Where the edge came from.
    pub source: EdgeSource,
    /// For data edges, its kind.
    pub kind: Option<DepKind>,
    /// For data edges, the tensor.
    pub tensor: Option<u64>,
}

/// A recorded graph (see [`Scope::graph`](crate::Scope::graph)).
///
/// ```
/// use taskweave::{DepKind, EdgeSource, Runtime, Scope};
/// let rt = Runtime::builder().workers(2).build();
/// let scope = Scope::new(&rt, "main");
/// scope.record_graph();
/// let x = scope.zeros::<f64>("x", [4]);
/// let w = scope.task(x.write(..), |mut x| x.fill(1.0)).name("init").submit_blocking().unwrap();
/// let r = scope.task(x.read(..), |x| x.to_vec()).name("use").submit_blocking().unwrap();
/// let graph = scope.graph();
/// assert_eq!(graph.edges.len(), 1);
/// let edge = graph.edges[0];
/// assert_eq!((edge.from, edge.to), (w.id(), r.id()));
/// assert_eq!((edge.source, edge.kind), (EdgeSource::Data, Some(DepKind::Raw)));
/// assert!(graph.to_json().contains(r#""kind": "RAW""#));
/// assert!(graph.to_dot().contains("RAW"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// Tasks in submission order.
    pub tasks: Vec<GraphTask>,
    /// Tensors in creation order.
    pub tensors: Vec<GraphTensor>,
    /// Edges, grouped by consumer in submission order.
    pub edges: Vec<GraphEdge>,
}

impl Graph {
    /// The graph as JSON:
    ///
    /// ```text
    /// { "tasks":   [{ "id": "#3v0", "name": "potrf", "scope": "k=0" }, ...],
    ///   "tensors": [{ "id": 0, "name": "A", "dtype": "f64", "shape": [8, 8], "manual": false, "scope": "main" }, ...],
    ///   "edges":   [{ "from": "#3v0", "to": "#4v0", "source": "data", "kind": "RAW", "tensor": 0 }, ...] }
    /// ```
    ///
    /// `name`, `kind` and `tensor` are `null` when absent.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n  \"tasks\": [");
        for (i, task) in self.tasks.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            let _ = write!(
                out,
                "{{\"id\": \"{}\", \"name\": {}, \"scope\": {}}}",
                task.id,
                task.name.as_deref().map_or("null".to_owned(), json_string),
                json_string(&task.scope)
            );
        }
        out.push_str("\n  ],\n  \"tensors\": [");
        for (i, tensor) in self.tensors.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            let _ = write!(
                out,
                "{{\"id\": {}, \"name\": {}, \"dtype\": \"{}\", \"shape\": {:?}, \"manual\": {}, \"scope\": {}}}",
                tensor.id,
                json_string(&tensor.name),
                tensor.dtype,
                tensor.shape,
                tensor.manual,
                json_string(&tensor.scope)
            );
        }
        out.push_str("\n  ],\n  \"edges\": [");
        for (i, edge) in self.edges.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            let _ = write!(
                out,
                "{{\"from\": \"{}\", \"to\": \"{}\", \"source\": \"{}\", \"kind\": {}, \"tensor\": {}}}",
                edge.from,
                edge.to,
                edge.source.as_str(),
                edge.kind
                    .map_or("null".to_owned(), |k| format!("\"{}\"", k.as_str())),
                edge.tensor.map_or("null".to_owned(), |t| t.to_string())
            );
        }
        out.push_str("\n  ]\n}\n");
        out
    }

    /// The graph as Graphviz DOT: one node per task (labelled with its name and
    /// scope), one edge per recorded edge (labelled with its kind and tensor for
    /// data edges; dashed for explicit edges, bold for typed inputs).
    pub fn to_dot(&self) -> String {
        let tensor_name = |id: u64| {
            self.tensors
                .iter()
                .find(|t| t.id == id)
                .map_or_else(|| format!("tensor {id}"), |t| t.name.clone())
        };
        let mut out = String::from("digraph taskweave {\n  node [shape=box];\n");
        for task in &self.tasks {
            let label = format!(
                "{}\\n{} ({})",
                task.name.as_deref().unwrap_or("<unnamed>"),
                task.id,
                task.scope
            );
            let _ = writeln!(out, "  \"{}\" [label={}];", task.id, dot_string(&label));
        }
        for edge in &self.edges {
            let style = match edge.source {
                EdgeSource::Explicit => " style=dashed".to_owned(),
                EdgeSource::Input => " style=bold".to_owned(),
                EdgeSource::Data => format!(
                    " label={}",
                    dot_string(&format!(
                        "{} {}",
                        edge.kind.map_or("", DepKind::as_str),
                        edge.tensor.map(tensor_name).unwrap_or_default()
                    ))
                ),
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [{}];",
                edge.from,
                edge.to,
                style.trim()
            );
        }
        out.push_str("}\n");
        out
    }

    /// The recorded edges from `from` to `to`.
    pub fn edges_between(&self, from: TaskId, to: TaskId) -> impl Iterator<Item = &GraphEdge> {
        self.edges
            .iter()
            .filter(move |e| e.from == from && e.to == to)
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot_string(s: &str) -> String {
    // Labels may hold `\n` line breaks (DOT escapes); only quotes need escaping.
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// The recorder of one scope tree.
#[derive(Default)]
pub(crate) struct Recorder {
    on: AtomicBool,
    graph: Mutex<Graph>,
}

impl Recorder {
    pub(crate) fn start(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub(crate) fn with(&self, f: impl FnOnce(&mut Graph)) {
        f(&mut self.graph.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn snapshot(&self) -> Graph {
        self.graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
