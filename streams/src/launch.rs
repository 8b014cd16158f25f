//! Launching a task on a stream: the `Launch` builder and its future, which add the
//! stream's tail (and pending waits) to the task's dependencies (rules L1, L2).

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use taskweave_executor::{BoxError, Inputs, Submission, Submit, Task, TaskId};

use crate::backend::OnRuntime;
use crate::lane::{Lane, LaunchPoll, Reservation, Submitted};
use crate::stream::Stream;

/// A task about to be launched on a stream: set its name and extra dependencies,
/// then `.await` it (or `.submit().await`, or `.submit_blocking()`) to get its
/// [`Task`] handle. Mirrors the executor's [`Submit`].
///
/// ```
/// use taskweave_executor::Runtime;
/// use taskweave_streams::Streams;
/// let rt = Runtime::builder().workers(2).build();
/// let streams = Streams::new(&rt);
/// let s = streams.create_stream("s");
/// let elsewhere = rt.task(|| 1).submit_blocking();
/// // Runs after the previous launch on `s` *and* after `elsewhere`.
/// let t = s.task(|| 2).name("two").after([elsewhere.id()]).submit_blocking();
/// assert_eq!(t.wait_blocking().unwrap() + elsewhere.wait_blocking().unwrap(), 3);
/// ```
#[must_use = "a task is launched only by .await, .submit().await or .submit_blocking()"]
pub struct Launch<'s, T, B> {
    stream: &'s Stream,
    submit: Submit<'s, T, B>,
}

impl<'s, T, B> Launch<'s, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    /// Names the task (shown in errors and diagnostics).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.submit = self.submit.name(name);
        self
    }

    /// Bounds the task's deferred completions (see [`Submit::deadline`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.submit = self.submit.deadline(deadline);
        self
    }

    /// Adds explicit dependencies, on top of the stream order (see
    /// [`Submit::after`]).
    pub fn after<I: IntoIterator<Item = TaskId>>(mut self, deps: I) -> Self {
        self.submit = self.submit.after(deps);
        self
    }

    /// Launches the task: it runs after the stream's previous launch (and whatever
    /// the stream was told to wait for). The future waits only while the task window
    /// is full (back-pressure); later launches on the stream queue behind it.
    pub fn submit(self) -> LaunchFuture<'s, T, B> {
        LaunchFuture {
            lane: self.stream.lane(),
            submission: self.submit.submit(),
            state: LaunchState::Start,
        }
    }

    /// Launches from a non-async caller, blocking while the task window is full. Do
    /// not call it from inside a task body when the window may be full.
    pub fn submit_blocking(self) -> Task<T> {
        let runtime = self.stream.runtime();
        runtime.block_on(self.submit())
    }
}

impl<'s, T, B> IntoFuture for Launch<'s, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    type Output = Task<T>;
    type IntoFuture = LaunchFuture<'s, T, B>;

    fn into_future(self) -> Self::IntoFuture {
        self.submit()
    }
}

/// The future of [`Launch::submit`]: resolves to the task's handle once it has been
/// submitted in stream order.
#[must_use = "futures do nothing unless awaited"]
pub struct LaunchFuture<'s, T, B> {
    lane: &'s Lane<OnRuntime>,
    /// The executor submission; the lane adds its dependencies in place (L1).
    submission: Submission<'s, T, B>,
    state: LaunchState<'s>,
}

enum LaunchState<'s> {
    /// Not submitted yet (or queued behind a reserved launch).
    Start,
    /// Dependencies chosen, waiting for a window slot; the lane is reserved (L2).
    Reserved(Reservation<'s, OnRuntime>),
    /// Resolved.
    Done,
}

// The body is moved into its task slot, never pinned here.
impl<T, B> Unpin for LaunchFuture<'_, T, B> {}

impl<T, B> Future for LaunchFuture<'_, T, B>
where
    B: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    type Output = Task<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Task<T>> {
        let this = &mut *self;
        match this.state {
            LaunchState::Start => {
                let attempt = this.lane.try_launch(
                    Some(cx.waker()),
                    &mut this.submission,
                    |submission, deps| {
                        // L1: under the lane lock, depend on the tail and the pending
                        // waits, and submit.
                        match deps.tail_only() {
                            Ok(tail) => submission.after(tail),
                            Err(deps) => submission.after(deps),
                        };
                        // L3: the lane holds a watch, not the bare id; the executor
                        // counts it in when it publishes the task.
                        match submission.poll_watched(cx) {
                            Poll::Ready((task, point)) => Submitted::Ready(task, point),
                            Poll::Pending => Submitted::Blocked(()),
                        }
                    },
                );
                match attempt {
                    LaunchPoll::Launched(task) => {
                        this.state = LaunchState::Done;
                        Poll::Ready(task)
                    }
                    LaunchPoll::Queued(_) => Poll::Pending,
                    LaunchPoll::Reserved((), reservation) => {
                        this.state = LaunchState::Reserved(reservation);
                        Poll::Pending
                    }
                }
            }
            LaunchState::Reserved(_) => match this.submission.poll_watched(cx) {
                Poll::Ready((task, point)) => {
                    let LaunchState::Reserved(reservation) =
                        std::mem::replace(&mut this.state, LaunchState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    reservation.finish(point);
                    Poll::Ready(task)
                }
                Poll::Pending => Poll::Pending,
            },
            LaunchState::Done => panic!("taskweave: stream launch polled after completion"),
        }
    }
}

