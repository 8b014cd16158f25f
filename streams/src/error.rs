//! `StreamError`: a task on a stream failed.

use taskweave_executor::{TaskError, TaskId};

use crate::sync::Arc;

/// A stream's work failed: returned by the `synchronize` methods and by scoped
/// streams. Names the stream and carries the root cause: the [`TaskError`] of the
/// task whose own failure made the stream fail (a `DependencyFailed` chain is
/// unwound to its root, so the error is the same however far the failure had
/// propagated when you looked).
///
/// ```
/// use taskweave_executor::Runtime;
/// use taskweave_streams::Streams;
/// let rt = Runtime::builder().workers(1).build();
/// let streams = Streams::new(&rt);
/// let s = streams.create_stream("decode");
/// let _ = s.try_task(|| Err::<(), _>("corrupt frame")).name("frame-7").submit_blocking();
/// let _ = s.task(|| ()).name("frame-8").submit_blocking();
/// let error = s.synchronize_blocking().unwrap_err();
/// assert_eq!(error.stream(), "decode");
/// assert_eq!(error.task_name(), Some("frame-7"));
/// assert!(error.to_string().contains("corrupt frame"));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("stream '{stream}': {error}")]
pub struct StreamError {
    stream: Arc<str>,
    error: TaskError,
}

impl StreamError {
    /// The error of stream `stream`, whose work failed with `error` (unwound to its
    /// root cause).
    pub(crate) fn new(stream: Arc<str>, error: TaskError) -> Self {
        StreamError {
            stream,
            error: root_cause(error),
        }
    }

    /// The name of the stream whose work failed.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The root cause: the error of the task whose own failure made the stream fail.
    pub fn task_error(&self) -> &TaskError {
        &self.error
    }

    /// The failed task's id.
    pub fn task(&self) -> TaskId {
        self.error.task()
    }

    /// The failed task's name.
    pub fn task_name(&self) -> Option<&str> {
        self.error.name()
    }

    /// The root cause, without the stream.
    pub fn into_task_error(self) -> TaskError {
        self.error
    }
}

impl From<StreamError> for TaskError {
    fn from(error: StreamError) -> TaskError {
        error.error
    }
}

/// Unwinds `DependencyFailed` to the root task's own error.
fn root_cause(error: TaskError) -> TaskError {
    match error {
        TaskError::DependencyFailed { cause, .. } => Arc::unwrap_or_clone(cause),
        other => other,
    }
}
