//! Regions of a tensor: the whole tensor, a 1-d element range, or a rectangular tile;
//! and the boxes the dependency map and the views work with.
//!
//! Internally every shape and box has four dimensions, *right-aligned*: a rank-2
//! tensor of 3 x 5 is `[1, 1, 3, 5]`, and its tile rows 1..3, columns 0..2 is the box
//! `[0..1, 0..1, 1..3, 0..2]`. The padded leading dimensions have extent 1, so every
//! computation (overlap, containment, row offsets) is the same loop over four
//! dimensions whatever the rank, and the last dimension is always the row.

use std::fmt;
use std::ops::{Range, RangeFull};

use smallvec::{Array, SmallVec};

/// The highest tensor rank.
pub const MAX_RANK: usize = 4;

/// A tensor's shape, right-aligned in four dimensions (leading dimensions are 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Shape {
    rank: u8,
    dims: [u32; MAX_RANK],
}

/// Why a shape cannot be built.
#[derive(Debug)]
pub(crate) enum ShapeProblem {
    Rank(usize),
    DimTooLarge(usize),
    TooManyElements,
}

impl Shape {
    /// The shape with dimensions `dims` (outermost first).
    pub(crate) fn new(dims: &[usize]) -> Result<Shape, ShapeProblem> {
        if dims.is_empty() || dims.len() > MAX_RANK {
            return Err(ShapeProblem::Rank(dims.len()));
        }
        let mut padded = [1u32; MAX_RANK];
        let mut elements: usize = 1;
        for (i, &d) in dims.iter().enumerate() {
            padded[MAX_RANK - dims.len() + i] =
                u32::try_from(d).map_err(|_| ShapeProblem::DimTooLarge(d))?;
            elements = elements
                .checked_mul(d)
                .filter(|&n| n <= isize::MAX as usize)
                .ok_or(ShapeProblem::TooManyElements)?;
        }
        Ok(Shape {
            rank: dims.len() as u8,
            dims: padded,
        })
    }

    /// The number of dimensions the tensor was created with.
    #[inline]
    pub(crate) fn rank(&self) -> usize {
        self.rank as usize
    }

    /// The four right-aligned dimensions.
    #[inline]
    pub(crate) fn padded(&self) -> [u32; MAX_RANK] {
        self.dims
    }

    /// The dimensions as created (outermost first).
    pub(crate) fn dims(&self) -> Vec<usize> {
        self.dims[MAX_RANK - self.rank()..]
            .iter()
            .map(|&d| d as usize)
            .collect()
    }

    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// Row-major strides of the four padded dimensions.
    #[inline]
    pub(crate) fn strides(&self) -> [usize; MAX_RANK] {
        let mut strides = [1usize; MAX_RANK];
        for d in (0..MAX_RANK - 1).rev() {
            strides[d] = strides[d + 1] * self.dims[d + 1] as usize;
        }
        strides
    }

