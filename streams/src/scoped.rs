//! Scoped streams (quadrants' `with qd.create_stream() as s:`): create a stream, run
//! a body with it, synchronize it, destroy it.

use std::future::Future;

use crate::backend::{Backend, OnRuntime};
use crate::error::StreamError;
use crate::lane::Lane;
use crate::stream::Stream;
use crate::streams::Streams;
use crate::sync::Arc;

/// A handle that reaches a lane (a [`Stream`], or a bare lane in the loom models).
pub trait AsLane<X: Backend> {
    /// The handle's lane.
    fn lane(&self) -> &Lane<X>;
}

impl AsLane<OnRuntime> for Stream {
    fn lane(&self) -> &Lane<OnRuntime> {
        Stream::lane(self)
    }
}

impl<X: Backend> AsLane<X> for Arc<Lane<X>> {
    fn lane(&self) -> &Lane<X> {
        self
    }
}

/// The scoped-stream protocol: runs `body` with a handle of `stream`, then
/// synchronizes the stream — everything launched on it in the body has finished —
/// and only then destroys it (drops the scope's handle). Resolves to the body's
/// output and the stream's outcome.
pub async fn scoped<X, S, F, Fut>(stream: S, body: F) -> (Fut::Output, Result<(), X::Error>)
where
    X: Backend,
    S: AsLane<X> + Clone,
    F: FnOnce(S) -> Fut,
    Fut: Future,
{
    let output = body(stream.clone()).await;
    // Synchronize before destroy: snapshot after the body, so it covers every launch
    // the body made (L5), and wait for all of it.
    let outcome = stream.lane().snapshot().finished().await;
    drop(stream);
    (output, outcome)
}

impl Streams {
    /// Runs `body` with a new stream, synchronizes the stream, then destroys it (the
    /// context manager `with qd.create_stream() as s:`). Resolves to the body's output,
    /// or to the stream's error if a task launched on it failed (the root cause, see
    /// [`StreamError`]). Only the stream's work is waited for, and the caller's
    /// thread is never blocked.
    ///
    /// The stream is named `scoped-N`; see [`Streams::with_named_stream`]. A handle
    /// kept past the scope keeps working as an ordinary stream.
    ///
    /// ```
    /// use taskweave_executor::Runtime;
    /// use taskweave_streams::Streams;
    ///
    /// let rt = Runtime::builder().workers(2).build();
    /// let streams = Streams::new(&rt);
    /// let sum = rt.block_on(streams.with_stream(|s| async move {
    ///     let a = s.task(|| 20).await;
    ///     let b = s.task(|| 22).await;
    ///     a.await.unwrap() + b.await.unwrap()
    /// }));
    /// assert_eq!(sum.unwrap(), 42);
    ///
    /// let failed = rt.block_on(streams.with_stream(|s| async move {
    ///     let _ = s.try_task(|| Err::<(), _>("no device")).name("probe").await;
    ///     let _ = s.task(|| ()).name("after-probe").await; // fails: DependencyFailed
    ///     "body done"
    /// }));
    /// assert_eq!(failed.unwrap_err().task_name(), Some("probe"));
    /// ```
    pub async fn with_stream<F, Fut>(&self, body: F) -> Result<Fut::Output, StreamError>
    where
        F: FnOnce(Stream) -> Fut,
        Fut: Future,
    {
        self.with_named_stream(self.numbered_name("scoped"), body)
            .await
    }

    /// [`Streams::with_stream`] with a stream named `name`.
    pub async fn with_named_stream<F, Fut>(
        &self,
        name: impl Into<Arc<str>>,
        body: F,
    ) -> Result<Fut::Output, StreamError>
    where
        F: FnOnce(Stream) -> Fut,
        Fut: Future,
    {
        let stream = self.unregistered_stream(name.into());
        let name = Arc::clone(stream.lane().name());
        match scoped(stream, body).await {
            (output, Ok(())) => Ok(output),
            (_, Err(error)) => Err(StreamError::new(name, error)),
        }
    }
}
