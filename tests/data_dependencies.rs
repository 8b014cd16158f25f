//! Dependencies derived from declared accesses: every edge kind, what runs
//! concurrently (read/read, disjoint tiles) and what is ordered (overlapping tiles,
//! ranges against tiles), and explicit dependencies and typed inputs on top.
//!
//! Concurrency is *observed*: two tasks meet at a rendezvous that only completes if
//! both bodies run at the same time. Ordering is observed with a probe: the first
//! task waits (bounded) for the second to start; if the second ever starts while
//! the first runs, the edge is missing. No test depends on timing for its verdict:
//! a timeout only ends a wait that the correct program never satisfies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskweave::{DepKind, EdgeSource, Region, Runtime, Scope, TaskError};

fn runtime() -> Runtime {
    Runtime::builder().workers(2).build()
}

/// Waits until `flag` is set or `limit` passes; returns whether it was set.
fn wait_for(flag: &AtomicBool, limit: Duration) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// Two bodies that can only both finish `arrive` if they run at the same time.
#[derive(Clone, Default)]
struct Rendezvous(Arc<AtomicUsize>);

impl Rendezvous {
    /// Arrives and waits (bounded) for the other; true if both were inside at once.
    fn arrive(&self) -> bool {
        self.0.fetch_add(1, Ordering::AcqRel);
        let start = Instant::now();
        while self.0.load(Ordering::Acquire) < 2 {
            if start.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }
}

/// Observes whether a second task starts while a first one runs.
#[derive(Clone, Default)]
struct OrderProbe {
    first_running: Arc<AtomicBool>,
    first_done: Arc<AtomicBool>,
    second_started: Arc<AtomicBool>,
    overlapped: Arc<AtomicBool>,
}

impl OrderProbe {
    /// The first body: gives the second task ample chance to start, then ends.
    fn first(&self) {
        self.first_running.store(true, Ordering::Release);
        // A correct program never sets `second_started` here; a missing edge does
        // at once (a worker is idle), so 200 ms is plenty to catch it.
        wait_for(&self.second_started, Duration::from_millis(200));
        self.first_running.store(false, Ordering::Release);
        self.first_done.store(true, Ordering::Release);
    }

    /// The second body.
    fn second(&self) {
        self.second_started.store(true, Ordering::Release);
        if self.first_running.load(Ordering::Acquire) || !self.first_done.load(Ordering::Acquire) {
            self.overlapped.store(true, Ordering::Release);
        }
    }

    fn ordered(&self) -> bool {
        self.first_done.load(Ordering::Acquire) && !self.overlapped.load(Ordering::Acquire)
    }
}

#[test]
fn every_edge_kind_is_derived_and_recorded() {
    let rt = runtime();
    let scope = Scope::new(&rt, "edges");
    scope.record_graph();
    let x = scope.zeros::<i64>("x", [4]);
    let w1 = scope
        .task(x.write(..), |mut x| x.fill(1))
        .name("w1")
        .submit_blocking()
        .unwrap();
    let r = scope
        .task(x.read(..), |x| x.to_vec())
        .name("r")
        .submit_blocking()
        .unwrap();
    let w2 = scope
        .task(x.write(..), |mut x| x.fill(2))
        .name("w2")
        .submit_blocking()
        .unwrap();
    let w3 = scope
        .task(x.write(..), |mut x| x.fill(3))
        .name("w3")
        .submit_blocking()
        .unwrap();
    let rw = scope
        .task(x.read_write(..), |mut x| {
            for v in x.as_mut_slice().unwrap() {
                *v += 10;
            }
        })
        .name("rw")
        .submit_blocking()
        .unwrap();
    let (w1, r, w2, w3, rw) = (w1.id(), r, w2.id(), w3.id(), rw.id());
    let graph = scope.graph();
    let kinds = |from, to| -> Vec<_> {
        graph
            .edges_between(from, to)
            .map(|e| (e.source, e.kind))
            .collect()
    };
    let data = |kind| vec![(EdgeSource::Data, Some(kind))];
    assert_eq!(kinds(w1, r.id()), data(DepKind::Raw));
    assert_eq!(kinds(r.id(), w2), data(DepKind::War));
    // w2 follows r, which follows w1: the WAW edge to w1 is implied and not added.
    assert!(kinds(w1, w2).is_empty());
    assert_eq!(kinds(w2, w3), data(DepKind::Waw));
    assert_eq!(kinds(w3, rw), data(DepKind::Raw));
    assert_eq!(graph.edges.len(), 4);
    assert_eq!(r.wait_blocking().unwrap(), [1; 4]);
    assert_eq!(scope.read_blocking(&x, ..).unwrap(), [13; 4]);
}

#[test]
fn read_after_write_write_after_read_and_write_after_write_are_ordered() {
    let rt = runtime();
    let scope = Scope::new(&rt, "order");
    let x = scope.zeros::<u8>("x", [8]);
    for (first, second) in [("write", "read"), ("read", "write"), ("write", "write")] {
        let probe = OrderProbe::default();
        let (p1, p2) = (probe.clone(), probe.clone());
        let submit = |mode: &str, body: Box<dyn FnOnce() + Send>| match mode {
            "read" => scope
                .task(x.read(..), move |_| body())
                .submit_blocking()
                .unwrap(),
            _ => scope
                .task(x.write(..), move |_| body())
                .submit_blocking()
                .unwrap(),
        };
        let a = submit(first, Box::new(move || p1.first()));
        let b = submit(second, Box::new(move || p2.second()));
        a.wait_blocking().unwrap();
        b.wait_blocking().unwrap();
        assert!(probe.ordered(), "{second} after {first} was not ordered");
    }
}

#[test]
fn readers_of_one_region_run_concurrently() {
    let rt = runtime();
    let scope = Scope::new(&rt, "readers");
    let x = scope.from_vec("x", [4], vec![1, 2, 3, 4]).unwrap();
    let meet = Rendezvous::default();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let meet = meet.clone();
            scope
                .task(x.read(..), move |_| meet.arrive())
                .submit_blocking()
                .unwrap()
        })
        .collect();
    for task in tasks {
        assert!(
            task.wait_blocking().unwrap(),
            "two readers did not run at the same time"
        );
    }
}

