//! Declared accesses: what a task says it reads and writes, and the views its body
//! receives for them.
//!
//! An [`Access`] names a tensor, a [`Region`] and a mode ([`Read`], [`Write`],
//! [`ReadWrite`]); the mode decides the view type ([`View`] or [`ViewMut`]). A task
//! takes any [`Accesses`]: one access, a tuple of up to eight, a `Vec` or an array of
//! them, or `()`. Its body receives the views in the same shape.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Arc;

use super::element::Element;
use super::region::Region;
use super::tensor::{Keeper, TensorInner, TensorMeta};
use super::view::{Geometry, View, ViewMut};

mod sealed {
    /// Seals [`Mode`](super::Mode).
    pub trait Mode {}
    /// Seals [`Accesses`](super::Accesses).
    pub trait Declared {}
    /// Seals [`OwnedAccesses`](super::OwnedAccesses).
    pub trait Owned {}
}

/// How a task accesses a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// The task reads the region (a shared view).
    Read,
    /// The task overwrites the region without reading it (an exclusive view).
    Write,
    /// The task reads and writes the region (an exclusive view).
    ReadWrite,
}

impl AccessKind {
    /// Whether the task reads the region's previous contents.
    pub fn reads(self) -> bool {
        matches!(self, AccessKind::Read | AccessKind::ReadWrite)
    }

    /// Whether the task writes the region.
    pub fn writes(self) -> bool {
        matches!(self, AccessKind::Write | AccessKind::ReadWrite)
    }

    /// `"Read"`, `"Write"` or `"ReadWrite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Read => "Read",
            AccessKind::Write => "Write",
            AccessKind::ReadWrite => "ReadWrite",
        }
    }
}

impl std::fmt::Display for AccessKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode of access, as a type: it decides the view the body gets. Sealed; the modes
/// are [`Read`], [`Write`] and [`ReadWrite`].
pub trait Mode: sealed::Mode + Send + Sync + 'static {
    /// The mode as a value.
    const KIND: AccessKind;
    /// The view the body receives for an access of this mode.
    type View<'v, T: Element>: Send;
    #[doc(hidden)]
    /// # Safety
    /// As for [`View::new`] / [`ViewMut::new`], depending on the mode.
    unsafe fn view<'v, T: Element>(base: *mut T, geometry: Geometry) -> Self::View<'v, T>;
}

/// Read access: the body gets a shared [`View`].
#[derive(Clone, Copy, Debug)]
pub struct Read;
/// Write access (the previous contents are not read): the body gets a [`ViewMut`].
#[derive(Clone, Copy, Debug)]
pub struct Write;
/// Read-write access: the body gets a [`ViewMut`].
#[derive(Clone, Copy, Debug)]
pub struct ReadWrite;

impl sealed::Mode for Read {}
impl sealed::Mode for Write {}
impl sealed::Mode for ReadWrite {}

impl Mode for Read {
    const KIND: AccessKind = AccessKind::Read;
    type View<'v, T: Element> = View<'v, T>;
    unsafe fn view<'v, T: Element>(base: *mut T, geometry: Geometry) -> View<'v, T> {
        // SAFETY: forwarded to the caller.
        unsafe { View::new(base, geometry) }
    }
}

impl Mode for Write {
    const KIND: AccessKind = AccessKind::Write;
    type View<'v, T: Element> = ViewMut<'v, T>;
    unsafe fn view<'v, T: Element>(base: *mut T, geometry: Geometry) -> ViewMut<'v, T> {
        // SAFETY: forwarded to the caller.
        unsafe { ViewMut::new(base, geometry) }
    }
}

impl Mode for ReadWrite {
    const KIND: AccessKind = AccessKind::ReadWrite;
    type View<'v, T: Element> = ViewMut<'v, T>;
    unsafe fn view<'v, T: Element>(base: *mut T, geometry: Geometry) -> ViewMut<'v, T> {
        // SAFETY: forwarded to the caller.
        unsafe { ViewMut::new(base, geometry) }
    }
}

