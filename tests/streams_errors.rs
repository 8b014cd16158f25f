//! Failures on streams: a failed task fails the later launches on its stream
//! (`DependencyFailed` naming it) even when every handle was dropped and its slot
//! would otherwise be reclaimed; `synchronize` reports the root cause naming the
//! stream; other streams carry on; events, scoped streams and the runtime-wide
//! synchronize report it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use taskweave::streams::{Event, Stream, Streams};
use taskweave::{Runtime, TaskError};

mod support;
use support::hang_guard;

#[derive(Debug)]
struct Overheated;

impl std::fmt::Display for Overheated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("core overheated")
    }
}

impl std::error::Error for Overheated {}

#[test]
fn a_failure_fails_later_launches_on_its_stream_only() {
    let _guard = hang_guard("failure_fails_later_launches", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (bad, good) = (streams.create_stream("bad"), streams.create_stream("good"));
    let ran_after_failure = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let before = bad.task(|| 1).name("before").await;
        let failing = bad
            .try_task(|| Err::<u32, _>(Overheated))
            .name("kernel-a")
            .await;
        let mut after = Vec::new();
        for i in 0..5 {
            let r = ran_after_failure.clone();
            after.push(
                bad.task(move || r.fetch_add(1, SeqCst))
                    .name(format!("after-{i}"))
                    .await,
            );
        }
        let unaffected: Vec<_> = {
            let mut v = Vec::new();
            for i in 0..5u32 {
                v.push(good.task(move || i).await);
            }
            v
        };

        assert_eq!(before.await.unwrap(), 1);
        assert!(matches!(failing.await, Err(TaskError::Failed { .. })));
        for (i, task) in after.into_iter().enumerate() {
            match task.await {
                Err(TaskError::DependencyFailed {
                    name, root_name, ..
                }) => {
                    assert_eq!(name.as_deref(), Some(format!("after-{i}").as_str()));
                    assert_eq!(root_name.as_deref(), Some("kernel-a"));
                }
                other => panic!("after-{i}: expected DependencyFailed, got {other:?}"),
            }
        }
        for (i, task) in unaffected.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i as u32);
        }

        let error = bad.synchronize().await.unwrap_err();
        assert_eq!(error.stream(), "bad");
        assert_eq!(error.task_name(), Some("kernel-a"));
        assert!(matches!(error.task_error(), TaskError::Failed { .. }));
        let message = error.to_string();
        assert!(message.contains("'bad'") && message.contains("kernel-a"));
        assert!(message.contains("core overheated"), "{message}");
        good.synchronize().await.unwrap();

        // Sticky: a later launch fails too, and synchronize keeps reporting it.
        let later = bad.task(|| ()).name("later").await;
        assert!(matches!(
            later.await,
            Err(TaskError::DependencyFailed { .. })
        ));
        assert_eq!(
            bad.synchronize().await.unwrap_err().task_name(),
            Some("kernel-a")
        );
    });
    assert_eq!(ran_after_failure.load(SeqCst), 0, "a dependent body ran");
}

#[test]
fn a_failure_stays_visible_after_its_handle_is_dropped_and_it_finished() {
    // Without the stream's watch of its tail, the failed task's slot would be
    // reclaimed (handle dropped, task finished) and a bare-id dependency on it would
    // count as done.
    let _guard = hang_guard("failure_stays_visible", 60);
    let rt = Runtime::builder().workers(2).window(8).build();
    let streams = Streams::new(&rt);
    let s = streams.create_stream("s");
    rt.block_on(async {
        let failing = s.try_task(|| Err::<(), _>("lost?")).name("root").await;
        let id = failing.id();
        drop(failing);
        rt.wait(id).await;
        // Churn the small window so a reclaimed slot would have been reused.
        for _ in 0..64 {
            drop(rt.task(|| ()).await.await);
        }
        let next = s.task(|| "ran").name("next").await;
        match next.await {
            Err(TaskError::DependencyFailed { root_name, .. }) => {
                assert_eq!(root_name.as_deref(), Some("root"))
            }
            other => panic!("the failure was lost: {other:?}"),
        }
        assert_eq!(s.synchronize().await.unwrap_err().task_name(), Some("root"));
    });
}

#[test]
fn a_panic_on_a_stream_is_its_error() {
    let _guard = hang_guard("panic_on_a_stream", 60);
    let rt = Runtime::builder().workers(1).build();
    let streams = Streams::new(&rt);
    let s = streams.create_stream("panicky");
    drop(
        s.task(|| panic!("index out of bounds"))
            .name("kernel-p")
            .submit_blocking(),
    );
    drop(s.task(|| ()).submit_blocking());
    let error = s.synchronize_blocking().unwrap_err();
    assert!(matches!(error.task_error(), TaskError::Panicked { .. }));
    assert_eq!(error.task_name(), Some("kernel-p"));
    assert!(!error.to_string().is_empty());
}