#[test]
fn writers_of_disjoint_tiles_run_concurrently() {
    let rt = runtime();
    let scope = Scope::new(&rt, "tiles");
    let m = scope.zeros::<f32>("m", [8, 8]);
    let meet = Rendezvous::default();
    let tiles = [Region::tile([0, 0], [4, 8]), Region::tile([4, 0], [4, 8])];
    let tasks: Vec<_> = tiles
        .into_iter()
        .map(|tile| {
            let meet = meet.clone();
            scope
                .task(m.write(tile), move |mut t| {
                    t.fill(1.0);
                    meet.arrive()
                })
                .submit_blocking()
                .unwrap()
        })
        .collect();
    for task in tasks {
        assert!(
            task.wait_blocking().unwrap(),
            "disjoint tiles were serialised"
        );
    }
    // Tiles of different shapes that touch but do not overlap, too.
    let meet = Rendezvous::default();
    let (m1, m2) = (meet.clone(), meet.clone());
    let a = scope.task(m.read_write(Region::tile([0, 0], [3, 5])), move |_| {
        m1.arrive()
    });
    let a = a.submit_blocking().unwrap();
    let b = scope.task(m.read_write(Region::tile([3, 0], [5, 8])), move |_| {
        m2.arrive()
    });
    let b = b.submit_blocking().unwrap();
    assert!(a.wait_blocking().unwrap() && b.wait_blocking().unwrap());
}

#[test]
fn partially_overlapping_tiles_are_ordered() {
    let rt = runtime();
    let scope = Scope::new(&rt, "overlap");
    scope.record_graph();
    let m = scope.zeros::<i32>("m", [6, 6]);
    let probe = OrderProbe::default();
    let (p1, p2) = (probe.clone(), probe.clone());
    let a = scope
        .task(m.write(Region::tile([0, 0], [4, 4])), move |_| p1.first())
        .submit_blocking()
        .unwrap();
    // Shares only element (3, 3).
    let b = scope
        .task(m.read(Region::tile([3, 3], [3, 3])), move |_| p2.second())
        .submit_blocking()
        .unwrap();
    let (ia, ib) = (a.id(), b.id());
    a.wait_blocking().unwrap();
    b.wait_blocking().unwrap();
    assert!(probe.ordered());
    assert_eq!(scope.graph().edges_between(ia, ib).count(), 1);
}

#[test]
fn a_one_d_range_and_a_two_d_tile_of_one_tensor_are_ordered() {
    let rt = runtime();
    let scope = Scope::new(&rt, "range_vs_tile");
    scope.record_graph();
    let m = scope.zeros::<u32>("m", [4, 5]);
    // Elements 7..9 are row 1, columns 2..4; the tile holds (1, 3).
    let probe = OrderProbe::default();
    let (p1, p2) = (probe.clone(), probe.clone());
    let a = scope
        .task(m.write(7..9), move |_| p1.first())
        .submit_blocking()
        .unwrap();
    let b = scope
        .task(m.write(Region::tile([1, 3], [2, 2])), move |_| p2.second())
        .submit_blocking()
        .unwrap();
    let (ia, ib) = (a.id(), b.id());
    a.wait_blocking().unwrap();
    b.wait_blocking().unwrap();
    assert!(probe.ordered());
    // A range ending just before the tile's first column is disjoint from it.
    let c = scope.task(m.write(5..8), |_| ()).submit_blocking().unwrap();
    let d = scope
        .task(m.write(Region::tile([2, 3], [2, 2])), |_| ())
        .submit_blocking()
        .unwrap();
    let graph = scope.graph();
    assert_eq!(graph.edges_between(ia, ib).count(), 1);
    assert_eq!(graph.edges_between(c.id(), d.id()).count(), 0);
    // A range over several rows (12..18 = row 2 from column 2, row 3 to column 3)
    // overlaps the tile at (2, 3) but not one at (0, 0).
    let e = scope
        .task(m.write(12..18), |_| ())
        .submit_blocking()
        .unwrap();
    let graph = scope.graph();
    assert_eq!(graph.edges_between(d.id(), e.id()).count(), 1);
    assert_eq!(graph.edges_between(ia, e.id()).count(), 0);
}