/// One declared access: a region of a tensor in mode `M`. Made by
/// [`Tensor::read`](crate::Tensor::read), [`Tensor::write`](crate::Tensor::write) and
/// [`Tensor::read_write`](crate::Tensor::read_write); it borrows the tensor until the
/// task is submitted.
#[must_use = "an access does nothing until it is given to a task"]
pub struct Access<'t, T: Element, M: Mode> {
    tensor: &'t Arc<TensorInner<T>>,
    region: Region,
    no_dep: bool,
    mode: PhantomData<M>,
}

impl<'t, T: Element, M: Mode> Access<'t, T, M> {
    pub(crate) fn new(tensor: &'t Arc<TensorInner<T>>, region: Region) -> Self {
        Access {
            tensor,
            region,
            no_dep: false,
            mode: PhantomData,
        }
    }

    /// The region.
    pub fn region(&self) -> Region {
        self.region
    }

    /// Opts this access out of the dependency map: no edge is derived for it and later
    /// tasks do not order after it. Only explicit dependencies (and the task's other
    /// accesses) order it.
    ///
    /// Accesses to [manual](crate::Scope::manual_zeros) tensors are never in the map
    /// and are checked at run time instead; this is the unchecked escape hatch for
    /// tracked tensors (PTO2's per-argument `no_dep`), for when the program orders
    /// the accesses some other way.
    ///
    /// # Safety
    /// While this task runs, no other task may access an overlapping region of the
    /// tensor unless both only read: the caller must order every such task before or
    /// after this one with explicit dependencies (or typed inputs).
    pub unsafe fn no_dep(mut self) -> Self {
        self.no_dep = true;
        self
    }
}

/// What the submitter needs to know about one declared access.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct AccessInfo<'a> {
    pub(crate) meta: &'a TensorMeta,
    pub(crate) region: &'a Region,
    pub(crate) kind: AccessKind,
    pub(crate) no_dep: bool,
}

impl AccessInfo<'_> {
    /// Whether the access is one the dependency map orders (a tracked tensor, not
    /// `no_dep`); in a manual scope such an access is refused.
    #[inline]
    pub(crate) fn wants_map(&self) -> bool {
        !self.meta.manual && !self.no_dep
    }
}

/// An access as the task body owns it: the tensor kept alive, the region, the mode.
///
/// The first access of each tensor among a task's accesses holds a strong count of
/// the tensor, from a batch (`Keeper` in `src/data/tensor.rs`); the task's other
/// accesses of that tensor rely on it, which is sound because a task's owned
/// accesses are made, kept and dropped together (the contract of
/// [`Accesses::to_owned`]).
pub struct OwnedAccess<T: Element, M: Mode> {
    /// The batch this access holds a count of if `counted`, else the tensor (from
    /// `Arc::as_ptr`).
    at: NonNull<()>,
    region: Region,
    counted: bool,
    mode: PhantomData<(M, Arc<TensorInner<T>>)>,
}

// SAFETY: an `OwnedAccess` shares the tensor as an `Arc<TensorInner<T>>` does (through
// its own count or a sibling's, see above), and `TensorInner<T>` is `Send + Sync`;
// giving back a count is an atomic operation that any thread may do.
unsafe impl<T: Element, M: Mode> Send for OwnedAccess<T, M> {}
// SAFETY: as above; `&OwnedAccess` gives shared access to the `TensorInner` only.
unsafe impl<T: Element, M: Mode> Sync for OwnedAccess<T, M> {}

impl<T: Element, M: Mode> OwnedAccess<T, M> {
    /// The tensor.
    #[inline]
    fn inner(&self) -> &TensorInner<T> {
        if self.counted {
            // SAFETY: this access holds one count of the batch, which keeps it alive.
            unsafe { self.at.cast::<Keeper<T>>().as_ref() }.tensor()
        } else {
            // SAFETY: the tensor's strong count is held by an earlier access of the
            // same tensor made with it (`to_owned_in`'s `kept`), and the contract of
            // `Accesses::to_owned` keeps that one alive while this one is.
            unsafe { self.at.cast::<TensorInner<T>>().as_ref() }
        }
    }
}

