//! Task bodies that receive views: sync and async, fallible or not, with or without
//! typed inputs. Each wraps the user's closure so that, when the task runs, it
//! checks manual accesses, creates the views, and calls the closure with them.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use crate::data::{Accesses, CheckGuard, OwnedAccesses};
use crate::{HeldTasks, Inputs, Reservation, Runtime, Task, TaskId};

/// The error a fallible body returns, boxed (what [`TaskError::Failed`](crate::TaskError::Failed) carries).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future an async body returns: boxed, `Send`, and borrowing the views for `'v`.
/// Write it as `|views| Box::pin(async move { ... })`.
pub type BoxFuture<'v, T> = Pin<Box<dyn Future<Output = T> + Send + 'v>>;

/// An async body: a closure that takes the views and returns a [`BoxFuture`]
/// borrowing them. Implemented for every such closure; it exists because a bound
/// `for<'v> FnOnce(V<'v>) -> BoxFuture<'v, T>` cannot be written directly when `V` is
/// an associated type.
pub trait AsyncViewsFn<'v, V, T>: FnOnce(V) -> BoxFuture<'v, T> {}

impl<'v, V, T, F: FnOnce(V) -> BoxFuture<'v, T>> AsyncViewsFn<'v, V, T> for F {}

mod sealed {
    pub trait Body {}
}

/// A task body that receives the views of the accesses `O`. Sealed: made by the
/// [`Scope`](crate::Scope) methods that submit tasks.
pub trait TaskBody<O: OwnedAccesses>: sealed::Body + Send + 'static {
    /// What the task produces.
    type Output: Send + 'static;
    #[doc(hidden)]
    fn for_each_input(&self, f: &mut dyn FnMut(TaskId));
    #[doc(hidden)]
    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<Self::Output>> + Send + 'r;
    #[doc(hidden)]
    /// Submits at once if the task window has a free slot, making the body (with
    /// the owned form of `accesses`) in the task's slot, held in `held`
    /// ([`Runtime::try_reserve`], then [`TaskBody::spawn_reserved`]); `Err(self)`
    /// when no slot is free now or the body cannot be made in one (async bodies):
    /// then [`TaskBody::spawn`] waits, and the caller holds the task itself.
    fn spawn_now<A: Accesses<Owned = O>>(
        self,
        rt: &Runtime,
        accesses: &A,
        name: &Option<Cow<'static, str>>,
        deps: &[TaskId],
        held: &mut HeldTasks,
    ) -> Result<Task<Self::Output>, Self>
    where
        Self: Sized,
    {
        if !Self::SPAWNS_RESERVED {
            return Err(self);
        }
        match rt.try_reserve() {
            Some(reserved) => Ok(self.spawn_reserved(reserved, accesses, name, deps, held)),
            None => Err(self),
        }
    }
    #[doc(hidden)]
    /// Whether the body can be made in a reserved slot ([`TaskBody::spawn_reserved`]).
    const SPAWNS_RESERVED: bool = false;
    #[doc(hidden)]
    /// Makes the body (with the owned form of `accesses`) in the slot of `reserved`
    /// and submits it, held in `held` ([`Reservation::submit_held`]). Only called
    /// when [`TaskBody::SPAWNS_RESERVED`].
    fn spawn_reserved<A: Accesses<Owned = O>>(
        self,
        _reserved: Reservation<'_>,
        _accesses: &A,
        _name: &Option<Cow<'static, str>>,
        _deps: &[TaskId],
        _held: &mut HeldTasks,
    ) -> Task<Self::Output>
    where
        Self: Sized,
    {
        unreachable!("taskweave: a body made in a reserved slot that cannot be")
    }
}

/// Builds the executor submission of `body`, names it and adds `deps`.
macro_rules! submit_with {
    ($submit:expr, $name:expr, $deps:expr) => {{
        let mut submit = $submit.after($deps.iter().copied());
        if let Some(name) = $name {
            submit = submit.name(name);
        }
        submit.submit()
    }};
}

/// Submits the closure `run`, waiting for a window slot (the path after
/// [`TaskBody::spawn_now`] found none).
fn spawn_closure<'r, T, F>(
    rt: &'r Runtime,
    run: F,
    name: Option<Cow<'static, str>>,
    deps: &[TaskId],
) -> impl Future<Output = Task<T>> + Send + 'r
where
    F: FnOnce() -> Result<T, BoxError> + Send + 'static,
    T: Send + 'static,
{
    submit_with!(rt.try_task(run), name, deps)
}

