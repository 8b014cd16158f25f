//! Events: the patterns of the quadrants docs (produce on one stream, record, wait on
//! another, consume; two streams joined into the default stream), re-recording,
//! never-recorded events, host-side query and synchronize, and record/wait from
//! different threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{self};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use taskweave::Runtime;
use taskweave::streams::{Event, Streams};

mod support;
use support::hang_guard;

/// Runs a few tasks to completion one after another, so that a task that was
/// (wrongly) ready has had every chance to run. Not needed for correctness: it only
/// makes a missing dependency visible.
async fn settle(rt: &Runtime) {
    for _ in 0..50 {
        rt.task(|| ()).await.await.unwrap();
    }
}

#[test]
fn produce_record_wait_consume() {
    let _guard = hang_guard("produce_record_wait_consume", 60);
    const ROUNDS: usize = 300;
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (producer, consumer) = (
        streams.create_stream("producer"),
        streams.create_stream("consumer"),
    );
    let buffers: Arc<Vec<AtomicU64>> = Arc::new((0..ROUNDS).map(|_| AtomicU64::new(0)).collect());
    let early = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let produced = Event::new();
        let mut gates = Vec::new();
        for round in 0..ROUNDS {
            // No producer can finish before every consumer has been launched: a
            // consumer that did not wait for its event would find its buffer empty.
            let (open_gate, gate) = oneshot::channel::<()>();
            gates.push(open_gate);
            let b = buffers.clone();
            drop(
                producer
                    .task_async(async move {
                        gate.await.unwrap();
                        b[round].store(round as u64 + 1, SeqCst);
                    })
                    .name("produce")
                    .await,
            );
            produced.record(&producer);
            consumer.wait_event(&produced);
            let (b, early) = (buffers.clone(), early.clone());
            drop(
                consumer
                    .task(move || {
                        if b[round].load(SeqCst) != round as u64 + 1 {
                            early.fetch_add(1, SeqCst);
                        }
                    })
                    .name("consume")
                    .await,
            );
        }
        for open_gate in gates {
            open_gate.send(()).unwrap();
        }
        streams.synchronize().await.unwrap();
    });
    assert_eq!(early.load(SeqCst), 0, "a consumer ran before its producer");
}

