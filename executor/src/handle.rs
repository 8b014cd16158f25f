//! Handles to submitted tasks: `Task<T>` (the typed output), `SharedTask<T>`,
//! `when_all`, and waiting on a bare `TaskId`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::TryJoinAll;

use crate::error::TaskError;
use crate::shared::Shared;
use crate::sync::{Arc, Mutex, OnceLock};
use crate::task::{Closed, Fanout, TaskId};

/// The handle of a submitted task: a future that resolves to the task's output, or to
/// the [`TaskError`] that says why there is none.
///
/// Dropping the handle does not cancel the task (fire and forget); the slot is
/// reclaimed once the task has finished. Polling again after `Ready` panics.
///
/// ```
/// use taskweave_executor::Runtime;
/// let rt = Runtime::builder().workers(2).build();
/// let answer = rt.block_on(async {
///     let t = rt.task(|| 6 * 7).name("answer").await;
///     t.await
/// });
/// assert_eq!(answer.unwrap(), 42);
/// ```
#[must_use = "dropping a Task handle lets the task run unobserved (fire and forget)"]
pub struct Task<T> {
    pub(crate) shared: Arc<Shared>,
    id: TaskId,
    state: HandleState,
    output: PhantomData<T>,
}

enum HandleState {
    /// Holds a reference on the slot (R10).
    Live,
    /// The output (or error) was handed out; the reference is released.
    Done,
    /// Never got a slot. Boxed: the error is rare and large, and every `Task` handle
    /// is moved a few times on the submit path.
    Rejected(Option<Box<TaskError>>),
}

impl<T: Send + 'static> Task<T> {
    pub(crate) fn new(shared: Arc<Shared>, id: TaskId) -> Self {
        Task {
            shared,
            id,
            state: HandleState::Live,
            output: PhantomData,
        }
    }

    pub(crate) fn rejected(
        shared: Arc<Shared>,
        name: Option<std::borrow::Cow<'static, str>>,
    ) -> Self {
        let error = TaskError::Shutdown { name };
        Task {
            shared,
            id: TaskId::INVALID,
            state: HandleState::Rejected(Some(Box::new(error))),
            output: PhantomData,
        }
    }

    /// The task's id, to use as an explicit dependency or with [`Runtime::wait`](crate::Runtime::wait).
    /// [`TaskId::INVALID`] if the task was rejected at submission.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// A [`TaskWatch`] on this task (keeps its outcome readable after the handle is
    /// gone). `None` if the task was rejected at submission.
    pub fn watch(&self) -> Option<TaskWatch> {
        match self.state {
            HandleState::Rejected(_) => None,
            _ => {
                let slot = &self.shared.window.slots[self.id.index() as usize];
                slot.try_acquire(self.id.generation())
                    .then(|| TaskWatch::new_acquired(self.shared.clone(), self.id))
            }
        }
    }

    /// Takes one more reference on the task's slot for a holder other than this
    /// handle; `false` if there is no slot to hold (rejected, or left it).
    pub(crate) fn hold_slot(&self) -> bool {
        let slot = || &self.shared.window.slots[self.id.index() as usize];
        match self.state {
            // The handle's own reference keeps the slot: adding one needs no check.
            HandleState::Live => {
                slot().acquire_more();
                true
            }
            HandleState::Done => slot().try_acquire(self.id.generation()),
            HandleState::Rejected(_) => false,
        }
    }

    /// Blocks the calling thread until the task has finished and returns its output.
    pub fn wait_blocking(self) -> Result<T, TaskError> {
        crate::block_on::block_on(self)
    }

    /// Turns the handle into one that can be cloned; every clone resolves to a clone
    /// of the output. Useful to feed one output to several dataflow consumers.
    pub fn shared(self) -> SharedTask<T>
    where
        T: Clone,
    {
        SharedTask {
            inner: Arc::new(SharedInner {
                id: self.id,
                runtime: Arc::clone(&self.shared),
                task: Mutex::new(Some(self)),
                outcome: OnceLock::new(),
            }),
            token: None,
        }
    }

    /// Whether the task has finished (completed, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        match self.state {
            HandleState::Live => !self.shared.is_open(self.id),
            _ => true,
        }
    }

    /// The outcome of a finished task; `None` while it runs (R5).
    fn try_take(&mut self) -> Option<Result<T, TaskError>> {
        match &mut self.state {
            HandleState::Live => {}
            HandleState::Done => panic!("taskweave: Task polled after it returned its output"),
            HandleState::Rejected(error) => {
                let error = error
                    .take()
                    .expect("taskweave: Task polled after it returned its output");
                self.state = HandleState::Done;
                return Some(Err(*error));
            }
        }
        let slot = &self.shared.window.slots[self.id.index() as usize];
        let outcome = match slot.fanout_state(self.id.generation()) {
            Fanout::Open => return None,
            Fanout::Closed(Closed::Ok) => {
                // SAFETY: R5: the task completed and this unique handle is the only taker;
                // `T` is the type the body was installed with (`Task<T>` came from it).
                let output = unsafe { slot.take_output::<T>() };
                Ok(output.expect("taskweave: task output taken twice"))
            }
            Fanout::Closed(Closed::Failed) => {
                // SAFETY: R5: meta is read-only after the close.
                Err(slot
                    .meta
                    .with(|meta| unsafe { (*meta).error.clone() })
                    .expect("taskweave: failed task without an error"))
            }
            Fanout::Stale => unreachable!("taskweave: a live handle keeps its slot"),
        };
        self.state = HandleState::Done;
        self.shared.release(self.id.index());
        Some(outcome)
    }

    /// The outcome of a task known to have finished (a dataflow input).
    pub(crate) fn take_finished(mut self) -> Result<T, TaskError> {
        self.try_take()
            .expect("taskweave: dataflow input read before its task finished")
    }
}