impl<T, B> fmt::Debug for Launch<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("stream", &self.stream.name())
            .finish_non_exhaustive()
    }
}

impl<T, B> fmt::Debug for LaunchFuture<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            LaunchState::Start => "start",
            LaunchState::Reserved(_) => "waiting for a window slot",
            LaunchState::Done => "done",
        };
        f.debug_struct("LaunchFuture")
            .field("stream", self.lane.name())
            .field("state", &state)
            .finish()
    }
}

/// The launch builders: the runtime's, ordered on this stream.
impl Stream {
    /// Launches any executor submission on this stream: `submit` (built by
    /// [`Runtime::task`](taskweave_executor::Runtime::task) and friends, or by a
    /// layer above the executor that adds its own dependencies) runs after the
    /// stream's previous launch, on top of its own dependencies.
    ///
    /// `submit` must be a submission to this stream's runtime.
    pub fn launch<'s, T, B>(&'s self, submit: Submit<'s, T, B>) -> Launch<'s, T, B>
    where
        B: Future<Output = Result<T, BoxError>> + Send + 'static,
        T: Send + 'static,
    {
        Launch {
            stream: self,
            submit,
        }
    }

    /// Launches a closure (see [`Runtime::task`](taskweave_executor::Runtime::task)).
    #[track_caller]
    pub fn task<F, T>(
        &self,
        body: F,
    ) -> Launch<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.launch(self.runtime().task(body))
    }

    /// Launches a closure that may fail (see
    /// [`Runtime::try_task`](taskweave_executor::Runtime::try_task)).
    #[track_caller]
    pub fn try_task<F, T, E>(
        &self,
        body: F,
    ) -> Launch<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T, E>>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        self.launch(self.runtime().try_task(body))
    }

    /// Launches a future (see
    /// [`Runtime::task_async`](taskweave_executor::Runtime::task_async)).
    #[track_caller]
    pub fn task_async<Fut>(
        &self,
        body: Fut,
    ) -> Launch<
        '_,
        Fut::Output,
        impl Future<Output = Result<Fut::Output, BoxError>> + Send + 'static + use<Fut>,
    >
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.launch(self.runtime().task_async(body))
    }

    /// Launches a future that may fail (see
    /// [`Runtime::try_task_async`](taskweave_executor::Runtime::try_task_async)).
    #[track_caller]
    pub fn try_task_async<Fut, T, E>(
        &self,
        body: Fut,
    ) -> Launch<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<Fut, T, E>>
    where
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        self.launch(self.runtime().try_task_async(body))
    }

    /// Launches a closure that blocks, run off the workers (see
    /// [`Runtime::task_blocking`](taskweave_executor::Runtime::task_blocking)).
    #[track_caller]
    pub fn task_blocking<F, T>(
        &self,
        body: F,
    ) -> Launch<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<F, T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.launch(self.runtime().task_blocking(body))
    }

    /// Launches a dataflow task: it runs after the stream's previous launch and after
    /// every input, and receives the inputs' outputs (see
    /// [`Runtime::dataflow`](taskweave_executor::Runtime::dataflow)).
    #[track_caller]
    pub fn dataflow<I, F, T>(
        &self,
        inputs: I,
        body: F,
    ) -> Launch<'_, T, impl Future<Output = Result<T, BoxError>> + Send + 'static + use<I, F, T>>
    where
        I: Inputs,
        F: FnOnce(I::Values) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.launch(self.runtime().dataflow(inputs, body))
    }

    /// Launches a dataflow task whose body is async (see
    /// [`Runtime::dataflow_async`](taskweave_executor::Runtime::dataflow_async)).
    #[track_caller]
    pub fn dataflow_async<I, F, Fut>(
        &self,
        inputs: I,
        body: F,
    ) -> Launch<
        '_,
        Fut::Output,
        impl Future<Output = Result<Fut::Output, BoxError>> + Send + 'static + use<I, F, Fut>,
    >
    where
        I: Inputs,
        F: FnOnce(I::Values) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.launch(self.runtime().dataflow_async(inputs, body))
    }
}
