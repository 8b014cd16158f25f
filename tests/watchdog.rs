//! The watchdog names a task body that blocks its worker, even while the other
//! workers keep the runtime progressing, and an orchestrator blocked in a host access.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave::{Runtime, Stall, StallReport};

/// Two workers and a watchdog that reports to the returned list.
fn watched_runtime(stall_after: Duration) -> (Runtime, Arc<Mutex<Vec<StallReport>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .workers(2)
        .watchdog(stall_after)
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .build();
    (rt, reports)
}

#[test]
fn a_body_blocking_its_worker_is_named_while_others_progress() {
    let (rt, reports) = watched_runtime(Duration::from_millis(40));
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

/// An orchestrator blocked in a host read whose writer waits for a deferred
/// completion: the report says the orchestrator waits in the host access and names
/// the producer it waits for (and, beside it, the token the producer waits for).
#[test]
fn an_orchestrator_blocked_in_a_host_access_is_reported_with_what_it_waits_for() {
    let (rt, reports) = watched_runtime(Duration::from_millis(50));
    let scope = taskweave::Scope::new(&rt, "main");
    let grid = scope.zeros::<u32>("grid", [4]);
    let (tx, rx) = mpsc::channel::<taskweave::CompletionToken>();
    let producer = scope
        .task(grid.write(..), move |mut g| {
            g.fill(7);
            tx.send(taskweave::defer("dma of block 3")).unwrap();
        })
        .name("load-grid")
        .submit_blocking()
        .unwrap();
    let producer_id = producer.id();
    let _token = rx.recv().unwrap();
    // The host read waits for the writer, which waits for its token: stuck until
    // the watchdog fails the writer (and so the read).
    let read = scope.read_blocking(&grid, ..);
    assert!(
        read.is_err(),
        "the writer failed, so the read fails: {read:?}"
    );
    let reports = reports.lock().unwrap();
    let stalls = || reports.iter().flat_map(|r| &r.stalls);
    let host = stalls().find_map(|stall| match stall {
        Stall::HostAccess {
            what, waits_for, ..
        } => Some((what.clone(), waits_for.clone())),
        _ => None,
    });
    let (what, waits_for) = host.unwrap_or_else(|| panic!("no HostAccess stall: {reports:?}"));
    assert_eq!(what, "host read of 'grid'");
    assert_eq!(
        waits_for,
        [(producer_id, Some("load-grid".to_owned()))],
        "{reports:?}"
    );
    assert!(
        stalls().any(|s| matches!(s, Stall::DeferredToken { task, .. } if *task == producer_id)),
        "{reports:?}"
    );
    let text = reports[0].to_string();
    assert!(
        text.contains("the orchestrator waits in host read of 'grid'")
            && text.contains("'load-grid'"),
        "{text}"
    );
}
