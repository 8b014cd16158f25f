//! Runtime-owned tensors: an n-d row-major buffer of plain elements, its shape and
//! name, and (per tensor) its dependency map or, for manual tensors, its run-time
//! access checker.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

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
    inner: Arc<TensorInner<T>>,
    scope: PhantomData<&'s ()>,
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

impl<'s, T: Element> Tensor<'s, T> {
    pub(crate) fn new(inner: TensorInner<T>) -> Self {
        Tensor {
            inner: Arc::new(inner),
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
