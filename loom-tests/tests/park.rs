//! Worker park/unpark with searching workers: work pushed while a worker searches or
//! goes to sleep is never missed, including work a producer left to a searcher that
//! then found other work (the surplus is passed on).
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use taskweave_executor::loom_hooks::Sleep;

/// Takes one unit of work, if any.
fn take(work: &AtomicUsize) -> bool {
    let mut now = work.load(Ordering::SeqCst);
    while now > 0 {
        match work.compare_exchange(now, now - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(actual) => now = actual,
        }
    }
    false
}

/// The worker side of the sleep protocol, as `worker::work_loop` runs it, with a
/// counter standing in for the queues: look; on the first miss try to become a
/// searcher and look once more (standing in for the spin rounds); then announce
/// (giving up the searching role), look a last time, and withdraw or park. A worker
/// that takes work as a searcher, or after withdrawing as one, passes any surplus on.
/// Runs until it has taken one unit of work.
fn worker(sleep: &Sleep, work: &AtomicUsize, me: usize) {
    let mut searching = false;
    let mut pass_on = false;
    let mut missed = false;
    loop {
        if take(work) {
            let has_work = || work.load(Ordering::SeqCst) > 0;
            if searching {
                sleep.stop_searching(has_work);
            } else if pass_on {
                sleep.pass_on(has_work);
            }
            return;
        }
        if !missed {
            missed = true;
            searching = sleep.start_searching();
            if searching {
                pass_on = false;
                continue;
            }
        }
        let responsible = searching || pass_on;
        sleep.announce(me, searching);
        searching = false;
        missed = false;
        if work.load(Ordering::SeqCst) > 0 {
            sleep.withdraw(me);
            pass_on = responsible;
        } else {
            sleep.park(me);
            pass_on = false;
        }
    }
}

#[test]
fn no_lost_wakeup_with_one_worker() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new(1));
        let work = Arc::new(AtomicUsize::new(0));
        let (s, w) = (sleep.clone(), work.clone());
        let worker = loom::thread::spawn(move || worker(&s, &w, 0));
        work.fetch_add(1, Ordering::SeqCst);
        sleep.notify_one();
        // Loom reports a deadlock if the worker sleeps through the push.
        worker.join().unwrap();
    });
}

#[test]
fn no_lost_wakeup_with_two_workers_and_two_pushes() {
    loom::model(|| {
        // Two workers, one searching role: a push may be left to the searcher, which
        // must wake the other worker for the second one.
        let sleep = Arc::new(Sleep::new(2));
        let work = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|me| {
                let (s, w) = (sleep.clone(), work.clone());
                loom::thread::spawn(move || worker(&s, &w, me))
            })
            .collect();
        for _ in 0..2 {
            work.fetch_add(1, Ordering::SeqCst);
            sleep.notify_one();
        }
        for w in workers {
            w.join().unwrap();
        }
    });
}

#[test]
fn no_lost_wakeup_with_two_producers() {
    loom::model(|| {
        // Pushes from two threads racing one worker's search and sleep.
        let sleep = Arc::new(Sleep::new(1));
        let work = Arc::new(AtomicUsize::new(0));
        let (s, w) = (sleep.clone(), work.clone());
        let worker = loom::thread::spawn(move || {
            worker(&s, &w, 0);
            worker(&s, &w, 0);
        });
        let (s, w) = (sleep.clone(), work.clone());
        let producer = loom::thread::spawn(move || {
            w.fetch_add(1, Ordering::SeqCst);
            s.notify_one();
        });
        work.fetch_add(1, Ordering::SeqCst);
        sleep.notify_one();
        producer.join().unwrap();
        worker.join().unwrap();
    });
}