    /// The box of the whole tensor.
    #[inline]
    pub(crate) fn full(&self) -> Bounds {
        Bounds {
            start: [0; MAX_RANK],
            end: self.dims,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

/// A box `[start, end)` per dimension, in the four right-aligned dimensions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Bounds {
    pub(crate) start: [u32; MAX_RANK],
    pub(crate) end: [u32; MAX_RANK],
}

impl Bounds {
    /// The box of the elements `start..end` of a vector.
    #[inline]
    pub(crate) fn of_range((start, end): (u32, u32)) -> Bounds {
        let mut bounds = Bounds {
            start: [0; MAX_RANK],
            end: [1; MAX_RANK],
        };
        bounds.start[MAX_RANK - 1] = start;
        bounds.end[MAX_RANK - 1] = end;
        bounds
    }

    /// Whether the two boxes share an element.
    #[inline]
    pub(crate) fn overlaps(&self, other: &Bounds) -> bool {
        (0..MAX_RANK).all(|d| self.start[d] < other.end[d] && other.start[d] < self.end[d])
    }

    /// Whether every element of `other` is in `self`.
    #[inline]
    pub(crate) fn contains(&self, other: &Bounds) -> bool {
        (0..MAX_RANK).all(|d| self.start[d] <= other.start[d] && other.end[d] <= self.end[d])
    }

    /// Whether the box has no element.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        (0..MAX_RANK).any(|d| self.start[d] >= self.end[d])
    }

    /// The extent per dimension.
    #[inline]
    pub(crate) fn extent(&self) -> [u32; MAX_RANK] {
        std::array::from_fn(|d| self.end[d] - self.start[d])
    }
}

/// The boxes a region covers: one for tiles, whole tensors and most ranges; up to
/// `2 * MAX_RANK - 1` for a flat range that starts or ends inside a row.
pub(crate) type Boxes = SmallVec<[Bounds; 1]>;

/// A part of a tensor that a task accesses: the whole tensor, a 1-d range of elements
/// (in row-major order, on a tensor of any rank), or a rectangular tile (an offset
/// and an extent per dimension).
///
/// A region is checked against its tensor's shape when the task is submitted: a
/// region out of bounds, or a tile whose rank differs from the tensor's, is rejected
/// with a [`DataError`](crate::DataError) that names the tensor, the region and the
/// shape.
///
/// ```
/// use taskweave::Region;
/// let whole = Region::all();
/// let first_ten = Region::range(0..10);
/// let tile = Region::tile([0, 4], [4, 4]); // rows 0..4, columns 4..8
/// let one = Region::element([2, 3]);
/// assert_eq!(tile.to_string(), "tile [0..4, 4..8]");
/// assert_eq!(Region::from(..), whole);
/// assert_eq!(Region::from(0..10), first_ten);
/// assert_eq!(one, Region::tile([2, 3], [1, 1]));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Repr);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    All,
    /// Flat element indices, as `u64`s split in halves (keeps `Region` 4-aligned
    /// and small: it is copied into every task body).
    Range {
        start: SplitU64,
        end: SplitU64,
    },
    /// Right-aligned offset and extent.
    Tile {
        rank: u8,
        offset: [u32; MAX_RANK],
        extent: [u32; MAX_RANK],
    },
    /// A tile whose rank exceeds `MAX_RANK` or whose coordinates exceed `u32`.
    Unrepresentable {
        rank: u32,
    },
}

impl Region {
    /// The whole tensor.
    pub const fn all() -> Region {
        Region(Repr::All)
    }

    /// Elements `range.start..range.end` in row-major order (on a tensor of any rank).
    pub fn range(range: Range<usize>) -> Region {
        Region(Repr::Range {
            start: SplitU64::new(range.start as u64),
            end: SplitU64::new(range.end as u64),
        })
    }

    /// The tile with corner `offset` and size `extent` (one entry per dimension,
    /// outermost first).
    pub fn tile<const N: usize>(offset: [usize; N], extent: [usize; N]) -> Region {
        if N == 0 || N > MAX_RANK {
            return Region(Repr::Unrepresentable { rank: N as u32 });
        }
        let mut o = [0u32; MAX_RANK];
        let mut e = [1u32; MAX_RANK];
        for i in 0..N {
            let (Ok(start), Ok(size)) = (u32::try_from(offset[i]), u32::try_from(extent[i])) else {
                return Region(Repr::Unrepresentable { rank: N as u32 });
            };
            o[MAX_RANK - N + i] = start;
            e[MAX_RANK - N + i] = size;
        }
        Region(Repr::Tile {
            rank: N as u8,
            offset: o,
            extent: e,
        })
    }

    /// The single element at `index` (a tile of extent 1 in every dimension).
    pub fn element<const N: usize>(index: [usize; N]) -> Region {
        Region::tile(index, [1; N])
    }

