//! A stream's ordering state (its *lane*): the tail, the pending waits, and the
//! protocol that makes each launch wait for the one before it.
//!
//! # Invariants
//!
//! A [`Lane`] holds, under one mutex:
//!
//! | field | meaning |
//! |---|---|
//! | `tail` | point of the last task launched on the lane (`None` before the first) |
//! | `waits` | points the next launch must also wait for (events waited on, joined streams) |
//! | `reserved` | a launch chose its dependencies and now waits for a window slot |
//! | `queued` | wakers of launches waiting for that reservation to end |
//!
//! Each `// L<n>` comment in this crate cites one of these rules.
//!
//! - **L1 (order).** A launch depends on the tail and on every pending wait, then
//!   becomes the tail and consumes those waits. Launches are linearised by the lane
//!   lock; that order is the stream's order, so each launch runs after the previous
//!   one (and, transitively, after all earlier ones). A tail that has already
//!   completed successfully may be left out of the dependencies: the executor would
//!   count it satisfied at once, and the (SeqCst) load that saw it completed orders
//!   the new launch after it.
//! - **L2 (reservation).** A launch chooses its dependencies and submits while holding
//!   the lock. If the executor's window is full (back-pressure) the submission waits;
//!   the launch then keeps the lane *reserved* until it has been submitted or
//!   dropped. Other launches queue behind it instead of slipping in between the
//!   dependencies it chose and its becoming the tail. Waits added meanwhile are
//!   appended after the `consumed` prefix it chose, so they go to the next launch.
//! - **L3 (points are held).** Tail, waits, snapshots and recorded events hold
//!   points ([`Backend::Point`], the runtime's `TaskWatch`), never bare ids. A task a
//!   lane depends on therefore keeps its outcome readable however long ago it
//!   finished and whether or not its handle was dropped: a failed task fails the next
//!   launch (`DependencyFailed`) and `synchronize` reports it. Since every launch
//!   depends on the tail, a failure is sticky: all later launches fail too.
//! - **L4 (no user code under the lock).** Points replaced or consumed under the lock
//!   are dropped after it is released (dropping a task's last holder reclaims its
//!   slot and drops its output, which runs user code that might touch this lane), and
//!   queued wakers are woken after it is released.
//! - **L5 (snapshots).** A snapshot (record an event, fork, synchronize, query) is
//!   the tail plus the pending waits at one instant under the lock. A reserved launch
//!   is not in it: it has not been launched yet.
//! - **L6 (no nesting).** The lane lock and an event's lock are never held together,
//!   so lanes and events cannot deadlock against each other.

use std::fmt;
use std::task::Waker;

use taskweave_executor::TaskId;

use crate::backend::Backend;
use crate::sync::{Arc, Mutex, lock};

/// The ordering state of one stream (see the module documentation for its rules).
pub struct Lane<X: Backend> {
    name: Arc<str>,
    state: Mutex<LaneState<X::Point>>,
}

struct LaneState<P> {
    tail: Option<P>,
    waits: Vec<P>,
    reserved: bool,
    queued: Vec<Waker>,
}

/// What a launch's submit closure reports.
#[derive(Debug)]
pub enum Submitted<O, P, S> {
    /// The task was submitted (or rejected): the caller's output, and the new task's
    /// point (`None` when the runtime rejected it, which leaves the lane unchanged).
    Ready(O, Option<P>),
    /// The submission waits for a window slot; `S` is what the caller needs to resume
    /// it. The lane stays reserved (L2).
    Blocked(S),
}

/// The result of [`Lane::try_launch`].
pub enum LaunchPoll<'a, X: Backend, V, O, S> {
    /// Another launch holds the lane (L2); the waker given was queued and will be
    /// woken when it lets go. `V` is handed back untouched.
    Queued(V),
    /// Launched: the submit closure's output.
    Launched(O),
    /// The submission waits for a window slot; the lane is reserved until the
    /// [`Reservation`] is finished or dropped.
    Reserved(S, Reservation<'a, X>),
}

/// A launch that chose its dependencies and waits for a window slot (L2). Finish it
/// with the new task's point; dropping it unreserves the lane without launching.
#[must_use = "dropping a Reservation abandons the launch"]
pub struct Reservation<'a, X: Backend> {
    lane: &'a Lane<X>,
    consumed: usize,
    settled: bool,
}