/// [`TaskBody::spawn_reserved`] of a closure body: `make_run(owned accesses, parts)`
/// makes the task's closure in the reserved slot, and must keep the owned accesses
/// whole (see [`Accesses::to_owned`]).
fn spawn_closure_reserved<A, P, R, T>(
    reserved: Reservation<'_>,
    accesses: &A,
    name: &Option<Cow<'static, str>>,
    deps: &[TaskId],
    held: &mut HeldTasks,
    parts: P,
    make_run: impl FnOnce(A::Owned, P) -> R,
) -> Task<T>
where
    A: Accesses,
    R: FnOnce() -> Result<T, BoxError> + Send + 'static,
    T: Send + 'static,
{
    reserved.submit_held(deps, name, held, || {
        // SAFETY: `make_run` (`run_sync` and the like) moves the owned accesses whole
        // into the task's closure, which keeps them together until it drops them.
        make_run(unsafe { accesses.to_owned() }, parts)
    })
}

/// Evaluates `$body` with `$views` bound to the views of `$accesses`, after the
/// manual-tensor check (whose registrations end with the block, after the views).
macro_rules! with_views {
    ($accesses:ident, |$views:ident| $body:expr) => {{
        let _checked = CheckGuard::acquire(&$accesses)?;
        // SAFETY: the task is running: its dependencies (derived by the map under
        // the tree lock, rules D1-D4 in `crate::data`) have finished, and the check
        // above registered its manual accesses (D5). Its own accesses were checked
        // not to alias at submission. `views` is called once, here, and the views
        // cannot outlive this block (their lifetime is the borrow of `$accesses`).
        let $views = unsafe { $accesses.views() };
        $body
    }};
}

/// The body of [`Scope::task`](crate::Scope::task).
pub struct SyncBody<F, T>(pub(crate) F, pub(crate) PhantomData<fn() -> T>);
/// The body of [`Scope::try_task`](crate::Scope::try_task).
pub struct TrySyncBody<F, T, E>(pub(crate) F, pub(crate) PhantomData<fn() -> (T, E)>);
/// The body of [`Scope::task_async`](crate::Scope::task_async).
pub struct AsyncBody<F, T>(pub(crate) F, pub(crate) PhantomData<fn() -> T>);
/// The body of [`Scope::try_task_async`](crate::Scope::try_task_async).
pub struct TryAsyncBody<F, T, E>(pub(crate) F, pub(crate) PhantomData<fn() -> (T, E)>);
/// The body of [`Scope::dataflow`](crate::Scope::dataflow).
pub struct DataflowBody<I, F, T>(
    pub(crate) I,
    pub(crate) F,
    pub(crate) PhantomData<fn() -> T>,
);

impl<F, T> sealed::Body for SyncBody<F, T> {}
impl<F, T, E> sealed::Body for TrySyncBody<F, T, E> {}
impl<F, T> sealed::Body for AsyncBody<F, T> {}
impl<F, T, E> sealed::Body for TryAsyncBody<F, T, E> {}
impl<I, F, T> sealed::Body for DataflowBody<I, F, T> {}

impl<O, F, T> TaskBody<O> for SyncBody<F, T>
where
    O: OwnedAccesses,
    F: for<'v> FnOnce(O::Views<'v>) -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn for_each_input(&self, _: &mut dyn FnMut(TaskId)) {}

    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<T>> + Send + 'r {
        spawn_closure(rt, run_sync(accesses, self.0), name, deps)
    }

    const SPAWNS_RESERVED: bool = true;

    fn spawn_reserved<A: Accesses<Owned = O>>(
        self,
        reserved: Reservation<'_>,
        accesses: &A,
        name: &Option<Cow<'static, str>>,
        deps: &[TaskId],
        held: &mut HeldTasks,
    ) -> Task<T> {
        spawn_closure_reserved(reserved, accesses, name, deps, held, self.0, run_sync)
    }
}

/// The task closure of a [`SyncBody`].
#[inline(always)]
fn run_sync<O, F, T>(accesses: O, body: F) -> impl FnOnce() -> Result<T, BoxError> + Send + 'static
where
    O: OwnedAccesses,
    F: for<'v> FnOnce(O::Views<'v>) -> T + Send + 'static,
    T: Send + 'static,
{
    move || Ok(with_views!(accesses, |views| body(views)))
}

