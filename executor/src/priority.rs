//! Workers below the orchestrator's priority ([`RuntimeBuilder::worker_nice`]).
//!
//! On Linux a thread's nice value is its own (`setpriority` with `PRIO_PROCESS` and
//! `who = 0` acts on the calling thread). A worker sets its own as it starts, to
//! the value [`worker_nice`] computed on the thread that built the runtime. Raising
//! one's nice value needs no privilege, so this cannot fail for lack of rights;
//! should the call fail anyway (a sandbox that forbids it), the worker runs at its
//! inherited priority, which is only slower in the case the option is for.
//!
//! [`RuntimeBuilder::worker_nice`]: crate::RuntimeBuilder::worker_nice

/// The highest (least favoured) nice value Linux has.
pub(crate) const MAX_NICE: u8 = 19;

/// The nice value for workers `steps` below the calling thread's (at most
/// [`MAX_NICE`]), or `None` if nothing is to change: `steps` is 0, the calling
/// thread is already at the bottom, or the platform has no per-thread nice value.
pub(crate) fn worker_nice(steps: u8) -> Option<i32> {
    if steps == 0 {
        return None;
    }
    let own = own_nice()?;
    let target = (own + i32::from(steps)).min(i32::from(MAX_NICE));
    (target > own).then_some(target)
}

/// The calling thread's nice value.
#[cfg(all(target_os = "linux", not(taskweave_loom)))]
fn own_nice() -> Option<i32> {
    // `getpriority` returns -1 both for a nice value of -1 and for an error: clear
    // errno first and look at it after.
    // SAFETY: `__errno_location` returns the calling thread's errno, valid for the
    // thread's life; `getpriority` only reads the thread's scheduling attributes.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        (nice != -1 || *libc::__errno_location() == 0).then_some(nice)
    }
}

#[cfg(not(all(target_os = "linux", not(taskweave_loom))))]
fn own_nice() -> Option<i32> {
    None
}

/// Sets the calling thread's nice value to `nice` (a value [`worker_nice`] returned).
#[cfg(all(target_os = "linux", not(taskweave_loom)))]
pub(crate) fn set_own_nice(nice: i32) {
    // SAFETY: `setpriority` changes only the calling thread's nice value; it reads
    // and writes no memory of ours. A failure leaves the thread as it was (see the
    // module docs).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
}

#[cfg(not(all(target_os = "linux", not(taskweave_loom))))]
pub(crate) fn set_own_nice(nice: i32) {
    let _ = nice;
}

#[cfg(all(test, target_os = "linux", not(taskweave_loom)))]
mod tests {
    use super::*;
    use crate::Runtime;

    #[test]
    fn workers_run_the_given_steps_below_the_building_thread() {
        let own = own_nice().expect("getpriority");
        for steps in [0, 3, MAX_NICE] {
            let rt = Runtime::builder().workers(2).worker_nice(steps).build();
            let seen: Vec<i32> = (0..8)
                .map(|_| {
                    rt.task(|| own_nice().expect("getpriority"))
                        .submit_blocking()
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|task| task.wait_blocking().unwrap())
                .collect();
            let want = (own + i32::from(steps)).min(i32::from(MAX_NICE));
            assert!(
                seen.iter().all(|&nice| nice == want),
                "steps {steps}: workers at {seen:?}, want {want}"
            );
            // The building thread keeps its own.
            assert_eq!(own_nice(), Some(own));
        }
    }

    #[test]
    fn no_change_is_asked_for_zero_steps() {
        assert_eq!(worker_nice(0), None);
    }
}
