//! Views: what a task body receives for each declared access. [`View`] is shared
//! (for `Read`), [`ViewMut`] exclusive (for `Write` and `ReadWrite`).
//!
//! A view borrows its elements for the body's lifetime `'v`, which the body cannot
//! name outside itself, so a view never escapes the body (see the `compile_fail`
//! examples in [`crate::data`]). A tile is reached row by row (a row is contiguous
//! along the last dimension); a region that is contiguous in memory (a range, the
//! whole tensor, a tile of whole rows) is also one slice.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

use super::element::Element;
use super::region::{Layout, MAX_RANK, Region, Shape};

/// Where a view's elements lie in its tensor's buffer.
#[doc(hidden)]
///
/// Kept small (a view is this and a pointer, 64 bytes): views are made, moved and
/// handed to the body on every task, so the tensor's strides are not stored but
/// derived from its three inner dimensions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Geometry {
    /// Offset of the region's first element.
    start: usize,
    /// Extents of the region, right-aligned.
    dims: [usize; MAX_RANK],
    /// The tensor's padded dimensions but the outermost (see [`Geometry::strides`]).
    inner: [u32; MAX_RANK - 1],
    rank: u8,
    /// Whether the region is one contiguous run of `len()` elements from `start`.
    contiguous: bool,
}

impl Geometry {
    /// The geometry of `region` (already checked against `shape`).
    pub(crate) fn new(shape: &Shape, region: &Region) -> Geometry {
        let tensor = shape.padded();
        let inner = [tensor[1], tensor[2], tensor[3]];
        match region.layout(shape) {
            // A run of one dimension: only the innermost stride (1) is ever used.
            Layout::Contiguous { start, len } => Geometry {
                rank: 1,
                dims: [1, 1, 1, len],
                inner,
                start,
                contiguous: true,
            },
            Layout::Tile(bounds) => {
                let strides = shape.strides();
                let extent = bounds.extent();
                let dims = extent.map(|e| e as usize);
                let start = (0..MAX_RANK)
                    .map(|d| bounds.start[d] as usize * strides[d])
                    .sum();
                // Contiguous: after the first dimension of extent > 1, every dimension
                // is whole.
                let first = (0..MAX_RANK)
                    .find(|&d| extent[d] > 1)
                    .unwrap_or(MAX_RANK - 1);
                let contiguous = (first + 1..MAX_RANK).all(|d| extent[d] == tensor[d]);
                Geometry {
                    rank: shape.rank() as u8,
                    dims,
                    inner,
                    start,
                    contiguous,
                }
            }
        }
    }

    fn shape(&self) -> &[usize] {
        &self.dims[MAX_RANK - self.rank as usize..]
    }

    /// The tensor's row-major strides (as `Shape::strides`).
    #[inline]
    fn strides(&self) -> [usize; MAX_RANK] {
        let [d1, d2, d3] = self.inner.map(|d| d as usize);
        [d1 * d2 * d3, d2 * d3, d3, 1]
    }

    fn len(&self) -> usize {
        self.dims.iter().product()
    }

    fn row_len(&self) -> usize {
        self.dims[MAX_RANK - 1]
    }

    fn row_count(&self) -> usize {
        self.dims[..MAX_RANK - 1].iter().product()
    }

    /// Offset of row `k` (in row-major order of the leading dimensions).
    #[inline]
    fn row_offset(&self, k: usize) -> usize {
        assert!(
            k < self.row_count(),
            "taskweave: row {k} of a view with {} rows",
            self.row_count()
        );
        if self.dims[0] == 1 && self.dims[1] == 1 {
            // Ranks 1 and 2 (and most tiles): no division.
            return self.start + k * self.inner[2] as usize;
        }
        let strides = self.strides();
        let i2 = k % self.dims[2];
        let rest = k / self.dims[2];
        let i1 = rest % self.dims[1];
        let i0 = rest / self.dims[1];
        self.start + i0 * strides[0] + i1 * strides[1] + i2 * strides[2]
    }

    /// Offset of the element at `index` (one coordinate per dimension of the view).
    #[inline]
    fn offset(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.rank as usize {
            return None;
        }
        let first = MAX_RANK - index.len();
        let strides = self.strides();
        let mut offset = self.start;
        for (i, &at) in index.iter().enumerate() {
            if at >= self.dims[first + i] {
                return None;
            }
            offset += at * strides[first + i];
        }
        Some(offset)
    }

    fn index_panic(&self, index: &[usize]) -> ! {
        panic!(
            "taskweave: index {index:?} is outside a view of shape {:?}",
            self.shape()
        )
    }
}

