//! Runtime-owned tensors: an n-d row-major buffer of plain elements, its shape and
//! name, and (per tensor) its dependency map or, for manual tensors, its run-time
//! access checker.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::access::{Access, Read, ReadWrite, Write};
use super::checker::Checker;
use super::dep_map::DepMap;
use super::element::Element;
use super::region::{Region, Shape};
use crate::scope::tree::TreeCell;

/// A tensor owned by the runtime: `n`-dimensional (1 to [`MAX_RANK`](crate::data::MAX_RANK)),
/// row-major, of a plain [`Element`] type. Created by a [`Scope`](crate::Scope)
/// (zeroed or from a `Vec`), it cannot outlive that scope (`'s` borrows it).
///
/// There is no direct access to the elements: a task declares what it reads and
/// writes ([`Tensor::read`], [`Tensor::write`], [`Tensor::read_write`]) and its body
/// receives views of exactly that; the orchestrator reads and writes through
/// [`Scope::read`](crate::Scope::read) and [`Scope::write`](crate::Scope::write), which
/// wait for the tasks that must come first. The buffer itself lives until the last
/// task using it has finished, even after the scope ended.
///
/// ```
/// use taskweave::{Region, Runtime, Scope};
/// let rt = Runtime::builder().workers(2).build();
/// let scope = Scope::new(&rt, "main");
/// let v = scope.from_vec("v", [4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
/// assert_eq!((v.name(), v.shape(), v.len()), ("v", vec![4], 4));
/// scope.task(v.read_write(1..3), |mut mid| {
///     for x in mid.as_mut_slice().unwrap() {
///         *x *= 10.0;
///     }
/// }).submit_blocking().unwrap();
/// assert_eq!(scope.read_blocking(&v, ..).unwrap(), [1.0, 20.0, 30.0, 4.0]);
/// ```
pub struct Tensor<'s, T: Element> {
    inner: Handle<T>,
    scope: PhantomData<&'s ()>,
}

/// The tensor's `Arc` as its handle holds it: dropping it gives back the counts of
/// the tensor's batch ([`Keepers`]) not handed out. (A type of its own, without the
/// scope's lifetime, so that this drop does not make a `Tensor` hold its scope's
/// borrow until it goes.)
struct Handle<T>(Arc<TensorInner<T>>);

impl<T> std::ops::Deref for Handle<T> {
    type Target = Arc<TensorInner<T>>;

    fn deref(&self) -> &Arc<TensorInner<T>> {
        &self.0
    }
}

/// The type-independent part of a tensor: what the submitter, the map and the
/// checker need.
#[doc(hidden)]
pub struct TensorMeta {
    pub(crate) id: u64,
    pub(crate) tree: u64,
    pub(crate) name: Cow<'static, str>,
    pub(crate) shape: Shape,
    /// Manual tensors are not in the dependency map; their accesses are checked at
    /// run time instead (rule D5).
    pub(crate) manual: bool,
    pub(crate) map: TreeCell<DepMap>,
    pub(crate) checker: Checker,
    /// The batch of strong counts task bodies take theirs from ([`Keeper`]).
    pub(crate) keepers: Keepers,
}

/// A batch of [`Keeper::BATCH`] strong counts of a tensor for task bodies: it holds
/// one count of the tensor's `Arc` and is freed by whoever gives back its last
/// count. A task body gives its count back on a worker; counting each task on the
/// tensor's own `Arc` would move that count's cache line from the workers to the
/// submitter and back for every task, where a batch is made once per
/// [`Keeper::BATCH`] tasks and the submitter never touches it again.
pub(crate) struct Keeper<T> {
    /// Counts not given back yet (handed out, or still in [`Keepers`]).
    left: AtomicUsize,
    tensor: Arc<TensorInner<T>>,
}

impl<T> Keeper<T> {
    /// Counts in a batch.
    pub(crate) const BATCH: usize = 64;

    /// The tensor the batch keeps alive.
    #[inline]
    pub(crate) fn tensor(&self) -> &TensorInner<T> {
        &self.tensor
    }

