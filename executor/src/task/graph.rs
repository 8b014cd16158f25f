//! The two halves of an edge, at slot level: wiring a new consumer to its producers
//! (rules R2, R3, R8, R9) and finishing a producer (R5, R8). The runtime adds bodies,
//! queues and wakers around these; the loom models call them directly.

use super::TaskId;
use super::slot::{Closed, Fanout, Slot, walk};
use crate::error::TaskError;
use crate::sync::Ordering;

/// Wires consumer `index` (freshly initialised by its submitter, with `fan_in` set to
/// `1 + deps.len()` and its edge nodes prepared) to `deps`. `failed(producer)` is
/// called for a producer found already failed; it must record the failure on the
/// consumer if it can still read it. Returns `true` if the consumer is ready (every
/// dependency had finished), in which case the caller must schedule it.
///
/// # Safety
/// The caller is the consumer's submitter (R2) and prepared `deps.len()` edge nodes.
pub(crate) unsafe fn wire(
    slots: &[Slot],
    index: u32,
    deps: &[TaskId],
    mut failed: impl FnMut(TaskId),
) -> bool {
    let consumer = &slots[index as usize];
    let mut satisfied = 0u32;
    for (j, dep) in deps.iter().enumerate() {
        let Some(producer) = slots.get(dep.index() as usize) else {
            // Not an id of this window: nothing to wait for.
            satisfied += 1;
            continue;
        };
        // SAFETY: R8: the caller is the consumer's submitter and prepared node j.
        match unsafe { producer.attach(dep.generation(), consumer, index, j) } {
            Fanout::Open => {}
            Fanout::Closed(Closed::Ok) | Fanout::Stale => satisfied += 1,
            Fanout::Closed(Closed::Failed) => {
                satisfied += 1;
                failed(*dep);
            }
        }
    }
    if satisfied as usize == deps.len() {
        // No producer was attached, so no one else decrements `fan_in` (R3): the
        // consumer is ready, and a plain store sets what the decrement would (an
        // independent task's submission saves a locked instruction).
        consumer.fan_in.store(0, Ordering::Relaxed);
        return true;
    }
    // Drop the wiring guard and the satisfied edges in one step (R3).
    let released = 1 + satisfied;
    consumer.fan_in.fetch_sub(released, Ordering::AcqRel) == released
}

/// Closes task `(index, generation)`'s fan-out list as `how` and walks it: each
/// consumer gets `error` recorded (if the task failed) and its fan-in decremented;
/// `on_ready(consumer)` is called for each one that this made ready.
///
/// # Safety
/// The caller owns the task's execution (R4 or R7) and, for `Closed::Failed`, `error`
/// is the error it stored in the task's meta before.
pub(crate) unsafe fn close_and_walk(
    slots: &[Slot],
    index: u32,
    generation: u32,
    how: Closed,
    error: Option<&TaskError>,
    on_ready: &mut dyn FnMut(u32),
) {
    let head = slots[index as usize].close(generation, how);
    // SAFETY: `head` is what `close` returned (R8).
    unsafe {
        walk(slots, head, |consumer| {
            let c = &slots[consumer as usize];
            if let Some(error) = error {
                c.record_dep_failure(error);
            }
            if c.fan_in.fetch_sub(1, Ordering::AcqRel) == 1 {
                on_ready(consumer);
            }
        });
    }
}
