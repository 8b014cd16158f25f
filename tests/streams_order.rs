//! Stream order: launches on one stream run one at a time in launch order (under
//! load, under back-pressure, from several launching threads); different streams run
//! concurrently; dropping a stream handle loses nothing.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};

use futures::channel::oneshot;
use taskweave::Runtime;
use taskweave::streams::Streams;

mod support;
use support::hang_guard;

/// Some work, so that bodies are slower than launches.
fn busy(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// The body of launch `index` of a chain: it must find exactly `index` earlier
/// launches finished. A load and a store (not an RMW), so two launches that overlap
/// or run out of order show up as a wrong count.
fn chained(next: &AtomicU64, out_of_order: &AtomicU64, index: u64) {
    if next.load(Relaxed) != index {
        out_of_order.fetch_add(1, Relaxed);
    }
    next.store(index + 1, Relaxed);
}

#[test]
fn ten_thousand_queued_launches_run_in_launch_order() {
    let _guard = hang_guard("ten_thousand_queued_launches", 120);
    const LAUNCHES: u64 = 10_000;
    let rt = Runtime::builder().workers(2).window(16_384).build();
    let streams = Streams::new(&rt);
    let fifo = streams.create_stream("fifo");
    let next = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let (open_gate, gate) = oneshot::channel::<()>();
    rt.block_on(async {
        // Everything queues behind a gated first launch, so when the gate opens all
        // 10,000 are waiting at once and only the stream order can keep them in line.
        drop(fifo.task_async(async move { gate.await.unwrap() }).await);
        for index in 0..LAUNCHES {
            let (n, o) = (next.clone(), out_of_order.clone());
            drop(fifo.task(move || chained(&n, &o, index)).await);
        }
        assert_eq!(next.load(Relaxed), 0, "ran before the gated launch");
        open_gate.send(()).unwrap();
        fifo.synchronize().await.unwrap();
    });
    assert_eq!(out_of_order.load(Relaxed), 0, "a launch ran out of order");
    assert_eq!(next.load(Relaxed), LAUNCHES);
    assert!(fifo.query());
}

#[test]
fn ten_thousand_launches_run_in_launch_order_under_back_pressure() {
    let _guard = hang_guard("ten_thousand_launches_back_pressure", 120);
    const LAUNCHES: u64 = 10_000;
    // A small window and bodies much slower than a launch: the window is full most
    // of the time, so most launches wait for a slot (rule L2's reserved path).
    let rt = Runtime::builder().workers(2).window(64).build();
    let streams = Streams::new(&rt);
    let fifo = streams.create_stream("fifo");
    let next = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let noise = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        for index in 0..LAUNCHES {
            let (n, o) = (next.clone(), out_of_order.clone());
            drop(
                fifo.task(move || {
                    busy(3_000);
                    chained(&n, &o, index)
                })
                .await,
            );
            // Unordered work around the stream keeps both workers busy.
            let noise = noise.clone();
            drop(
                rt.task(move || noise.fetch_add(busy(100) & 1, Relaxed))
                    .await,
            );
        }
        fifo.synchronize().await.unwrap();
    });
    assert_eq!(out_of_order.load(Relaxed), 0, "a launch ran out of order");
    assert_eq!(next.load(Relaxed), LAUNCHES);
    assert!(fifo.query());
}

#[test]
fn launches_from_two_threads_on_one_stream_never_overlap() {
    let _guard = hang_guard("two_launcher_threads", 120);
    const PER_THREAD: u64 = 3_000;
    // A tiny window and slow bodies: both threads' launches keep waiting for a slot
    // at the same time, so the stream's reservation (rule L2) is what orders them.
    let rt = Runtime::builder().workers(2).window(8).build();
    let streams = Streams::new(&rt);
    let shared = streams.create_stream("shared");
    let running = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicU64::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let launchers: Vec<_> = (0..2u64)
        .map(|thread| {
            let (rt, s) = (rt.clone(), shared.clone());
            let (running, overlaps, log) = (running.clone(), overlaps.clone(), log.clone());
            std::thread::spawn(move || {
                rt.block_on(async {
                    for index in 0..PER_THREAD {
                        let (running, overlaps, log) =
                            (running.clone(), overlaps.clone(), log.clone());
                        drop(
                            s.task(move || {
                                if running.swap(true, SeqCst) {
                                    overlaps.fetch_add(1, SeqCst);
                                }
                                busy(2_000);
                                log.lock().unwrap().push((thread, index));
                                running.store(false, SeqCst);
                            })
                            .await,
                        );
                    }
                })
            })
        })
        .collect();
    for launcher in launchers {
        launcher.join().unwrap();
    }
    shared.synchronize_blocking().unwrap();
    assert_eq!(
        overlaps.load(SeqCst),
        0,
        "two launches of one stream overlapped"
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len() as u64, 2 * PER_THREAD);
    for thread in 0..2 {
        let mine: Vec<u64> = log
            .iter()
            .filter(|(t, _)| *t == thread)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(
            mine,
            (0..PER_THREAD).collect::<Vec<_>>(),
            "thread {thread}'s launches ran out of order"
        );
    }
}

