//! Deferred completions: tokens completed from other threads, failed and dropped
//! tokens, many tokens per task, deadlines, the watchdog, and shutdown with tokens out.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave::{CompletionToken, Runtime, Stall, TaskError, TaskId, defer, try_defer};

/// A tiny deterministic generator (no `rand` dependency for tests).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Completer threads that complete tokens after a pseudo-random short delay.
fn spawn_completers(
    n: usize,
) -> (
    Vec<mpsc::Sender<CompletionToken>>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let (tx, rx) = mpsc::channel::<CompletionToken>();
        senders.push(tx);
        handles.push(std::thread::spawn(move || {
            let mut seed = i as u64;
            for token in rx {
                // A random delay of a few spins to a few microseconds: shuffles the order
                // in which tasks complete, without making the test slow.
                for _ in 0..splitmix(&mut seed) % 2_000 {
                    std::hint::spin_loop();
                }
                token.complete();
            }
        }));
    }
    (senders, handles)
}

#[test]
fn thousands_of_tasks_completed_from_other_threads_run_each_dependent_once() {
    let rt = Runtime::builder().workers(2).build();
    let (senders, completers) = spawn_completers(4);
    let senders = Arc::new(Mutex::new(senders));
    let producers_done = Arc::new(AtomicUsize::new(0));
    let dependents_run = Arc::new(AtomicUsize::new(0));
    const N: usize = 4_000;
    rt.block_on(async {
        let mut last = Vec::new();
        let mut prev = TaskId::INVALID;
        let mut seed = 7u64;
        for i in 0..N {
            let senders = senders.clone();
            let done = producers_done.clone();
            let pick = (splitmix(&mut seed) % 4) as usize;
            let producer = rt
                .task(move || {
                    let token = defer(format!("completion of task {i}"));
                    senders.lock().unwrap()[pick].send(token).unwrap();
                    done.fetch_add(1, SeqCst);
                })
                .name("deferred")
                .await;
            let run = dependents_run.clone();
            let done = producers_done.clone();
            // Each dependent also follows the previous dependent: a chain through
            // deferred producers.
            let dependent = rt
                .task(move || {
                    assert!(
                        done.load(SeqCst) > i,
                        "dependent ran before its producer's body"
                    );
                    run.fetch_add(1, SeqCst);
                })
                .after([producer.id(), prev])
                .await;
            prev = dependent.id();
            last.push(dependent);
        }
        for handle in last {
            handle.await.expect("dependent");
        }
    });
    assert_eq!(producers_done.load(SeqCst), N);
    assert_eq!(dependents_run.load(SeqCst), N);
    drop(senders);
    for c in completers {
        c.join().unwrap();
    }
}