    /// The boxes this region covers in a tensor of `shape`; empty boxes are left out.
    pub(crate) fn resolve(&self, shape: &Shape) -> Result<Boxes, RegionProblem> {
        let mut boxes = Boxes::new();
        self.resolve_into(shape, &mut boxes)?;
        Ok(boxes)
    }

    /// [`Region::resolve`], appending the boxes to `boxes` (in row-major order of
    /// their starts); on error, nothing is appended.
    #[inline]
    pub(crate) fn resolve_into<A: Array<Item = Bounds>>(
        &self,
        shape: &Shape,
        boxes: &mut SmallVec<A>,
    ) -> Result<(), RegionProblem> {
        match self.resolve_one(shape)? {
            OneBox::Empty => {}
            OneBox::One(bounds) => boxes.push(bounds),
            OneBox::Many => {
                let Repr::Range { start, end } = self.0 else {
                    unreachable!("only ranges cover several boxes")
                };
                decompose_range(
                    start.get(),
                    end.get(),
                    0,
                    [0; MAX_RANK],
                    &shape.padded(),
                    boxes,
                );
            }
        }
        Ok(())
    }

    /// The box this region covers in a tensor of `shape`, when it is one box or none
    /// (tiles, whole tensors, ranges within a row); [`OneBox::Many`] for a range
    /// that spans rows (its boxes are found by [`Region::resolve_into`]). Errors as
    /// [`Region::resolve`].
    #[inline(always)]
    pub(crate) fn resolve_one(&self, shape: &Shape) -> Result<OneBox, RegionProblem> {
        match self.one_box(shape) {
            Some(bounds) => Ok(OneBox::One(bounds)),
            None => self.resolve_one_in_full(shape),
        }
    }

    /// The elements `start..end` of this region if it is a valid, non-empty range of
    /// a vector (a tensor of rank 1), or the whole of a vector that has elements: the
    /// accesses a submission meets most, which need no box.
    #[inline(always)]
    pub(crate) fn vector_range(&self, shape: &Shape) -> Option<(u32, u32)> {
        match self.0 {
            Repr::Range { start, end } if shape.rank() == 1 => {
                let (start, end) = (start.get(), end.get());
                (start < end && end <= u64::from(shape.padded()[MAX_RANK - 1]))
                    .then_some((start as u32, end as u32))
            }
            // The whole of a vector that has an element.
            Repr::All if shape.rank() == 1 => {
                let len = shape.padded()[MAX_RANK - 1];
                (len > 0).then_some((0, len))
            }
            _ => None,
        }
    }

    /// The box of this region in a tensor of `shape` in the cases a submission meets
    /// most (a valid, non-empty range of a vector or tile, or the whole of a tensor
    /// that has elements); `None` for every other case (then see
    /// [`Region::resolve_one`]).
    #[inline(always)]
    pub(crate) fn one_box(&self, shape: &Shape) -> Option<Bounds> {
        match self.0 {
            Repr::Range { start, end } if shape.rank() == 1 => {
                let (start, end) = (start.get(), end.get());
                if start >= end || end > shape.padded()[MAX_RANK - 1] as u64 {
                    return None;
                }
                let mut bounds = Bounds {
                    start: [0; MAX_RANK],
                    end: [1; MAX_RANK],
                };
                bounds.start[MAX_RANK - 1] = start as u32;
                bounds.end[MAX_RANK - 1] = end as u32;
                Some(bounds)
            }
            Repr::Tile {
                rank,
                offset,
                extent,
            } if rank as usize == shape.rank() => {
                let dims = shape.padded();
                let mut bounds = Bounds {
                    start: offset,
                    end: [0; MAX_RANK],
                };
                let mut fits = true;
                let mut empty = false;
                for d in 0..MAX_RANK {
                    let end = offset[d] as u64 + extent[d] as u64;
                    fits &= end <= dims[d] as u64;
                    empty |= extent[d] == 0;
                    bounds.end[d] = end as u32;
                }
                (fits && !empty).then_some(bounds)
            }
            // The whole of a tensor that has an element.
            Repr::All if shape.len() > 0 => Some(shape.full()),
            _ => None,
        }
    }

