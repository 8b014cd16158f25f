//! The in-place parts of a `Submission` that layers above the executor use (streams):
//! dependencies added after `submit()` count, and a watch made by `poll_watched` is a
//! holder like any other (keeps a failure readable, and frees its slot when dropped).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::Context;

use futures::channel::oneshot;
use taskweave::{Runtime, Task, TaskError, TaskWatch};

mod support;
use support::hang_guard;

/// Polls `submission` once with `poll_watched` (from inside `block_on`).
fn watched<T, B>(
    submission: &mut taskweave::Submission<'_, T, B>,
) -> impl Future<Output = (Task<T>, Option<TaskWatch>)>
where
    B: Future<Output = Result<T, taskweave::BoxError>> + Send + 'static,
    T: Send + 'static,
{
    std::future::poll_fn(move |cx: &mut Context<'_>| submission.poll_watched(cx))
}

#[test]
fn dependencies_added_to_a_submission_in_place_are_waited_for() {
    let _guard = hang_guard(
        "dependencies_added_to_a_submission_in_place_are_waited_for",
        60,
    );
    let rt = Runtime::builder().workers(2).build();
    let (release, gate) = oneshot::channel::<()>();
    let first_done = Arc::new(AtomicBool::new(false));
    let done = first_done.clone();
    let first = rt
        .task_async(async move {
            gate.await.unwrap();
            done.store(true, SeqCst);
        })
        .submit_blocking();
    let done = first_done.clone();
    let mut second = rt.task(move || done.load(SeqCst)).submit();
    second.after([first.id()]);
    let second = rt.block_on(&mut second);
    assert!(!second.is_finished(), "waits for `first`, which is gated");
    release.send(()).unwrap();
    assert!(second.wait_blocking().unwrap(), "ran after `first`");
}

#[test]
#[should_panic(expected = "already resolved")]
fn adding_dependencies_after_the_submission_resolved_panics() {
    let rt = Runtime::builder().workers(1).build();
    let mut submission = rt.task(|| ()).submit();
    let task = rt.block_on(&mut submission);
    drop(task);
    submission.after([taskweave::TaskId::INVALID]);
}

#[test]
fn a_watch_from_poll_watched_keeps_a_failure_after_the_handle_is_dropped() {
    let _guard = hang_guard(
        "a_watch_from_poll_watched_keeps_a_failure_after_the_handle_is_dropped",
        60,
    );
    let rt = Runtime::builder().workers(1).window(4).build();
    let mut submission = rt
        .try_task(|| Err::<(), _>("broken"))
        .name("fails")
        .submit();
    let (task, watch) = rt.block_on(watched(&mut submission));
    let watch = watch.expect("accepted");
    assert_eq!(watch.id(), task.id());
    drop(task);
    let outcome = rt.block_on(watch.clone());
    let error = outcome.unwrap_err();
    assert_eq!(error.name(), Some("fails"));
    // Long after: the watch still holds the slot, so a dependent still sees the failure.
    for _ in 0..16 {
        let _ = rt.task(|| ()).submit_blocking().wait_blocking();
    }
    let dependent = rt.task(|| ()).after([watch.id()]).submit_blocking();
    assert!(matches!(
        dependent.wait_blocking(),
        Err(TaskError::DependencyFailed { .. })
    ));
}

#[test]
fn watches_from_poll_watched_free_their_slots_when_dropped() {
    let _guard = hang_guard(
        "watches_from_poll_watched_free_their_slots_when_dropped",
        60,
    );
    // Two slots: a watch that leaked its holder would fill the window and hang.
    let rt = Runtime::builder().workers(1).window(2).build();
    rt.block_on(async {
        for i in 0..1_000u32 {
            let mut submission = rt.task(move || i).submit();
            let (task, watch) = watched(&mut submission).await;
            let watch = watch.expect("accepted");
            assert_eq!(task.await.unwrap(), i);
            assert!(watch.await.is_ok());
        }
    });
}

#[test]
fn a_rejected_submission_has_no_watch() {
    let rt = Runtime::builder().workers(1).build();
    rt.shutdown_blocking();
    let mut submission = rt.task(|| ()).submit();
    let (task, watch) = rt.block_on(watched(&mut submission));
    assert!(watch.is_none());
    assert!(matches!(
        task.wait_blocking(),
        Err(TaskError::Shutdown { .. })
    ));
}
