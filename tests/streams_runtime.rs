//! The runtime's own stream layer: `rt.default_stream()` is one stream however it is
//! reached (and keeps its order when every handle of it is dropped), the runtime's
//! `synchronize` waits for the work of every stream, errors on the default stream
//! reach `rt.streams().synchronize()`, and the layer is dropped with the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;

use futures::channel::oneshot;
use taskweave::Runtime;
use taskweave::streams::{RuntimeStreams, Streams};

mod support;
use support::hang_guard;

#[test]
fn the_default_stream_is_one_stream_however_it_is_reached() {
    let _guard = hang_guard("the_default_stream_is_one_stream_however_it_is_reached", 60);
    let rt = Runtime::builder().workers(2).build();
    assert!(rt.default_stream().same_stream(&rt.default_stream()));
    assert!(
        rt.default_stream()
            .same_stream(Streams::new(&rt).default_stream())
    );
    assert!(
        rt.streams()
            .default_stream()
            .same_stream(&rt.clone().default_stream())
    );
    assert_eq!(rt.default_stream().name(), "default");
    let other = Runtime::builder().workers(1).build();
    assert!(!other.default_stream().same_stream(&rt.default_stream()));
}

#[test]
fn the_default_stream_keeps_its_order_when_every_handle_is_dropped() {
    let _guard = hang_guard(
        "the_default_stream_keeps_its_order_when_every_handle_is_dropped",
        60,
    );
    let rt = Runtime::builder().workers(2).build();
    let (open, gate) = oneshot::channel::<()>();
    let first_done = Arc::new(AtomicBool::new(false));
    let done = first_done.clone();
    // Launched through a handle that is dropped at once.
    let first = rt
        .default_stream()
        .task_async(async move {
            gate.await.unwrap();
            done.store(true, SeqCst);
        })
        .submit_blocking();
    drop(first);
    let done = first_done.clone();
    let second = rt
        .default_stream()
        .task(move || done.load(SeqCst))
        .submit_blocking();
    assert!(!second.is_finished(), "waits for the gated first launch");
    open.send(()).unwrap();
    assert!(
        second.wait_blocking().unwrap(),
        "ran after the first launch"
    );
}

#[test]
fn runtime_synchronize_waits_for_every_stream() {
    let _guard = hang_guard("runtime_synchronize_waits_for_every_stream", 60);
    const PER_STREAM: u64 = 200;
    let rt = Runtime::builder().workers(2).build();
    let streams = rt.streams();
    let lanes = [
        rt.default_stream(),
        streams.create_stream("a"),
        streams.create_stream("b"),
    ];
    let finished = Arc::new(AtomicU64::new(0));
    let mut gates = Vec::new();
    rt.block_on(async {
        for lane in &lanes {
            let (open, gate) = oneshot::channel::<()>();
            gates.push(open);
            // Each stream starts with a gated launch, so none of its work can finish
            // before the gates open.
            let f = finished.clone();
            drop(
                lane.task_async(async move {
                    gate.await.unwrap();
                    f.fetch_add(1, SeqCst);
                })
                .await,
            );
            for _ in 1..PER_STREAM {
                let f = finished.clone();
                drop(lane.task(move || f.fetch_add(1, SeqCst)).await);
            }
        }
        // A worker stream of a fork, joined into the default stream.
        let mut fork = streams.parallel(&lanes[0]);
        let worker = fork.worker();
        for _ in 0..PER_STREAM {
            let f = finished.clone();
            drop(worker.task(move || f.fetch_add(1, SeqCst)).await);
        }
        fork.join();
    });
    let total = 4 * PER_STREAM;
    assert!(finished.load(SeqCst) < total, "gated: not finished yet");
    let (started, wait_started) = mpsc::channel();
    let synchronizer = {
        let (rt, finished) = (rt.clone(), finished.clone());
        std::thread::spawn(move || {
            started.send(()).unwrap();
            rt.synchronize_blocking();
            finished.load(SeqCst)
        })
    };
    wait_started.recv().unwrap();
    for open in gates {
        open.send(()).unwrap();
    }
    assert_eq!(
        synchronizer.join().unwrap(),
        total,
        "Runtime::synchronize returned before every stream's work had finished"
    );
    assert!(lanes.iter().all(|lane| lane.query()));
}

#[test]
fn a_failure_on_the_default_stream_reaches_the_runtime_wide_synchronize() {
    let _guard = hang_guard(
        "a_failure_on_the_default_stream_reaches_the_runtime_wide_synchronize",
        60,
    );
    let rt = Runtime::builder().workers(2).build();
    let probe = rt
        .default_stream()
        .try_task(|| Err::<(), _>("no device"))
        .name("probe")
        .submit_blocking();
    drop(probe);
    let after = rt.default_stream().task(|| ()).submit_blocking();
    assert!(after.wait_blocking().is_err(), "sticky: DependencyFailed");
    let error = rt.streams().synchronize_blocking().unwrap_err();
    assert_eq!(error.stream(), "default");
    assert_eq!(error.task_name(), Some("probe"));
    // Other streams carry on.
    let other = rt.streams().create_stream("other");
    assert_eq!(
        other.task(|| 3).submit_blocking().wait_blocking().unwrap(),
        3
    );
}

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn the_stream_layer_is_dropped_with_the_runtime() {
    let _guard = hang_guard("the_stream_layer_is_dropped_with_the_runtime", 60);
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(1).build();
    let d = drops.clone();
    // The default stream holds its last launch (its tail), whose output is
    // never taken: it is dropped only when the stream layer lets the task go.
    drop(
        rt.default_stream()
            .task(move || Tracked(d))
            .submit_blocking(),
    );
    rt.synchronize_blocking();
    assert_eq!(drops.load(SeqCst), 0, "held as the default stream's tail");
    drop(rt);
    assert_eq!(drops.load(SeqCst), 1, "released with the runtime");
}