/// A shared view of a region declared `Read`: the body may read it, and other tasks
/// may read the same elements concurrently, but none writes them while it exists.
///
/// `View` is `Copy`, like the `&[T]` it stands for.
///
/// ```
/// use taskweave::{Region, Runtime, Scope};
/// let rt = Runtime::builder().workers(2).build();
/// let scope = Scope::new(&rt, "main");
/// let m = scope.from_vec("m", [2, 3], vec![1, 2, 3, 4, 5, 6]).unwrap();
/// let sum = scope
///     .task(m.read(Region::tile([0, 1], [2, 2])), |tile| {
///         assert_eq!(tile.shape(), [2, 2]);
///         assert_eq!(tile.row(1), [5, 6]);
///         assert_eq!(tile[[0, 1]], 3);
///         tile.rows().flatten().sum::<i32>()
///     })
///     .submit_blocking()
///     .unwrap();
/// assert_eq!(sum.wait_blocking().unwrap(), 2 + 3 + 5 + 6);
/// ```
pub struct View<'v, T> {
    base: *const T,
    geometry: Geometry,
    elements: PhantomData<&'v [T]>,
}

/// An exclusive view of a region declared `Write` or `ReadWrite`: no other task
/// reads or writes these elements while it exists.
///
/// A `Write` view holds whatever the region held before (zeros for a fresh tensor);
/// the task is expected to overwrite it.
///
/// ```
/// use taskweave::{Region, Runtime, Scope};
/// let rt = Runtime::builder().workers(2).build();
/// let scope = Scope::new(&rt, "main");
/// let m = scope.zeros::<f64>("m", [3, 4]);
/// scope
///     .task(m.write(Region::tile([1, 1], [2, 3])), |mut tile| {
///         for (i, row) in tile.rows_mut().enumerate() {
///             row.fill(i as f64 + 1.0);
///         }
///         tile[[0, 0]] = 9.0;
///     })
///     .submit_blocking()
///     .unwrap();
/// let all = scope.read_blocking(&m, ..).unwrap();
/// assert_eq!(all, [0., 0., 0., 0., 0., 9., 1., 1., 0., 2., 2., 2.]);
/// ```
pub struct ViewMut<'v, T> {
    base: *mut T,
    geometry: Geometry,
    elements: PhantomData<&'v mut [T]>,
}

// SAFETY: a `View<'v, T>` stands for `&'v [T]` (shared access to elements no one
// writes during 'v), which is `Send` and `Sync` when `T: Sync`; every `Element` is.
unsafe impl<T: Element> Send for View<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for View<'_, T> {}
// SAFETY: a `ViewMut<'v, T>` stands for `&'v mut [T]` (exclusive access during 'v),
// which is `Send` when `T: Send` and `Sync` when `T: Sync`; every `Element` is both.
unsafe impl<T: Element> Send for ViewMut<'_, T> {}
// SAFETY: as above; `&ViewMut` only reads.
unsafe impl<T: Element> Sync for ViewMut<'_, T> {}

impl<T> Clone for View<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for View<'_, T> {}

impl<'v, T: Element> View<'v, T> {
    /// A shared view of `geometry` in the buffer at `base`.
    ///
    /// # Safety
    /// `base` points to a live buffer that holds every element of `geometry`, and no
    /// one writes those elements during `'v`.
    pub(crate) unsafe fn new(base: *const T, geometry: Geometry) -> Self {
        View {
            base,
            geometry,
            elements: PhantomData,
        }
    }

    /// The region's extent per dimension (one entry for a range).
    pub fn shape(&self) -> &[usize] {
        self.geometry.shape()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.geometry.len()
    }

    /// Whether the region holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows (the product of every extent but the last).
    pub fn row_count(&self) -> usize {
        self.geometry.row_count()
    }

    /// Length of one row (the last extent).
    pub fn row_len(&self) -> usize {
        self.geometry.row_len()
    }

    /// Row `k` (rows are numbered in row-major order of the leading dimensions).
    ///
    /// # Panics
    /// If `k >= self.row_count()`.
    pub fn row(&self, k: usize) -> &'v [T] {
        let offset = self.geometry.row_offset(k);
        // SAFETY: `new`'s contract: the row is part of the region, in the live buffer,
        // and no one writes it during 'v.
        unsafe { std::slice::from_raw_parts(self.base.add(offset), self.row_len()) }
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &'v [T]> + 'v {
        let view = *self;
        (0..self.row_count()).map(move |k| view.row(k))
    }