#[test]
fn a_task_completes_only_after_every_one_of_its_tokens() {
    let rt = Runtime::builder().workers(2).build();
    let (token_tx, token_rx) = mpsc::channel::<Vec<CompletionToken>>();
    let task = rt
        .task(move || {
            let tokens: Vec<_> = (0..3_000)
                .map(|q| defer(format!("dma queue {q}")))
                .collect();
            token_tx.send(tokens).unwrap();
            "body done"
        })
        .name("many-tokens")
        .submit_blocking();
    let mut tokens = token_rx.recv().unwrap();
    let last = tokens.pop().unwrap();
    // Complete all but one from other threads; the task must still be running.
    let halves: Vec<Vec<_>> = vec![tokens.split_off(1_500), tokens];
    let threads: Vec<_> = halves
        .into_iter()
        .map(|half| {
            std::thread::spawn(move || half.into_iter().for_each(CompletionToken::complete))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(!task.is_finished(), "finished with a token outstanding");
    last.complete();
    assert_eq!(task.wait_blocking().unwrap(), "body done");
}

#[test]
fn a_dropped_token_fails_its_task_with_an_error_naming_task_and_token() {
    let rt = Runtime::builder().workers(2).build();
    let task = rt
        .task(|| {
            let token = defer("dma: tile (3, 4)");
            drop(token);
            1
        })
        .name("load-tile")
        .submit_blocking();
    let id = task.id();
    match task.wait_blocking() {
        Err(TaskError::TokenDropped { task, name, token }) => {
            assert_eq!(task, id);
            assert_eq!(name.as_deref(), Some("load-tile"));
            assert_eq!(token, "dma: tile (3, 4)");
        }
        other => panic!("expected TokenDropped, got {other:?}"),
    }
}

#[test]
fn a_failed_token_fails_dependents_and_spares_unrelated_tasks() {
    let rt = Runtime::builder().workers(2).build();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let (dependent, unrelated) = rt.block_on(async {
        let root = rt
            .task(move || tx.send(defer("kernel overflow flag")).unwrap())
            .name("kernel")
            .await;
        let r = ran.clone();
        let dependent = rt
            .dataflow(root, move |()| r.fetch_add(1, SeqCst))
            .name("after-kernel")
            .await;
        let r = ran.clone();
        let unrelated = rt
            .task(move || r.fetch_add(100, SeqCst))
            .name("unrelated")
            .await;
        (dependent, unrelated)
    });
    let token = rx.recv().unwrap();
    std::thread::spawn(move || token.fail("overflow in block 3"))
        .join()
        .unwrap();
    assert!(unrelated.wait_blocking().is_ok());
    match dependent.wait_blocking() {
        Err(error @ TaskError::DependencyFailed { .. }) => {
            assert_eq!(error.root_name(), Some("kernel"));
            let TaskError::DependencyFailed { cause, .. } = &error else {
                unreachable!()
            };
            match cause.as_ref() {
                TaskError::TokenFailed { token, error, .. } => {
                    assert_eq!(token, "kernel overflow flag");
                    assert_eq!(error.to_string(), "overflow in block 3");
                }
                other => panic!("root cause should be the token failure, got {other:?}"),
            }
        }
        other => panic!("expected DependencyFailed, got {other:?}"),
    }
    assert_eq!(
        ran.load(SeqCst),
        100,
        "the dependent's body must not run; the unrelated one must"
    );
}

#[test]
fn body_error_with_tokens_outstanding_waits_for_them_then_fails() {
    let rt = Runtime::builder().workers(1).build();
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let task = rt
        .try_task(move || {
            tx.send(defer("late")).unwrap();
            Err::<(), _>("body failed")
        })
        .name("both")
        .submit_blocking();
    let token = rx.recv().unwrap();
    // Let the worker process the body's return.
    rt.task(|| ()).submit_blocking().wait_blocking().unwrap();
    assert!(
        !task.is_finished(),
        "a task finishes only after its tokens reported"
    );
    token.complete();
    assert!(matches!(
        task.wait_blocking(),
        Err(TaskError::Failed { .. })
    ));
}

#[test]
fn defer_outside_a_task_body_is_an_error() {
    assert!(try_defer("nowhere").is_err());
}

#[test]
fn a_deadline_fails_a_task_whose_tokens_do_not_arrive() {
    let rt = Runtime::builder().workers(1).build();
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let task = rt
        .task(move || tx.send(defer("never completes")).unwrap())
        .name("late-dma")
        .deadline(Duration::from_millis(20))
        .submit_blocking();
    let token = rx.recv().unwrap();
    match task.wait_blocking() {
        Err(TaskError::Stalled {
            name, waiting_for, ..
        }) => {
            assert_eq!(name.as_deref(), Some("late-dma"));
            assert_eq!(waiting_for, "never completes");
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
    // A token arriving after the deadline is harmless.
    token.complete();
    rt.task(|| ()).submit_blocking().wait_blocking().unwrap();
}

#[test]
fn the_watchdog_reports_a_stuck_token_and_fails_its_task() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .workers(2)
        .watchdog(Duration::from_millis(50))
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .build();
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let stuck = rt
        .task(move || tx.send(defer("doorbell of queue 2")).unwrap())
        .name("wait-doorbell")
        .submit_blocking();
    let stuck_id = stuck.id();
    let _token = rx.recv().unwrap();
    match stuck.wait_blocking() {
        Err(TaskError::Stalled {
            task, waiting_for, ..
        }) => {
            assert_eq!(task, stuck_id);
            assert_eq!(waiting_for, "doorbell of queue 2");
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
    let reports = reports.lock().unwrap();
    let found = reports.iter().flat_map(|r| &r.stalls).any(|stall| {
        matches!(stall, Stall::DeferredToken { task, name, tokens }
            if *task == stuck_id && name.as_deref() == Some("wait-doorbell") && tokens == &["doorbell of queue 2".to_owned()])
    });
    assert!(
        found,
        "the report names the task and the token: {reports:?}"
    );
}

#[test]
fn the_watchdog_names_only_the_tokens_still_out() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .workers(1)
        .watchdog(Duration::from_millis(50))
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .build();
    let (tx, rx) = mpsc::channel::<Vec<CompletionToken>>();
    let stuck = rt
        .task(move || {
            // Reported before the body returns: never outstanding once it has.
            defer("copy in").complete();
            let out = vec![defer("doorbell"), defer("doorbell"), defer("copy out")];
            defer("copy in").complete();
            tx.send(out).unwrap();
        })
        .name("three-stage")
        .submit_blocking();
    let stuck_id = stuck.id();
    let _tokens = rx.recv().unwrap();
    match stuck.wait_blocking() {
        Err(TaskError::Stalled {
            task, waiting_for, ..
        }) => {
            assert_eq!(task, stuck_id);
            assert_eq!(waiting_for, "doorbell (x2), copy out");
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
    let reports = reports.lock().unwrap();
    let found = reports.iter().flat_map(|r| &r.stalls).any(|stall| {
        matches!(stall, Stall::DeferredToken { task, tokens, .. }
            if *task == stuck_id && tokens == &["doorbell (x2)".to_owned(), "copy out".to_owned()])
    });
    assert!(found, "the report names the tokens still out: {reports:?}");
}

#[test]
fn dropping_the_runtime_with_tokens_out_cancels_the_task_and_late_tokens_are_harmless() {
    let rt = Runtime::builder().workers(1).build();
    let (tx, rx) = mpsc::channel::<CompletionToken>();
    let task = rt
        .task(move || tx.send(defer("after shutdown")).unwrap())
        .submit_blocking();
    let token = rx.recv().unwrap();
    rt.task(|| ()).submit_blocking().wait_blocking().unwrap();
    drop(rt);
    assert!(matches!(
        task.wait_blocking(),
        Err(TaskError::Cancelled { .. })
    ));
    token.complete();
}

#[test]
fn one_failure_among_many_reports_of_one_task_fails_it_with_that_token() {
    let rt = Runtime::builder().workers(2).build();
    let (tx, rx) = mpsc::channel::<Vec<CompletionToken>>();
    let task = rt
        .task(move || {
            tx.send((0..100).map(|q| defer(format!("queue {q}"))).collect())
                .unwrap()
        })
        .name("hundred-queues")
        .submit_blocking();
    // Reported back to back from one thread: the drainer applies them as one run.
    for (q, token) in rx.recv().unwrap().into_iter().enumerate() {
        if q == 57 {
            token.fail("parity error");
        } else {
            token.complete();
        }
    }
    match task.wait_blocking() {
        Err(TaskError::TokenFailed {
            token, error, name, ..
        }) => {
            assert_eq!(token, "queue 57");
            assert_eq!(error.to_string(), "parity error");
            assert_eq!(name.as_deref(), Some("hundred-queues"));
        }
        other => panic!("expected TokenFailed, got {other:?}"),
    }
}

#[test]
fn a_token_that_fails_before_its_body_returns_still_fails_the_task() {
    // The failure is applied while the body still runs, so when the body returns no
    // token is outstanding: the task must not finish as a success.
    let rt = Runtime::builder().workers(2).build();
    let observer = rt.clone();
    let task = rt
        .task(move || {
            let token = defer("early failure");
            std::thread::spawn(move || token.fail("device fault"))
                .join()
                .unwrap();
            // Wait (bounded) until the other worker has applied the report. It may not
            // within the bound: the report can wait for a drainer that is busy (this
            // body's worker); then the task fails when the body returns. A bound in
            // time, not in rounds: a round of `stats` and `yield_now` took up to
            // 0.3 ms on a loaded machine, and a million of them 5 minutes.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while std::time::Instant::now() < deadline {
                let applied: u64 = observer
                    .stats()
                    .workers
                    .iter()
                    .map(|w| w.mailbox_messages)
                    .sum();
                if applied > 0 {
                    break;
                }
                std::thread::yield_now();
            }
            7
        })
        .name("early")
        .submit_blocking();
    match task.wait_blocking() {
        Err(TaskError::TokenFailed { token, .. }) => assert_eq!(token, "early failure"),
        other => panic!("expected TokenFailed, got {other:?}"),
    }
}