    /// Gives back `counts` of the batch at `keeper`, freeing it with its last.
    ///
    /// # Safety
    /// `keeper` came from [`Keepers::take`] for a `Tensor<T>`, and the caller owns
    /// `counts` of its counts, which it gives up here.
    pub(crate) unsafe fn give_back(keeper: NonNull<Keeper<T>>, counts: usize) {
        // SAFETY: the caller owns counts of the batch, so it is alive.
        let left = unsafe { &keeper.as_ref().left };
        // Release: this owner's uses of the tensor happen before the free; Acquire
        // below: the free happens after every other owner's.
        if left.fetch_sub(counts, Ordering::Release) == counts {
            std::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: the batch was made by `Box::into_raw` in `Keepers::take` and
            // this was its last count: nobody else refers to it.
            drop(unsafe { Box::from_raw(keeper.as_ptr()) });
        }
    }
}

/// The batch of a tensor whose counts are being handed out, and how many it has
/// left to hand out. Only submissions (and the handle's drop, after them) touch it,
/// on a cache line of its own.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct Keepers(Mutex<(usize, usize)>);

impl Keepers {
    /// One strong count of `tensor` (the `Arc` this belongs to) for a task body: the
    /// batch it belongs to, to give back with [`Keeper::give_back`].
    #[inline]
    pub(crate) fn take<T>(&self, tensor: &Arc<TensorInner<T>>) -> NonNull<Keeper<T>> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (batch, left) = &mut *state;
        if *left == 0 {
            // The previous batch, if any, has handed out all its counts: their
            // owners free it.
            let keeper = Box::new(Keeper {
                left: AtomicUsize::new(Keeper::<T>::BATCH),
                tensor: Arc::clone(tensor),
            });
            *batch = Box::into_raw(keeper) as usize;
            *left = Keeper::<T>::BATCH;
        }
        *left -= 1;
        NonNull::new(*batch as *mut Keeper<T>).expect("a batch is never null")
    }

    /// The batch and the counts it has not handed out, taken back (for the
    /// handle's drop).
    fn take_back<T>(&self) -> Option<(NonNull<Keeper<T>>, usize)> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (batch, left) = std::mem::take(&mut *state);
        Some((NonNull::new(batch as *mut Keeper<T>)?, left)).filter(|&(_, left)| left > 0)
    }
}

/// A tensor's buffer and metadata, shared by its handle and the tasks that access it.
///
/// Aligned to a cache line so that the `Arc`'s reference counts, which the submitter
/// increments and workers decrement once per task that accesses the tensor, have a
/// line of their own.
#[repr(align(64))]
pub(crate) struct TensorInner<T> {
    pub(crate) meta: TensorMeta,
    /// The elements, from `Box::<[T]>::into_raw`; freed in `Drop`.
    base: NonNull<T>,
    len: usize,
}

// SAFETY: the buffer is reached only through views, whose creation follows rules
// D1-D5 (`crate::data`): an element is written by at most one task at a time and
// never while another reads it, with happens-before between conflicting accesses
// (executor edges, or the checker's mutex). `T: Element` is `Send + Sync` plain data.
unsafe impl<T: Element> Send for TensorInner<T> {}
// SAFETY: as above; `&TensorInner` gives no access to the elements by itself.
unsafe impl<T: Element> Sync for TensorInner<T> {}

impl<T: Element> TensorInner<T> {
    pub(crate) fn new(meta: TensorMeta, data: Vec<T>) -> Self {
        let len = data.len();
        let base = NonNull::new(Box::into_raw(data.into_boxed_slice()).cast::<T>())
            .expect("Box::into_raw is never null");
        TensorInner { meta, base, len }
    }

    /// The first element; valid for `len` elements while `self` lives.
    pub(crate) fn base(&self) -> *mut T {
        self.base.as_ptr()
    }
}

impl<T> Drop for TensorInner<T> {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), self.len);
        // SAFETY: `base`/`len` came from `Box::into_raw` of a boxed slice in `new`, and
        // `&mut self` means no view or task refers to the buffer any more.
        drop(unsafe { Box::from_raw(slice) });
    }
}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        // Every submission that used the handle is over (they borrow it).
        if let Some((batch, left)) = self.0.meta.keepers.take_back::<T>() {
            // SAFETY: the batch was made for this tensor, and the counts it did not
            // hand out belong to the handle.
            unsafe { Keeper::give_back(batch, left) };
        }
    }
}

