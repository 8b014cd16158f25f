//! Shutdown and drop: `shutdown()` drains every submitted task, dropping the runtime
//! with work outstanding ends every task exactly once (handles resolve, bodies that
//! never started never run, also when the last clone is dropped inside a body), and
//! submitting after shutdown began (or waiting for a slot when it begins) yields
//! `TaskError::Shutdown`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self};

use futures::channel::oneshot;
use taskweave::{Runtime, Task, TaskError, TaskId};

mod support;
use support::hang_guard;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Increments its counter when dropped.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// `true` if `err` is what a task that never ran may end with when the runtime is
/// dropped: cancelled itself, or failed because a dependency was cancelled.
fn is_cancellation(err: &TaskError) -> bool {
    match err {
        TaskError::Cancelled { .. } => true,
        TaskError::DependencyFailed { cause, .. } => is_cancellation(cause),
        _ => false,
    }
}

#[test]
fn shutdown_drains_every_submitted_task() {
    const TASKS: usize = 1_000;
    let _guard = hang_guard("shutdown_drains_every_submitted_task", 30);
    let rt = Runtime::builder().workers(2).build();
    let runs = counter();

    rt.block_on(async {
        // One task that cannot end until the test opens it, and work that depends on it.
        let (open, gate) = oneshot::channel::<()>();
        let gated = {
            let runs = runs.clone();
            rt.task_async(async move {
                gate.await.expect("gate sender dropped");
                runs.fetch_add(1, SeqCst);
                usize::MAX
            })
            .name("gated")
            .await
        };
        let mut kept: Vec<(usize, Task<usize>)> = Vec::new();
        let mut prev = gated.id();
        for i in 0..TASKS {
            let runs = runs.clone();
            let submit = rt.task(move || {
                runs.fetch_add(1, SeqCst);
                i
            });
            // Every tenth task extends a chain hanging off the gated task.
            let task = if i % 10 == 0 {
                submit.after([prev]).await
            } else {
                submit.await
            };
            if i % 10 == 0 {
                prev = task.id();
            }
            // Keep every other handle; drop the rest (fire and forget).
            if i % 2 == 0 {
                kept.push((i, task));
            }
        }

        let mut shutdown = std::pin::pin!(rt.shutdown());
        for _ in 0..3 {
            assert!(
                futures::poll!(shutdown.as_mut()).is_pending(),
                "shutdown did not drain"
            );
        }
        open.send(()).expect("gated task is waiting");
        shutdown.await;
        // Drained: every body has run by the time shutdown returns.
        assert_eq!(runs.load(SeqCst), TASKS + 1);

        assert_eq!(gated.await.expect("gated task"), usize::MAX);
        for (i, task) in kept {
            assert_eq!(task.await.expect("task submitted before shutdown"), i);
        }
    });
    assert_eq!(runs.load(SeqCst), TASKS + 1);
}