impl<T: Element, M: Mode> Drop for OwnedAccess<T, M> {
    fn drop(&mut self) {
        if self.counted {
            // SAFETY: `at` is the batch this access holds one count of (as `counted`
            // says); this gives it back, once. The accesses relying on it do not
            // touch the tensor when dropped.
            unsafe { Keeper::give_back(self.at.cast::<Keeper<T>>(), 1) };
        }
    }
}

/// What the accesses made so far keep alive (see [`Accesses::to_owned_in`]): the
/// tensor of the last one. Tasks usually declare the accesses of a tensor together,
/// so this finds most repeats with one comparison; a tensor met again after another
/// is counted again, which is merely one more count.
#[doc(hidden)]
pub struct Kept {
    last: *const (),
}

impl Default for Kept {
    fn default() -> Self {
        Kept {
            last: std::ptr::null(),
        }
    }
}

impl Kept {
    /// Whether the access being made must take a count of `tensor` (no access it
    /// can rely on did); from now on, it has.
    #[inline]
    fn first(&mut self, tensor: *const ()) -> bool {
        std::mem::replace(&mut self.last, tensor) != tensor
    }
}

/// What a task declares it accesses: an [`Access`], `()`, a tuple of up to eight
/// `Accesses`, or a `Vec` or array of them. Sealed.
pub trait Accesses: sealed::Declared + Send + Sync {
    /// The form the task body owns (keeps the tensors alive while it runs).
    type Owned: OwnedAccesses;
    #[doc(hidden)]
    fn for_each<'a, F: FnMut(AccessInfo<'a>)>(&'a self, f: &mut F);
    #[doc(hidden)]
    /// The accesses as the body owns them.
    ///
    /// # Safety
    /// The result must be kept whole: no part of it may outlive the rest (an access
    /// may rely on an earlier one of the same tensor to keep the tensor alive).
    unsafe fn to_owned(&self) -> Self::Owned {
        // SAFETY: forwarded to the caller.
        unsafe { self.to_owned_in(&mut Kept::default()) }
    }
    #[doc(hidden)]
    /// [`Accesses::to_owned`] for accesses that join those already made with
    /// `kept`: a tensor in `kept` is kept alive by one of those.
    ///
    /// # Safety
    /// As [`Accesses::to_owned`], counting the accesses made before with `kept` as
    /// part of the result.
    unsafe fn to_owned_in(&self, kept: &mut Kept) -> Self::Owned;
}

/// The accesses a task body owns; [`OwnedAccesses::Views`] is what the body receives.
/// Sealed.
pub trait OwnedAccesses: sealed::Owned + Send + 'static {
    /// The views, in the shape the accesses were declared in.
    type Views<'v>: Send;
    #[doc(hidden)]
    fn for_each_owned<'a>(&'a self, f: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind));
    #[doc(hidden)]
    /// Whether any access is to a manual tensor (then the run-time checker is used).
    fn any_manual(&self) -> bool;
    #[doc(hidden)]
    /// # Safety
    /// The task owning these accesses is running, every access was checked at
    /// submission (valid region, no overlap with another access of the task unless
    /// both read), and the dependency rules (or the run-time check for manual
    /// tensors) guarantee that no other task accesses the regions in conflict during
    /// `'v`. Called once per run.
    unsafe fn views<'v>(&'v self) -> Self::Views<'v>;
}

/// The views a body receives for accesses `A`.
pub type ViewsOf<'v, A> = <<A as Accesses>::Owned as OwnedAccesses>::Views<'v>;

impl<T: Element, M: Mode> sealed::Declared for Access<'_, T, M> {}
impl<T: Element, M: Mode> sealed::Owned for OwnedAccess<T, M> {}

