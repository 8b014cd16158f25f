//! The recording buffers: compact fixed-size entries in per-thread vectors, written
//! by one thread each and read when the trace is taken.
//!
//! Per task: a 24-byte [`TaskEntry`], 8 bytes per dependency in one shared sequence
//! (no allocation per task) and, only if it has one, its name. Per poll: a 24-byte
//! [`PollEntry`] whose end and ready times are 32-bit offsets from its start; a poll
//! whose offsets do not fit (longer than about a second, or ready before the trace
//! started) keeps them in full in a [`WidePoll`] beside it. Times are raw clock
//! stamps ([`super::clock`]), converted when the trace is read.
//!
//! The sequences are [`Chunked`]: a push never moves what was recorded.

use std::borrow::Cow;

use super::chunked::Chunked;
pub(super) use super::chunked::Cursor;
use crate::task::TaskId;

/// Marks a ready time that is a clock stamp (set while recording) rather than
/// nanoseconds since the epoch (set for sampled statistics); 0 means unknown.
pub(crate) const STAMPED: u64 = 1 << 63;

/// [`PollEntry::duration`] of a poll kept in full in a [`WidePoll`].
const WIDE: u32 = u32::MAX;

/// One submitted task.
#[derive(Clone, Copy, Debug)]
pub(super) struct TaskEntry {
    pub(super) id: TaskId,
    /// The submission's stamp.
    pub(super) submit: u64,
    /// How many of the buffer's `deps` are this task's (the next ones in order).
    pub(super) deps: u32,
    /// Whether the next of the buffer's `names` is this task's.
    pub(super) named: bool,
}

/// One poll.
#[derive(Clone, Copy, Debug)]
pub(super) struct PollEntry {
    pub(super) id: TaskId,
    /// The poll's start stamp.
    pub(super) start: u64,
    /// End minus start, or [`WIDE`].
    duration: u32,
    /// Start minus the ready stamp (when `duration` is not [`WIDE`]).
    ready_before: u32,
}

/// The times of a poll that did not fit a [`PollEntry`].
#[derive(Clone, Copy, Debug)]
struct WidePoll {
    /// As passed to [`Buffer::push_poll`].
    ready: u64,
    end: u64,
}

/// A poll as recorded: stamps, and a ready time that is 0, [`STAMPED`] | a stamp,
/// or nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawPoll {
    pub(super) id: TaskId,
    pub(super) ready: u64,
    pub(super) start: u64,
    pub(super) end: u64,
}

/// What one thread recorded.
#[derive(Clone, Debug, Default)]
pub(super) struct Buffer {
    pub(super) tasks: Chunked<TaskEntry>,
    pub(super) deps: Chunked<TaskId>,
    pub(super) names: Vec<Cow<'static, str>>,
    pub(super) polls: Chunked<PollEntry>,
    wide_polls: Vec<WidePoll>,
}

impl Buffer {
    pub(super) fn push_task(
        &mut self,
        id: TaskId,
        name: &Option<Cow<'static, str>>,
        deps: &[TaskId],
        submit: u64,
    ) {
        let dep_count = u32::try_from(deps.len()).expect("fewer than 2^32 dependencies");
        self.deps.extend_contiguous(deps);
        if let Some(name) = name {
            self.names.push(name.clone());
        }
        self.tasks.push(TaskEntry {
            id,
            submit,
            deps: dep_count,
            named: name.is_some(),
        });
    }

    /// Records a poll from `start` to `end` (stamps) of a task ready at `ready`
    /// (0, [`STAMPED`] | a stamp, or nanoseconds since the epoch).
    pub(super) fn push_poll(&mut self, id: TaskId, ready: u64, start: u64, end: u64) {
        let duration = end
            .checked_sub(start)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|&d| d != WIDE);
        let ready_before = (ready & STAMPED != 0)
            .then(|| start.checked_sub(ready & !STAMPED))
            .flatten()
            .and_then(|d| u32::try_from(d).ok());
        match (duration, ready_before) {
            (Some(duration), Some(ready_before)) => self.polls.push(PollEntry {
                id,
                start,
                duration,
                ready_before,
            }),
            _ => {
                self.polls.push(PollEntry {
                    id,
                    start,
                    duration: WIDE,
                    ready_before: 0,
                });
                self.wide_polls.push(WidePoll { ready, end });
            }
        }
    }

    /// The polls in recording order.
    pub(super) fn polls(&self) -> impl Iterator<Item = RawPoll> + '_ {
        let mut wide = self.wide_polls.iter();
        self.polls.iter().map(move |poll| {
            if poll.duration == WIDE {
                let full = wide.next().expect("one wide entry per wide poll");
                RawPoll {
                    id: poll.id,
                    ready: full.ready,
                    start: poll.start,
                    end: full.end,
                }
            } else {
                RawPoll {
                    id: poll.id,
                    ready: STAMPED | (poll.start - u64::from(poll.ready_before)),
                    start: poll.start,
                    end: poll.start + u64::from(poll.duration),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_compact() {
        assert_eq!(size_of::<TaskEntry>(), 24);
        assert_eq!(size_of::<PollEntry>(), 24);
    }

    #[test]
    fn polls_read_back_as_recorded_whether_they_fit_or_not() {
        let id = TaskId::new(3, 1);
        let recorded = [
            // Fits: ready just before the start, short poll.
            (STAMPED | 900, 1_000, 1_500),
            // Unknown ready time.
            (0, 2_000, 2_100),
            // Ready in nanoseconds (stamped before the trace started).
            (12_345, 3_000, 3_001),
            // A poll longer than 2^32 stamps.
            (STAMPED | 3_500, 4_000, 4_000 + (1 << 33)),
            // Ready long before.
            (STAMPED | 1, 1 << 40, (1 << 40) + 7),
            // Ready after the start (counters of two cores slightly apart).
            (STAMPED | 5_010, 5_000, 5_020),
        ];
        let mut buffer = Buffer::default();
        for (ready, start, end) in recorded {
            buffer.push_poll(id, ready, start, end);
        }
        let read: Vec<_> = buffer.polls().map(|p| (p.ready, p.start, p.end)).collect();
        assert_eq!(read, recorded);
        assert_eq!(buffer.wide_polls.len(), 5);
    }
}