#[test]
fn accesses_to_different_tensors_do_not_order() {
    let rt = runtime();
    let scope = Scope::new(&rt, "tensors");
    let x = scope.zeros::<u8>("x", [4]);
    let y = scope.zeros::<u8>("y", [4]);
    let meet = Rendezvous::default();
    let (m1, m2) = (meet.clone(), meet.clone());
    let a = scope
        .task(x.write(..), move |_| m1.arrive())
        .submit_blocking()
        .unwrap();
    let b = scope
        .task(y.write(..), move |_| m2.arrive())
        .submit_blocking()
        .unwrap();
    assert!(a.wait_blocking().unwrap() && b.wait_blocking().unwrap());
}

#[test]
fn explicit_dependencies_and_typed_inputs_add_to_derived_ones() {
    let rt = runtime();
    let scope = Scope::new(&rt, "explicit");
    scope.record_graph();
    let x = scope.zeros::<i64>("x", [2]);
    let y = scope.zeros::<i64>("y", [2]);
    let probe = OrderProbe::default();
    let (p1, p2) = (probe.clone(), probe.clone());
    // No data in common: only the explicit edge orders them.
    let a = scope
        .task(x.write(..), move |_| p1.first())
        .submit_blocking()
        .unwrap();
    let b = scope
        .task(y.write(..), move |_| p2.second())
        .after([a.id()])
        .submit_blocking()
        .unwrap();
    let (ia, ib) = (a.id(), b.id());
    a.wait_blocking().unwrap();
    b.wait_blocking().unwrap();
    assert!(probe.ordered());
    // A typed input plus a derived edge.
    let seven = rt.task(|| 7i64).submit_blocking();
    let seven_id = seven.id();
    let c = scope
        .dataflow(seven, (x.read(..), y.write(..)), |seven, (x, mut y)| {
            let sum: i64 = x.to_vec().iter().sum();
            y.fill(seven + sum);
        })
        .submit_blocking()
        .unwrap();
    let graph = scope.graph();
    assert_eq!(
        graph
            .edges_between(ia, ib)
            .map(|e| e.source)
            .collect::<Vec<_>>(),
        [EdgeSource::Explicit]
    );
    assert_eq!(
        graph
            .edges_between(seven_id, c.id())
            .map(|e| e.source)
            .collect::<Vec<_>>(),
        [EdgeSource::Input]
    );
    // `c` reads x (written by a: RAW) and writes y (written by b: WAW).
    assert_eq!(
        graph.edges_between(ia, c.id()).next().unwrap().kind,
        Some(DepKind::Raw)
    );
    assert_eq!(
        graph.edges_between(ib, c.id()).next().unwrap().kind,
        Some(DepKind::Waw)
    );
    c.wait_blocking().unwrap();
    assert_eq!(scope.read_blocking(&y, ..).unwrap(), [7, 7]);
}

#[test]
fn a_failed_writer_fails_its_readers_and_nothing_else() {
    let rt = runtime();
    let scope = Scope::new(&rt, "failure");
    let x = scope.zeros::<f64>("x", [4]);
    let y = scope.zeros::<f64>("y", [4]);
    let bad = scope
        .try_task(x.write(..), |_| Err::<(), _>("disk on fire"))
        .name("bad")
        .submit_blocking()
        .unwrap();
    let bad_id = bad.id();
    drop(bad); // the scope keeps its outcome
    rt.block_on(rt.wait(bad_id));
    // Submitted after the failure: still fails, because the scope holds the slot.
    let reader = scope
        .task(x.read(..), |x| x.to_vec())
        .name("reader")
        .submit_blocking()
        .unwrap();
    let unrelated = scope
        .task(y.write(..), |mut y| y.fill(1.0))
        .submit_blocking()
        .unwrap();
    match reader.wait_blocking() {
        Err(TaskError::DependencyFailed { root_name, .. }) => {
            assert_eq!(root_name.as_deref(), Some("bad"))
        }
        other => panic!("expected DependencyFailed, got {other:?}"),
    }
    unrelated.wait_blocking().unwrap();
    // A new writer depends on the failed reader (WAR), so it fails too: failures
    // propagate along every edge while the scope holds the failed tasks.
    let rewrite = scope
        .task(x.write(..), |mut x| x.fill(2.0))
        .submit_blocking()
        .unwrap();
    assert!(rewrite.wait_blocking().is_err());
}

