//! One task slot: its atomics, its edge nodes, and the protocols on them (rules in
//! [`crate::task`]).

use std::borrow::Cow;
use std::task::{Context, Poll};

use super::body::{BodyVTable, BoxError, Storage};
use crate::atomic_waker::AtomicWaker;
use crate::error::TaskError;
use crate::shared::Shared;
use crate::sync::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Edge nodes stored inside each slot; a task with more dependencies uses its overflow.
pub(crate) const INLINE_EDGES: usize = 4;
/// Largest window: slot indices must fit the 20 bits of an edge node reference.
pub(crate) const MAX_WINDOW: usize = (1 << 20) - 1;
/// Most distinct dependencies of one task: `j` must fit 20 bits.
pub(crate) const MAX_DEPS: usize = 1 << 20;

const NODE_BITS: u32 = 40;
const NODE_MASK: u64 = (1 << NODE_BITS) - 1;
const HEAD_GEN_MASK: u32 = (1 << (64 - NODE_BITS)) - 1;
/// The list is open and holds no consumer.
const EMPTY: u64 = NODE_MASK;
/// The task completed; no consumer may attach any more.
const CLOSED_OK: u64 = NODE_MASK - 1;
/// The task failed (or was cancelled); `meta.error` says why.
const CLOSED_FAILED: u64 = NODE_MASK - 2;
const COUNT_MASK: u64 = u32::MAX as u64;

/// `run_state` values (rule R4).
pub(crate) mod run_state {
    /// Being polled by a worker (also the state of a task before its first poll).
    pub(crate) const RUNNING: u8 = 0;
    /// Returned `Pending`; the next wake schedules it.
    pub(crate) const IDLE: u8 = 1;
    /// Woken and pushed to a queue.
    pub(crate) const SCHEDULED: u8 = 2;
    /// Woken while running: poll again.
    pub(crate) const NOTIFIED: u8 = 3;
    /// Finished; wakes are ignored.
    pub(crate) const DONE: u8 = 4;
}

/// How a closed task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Completed with an output.
    Ok,
    /// Failed or was cancelled.
    Failed,
}

/// What a look at a producer's fan-out list found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// The id is current and the task has not finished.
    Open,
    /// The id is current and the task has finished.
    Closed(Closed),
    /// The slot was reclaimed: the task finished long ago.
    Stale,
}

/// The first of several errors reported concurrently for one task; later ones are
/// dropped. Written before the decrement that may finish the task, taken by the
/// finisher.
pub(crate) struct FirstError(AtomicPtr<TaskError>);