impl<T: Element, M: Mode> Accesses for Access<'_, T, M> {
    type Owned = OwnedAccess<T, M>;

    fn for_each<'a, F: FnMut(AccessInfo<'a>)>(&'a self, f: &mut F) {
        f(AccessInfo {
            meta: &self.tensor.meta,
            region: &self.region,
            kind: M::KIND,
            no_dep: self.no_dep,
        });
    }

    unsafe fn to_owned_in(&self, kept: &mut Kept) -> OwnedAccess<T, M> {
        let counted = kept.first(Arc::as_ptr(self.tensor).cast());
        let at = if counted {
            self.tensor.meta.keepers.take(self.tensor).cast()
        } else {
            NonNull::from(&**self.tensor).cast()
        };
        OwnedAccess {
            at,
            region: self.region,
            counted,
            mode: PhantomData,
        }
    }
}

impl<T: Element, M: Mode> OwnedAccesses for OwnedAccess<T, M> {
    type Views<'v> = M::View<'v, T>;

    fn for_each_owned<'a>(&'a self, f: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind)) {
        f(&self.inner().meta, &self.region, M::KIND);
    }

    #[inline]
    fn any_manual(&self) -> bool {
        self.inner().meta.manual
    }

    unsafe fn views<'v>(&'v self) -> M::View<'v, T> {
        let inner = self.inner();
        let geometry = Geometry::new(&inner.meta.shape, &self.region);
        // SAFETY: the buffer is kept alive (by our count or a sibling's, see
        // `inner`) for as long as `self` is borrowed ('v); the region was checked
        // against the shape at submission; the caller guarantees the exclusivity the
        // mode asks for (rules D1-D4 in `crate::data`).
        unsafe { M::view(inner.base(), geometry) }
    }
}

impl sealed::Declared for () {}
impl sealed::Owned for () {}

impl Accesses for () {
    type Owned = ();
    fn for_each<'a, F: FnMut(AccessInfo<'a>)>(&'a self, _: &mut F) {}
    unsafe fn to_owned_in(&self, _: &mut Kept) {}
}

impl OwnedAccesses for () {
    type Views<'v> = ();
    fn for_each_owned<'a>(&'a self, _: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind)) {}
    fn any_manual(&self) -> bool {
        false
    }
    unsafe fn views(&self) {}
}

impl<A: Accesses> sealed::Declared for Vec<A> {}
impl<O: OwnedAccesses> sealed::Owned for Vec<O> {}

impl<A: Accesses> Accesses for Vec<A> {
    type Owned = Vec<A::Owned>;

    fn for_each<'a, F: FnMut(AccessInfo<'a>)>(&'a self, f: &mut F) {
        for access in self {
            access.for_each(f);
        }
    }

    unsafe fn to_owned_in(&self, kept: &mut Kept) -> Vec<A::Owned> {
        // SAFETY: forwarded; the elements are part of the result.
        self.iter()
            .map(|access| unsafe { access.to_owned_in(kept) })
            .collect()
    }
}

impl<O: OwnedAccesses> OwnedAccesses for Vec<O> {
    type Views<'v> = Vec<O::Views<'v>>;

    fn for_each_owned<'a>(&'a self, f: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind)) {
        for access in self {
            access.for_each_owned(f);
        }
    }

    #[inline]
    fn any_manual(&self) -> bool {
        self.iter().any(OwnedAccesses::any_manual)
    }

    unsafe fn views<'v>(&'v self) -> Self::Views<'v> {
        // SAFETY: forwarded; the elements are accesses of the same task.
        self.iter()
            .map(|access| unsafe { access.views() })
            .collect()
    }
}

impl<A: Accesses, const N: usize> sealed::Declared for [A; N] {}
impl<O: OwnedAccesses, const N: usize> sealed::Owned for [O; N] {}

impl<A: Accesses, const N: usize> Accesses for [A; N] {
    type Owned = [A::Owned; N];