/// The dependencies a lane gives a launch: the tail, then the pending waits (L1).
pub struct Deps<'a, X: Backend> {
    tail: Option<&'a X::Point>,
    waits: std::slice::Iter<'a, X::Point>,
}

impl<'a, X: Backend> Deps<'a, X> {
    /// The common case: no pending waits, so the only dependency is the tail — none
    /// if there is no tail or it has already completed successfully (a dependency
    /// on it would be satisfied at once). `Err(self)` when there are waits too.
    #[inline]
    pub fn tail_only(self) -> Result<Option<TaskId>, Self> {
        if self.waits.len() == 0 {
            Ok(self.tail.filter(|tail| !X::completed_ok(tail)).map(X::id))
        } else {
            Err(self)
        }
    }
}

impl<X: Backend> Iterator for Deps<'_, X> {
    type Item = TaskId;

    #[inline]
    fn next(&mut self) -> Option<TaskId> {
        match self.tail.take() {
            Some(tail) => Some(X::id(tail)),
            None => self.waits.next().map(X::id),
        }
    }
}

/// A lane's point at one instant (L5): everything launched on it so far, plus what
/// its next launch would wait for.
pub struct Snapshot<X: Backend> {
    tail: Option<X::Point>,
    waits: Vec<X::Point>,
}

impl<X: Backend> Clone for Snapshot<X> {
    fn clone(&self) -> Self {
        Snapshot {
            tail: self.tail.clone(),
            waits: self.waits.clone(),
        }
    }
}

impl<X: Backend> Snapshot<X> {
    /// The points, tail first.
    pub fn points(&self) -> impl Iterator<Item = &X::Point> {
        self.tail.iter().chain(self.waits.iter())
    }

    /// Whether every task in the snapshot has finished.
    pub fn is_finished(&self) -> bool {
        self.points().all(X::is_finished)
    }

