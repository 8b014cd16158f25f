//! The completion mailbox: no message lost, duplicated or reordered per producer, and
//! the drainer sees each payload its producer wrote; a producer facing a full ring
//! waits for the drainer instead of dropping or overwriting.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::Mailbox;

/// Drains until `expected` messages arrived, checking per-producer order.
fn drain_all(mailbox: &Mailbox, expected: usize, producers: usize) -> Vec<usize> {
    let mut next = vec![0usize; producers];
    let mut received = 0;
    while received < expected {
        let taken = mailbox.drain(usize::MAX, |(producer, sequence)| {
            assert_eq!(
                sequence, next[producer],
                "producer {producer}'s messages out of order or duplicated"
            );
            next[producer] += 1;
            received += 1;
        });
        if taken == Some(0) {
            // Nothing published yet: let a producer run.
            loom::thread::yield_now();
        }
    }
    next
}

#[test]
fn two_producers_one_drainer() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::new(4));
        let m = mailbox.clone();
        let first = loom::thread::spawn(move || {
            m.push((0, 0));
            m.push((0, 1));
        });
        let m = mailbox.clone();
        let second = loom::thread::spawn(move || m.push((1, 0)));
        assert_eq!(drain_all(&mailbox, 3, 2), [2, 1]);
        first.join().unwrap();
        second.join().unwrap();
        assert!(mailbox.is_empty());
    });
}

#[test]
fn a_producer_waits_for_room_in_a_full_ring() {
    loom::model(|| {
        // Two cells, three messages: the third push must wait for the drainer.
        let mailbox = Arc::new(Mailbox::new(2));
        let m = mailbox.clone();
        let producer = loom::thread::spawn(move || {
            for sequence in 0..3 {
                m.push((0, sequence));
            }
        });
        assert_eq!(drain_all(&mailbox, 3, 1), [3]);
        producer.join().unwrap();
        assert!(mailbox.is_empty());
    });
}
