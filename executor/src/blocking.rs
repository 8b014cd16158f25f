//! Running blocking work off the workers (`Runtime::task_blocking`).

use futures::channel::oneshot;

use crate::task::BoxError;

/// Runs `body` on a thread that is not a worker and resolves to its result; a panic
/// in `body` becomes an error of the task.
pub(crate) async fn run_blocking<F, T>(body: F) -> Result<T, BoxError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job = move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let _ = tx.send(outcome);
    };
    spawn_blocking(job);
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_panic)) => Err("the blocking body panicked".into()),
        Err(_cancelled) => Err("the blocking body's thread went away".into()),
    }
}

#[cfg(feature = "tokio")]
fn spawn_blocking(job: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(job)),
        Err(_) => spawn_thread(job),
    }
}

#[cfg(not(feature = "tokio"))]
fn spawn_blocking(job: impl FnOnce() + Send + 'static) {
    spawn_thread(job);
}

fn spawn_thread(job: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name("taskweave-blocking".to_owned())
        .spawn(job)
        .expect("taskweave: failed to spawn a thread for blocking work");
}