impl FirstError {
    fn new() -> Self {
        FirstError(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Records `error` unless one is already recorded.
    pub(crate) fn record(&self, error: impl FnOnce() -> TaskError) {
        if !self.0.load(Ordering::Acquire).is_null() {
            return;
        }
        let boxed = Box::into_raw(Box::new(error()));
        if self
            .0
            .compare_exchange(
                std::ptr::null_mut(),
                boxed,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `boxed` was never published; we still own it.
            drop(unsafe { Box::from_raw(boxed) });
        }
    }

    /// Takes the recorded error, if any.
    pub(crate) fn take(&self) -> Option<TaskError> {
        // The common case, nothing recorded, costs a load rather than an RMW; a record
        // made before the decrement that handed us the task is visible to it.
        if self.0.load(Ordering::Acquire).is_null() {
            return None;
        }
        let ptr = self.0.swap(std::ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `record`, and the swap
        // makes this the only taker.
        (!ptr.is_null()).then(|| *unsafe { Box::from_raw(ptr) })
    }
}

impl Drop for FirstError {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// One link of a producer's consumer list, owned by the consumer (rule R8).
#[derive(Debug)]
pub(crate) struct EdgeNode {
    next: AtomicU64,
}

impl EdgeNode {
    pub(crate) fn new() -> Self {
        EdgeNode {
            next: AtomicU64::new(EMPTY),
        }
    }
}

/// The fields a task's owner reads and writes without atomics (rules R2, R4–R6).
pub(crate) struct Meta {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) vtable: Option<&'static BodyVTable>,
    /// Why the task failed, written before its list closes as `CLOSED_FAILED`.
    pub(crate) error: Option<TaskError>,
    /// How long deferred completions may take after the body returned.
    pub(crate) deadline: Option<std::time::Duration>,
    /// The task's tokio-console span (zero-sized without the `console` feature).
    pub(crate) span: crate::console::TaskSpan,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            name: None,
            vtable: None,
            error: None,
            deadline: None,
            span: crate::console::TaskSpan::none(),
        }
    }
}

/// A task slot. Never moves once the window is built.
#[repr(align(128))]
pub(crate) struct Slot {
    /// The runtime this slot belongs to (for wakers); set once, never changes.
    pub(crate) home: *const Shared,
    /// This slot's index in the window.
    pub(crate) index: u32,
    /// Holders with generation, and the fan-out list: see [`Status`].
    status: Status,
    pub(crate) fan_in: AtomicU32,
    pub(crate) run_state: AtomicU8,
    /// When a sampled task became ready (ns since the runtime's epoch), or while a
    /// trace is recorded a marked clock stamp (`trace::STAMPED`); 0 = not stamped.
    pub(crate) ready_at: AtomicU64,
    /// Free-list link (meaningful only while free).
    pub(crate) next_free: AtomicU32,
    /// First failed producer's error (rule R3: recorded before the fan-in decrement).
    dep_failure: FirstError,
    /// Outstanding completion tokens, `BODY` and `CUT` (rule R11, `crate::deferred`).
    pub(crate) deferred: AtomicU32,
    /// First failed or dropped token's error (R11: recorded before the count decrement).
    token_error: FirstError,
    /// Descriptions of the tokens the task took (R11, R12; `crate::deferred::TokenBook`).
    pub(crate) tokens: crate::deferred::TokenBook,
    pub(crate) join_waker: AtomicWaker,
    /// Console span id for waker events (zero-sized without the `console` feature).
    pub(crate) waker_tag: crate::console::WakerTag,
    pub(crate) meta: UnsafeCell<Meta>,
    edges: [EdgeNode; INLINE_EDGES],
    overflow: UnsafeCell<Vec<EdgeNode>>,
    pub(crate) storage: UnsafeCell<Storage>,
}

/// The two words that say whether a slot still holds a given task and whether that
/// task has finished: the generation with the holder count (`refs`), and the fan-out
/// list, closed when the task finishes (`fanout`). A check of a task's state reads
/// both ([`Slot::fanout_state`]); wiring a dependency reads `refs` and then changes
/// `fanout`; finishing changes both. Kept together and aligned to 16 bytes, they
/// share a cache line. As two separate fields, the compiler placed them on either
/// side of a line boundary (offsets 248 and 256 of a 128-aligned slot), so each of
/// those steps touched two lines that another core had written last.
#[repr(C, align(16))]
struct Status {
    refs: AtomicU64,
    fanout: AtomicU64,
}

// SAFETY: every field is an atomic, or a cell whose cross-thread use follows rules
// R1–R10 of `crate::task`; `home` points to the `Shared` that owns the slot and
// outlives it.
unsafe impl Send for Slot {}
// SAFETY: as above.
unsafe impl Sync for Slot {}

/// A fan-out node reference: consumer slot (20 bits) and dependency number (20 bits).
pub(crate) fn node_ref(consumer: u32, j: usize) -> u64 {
    ((consumer as u64) << 20) | j as u64
}

fn node_consumer(node: u64) -> u32 {
    (node >> 20) as u32
}

fn node_j(node: u64) -> usize {
    (node & ((1 << 20) - 1)) as usize
}

fn head(generation: u32, node: u64) -> u64 {
    (((generation & HEAD_GEN_MASK) as u64) << NODE_BITS) | node
}

fn head_generation_matches(head: u64, generation: u32) -> bool {
    (head >> NODE_BITS) as u32 == generation & HEAD_GEN_MASK
}

impl Slot {
    pub(crate) fn new(home: *const Shared, index: u32) -> Self {
        Slot {
            home,
            index,
            status: Status {
                refs: AtomicU64::new(0),
                fanout: AtomicU64::new(head(0, EMPTY)),
            },
            fan_in: AtomicU32::new(0),
            run_state: AtomicU8::new(run_state::DONE),
            ready_at: AtomicU64::new(0),
            next_free: AtomicU32::new(u32::MAX),
            dep_failure: FirstError::new(),
            deferred: AtomicU32::new(0),
            token_error: FirstError::new(),
            tokens: crate::deferred::TokenBook::new(),
            join_waker: AtomicWaker::new(),
            waker_tag: crate::console::WakerTag::new(),
            meta: UnsafeCell::new(Meta::default()),
            edges: std::array::from_fn(|_| EdgeNode::new()),
            overflow: UnsafeCell::new(Vec::new()),
            storage: UnsafeCell::new(Storage::new()),
        }
    }

