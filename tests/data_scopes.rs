//! Scopes (nesting, cross-scope dependencies, fan-in loops, barriers, the window
//! limit, ending without blocking), manual scopes and tensors, `no_dep`, and host
//! reads and writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskweave::{DataError, EdgeSource, Region, Runtime, Scope, ScopeKind, TaskError, TaskId};

fn runtime() -> Runtime {
    Runtime::builder().workers(2).build()
}

/// A flag that bodies can wait on.
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Waits until the gate opens or `limit` passes; returns whether it opened.
    fn wait(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while !self.is_open() {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }
}

const LONG: Duration = Duration::from_secs(30);

#[test]
fn dependencies_cross_scope_boundaries() {
    let rt = runtime();
    let root = Scope::new(&rt, "root");
    let x = root.zeros::<i64>("x", [4]);
    let first = {
        let a = root.scope("a").unwrap();
        let w = a
            .task(x.write(..), |mut x| x.fill(5))
            .submit_blocking()
            .unwrap();
        w.id()
        // `a` ends here, without waiting for `w`.
    };
    let b = root.scope("b").unwrap();
    // A data dependency on a task of the ended scope...
    let r = b
        .task(x.read(..), |x| x.to_vec())
        .submit_blocking()
        .unwrap();
    // ...and an explicit one on its id.
    let after = b.task((), |()| 1).after([first]).submit_blocking().unwrap();
    assert_eq!(r.wait_blocking().unwrap(), [5; 4]);
    assert_eq!(after.wait_blocking().unwrap(), 1);
    drop(b);
    // Long after: the id is stale, which counts as done.
    rt.synchronize_blocking();
    let later = root
        .task((), |()| 2)
        .after([first])
        .submit_blocking()
        .unwrap();
    assert_eq!(later.wait_blocking().unwrap(), 2);
}

#[test]
fn loop_fan_in_through_a_vec_of_ids_with_invalid_placeholders() {
    let rt = runtime();
    let root = Scope::new(&rt, "root");
    let sums = root.zeros::<u64>("sums", [4]);
    let done = Arc::new(AtomicUsize::new(0));
    // last[i] is the task of lane i in the previous iteration (INVALID at first).
    let mut last = vec![TaskId::INVALID; 4];
    for iteration in 0..10u64 {
        let step = root.scope(format!("iteration {iteration}")).unwrap();
        let previous = last.clone();
        for (lane, slot) in last.iter_mut().enumerate() {
            let done = done.clone();
            let task = step
                .task(sums.read_write(lane..lane + 1), move |mut s| {
                    s[[0]] += iteration;
                    done.fetch_add(1, Ordering::Relaxed);
                })
                // Fan-in: every lane waits for every lane of the previous iteration.
                .after(previous.iter().copied())
                .submit_blocking()
                .unwrap();
            *slot = task.id();
        }
    }
    let end = root.barrier_blocking(last.iter().copied()).unwrap();
    rt.block_on(rt.wait(end));
    assert_eq!(done.load(Ordering::Relaxed), 40);
    assert_eq!(root.read_blocking(&sums, ..).unwrap(), [45; 4]);
}

#[test]
fn a_barrier_turns_n_times_m_edges_into_n_plus_m() {
    let rt = runtime();
    let scope = Scope::new(&rt, "barrier");
    scope.record_graph();
    let finished = Arc::new(AtomicUsize::new(0));
    let producers: Vec<TaskId> = (0..5)
        .map(|_| {
            let finished = finished.clone();
            let t = scope.task((), move |()| {
                finished.fetch_add(1, Ordering::Relaxed);
            });
            t.submit_blocking().unwrap().id()
        })
        .collect();
    let barrier = scope.barrier_blocking(producers.iter().copied()).unwrap();
    let consumers: Vec<_> = (0..7)
        .map(|_| {
            let finished = finished.clone();
            scope
                .task((), move |()| finished.load(Ordering::Relaxed))
                .after([barrier])
                .submit_blocking()
                .unwrap()
        })
        .collect();
    for consumer in consumers {
        assert_eq!(consumer.wait_blocking().unwrap(), 5);
    }
    let graph = scope.graph();
    assert_eq!(graph.edges.len(), 5 + 7);
    assert!(graph.edges.iter().all(|e| e.source == EdgeSource::Explicit));
    let barrier_task = graph.tasks.iter().find(|t| t.id == barrier).unwrap();
    assert_eq!(barrier_task.name.as_deref(), Some("barrier"));
}