impl<T: Send + 'static> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.try_take() {
            return Poll::Ready(outcome);
        }
        let slot = &self.shared.window.slots[self.id.index() as usize];
        slot.join_waker.register(cx.waker());
        // Look again: the task may have finished before the waker was stored.
        match self.try_take() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

// The handle never pins `T`: the output is moved out of the slot by value.
impl<T> Unpin for Task<T> {}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let HandleState::Live = self.state {
            self.shared.release(self.id.index());
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A clonable [`Task`] handle (see [`Task::shared`]); each clone resolves to a clone of
/// the output. Clones may be awaited, or used as dataflow inputs, concurrently.
#[must_use = "futures do nothing unless awaited"]
pub struct SharedTask<T: Clone + Send + 'static> {
    inner: Arc<SharedInner<T>>,
    /// This clone's registration with the runtime's id waiters, while it waits.
    token: Option<u64>,
}

struct SharedInner<T> {
    id: TaskId,
    runtime: Arc<Shared>,
    /// The one real handle, until its outcome has been taken into `outcome`.
    task: Mutex<Option<Task<T>>>,
    outcome: OnceLock<Result<T, TaskError>>,
}

impl<T: Clone + Send + 'static> SharedInner<T> {
    /// The outcome once the task has finished (taken from the real handle by the first
    /// caller that sees it finished), `None` before.
    fn outcome(&self) -> Option<Result<T, TaskError>> {
        if let Some(outcome) = self.outcome.get() {
            return Some(outcome.clone());
        }
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(outcome) = self.outcome.get() {
            return Some(outcome.clone());
        }
        let finished = task.as_ref().is_some_and(Task::is_finished);
        if !finished {
            return None;
        }
        let outcome = task.take().expect("checked above").take_finished();
        Some(self.outcome.get_or_init(|| outcome).clone())
    }
}

impl<T: Clone + Send + 'static> Clone for SharedTask<T> {
    fn clone(&self) -> Self {
        SharedTask {
            inner: Arc::clone(&self.inner),
            token: None,
        }
    }
}

impl<T: Clone + Send + 'static> SharedTask<T> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.inner.id
    }

    /// The outcome of a task known to have finished (a dataflow input).
    pub(crate) fn take_finished(self) -> Result<T, TaskError> {
        self.inner
            .outcome()
            .expect("taskweave: dataflow input read before its task finished")
    }
}

impl<T: Clone + Send + 'static> Future for SharedTask<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.inner.outcome() {
            return Poll::Ready(outcome);
        }
        let inner = Arc::clone(&self.inner);
        let token = inner
            .runtime
            .id_waiters
            .register(self.token, inner.id.index(), cx.waker());
        self.token = Some(token);
        // Look again after registering (see `IdWaiters`).
        match inner.outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

impl<T: Clone + Send + 'static> Drop for SharedTask<T> {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            self.inner.runtime.id_waiters.unregister(token);
        }
    }
}

