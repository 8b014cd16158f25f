//! tokio interop: bodies awaiting tokio timers and I/O on a runtime built with a
//! tokio handle, orchestration from inside tokio, and blocking work kept off the
//! workers.

use std::sync::mpsc;
use std::time::Duration;

use taskweave::Runtime;

#[test]
fn a_body_awaiting_a_tokio_timer_completes() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = Runtime::builder()
        .workers(2)
        .tokio_handle(tokio_rt.handle().clone())
        .build();
    let task = rt
        .task_async(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let (mut a, mut b) = tokio::io::duplex(64);
            tokio::io::AsyncWriteExt::write_all(&mut a, b"ping")
                .await
                .unwrap();
            let mut buf = [0u8; 4];
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut buf)
                .await
                .unwrap();
            buf
        })
        .name("timer-and-io")
        .submit_blocking();
    assert_eq!(&task.wait_blocking().unwrap(), b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_runs_inside_tokio_main() {
    let rt = Runtime::builder()
        .workers(2)
        .tokio_handle(tokio::runtime::Handle::current())
        .build();
    let a = rt.task(|| 20).name("a").await;
    let b = rt
        .task_async(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            22
        })
        .name("b")
        .await;
    let sum = rt.dataflow((a, b), |(x, y)| x + y).name("sum").await;
    assert_eq!(sum.await.unwrap(), 42);
    // Drop the runtime off the tokio worker: dropping joins threads.
    tokio::task::spawn_blocking(move || drop(rt)).await.unwrap();
}

#[test]
fn blocking_work_does_not_hold_a_worker() {
    // One worker. The blocking task waits for a message that only a later, ordinary
    // task sends: if the blocking body ran on the worker, this would deadlock.
    let rt = Runtime::builder().workers(1).build();
    let (tx, rx) = mpsc::channel::<u32>();
    let blocking = rt
        .task_blocking(move || {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            (rx.recv().unwrap(), thread)
        })
        .name("blocking-recv")
        .submit_blocking();
    let sender = rt
        .task(move || tx.send(7).unwrap())
        .name("send")
        .submit_blocking();
    sender.wait_blocking().unwrap();
    let (value, thread) = blocking.wait_blocking().unwrap();
    assert_eq!(value, 7);
    assert!(
        !thread.starts_with("taskweave-worker"),
        "blocking body ran on worker thread {thread}"
    );
}

#[test]
fn a_panicking_blocking_body_fails_its_task() {
    let rt = Runtime::builder().workers(1).build();
    let task = rt
        .task_blocking(|| -> u32 { panic!("disk gone") })
        .name("read-file")
        .submit_blocking();
    let error = task.wait_blocking().unwrap_err();
    assert_eq!(error.name(), Some("read-file"));
}
