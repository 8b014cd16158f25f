//! Task bodies that receive views: sync and async, fallible or not, with or without
//! typed inputs. Each wraps the user's closure so that, when the task runs, it
//! checks manual accesses, creates the views, and calls the closure with them.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use futures::future::Either;

use crate::data::{CheckGuard, OwnedAccesses};
use crate::{Inputs, Runtime, Task, TaskId};

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

/// Closures up to this size are handed to the executor as they are (it stores
/// small bodies inline in the task slot); larger ones are boxed first.
const INLINE_CLOSURE: usize = 48;

/// Submits the closure `run`. A large closure (several accesses) is boxed here, once:
/// the executor would box it anyway, and moving a pointer through its builder is
/// cheaper than moving the accesses.
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
    if std::mem::size_of::<F>() <= INLINE_CLOSURE {
        Either::Left(submit_with!(rt.try_task(run), name, deps))
    } else {
        let run = Box::new(run);
        Either::Right(submit_with!(rt.try_task(run), name, deps))
    }
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
        let body = self.0;
        let run = move || -> Result<T, BoxError> {
            let output = with_views!(accesses, |views| body(views));
            Ok(output)
        };
        spawn_closure(rt, run, name, deps)
    }
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
        let body = self.0;
        let run = move || -> Result<T, BoxError> {
            let result = with_views!(accesses, |views| body(views));
            result.map_err(Into::into)
        };
        spawn_closure(rt, run, name, deps)
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
        let run = move || -> Result<T, BoxError> {
            // The inputs' ids are among `deps`: they have completed (had one failed,
            // the executor would have failed this task without running it).
            let values = inputs.take_values()?;
            let output = with_views!(accesses, |views| body(values, views));
            Ok(output)
        };
        spawn_closure(rt, run, name, deps)
    }
}
