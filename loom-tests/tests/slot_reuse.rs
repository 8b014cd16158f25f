//! Slot reuse: a stale `TaskId` never waits on, nor is woken by, the slot's next
//! occupant.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::Graph;

#[test]
fn stale_id_never_attaches_to_the_next_occupant() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(3));
        let (old, _) = graph.submit(&[]).unwrap();

        // One thread finishes `old`, frees its slot and submits a new task, which may
        // land in the same slot.
        let g = graph.clone();
        let recycler = loom::thread::spawn(move || {
            let readied = g.complete(old, false);
            g.release(old);
            let (next, _) = g.submit(&[]).unwrap();
            (readied, next)
        });
        // Meanwhile a consumer depends on the old id.
        let (consumer, ready_at_wiring) = graph.submit(&[old]).unwrap();
        let (readied_by_old, next) = recycler.join().unwrap();

        if next.index() == old.index() {
            assert_ne!(
                next.generation(),
                old.generation(),
                "reuse must bump the generation"
            );
        }
        let by_old = readied_by_old.contains(&consumer.index());
        assert!(
            ready_at_wiring ^ by_old,
            "the consumer must be ready exactly once"
        );
        // The next occupant finishing must not touch the consumer.
        let readied_by_next = graph.complete(next, false);
        assert!(
            !readied_by_next.contains(&consumer.index()),
            "a stale id was linked to the slot's next occupant"
        );
    });
}