    /// The current generation (the next task's, while the slot is free).
    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        (self.status.refs.load(Ordering::Acquire) >> 32) as u32
    }

    /// Number of holders (0 = free).
    pub(crate) fn holders(&self) -> u32 {
        (self.status.refs.load(Ordering::Acquire) & COUNT_MASK) as u32
    }

    /// Publishes a freshly initialised task with `holders` holders (rule R2a).
    #[inline]
    pub(crate) fn publish_holders(&self, generation: u32, holders: u32) {
        self.status.refs.store(
            ((generation as u64) << 32) | holders as u64,
            Ordering::Release,
        );
    }

    /// Adds a holder for the task of `generation` if it still occupies the slot (R10).
    pub(crate) fn try_acquire(&self, generation: u32) -> bool {
        let mut refs = self.status.refs.load(Ordering::Acquire);
        loop {
            if (refs >> 32) as u32 != generation || refs & COUNT_MASK == 0 {
                return false;
            }
            match self.status.refs.compare_exchange_weak(
                refs,
                refs + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => refs = now,
            }
        }
    }

    /// Adds a holder; the caller already holds one.
    pub(crate) fn acquire_more(&self) {
        self.status.refs.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a holder; `true` means it was the last and the caller must reclaim (R6).
    #[must_use]
    pub(crate) fn release(&self) -> bool {
        self.release_many(1)
    }

    /// Drops `count` holders at once (e.g. a batch of reported tokens).
    #[must_use]
    pub(crate) fn release_many(&self, count: u32) -> bool {
        self.status
            .refs
            .fetch_sub(u64::from(count), Ordering::AcqRel)
            & COUNT_MASK
            == u64::from(count)
    }

    /// Starts the next generation of a slot being reclaimed (R6). Returns it.
    pub(crate) fn next_generation(&self) -> u32 {
        let generation = self.generation().wrapping_add(1);
        self.status
            .refs
            .store((generation as u64) << 32, Ordering::Release);
        self.status
            .fanout
            .store(head(generation, EMPTY), Ordering::Release);
        generation
    }

    /// Whether the task `generation` is still here and whether it finished.
    pub(crate) fn fanout_state(&self, generation: u32) -> Fanout {
        self.classify(self.status.fanout.load(Ordering::SeqCst), generation)
    }

    fn classify(&self, fanout: u64, generation: u32) -> Fanout {
        if self.generation() != generation || !head_generation_matches(fanout, generation) {
            return Fanout::Stale;
        }
        match fanout & NODE_MASK {
            CLOSED_OK => Fanout::Closed(Closed::Ok),
            CLOSED_FAILED => Fanout::Closed(Closed::Failed),
            _ => Fanout::Open,
        }
    }

    /// The edge node `j` of this (consumer) slot.
    ///
    /// # Safety
    /// `j` is below the number of nodes the submitter prepared (R8), and the caller is
    /// the submitter or a walker that saw the node linked.
    unsafe fn edge(&self, j: usize) -> &EdgeNode {
        if j < INLINE_EDGES {
            &self.edges[j]
        } else {
            // SAFETY: the overflow vector is written only by the submitter (R2) and the
            // reclaimer (R6); the caller is the submitter or was published the node.
            self.overflow
                .with(|nodes| unsafe { &(&(*nodes))[j - INLINE_EDGES] })
        }
    }

    /// Makes sure the overflow holds nodes for `deps` dependencies.
    ///
    /// # Safety
    /// Only the submitter of a freshly popped slot may call this (R1, R2).
    #[inline]
    pub(crate) unsafe fn prepare_edges(&self, deps: usize) {
        if deps > INLINE_EDGES {
            // SAFETY: exclusive access per the caller's contract.
            self.overflow.with_mut(|nodes| unsafe {
                let nodes = &mut *nodes;
                nodes.resize_with(deps - INLINE_EDGES, EdgeNode::new);
            });
        }
    }

    /// Trims a large overflow so one huge task does not pin its memory forever.
    ///
    /// # Safety
    /// Only the reclaimer may call this (R6).
    pub(crate) unsafe fn trim_edges(&self) {
        // SAFETY: exclusive access per the caller's contract.
        self.overflow.with_mut(|nodes| unsafe {
            let nodes = &mut *nodes;
            if nodes.capacity() > 64 {
                *nodes = Vec::new();
            }
        });
    }

    /// Links consumer node `(consumer, j)` into this producer's list if the producer
    /// task `generation` is current and open (rules R8, R9). Returns what it found;
    /// `Fanout::Open` means the node is now linked and the producer will walk it.
    ///
    /// # Safety
    /// `consumer_slot` is the consumer's slot, the caller is its submitter, and `j` was
    /// prepared with `prepare_edges`.
    pub(crate) unsafe fn attach(
        &self,
        generation: u32,
        consumer_slot: &Slot,
        consumer: u32,
        j: usize,
    ) -> Fanout {
        // SAFETY: the caller is the consumer's submitter (R8).
        let node = unsafe { consumer_slot.edge(j) };
        let mut fanout = self.status.fanout.load(Ordering::Acquire);
        loop {
            match self.classify(fanout, generation) {
                Fanout::Open => {}
                other => return other,
            }
            // Not yet published: only this submitter sees the node (R8).
            node.next.store(fanout & NODE_MASK, Ordering::Relaxed);
            // Release publishes the node and the consumer's meta to the walker; the
            // generation bits make a reclaimed producer fail this CAS (R9).
            match self.status.fanout.compare_exchange_weak(
                fanout,
                head(generation, node_ref(consumer, j)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Fanout::Open,
                Err(now) => fanout = now,
            }
        }
    }

    /// The slot of the consumer at the head of the fan-out list, if the list holds
    /// one now (a hint, read without ordering: for prefetching only).
    #[inline]
    pub(crate) fn first_consumer_hint(&self) -> Option<u32> {
        let node = self.status.fanout.load(Ordering::Relaxed) & NODE_MASK;
        (node < CLOSED_FAILED).then(|| node_consumer(node))
    }

    /// Asks for every cache line of the slot at once (a hint).
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        let base = (self as *const Slot).cast::<u8>();
        for at in (0..std::mem::size_of::<Slot>()).step_by(64) {
            crate::window::prefetch_at(base.wrapping_add(at));
        }
    }

    /// Closes the list of the task `generation` (R5) and returns its old head, to walk.
    /// `SeqCst` pairs with waiters that register and then look (see `IdWaiters`).
    pub(crate) fn close(&self, generation: u32, how: Closed) -> u64 {
        let closed = match how {
            Closed::Ok => CLOSED_OK,
            Closed::Failed => CLOSED_FAILED,
        };
        self.status
            .fanout
            .swap(head(generation, closed), Ordering::SeqCst)
            & NODE_MASK
    }

    /// Polls the task's body once; `Ready(Ok)` leaves the output in the stage.
    ///
    /// # Safety
    /// The caller owns the running task (R4) and its body was installed (R2).
    pub(crate) unsafe fn poll_body(&self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // SAFETY: per the caller's contract nobody else touches meta or the stage.
        unsafe {
            let vtable = self
                .meta
                .with(|meta| (*meta).vtable)
                .expect("taskweave: ready task without a body");
            self.storage.with_mut(|stage| (vtable.poll)(stage, cx))
        }
    }

    /// Drops the body if the stage still holds it (the task failed or was cancelled).
    ///
    /// # Safety
    /// The caller owns the running or cancelled task (R4, R7).
    pub(crate) unsafe fn drop_body(&self) {
        // SAFETY: per the caller's contract nobody else touches meta or the stage.
        unsafe {
            if let Some(vtable) = self.meta.with(|meta| (*meta).vtable) {
                self.storage.with_mut(|stage| (vtable.drop_body)(stage));
            }
        }
    }

    /// Drops the whole stage (body or output) and forgets the vtable.
    ///
    /// # Safety
    /// The caller is the reclaimer (R6) or has `&mut` access to the window.
    pub(crate) unsafe fn drop_stage(&self) {
        // SAFETY: per the caller's contract nobody else touches meta or the stage.
        unsafe {
            if let Some(vtable) = self.meta.with_mut(|meta| (*meta).vtable.take()) {
                self.storage.with_mut(|stage| (vtable.drop_stage)(stage));
            }
        }
    }

    /// Moves the output out of a completed task's stage.
    ///
    /// # Safety
    /// The task completed (R5), the caller is its unique handle, and `T` is the output
    /// type its body was installed with.
    pub(crate) unsafe fn take_output<T>(&self) -> Option<T> {
        let mut output: Option<T> = None;
        // SAFETY: per the caller's contract the stage holds a `Stage<_, T>` that only
        // this caller reads; meta is read-only after completion.
        unsafe {
            let vtable = self
                .meta
                .with(|meta| (*meta).vtable)
                .expect("taskweave: completed task without a stage");
            self.storage.with_mut(|stage| {
                (vtable.take_output)(stage, (&mut output as *mut Option<T>).cast())
            });
        }
        output
    }

    /// Records a producer's failure for this consumer; the first one wins (R3).
    pub(crate) fn record_dep_failure(&self, error: &TaskError) {
        self.dep_failure.record(|| error.clone());
    }

    /// Takes the recorded dependency failure, if any (the running worker, R4, or the
    /// reclaimer, R6).
    pub(crate) fn take_dep_failure(&self) -> Option<TaskError> {
        self.dep_failure.take()
    }

    /// Records a token's failure; the first one wins (R11).
    pub(crate) fn record_token_error(&self, error: TaskError) {
        self.token_error.record(|| error);
    }

    /// Takes the recorded token failure (the finisher, R11, or the reclaimer, R6).
    pub(crate) fn take_token_error(&self) -> Option<TaskError> {
        self.token_error.take()
    }
}

/// Walks a closed list from `node`, calling `visit(consumer)` for each consumer.
///
/// # Safety
/// `node` is the head returned by [`Slot::close`], and `slots` is the window (R8).
pub(crate) unsafe fn walk(slots: &[Slot], mut node: u64, mut visit: impl FnMut(u32)) {
    while node != EMPTY {
        let consumer = node_consumer(node);
        // SAFETY: the node was linked before the close (R8): its consumer prepared it and
        // cannot finish before `visit` below decrements its fan-in.
        let next = unsafe { slots[consumer as usize].edge(node_j(node)) }
            .next
            .load(Ordering::Relaxed);
        visit(consumer);
        node = next;
    }
}