#[test]
fn a_scope_that_would_fill_the_window_fails_at_once() {
    let rt = Runtime::builder().workers(2).window(16).build();
    let gate = Gate::default();
    let scope = Scope::new(&rt, "big");
    let mut tasks = Vec::new();
    for _ in 0..15 {
        let gate = gate.clone();
        tasks.push(
            scope
                .task((), move |()| gate.wait(LONG))
                .submit_blocking()
                .unwrap(),
        );
    }
    let error = scope.task((), |()| ()).submit_blocking().unwrap_err();
    match &error {
        DataError::ScopeTooLarge {
            scope,
            tasks,
            window,
            ..
        } => assert_eq!((scope.as_ref(), *tasks, *window), ("big", 15, 16)),
        other => panic!("expected ScopeTooLarge, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("'big'") && message.contains("15") && message.contains("16"),
        "{message}"
    );
    gate.open();
    for task in tasks {
        assert!(task.wait_blocking().unwrap());
    }
    drop(scope);
    // Nested scopes count together: the enclosing scope's held tasks leave less room.
    let outer = Scope::new(&rt, "outer");
    for _ in 0..10 {
        drop(outer.task((), |()| ()).submit_blocking().unwrap());
    }
    let inner = outer.scope("inner").unwrap();
    for _ in 0..5 {
        drop(inner.task((), |()| ()).submit_blocking().unwrap());
    }
    match inner.task((), |()| ()).submit_blocking() {
        Err(DataError::ScopeTooLarge {
            scope, tasks, held, ..
        }) => {
            assert_eq!((scope.as_ref(), tasks, held), ("inner", 5, 15))
        }
        other => panic!("expected ScopeTooLarge, got {other:?}"),
    }
    // Ending the inner scope makes room again.
    drop(inner);
    let again = outer.scope("again").unwrap();
    again
        .task((), |()| ())
        .submit_blocking()
        .unwrap()
        .wait_blocking()
        .unwrap();
}

#[test]
fn ending_a_scope_does_not_wait_for_its_tasks() {
    let rt = runtime();
    let gate = Gate::default();
    let root = Scope::new(&rt, "root");
    let x = root.zeros::<u8>("x", [1]);
    let id = {
        let inner = root.scope("inner").unwrap();
        let g = gate.clone();
        let t = inner
            .task(x.write(..), move |mut x| {
                assert!(g.wait(LONG));
                x[[0]] = 9;
            })
            .submit_blocking()
            .unwrap();
        assert_eq!(inner.tasks(), 1);
        t.id()
    };
    // The scope ended while its task is blocked.
    assert!(!rt.is_finished(id));
    gate.open();
    assert_eq!(root.read_blocking(&x, ..).unwrap(), [9]);
    assert!(rt.is_finished(id));
}

#[test]
fn running_tasks_keep_their_tensors_alive_after_the_root_scope_ends() {
    // A task's owned accesses keep each tensor alive once (through its first access
    // of it), in every declaration shape: accesses of one tensor together, and a
    // tensor met again after another.
    let rt = runtime();
    let gate = Gate::default();
    let (sender, results) = std::sync::mpsc::channel();
    let tasks = {
        let root = Scope::new(&rt, "root");
        let a = root.from_vec("a", [8], (0..8u64).collect()).unwrap();
        let b = root.from_vec("b", [4], vec![10u64, 20, 30, 40]).unwrap();
        let (g, out) = (gate.clone(), sender.clone());
        let first = root
            .task(
                (a.write(0..2), a.read_write(2..4), b.read(..), a.read(4..8)),
                move |(mut a01, mut a23, b, a48)| {
                    assert!(g.wait(LONG));
                    a01.fill(7);
                    a23.as_mut_slice().unwrap()[0] += 100;
                    let b: u64 = b.as_slice().unwrap().iter().sum();
                    let a48: u64 = a48.as_slice().unwrap().iter().sum();
                    out.send((b, a48, a01.to_vec(), a23.to_vec())).unwrap();
                },
            )
            .submit_blocking()
            .unwrap();
        let (g, out) = (gate.clone(), sender.clone());
        let second = root
            .task(
                (b.write(0..1), a.read(4..5), b.write(1..2)),
                move |(mut b0, a4, mut b1)| {
                    assert!(g.wait(LONG));
                    b0.fill(1);
                    b1.fill(2);
                    let a4 = a4.to_vec()[0];
                    out.send((a4, 0, b0.to_vec(), b1.to_vec())).unwrap();
                },
            )
            .submit_blocking()
            .unwrap();
        // The tensors and the scope end here, while both tasks wait.
        [first, second]
    };
    // Reuse the memory a freed tensor would have left.
    let noise: Vec<Vec<u64>> = (0..64).map(|i| vec![u64::MAX - i; 8]).collect();
    gate.open();
    let first = results.recv_timeout(LONG).unwrap();
    assert_eq!(first, (100, 4 + 5 + 6 + 7, vec![7, 7], vec![102, 3]));
    let second = results.recv_timeout(LONG).unwrap();
    assert_eq!(second, (4, 0, vec![1], vec![2]));
    drop(noise);
    for task in tasks {
        task.wait_blocking().unwrap();
    }
}

#[test]
fn scopes_nest_manual_inside_auto_but_not_auto_inside_manual() {
    let rt = runtime();
    let root = Scope::new(&rt, "root");
    assert_eq!(root.kind(), ScopeKind::Auto);
    let manual = root.manual_scope("m");
    assert_eq!(manual.kind(), ScopeKind::Manual);
    let deeper = manual.manual_scope("m2");
    assert_eq!(deeper.kind(), ScopeKind::Manual);
    match manual.scope("a") {
        Err(error @ DataError::AutoScopeInManualScope { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("'a'") && message.contains("'m'"),
                "{message}"
            );
        }
        other => panic!("expected AutoScopeInManualScope, got {other:?}"),
    }
    let root_manual = Scope::new_manual(&rt, "rm");
    assert!(root_manual.scope("x").is_err());
}

#[test]
fn manual_scopes_derive_nothing_and_access_only_manual_tensors() {
    let rt = runtime();
    let root = Scope::new(&rt, "root");
    let tracked = root.zeros::<i32>("tracked", [4]);
    let shared = root.manual_zeros::<i32>("shared", [4]);
    let manual = root.manual_scope("m");
    match manual.task(tracked.read(..), |_| ()).submit_blocking() {
        Err(error @ DataError::TrackedTensorInManualScope { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("'tracked'") && message.contains("'m'"),
                "{message}"
            );
        }
        other => panic!("expected TrackedTensorInManualScope, got {other:?}"),
    }
    let local = manual.zeros::<i32>("local", [4]);
    assert!(local.is_manual());
    manual.record_graph();
    let w = manual
        .task(local.write(..), |mut l| l.fill(3))
        .submit_blocking()
        .unwrap();
    // Explicit dependencies only: this read is ordered because we say so.
    let r = manual
        .task((local.read(..), shared.write(..)), |(l, mut s)| {
            s.copy_from_slice(&l.to_vec())
        })
        .after([w.id()])
        .submit_blocking()
        .unwrap();
    let r_id = r.id();
    r.wait_blocking().unwrap();
    let graph = manual.graph();
    assert!(graph.edges.iter().all(|e| e.source == EdgeSource::Explicit));
    assert_eq!(graph.edges.len(), 1);
    drop(manual);
    // Back in the auto scope, still only explicit dependencies for manual tensors.
    let check = root.task(shared.read(..), |s| s.to_vec()).after([r_id]);
    assert_eq!(
        check.submit_blocking().unwrap().wait_blocking().unwrap(),
        [3; 4]
    );
}

#[test]
fn unordered_conflicting_accesses_to_a_manual_tensor_fail_instead_of_racing() {
    let rt = runtime();
    let scope = Scope::new(&rt, "root");
    let m = scope.manual_zeros::<u64>("m", [8]);
    let (started, release) = (Gate::default(), Gate::default());
    let (s, r) = (started.clone(), release.clone());
    let first = scope
        .task(m.write(Region::range(0..6)), move |mut v| {
            s.open();
            assert!(r.wait(LONG));
            v.fill(1);
        })
        .name("first")
        .submit_blocking()
        .unwrap();
    assert!(started.wait(LONG));
    // No edge (manual tensor, none given): it runs now, while `first` runs.
    let second = scope
        .task(m.read(Region::range(4..8)), |v| v.to_vec())
        .name("second")
        .submit_blocking()
        .unwrap();
    match second.wait_blocking() {
        Err(TaskError::Failed { error, name, .. }) => {
            assert_eq!(name.as_deref(), Some("second"));
            let message = error.to_string();
            assert!(
                message.contains("manual tensor 'm'") && message.contains("range 0..6"),
                "{message}"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Disjoint accesses are fine while `first` runs.
    let disjoint = scope.task(m.read(Region::range(6..8)), |v| v.to_vec());
    assert_eq!(
        disjoint.submit_blocking().unwrap().wait_blocking().unwrap(),
        [0, 0]
    );
    release.open();
    let first_id = first.id();
    first.wait_blocking().unwrap();
    // With an explicit dependency the same read is ordered and sees the write.
    let third = scope
        .task(m.read(Region::range(4..8)), |v| v.to_vec())
        .after([first_id])
        .submit_blocking()
        .unwrap();
    assert_eq!(third.wait_blocking().unwrap(), [1, 1, 0, 0]);
}

#[test]
fn no_dep_accesses_are_not_in_the_map() {
    let rt = runtime();
    let scope = Scope::new(&rt, "root");
    scope.record_graph();
    let table = scope.from_vec("table", [4], vec![1, 2, 3, 4]).unwrap();
    let out = scope.zeros::<i32>("out", [4]);
    let w = scope
        .task(table.read_write(..), |mut t| t[[0]] = 10)
        .submit_blocking()
        .unwrap();
    // SAFETY: ordered after the only writer by an explicit dependency, and no later
    // task writes `table` before `r` is waited for below.
    let read_table = unsafe { table.read(..).no_dep() };
    let r = scope
        .task((read_table, out.write(..)), |(t, mut o)| {
            o.copy_from_slice(&t.to_vec())
        })
        .after([w.id()])
        .submit_blocking()
        .unwrap();
    let r_id = r.id();
    r.wait_blocking().unwrap();
    let graph = scope.graph();
    assert_eq!(
        graph
            .edges_between(w.id(), r_id)
            .map(|e| e.source)
            .collect::<Vec<_>>(),
        [EdgeSource::Explicit]
    );
    // A later writer of `table` does not order after the no_dep reader.
    let w2 = scope
        .task(table.write(..), |mut t| t.fill(0))
        .submit_blocking()
        .unwrap();
    assert_eq!(scope.graph().edges_between(r_id, w2.id()).count(), 0);
    w2.wait_blocking().unwrap();
    assert_eq!(scope.read_blocking(&out, ..).unwrap(), [10, 2, 3, 4]);
}

#[test]
fn host_reads_wait_for_writers() {
    let rt = runtime();
    let scope = Scope::new(&rt, "host");
    let x = scope.zeros::<i64>("x", [3]);
    let (writing, done, reader_started) = (Gate::default(), Gate::default(), Gate::default());
    let (w, d, rs) = (writing.clone(), done.clone(), reader_started.clone());
    let writer = scope
        .task(x.write(..), move |mut x| {
            w.open();
            // A host read that skipped this writer would start now.
            rs.wait(Duration::from_millis(200));
            x.copy_from_slice(&[1, 2, 3]);
            d.open();
        })
        .submit_blocking()
        .unwrap();
    let seen = rt
        .block_on(scope.read_with(&x, .., move |view| {
            reader_started.open();
            (done.is_open(), view.to_vec())
        }))
        .unwrap();
    assert_eq!(seen, (true, vec![1, 2, 3]));
    assert!(writing.is_open());
    writer.wait_blocking().unwrap();
}

#[test]
fn host_writes_wait_for_readers_and_writers_and_later_tasks_see_them() {
    let rt = runtime();
    let scope = Scope::new(&rt, "host");
    let x = scope.from_vec("x", [2, 2], vec![1u8, 2, 3, 4]).unwrap();
    let hold = Gate::default();
    let h = hold.clone();
    // A reader that takes its time: a host write that skipped it would land now.
    let reader = scope
        .task(x.read(..), move |v| {
            h.wait(Duration::from_millis(200));
            v.to_vec()
        })
        .submit_blocking()
        .unwrap();
    scope
        .write_blocking(&x, Region::tile([1, 0], [1, 2]), vec![7, 8])
        .unwrap();
    assert_eq!(reader.wait_blocking().unwrap(), [1, 2, 3, 4]);
    let after = scope
        .task(x.read(..), |v| v.to_vec())
        .submit_blocking()
        .unwrap();
    assert_eq!(after.wait_blocking().unwrap(), [1, 2, 7, 8]);
    // Shaping the graph from a computed control value.
    let flag = scope.read_blocking(&x, Region::element([1, 1])).unwrap()[0];
    let branch = if flag > 5 { "big" } else { "small" };
    assert_eq!(branch, "big");
    match scope.write_blocking(&x, .., vec![0; 3]) {
        Err(DataError::LengthMismatch {
            expected: 4,
            got: 3,
            ..
        }) => {}
        other => panic!("expected LengthMismatch, got {other:?}"),
    }
}

#[test]
fn host_access_reports_a_failed_writer() {
    let rt = runtime();
    let scope = Scope::new(&rt, "host");
    let x = scope.zeros::<f32>("x", [2]);
    drop(
        scope
            .try_task(x.write(..), |_| Err::<(), _>("bad write"))
            .name("writer")
            .submit_blocking()
            .unwrap(),
    );
    match scope.read_blocking(&x, ..) {
        Err(error @ DataError::HostAccess { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("'x'") && message.contains("'writer'"),
                "{message}"
            );
        }
        other => panic!("expected HostAccess, got {other:?}"),
    }
}

#[test]
fn async_orchestrators_submit_and_read() {
    let rt = runtime();
    let total = rt.block_on(async {
        let scope = Scope::new(&rt, "async");
        let v = scope.zeros::<u32>("v", [16]);
        for i in 0..16 {
            let set = scope.task(v.write(i..i + 1), move |mut e| e[[0]] = i as u32);
            drop(set.name("set").await.unwrap());
        }
        let sum = scope
            .task_async(v.read(..), |v| {
                Box::pin(async move { v.to_vec().iter().sum::<u32>() })
            })
            .await
            .unwrap();
        sum.await.unwrap()
    });
    assert_eq!(total, 120);
}