#[test]
fn launches_waiting_for_a_slot_at_the_same_time_keep_their_order() {
    // Two launches on one stream are polled while the window is full, so both wait
    // for a slot at once; the first reserves the stream and the second must queue
    // behind it (rule L2) rather than choose the same predecessor.
    let _guard = hang_guard("launches_waiting_for_a_slot", 120);
    const WINDOW: u64 = 4;
    let rt = Runtime::builder()
        .workers(2)
        .window(WINDOW as usize)
        .build();
    let streams = Streams::new(&rt);
    for round in 0..20 {
        let s = streams.create_stream(format!("round-{round}"));
        let next = Arc::new(AtomicU64::new(0));
        let out_of_order = Arc::new(AtomicU64::new(0));
        let (open_gate, gate) = oneshot::channel::<()>();
        let (open_first, first_gate) = oneshot::channel::<()>();
        rt.block_on(async {
            drop(s.task_async(async move { gate.await.unwrap() }).await);
            // Fill the window behind the gate.
            for index in 0..WINDOW - 1 {
                let (n, o) = (next.clone(), out_of_order.clone());
                drop(s.task(move || chained(&n, &o, index)).await);
            }
            let first = s
                .task_async(async move { first_gate.await.unwrap() })
                .submit();
            let (n, o) = (next.clone(), out_of_order.clone());
            let second = s.task(move || chained(&n, &o, WINDOW - 1)).submit();
            // `join!` polls in order: both launches find the window full, then the
            // gate opens.
            let (first, second, ()) = futures::join!(first, second, async {
                open_gate.send(()).unwrap();
            });
            // `second` must wait for `first`, which waits for its own gate.
            settle(&rt).await;
            assert!(
                !second.is_finished(),
                "round {round}: the second launch did not wait for the first"
            );
            open_first.send(()).unwrap();
            first.await.unwrap();
            second.await.unwrap();
            s.synchronize().await.unwrap();
        });
        assert_eq!(out_of_order.load(SeqCst), 0, "round {round}");
        assert_eq!(next.load(SeqCst), WINDOW);
    }
}

#[test]
fn a_wait_added_while_a_launch_waits_for_a_slot_goes_to_the_next_launch() {
    // A launch waiting for a slot has already chosen its dependencies; an event
    // waited on meanwhile must not be lost when it finishes (rule L2's `consumed`
    // prefix): the next launch waits for it.
    let _guard = hang_guard("wait_added_while_reserved", 60);
    const WINDOW: u64 = 4;
    let rt = Runtime::builder()
        .workers(2)
        .window(WINDOW as usize)
        .build();
    let streams = Streams::new(&rt);
    let (s, other) = (streams.create_stream("s"), streams.create_stream("other"));
    let (open_gate, gate) = oneshot::channel::<()>();
    let (open_other, other_gate) = oneshot::channel::<()>();
    rt.block_on(async {
        let on_other = other
            .task_async(async move { other_gate.await.unwrap() })
            .await;
        let other_done = other.record_event();
        drop(s.task_async(async move { gate.await.unwrap() }).await);
        // Fill the window (one slot is `on_other`'s).
        for _ in 0..WINDOW - 2 {
            drop(s.task(|| ()).await);
        }
        let first = s.task(|| 1).submit();
        let second = s.task(|| 2).submit();
        let (first, second, ()) = futures::join!(first, second, async {
            // `first` waits for a slot, `second` is queued behind it.
            s.wait_event(&other_done);
            open_gate.send(()).unwrap();
        });
        assert_eq!(first.await.unwrap(), 1);
        settle(&rt).await;
        assert!(
            !second.is_finished(),
            "the wait added while `first` waited for a slot was lost"
        );
        open_other.send(()).unwrap();
        on_other.await.unwrap();
        assert_eq!(second.await.unwrap(), 2);
    });
}