    /// [`Region::resolve_one`], every case.
    #[inline(never)]
    fn resolve_one_in_full(&self, shape: &Shape) -> Result<OneBox, RegionProblem> {
        match self.0 {
            Repr::Range { start, end } if shape.rank() == 1 => {
                // A range of a vector: one box, and no arithmetic beyond the check.
                let (start, end) = (start.get(), end.get());
                if start > end || end > shape.padded()[MAX_RANK - 1] as u64 {
                    return Err(RegionProblem::OutOfBounds);
                }
                if start == end {
                    return Ok(OneBox::Empty);
                }
                let mut bounds = Bounds {
                    start: [0; MAX_RANK],
                    end: [1; MAX_RANK],
                };
                bounds.start[MAX_RANK - 1] = start as u32;
                bounds.end[MAX_RANK - 1] = end as u32;
                Ok(OneBox::One(bounds))
            }
            Repr::All if shape.len() > 0 => Ok(OneBox::One(shape.full())),
            Repr::All => Ok(OneBox::Empty),
            Repr::Range { start, end } => {
                let (start, end) = (start.get(), end.get());
                if start > end || end > shape.len() as u64 {
                    return Err(RegionProblem::OutOfBounds);
                }
                if start == end {
                    return Ok(OneBox::Empty);
                }
                let row = shape.padded()[MAX_RANK - 1] as u64;
                if start / row != (end - 1) / row {
                    return Ok(OneBox::Many);
                }
                // Within one row: one box, and divisions only for the dimensions the
                // tensor has.
                let strides = shape.strides();
                let mut bounds = Bounds {
                    start: [0; MAX_RANK],
                    end: [1; MAX_RANK],
                };
                let mut rest = start;
                let outer = MAX_RANK - shape.rank();
                for (d, &stride) in strides.iter().enumerate().take(MAX_RANK - 1).skip(outer) {
                    let at = rest / stride as u64;
                    rest -= at * stride as u64;
                    bounds.start[d] = at as u32;
                    bounds.end[d] = at as u32 + 1;
                }
                bounds.start[MAX_RANK - 1] = rest as u32;
                bounds.end[MAX_RANK - 1] = (rest + (end - start)) as u32;
                Ok(OneBox::One(bounds))
            }
            Repr::Tile {
                rank,
                offset,
                extent,
            } => {
                if rank as usize != shape.rank() {
                    return Err(RegionProblem::RankMismatch);
                }
                let dims = shape.padded();
                let mut bounds = Bounds {
                    start: offset,
                    end: [0; MAX_RANK],
                };
                for d in 0..MAX_RANK {
                    let end = offset[d] as u64 + extent[d] as u64;
                    if end > dims[d] as u64 {
                        return Err(RegionProblem::OutOfBounds);
                    }
                    bounds.end[d] = end as u32;
                }
                if bounds.is_empty() {
                    return Ok(OneBox::Empty);
                }
                Ok(OneBox::One(bounds))
            }
            Repr::Unrepresentable { .. } => Err(RegionProblem::RankMismatch),
        }
    }

    /// Where a view of this (valid) region lies in a tensor of `shape`.
    pub(crate) fn layout(&self, shape: &Shape) -> Layout {
        match self.0 {
            Repr::Range { start, end } => Layout::Contiguous {
                start: start.get() as usize,
                len: (end.get() - start.get()) as usize,
            },
            // A whole vector is a contiguous run (the same geometry as its tile,
            // found without strides).
            Repr::All if shape.rank() == 1 => Layout::Contiguous {
                start: 0,
                len: shape.len(),
            },
            Repr::All => Layout::Tile(shape.full()),
            Repr::Tile { offset, extent, .. } => Layout::Tile(Bounds {
                start: offset,
                end: std::array::from_fn(|d| offset[d] + extent[d]),
            }),
            Repr::Unrepresentable { .. } => unreachable!("rejected at submit"),
        }
    }
}

