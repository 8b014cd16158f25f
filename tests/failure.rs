//! Per-task failure: a body that returns `Err` or panics fails its own task, every
//! transitive dependent fails with `DependencyFailed` naming the root task (and never
//! runs), unrelated tasks keep running, and error messages name the tasks.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use taskweave::{Runtime, Task, TaskError, TaskId};

mod support;
use support::hang_guard;

/// How many times each named body ran.
#[derive(Default, Clone)]
struct Runs(Arc<Mutex<BTreeMap<String, Arc<AtomicUsize>>>>);

impl Runs {
    fn counter(&self, name: &str) -> Arc<AtomicUsize> {
        let mut map = self.0.lock().unwrap();
        map.entry(name.to_owned()).or_default().clone()
    }

    fn get(&self, name: &str) -> usize {
        self.counter(name).load(SeqCst)
    }

    /// A body that counts its run under `name`.
    fn body(&self, name: &str) -> impl FnOnce() + Send + 'static {
        let counter = self.counter(name);
        move || {
            counter.fetch_add(1, SeqCst);
        }
    }
}

#[derive(Debug)]
struct ParseError {
    line: u32,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad header on line {}", self.line)
    }
}

impl std::error::Error for ParseError {}

fn name_of<'a>(name: &'a Option<std::borrow::Cow<'static, str>>) -> Option<&'a str> {
    name.as_deref()
}

#[test]
fn body_returning_err_fails_its_task() {
    let _guard = hang_guard("body_returning_err_fails_its_task", 30);
    let rt = Runtime::builder().workers(2).build();
    rt.block_on(async {
        let failing = rt
            .try_task(|| Err::<u32, _>(ParseError { line: 7 }))
            .name("parse-config")
            .await;
        let failing_id = failing.id();
        let err = failing
            .await
            .expect_err("a body returning Err fails its task");
        match &err {
            TaskError::Failed { task, name, error } => {
                assert_eq!(*task, failing_id);
                assert_eq!(name_of(name), Some("parse-config"));
                assert_eq!(error.to_string(), "bad header on line 7");
                let original = error
                    .downcast_ref::<ParseError>()
                    .expect("the body's error type");
                assert_eq!(original.line, 7);
            }
            other => panic!("expected TaskError::Failed, got {other:?}"),
        }
        assert_eq!(err.task(), failing_id);
        assert_eq!(err.root(), failing_id);
        let message = err.to_string();
        assert!(
            message.contains("parse-config"),
            "message does not name the task: {message}"
        );

        // The same through an async body, with a plain string error.
        let failing = rt
            .try_task_async(async { Err::<(), _>("device lost") })
            .name("upload")
            .await;
        let failing_id = failing.id();
        match failing.await {
            Err(TaskError::Failed { task, name, error }) => {
                assert_eq!(task, failing_id);
                assert_eq!(name_of(&name), Some("upload"));
                assert_eq!(error.to_string(), "device lost");
            }
            other => panic!("expected TaskError::Failed, got {other:?}"),
        }

        // Ok passes through try_task untouched.
        let ok = rt.try_task(|| Ok::<_, ParseError>(42)).name("fine").await;
        assert_eq!(ok.await.expect("try_task returning Ok"), 42);
        rt.shutdown().await;
    });
}

/// Checks that `result` is `DependencyFailed` for task `id` named `name` whose root is
/// the task `root` named `root_name`.
fn assert_dependency_failed<T: fmt::Debug>(
    result: Result<T, TaskError>,
    id: TaskId,
    name: &str,
    root: TaskId,
    root_name: &str,
) {
    let err = result.expect_err(&format!("{name} must fail: it depends on {root_name}"));
    match &err {
        TaskError::DependencyFailed {
            task,
            name: own,
            root: r,
            root_name: rn,
            cause,
        } => {
            assert_eq!(*task, id, "{name}: wrong task in error");
            assert_eq!(name_of(own), Some(name));
            assert_eq!(*r, root, "{name}: wrong root task");
            assert_eq!(name_of(rn), Some(root_name));
            assert_eq!(
                cause.root(),
                root,
                "{name}: cause does not lead to the root"
            );
        }
        other => panic!("{name}: expected TaskError::DependencyFailed, got {other:?}"),
    }
    assert_eq!(err.task(), id);
    assert_eq!(err.root(), root);
    let message = err.to_string();
    assert!(
        message.contains(name),
        "message does not name the task {name}: {message}"
    );
    assert!(
        message.contains(root_name),
        "message does not name the root {root_name}: {message}"
    );
}