    /// The whole region as one slice, if it is contiguous in memory (a range, the
    /// whole tensor, a tile of whole rows).
    pub fn as_slice(&self) -> Option<&'v [T]> {
        self.geometry.contiguous.then(|| {
            // SAFETY: the region is the contiguous run of `len()` elements from
            // `start`, readable during 'v (`new`'s contract).
            unsafe { std::slice::from_raw_parts(self.base.add(self.geometry.start), self.len()) }
        })
    }

    /// The element at `index` (one coordinate per dimension of the view), or `None`
    /// if it is outside the view.
    pub fn get(&self, index: &[usize]) -> Option<&'v T> {
        let offset = self.geometry.offset(index)?;
        // SAFETY: `offset` is an element of the region (checked by `offset`).
        Some(unsafe { &*self.base.add(offset) })
    }

    /// The elements in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        match self.as_slice() {
            Some(slice) => slice.to_vec(),
            None => {
                let mut out = Vec::with_capacity(self.len());
                for row in self.rows() {
                    out.extend_from_slice(row);
                }
                out
            }
        }
    }
}

impl<'v, T: Element> ViewMut<'v, T> {
    /// An exclusive view of `geometry` in the buffer at `base`.
    ///
    /// # Safety
    /// `base` points to a live buffer that holds every element of `geometry`, and no
    /// one else reads or writes those elements during `'v`.
    pub(crate) unsafe fn new(base: *mut T, geometry: Geometry) -> Self {
        ViewMut {
            base,
            geometry,
            elements: PhantomData,
        }
    }

    /// A shared view of the same elements, for as long as this borrow lasts.
    pub fn as_view(&self) -> View<'_, T> {
        // SAFETY: we have exclusive access for 'v; lending it as shared for the
        // borrow of `self` keeps everyone else (including `self`) from writing.
        unsafe { View::new(self.base, self.geometry) }
    }

    /// The region's extent per dimension (one entry for a range).
    pub fn shape(&self) -> &[usize] {
        self.geometry.shape()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.geometry.len()
    }

    /// Whether the region holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows (the product of every extent but the last).
    pub fn row_count(&self) -> usize {
        self.geometry.row_count()
    }

    /// Length of one row (the last extent).
    pub fn row_len(&self) -> usize {
        self.geometry.row_len()
    }

    /// Row `k`, shared.
    ///
    /// # Panics
    /// If `k >= self.row_count()`.
    pub fn row(&self, k: usize) -> &[T] {
        self.as_view().row(k)
    }

    /// Row `k`, exclusive.
    ///
    /// # Panics
    /// If `k >= self.row_count()`.
    pub fn row_mut(&mut self, k: usize) -> &mut [T] {
        let offset = self.geometry.row_offset(k);
        // SAFETY: the row is part of the region, to which we have exclusive access
        // (`new`'s contract); `&mut self` makes this the only live borrow of it.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(offset), self.row_len()) }
    }

    /// Every row, shared.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[T]> {
        let view = self.as_view();
        (0..self.row_count()).map(move |k| view.row(k))
    }

    /// Every row, exclusive.
    pub fn rows_mut(&mut self) -> RowsMut<'_, T> {
        RowsMut {
            base: self.base,
            geometry: self.geometry,
            next: 0,
            end: self.row_count(),
            rows: PhantomData,
        }
    }

    /// The whole region as one slice, if it is contiguous in memory.
    pub fn as_slice(&self) -> Option<&[T]> {
        self.as_view().as_slice()
    }

    /// The whole region as one exclusive slice, if it is contiguous in memory.
    pub fn as_mut_slice(&mut self) -> Option<&mut [T]> {
        self.geometry.contiguous.then(|| {
            // SAFETY: the region is the contiguous run of `len()` elements from
            // `start`; we have exclusive access and `&mut self` lends it once.
            unsafe {
                std::slice::from_raw_parts_mut(self.base.add(self.geometry.start), self.len())
            }
        })
    }

    /// The element at `index`, shared, or `None` if it is outside the view.
    pub fn get(&self, index: &[usize]) -> Option<&T> {
        self.as_view().get(index)
    }

    /// The element at `index`, exclusive, or `None` if it is outside the view.
    pub fn get_mut(&mut self, index: &[usize]) -> Option<&mut T> {
        let offset = self.geometry.offset(index)?;
        // SAFETY: `offset` is an element of the region, which we hold exclusively;
        // `&mut self` lends it once.
        Some(unsafe { &mut *self.base.add(offset) })
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T) {
        for row in self.rows_mut() {
            row.fill(value);
        }
    }

    /// Copies `source` (row-major, `self.len()` elements) into the region.
    ///
    /// # Panics
    /// If `source.len() != self.len()`.
    pub fn copy_from_slice(&mut self, source: &[T]) {
        assert_eq!(
            source.len(),
            self.len(),
            "taskweave: copying {} elements into a view of shape {:?}",
            source.len(),
            self.shape()
        );
        let row_len = self.row_len();
        if row_len == 0 {
            return;
        }
        for (row, chunk) in self.rows_mut().zip(source.chunks_exact(row_len)) {
            row.copy_from_slice(chunk);
        }
    }

    /// The elements in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        self.as_view().to_vec()
    }
}