    fn for_each<'a, F: FnMut(AccessInfo<'a>)>(&'a self, f: &mut F) {
        for access in self {
            access.for_each(f);
        }
    }

    #[inline]
    unsafe fn to_owned_in(&self, kept: &mut Kept) -> [A::Owned; N] {
        // Element by element into the result, which the compiler can then build in
        // its final place (`array::map` builds a copy first). Should one of them
        // panic, those made before leak (their tensors are kept alive): no harm.
        let mut owned = MaybeUninit::<[A::Owned; N]>::uninit();
        let first = owned.as_mut_ptr().cast::<A::Owned>();
        for (i, access) in self.iter().enumerate() {
            // SAFETY: `i < N`, so the element is inside `owned`; the access's own
            // contract is forwarded, and its result is part of ours.
            unsafe { first.add(i).write(access.to_owned_in(kept)) };
        }
        // SAFETY: the loop wrote all `N` elements.
        unsafe { owned.assume_init() }
    }
}

impl<O: OwnedAccesses, const N: usize> OwnedAccesses for [O; N] {
    type Views<'v> = [O::Views<'v>; N];

    fn for_each_owned<'a>(&'a self, f: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind)) {
        for access in self {
            access.for_each_owned(f);
        }
    }

    #[inline]
    fn any_manual(&self) -> bool {
        self.iter().any(OwnedAccesses::any_manual)
    }

    unsafe fn views<'v>(&'v self) -> Self::Views<'v> {
        // Written in place: through `array::map` each view (a pointer and its
        // geometry) was moved twice more.
        let mut views = std::mem::MaybeUninit::<[O::Views<'v>; N]>::uninit();
        let first = views.as_mut_ptr().cast::<O::Views<'v>>();
        for (i, access) in self.iter().enumerate() {
            // SAFETY: forwarded (the elements are accesses of the same task); `i < N`
            // is in bounds of the array, and each element is written once.
            unsafe { first.add(i).write(access.views()) };
        }
        // SAFETY: all `N` elements were written above (views have no destructor
        // to run should one of the calls panic: they borrow).
        unsafe { views.assume_init() }
    }
}

macro_rules! tuple_accesses {
    ($($name:ident),+) => {
        impl<$($name: Accesses),+> sealed::Declared for ($($name,)+) {}
        impl<$($name: OwnedAccesses),+> sealed::Owned for ($($name,)+) {}

        impl<$($name: Accesses),+> Accesses for ($($name,)+) {
            type Owned = ($($name::Owned,)+);

            #[allow(non_snake_case)]
            fn for_each<'a, Visit: FnMut(AccessInfo<'a>)>(&'a self, f: &mut Visit) {
                let ($($name,)+) = self;
                $($name.for_each(f);)+
            }

            #[allow(non_snake_case)]
            unsafe fn to_owned_in(&self, kept: &mut Kept) -> Self::Owned {
                let ($($name,)+) = self;
                // SAFETY: forwarded; the elements are part of the result.
                unsafe { ($($name.to_owned_in(kept),)+) }
            }
        }

        impl<$($name: OwnedAccesses),+> OwnedAccesses for ($($name,)+) {
            type Views<'v> = ($($name::Views<'v>,)+);

            #[allow(non_snake_case)]
            fn for_each_owned<'a>(&'a self, f: &mut dyn FnMut(&'a TensorMeta, &'a Region, AccessKind)) {
                let ($($name,)+) = self;
                $($name.for_each_owned(f);)+
            }

            #[allow(non_snake_case)]
            #[inline]
            fn any_manual(&self) -> bool {
                let ($($name,)+) = self;
                false $(|| $name.any_manual())+
            }

            #[allow(non_snake_case)]
            unsafe fn views<'v>(&'v self) -> Self::Views<'v> {
                let ($($name,)+) = self;
                // SAFETY: forwarded; the elements are accesses of the same task.
                unsafe { ($($name.views(),)+) }
            }
        }
    };
}

tuple_accesses!(A);
tuple_accesses!(A, B);
tuple_accesses!(A, B, C);
tuple_accesses!(A, B, C, D);
tuple_accesses!(A, B, C, D, E);
tuple_accesses!(A, B, C, D, E, F);
tuple_accesses!(A, B, C, D, E, F, G);
tuple_accesses!(A, B, C, D, E, F, G, H);