impl<O, F, T, E> TaskBody<O> for TrySyncBody<F, T, E>
where
    O: OwnedAccesses,
    F: for<'v> FnOnce(O::Views<'v>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    type Output = T;

    fn for_each_input(&self, _: &mut dyn FnMut(TaskId)) {}

    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<T>> + Send + 'r {
        spawn_closure(rt, run_try_sync(accesses, self.0), name, deps)
    }

    const SPAWNS_RESERVED: bool = true;

    fn spawn_reserved<A: Accesses<Owned = O>>(
        self,
        reserved: Reservation<'_>,
        accesses: &A,
        name: &Option<Cow<'static, str>>,
        deps: &[TaskId],
        held: &mut HeldTasks,
    ) -> Task<T> {
        spawn_closure_reserved(reserved, accesses, name, deps, held, self.0, run_try_sync)
    }
}

/// The task closure of a [`TrySyncBody`].
#[inline(always)]
fn run_try_sync<O, F, T, E>(
    accesses: O,
    body: F,
) -> impl FnOnce() -> Result<T, BoxError> + Send + 'static
where
    O: OwnedAccesses,
    F: for<'v> FnOnce(O::Views<'v>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    move || {
        let result = with_views!(accesses, |views| body(views));
        result.map_err(Into::into)
    }
}

impl<O, F, T> TaskBody<O> for AsyncBody<F, T>
where
    O: OwnedAccesses,
    F: for<'v> AsyncViewsFn<'v, O::Views<'v>, T> + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn for_each_input(&self, _: &mut dyn FnMut(TaskId)) {}

    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<T>> + Send + 'r {
        let body = self.0;
        let task = rt.try_task_async(async move {
            let output = with_views!(accesses, |views| body(views).await);
            Ok::<T, BoxError>(output)
        });
        submit_with!(task, name, deps)
    }
}

impl<O, F, T, E> TaskBody<O> for TryAsyncBody<F, T, E>
where
    O: OwnedAccesses,
    F: for<'v> AsyncViewsFn<'v, O::Views<'v>, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    type Output = T;

    fn for_each_input(&self, _: &mut dyn FnMut(TaskId)) {}

    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<T>> + Send + 'r {
        let body = self.0;
        let task = rt.try_task_async(async move {
            let result = with_views!(accesses, |views| body(views).await);
            result.map_err(Into::into)
        });
        submit_with!(task, name, deps)
    }
}

impl<O, I, F, T> TaskBody<O> for DataflowBody<I, F, T>
where
    O: OwnedAccesses,
    I: Inputs,
    F: for<'v> FnOnce(I::Values, O::Views<'v>) -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn for_each_input(&self, f: &mut dyn FnMut(TaskId)) {
        self.0.for_each_id(f);
    }

    fn spawn<'r>(
        self,
        rt: &'r Runtime,
        accesses: O,
        name: Option<Cow<'static, str>>,
        deps: &[TaskId],
    ) -> impl Future<Output = Task<T>> + Send + 'r {
        let DataflowBody(inputs, body, _) = self;
        spawn_closure(rt, run_dataflow(accesses, (inputs, body)), name, deps)
    }

    const SPAWNS_RESERVED: bool = true;

    fn spawn_reserved<A: Accesses<Owned = O>>(
        self,
        reserved: Reservation<'_>,
        accesses: &A,
        name: &Option<Cow<'static, str>>,
        deps: &[TaskId],
        held: &mut HeldTasks,
    ) -> Task<T> {
        let DataflowBody(inputs, body, _) = self;
        let parts = (inputs, body);
        spawn_closure_reserved(reserved, accesses, name, deps, held, parts, run_dataflow)
    }
}

/// The task closure of a [`DataflowBody`].
#[inline(always)]
fn run_dataflow<O, I, F, T>(
    accesses: O,
    (inputs, body): (I, F),
) -> impl FnOnce() -> Result<T, BoxError> + Send + 'static
where
    O: OwnedAccesses,
    I: Inputs,
    F: for<'v> FnOnce(I::Values, O::Views<'v>) -> T + Send + 'static,
    T: Send + 'static,
{
    move || {
        // The inputs' ids are among `deps`: they have completed (had one failed, the
        // executor would have failed this task without running it).
        let values = inputs.take_values()?;
        Ok(with_views!(accesses, |views| body(values, views)))
    }
}
