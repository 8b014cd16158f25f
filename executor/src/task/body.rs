//! Type-erased task bodies and outputs, stored inline in the slot when they fit.
//!
//! A task's `Stage<F, T>` (the body future, then its output) lives in the slot's
//! [`Storage`]: inline when it fits in [`INLINE_BYTES`] with alignment at most 16;
//! else, up to [`SPILL_MAX_BYTES`], in the slot's *spill block*, a heap block the slot
//! keeps from one task to the next (grown when a larger stage comes); else in one
//! `Box`. A [`BodyVTable`] made for the concrete `(F, T)` pair knows which.
//!
//! The spill block is what keeps larger bodies (a data task's owned accesses, say) off
//! the allocator: a box per task is allocated by the submitter and freed by a worker,
//! and glibc's malloc serialises such cross-thread frees on the submitter's arena lock
//! (profiles showed submitter and workers waking each other through it). A slot's
//! block is only touched by whoever owns the slot's stage (rules R2, R4-R6), like the
//! inline bytes; its memory is bounded by the window times [`SPILL_MAX_BYTES`].
//! Closures are wrapped in [`FnBody`], a future that runs the closure on its first
//! poll and never touches the waker (the fast path of DESIGN.md §2.4).

use std::alloc::Layout;
use std::future::Future;
use std::mem::{MaybeUninit, align_of, size_of};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The error a fallible body returns, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of body/output storage inside each slot.
pub(crate) const INLINE_BYTES: usize = 64;

/// Largest stage kept in a slot's spill block; larger ones get a `Box` each.
pub(crate) const SPILL_MAX_BYTES: usize = 1024;
/// Alignment of spill blocks (a cache line); stages aligned more get a `Box`.
const SPILL_ALIGN: usize = 64;

/// Raw storage for one `Stage<F, T>` (inline, in the spill block, or a `Box` of it).
#[repr(C, align(16))]
pub(crate) struct Storage {
    inline: MaybeUninit<[u8; INLINE_BYTES]>,
    /// The spill block (null until a stage first needs it) and its size in bytes.
    spill: *mut u8,
    spill_bytes: usize,
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Storage {
            inline: MaybeUninit::uninit(),
            spill: std::ptr::null_mut(),
            spill_bytes: 0,
        }
    }

    /// The spill block, grown to at least `bytes` (a multiple of the alignment).
    fn spill_for(&mut self, bytes: usize) -> *mut u8 {
        if self.spill_bytes < bytes {
            self.free_spill();
            let bytes = bytes.next_multiple_of(SPILL_ALIGN);
            let layout = spill_layout(bytes);
            // SAFETY: the layout has a non-zero size (a stage that does not fit inline
            // is larger than `INLINE_BYTES`).
            let block = unsafe { std::alloc::alloc(layout) };
            if block.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            self.spill = block;
            self.spill_bytes = bytes;
        }
        self.spill
    }

    fn free_spill(&mut self) {
        if !self.spill.is_null() {
            // SAFETY: allocated by `spill_for` with this layout, freed once (the pointer
            // is cleared).
            unsafe { std::alloc::dealloc(self.spill, spill_layout(self.spill_bytes)) };
            self.spill = std::ptr::null_mut();
            self.spill_bytes = 0;
        }
    }
}

impl Drop for Storage {
    /// Frees the spill block (the slot's stage, if any, was dropped before).
    fn drop(&mut self) {
        self.free_spill();
    }
}

fn spill_layout(bytes: usize) -> Layout {
    Layout::from_size_align(bytes, SPILL_ALIGN).expect("spill block sizes are small")
}

/// What a body is at each point of its life.
enum Stage<F, T> {
    Body(F),
    Output(T),
    Empty,
}

