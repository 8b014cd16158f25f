//! Tasks: ids, slots, bodies, and the rules that make sharing them sound.
//!
//! # Invariants
//!
//! Every task lives in one `Slot` of the runtime's fixed task window. A slot is
//! *free* (in the free list) or *occupied* by one task; each occupancy has a
//! generation, and a [`TaskId`] is `(slot index, generation)`.
//!
//! ## States
//!
//! ```text
//! Free ──submit──▶ Pending ──fan-in 0──▶ Ready ──poll──▶ Running ──▶ Completed | Failed ──refs 0──▶ Free
//!                                                         │  ▲
//!                                                   Pending │ wake
//!                                                         ▼  │
//!                                                        Idle
//! ```
//!
//! The state is spread over a few atomics, each with one job:
//!
//! | field | meaning |
//! |---|---|
//! | `refs: AtomicU64` | generation (high 32) and holder count (low 32); count 0 = free |
//! | `fanout: AtomicU64` | head of the consumer list: generation (24 bits) + node (40 bits), or `EMPTY`, `CLOSED_OK`, `CLOSED_FAILED`; closed = Completed/Failed |
//! | `fan_in: AtomicU32` | producers not yet finished, plus one while wiring |
//! | `run_state: AtomicU8` | `RUNNING`, `IDLE` (future returned `Pending`), `SCHEDULED`, `NOTIFIED`, `DONE` |
//! | `dep_failure` | the first failed producer's error, set before its fan-in decrement |
//! | `deferred: AtomicU32` | outstanding completion tokens, `BODY`, `CUT` (R11) |
//! | `token_error` | the first failed or dropped token's error, set before its report is counted |
//! | `tokens` | the token book: descriptions of the tokens taken, per run of equal ones, with counts (R11, R12) |
//!
//! ## Rules
//!
//! Each `// SAFETY:` comment cites the rule it relies on.
//!
//! - **R1 (free).** A slot with holder count 0 belongs to the free list (or, for a
//!   while, to the worker that reclaimed it, which returns its slots in batches). Only
//!   its atomics are read by others (stale ids look at `refs` and `fanout` and see a
//!   generation that is not theirs). Popping the slot from the free list gives the
//!   popper exclusive access to every non-atomic field (`meta`, `storage`, the edge
//!   nodes).
//! - **R2 (submit).** The submitter writes `meta`, `storage`, `fan_in`, `run_state`
//!   before it publishes the task. It publishes (a) the holder count with a `Release`
//!   store, (b) each edge node by the `Release` CAS that links it into a producer's
//!   list, (c) the whole task by the queue push that makes it ready.
//! - **R3 (fan-in).** `fan_in` starts at `1 + deps`. Every producer that finishes
//!   subtracts one; the submitter subtracts `1 + satisfied` when wiring ends. The one
//!   subtraction that reaches zero makes the task ready, so it is ready exactly once and
//!   never while it is still being wired. (When every dependency was satisfied, no
//!   producer holds an edge to the task, so the submitter stores 0 instead.)
//! - **R4 (run).** The worker that popped a ready task from a queue has exclusive access
//!   to `storage` and `meta.error` until it closes the fan-out list. Wakers only touch
//!   `run_state`; only the `IDLE → SCHEDULED` transition pushes the task, so one worker
//!   at most holds it.
//! - **R5 (complete).** Closing the fan-out list (a `SeqCst` swap to `CLOSED_*`)
//!   publishes the output and `meta.error`. Afterwards `meta` is read-only, and the
//!   output is moved out only by the task's one `Task<T>` handle.
//! - **R6 (reclaim).** The thread whose release takes the holder count to zero has
//!   exclusive access to every field: it drops the stage, bumps the generation (in
//!   `refs`, then in `fanout`) and pushes the slot to the free list (a worker keeps it
//!   to push it with others, `worker::stash_free_slot`).
//! - **R7 (cancel).** When the runtime stops, after every worker has exited, the last
//!   one acts as the running worker (R4) of every task that has not closed.
//! - **R8 (edges).** Edge node `(c, j)` belongs to consumer `c`. Its submitter writes it
//!   before the CAS that links it; the producer's walker reads it after the swap that
//!   closes the list, and reads `next` *before* it decrements `c`'s fan-in: after that
//!   decrement `c` may run, finish and be reclaimed.
//! - **R9 (stale ids).** An id is current while the generation in `refs` equals the id's.
//!   Attaching compares the generation bits of `fanout` in the same CAS that links the
//!   node, so a producer reclaimed in between fails the CAS. (The 24 bits wrap only if
//!   one slot is reused 2^24 times between one load and the CAS after it.)
//! - **R10 (holders).** Holders are: the execution (until the list is closed and walked),
//!   the `Task<T>` handle (until dropped), each owned waker, each `TaskWatch` (made by
//!   an acquisition by id, or counted into the count published at submission by
//!   `Submission::poll_watched`), and short-lived acquisitions by id. Acquiring by id is a CAS that requires a nonzero count and the
//!   id's generation, so a free or reused slot is never resurrected. Each outstanding
//!   completion token is a holder too, until the scheduler has applied its report.
//! - **R11 (deferred completion).** The `deferred` word (outstanding tokens, `BODY`
//!   while the body has not returned, `CUT` once finished early) decides which one
//!   thread finishes a task whose body deferred its completion; the finisher owns
//!   `meta` like R4. The full rule is in `crate::deferred`.
//! - **R12 (runtime keep-alive).** Completion tokens point at the runtime without a
//!   strong count each: the first token of an occupancy moves one strong count into
//!   the slot's token book, and reclaim (R6) gives it back as its last step; a
//!   reporting thread touches the runtime after publishing its report only through a
//!   strong count of its own. The full rule is in `crate::deferred`.

mod body;
mod graph;
mod id;
mod slot;
mod waker;

pub use body::BoxError;
pub(crate) use body::{FnBody, install};
pub(crate) use graph::{close_and_walk, wire};
pub use id::TaskId;
pub(crate) use slot::{Closed, Fanout, MAX_DEPS, MAX_WINDOW, Slot, run_state};
pub(crate) use waker::borrowed_waker;
