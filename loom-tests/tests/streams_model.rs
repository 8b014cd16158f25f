//! The harness of the stream models (`streams_*.rs` include it with `#[path]`): the
//! streams crate's real ordering code on the executor's bare `Graph`, with a closed
//! flag per task so a model can check that nothing became ready too early.
#![cfg(taskweave_loom)]
#![allow(dead_code)] // each model uses part of the harness

use std::future::Future;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use taskweave_executor::TaskId;
use taskweave_executor::loom_hooks::Graph;
use taskweave_streams::loom_hooks::{Backend, Lane, LaunchPoll, Submitted};

/// Slots of every model's window (slots are never reused in these models).
pub const SLOTS: usize = 8;

/// A task and the tasks it must follow.
type MustFollow = (TaskId, Vec<TaskId>);

/// A task system without bodies: the executor's `Graph`, plus per slot whether the
/// task has closed (set just before it is completed), and what each task must
/// follow.
pub struct Device {
    /// The executor's bare task window.
    pub graph: Graph,
    closed: Vec<AtomicBool>,
    must_follow: Mutex<Vec<Option<MustFollow>>>,
    ready: Mutex<Vec<TaskId>>,
}

impl Device {
    /// A device with an empty window of [`SLOTS`] slots.
    pub fn new() -> Arc<Device> {
        Arc::new(Device {
            graph: Graph::new(SLOTS),
            closed: (0..SLOTS).map(|_| AtomicBool::new(false)).collect(),
            must_follow: Mutex::new(vec![None; SLOTS]),
            ready: Mutex::new(Vec::new()),
        })
    }

    /// Whether `id` has closed (or is closing).
    pub fn is_closed(&self, id: TaskId) -> bool {
        self.closed[id.index() as usize].load(Ordering::SeqCst)
    }

    /// Completes `id` (which must be ready) and returns what that made ready.
    pub fn complete(&self, id: TaskId) -> Vec<u32> {
        self.closed[id.index() as usize].store(true, Ordering::SeqCst);
        self.graph.complete(id, false)
    }

    /// Asserts that every task `id` must follow has closed.
    fn check_ready(&self, id: TaskId, must_follow: &[TaskId]) {
        for &before in must_follow {
            assert!(
                self.is_closed(before),
                "task {id} became ready before {before}, which it must follow"
            );
        }
    }

    /// Records what `id` must follow; checks it and queues `id` if it was ready at
    /// wiring. For models with a [`Device::run`] thread.
    fn submitted(&self, id: TaskId, ready: bool, must_follow: &[TaskId]) {
        self.must_follow.lock().unwrap()[id.index() as usize] = Some((id, must_follow.to_vec()));
        if ready {
            self.check_ready(id, must_follow);
            self.ready.lock().unwrap().push(id);
        }
    }

    /// The device thread: completes ready tasks until `total` have completed,
    /// checking each task made ready by a completion at that instant (it is the only
    /// completer, so nothing closes between the two).
    pub fn run(&self, total: usize) {
        let mut completed = 0;
        while completed < total {
            let Some(id) = self.ready.lock().unwrap().pop() else {
                loom::thread::yield_now();
                continue;
            };
            let readied = self.complete(id);
            completed += 1;
            for index in readied {
                // The submitter records what the task must follow right after wiring
                // it; wait for that (nothing closes meanwhile: we are the completer).
                let (consumer, must_follow) = loop {
                    let known = self.must_follow.lock().unwrap()[index as usize].clone();
                    match known {
                        Some(known) => break known,
                        None => loom::thread::yield_now(),
                    }
                };
                self.check_ready(consumer, &must_follow);
                self.ready.lock().unwrap().push(consumer);
            }
        }
    }
}

/// A held task of the model: its id and the device that knows whether it closed.
#[derive(Clone)]
pub struct Point {
    /// The task.
    pub id: TaskId,
    device: Arc<Device>,
}

/// The streams' backend for the models.
pub struct Model;

impl Backend for Model {
    type Point = Point;
    type Error = ();

    fn id(point: &Point) -> TaskId {
        point.id
    }

    fn is_finished(point: &Point) -> bool {
        point.device.is_closed(point.id)
    }

    fn completed_ok(_: &Point) -> bool {
        // The model always passes the tail, so its wiring is what gets checked.
        false
    }

    async fn finished(point: Point) -> Result<(), ()> {
        while !point.device.is_closed(point.id) {
            loom::thread::yield_now();
        }
        Ok(())
    }
}

/// A lane of the model (in a std `Arc`, as stream handles hold theirs: handle
/// reference counts are not part of the modelled protocol).
pub fn lane(name: &str) -> std::sync::Arc<Lane<Model>> {
    std::sync::Arc::new(Lane::new(std::sync::Arc::from(name)))
}

/// Polls `future` on this loom thread until it is ready (the model's futures never
/// wait for a wake: they yield the thread instead).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        loom::thread::yield_now();
    }
}

/// Launches a task on `lane` through the streams crate's real launch protocol;
/// returns its id, whether it was ready at wiring, and the dependencies the lane gave
/// it.
pub fn launch(lane: &Lane<Model>, device: &Arc<Device>) -> (TaskId, bool, Vec<TaskId>) {
    let attempt = lane.try_launch(None, (), |(), deps| {
        let deps: Vec<TaskId> = deps.collect();
        let (id, ready) = device
            .graph
            .submit(&deps)
            .expect("the model's window is full");
        let point = Point {
            id,
            device: device.clone(),
        };
        Submitted::<_, Point, ()>::Ready((id, ready, deps), Some(point))
    });
    match attempt {
        LaunchPoll::Launched(launched) => launched,
        _ => unreachable!("no launch of the model waits for a slot"),
    }
}

/// [`launch`] for models with a [`Device::run`] thread: also records what the task
/// must follow (and checks it, if it was ready at wiring). Returns its id and the
/// dependencies the lane gave it.
pub fn launch_checked(
    lane: &Lane<Model>,
    device: &Arc<Device>,
    must_follow: &[TaskId],
) -> (TaskId, Vec<TaskId>) {
    let (id, ready, deps) = launch(lane, device);
    device.submitted(id, ready, must_follow);
    (id, deps)
}