/// The operations a slot needs on its type-erased stage.
pub(crate) struct BodyVTable {
    /// Polls the body. `Ready(Ok)` leaves the output in the stage; `Ready(Err)` leaves it empty.
    pub(crate) poll: unsafe fn(*mut Storage, &mut Context<'_>) -> Poll<Result<(), BoxError>>,
    /// Drops whatever the stage holds and frees a boxed stage.
    pub(crate) drop_stage: unsafe fn(*mut Storage),
    /// Drops the body (not a finished output), leaving the stage empty; used when the
    /// task fails or is cancelled without running.
    pub(crate) drop_body: unsafe fn(*mut Storage),
    /// Moves the output into `*(dst as *mut Option<T>)`.
    pub(crate) take_output: unsafe fn(*mut Storage, dst: *mut ()),
}

const fn fits_inline<S>() -> bool {
    size_of::<S>() <= INLINE_BYTES && align_of::<S>() <= 16
}

const fn fits_spill<S>() -> bool {
    size_of::<S>() <= SPILL_MAX_BYTES && align_of::<S>() <= SPILL_ALIGN
}

/// Writes the stage for the body `make` returns into `storage` (making it there, so
/// that a large body is not copied on the way) and returns the vtable that reads it.
///
/// # Safety
/// `storage` must be valid for writes and hold no live stage (a previous one was
/// dropped with `drop_stage`).
#[inline(always)]
pub(crate) unsafe fn install<F, T>(
    storage: *mut Storage,
    make: impl FnOnce() -> F,
) -> &'static BodyVTable
where
    F: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    if fits_inline::<Stage<F, T>>() {
        // SAFETY: the stage fits in size and alignment (checked above) and the caller
        // guarantees the storage is writable and empty.
        unsafe { storage.cast::<Stage<F, T>>().write(Stage::Body(make())) };
        &Inline::<F, T>::VTABLE
    } else if fits_spill::<Stage<F, T>>() {
        // SAFETY: the caller guarantees exclusive access to the storage; the block
        // is at least as large as the stage and aligned for it (checked above), and
        // holds no live stage (the storage holds none).
        unsafe {
            let block = (*storage).spill_for(size_of::<Stage<F, T>>());
            block.cast::<Stage<F, T>>().write(Stage::Body(make()));
        }
        &Spilled::<F, T>::VTABLE
    } else {
        let boxed = Box::new(Stage::<F, T>::Body(make()));
        // SAFETY: a pointer always fits the inline storage; the caller guarantees it is
        // writable and empty.
        unsafe {
            storage
                .cast::<*mut Stage<F, T>>()
                .write(Box::into_raw(boxed))
        };
        &Boxed::<F, T>::VTABLE
    }
}

/// Where a `Stage<F, T>` lives for one layout choice.
trait Place<F, T> {
    /// # Safety
    /// `storage` holds a live stage installed with this placement.
    unsafe fn stage(storage: *mut Storage) -> *mut Stage<F, T>;
    /// Releases the memory of a stage already dropped in place (never drops it).
    ///
    /// # Safety
    /// As for `stage`, and the stage was dropped; afterwards the storage holds none.
    unsafe fn free(storage: *mut Storage);
}

struct Inline<F, T>(std::marker::PhantomData<(F, T)>);
struct Spilled<F, T>(std::marker::PhantomData<(F, T)>);
struct Boxed<F, T>(std::marker::PhantomData<(F, T)>);

impl<F, T> Place<F, T> for Inline<F, T> {
    unsafe fn stage(storage: *mut Storage) -> *mut Stage<F, T> {
        storage.cast()
    }
    unsafe fn free(_storage: *mut Storage) {}
}

impl<F, T> Place<F, T> for Spilled<F, T> {
    unsafe fn stage(storage: *mut Storage) -> *mut Stage<F, T> {
        // SAFETY: `install` put the stage in the spill block for this placement, and
        // the block stays until the storage is dropped.
        unsafe { (*storage).spill.cast() }
    }
    /// Keeps the block for the slot's next task.
    unsafe fn free(_storage: *mut Storage) {}
}