    /// Waits until every task in the snapshot has finished; resolves to the first
    /// error among them (tail first), if any.
    pub async fn finished(self) -> Result<(), X::Error> {
        let mut first = Ok(());
        for point in self.tail.into_iter().chain(self.waits) {
            let outcome = X::finished(point).await;
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }
}

impl<X: Backend> Lane<X> {
    /// An empty lane: its first launch waits for nothing.
    pub fn new(name: Arc<str>) -> Self {
        Lane {
            name,
            state: Mutex::new(LaneState {
                tail: None,
                waits: Vec::new(),
                reserved: false,
                queued: Vec::new(),
            }),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Launches one task on the lane.
    ///
    /// Unless another launch holds the lane (then `Queued(value)`), `submit` runs under
    /// the lane lock with `value` and the lane's dependencies (L1) and must submit the
    /// task with them (plus whatever else it depends on). If it reports
    /// [`Submitted::Ready`] the new point becomes the tail; if it reports
    /// [`Submitted::Blocked`] the lane stays reserved (L2) and the caller must finish
    /// or drop the returned [`Reservation`].
    pub fn try_launch<V, O, S>(
        &self,
        waker: Option<&Waker>,
        value: V,
        submit: impl FnOnce(V, Deps<'_, X>) -> Submitted<O, X::Point, S>,
    ) -> LaunchPoll<'_, X, V, O, S> {
        let mut state = lock(&self.state);
        if state.reserved {
            // L2: wait behind the launch that holds the lane.
            if let Some(waker) = waker
                && !state.queued.iter().any(|w| w.will_wake(waker))
            {
                state.queued.push(waker.clone());
            }
            return LaunchPoll::Queued(value);
        }
        let consumed = state.waits.len();
        let deps = Deps {
            tail: state.tail.as_ref(),
            waits: state.waits.iter(),
        };
        match submit(value, deps) {
            Submitted::Ready(output, point) => {
                let retired = point.map(|point| state.launched(consumed, point));
                drop(state);
                // L4: the replaced tail and consumed waits are dropped unlocked.
                drop(retired);
                LaunchPoll::Launched(output)
            }
            Submitted::Blocked(stash) => {
                state.reserved = true;
                LaunchPoll::Reserved(
                    stash,
                    Reservation {
                        lane: self,
                        consumed,
                        settled: false,
                    },
                )
            }
        }
    }

    /// Ends a reservation (L2): applies the launch if there was one, unreserves, and
    /// wakes the launches queued behind it.
    fn settle(&self, launched: Option<(usize, Option<X::Point>)>) {
        let mut state = lock(&self.state);
        let retired = launched
            .and_then(|(consumed, point)| point.map(|point| state.launched(consumed, point)));
        state.reserved = false;
        let queued = std::mem::take(&mut state.queued);
        drop(state);
        // L4: drop and wake outside the lock.
        drop(retired);
        for waker in queued {
            waker.wake();
        }
    }

    /// A snapshot of the lane (L5).
    pub fn snapshot(&self) -> Snapshot<X> {
        let state = lock(&self.state);
        Snapshot {
            tail: state.tail.clone(),
            waits: state.waits.clone(),
        }
    }

    /// Makes the lane's next launch wait for every task in `snapshot` too. Tasks
    /// that already completed successfully, or that the lane already waits for, are
    /// left out (they would add nothing), so waiting in a loop without launching
    /// does not grow the lane without bound.
    pub fn wait_for(&self, snapshot: Snapshot<X>) {
        let mut duplicates = Vec::new();
        let mut state = lock(&self.state);
        for point in snapshot.tail.into_iter().chain(snapshot.waits) {
            let id = X::id(&point);
            let known = X::completed_ok(&point)
                || state.tail.as_ref().is_some_and(|t| X::id(t) == id)
                || state.waits.iter().any(|w| X::id(w) == id);
            if known {
                duplicates.push(point);
            } else {
                state.waits.push(point);
            }
        }
        drop(state);
        // L4.
        drop(duplicates);
    }

    /// Whether everything launched on the lane has finished, no launch holds it, and
    /// every pending wait has finished.
    pub fn is_idle(&self) -> bool {
        let state = lock(&self.state);
        !state.reserved
            && state.tail.iter().all(X::is_finished)
            && state.waits.iter().all(X::is_finished)
    }

    /// Forgets the tail and the pending waits: the next launch waits for nothing on
    /// this lane. Used for pooled worker streams, whose work the launch stream has
    /// already joined.
    pub fn reset(&self) {
        let mut state = lock(&self.state);
        let tail = state.tail.take();
        let waits = std::mem::take(&mut state.waits);
        drop(state);
        // L4.
        drop((tail, waits));
    }
}

impl<P> LaneState<P> {
    /// L1: `point` becomes the tail and the first `consumed` waits are used up.
    /// Returns what to drop once the lock is released (L4).
    #[inline]
    fn launched(&mut self, consumed: usize, point: P) -> Retired<P> {
        let tail = self.tail.replace(point);
        let waits = if consumed == 0 {
            Vec::new()
        } else if consumed == self.waits.len() {
            std::mem::take(&mut self.waits)
        } else {
            let later = self.waits.split_off(consumed);
            std::mem::replace(&mut self.waits, later)
        };
        Retired {
            _tail: tail,
            _waits: waits,
        }
    }
}

/// Points a launch replaced or used up, dropped after the lane lock is released (L4).
struct Retired<P> {
    _tail: Option<P>,
    _waits: Vec<P>,
}

impl<X: Backend> Reservation<'_, X> {
    /// The reserved launch was submitted: `point` becomes the tail (or, `None`, the
    /// runtime rejected it and the lane is unchanged), and queued launches may go.
    pub fn finish(mut self, point: Option<X::Point>) {
        self.settled = true;
        self.lane.settle(Some((self.consumed, point)));
    }
}

impl<X: Backend> Drop for Reservation<'_, X> {
    fn drop(&mut self) {
        if !self.settled {
            // The launch was abandoned (its future dropped): nothing was submitted.
            self.lane.settle(None);
        }
    }
}

impl<X: Backend> fmt::Debug for Lane<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Lane")
            .field("name", &self.name)
            .field("tail", &state.tail.as_ref().map(X::id))
            .field("waits", &state.waits.len())
            .field("reserved", &state.reserved)
            .finish()
    }
}

impl<X: Backend> fmt::Debug for Reservation<'_, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("lane", &self.lane.name)
            .field("consumed", &self.consumed)
            .finish()
    }
}

impl<X: Backend> fmt::Debug for Snapshot<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.points().map(|p| X::id(p)))
            .finish()
    }
}
