//! The watchdog names a task body that blocks its worker, even while the other
//! workers keep the runtime progressing.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave::{Runtime, Stall};

#[test]
fn a_body_blocking_its_worker_is_named_while_others_progress() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .workers(2)
        .watchdog(Duration::from_millis(40))
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .build();
    let (release, blocked) = mpsc::channel::<()>();
    // Deliberately wrong: a body that blocks its worker on a channel.
    let stuck = rt
        .task(move || blocked.recv().unwrap())
        .name("blocks-on-recv")
        .submit_blocking();
    let stuck_id = stuck.id();
    let named = |reports: &[taskweave::StallReport]| {
        reports.iter().flat_map(|r| &r.stalls).any(|s| {
            matches!(s, Stall::BlockedWorker { task, name, .. } if *task == stuck_id && name.as_deref() == Some("blocks-on-recv"))
        })
    };
    // Keep the other worker busy with short tasks until the report names the body.
    // Bounded: 200,000 rounds of a trivial task take well over the 40 ms threshold.
    let mut found = false;
    for _ in 0..200_000 {
        rt.task(|| ()).submit_blocking().wait_blocking().unwrap();
        if named(&reports.lock().unwrap()) {
            found = true;
            break;
        }
    }
    release.send(()).unwrap();
    stuck.wait_blocking().unwrap();
    assert!(
        found,
        "no BlockedWorker report named the task: {:?}",
        reports.lock().unwrap()
    );
}