#[test]
fn shutdown_blocking_drains_work_submitted_from_other_threads() {
    const THREADS: usize = 4;
    const TASKS_EACH: usize = 2_000;
    let _guard = hang_guard(
        "shutdown_blocking_drains_work_submitted_from_other_threads",
        60,
    );
    let rt = Runtime::builder().workers(2).window(256).build();
    let runs = counter();
    let submitters: Vec<_> = (0..THREADS)
        .map(|_| {
            let (rt, runs) = (rt.clone(), runs.clone());
            std::thread::spawn(move || {
                for _ in 0..TASKS_EACH {
                    let runs = runs.clone();
                    let _fire_and_forget = rt
                        .task(move || {
                            runs.fetch_add(1, SeqCst);
                        })
                        .submit_blocking();
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().expect("submitter thread");
    }
    rt.shutdown_blocking();
    assert_eq!(runs.load(SeqCst), THREADS * TASKS_EACH);
}

#[test]
fn dropping_the_runtime_cancels_outstanding_tasks_exactly_once() {
    const DEPENDENTS: usize = 100;
    let _guard = hang_guard(
        "dropping_the_runtime_cancels_outstanding_tasks_exactly_once",
        30,
    );
    let rt = Runtime::builder().workers(2).build();
    let blocker_runs = counter();
    let blocker_future_drops = counter();
    let dependent_runs = counter();

    // A task parked on a channel the test never completes...
    let (_never, blocked_on) = oneshot::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocker = {
        let (runs, flag) = (blocker_runs.clone(), DropFlag(blocker_future_drops.clone()));
        rt.task_async(async move {
            let _flag = flag;
            started_tx.send(()).expect("test is listening");
            let _ = blocked_on.await;
            runs.fetch_add(1, SeqCst);
        })
        .name("blocker")
        .submit_blocking()
    };
    started.recv().expect("blocker started");

    // ...100 direct dependents of it, and a chain of dependents below the first one.
    let mut dependents: Vec<(String, Task<()>)> = Vec::new();
    for k in 0..DEPENDENTS {
        let runs = dependent_runs.clone();
        let after = if k < DEPENDENTS / 2 {
            blocker.id()
        } else {
            dependents[k - DEPENDENTS / 2].1.id()
        };
        let name = format!("dependent-{k}");
        let task = rt
            .task(move || {
                runs.fetch_add(1, SeqCst);
            })
            .name(name.clone())
            .after([after, TaskId::INVALID])
            .submit_blocking();
        dependents.push((name, task));
    }

    // ...and fire-and-forget dependents (no handle): their bodies must be dropped
    // unrun, once each.
    let forgotten_drops = counter();
    for _ in 0..DEPENDENTS {
        let (runs, flag) = (dependent_runs.clone(), DropFlag(forgotten_drops.clone()));
        let _fire_and_forget = rt
            .task(move || {
                let _flag = flag;
                runs.fetch_add(1, SeqCst);
            })
            .after([blocker.id()])
            .submit_blocking();
    }
    assert_eq!(forgotten_drops.load(SeqCst), 0);

    // The last clone goes: the runtime shuts down and cancels what has not run.
    let blocker_id = blocker.id();
    drop(rt);
    // Dropping the last clone joined the workers: cancellation is complete.
    assert_eq!(
        forgotten_drops.load(SeqCst),
        DEPENDENTS,
        "every cancelled body is dropped exactly once"
    );

    match futures::executor::block_on(blocker) {
        Err(TaskError::Cancelled { task, name }) => {
            assert_eq!(task, blocker_id);
            assert_eq!(name.as_deref(), Some("blocker"));
        }
        other => panic!("blocker: expected Cancelled, got {other:?}"),
    }
    for (name, task) in dependents {
        let id = task.id();
        let err = futures::executor::block_on(task).expect_err("a dependent of a cancelled task");
        assert!(
            is_cancellation(&err),
            "{name}: expected a cancellation, got {err:?}"
        );
        assert_eq!(err.task(), id, "{name}: error names the wrong task");
    }
    assert_eq!(
        blocker_runs.load(SeqCst),
        0,
        "the blocker ran past its await"
    );
    assert_eq!(
        blocker_future_drops.load(SeqCst),
        1,
        "the parked body must be dropped once"
    );
    assert_eq!(
        dependent_runs.load(SeqCst),
        0,
        "bodies that never started must never run"
    );
}

#[test]
fn dropping_the_runtime_while_bodies_run_ends_every_task_exactly_once() {
    const TASKS: usize = 300;
    let _guard = hang_guard(
        "dropping_the_runtime_while_bodies_run_ends_every_task_once",
        30,
    );
    let rt = Runtime::builder().workers(2).build();
    assert_eq!(rt.workers(), 2);

    // Two synchronous bodies occupy both workers until released.
    let (started_tx, started) = mpsc::channel();
    let mut releases = Vec::new();
    let mut blockers = Vec::new();
    for k in 0..2 {
        let (release, released) = mpsc::channel::<()>();
        let started_tx = started_tx.clone();
        blockers.push(
            rt.task(move || {
                started_tx.send(()).expect("test is listening");
                released.recv().expect("test releases the blocker");
                k
            })
            .name(format!("blocker-{k}"))
            .submit_blocking(),
        );
        releases.push(release);
    }
    started.recv().expect("first blocker running");
    started.recv().expect("second blocker running");

    // Work queued behind them: independent tasks and dependents of the first blocker.
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..TASKS).map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let runs = runs.clone();
        let submit = rt.task(move || {
            runs[i].fetch_add(1, SeqCst);
            i
        });
        let deps = if i % 3 == 0 {
            blockers[0].id()
        } else {
            TaskId::INVALID
        };
        tasks.push(submit.after([deps]).submit_blocking());
    }

    // Drop the last clone on another thread (it may wait for the running bodies), then
    // release the bodies. Whatever the interleaving, every task must end exactly once:
    // a task whose handle says Ok ran once, a cancelled one never ran.
    let dropper = std::thread::spawn(move || drop(rt));
    for release in releases {
        release.send(()).expect("blocker is waiting");
    }
    dropper.join().expect("dropping the runtime");

    for (k, blocker) in blockers.into_iter().enumerate() {
        assert_eq!(
            futures::executor::block_on(blocker).expect("a running body finishes"),
            k,
            "blocker-{k}"
        );
    }
    let mut completed = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match futures::executor::block_on(task) {
            Ok(value) => {
                assert_eq!(value, i);
                assert_eq!(
                    runs[i].load(SeqCst),
                    1,
                    "task {i} completed but ran {} times",
                    runs[i].load(SeqCst)
                );
                completed += 1;
            }
            Err(err) => {
                assert!(
                    is_cancellation(&err),
                    "task {i}: expected a cancellation, got {err:?}"
                );
                assert_eq!(
                    runs[i].load(SeqCst),
                    0,
                    "task {i} was cancelled after it ran"
                );
            }
        }
    }
    let total_runs: usize = runs.iter().map(|r| r.load(SeqCst)).sum();
    assert_eq!(
        total_runs, completed,
        "a body ran without its handle reporting it"
    );
}

#[test]
fn a_submission_waiting_for_a_slot_is_refused_at_shutdown() {
    let _guard = hang_guard("a_submission_waiting_for_a_slot_is_refused_at_shutdown", 30);
    let rt = Runtime::builder().workers(2).window(2).build();
    let runs = counter();

    rt.block_on(async {
        // Fill the window with tasks that wait for the test.
        let mut opens = Vec::new();
        let mut gated = Vec::new();
        for _ in 0..rt.window() {
            let (open, gate) = oneshot::channel::<()>();
            gated.push(
                rt.task_async(async move { gate.await.expect("gate") })
                    .await,
            );
            opens.push(open);
        }
        let waiting_runs = runs.clone();
        let mut waiting = std::pin::pin!(
            rt.task(move || {
                waiting_runs.fetch_add(1, SeqCst);
            })
            .name("waiting")
            .submit()
        );
        assert!(futures::poll!(waiting.as_mut()).is_pending());

        // Shutdown begins (and waits for the gated tasks): the waiting submission is
        // turned away instead of waiting for a slot forever.
        let mut shutdown = std::pin::pin!(rt.shutdown());
        assert!(futures::poll!(shutdown.as_mut()).is_pending());
        let refused = waiting.await;
        match refused.await {
            Err(TaskError::Shutdown { name }) => assert_eq!(name.as_deref(), Some("waiting")),
            other => panic!("expected TaskError::Shutdown, got {other:?}"),
        }

        for open in opens {
            open.send(()).expect("gated task is waiting");
        }
        shutdown.await;
        for task in gated {
            task.await.expect("task submitted before shutdown");
        }
    });
    assert_eq!(runs.load(SeqCst), 0, "a refused submission ran");
}

#[test]
fn last_runtime_clone_dropped_inside_a_task_body() {
    const DEPENDENTS: usize = 10;
    let _guard = hang_guard("last_runtime_clone_dropped_inside_a_task_body", 30);
    let rt = Runtime::builder().workers(2).build();
    let dependent_runs = counter();

    // A parked task with dependents: outstanding when the runtime stops.
    let (_never, parked_on) = oneshot::channel::<()>();
    let parked = rt
        .task_async(async move {
            let _ = parked_on.await;
        })
        .name("parked")
        .submit_blocking();
    let mut dependents = Vec::new();
    for _ in 0..DEPENDENTS {
        let runs = dependent_runs.clone();
        let task = rt
            .task(move || {
                runs.fetch_add(1, SeqCst);
            })
            .after([parked.id()])
            .submit_blocking();
        dependents.push(task);
    }

    // A body that owns a clone and waits until it is the last one, then drops it: the
    // runtime stops from one of its own workers (which cannot join itself).
    let (go_tx, go) = mpsc::channel::<()>();
    let inner = rt.clone();
    let dropper = rt
        .task(move || {
            go.recv().expect("test says go");
            drop(inner);
            "dropped"
        })
        .name("dropper")
        .submit_blocking();
    drop(rt);
    go_tx.send(()).expect("dropper is waiting");

    assert_eq!(
        futures::executor::block_on(dropper).expect("the dropping body finishes"),
        "dropped"
    );
    let err = futures::executor::block_on(parked).expect_err("parked task");
    assert!(
        matches!(err, TaskError::Cancelled { .. }),
        "parked: expected Cancelled, got {err:?}"
    );
    for task in dependents {
        let err = futures::executor::block_on(task).expect_err("dependent of a cancelled task");
        assert!(
            is_cancellation(&err),
            "expected a cancellation, got {err:?}"
        );
    }
    assert_eq!(dependent_runs.load(SeqCst), 0);
}

#[test]
fn submitting_after_shutdown_yields_shutdown() {
    let _guard = hang_guard("submitting_after_shutdown_yields_shutdown", 30);
    let rt = Runtime::builder().workers(2).build();
    let runs = counter();
    let body = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, SeqCst);
            1
        }
    };

    // Submitted while shutdown is waiting for an outstanding task: refused.
    rt.block_on(async {
        let (open, gate) = oneshot::channel::<()>();
        let gated = rt
            .task_async(async move { gate.await.expect("gate") })
            .name("gated")
            .await;
        let mut shutdown = std::pin::pin!(rt.shutdown());
        assert!(futures::poll!(shutdown.as_mut()).is_pending());
        let late = rt.task(body(&runs)).name("late").await;
        assert!(
            matches!(late.await, Err(TaskError::Shutdown { .. })),
            "submitted during shutdown"
        );
        open.send(()).expect("gated task is waiting");
        shutdown.await;
        gated.await.expect("gated task submitted before shutdown");
    });

    // After shutdown: every way of submitting is refused, from every clone.
    let task = rt.task(body(&runs)).name("after").submit_blocking();
    assert!(matches!(
        task.wait_blocking(),
        Err(TaskError::Shutdown { .. })
    ));

    let async_submit = futures::executor::block_on(async {
        let task = rt.task(body(&runs)).await;
        task.await
    });
    assert!(matches!(async_submit, Err(TaskError::Shutdown { .. })));

    let clone = rt.clone();
    let runs2 = runs.clone();
    let from_thread = std::thread::spawn(move || {
        let input = clone.task(body(&runs2)).submit_blocking();
        let flow = clone.dataflow(input, |x: i32| x + 1).submit_blocking();
        futures::executor::block_on(flow)
    })
    .join()
    .expect("submitting thread");
    assert!(
        matches!(from_thread, Err(TaskError::Shutdown { .. })),
        "{from_thread:?}"
    );

    // Shutting down twice is harmless.
    rt.shutdown_blocking();
    assert_eq!(runs.load(SeqCst), 0, "a body submitted after shutdown ran");
}