#[test]
fn panic_in_the_middle_of_a_graph_fails_exactly_its_transitive_dependents() {
    //            source
    //              |
    //             top
    //            /    \
    //   (panics) left  right ---- side
    //            \    /
    //             join
    //              |
    //           below-0 -> below-1 -> ... -> below-4
    //
    //   unrelated-0 .. unrelated-9 (no edges)
    let _guard = hang_guard(
        "panic_in_the_middle_of_a_graph_fails_exactly_its_dependents",
        30,
    );
    let rt = Runtime::builder().workers(2).build();
    let runs = Runs::default();

    rt.block_on(async {
        // Everything is wired before anything runs: the source waits for the test.
        let (open, gate) = oneshot::channel::<()>();
        let source_body = runs.body("source");
        let source = rt
            .task_async(async move {
                gate.await.expect("gate sender dropped");
                source_body();
            })
            .name("source")
            .await;
        let top = rt
            .task(runs.body("top"))
            .name("top")
            .after([source.id()])
            .await;
        let left_body = runs.body("left");
        let left: Task<()> = rt
            .task(move || {
                left_body();
                panic!("left exploded");
            })
            .name("left")
            .after([top.id()])
            .await;
        let right = rt
            .task(runs.body("right"))
            .name("right")
            .after([top.id()])
            .await;
        let side = rt
            .task(runs.body("side"))
            .name("side")
            .after([right.id()])
            .await;
        let join = rt
            .task(runs.body("join"))
            .name("join")
            .after([left.id(), right.id()])
            .await;
        let mut below = Vec::new();
        let mut prev = join.id();
        for k in 0..5 {
            let name = format!("below-{k}");
            let task = rt.task(runs.body(&name)).name(name).after([prev]).await;
            prev = task.id();
            below.push(task);
        }
        let mut unrelated = Vec::new();
        for k in 0..10 {
            let name = format!("unrelated-{k}");
            unrelated.push(rt.task(runs.body(&name)).name(name).await);
        }

        open.send(()).expect("source is waiting");

        let left_id = left.id();
        match left.await {
            Err(
                ref err @ TaskError::Panicked {
                    task,
                    ref name,
                    ref message,
                },
            ) => {
                assert_eq!(task, left_id);
                assert_eq!(name_of(name), Some("left"));
                assert!(
                    message.contains("left exploded"),
                    "panic message lost: {message}"
                );
                assert_eq!(err.task(), left_id);
                assert_eq!(err.root(), left_id);
                let shown = err.to_string();
                assert!(
                    shown.contains("left"),
                    "message does not name the task: {shown}"
                );
            }
            other => panic!("expected TaskError::Panicked, got {other:?}"),
        }
        let join_id = join.id();
        assert_dependency_failed(join.await, join_id, "join", left_id, "left");
        for (k, task) in below.into_iter().enumerate() {
            let id = task.id();
            assert_dependency_failed(task.await, id, &format!("below-{k}"), left_id, "left");
        }

        source.await.expect("source");
        top.await.expect("top");
        right.await.expect("right");
        side.await.expect("side");
        for task in unrelated {
            task.await.expect("unrelated task");
        }
        rt.shutdown().await;
    });

    for name in ["source", "top", "left", "right", "side"] {
        assert_eq!(runs.get(name), 1, "{name} must run exactly once");
    }
    for k in 0..10 {
        assert_eq!(
            runs.get(&format!("unrelated-{k}")),
            1,
            "unrelated-{k} must run once"
        );
    }
    assert_eq!(runs.get("join"), 0, "a dependent of a failed task ran");
    for k in 0..5 {
        assert_eq!(
            runs.get(&format!("below-{k}")),
            0,
            "a transitive dependent ran"
        );
    }
}

#[test]
fn dependents_wired_after_the_failure_also_fail() {
    let _guard = hang_guard("dependents_wired_after_the_failure_also_fail", 30);
    let rt = Runtime::builder().workers(2).build();
    let runs = Runs::default();

    rt.block_on(async {
        let bad = rt
            .try_task(|| Err::<(), _>("no such file"))
            .name("open-file")
            .await;
        let bad_id = bad.id();
        // The failure has happened, but the handle is still held, so the slot is not
        // reclaimed and the id is not stale: new dependents must see the failure.
        rt.wait(bad_id).await;

        let direct = rt
            .task(runs.body("direct"))
            .name("direct")
            .after([bad_id])
            .await;
        let indirect = rt
            .task(runs.body("indirect"))
            .name("indirect")
            .after([direct.id(), TaskId::INVALID])
            .await;
        let fine = rt.task(runs.body("fine")).name("fine").await;

        let (direct_id, indirect_id) = (direct.id(), indirect.id());
        assert_dependency_failed(direct.await, direct_id, "direct", bad_id, "open-file");
        assert_dependency_failed(indirect.await, indirect_id, "indirect", bad_id, "open-file");
        fine.await.expect("unrelated task");
        assert!(matches!(bad.await, Err(TaskError::Failed { task, .. }) if task == bad_id));
        rt.shutdown().await;
    });

    assert_eq!(runs.get("direct"), 0);
    assert_eq!(runs.get("indirect"), 0);
    assert_eq!(runs.get("fine"), 1);
}

#[test]
fn a_failure_does_not_stop_later_work() {
    let _guard = hang_guard("a_failure_does_not_stop_later_work", 30);
    let rt = Runtime::builder().workers(2).build();
    let runs = Runs::default();

    rt.block_on(async {
        // Many independent failures and panics interleaved with good tasks.
        let mut bad = Vec::new();
        let mut good = Vec::new();
        for k in 0..200u32 {
            if k % 4 == 0 {
                bad.push(
                    rt.try_task(move || Err::<u32, _>(ParseError { line: k }))
                        .await,
                );
            } else if k % 4 == 1 {
                bad.push(rt.task(move || -> u32 { panic!("task {k} panics") }).await);
            } else {
                let body = runs.body("good");
                good.push((
                    k,
                    rt.task(move || {
                        body();
                        k
                    })
                    .await,
                ));
            }
        }
        for task in bad {
            let id = task.id();
            let err = task.await.expect_err("a failing body");
            assert_eq!(err.task(), id);
            assert!(
                matches!(err, TaskError::Failed { .. } | TaskError::Panicked { .. }),
                "{err:?}"
            );
        }
        for (k, task) in good {
            assert_eq!(task.await.expect("good task"), k);
        }
        rt.shutdown().await;
    });
    assert_eq!(runs.get("good"), 100);
}