#[test]
fn a_failure_reaches_streams_that_wait_for_it_through_an_event() {
    let _guard = hang_guard("failure_through_event", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2, s3) = (
        streams.create_stream("s1"),
        streams.create_stream("s2"),
        streams.create_stream("s3"),
    );
    rt.block_on(async {
        drop(s1.try_task(|| Err::<(), _>("bad input")).name("load").await);
        let loaded = Event::new();
        loaded.record(&s1);
        let error = loaded.synchronize().await.unwrap_err();
        assert_eq!((error.stream(), error.task_name()), ("s1", Some("load")));
        s2.wait_event(&loaded);
        let consumer = s2.task(|| ()).name("consume").await;
        assert!(matches!(
            consumer.await,
            Err(TaskError::DependencyFailed { .. })
        ));
        let error = s2.synchronize().await.unwrap_err();
        assert_eq!(error.stream(), "s2");
        assert_eq!(error.task_name(), Some("load"), "the root cause, on s1");
        // s3 did not wait for it.
        assert_eq!(s3.task(|| 3).await.await.unwrap(), 3);
        s3.synchronize().await.unwrap();
    });
}

#[test]
fn runtime_wide_synchronize_reports_a_failed_stream() {
    let _guard = hang_guard("runtime_wide_synchronize", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let fine = streams.create_stream("fine");
    let broken = streams.create_stream("broken");
    drop(fine.task(|| ()).submit_blocking());
    drop(streams.default_stream().task(|| ()).submit_blocking());
    drop(
        broken
            .try_task(|| Err::<(), _>("nope"))
            .name("k")
            .submit_blocking(),
    );
    let error = streams.synchronize_blocking().unwrap_err();
    assert_eq!(error.stream(), "broken");
    assert_eq!(error.task_name(), Some("k"));
    fine.synchronize_blocking().unwrap();
    streams.default_stream().synchronize_blocking().unwrap();
}

#[test]
fn scoped_stream_returns_the_first_task_error() {
    let _guard = hang_guard("scoped_stream_error", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let body_finished = Arc::new(AtomicU64::new(0));
    let b = body_finished.clone();
    let outcome = rt.block_on(streams.with_named_stream("scope", |s| async move {
        drop(s.task(|| ()).name("ok").await);
        drop(
            s.try_task(|| Err::<(), _>("first"))
                .name("first-failure")
                .await,
        );
        drop(
            s.try_task(|| Err::<(), _>("second"))
                .name("second-failure")
                .await,
        );
        b.store(1, SeqCst);
        42
    }));
    let error = outcome.unwrap_err();
    assert_eq!(error.stream(), "scope");
    assert_eq!(error.task_name(), Some("first-failure"));
    assert_eq!(body_finished.load(SeqCst), 1);
}

#[test]
fn stream_parallel_branch_failure_reaches_the_launch_stream() {
    let _guard = hang_guard("branch_failure", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let main = streams.create_stream("main");
    rt.block_on(async {
        let branches = (0..2).map(|branch| {
            move |worker: Stream| async move {
                let name = format!("b{branch}");
                if branch == 0 {
                    drop(
                        worker
                            .try_task(|| Err::<(), _>("branch broke"))
                            .name(name)
                            .await,
                    );
                } else {
                    drop(worker.task(|| ()).name(name).await);
                }
            }
        });
        streams.stream_parallel(&main, branches).await;
        let after = main.task(|| ()).name("after-join").await;
        match after.await {
            Err(TaskError::DependencyFailed { root_name, .. }) => {
                assert_eq!(root_name.as_deref(), Some("b0"))
            }
            other => panic!("the branch failure was lost: {other:?}"),
        }
        assert_eq!(
            main.synchronize().await.unwrap_err().task_name(),
            Some("b0")
        );

        // The failed worker went back to the pool reset: a fork from a healthy stream
        // that reuses it starts clean.
        let healthy = streams.create_stream("healthy");
        let branches = (0..2).map(|i| {
            move |worker: Stream| async move { worker.task(move || i).await.await.unwrap() }
        });
        let outputs = streams.stream_parallel(&healthy, branches).await;
        assert_eq!(outputs, [0, 1]);
        healthy.synchronize().await.unwrap();
    });
}