#[test]
fn many_writers_of_one_element_form_a_chain() {
    let rt = runtime();
    let scope = Scope::new(&rt, "chain");
    let counter = scope.zeros::<u64>("counter", [1]);
    let mut left = 20_000;
    while left > 0 {
        let chunk = scope.scope("chunk").unwrap();
        for _ in 0..1000 {
            drop(
                chunk
                    .task(counter.read_write(..), |mut c| c[[0]] += 1)
                    .submit_blocking()
                    .unwrap(),
            );
        }
        left -= 1000;
    }
    assert_eq!(scope.read_blocking(&counter, ..).unwrap(), [20_000]);
}

#[test]
fn failed_tasks_stay_in_the_map_across_cleanups_while_their_scope_holds_them() {
    let rt = runtime();
    let scope = Scope::new(&rt, "retain");
    let x = scope.zeros::<u32>("x", [4096]);
    let y = scope.zeros::<u32>("y", [1]);
    // Fails itself (x[0]); and fails without running, through a dependency on a
    // failed task of another tensor (x[1]).
    let bad_y = scope
        .try_task(y.write(..), |_| Err::<(), _>("no"))
        .name("bad_y");
    let bad_y = bad_y.submit_blocking().unwrap().id();
    drop(
        scope
            .try_task(x.write(0..1), |_| Err::<(), _>("no"))
            .name("bad_x")
            .submit_blocking(),
    );
    drop(
        scope
            .task((x.write(1..2), y.read(..)), |_| ())
            .submit_blocking(),
    );
    rt.block_on(rt.wait(bad_y));
    // Thousands of unrelated accesses: the map cleans up many times meanwhile.
    for i in 2..4096 {
        drop(
            scope
                .task(x.write(i..i + 1), |mut v| v[[0]] = 1)
                .submit_blocking()
                .unwrap(),
        );
        if i % 512 == 0 {
            rt.synchronize_blocking();
        }
    }
    rt.synchronize_blocking();
    for (at, root) in [(0, "bad_x"), (1, "bad_y")] {
        let reader = scope
            .task(x.read(at..at + 1), |v| v.to_vec())
            .submit_blocking()
            .unwrap();
        match reader.wait_blocking() {
            Err(TaskError::DependencyFailed { root_name, .. }) => {
                assert_eq!(root_name.as_deref(), Some(root))
            }
            other => panic!("x[{at}]: expected a failure from {root}, got {other:?}"),
        }
    }
    // The rest of x was written.
    let rest = scope
        .task(x.read(2..4096), |v| v.to_vec())
        .submit_blocking()
        .unwrap();
    assert!(rest.wait_blocking().unwrap().iter().all(|&v| v == 1));
}

#[test]
fn a_writer_failed_by_its_token_after_its_body_returned_stays_in_the_map() {
    // The body returns normally; the task fails later, when its deferred token
    // fails. Cleanups in between must still see the failure (the map looks at the
    // task's slot, not at how its body ended).
    let rt = runtime();
    let scope = Scope::new(&rt, "token_failure");
    let x = scope.zeros::<u32>("x", [2048]);
    let writer = scope
        .task(x.write(0..1), |mut v| {
            v[[0]] = 7;
            let token = taskweave::defer("dma: x[0]");
            std::thread::spawn(move || token.fail("dma engine fault"));
        })
        .name("dma_writer")
        .submit_blocking()
        .unwrap();
    // Awaiting the handle gives it up; the scope still holds the task's slot.
    assert!(matches!(
        writer.wait_blocking(),
        Err(TaskError::TokenFailed { .. })
    ));
    // Enough unrelated accesses, finished, for several cleanups of x's map.
    for i in 1..2048 {
        drop(
            scope
                .task(x.write(i..i + 1), |mut v| v[[0]] = 1)
                .submit_blocking()
                .unwrap(),
        );
        if i % 256 == 0 {
            rt.synchronize_blocking();
        }
    }
    rt.synchronize_blocking();
    let reader = scope
        .task(x.read(0..1), |v| v.to_vec())
        .submit_blocking()
        .unwrap();
    match reader.wait_blocking() {
        Err(TaskError::DependencyFailed { root_name, .. }) => {
            assert_eq!(root_name.as_deref(), Some("dma_writer"))
        }
        other => panic!("expected a failure from dma_writer, got {other:?}"),
    }
}