impl<F, T> Place<F, T> for Boxed<F, T> {
    unsafe fn stage(storage: *mut Storage) -> *mut Stage<F, T> {
        // SAFETY: `install` wrote the box pointer here for this placement.
        unsafe { storage.cast::<*mut Stage<F, T>>().read() }
    }
    unsafe fn free(storage: *mut Storage) {
        // Frees the box without dropping its stage again (`drop_stage` dropped it in
        // place): as `MaybeUninit`, whose layout is the stage's.
        // SAFETY: the pointer came from `Box::into_raw` in `install` and is freed once.
        drop(unsafe {
            Box::from_raw(
                storage
                    .cast::<*mut Stage<F, T>>()
                    .read()
                    .cast::<MaybeUninit<Stage<F, T>>>(),
            )
        });
    }
}

macro_rules! vtable_for {
    ($place:ident) => {
        impl<F, T> $place<F, T>
        where
            F: Future<Output = Result<T, BoxError>> + Send + 'static,
            T: Send + 'static,
        {
            const VTABLE: BodyVTable = BodyVTable {
                poll: poll_stage::<F, T, $place<F, T>>,
                drop_stage: drop_stage::<F, T, $place<F, T>>,
                drop_body: drop_body::<F, T, $place<F, T>>,
                take_output: take_output::<F, T, $place<F, T>>,
            };
        }
    };
}
vtable_for!(Inline);
vtable_for!(Spilled);
vtable_for!(Boxed);

unsafe fn poll_stage<F, T, P: Place<F, T>>(
    storage: *mut Storage,
    cx: &mut Context<'_>,
) -> Poll<Result<(), BoxError>>
where
    F: Future<Output = Result<T, BoxError>>,
{
    // SAFETY: the caller (the worker that owns the running task, rule R4) has
    // exclusive access to a live stage.
    let stage = unsafe { &mut *P::stage(storage) };
    let Stage::Body(body) = stage else {
        panic!("taskweave: task body polled after it finished");
    };
    // SAFETY: the stage never moves while it holds the body: it lives in the slot (which
    // never moves) or in a box, and is dropped in place.
    let body = unsafe { Pin::new_unchecked(body) };
    match body.poll(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Ok(value)) => {
            *stage = Stage::Output(value);
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(error)) => {
            *stage = Stage::Empty;
            Poll::Ready(Err(error))
        }
    }
}

unsafe fn drop_stage<F, T, P: Place<F, T>>(storage: *mut Storage) {
    // SAFETY: the caller (the reclaimer, rule R6) has exclusive access to a live stage.
    unsafe {
        P::stage(storage).drop_in_place();
        P::free(storage);
    }
}

unsafe fn drop_body<F, T, P: Place<F, T>>(storage: *mut Storage) {
    // SAFETY: the caller has exclusive access to a live stage (rules R4, R7).
    let stage = unsafe { &mut *P::stage(storage) };
    if matches!(stage, Stage::Body(_)) {
        *stage = Stage::Empty;
    }
}

unsafe fn take_output<F, T, P: Place<F, T>>(storage: *mut Storage, dst: *mut ()) {
    // SAFETY: the caller (the single `Task<T>` handle after completion, rule R5) has
    // exclusive access to the stage and passes a `*mut Option<T>`.
    unsafe {
        let stage = &mut *P::stage(storage);
        if let Stage::Output(value) = std::mem::replace(stage, Stage::Empty) {
            *dst.cast::<Option<T>>() = Some(value);
        }
    }
}

/// A closure as a future: runs it on the first poll, never looks at the waker.
pub(crate) struct FnBody<F>(Option<F>);

impl<F> FnBody<F> {
    pub(crate) fn new(f: F) -> Self {
        FnBody(Some(f))
    }
}

impl<F> Unpin for FnBody<F> {}

impl<F: FnOnce() -> Result<T, BoxError>, T> Future for FnBody<F> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let f = self
            .0
            .take()
            .expect("taskweave: closure body polled after it ran");
        Poll::Ready(f())
    }
}
