//! `TaskError`: why a task did not produce its output.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::TaskId;

/// A task's name as shown in errors (`<unnamed>` when none was given).
pub(crate) struct NameDisplay<'a>(pub(crate) &'a Option<Cow<'static, str>>);

impl fmt::Display for NameDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "'{name}'"),
            None => f.write_str("<unnamed>"),
        }
    }
}

/// The error a [`Task`](crate::Task) handle resolves to when its task did not complete.
///
/// Every variant names the task (id and name) it is about; `DependencyFailed` also
/// names the *root* task whose own failure caused it, however far up the graph.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The body returned `Err`.
    #[error("task {task} {} failed: {error}", NameDisplay(name))]
    Failed {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// What the body returned.
        error: Arc<dyn Error + Send + Sync>,
    },
    /// The body panicked.
    #[error("task {task} {} panicked: {message}", NameDisplay(name))]
    Panicked {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// A task this one depends on (directly or transitively) failed; the body never ran.
    #[error(
        "task {task} {} did not run: its dependency {root} {} failed ({cause})",
        NameDisplay(name),
        NameDisplay(root_name)
    )]
    DependencyFailed {
        /// The task that did not run.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// The task whose own failure is the root cause.
        root: TaskId,
        /// The root task's name.
        root_name: Option<Cow<'static, str>>,
        /// The root task's own error.
        cause: Arc<TaskError>,
    },
    /// A completion token of the task failed.
    #[error(
        "task {task} {} failed: its deferred completion '{token}' reported: {error}",
        NameDisplay(name)
    )]
    TokenFailed {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// The token's description.
        token: Cow<'static, str>,
        /// What the token reported.
        error: Arc<dyn Error + Send + Sync>,
    },
    /// A completion token of the task was dropped without completing.
    #[error(
        "task {task} {} failed: its deferred completion '{token}' was dropped without completing",
        NameDisplay(name)
    )]
    TokenDropped {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// The token's description.
        token: Cow<'static, str>,
    },
    /// The task's body returned but its deferred completions did not arrive in time
    /// (its deadline passed, or the watchdog found the runtime stalled on it).
    #[error(
        "task {task} {} stalled: still waiting after {waited:?} for {waiting_for}",
        NameDisplay(name)
    )]
    Stalled {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// What it was waiting for (the outstanding tokens' descriptions).
        waiting_for: String,
        /// How long it had waited.
        waited: std::time::Duration,
    },
    /// The runtime was dropped before the task could run or finish.
    #[error(
        "task {task} {} was cancelled: the runtime shut down before it finished",
        NameDisplay(name)
    )]
    Cancelled {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<Cow<'static, str>>,
    },
    /// The task was submitted after the runtime began shutting down; it never got a slot.
    #[error(
        "task {} was not submitted: the runtime is shutting down",
        NameDisplay(name)
    )]
    Shutdown {
        /// The name the submission gave.
        name: Option<Cow<'static, str>>,
    },
}

impl TaskError {
    /// The task this error is about ([`TaskId::INVALID`] for `Shutdown`).
    pub fn task(&self) -> TaskId {
        match self {
            TaskError::Failed { task, .. }
            | TaskError::Panicked { task, .. }
            | TaskError::DependencyFailed { task, .. }
            | TaskError::TokenFailed { task, .. }
            | TaskError::TokenDropped { task, .. }
            | TaskError::Stalled { task, .. }
            | TaskError::Cancelled { task, .. } => *task,
            TaskError::Shutdown { .. } => TaskId::INVALID,
        }
    }

    /// The name of the task this error is about.
    pub fn name(&self) -> Option<&str> {
        self.name_field().as_deref()
    }

    fn name_field(&self) -> &Option<Cow<'static, str>> {
        match self {
            TaskError::Failed { name, .. }
            | TaskError::Panicked { name, .. }
            | TaskError::DependencyFailed { name, .. }
            | TaskError::TokenFailed { name, .. }
            | TaskError::TokenDropped { name, .. }
            | TaskError::Stalled { name, .. }
            | TaskError::Cancelled { name, .. }
            | TaskError::Shutdown { name } => name,
        }
    }

    /// The root cause: the failing dependency for `DependencyFailed`, else the task itself.
    pub fn root(&self) -> TaskId {
        match self {
            TaskError::DependencyFailed { root, .. } => *root,
            other => other.task(),
        }
    }

    /// The root cause's name.
    pub fn root_name(&self) -> Option<&str> {
        match self {
            TaskError::DependencyFailed { root_name, .. } => root_name.as_deref(),
            other => other.name(),
        }
    }

    /// The error a dependent `task` gets when this error's task was its dependency.
    pub(crate) fn for_dependent(&self, task: TaskId, name: Option<Cow<'static, str>>) -> TaskError {
        let (root, root_name, cause) = match self {
            TaskError::DependencyFailed {
                root,
                root_name,
                cause,
                ..
            } => (*root, root_name.clone(), cause.clone()),
            own => (own.task(), own.name_field().clone(), Arc::new(own.clone())),
        };
        TaskError::DependencyFailed {
            task,
            name,
            root,
            root_name,
            cause,
        }
    }
}