/// A `u64` stored as two `u32`s.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SplitU64([u32; 2]);

impl SplitU64 {
    fn new(value: u64) -> Self {
        SplitU64([value as u32, (value >> 32) as u32])
    }

    fn get(self) -> u64 {
        self.0[0] as u64 | (self.0[1] as u64) << 32
    }
}

/// The boxes of a region, when there is at most one (see [`Region::resolve_one`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OneBox {
    /// The region has no element.
    Empty,
    /// The region is this box.
    One(Bounds),
    /// The region is a range spanning several rows: see [`Region::resolve_into`].
    Many,
}

/// Where a region's elements lie: one contiguous run, or a box.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layout {
    Contiguous { start: usize, len: usize },
    Tile(Bounds),
}

/// Why a region does not fit its tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegionProblem {
    /// The tile's rank differs from the tensor's (or exceeds `MAX_RANK`).
    RankMismatch,
    /// The region reaches past the tensor's end.
    OutOfBounds,
}

/// Splits the flat range `[start, end)` of the sub-array of dimensions `level..`
/// (whose outer coordinates are fixed by `prefix`) into boxes: a partial slice at
/// the start, whole slices in the middle, a partial slice at the end, recursively.
fn decompose_range<A: Array<Item = Bounds>>(
    start: u64,
    end: u64,
    level: usize,
    prefix: [u32; MAX_RANK],
    dims: &[u32; MAX_RANK],
    out: &mut SmallVec<A>,
) {
    if start >= end {
        return;
    }
    // The box that fixes dimensions < level to `prefix` and spans `range` at `level`.
    let slab = |from: u64, to: u64| {
        let mut b = Bounds {
            start: [0; MAX_RANK],
            end: *dims,
        };
        for (d, &at) in prefix.iter().enumerate().take(level) {
            b.start[d] = at;
            b.end[d] = at + 1;
        }
        b.start[level] = from as u32;
        b.end[level] = to as u32;
        b
    };
    if level == MAX_RANK - 1 {
        out.push(slab(start, end));
        return;
    }
    let inner: u64 = dims[level + 1..].iter().map(|&d| d as u64).product();
    let (first, first_rest) = (start / inner, start % inner);
    let (last, last_rest) = (end / inner, end % inner);
    let at = |index: u64| {
        let mut p = prefix;
        p[level] = index as u32;
        p
    };
    if first == last {
        decompose_range(first_rest, last_rest, level + 1, at(first), dims, out);
        return;
    }
    let mut whole_from = first;
    if first_rest != 0 {
        decompose_range(first_rest, inner, level + 1, at(first), dims, out);
        whole_from += 1;
    }
    if whole_from < last {
        out.push(slab(whole_from, last));
    }
    if last_rest != 0 {
        decompose_range(0, last_rest, level + 1, at(last), dims, out);
    }
}

impl From<RangeFull> for Region {
    fn from(_: RangeFull) -> Region {
        Region::all()
    }
}

impl From<Range<usize>> for Region {
    fn from(range: Range<usize>) -> Region {
        Region::range(range)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::All => f.write_str("all"),
            Repr::Range { start, end } => write!(f, "range {}..{}", start.get(), end.get()),
            Repr::Tile {
                rank,
                offset,
                extent,
            } => {
                f.write_str("tile [")?;
                for d in MAX_RANK - rank as usize..MAX_RANK {
                    if d > MAX_RANK - rank as usize {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}..{}", offset[d], offset[d] as u64 + extent[d] as u64)?;
                }
                f.write_str("]")
            }
            Repr::Unrepresentable { rank } => write!(
                f,
                "tile of rank {rank} (tiles have rank 1..={MAX_RANK} and coordinates below 2^32)"
            ),
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dims: &[usize]) -> Shape {
        Shape::new(dims).unwrap()
    }