/// The exclusive rows of a [`ViewMut`], from [`ViewMut::rows_mut`].
pub struct RowsMut<'a, T> {
    base: *mut T,
    geometry: Geometry,
    next: usize,
    end: usize,
    rows: PhantomData<&'a mut [T]>,
}

impl<'a, T: Element> Iterator for RowsMut<'a, T> {
    type Item = &'a mut [T];

    fn next(&mut self) -> Option<&'a mut [T]> {
        if self.next == self.end {
            return None;
        }
        let offset = self.geometry.row_offset(self.next);
        self.next += 1;
        // SAFETY: distinct rows of a region are disjoint, each row is handed out once,
        // and the iterator borrows the `ViewMut` exclusively for 'a.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.base.add(offset), self.geometry.row_len())
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl<T: Element> ExactSizeIterator for RowsMut<'_, T> {}

// SAFETY: `RowsMut<'a, T>` hands out `&'a mut [T]`s of disjoint rows: it is what a
// `&'a mut [T]` is, `Send` and `Sync` for `Element`s.
unsafe impl<T: Element> Send for RowsMut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for RowsMut<'_, T> {}

impl<T: Element, const N: usize> Index<[usize; N]> for View<'_, T> {
    type Output = T;

    fn index(&self, index: [usize; N]) -> &T {
        self.get(&index)
            .unwrap_or_else(|| self.geometry.index_panic(&index))
    }
}

impl<T: Element, const N: usize> Index<[usize; N]> for ViewMut<'_, T> {
    type Output = T;

    fn index(&self, index: [usize; N]) -> &T {
        self.get(&index)
            .unwrap_or_else(|| self.geometry.index_panic(&index))
    }
}

impl<T: Element, const N: usize> IndexMut<[usize; N]> for ViewMut<'_, T> {
    fn index_mut(&mut self, index: [usize; N]) -> &mut T {
        // Not through `get_mut`: its borrow of `self` would make the panic path copy
        // the geometry first, on every call.
        let Some(offset) = self.geometry.offset(&index) else {
            self.geometry.index_panic(&index)
        };
        // SAFETY: as in `get_mut`.
        unsafe { &mut *self.base.add(offset) }
    }
}

impl<T: Element> fmt::Debug for View<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("shape", &self.shape())
            .finish_non_exhaustive()
    }
}

impl<T: Element> fmt::Debug for ViewMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewMut")
            .field("shape", &self.shape())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_a_pointer_and_a_small_geometry() {
        assert_eq!(std::mem::size_of::<ViewMut<'_, f64>>(), 64);
        assert_eq!(std::mem::size_of::<View<'_, u8>>(), 64);
    }

    #[test]
    fn derived_strides_are_the_tensors() {
        for dims in [&[5][..], &[3, 4], &[2, 3, 4], &[2, 3, 4, 5]] {
            let shape = Shape::new(dims).unwrap();
            let geometry = Geometry::new(&shape, &Region::all());
            assert_eq!(geometry.strides(), shape.strides(), "{dims:?}");
        }
    }

    #[test]
    fn a_whole_vector_has_the_geometry_of_its_tile() {
        // `Region::all()` of a vector takes the contiguous shortcut: the same view.
        for len in [0, 1, 7, 64] {
            let shape = Shape::new(&[len]).unwrap();
            assert_eq!(
                Geometry::new(&shape, &Region::all()),
                Geometry::new(&shape, &Region::tile([0], [len])),
                "length {len}"
            );
        }
        // Not for matrices: their views keep rows.
        let shape = Shape::new(&[2, 3]).unwrap();
        let all = Geometry::new(&shape, &Region::all());
        assert_eq!(all, Geometry::new(&shape, &Region::tile([0, 0], [2, 3])));
        assert_eq!(all.shape(), [2, 3]);
    }
}
