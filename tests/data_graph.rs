//! The recorded graph and its JSON and DOT exports: tasks with names and scopes,
//! tensors, and edges with their source (explicit, input, data) and kind.

use taskweave::{DepKind, EdgeSource, Region, Runtime, Scope};

#[test]
fn the_graph_exports_as_json_and_dot() {
    let rt = Runtime::builder().workers(2).build();
    let root = Scope::new(&rt, "main");
    root.record_graph();
    let a = root.zeros::<f64>("A", [4, 4]);
    let top = Region::tile([0, 0], [2, 4]);
    let step = root.scope("step \"1\"").unwrap();
    let init = step
        .task(a.write(..), |mut a| a.fill(1.0))
        .name("init")
        .submit_blocking()
        .unwrap();
    let scale = step
        .task(a.read_write(top), |mut t| t.fill(2.0))
        .name("scale")
        .submit_blocking()
        .unwrap();
    let seed = rt.task(|| 3.0).submit_blocking();
    let seed_id = seed.id();
    let sum = root
        .dataflow(seed, a.read(..), |s, a| s + a.to_vec().iter().sum::<f64>())
        .name("sum")
        .after([init.id()])
        .submit_blocking()
        .unwrap();
    let clear = root
        .task(a.write(top), |mut t| t.fill(0.0))
        .name("clear")
        .submit_blocking()
        .unwrap();
    let sum_id = sum.id();
    let graph = root.graph();
    assert_eq!(graph.tasks.len(), 4);
    assert_eq!(graph.tasks[1].name.as_deref(), Some("scale"));
    assert_eq!(graph.tasks[1].scope, "step \"1\"");
    assert_eq!(graph.tasks[2].scope, "main");
    assert_eq!(graph.tensors.len(), 1);
    assert_eq!(
        (graph.tensors[0].name.as_str(), graph.tensors[0].dtype),
        ("A", "f64")
    );
    let edge = |from, to| -> Vec<(EdgeSource, Option<DepKind>)> {
        graph
            .edges_between(from, to)
            .map(|e| (e.source, e.kind))
            .collect()
    };
    assert_eq!(
        edge(init.id(), scale.id()),
        [(EdgeSource::Data, Some(DepKind::Raw))]
    );
    assert_eq!(
        edge(init.id(), sum.id()),
        [
            (EdgeSource::Explicit, None),
            (EdgeSource::Data, Some(DepKind::Raw))
        ]
    );
    assert_eq!(
        edge(scale.id(), sum.id()),
        [(EdgeSource::Data, Some(DepKind::Raw))]
    );
    assert_eq!(edge(seed_id, sum.id()), [(EdgeSource::Input, None)]);
    assert_eq!(
        edge(sum_id, clear.id()),
        [(EdgeSource::Data, Some(DepKind::War))]
    );
    assert_eq!(sum.wait_blocking().unwrap(), 3.0 + 8.0 * 2.0 + 8.0 * 1.0);
    let sum = sum_id;

    let json: serde_json::Value = serde_json::from_str(&graph.to_json()).expect("valid JSON");
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    assert_eq!(tasks[1]["name"], "scale");
    assert_eq!(tasks[1]["scope"], "step \"1\"");
    assert_eq!(tasks[1]["id"], scale.id().to_string());
    assert_eq!(json["tensors"][0]["shape"], serde_json::json!([4, 4]));
    assert_eq!(json["tensors"][0]["manual"], false);
    let edges = json["edges"].as_array().unwrap();
    assert_eq!(edges.len(), graph.edges.len());
    let war = edges.iter().find(|e| e["kind"] == "WAR").unwrap();
    assert_eq!(war["source"], "data");
    assert_eq!(war["from"], sum.to_string());
    assert_eq!(war["tensor"], 0);
    assert!(
        edges
            .iter()
            .any(|e| e["source"] == "input" && e["kind"].is_null())
    );
    assert!(edges.iter().any(|e| e["source"] == "explicit"));

    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph taskweave {"));
    assert!(dot.contains(&format!(
        "\"{}\" -> \"{}\" [label=\"WAR A\"]",
        sum,
        clear.id()
    )));
    assert!(dot.contains("style=dashed") && dot.contains("style=bold"));
    assert!(dot.contains("scale\\n"));
}

#[test]
fn nothing_is_recorded_until_asked() {
    let rt = Runtime::builder().workers(1).build();
    let scope = Scope::new(&rt, "quiet");
    let x = scope.zeros::<u8>("x", [2]);
    scope
        .task(x.write(..), |_| ())
        .submit_blocking()
        .unwrap()
        .wait_blocking()
        .unwrap();
    assert!(scope.graph().tasks.is_empty() && scope.graph().tensors.is_empty());
    scope.record_graph();
    let r = scope.task(x.read(..), |_| ()).submit_blocking().unwrap();
    let graph = scope.graph();
    assert_eq!(graph.tasks.len(), 1);
    assert_eq!(graph.tasks[0].id, r.id());
    // The writer finished long ago but is still in the map: the edge is recorded.
    assert_eq!(graph.edges.len(), 1);
}

#[test]
fn edges_are_derived_alike_when_a_task_leaves_the_fast_path_midway() {
    // C's first access is found in one step (one grid, its cell); its second needs
    // the full lookup (x's map has two grids), which takes the whole task off the
    // fast path: every edge must still be there, once, with its kind.
    let rt = Runtime::builder().workers(2).build();
    let root = Scope::new(&rt, "main");
    root.record_graph();
    let x = root.zeros::<u8>("x", [16]);
    let y = root.zeros::<u8>("y", [4]);
    let w = root.task(y.write(0..1), |_| ()).submit_blocking();
    let a = root.task(x.write(0..4), |_| ()).submit_blocking();
    let b = root.task(x.write(8..16), |_| ()).submit_blocking();
    let c = root
        .task((y.read(0..1), x.read(..)), |_| ())
        .submit_blocking();
    let d = root
        .task((y.write(0..1), x.write(2..3)), |_| ())
        .submit_blocking();
    let [w, a, b, c, d] = [w, a, b, c, d].map(|task| task.unwrap().id());
    rt.synchronize_blocking();
    let graph = root.graph();
    let (x, y) = (Some(x.id()), Some(y.id()));
    let edges = |to| {
        let mut edges: Vec<_> = graph
            .edges
            .iter()
            .filter(|e| e.to == to)
            .map(|e| (e.from, e.source, e.kind, e.tensor))
            .collect();
        edges.sort_by_key(|&(from, _, kind, tensor)| (from, kind, tensor));
        edges
    };
    let data = |from, kind, tensor| (from, EdgeSource::Data, Some(kind), tensor);
    let mut expected = vec![
        data(w, DepKind::Raw, y),
        data(a, DepKind::Raw, x),
        data(b, DepKind::Raw, x),
    ];
    expected.sort_by_key(|&(from, _, kind, tensor)| (from, kind, tensor));
    assert_eq!(edges(c), expected);
    // D writes y after C read it (WAR, not WAW on W), and x's 2..3 inside A's
    // 0..4, which nobody read since A wrote it (WAW), and inside C's read (WAR).
    let mut expected = vec![
        data(c, DepKind::War, y),
        data(c, DepKind::War, x),
        data(a, DepKind::Waw, x),
    ];
    expected.sort_by_key(|&(from, _, kind, tensor)| (from, kind, tensor));
    assert_eq!(edges(d), expected);
}
