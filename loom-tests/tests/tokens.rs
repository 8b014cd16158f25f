//! Deferred completion (rule R11): a token reporting, the body returning and a
//! deadline cutting, all racing, finish the task exactly once; and a completion that
//! arrives while a consumer attaches neither loses nor doubles the edge.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use taskweave_executor::loom_hooks::Graph;

#[test]
fn token_report_and_body_return_finish_exactly_once() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(1));
        let (task, _) = graph.submit(&[]).unwrap();
        graph.take_token(task);
        graph.take_token(task);
        let finishers = Arc::new(AtomicUsize::new(0));
        let reporters: Vec<_> = (0..2)
            .map(|_| {
                let (g, f) = (graph.clone(), finishers.clone());
                loom::thread::spawn(move || {
                    if g.token_report(task) {
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        if graph.body_return(task) {
            finishers.fetch_add(1, Ordering::SeqCst);
        }
        for r in reporters {
            r.join().unwrap();
        }
        assert_eq!(
            finishers.load(Ordering::SeqCst),
            1,
            "the task must be finished exactly once"
        );
    });
}

#[test]
fn a_cut_racing_the_last_token_finishes_exactly_once() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(1));
        let (task, _) = graph.submit(&[]).unwrap();
        graph.take_token(task);
        let finishers = Arc::new(AtomicUsize::new(0));
        let (g, f) = (graph.clone(), finishers.clone());
        let body = loom::thread::spawn(move || {
            if g.body_return(task) {
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        let (g, f) = (graph.clone(), finishers.clone());
        let deadline = loom::thread::spawn(move || {
            if g.cut(task) {
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        if graph.token_report(task) {
            finishers.fetch_add(1, Ordering::SeqCst);
        }
        body.join().unwrap();
        deadline.join().unwrap();
        assert_eq!(
            finishers.load(Ordering::SeqCst),
            1,
            "exactly one of token, body and deadline finishes"
        );
    });
}

#[test]
fn a_completion_arriving_while_a_consumer_attaches() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(2));
        let (producer, _) = graph.submit(&[]).unwrap();
        graph.take_token(producer);
        assert!(!graph.body_return(producer), "a token is still out");

        // The token's report arrives on another thread and completes the producer.
        let g = graph.clone();
        let reporter = loom::thread::spawn(move || {
            if g.token_report(producer) {
                g.complete(producer, false)
            } else {
                Vec::new()
            }
        });
        let (consumer, ready_at_wiring) = graph.submit(&[producer]).unwrap();
        let readied = reporter.join().unwrap();
        assert!(
            ready_at_wiring ^ readied.contains(&consumer.index()),
            "the consumer must become ready exactly once"
        );
    });
}
