//! Events across two streams: a task launched on s2 after `wait_event` cannot become
//! ready before the task the event was recorded at (on s1) has completed, whatever
//! the interleaving of record, wait, launches and completions; recording again moves
//! the event, and a wait keeps the point it saw.
#![cfg(taskweave_loom)]

#[path = "streams_model.rs"]
mod model;

use loom::sync::Arc;
use model::{Device, lane, launch};
use taskweave_executor::TaskId;
use taskweave_streams::loom_hooks::EventCell;

#[test]
fn a_launch_after_wait_event_follows_the_recorded_task() {
    loom::model(|| {
        let device = Device::new();
        let event = Arc::new(EventCell::new());
        let s2 = lane("s2");

        // Thread A owns s1: launch p1, record, launch p2, record again, then
        // complete both (p2 became ready when p1 completed).
        let (d, e) = (device.clone(), event.clone());
        let producer = loom::thread::spawn(move || {
            let s1 = lane("s1");
            let (p1, p1_ready, _) = launch(&s1, &d);
            assert!(p1_ready);
            e.record(&s1);
            let (p2, p2_ready, deps) = launch(&s1, &d);
            assert!(!p2_ready && deps == [p1], "s1 orders p2 after p1");
            e.record(&s1);
            let moved: Vec<_> = e.recorded().unwrap().point.points().map(|p| p.id).collect();
            assert_eq!(moved, [p2], "recording again moves the event");
            let readied_by_p1 = d.complete(p1);
            assert!(readied_by_p1.contains(&p2.index()));
            let readied_by_p2 = d.complete(p2);
            (p1, p2, readied_by_p1, readied_by_p2)
        });

        // Thread B owns s2: wait on the event (whichever record it sees), launch c.
        // What the event held just before and just after the wait bounds what the
        // wait saw: records only move it forward (none, p1, p2).
        let recorded = |e: &EventCell<model::Model>| -> Vec<TaskId> {
            e.recorded()
                .map(|r| r.point.points().map(|p| p.id).collect())
                .unwrap_or_default()
        };
        let before = recorded(&event);
        event.wait_on(&s2);
        let after = recorded(&event);
        let (c, c_ready, _) = launch(&s2, &device);
        if c_ready {
            for &w in &before {
                assert!(
                    device.is_closed(w),
                    "c became ready before the recorded task {w}"
                );
            }
        }

        let (p1, p2, readied_by_p1, readied_by_p2) = producer.join().unwrap();
        let by_p1 = readied_by_p1.contains(&c.index());
        let by_p2 = readied_by_p2.contains(&c.index());
        assert_eq!(
            [c_ready, by_p1, by_p2].iter().filter(|r| **r).count(),
            1,
            "c must become ready exactly once"
        );
        if before == after {
            // The wait saw exactly `before`.
            match before.as_slice() {
                [] => assert!(c_ready, "a never-recorded event is a no-op"),
                [w] if *w == p1 => assert!(c_ready || by_p1, "c waits for p1 only"),
                [w] if *w == p2 => {
                    assert!(c_ready || by_p2, "c must follow p2 (the second record)")
                }
                other => panic!("the event was recorded at {other:?}"),
            }
        }
        if before == [p2] {
            assert!(!by_p1, "c must follow p2 (the second record)");
        }
    });
}