impl<T: Clone + Send + 'static> fmt::Debug for SharedTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTask")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// Waits for every task and returns their outputs in order, or the first error.
///
/// ```
/// use taskweave_executor::{Runtime, when_all};
/// let rt = Runtime::builder().workers(2).build();
/// let squares = rt.block_on(async {
///     let mut tasks = Vec::new();
///     for i in 0..4u64 {
///         tasks.push(rt.task(move || i * i).await);
///     }
///     when_all(tasks).await
/// });
/// assert_eq!(squares.unwrap(), vec![0, 1, 4, 9]);
/// ```
pub fn when_all<T, I>(tasks: I) -> WhenAll<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = Task<T>>,
{
    WhenAll {
        inner: futures::future::try_join_all(tasks),
    }
}

/// The future of [`when_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct WhenAll<T: Send + 'static> {
    inner: TryJoinAll<Task<T>>,
}

impl<T: Send + 'static> Future for WhenAll<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl<T: Send + 'static> fmt::Debug for WhenAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenAll").finish_non_exhaustive()
    }
}

/// The future of [`Runtime::wait`](crate::Runtime::wait): ready once the task has
/// finished in any way (or its id is stale).
#[must_use = "futures do nothing unless awaited"]
pub struct WaitTask {
    shared: Arc<Shared>,
    id: TaskId,
    token: Option<u64>,
}

impl WaitTask {
    pub(crate) fn new(shared: Arc<Shared>, id: TaskId) -> Self {
        WaitTask {
            shared,
            id,
            token: None,
        }
    }

    fn finished(&self) -> bool {
        !self.shared.is_open(self.id)
    }
}

impl Future for WaitTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.finished() {
            return Poll::Ready(());
        }
        let token = self
            .shared
            .id_waiters
            .register(self.token, self.id.index(), cx.waker());
        self.token = Some(token);
        // Look again after registering (see `IdWaiters` for why this suffices).
        if self.finished() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WaitTask {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            self.shared.id_waiters.unregister(token);
        }
    }
}

impl fmt::Debug for WaitTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitTask").field("id", &self.id).finish()
    }
}

/// An untyped, clonable handle that keeps a task's outcome readable: while a
/// `TaskWatch` exists the task's slot is not reused, so a dependency on its id still
/// sees a failure, and the watch itself resolves to `Ok(())` or the task's error.
///
/// Streams and scopes use it to hold on to the tasks they order.
///
/// ```
/// use taskweave_executor::Runtime;
/// let rt = Runtime::builder().workers(1).build();
/// let task = rt.try_task(|| Err::<(), _>("no")).submit_blocking();
/// let watch = task.watch().expect("submitted");
/// drop(task);
/// assert!(rt.block_on(watch.clone()).is_err());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TaskWatch {
    shared: Arc<Shared>,
    id: TaskId,
    token: Option<u64>,
}

impl TaskWatch {
    /// Holds a new reference on a task that is known to occupy its slot.
    pub(crate) fn new_acquired(shared: Arc<Shared>, id: TaskId) -> Self {
        TaskWatch {
            shared,
            id,
            token: None,
        }
    }

    /// The watched task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The outcome once the task has finished; `None` while it runs.
    pub fn outcome(&self) -> Option<Result<(), TaskError>> {
        let slot = &self.shared.window.slots[self.id.index() as usize];
        match slot.fanout_state(self.id.generation()) {
            Fanout::Open => None,
            Fanout::Closed(Closed::Ok) => Some(Ok(())),
            // SAFETY: R5: meta is read-only after the close; our reference keeps it.
            Fanout::Closed(Closed::Failed) => slot
                .meta
                .with(|meta| unsafe { (*meta).error.clone() })
                .map(Err),
            Fanout::Stale => unreachable!("taskweave: a watch keeps its slot"),
        }
    }

    /// Whether the task has finished in any way.
    pub fn is_finished(&self) -> bool {
        self.outcome().is_some()
    }
}

impl Clone for TaskWatch {
    fn clone(&self) -> Self {
        self.shared.window.slots[self.id.index() as usize].acquire_more();
        TaskWatch {
            shared: Arc::clone(&self.shared),
            id: self.id,
            token: None,
        }
    }
}

impl Future for TaskWatch {
    type Output = Result<(), TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.outcome() {
            return Poll::Ready(outcome);
        }
        let token = self
            .shared
            .id_waiters
            .register(self.token, self.id.index(), cx.waker());
        self.token = Some(token);
        // Look again after registering (see `IdWaiters`).
        match self.outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

impl Drop for TaskWatch {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            self.shared.id_waiters.unregister(token);
        }
        self.shared.release(self.id.index());
    }
}

impl fmt::Debug for TaskWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskWatch")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