    #[test]
    fn the_fast_paths_take_the_whole_tensor_as_the_full_path_does() {
        let all = Region::all();
        assert_eq!(all.vector_range(&shape(&[5])), Some((0, 5)));
        assert_eq!(all.vector_range(&shape(&[2, 3])), None);
        for dims in [&[5][..], &[2, 3], &[2, 3, 4, 5], &[0], &[2, 0]] {
            let shape = shape(dims);
            let full = all.resolve_one_in_full(&shape).unwrap();
            match all.one_box(&shape) {
                Some(bounds) => assert_eq!(OneBox::One(bounds), full, "{dims:?}"),
                // No box only for a tensor without elements.
                None => assert_eq!(full, OneBox::Empty, "{dims:?}"),
            }
            if let Some((start, end)) = all.vector_range(&shape) {
                assert_eq!(OneBox::One(Bounds::of_range((start, end))), full);
            }
        }
        assert_eq!(all.vector_range(&shape(&[0])), None);
    }

    /// The flat indices a set of boxes covers, in a tensor of `shape`.
    fn elements(boxes: &Boxes, shape: &Shape) -> Vec<usize> {
        let strides = shape.strides();
        let mut out = Vec::new();
        for b in boxes {
            for i0 in b.start[0]..b.end[0] {
                for i1 in b.start[1]..b.end[1] {
                    for i2 in b.start[2]..b.end[2] {
                        for i3 in b.start[3]..b.end[3] {
                            let idx = [i0, i1, i2, i3];
                            out.push((0..4).map(|d| idx[d] as usize * strides[d]).sum());
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn ranges_decompose_into_disjoint_boxes_covering_exactly_the_range() {
        for dims in [&[7usize][..], &[3, 5], &[2, 3, 4], &[2, 2, 3, 3]] {
            let s = shape(dims);
            let n = s.len();
            for start in 0..=n {
                for end in start..=n {
                    let boxes = Region::range(start..end).resolve(&s).unwrap();
                    assert!(boxes.len() < 2 * MAX_RANK, "{dims:?} {start}..{end}");
                    assert_eq!(elements(&boxes, &s), (start..end).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn one_box_is_the_region_and_errors_as_resolve() {
        for dims in [&[7usize][..], &[3, 5], &[2, 3, 4], &[2, 2, 3, 3]] {
            let s = shape(dims);
            let n = s.len();
            let strides = s.strides();
            // (region, its elements, or None if it does not fit)
            let mut cases = vec![(Region::all(), Some((0..n).collect::<Vec<_>>()))];
            for start in 0..=n + 1 {
                for end in start..=n + 2 {
                    let fits = end <= n;
                    cases.push((
                        Region::range(start..end),
                        fits.then(|| (start..end).collect()),
                    ));
                }
            }
            // Tiles of the tensor's rank: every offset and extent up to one past each
            // dimension (a padded tile's dimensions are those of the tensor).
            let padded = s.padded().map(|d| d as usize);
            let outer = MAX_RANK - s.rank();
            let range = |d: usize| 0..=padded[d] + 1;
            for o in range(outer).flat_map(|a| range(MAX_RANK - 1).map(move |b| (a, b))) {
                for e in range(outer).flat_map(|a| range(MAX_RANK - 1).map(move |b| (a, b))) {
                    let mut offset = [0usize; MAX_RANK];
                    let mut extent = padded;
                    (offset[outer], offset[MAX_RANK - 1]) = o;
                    (extent[outer], extent[MAX_RANK - 1]) = e;
                    let fits = (0..MAX_RANK).all(|d| offset[d] + extent[d] <= padded[d]);
                    let mut elements = Vec::new();
                    for i0 in offset[0]..offset[0] + extent[0] {
                        for i1 in offset[1]..offset[1] + extent[1] {
                            for i2 in offset[2]..offset[2] + extent[2] {
                                for i3 in offset[3]..offset[3] + extent[3] {
                                    let at = [i0, i1, i2, i3];
                                    elements.push((0..MAX_RANK).map(|d| at[d] * strides[d]).sum());
                                }
                            }
                        }
                    }
                    elements.sort_unstable();
                    let tile = match s.rank() {
                        1 => Region::tile([offset[3]], [extent[3]]),
                        2 => Region::tile([offset[2], offset[3]], [extent[2], extent[3]]),
                        3 => Region::tile(
                            [offset[1], offset[2], offset[3]],
                            [extent[1], extent[2], extent[3]],
                        ),
                        _ => Region::tile(offset, extent),
                    };
                    cases.push((tile, fits.then_some(elements)));
                }
            }
            for (region, expected) in cases {
                let one = region.resolve_one(&s);
                match (one, expected) {
                    (Err(problem), None) => assert_eq!(problem, RegionProblem::OutOfBounds),
                    (Ok(OneBox::Empty), Some(expected)) => assert!(expected.is_empty(), "{region}"),
                    (Ok(OneBox::One(b)), Some(expected)) => {
                        assert_eq!(elements(&Boxes::from_buf([b]), &s), expected, "{region}")
                    }
                    (Ok(OneBox::Many), Some(expected)) => {
                        assert!(matches!(region.0, Repr::Range { .. }), "{region}");
                        assert_eq!(elements(&region.resolve(&s).unwrap(), &s), expected);
                    }
                    (one, expected) => panic!("{dims:?} {region}: {one:?}, expected {expected:?}"),
                }
            }
            assert_eq!(
                Region::tile([0; 5], [1; 5]).resolve_one(&s),
                Err(RegionProblem::RankMismatch)
            );
            let wrong_rank = if s.rank() == 1 {
                Region::tile([0, 0], [1, 1])
            } else {
                Region::tile([0], [1])
            };
            assert_eq!(wrong_rank.resolve_one(&s), Err(RegionProblem::RankMismatch));
        }
    }

    #[test]
    fn whole_rows_are_one_box() {
        let s = shape(&[4, 8]);
        let boxes = Region::range(8..24).resolve(&s).unwrap();
        assert_eq!(boxes.len(), 1);
        assert_eq!(
            boxes[0],
            Region::tile([1, 0], [2, 8]).resolve(&s).unwrap()[0]
        );
    }

    #[test]
    fn bad_regions_are_rejected() {
        let s = shape(&[4, 4]);
        assert_eq!(
            Region::tile([3, 0], [2, 1]).resolve(&s),
            Err(RegionProblem::OutOfBounds)
        );
        assert_eq!(
            Region::tile([0], [1]).resolve(&s),
            Err(RegionProblem::RankMismatch)
        );
        assert_eq!(
            Region::range(3..17).resolve(&s),
            Err(RegionProblem::OutOfBounds)
        );
        assert_eq!(
            Region::tile([0; 5], [1; 5]).resolve(&s),
            Err(RegionProblem::RankMismatch)
        );
        assert!(Region::tile([0, 0], [0, 4]).resolve(&s).unwrap().is_empty());
    }

    #[test]
    fn regions_stay_small() {
        // Copied into every task body (which is stored inline in its slot when small).
        assert_eq!(std::mem::size_of::<Region>(), 36);
    }

    #[test]
    fn overlap_and_containment() {
        let s = shape(&[8, 8]);
        let b = |r: Region| r.resolve(&s).unwrap()[0];
        let a = b(Region::tile([0, 0], [4, 4]));
        assert!(a.overlaps(&b(Region::tile([3, 3], [2, 2]))));
        assert!(!a.overlaps(&b(Region::tile([4, 0], [4, 4]))));
        assert!(a.contains(&b(Region::tile([1, 1], [2, 2]))));
        assert!(!a.contains(&b(Region::tile([3, 3], [2, 2]))));
        assert!(b(Region::all()).contains(&a));
    }
}
