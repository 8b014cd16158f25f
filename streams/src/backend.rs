//! What the ordering code needs from the executor, as a trait, so the same code runs
//! on the real runtime and, in the loom models, on the executor's bare `Graph`.
//!
//! The ordering code never submits anything itself: whoever launches passes a closure
//! that submits (with the dependencies the lane hands it) and returns a *point*, a
//! held reference to the new task. Points are what lanes and events store.

use std::future::Future;

use taskweave_executor::{TaskError, TaskId, TaskWatch};

/// A task system the stream ordering code can sit on.
pub trait Backend {
    /// A held reference to a submitted task. While it exists the task's outcome stays
    /// readable: a dependency on its id still sees a failure (on the runtime this is a
    /// [`TaskWatch`], which keeps the task's slot from being reclaimed).
    type Point: Clone + Send + Sync + 'static;
    /// Why a task failed.
    type Error: Clone + Send + 'static;

    /// The task's id, to use as a dependency.
    fn id(point: &Self::Point) -> TaskId;

    /// Whether the task has finished in any way.
    fn is_finished(point: &Self::Point) -> bool;

    /// Whether the task has completed successfully: a dependency on it would be
    /// satisfied at once and carry no failure, so a launch may leave it out.
    fn completed_ok(point: &Self::Point) -> bool;

    /// Waits until the task has finished; resolves to its outcome.
    fn finished(point: Self::Point) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The real runtime: points are [`TaskWatch`]es.
#[derive(Debug)]
pub struct OnRuntime;

impl Backend for OnRuntime {
    type Point = TaskWatch;
    type Error = TaskError;

    #[inline]
    fn id(point: &TaskWatch) -> TaskId {
        point.id()
    }

    fn is_finished(point: &TaskWatch) -> bool {
        point.is_finished()
    }

    #[inline]
    fn completed_ok(point: &TaskWatch) -> bool {
        matches!(point.outcome(), Some(Ok(())))
    }

    fn finished(point: TaskWatch) -> impl Future<Output = Result<(), TaskError>> + Send {
        point
    }
}
