//! The handle's waker cell: a completion racing with the handle's registration either
//! is seen by the handle's second look or wakes the registered waker.
#![cfg(taskweave_loom)]

use std::task::{Wake, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use taskweave_executor::loom_hooks::AtomicWaker;

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn registration_racing_completion_is_never_lost() {
    loom::model(|| {
        let cell = Arc::new(AtomicWaker::new());
        let done = Arc::new(AtomicBool::new(false));
        let woken = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());

        let (c, d) = (cell.clone(), done.clone());
        let completer = loom::thread::spawn(move || {
            d.store(true, Ordering::SeqCst);
            c.wake();
        });
        // The handle: register, then look again (as `Task::poll` does).
        cell.register(&waker);
        let seen = done.load(Ordering::SeqCst);
        completer.join().unwrap();
        assert!(
            seen || woken.0.load(Ordering::SeqCst),
            "completion neither seen nor woken"
        );
    });
}