/// Runs a few tasks to completion one after another, so that a task that was
/// (wrongly) ready has had every chance to run. Not needed for correctness: it only
/// makes a missing dependency visible.
async fn settle(rt: &Runtime) {
    for _ in 0..50 {
        rt.task(|| ()).await.await.unwrap();
    }
}

#[test]
fn tasks_on_two_streams_overlap() {
    // Both tasks wait on one Barrier(2): with two workers this finishes only if the
    // tasks run at the same time. If streams serialised each other it would deadlock,
    // which the hang guard turns into a failure.
    let _guard = hang_guard("tasks_on_two_streams_overlap", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2) = (streams.create_stream("s1"), streams.create_stream("s2"));
    let barrier = Arc::new(Barrier::new(2));
    rt.block_on(async {
        let b = barrier.clone();
        let first = s1.task(move || b.wait().is_leader()).name("on-s1").await;
        let b = barrier.clone();
        let second = s2.task(move || b.wait().is_leader()).name("on-s2").await;
        let leaders = [first.await.unwrap(), second.await.unwrap()];
        assert_eq!(leaders.iter().filter(|l| **l).count(), 1);
    });
}

#[test]
fn dropping_a_stream_handle_loses_no_work() {
    let _guard = hang_guard("dropping_a_stream_handle", 60);
    const LAUNCHES: u64 = 200;
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (open_gate, gate) = oneshot::channel::<()>();
    let handles = rt.block_on(async {
        let stream = streams.create_stream("dropped");
        // The first launch waits for the gate (without holding a worker), so
        // everything after it is still queued when the handle goes.
        let mut handles = vec![
            stream
                .task_async(async move {
                    gate.await.unwrap();
                    u64::MAX
                })
                .await,
        ];
        for index in 0..LAUNCHES {
            let log = log.clone();
            handles.push(
                stream
                    .task(move || {
                        log.lock().unwrap().push(index);
                        index
                    })
                    .await,
            );
        }
        assert!(!stream.query());
        drop(stream); // the only handle
        handles
    });
    assert!(log.lock().unwrap().is_empty(), "ran before the gate opened");
    open_gate.send(()).unwrap();
    let outputs: Vec<u64> = handles
        .into_iter()
        .map(|h| h.wait_blocking().unwrap())
        .collect();
    assert_eq!(outputs[0], u64::MAX);
    assert_eq!(outputs[1..], (0..LAUNCHES).collect::<Vec<_>>());
    assert_eq!(*log.lock().unwrap(), (0..LAUNCHES).collect::<Vec<_>>());
    streams.synchronize_blocking().unwrap();
}

#[test]
fn fire_and_forget_launches_all_run_after_streams_are_dropped() {
    let _guard = hang_guard("fire_and_forget", 60);
    let rt = Runtime::builder().workers(2).window(128).build();
    let counter = Arc::new(AtomicU64::new(0));
    {
        let streams = Streams::new(&rt);
        for s in 0..4 {
            let stream = streams.create_stream(format!("s{s}"));
            for _ in 0..500 {
                let counter = counter.clone();
                drop(
                    stream
                        .task(move || counter.fetch_add(1, Relaxed))
                        .submit_blocking(),
                );
            }
        }
    }
    rt.synchronize_blocking();
    assert_eq!(counter.load(Relaxed), 2_000);
}

#[test]
fn a_launch_abandoned_while_waiting_for_a_slot_releases_the_stream() {
    let _guard = hang_guard("abandoned_launch", 60);
    // Window of 2: a gated task holds one slot, a second launch gets the other, the
    // third waits for a slot (reserving the stream) and is then dropped.
    let rt = Runtime::builder().workers(1).window(2).build();
    let streams = Streams::new(&rt);
    let s = streams.create_stream("s");
    let (open_gate, gate) = oneshot::channel::<()>();
    rt.block_on(async {
        let gated = s.task_async(async move { gate.await.unwrap() }).await;
        let second = s.task(|| 2).await;
        let mut third = s.task(|| 3).submit();
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut third).poll(&mut cx).is_pending());
        drop(third); // abandoned: never submitted
        open_gate.send(()).unwrap();
        gated.await.unwrap();
        assert_eq!(second.await.unwrap(), 2);
        // The stream is usable again and still ordered.
        let fourth = s.task(|| 4).await;
        assert_eq!(fourth.await.unwrap(), 4);
        s.synchronize().await.unwrap();
    });
}
