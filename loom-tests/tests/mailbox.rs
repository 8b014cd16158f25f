//! The completion mailbox: no message lost, duplicated or reordered per producer, and
//! the drainer sees each payload its producer wrote; a producer facing a full ring
//! waits for the drainer instead of dropping or overwriting; and a token's report,
//! which decides on a wake before it publishes, never leaves it to a worker asleep.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use taskweave_executor::loom_hooks::{Mailbox, Sleep};

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

/// A worker going to sleep as the runtime's workers do: drain; if nothing came,
/// announce, mark the lanes sleepy and take the decisive last look from those marks
/// (claims count, published or not), then withdraw or park, and clear the marks
/// once awake. Returns once `expected` messages arrived.
fn sleep_until_drained(mailbox: &Mailbox, sleep: &Sleep, expected: usize, mut searching: bool) {
    let mut received = 0;
    while received < expected {
        let taken = mailbox.drain(usize::MAX, |_| received += 1);
        if taken.unwrap_or(0) > 0 {
            continue;
        }
        sleep.announce(0, searching);
        searching = false;
        if mailbox.mark_sleepy() {
            sleep.withdraw(0);
            mailbox.clear_sleepy();
            loom::thread::yield_now();
        } else {
            sleep.park(0);
            mailbox.clear_sleepy();
        }
    }
}

/// A token's report decides whether to wake a sleeper before it publishes (so that
/// the publish can be its last access to the runtime) and wakes after it: a worker
/// going to sleep meanwhile is never left asleep with the report in the ring
/// (loom reports a deadlock if it is).
#[test]
fn a_report_is_never_left_with_every_worker_asleep() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::new(2));
        let sleep = Arc::new(Sleep::new(1));
        let (m, s) = (mailbox.clone(), sleep.clone());
        let producer = loom::thread::spawn(move || m.push_notifying((0, 0), &s));
        sleep_until_drained(&mailbox, &sleep, 1, false);
        producer.join().unwrap();
    });
}

/// As above with the worker searching when the report arrives: the reporter counts
/// on the searcher and wakes nobody; the searcher giving up its role must still see
/// the claim (SeqCst claim against its announcement and fence).
#[test]
fn a_report_counting_on_a_searcher_is_not_lost_when_it_gives_up() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::new(2));
        let sleep = Arc::new(Sleep::new(1));
        assert!(sleep.start_searching());
        let (m, s) = (mailbox.clone(), sleep.clone());
        let producer = loom::thread::spawn(move || {
            m.push_notifying((0, 0), &s);
            m.push_notifying((0, 1), &s);
        });
        sleep_until_drained(&mailbox, &sleep, 2, true);
        producer.join().unwrap();
    });
}

/// Two producers on two lanes (as two threads usually are in a runtime's mailbox):
/// each producer's messages arrive in order, none lost or duplicated, and the
/// drainer, going from lane to lane, sees every payload.
#[test]
fn two_producers_on_two_lanes_one_drainer() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::with_lanes(2, 2));
        let m = mailbox.clone();
        let first = loom::thread::spawn(move || {
            m.push_to(0, (0, 0));
            m.push_to(0, (0, 1));
        });
        let m = mailbox.clone();
        let second = loom::thread::spawn(move || m.push_to(1, (1, 0)));
        assert_eq!(drain_all(&mailbox, 3, 2), [2, 1]);
        first.join().unwrap();
        second.join().unwrap();
        assert!(mailbox.is_empty());
    });
}

/// A report posted on the second lane while the worker goes to sleep: the worker's
/// last look reads every lane's claims, so it is never left asleep.
#[test]
fn a_report_on_another_lane_is_never_left_with_every_worker_asleep() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::with_lanes(2, 2));
        let sleep = Arc::new(Sleep::new(1));
        let (m, s) = (mailbox.clone(), sleep.clone());
        let producer = loom::thread::spawn(move || m.push_to_notifying(1, (0, 0), &s));
        sleep_until_drained(&mailbox, &sleep, 1, false);
        producer.join().unwrap();
    });
}

/// The runtime's last worker closes the mailbox while a producer posts: each message
/// is either drained by the close (which waits for a claim made before it until it
/// is published) or given back to its producer, never both, never neither, and the
/// drained ones are the producer's first, in order.
#[test]
fn closing_takes_every_earlier_claim_and_gives_later_ones_back() {
    loom::model(|| {
        let mailbox = Arc::new(Mailbox::with_lanes(2, 2));
        let m = mailbox.clone();
        let producer = loom::thread::spawn(move || {
            (0..2)
                .filter(|&sequence| !m.try_push_to(0, (0, sequence)))
                .count()
        });
        let mut drained = Vec::new();
        mailbox.close(|(_, sequence)| drained.push(sequence));
        let given_back = producer.join().unwrap();
        assert_eq!(drained.len() + given_back, 2);
        assert!(drained.iter().enumerate().all(|(i, &s)| s == i));
    });
}
