//! Worker park/unpark: work pushed while a worker goes to sleep is never missed.
#![cfg(taskweave_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use taskweave_executor::loom_hooks::Sleep;

/// The worker side of the sleep protocol, as `worker::work_loop` runs it, with a
/// counter standing in for the queues.
fn worker(sleep: &Sleep, work: &AtomicUsize, me: usize) {
    loop {
        if work.load(Ordering::SeqCst) > 0 {
            work.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        sleep.announce(me);
        if work.load(Ordering::SeqCst) > 0 {
            sleep.withdraw(me);
        } else {
            sleep.park(me);
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
