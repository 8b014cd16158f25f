//! Shared by the behaviour tests: a guard that turns a hang into a failure.

use std::io::Write as _;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Aborts the test process if the test is still running after its deadline: a lost
/// wake-up would otherwise hang the suite. A hang guard, not a timing assertion.
/// Dropping it (at the end of the test) disarms it.
pub struct HangGuard {
    _disarm: mpsc::Sender<()>,
}

/// Arms a [`HangGuard`] for `test`, firing after `secs` seconds.
pub fn hang_guard(test: &'static str, secs: u64) -> HangGuard {
    let (disarm, armed) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = armed.recv_timeout(Duration::from_secs(secs)) {
            // Straight to stderr: `eprintln!` output is captured by the test harness and
            // would be lost with the abort.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: still running after {secs} s: the runtime hangs"
            );
            std::process::abort();
        }
    });
    HangGuard { _disarm: disarm }
}
