//! Ordered streams and events for taskweave: CUDA streams (quadrants' `qd_stream`),
//! done so that the races quadrants had to fix cannot happen.
//!
//! - A [`Stream`] is an ordered lane: each task launched on it runs after the
//!   previous one; streams run concurrently with each other. Launching takes the same
//!   closures and futures as the runtime and returns the same
//!   [`Task`](taskweave_executor::Task) handles; it never blocks except by
//!   back-pressure.
//! - An [`Event`] marks a point on one stream that another stream
//!   ([`Stream::wait_event`]) or the host ([`Event::synchronize`]) waits for.
//! - [`Streams`] is a runtime's stream layer (one per runtime; [`RuntimeStreams`]
//!   reaches it from the runtime, as in `rt.default_stream()`): the default stream,
//!   stream creation, [`Streams::stream_parallel`] (fork onto worker streams and join
//!   back, without blocking), [`Streams::with_stream`] (the scoped stream) and a
//!   runtime-wide [`Streams::synchronize`] that waits for every stream and every task.
//! - Failures are per stream and sticky: a failed task fails the later launches on
//!   its stream (`DependencyFailed`), `synchronize` returns a [`StreamError`] naming
//!   the stream and the root task, and other streams carry on.
//!
//! The ordering rules (L1–L6) are written down in the `lane` module
//! (`streams/src/lane.rs`); the crate is built only on the executor's public API.
//!
//! ```
//! use taskweave_executor::Runtime;
//! use taskweave_streams::{Event, Streams};
//!
//! let rt = Runtime::builder().workers(2).build();
//! let streams = Streams::new(&rt);
//! let (s1, s2) = (streams.create_stream("produce"), streams.create_stream("consume"));
//! let out = rt.block_on(async {
//!     let produced = s1.task(|| vec![1u64, 2, 3]).name("produce").await;
//!     let ready = Event::new();
//!     ready.record(&s1);
//!     s2.wait_event(&ready); // s2's next launch runs after `produce`
//!     let sum = s2.dataflow(produced, |v: Vec<u64>| v.iter().sum::<u64>()).name("sum").await;
//!     streams.synchronize().await.unwrap(); // every stream, every task
//!     sum.await
//! });
//! assert_eq!(out.unwrap(), 6);
//! ```

mod backend;
mod error;
mod event;
mod lane;
mod launch;
#[cfg(taskweave_loom)]
#[doc(hidden)]
pub mod loom_hooks;
mod parallel;
mod scoped;
mod stream;
mod streams;
mod sync;

pub use error::StreamError;
pub use event::Event;
pub use launch::{Launch, LaunchFuture};
pub use parallel::StreamParallel;
pub use stream::Stream;
pub use streams::{RuntimeStreams, Streams};

/// Compile-time check of the auto traits users rely on (STYLE.md §6).
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Stream>();
    send_sync::<Streams>();
    send_sync::<Event>();
    send_sync::<StreamError>();
    send_sync::<StreamParallel>();
    fn _object_safe(_: &dyn RuntimeStreams) {}
    fn send<T: Send>(_: &T) {}
    fn futures_are_send(streams: &Streams) {
        send(&streams.synchronize());
        send(&streams.default_stream().synchronize());
        send(&Event::new().synchronize());
        send(&streams.default_stream().task(|| 1u32).submit());
        send(&streams.with_stream(|s| async move { s.synchronize().await }));
    }
}
