//! `DataError`: why a data task, a scope or a host access was rejected.

use std::borrow::Cow;
use std::fmt;

use crate::TaskError;
use crate::data::{AccessKind, Region};

/// A task's name as shown in errors (`<unnamed>` when none was given).
pub(crate) struct TaskName<'a>(pub(crate) &'a Option<Cow<'static, str>>);

impl fmt::Display for TaskName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "task '{name}'"),
            None => f.write_str("an unnamed task"),
        }
    }
}

/// Why a data task, scope, tensor or host access was rejected.
///
/// Submission errors are returned by `submit` before the task exists: nothing was
/// submitted and the dependency map is unchanged. Every message names the tensor,
/// region, shape, scope or task involved and says what to change.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A region reaches past the end of its tensor.
    #[error(
        "{} declares {region} of tensor '{tensor}', which is out of bounds for its shape {shape:?}",
        TaskName(task)
    )]
    OutOfBounds {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The region.
        region: Region,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A tile's rank differs from its tensor's.
    #[error(
        "{} declares {region} of tensor '{tensor}', whose rank does not match the shape {shape:?} \
         (a tile needs one offset and one extent per dimension)",
        TaskName(task)
    )]
    RankMismatch {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The region.
        region: Region,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// The same region of a tensor is declared twice by one task.
    #[error(
        "{} declares {region} of tensor '{tensor}' twice ({first} and {second}); declare it once \
         (ReadWrite to read and write it)",
        TaskName(task)
    )]
    DuplicateAccess {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The region.
        region: Region,
        /// The first declaration's mode.
        first: AccessKind,
        /// The second declaration's mode.
        second: AccessKind,
    },
    /// Two accesses of one task overlap and at least one of them writes: the body
    /// would hold an exclusive view aliasing another view.
    #[error(
        "{} declares overlapping regions of tensor '{tensor}': {first} ({first_kind}) and \
         {second} ({second_kind}); a task's writes may not overlap its other accesses",
        TaskName(task)
    )]
    OverlappingAccesses {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The first region.
        first: Region,
        /// Its mode.
        first_kind: AccessKind,
        /// The second region.
        second: Region,
        /// Its mode.
        second_kind: AccessKind,
    },
    /// A tensor was used in a scope of another scope tree (a different root scope).
    #[error(
        "{} accesses tensor '{tensor}' in scope '{scope}', but the tensor belongs to another root \
         scope; a tensor is used only in the scope tree it was created in",
        TaskName(task)
    )]
    ForeignTensor {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The scope the task was submitted in.
        scope: Cow<'static, str>,
    },
    /// A task in a manual scope declared an access to a tracked (non-manual) tensor.
    #[error(
        "{} in manual scope '{scope}' accesses tensor '{tensor}', which is tracked by the \
         dependency map; a manual scope derives no dependencies, so it may only access manual \
         tensors (create it with `manual_zeros`/`manual_from_vec`, or submit from an auto scope)",
        TaskName(task)
    )]
    TrackedTensorInManualScope {
        /// The task's name.
        task: Option<Cow<'static, str>>,
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The manual scope.
        scope: Cow<'static, str>,
    },
    /// An auto scope was opened inside a manual scope.
    #[error(
        "cannot open auto scope '{scope}' inside manual scope '{enclosing}': a manual scope \
         derives no dependencies, so everything inside it is manual (use `manual_scope`)"
    )]
    AutoScopeInManualScope {
        /// The scope that was to be opened.
        scope: Cow<'static, str>,
        /// The enclosing manual scope.
        enclosing: Cow<'static, str>,
    },
    /// Submitting one more task would let open scopes hold every slot of the task
    /// window, so the next submission would wait forever.
    #[error(
        "scope '{scope}' would fill the task window: it holds {tasks} task slots until it ends \
         (its scope tree {held} in all) and the window has {window}; end scopes sooner (one per \
         loop iteration) or build the runtime with a larger window"
    )]
    ScopeTooLarge {
        /// The scope.
        scope: Cow<'static, str>,
        /// Tasks the scope holds.
        tasks: usize,
        /// Tasks held by the whole scope tree (this scope and its enclosing ones).
        held: usize,
        /// The runtime's task window.
        window: usize,
    },
    /// A tensor or a host write was given the wrong number of elements.
    #[error(
        "tensor '{tensor}': {what} has {got} elements but {region} of shape {shape:?} has \
         {expected}"
    )]
    LengthMismatch {
        /// The tensor.
        tensor: Cow<'static, str>,
        /// What was given (`"the data"`).
        what: &'static str,
        /// The region written.
        region: Region,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// Elements expected.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A task's access to a manual tensor conflicted with a task running at the same
    /// time (nothing ordered them). The task failed instead of racing; add an explicit
    /// dependency between the two.
    #[error(
        "{kind} access to {region} of manual tensor '{tensor}' conflicts with a running \
         {running_kind} access to {running}; nothing orders the two tasks: add an explicit \
         dependency (`.after(..)`)"
    )]
    Conflict {
        /// The tensor.
        tensor: Cow<'static, str>,
        /// The region this task declared.
        region: Region,
        /// Its mode.
        kind: AccessKind,
        /// The region of the running access.
        running: Region,
        /// Its mode.
        running_kind: AccessKind,
    },
    /// The task behind a host access did not complete.
    #[error("host access to tensor '{tensor}' failed: {error}")]
    HostAccess {
        /// The tensor.
        tensor: Cow<'static, str>,
        /// Why the task did not complete.
        error: TaskError,
    },
}