#[test]
fn two_streams_joined_into_the_default_stream() {
    let _guard = hang_guard("two_streams_joined", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (left, right) = (
        streams.create_stream("left"),
        streams.create_stream("right"),
    );
    let total = rt.block_on(async {
        // Both producers of every round wait for one gate, opened once every join
        // has been launched: a join that did not wait would read zeros.
        let (open_gate, gate) = oneshot::channel::<()>();
        let gate = futures::future::FutureExt::shared(gate);
        let mut totals = Vec::new();
        for round in 0..100u64 {
            let (a, b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (a2, g) = (a.clone(), gate.clone());
            drop(
                left.task_async(async move {
                    g.await.unwrap();
                    a2.store(round, SeqCst)
                })
                .await,
            );
            let (b2, g) = (b.clone(), gate.clone());
            drop(
                right
                    .task_async(async move {
                        g.await.unwrap();
                        b2.store(round * 10, SeqCst)
                    })
                    .await,
            );
            let (left_done, right_done) = (left.record_event(), right.record_event());
            let main = streams.default_stream();
            main.wait_event(&left_done);
            main.wait_event(&right_done);
            totals.push(
                main.task(move || a.load(SeqCst) + b.load(SeqCst))
                    .name("join")
                    .await,
            );
        }
        open_gate.send(()).unwrap();
        let mut sum = 0;
        for (round, t) in totals.into_iter().enumerate() {
            let got = t.await.unwrap();
            assert_eq!(got, 11 * round as u64, "round {round} joined early");
            sum += got;
        }
        sum
    });
    assert_eq!(total, 11 * (0..100).sum::<u64>());
}

#[test]
fn recording_again_moves_the_event_but_not_earlier_waits() {
    let _guard = hang_guard("recording_again", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2, s3) = (
        streams.create_stream("s1"),
        streams.create_stream("s2"),
        streams.create_stream("s3"),
    );
    let first_done = Arc::new(AtomicBool::new(false));
    let second_done = Arc::new(AtomicBool::new(false));
    let (open_gate, gate) = oneshot::channel::<()>();
    rt.block_on(async {
        let f = first_done.clone();
        drop(s1.task(move || f.store(true, SeqCst)).name("first").await);
        let event = Event::new();
        event.record(&s1);
        s2.wait_event(&event); // the first point

        let s = second_done.clone();
        drop(
            s1.task_async(async move {
                gate.await.unwrap();
                s.store(true, SeqCst);
            })
            .name("second")
            .await,
        );
        event.record(&s1); // moves to the second point
        s3.wait_event(&event);

        let f = first_done.clone();
        let on_s2 = s2.task(move || f.load(SeqCst)).await;
        let s = second_done.clone();
        let on_s3 = s3.task(move || s.load(SeqCst)).await;

        // s2 waits only for the first point: it finishes while `second` is gated.
        assert!(on_s2.await.unwrap(), "s2 ran before the first point");
        assert!(!event.query(), "the event's point is the gated task");
        settle(&rt).await;
        assert!(!on_s3.is_finished(), "s3 ran before the second point");
        open_gate.send(()).unwrap();
        assert!(on_s3.await.unwrap(), "s3 ran before the second point");
        event.synchronize().await.unwrap();
        assert!(event.query());
    });
}

#[test]
fn a_never_recorded_event_is_a_no_op() {
    let _guard = hang_guard("never_recorded", 60);
    let rt = Runtime::builder().workers(1).build();
    let streams = Streams::new(&rt);
    let s = streams.create_stream("s");
    let never = Event::new();
    assert!(!never.is_recorded());
    assert!(never.query());
    never.synchronize_blocking().unwrap();
    s.wait_event(&never);
    let t = s.task(|| 7).submit_blocking();
    assert_eq!(t.wait_blocking().unwrap(), 7);
    s.synchronize_blocking().unwrap();
}

#[test]
fn host_waits_for_an_event_and_queries_it() {
    let _guard = hang_guard("host_waits", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let s = streams.create_stream("s");
    let (open_gate, gate) = oneshot::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    drop(
        s.task_async(async move {
            gate.await.unwrap();
            d.store(true, SeqCst)
        })
        .submit_blocking(),
    );
    let event = s.record_event();
    assert!(event.is_recorded());
    assert!(!event.query());
    assert!(!s.query());
    open_gate.send(()).unwrap();
    event.synchronize_blocking().unwrap();
    assert!(done.load(SeqCst));
    assert!(event.query());
    assert!(s.query());
}

#[test]
fn record_and_wait_on_different_threads() {
    let _guard = hang_guard("different_threads", 60);
    const ROUNDS: u64 = 200;
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2) = (streams.create_stream("s1"), streams.create_stream("s2"));
    let produced = Arc::new(AtomicU64::new(0));
    let early = Arc::new(AtomicU64::new(0));
    let (send_event, receive_event) = mpsc::channel::<(u64, Event)>();
    // s1 starts only once every consumer has been launched.
    let (open_gate, gate) = oneshot::channel::<()>();
    let producer = {
        let (rt, produced) = (rt.clone(), produced.clone());
        std::thread::spawn(move || {
            drop(
                s1.task_async(async move { gate.await.unwrap() })
                    .submit_blocking(),
            );
            for round in 1..=ROUNDS {
                let p = produced.clone();
                drop(s1.task(move || p.store(round, SeqCst)).submit_blocking());
                send_event.send((round, s1.record_event())).unwrap();
            }
            drop(rt);
        })
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    for (round, event) in receive_event {
        s2.wait_event(&event);
        let (p, early, log) = (produced.clone(), early.clone(), log.clone());
        drop(
            s2.task(move || {
                let seen = p.load(SeqCst);
                if seen < round {
                    early.fetch_add(1, SeqCst);
                }
                log.lock().unwrap().push(round);
            })
            .submit_blocking(),
        );
    }
    producer.join().unwrap();
    open_gate.send(()).unwrap();
    s2.synchronize_blocking().unwrap();
    assert_eq!(
        early.load(SeqCst),
        0,
        "a consumer ran before its event's point"
    );
    assert_eq!(*log.lock().unwrap(), (1..=ROUNDS).collect::<Vec<_>>());
}

#[test]
fn wait_stream_orders_after_everything_launched_on_the_other_stream() {
    let _guard = hang_guard("wait_stream", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2) = (streams.create_stream("s1"), streams.create_stream("s2"));
    let count = Arc::new(AtomicU64::new(0));
    let (open_gate, gate) = oneshot::channel::<()>();
    rt.block_on(async {
        drop(s1.task_async(async move { gate.await.unwrap() }).await);
        for _ in 0..50 {
            let c = count.clone();
            drop(s1.task(move || c.fetch_add(1, SeqCst)).await);
        }
        s2.wait_stream(&s1);
        let c = count.clone();
        let seen = s2.task(move || c.load(SeqCst)).await;
        settle(&rt).await;
        assert!(!seen.is_finished(), "s2 ran before s1's work");
        open_gate.send(()).unwrap();
        assert_eq!(seen.await.unwrap(), 50);
    });
}

#[test]
fn an_event_recorded_after_a_wait_covers_what_was_waited_for() {
    // s2 launches nothing between its wait and its record: the event recorded on s2
    // still stands for s1's work (events are transitive).
    let _guard = hang_guard("event_transitive", 60);
    let rt = Runtime::builder().workers(2).build();
    let streams = Streams::new(&rt);
    let (s1, s2, s3) = (
        streams.create_stream("s1"),
        streams.create_stream("s2"),
        streams.create_stream("s3"),
    );
    let (open_gate, gate) = oneshot::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let d = done.clone();
        drop(
            s1.task_async(async move {
                gate.await.unwrap();
                d.store(true, SeqCst)
            })
            .await,
        );
        s2.wait_event(&s1.record_event());
        s3.wait_event(&s2.record_event());
        let d = done.clone();
        let on_s3 = s3.task(move || d.load(SeqCst)).await;
        settle(&rt).await;
        assert!(!on_s3.is_finished(), "s3 ran before s1's work");
        open_gate.send(()).unwrap();
        assert!(on_s3.await.unwrap());
    });
}