impl<'s, T: Element> Tensor<'s, T> {
    pub(crate) fn new(inner: TensorInner<T>) -> Self {
        Tensor {
            inner: Handle(Arc::new(inner)),
            scope: PhantomData,
        }
    }

    pub(crate) fn meta(&self) -> &TensorMeta {
        &self.inner.meta
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.inner.meta.name
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> Vec<usize> {
        self.inner.meta.shape.dims()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.inner.meta.shape.rank()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.inner.meta.shape.len()
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a manual tensor: only explicit dependencies order its
    /// accesses, and conflicting accesses that happen to run at the same time fail
    /// (see [`Scope::manual_zeros`](crate::Scope::manual_zeros)).
    pub fn is_manual(&self) -> bool {
        self.inner.meta.manual
    }

    /// The tensor's id in graph exports (unique within its scope tree).
    pub fn id(&self) -> u64 {
        self.inner.meta.id
    }

    /// Declares a read of `region`: the body gets a shared [`View`](crate::View).
    pub fn read(&self, region: impl Into<Region>) -> Access<'_, T, Read> {
        Access::new(&self.inner, region.into())
    }

    /// Declares a write of `region` that does not read it first: the body gets an
    /// exclusive [`ViewMut`](crate::ViewMut).
    pub fn write(&self, region: impl Into<Region>) -> Access<'_, T, Write> {
        Access::new(&self.inner, region.into())
    }

    /// Declares a read and write of `region`: the body gets an exclusive
    /// [`ViewMut`](crate::ViewMut).
    pub fn read_write(&self, region: impl Into<Region>) -> Access<'_, T, ReadWrite> {
        Access::new(&self.inner, region.into())
    }
}

impl<T: Element> fmt::Debug for Tensor<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name())
            .field("dtype", &T::NAME)
            .field("shape", &self.shape())
            .field("manual", &self.is_manual())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::{Runtime, Scope};

    #[test]
    fn batched_counts_come_back_and_the_buffer_is_freed_after_its_last_task() {
        let rt = Runtime::builder().workers(2).build();
        let scope = Scope::new(&rt, "s");
        let v = scope.zeros::<u32>("v", [100]);
        let w = scope.zeros::<u32>("w", [1]);
        let (weak_v, weak_w) = (Arc::downgrade(&v.inner.0), Arc::downgrade(&w.inner.0));
        // Several batches; each task takes two counts of `v` (a tensor met again
        // after another is counted again) and one of `w`.
        for i in 0..3 * Keeper::<u32>::BATCH + 5 {
            let (at, next) = (i % 100, (i + 1) % 100);
            let accesses = (v.write(at..at + 1), w.read(..), v.read(next..next + 1));
            drop(scope.task(accesses, |_| ()).submit_blocking().unwrap());
        }
        rt.block_on(rt.synchronize());
        // The handle, and the batch that is not used up.
        assert_eq!(weak_v.strong_count(), 2);
        drop(v);
        assert_eq!(weak_v.strong_count(), 0, "every count came back");
        assert_eq!(weak_w.strong_count(), 2);
        drop(w);
        assert_eq!(weak_w.strong_count(), 0);
        // A task still running when the handle goes keeps the buffer until it ends.
        let v = scope.zeros::<u32>("v2", [4]);
        let weak = Arc::downgrade(&v.inner.0);
        let (open, gate) = mpsc::channel::<()>();
        let blocked = scope
            .task(v.write(0..1), move |mut view| {
                gate.recv_timeout(Duration::from_secs(20)).unwrap();
                view[[0]] = 7;
            })
            .submit_blocking()
            .unwrap();
        drop(v);
        assert_eq!(weak.strong_count(), 1, "the running task's batch");
        open.send(()).unwrap();
        blocked.wait_blocking().unwrap();
        assert_eq!(weak.strong_count(), 0);
    }
}
