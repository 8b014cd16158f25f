//! The injector's ring: every pushed index is taken exactly once, across laps of a
//! small ring and through its overflow list, by consumers racing each other; and a
//! push followed by `notify_one` never leaves the index to a worker asleep.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::{Injector, Sleep};

/// Takes until `expected` indices arrived; returns them sorted.
fn take_all(injector: &Injector, expected: usize) -> Vec<u32> {
    let mut taken = Vec::new();
    while taken.len() < expected {
        match injector.take() {
            Some(index) => taken.push(index),
            // Nothing published yet: let a producer run.
            None => loom::thread::yield_now(),
        }
    }
    taken.sort_unstable();
    taken
}

/// A ring of two cells: one producer pushes `0..pushes - 1`, another pushes
/// `pushes - 1`, and one consumer takes them all. The pushes past the second reuse
/// cells (or overflow if the cells' indices were not taken yet).
fn two_producers_one_consumer(pushes: u32) {
    loom::model(move || {
        let injector = Arc::new(Injector::new(2));
        let i = injector.clone();
        let first = loom::thread::spawn(move || {
            for index in 0..pushes - 1 {
                i.push(index);
            }
        });
        let i = injector.clone();
        let second = loom::thread::spawn(move || i.push(pushes - 1));
        let expected: Vec<u32> = (0..pushes).collect();
        assert_eq!(take_all(&injector, pushes as usize), expected);
        first.join().unwrap();
        second.join().unwrap();
        assert!(injector.is_empty());
    });
}

#[test]
fn two_producers_one_consumer_over_a_lap() {
    two_producers_one_consumer(3);
}

#[test]
fn two_producers_one_consumer_over_two_laps() {
    two_producers_one_consumer(4);
}

#[test]
fn two_consumers_take_each_index_once() {
    loom::model(|| {
        let injector = Arc::new(Injector::new(4));
        let i = injector.clone();
        let producer = loom::thread::spawn(move || {
            i.push(7);
            i.push(8);
        });
        let i = injector.clone();
        let other = loom::thread::spawn(move || i.take());
        let mine = injector.take();
        producer.join().unwrap();
        let theirs = other.join().unwrap();
        // Whatever the two takes missed (pushed after they looked) is still queued.
        let mut all: Vec<u32> = mine.into_iter().chain(theirs).collect();
        while let Some(index) = injector.take() {
            all.push(index);
        }
        all.sort_unstable();
        assert_eq!(all, [7, 8]);
    });
}

#[test]
fn a_push_then_notify_wakes_a_worker_going_to_sleep() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new(1));
        let injector = Arc::new(Injector::new(2));
        let (s, i) = (sleep.clone(), injector.clone());
        // The worker's last look before sleeping, as `worker::work_loop` does it
        // (without the searching role, which `park.rs` covers).
        let worker = loom::thread::spawn(move || {
            loop {
                if let Some(index) = i.take() {
                    return index;
                }
                s.announce(0, false);
                if i.is_empty() {
                    s.park(0);
                } else {
                    s.withdraw(0);
                }
            }
        });
        injector.push(5);
        sleep.notify_one();
        // Loom reports a deadlock if the worker sleeps through the push.
        assert_eq!(worker.join().unwrap(), 5);
    });
}
