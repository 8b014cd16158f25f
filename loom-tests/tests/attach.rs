//! A consumer attaching while its producer completes: exactly one of the two sees the
//! other, so the edge is neither lost nor counted twice.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::Graph;

fn attach_races_complete(failed: bool) {
    loom::model(move || {
        let graph = Arc::new(Graph::new(2));
        let (producer, _) = graph.submit(&[]).unwrap();

        let g = graph.clone();
        let completer = loom::thread::spawn(move || g.complete(producer, failed));
        let (consumer, ready_at_wiring) = graph.submit(&[producer]).unwrap();
        let readied_by_walk = completer.join().unwrap();

        let by_walk = readied_by_walk.contains(&consumer.index());
        assert!(
            ready_at_wiring ^ by_walk,
            "ready at wiring: {ready_at_wiring}, by walk: {by_walk}: exactly one must hold"
        );
        assert_eq!(
            graph.take_dep_failure(consumer),
            failed,
            "the producer's outcome must reach the consumer"
        );
    });
}

#[test]
fn consumer_attaching_while_producer_completes() {
    attach_races_complete(false);
}

#[test]
fn consumer_attaching_while_producer_fails() {
    attach_races_complete(true);
}
