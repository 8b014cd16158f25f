//! tokio-console instrumentation (feature `console`).
//!
//! Each task gets a `runtime.spawn` span (target `tokio::task`, fields `kind`,
//! `task.name`, `task.id`, `loc.file`, `loc.line`, `loc.col`) that is entered around
//! every poll, and its wakers emit `tokio::task::waker` events (`waker.clone`,
//! `waker.drop`, `waker.wake`, `waker.wake_by_ref`) naming the span — the shapes
//! console-subscriber recognises, so taskweave's tasks appear in tokio-console with
//! their names, poll counts, busy/idle times and wakers.
//!
//! Without the feature, [`TaskSpan`] is zero-sized and every method is an empty
//! inline function.

use std::panic::Location;

use crate::task::TaskId;

#[cfg(feature = "console")]
mod imp {
    use super::*;

    /// A task's console span.
    pub(crate) struct TaskSpan(tracing::Span);

    /// The span entered for the duration of one poll.
    pub(crate) struct Entered<'a>(#[allow(dead_code)] tracing::span::Entered<'a>);

    impl TaskSpan {
        pub(crate) fn new(
            id: TaskId,
            name: Option<&str>,
            location: &'static Location<'static>,
        ) -> Self {
            TaskSpan(tracing::trace_span!(
                target: "tokio::task",
                "runtime.spawn",
                kind = "task",
                task.name = name.unwrap_or(""),
                task.id = id.to_bits(),
                loc.file = location.file(),
                loc.line = location.line(),
                loc.col = location.column(),
            ))
        }

        pub(crate) fn none() -> Self {
            TaskSpan(tracing::Span::none())
        }

        #[inline]
        pub(crate) fn enter(&self) -> Entered<'_> {
            Entered(self.0.enter())
        }

        /// The span's id, for waker events (0: none).
        pub(crate) fn id(&self) -> u64 {
            self.0.id().map_or(0, |id| id.into_u64())
        }
    }

    /// The span id a task's wakers report, readable from any thread.
    pub(crate) struct WakerTag(crate::sync::AtomicU64);

    impl WakerTag {
        pub(crate) fn new() -> Self {
            WakerTag(crate::sync::AtomicU64::new(0))
        }

        /// Set by the owner when the span is created or dropped.
        pub(crate) fn set(&self, span: &TaskSpan) {
            self.0.store(span.id(), crate::sync::Ordering::Relaxed);
        }

        /// A waker event for console (`op` is `waker.clone`, `waker.wake`, ...).
        #[inline]
        pub(crate) fn event(&self, op: &'static str) {
            let id = self.0.load(crate::sync::Ordering::Relaxed);
            if id != 0 {
                tracing::trace!(target: "tokio::task::waker", op, task.id = id);
            }
        }
    }
}

#[cfg(not(feature = "console"))]
mod imp {
    use super::*;

    /// Console instrumentation compiled out.
    pub(crate) struct TaskSpan;

    /// Nothing entered.
    pub(crate) struct Entered;

    impl TaskSpan {
        #[inline(always)]
        pub(crate) fn new(
            _id: TaskId,
            _name: Option<&str>,
            _location: &'static Location<'static>,
        ) -> Self {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn none() -> Self {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn enter(&self) -> Entered {
            Entered
        }
    }

    /// No waker events without the feature.
    pub(crate) struct WakerTag;

    impl WakerTag {
        #[inline(always)]
        pub(crate) fn new() -> Self {
            WakerTag
        }

        #[inline(always)]
        pub(crate) fn set(&self, _span: &TaskSpan) {}

        #[inline(always)]
        pub(crate) fn event(&self, _op: &'static str) {}
    }
}

pub(crate) use imp::{TaskSpan, WakerTag};
