//! Fan-in countdown: a task whose producers complete concurrently becomes ready
//! exactly once, and only after all of them.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::Graph;

#[test]
fn two_producers_completing_concurrently_ready_the_consumer_once() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(3));
        let (p1, ready1) = graph.submit(&[]).unwrap();
        let (p2, ready2) = graph.submit(&[]).unwrap();
        assert!(ready1 && ready2);
        let (consumer, ready) = graph.submit(&[p1, p2]).unwrap();
        assert!(!ready, "consumer ready before its producers finished");

        let g = graph.clone();
        let other = loom::thread::spawn(move || g.complete(p1, false));
        let here = graph.complete(p2, false);
        let there = other.join().unwrap();

        let readied: Vec<u32> = here.into_iter().chain(there).collect();
        assert_eq!(
            readied,
            vec![consumer.index()],
            "consumer must become ready exactly once"
        );
    });
}

#[test]
fn a_failing_producer_marks_the_consumer_before_it_is_ready() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(3));
        let (p1, _) = graph.submit(&[]).unwrap();
        let (p2, _) = graph.submit(&[]).unwrap();
        let (consumer, _) = graph.submit(&[p1, p2]).unwrap();

        let g = graph.clone();
        let other = loom::thread::spawn(move || g.complete(p1, true));
        let here = graph.complete(p2, false);
        let there = other.join().unwrap();
        assert_eq!(here.len() + there.len(), 1);
        assert!(
            graph.take_dep_failure(consumer),
            "the failure must be recorded on the consumer"
        );
    });
}
