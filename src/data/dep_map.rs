//! The dependency map of one tracked tensor: which task last wrote each region and
//! which tasks read it since, so that a new access finds the earlier tasks it
//! conflicts with (rules D2-D4 in [`crate::data`]).
//!
//! # Layout
//!
//! An *entry* is a box (see [`region`](super::region)) with its last writer and the
//! readers since. Entries are grouped into *grids*: every box belongs to exactly one
//! grid, the one of its extent and of its offset modulo that extent (its phase). In
//! one grid the boxes are the cells of a lattice, so two of them overlap only if
//! they are equal, and the cells a query box can overlap are a computable index range.
//! A query visits, per grid, either those cells or all the grid's entries, whichever
//! is fewer. A grid stores its entries in pages of consecutive cells
//! ([`cells`](super::cells)), so a program of uniform tiles has one grid and finds
//! the cell of an access by index arithmetic (plus a small hash lookup when it moves
//! to another page); arbitrary mixes stay exact and degrade towards a scan.
//!
//! # Rules
//!
//! - A read depends on the writer of every overlapping entry (RAW).
//! - A write depends on the readers of every overlapping entry (WAR) and, where an
//!   entry has no reader since its write, on its writer (WAW). (Readers of an entry
//!   came after its writer and depend on it, so the writer is implied.)
//! - A write retires the entries it covers: they can only ever matter through it.
//!   So a chain of writes to one region keeps one entry.
//! - Overlap is exact: every region is a union of boxes, and boxes overlap or not.
//!   Anything the map could not decide would be ordered (fail closed); nothing is
//!   left undecided today.
//! - Cleanup: when the entries and readers exceed three times what was left after
//!   the last cleanup, finished tasks are dropped from them and empty entries
//!   removed, and emptied grids (a sole grid stays, empty, with its spare pages,
//!   until an access of another shape removes it). (What is left is mostly tasks
//!   still running, which every cleanup looks at again: three rather than two
//!   halves those second looks.) A task that *failed* stays while its slot is held
//!   (by its scope), so later accesses deterministically fail with it. The map's
//!   size is therefore bounded by the tasks in flight or held, not by the tasks ever
//!   submitted (and the pages of a grid by its live entries, see
//!   [`cells`](super::cells)).

use std::hash::Hasher;

use smallvec::SmallVec;

use super::access::AccessKind;
use super::cells::{Cell, Cells, Entry};
use super::region::{Bounds, MAX_RANK};
use crate::graph::DepKind;
use crate::{Runtime, TaskId};

/// Fewest entries and readers at which a cleanup runs. Each cleanup asks the runtime
/// whether the tasks it meets finished, reading status lines the workers have just
/// written: 2,048 (about 64 KiB of entries) rather than 256 means fewer cleanups, for
/// the same time (`submit_cost_5`: 1.003 over 90 rotated rounds, `benches/rotate.py`;
/// 8 and 10 rounds had said 0.945). (The tests of cleanup use programs of a few
/// thousand accesses.)
const MIN_CLEANUP: usize = 2048;

/// The dependency map of one tensor. Only submitters write it; it is aligned to a
/// cache line so that those writes do not evict the tensor's read-mostly fields
/// (shape, buffer) from the workers' caches.
#[repr(align(64))]
pub(crate) struct DepMap {
    grids: Vec<Grid>,
    /// Entries plus readers, over all grids.
    items: usize,
    /// Run a cleanup when `items` exceeds this.
    cleanup_at: usize,
    /// Changes whenever grids are removed (so a grid's position may change): a
    /// [`CellHint`] names a cell of the first grid of one epoch.
    epoch: u32,
}

/// Where [`DepMap::lookup_cell`] found a query box: a cell of the map's first grid.
/// [`DepMap::record_cell`] uses it to skip finding the cell again; it is stale once
/// the map's grids were removed or reordered.
#[derive(Clone, Copy)]
pub(crate) struct CellHint {
    k: [u32; MAX_RANK],
    epoch: u32,
}

/// What the writes of [`DepMap::look_up_and_record`] replaced in existing entries
/// (writer and readers), for [`DepMap::undo`].
pub(crate) type Replaced = SmallVec<[(TaskId, SmallVec<[TaskId; 2]>); 4]>;

/// The boxes of one extent and phase: cell `k` (lattice coordinates) spans
/// `[phase + k * extent, phase + (k + 1) * extent)` per dimension.
struct Grid {
    extent: [u32; MAX_RANK],
    phase: [u32; MAX_RANK],
    /// `log2(extent)` per dimension, if every extent is a power of two (the usual
    /// case: 1 in the padded dimensions, and tiles): then finding a cell takes no
    /// division.
    shift: Option<[u32; MAX_RANK]>,
    /// Whether every extent is 1 (a grid of single elements, the common case of
    /// element accesses): then a box's cell is its start, and the lattice needs no
    /// shift.
    unit: bool,
    cells: Cells,
}

impl Default for DepMap {
    fn default() -> Self {
        DepMap {
            grids: Vec::new(),
            items: 0,
            cleanup_at: MIN_CLEANUP,
            epoch: 0,
        }
    }
}

/// The dependencies a submission found, with their kinds when the graph is recorded.
pub(crate) struct DepSink {
    pub(crate) ids: SmallVec<[TaskId; 8]>,
    pub(crate) edges: Option<Vec<(TaskId, DepKind, u64)>>,
}

impl DepSink {
    pub(crate) fn new(record_edges: bool) -> Self {
        DepSink {
            ids: SmallVec::new(),
            edges: record_edges.then(Vec::new),
        }
    }

    /// Forgets the dependencies after the first `len` (and every recorded edge: the
    /// edges are of derived dependencies, which come last).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
        if let Some(edges) = &mut self.edges {
            edges.clear();
        }
    }

    #[inline]
    fn push(&mut self, id: TaskId, kind: DepKind, tensor: u64) {
        if !id.is_valid() {
            return;
        }
        self.ids.push(id);
        if let Some(edges) = &mut self.edges {
            edges.push((id, kind, tensor));
        }
    }
}

impl DepMap {
    /// Adds to `sink` the tasks an access of `kind` to box `query` must follow and,
    /// for a write, retires the entries it covers (except the one of `query` itself,
    /// which [`DepMap::record`] updates).
    pub(crate) fn lookup(
        &mut self,
        query: &Bounds,
        kind: AccessKind,
        tensor: u64,
        sink: &mut DepSink,
    ) {
        if self.lookup_cell(query, kind, tensor, sink).is_none() {
            self.lookup_in_every_grid(query, kind, tensor, sink);
        }
    }

    /// [`DepMap::lookup`] when it changes nothing: the map is empty, or has one grid
    /// and `query` is one of its cells (then that cell is the only box of the map
    /// that can overlap it, and a write covers nothing else to retire). Returns
    /// whether that was the case (if not, it did nothing), and in the second case
    /// where the cell is, for [`DepMap::record_cell`].
    #[inline(always)]
    pub(crate) fn lookup_cell(
        &mut self,
        query: &Bounds,
        kind: AccessKind,
        tensor: u64,
        sink: &mut DepSink,
    ) -> Option<Option<CellHint>> {
        match &mut self.grids[..] {
            [] => Some(None),
            [grid] => {
                let k = grid.lattice_of(query)?;
                if let Some(entry) = grid.cells.get(Cell::at(k)) {
                    depend_on(entry, kind, tensor, sink);
                }
                Some(Some(CellHint {
                    k,
                    epoch: self.epoch,
                }))
            }
            _ => None,
        }
    }

    /// [`DepMap::lookup`] off the fast path: every grid's overlapping entries.
    #[inline(never)]
    fn lookup_in_every_grid(
        &mut self,
        query: &Bounds,
        kind: AccessKind,
        tensor: u64,
        sink: &mut DepSink,
    ) {
        let mut emptied = false;
        for grid in &mut self.grids {
            let removed = grid.visit(query, kind.writes(), |entry| {
                depend_on(entry, kind, tensor, sink)
            });
            self.items -= removed;
            emptied |= grid.cells.is_empty();
        }
        if emptied {
            self.grids.retain(|grid| !grid.cells.is_empty());
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// [`DepMap::lookup`] and [`DepMap::record`] at once, for a map with at most one
    /// grid and a `query` that is one of its cells (or would start the map's first
    /// grid): adds to `sink` what an access of `kind` to `query` must follow, then
    /// records that `task` makes it. Returns `None` (and changed nothing) in every
    /// other case; else whether the record made a new entry, and for a write to an
    /// existing entry what it replaced there (pushed on `replaced`):
    /// [`DepMap::undo`] takes the record back with them.
    ///
    /// It runs no cleanup (see [`DepMap::clean_up_if_due`]), so the map's grids stay
    /// where they are until the caller is done with a task's accesses.
    #[inline(always)]
    pub(crate) fn look_up_and_record(
        &mut self,
        query: &Bounds,
        kind: AccessKind,
        tensor: u64,
        task: TaskId,
        sink: &mut DepSink,
        replaced: &mut Replaced,
    ) -> Option<bool> {
        let cell = match &self.grids[..] {
            // Nothing to depend on: the access starts the map's first grid.
            [] => self.new_grid(query).1,
            [grid] => grid.cell_of(query)?,
            _ => return None,
        };
        Some(self.record_in_first_grid(cell, kind, tensor, task, sink, replaced))
    }

    /// [`DepMap::look_up_and_record`] for the elements `start..end` of a vector: in a
    /// grid of single elements the cell of an element is found without a box.
    #[allow(
        clippy::too_many_arguments,
        reason = "look_up_and_record's, the box in two"
    )]
    #[inline(always)]
    pub(crate) fn look_up_and_record_range(
        &mut self,
        start: u32,
        end: u32,
        kind: AccessKind,
        tensor: u64,
        task: TaskId,
        sink: &mut DepSink,
        replaced: &mut Replaced,
    ) -> Option<bool> {
        if let [grid] = &self.grids[..]
            && grid.unit
        {
            if end - start != 1 {
                return None;
            }
            let mut k = [0; MAX_RANK];
            k[MAX_RANK - 1] = start;
            let cell = Cell::at(k);
            return Some(self.record_in_first_grid(cell, kind, tensor, task, sink, replaced));
        }
        let query = Bounds::of_range((start, end));
        self.look_up_and_record(&query, kind, tensor, task, sink, replaced)
    }

    /// The step of [`DepMap::look_up_and_record`] once the access is known to be
    /// `cell` of the first grid: its dependencies, then the record.
    #[inline(always)]
    fn record_in_first_grid(
        &mut self,
        cell: Cell,
        kind: AccessKind,
        tensor: u64,
        task: TaskId,
        sink: &mut DepSink,
        replaced: &mut Replaced,
    ) -> bool {
        let (entry, inserted) = self.grids[0].cells.get_or_insert(cell);
        if !inserted {
            depend_on(entry, kind, tensor, sink);
        }
        put(&mut self.items, entry, inserted, kind, task, Some(replaced));
        inserted
    }

    /// Takes back the record of [`DepMap::look_up_and_record`] of an access of
    /// `kind` to `query` (which `inserted` its entry or not), popping what it
    /// replaced from `replaced`. The records of one task are taken back in the
    /// reverse of their order.
    #[cold]
    pub(crate) fn undo(
        &mut self,
        query: &Bounds,
        kind: AccessKind,
        inserted: bool,
        replaced: &mut Replaced,
    ) {
        let cell = self.grids[0]
            .cell_of(query)
            .expect("a recorded box is a cell of the first grid");
        let cells = &mut self.grids[0].cells;
        if inserted {
            // A fresh entry: it held only this record (a write, or one reader).
            cells.remove(cell);
            self.items -= 1 + usize::from(!kind.writes());
            return;
        }
        let (entry, _) = cells.get_or_insert(cell);
        if kind.writes() {
            let (writer, readers) = replaced.pop().expect("a write replaced an entry");
            self.items += readers.len();
            entry.writer = writer;
            entry.readers = readers;
        } else {
            entry.readers.pop();
            self.items -= 1;
        }
    }

    /// Runs a cleanup if the map has grown past its threshold (what
    /// [`DepMap::record`] does after each record).
    #[inline]
    pub(crate) fn clean_up_if_due(&mut self, rt: &Runtime) {
        if self.items > self.cleanup_at {
            self.cleanup(rt);
        }
    }

    /// Records that `task` accesses box `query` in `kind`: a write becomes the box's
    /// writer (clearing its readers), a read joins its readers.
    pub(crate) fn record(&mut self, query: &Bounds, kind: AccessKind, task: TaskId, rt: &Runtime) {
        let (at, cell) = if let [grid] = &self.grids[..]
            && let Some(cell) = grid.cell_of(query)
        {
            (0, cell)
        } else {
            self.grid_of(query)
        };
        self.record_at(at, cell, kind, task, rt);
    }

    /// [`DepMap::record`] for the box `lookup_cell` found at `hint`, if the hint is
    /// still good (no grid was removed since); returns whether it was.
    #[inline]
    pub(crate) fn record_cell(
        &mut self,
        hint: CellHint,
        kind: AccessKind,
        task: TaskId,
        rt: &Runtime,
    ) -> bool {
        // Grids are only added at the end, or removed (which changes the epoch): so
        // the first grid is still the one of the hint.
        if hint.epoch != self.epoch || self.grids.is_empty() {
            return false;
        }
        self.record_at(0, Cell::at(hint.k), kind, task, rt);
        true
    }

    /// [`DepMap::record`] for the box at `cell` of grid `at`.
    #[inline(always)]
    fn record_at(&mut self, at: usize, cell: Cell, kind: AccessKind, task: TaskId, rt: &Runtime) {
        let (entry, inserted) = self.grids[at].cells.get_or_insert(cell);
        put(&mut self.items, entry, inserted, kind, task, None);
        self.clean_up_if_due(rt);
    }

    /// The grid of `query`'s extent and phase (added if missing): its position and
    /// `query`'s cell in it.
    fn grid_of(&mut self, query: &Bounds) -> (usize, Cell) {
        let found = self
            .grids
            .iter()
            .enumerate()
            .find_map(|(at, grid)| Some((at, grid.cell_of(query)?)));
        match found {
            Some(found) => found,
            None => self.new_grid(query),
        }
    }

    /// Adds the grid of `query`'s extent and phase; returns its position and
    /// `query`'s cell in it.
    #[cold]
    fn new_grid(&mut self, query: &Bounds) -> (usize, Cell) {
        let extent = query.extent();
        let grid = Grid {
            extent,
            phase: std::array::from_fn(|d| {
                remainder(query.start[d] as u64, extent[d] as u64) as u32
            }),
            shift: extent
                .iter()
                .all(|e| e.is_power_of_two())
                .then(|| extent.map(u32::trailing_zeros)),
            unit: extent == [1; MAX_RANK],
            cells: Cells::default(),
        };
        let cell = grid
            .cell_of(query)
            .expect("a box is a cell of its own grid");
        self.grids.push(grid);
        (self.grids.len() - 1, cell)
    }

    /// Drops finished tasks (keeping held failures) and empty entries.
    ///
    /// One look at each task's slot ([`Runtime::failed`]) tells running (keep),
    /// completed or long gone (drop), and failed with its slot still held (keep, so
    /// that later accesses fail with it deterministically; dropped once its slot is
    /// reclaimed). Consecutive entries of one task ask once
    /// ([`Cells::drop_tasks`]); a task seen running may finish meanwhile, a later
    /// cleanup prunes it.
    #[inline(never)]
    fn cleanup(&mut self, rt: &Runtime) {
        let mut items = 0;
        for grid in &mut self.grids {
            items += grid.cells.drop_tasks(|task| rt.failed(task) == Some(false));
        }
        // Emptied grids go, except a sole one: the next accesses are most likely of
        // its shape again, and it keeps its spare pages for them (an access of
        // another shape removes it, in `lookup_in_every_grid`).
        let grids = self.grids.len();
        if grids > 1 {
            self.grids.retain(|grid| !grid.cells.is_empty());
            if self.grids.len() != grids {
                self.epoch = self.epoch.wrapping_add(1);
            }
        }
        self.items = items;
        self.cleanup_at = (3 * items).max(MIN_CLEANUP);
    }

    /// Entries plus readers (for tests of the memory bound).
    #[cfg(test)]
    pub(crate) fn items(&self) -> usize {
        self.items
    }
}

/// Records in `entry` (just made if `inserted`) that `task` accesses it in `kind`,
/// keeping the map's `items` right: a write becomes its writer and clears its
/// readers, a read joins them. A write to an entry that was there pushes what it
/// replaced (writer and readers) on `replaced` if given, for [`DepMap::undo`];
/// without it the readers are cleared in place, so a spilled list keeps its
/// allocation for the next readers.
#[inline(always)]
fn put(
    items: &mut usize,
    entry: &mut Entry,
    inserted: bool,
    kind: AccessKind,
    task: TaskId,
    replaced: Option<&mut Replaced>,
) {
    *items += usize::from(inserted);
    if !kind.writes() {
        entry.readers.push(task);
        *items += 1;
        return;
    }
    if inserted {
        // A fresh entry: no writer and no readers to replace.
        entry.writer = task;
        return;
    }
    *items -= entry.readers.len();
    let writer = std::mem::replace(&mut entry.writer, task);
    match replaced {
        Some(replaced) => replaced.push((writer, std::mem::take(&mut entry.readers))),
        None => entry.readers.clear(),
    }
}

/// Adds to `sink` what an access of `kind` must follow in `entry` (the rules in the
/// module docs).
#[inline(always)]
fn depend_on(entry: &Entry, kind: AccessKind, tensor: u64, sink: &mut DepSink) {
    if kind.reads() {
        sink.push(entry.writer, DepKind::Raw, tensor);
    }
    if kind.writes() {
        for &reader in &entry.readers {
            sink.push(reader, DepKind::War, tensor);
        }
        if entry.readers.is_empty() && !kind.reads() {
            sink.push(entry.writer, DepKind::Waw, tensor);
        }
    }
}

/// `x / d`, without a division for the extents tiles usually have (1 and powers of
/// two): a division costs tens of cycles, and a lookup makes several.
#[inline]
fn quotient(x: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        x >> d.trailing_zeros()
    } else {
        x / d
    }
}

/// `x % d`, as [`quotient`].
#[inline]
fn remainder(x: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        x & (d - 1)
    } else {
        x % d
    }
}

impl Grid {
    /// `query`'s cell, if `query` is one of this grid's cells (same extent and
    /// phase).
    #[inline(always)]
    fn cell_of(&self, query: &Bounds) -> Option<Cell> {
        self.lattice_of(query).map(Cell::at)
    }

    /// The lattice coordinates of `query`, if it is one of this grid's cells.
    #[inline(always)]
    fn lattice_of(&self, query: &Bounds) -> Option<[u32; MAX_RANK]> {
        if self.unit {
            // Every phase is 0 (a remainder modulo 1), and the box must be one element
            // in every dimension: its cell is its start.
            let mut off = 0u32;
            for d in 0..MAX_RANK {
                off |= query.end[d].wrapping_sub(query.start[d]) ^ 1;
            }
            return (off == 0).then_some(query.start);
        }
        if let Some(shift) = self.shift {
            // Branch-free over the dimensions: a difference in extent, or a start off
            // the lattice, sets a bit of `off`. A start below the phase is off the
            // lattice too: `start - phase` wraps to `2^32 - (phase - start)`, and as
            // the extent divides 2^32 and `0 < phase - start < extent`, the extent
            // does not divide that.
            let mut k = [0u32; MAX_RANK];
            let mut off = 0u32;
            for d in 0..MAX_RANK {
                let extent = self.extent[d];
                let from = query.start[d].wrapping_sub(self.phase[d]);
                off |= (query.end[d].wrapping_sub(query.start[d])) ^ extent;
                off |= from & (extent - 1);
                k[d] = from >> shift[d];
            }
            return (off == 0).then_some(k);
        }
        let mut k = [0u32; MAX_RANK];
        for (d, k) in k.iter_mut().enumerate() {
            let extent = self.extent[d];
            if query.end[d] - query.start[d] != extent {
                return None;
            }
            // In phase: `start - phase` is a multiple of the extent (a start below
            // the phase is not: the phase is less than the extent).
            let from = query.start[d].checked_sub(self.phase[d])? as u64;
            if remainder(from, extent as u64) != 0 {
                return None;
            }
            *k = quotient(from, extent as u64) as u32;
        }
        Some(k)
    }

    /// The box of the cell at lattice coordinates `k` (of a recorded cell, so in
    /// range).
    #[inline]
    fn cell_bounds(&self, k: [u32; MAX_RANK]) -> Bounds {
        let start = std::array::from_fn(|d| self.phase[d] + k[d] * self.extent[d]);
        Bounds {
            start,
            end: std::array::from_fn(|d| start[d] + self.extent[d]),
        }
    }

    /// Calls `visit` for every entry overlapping `query`; with `retire`, removes the
    /// entries `query` covers (other than `query`'s own cell). Returns the items
    /// removed.
    fn visit(&mut self, query: &Bounds, retire: bool, mut visit: impl FnMut(&Entry)) -> usize {
        // The cells overlapping `query`, per dimension: cell k spans
        // [phase + k * extent, phase + (k + 1) * extent).
        let mut first = [0u64; MAX_RANK];
        let mut last = [0u64; MAX_RANK];
        let mut cells: u64 = 1;
        for d in 0..MAX_RANK {
            let (extent, phase) = (self.extent[d] as u64, self.phase[d] as u64);
            let (start, end) = (query.start[d] as u64, query.end[d] as u64);
            first[d] = quotient(start.saturating_sub(phase), extent);
            last[d] = quotient(end.saturating_sub(phase) + extent - 1, extent);
            if last[d] <= first[d] {
                return 0;
            }
            cells = cells.saturating_mul(last[d] - first[d]);
        }
        let own_grid = self.extent == query.extent();
        let retires = |cell: &Bounds| {
            retire && query.contains(cell) && !(own_grid && cell.start == query.start)
        };
        let mut removed = 0;
        if cells <= self.cells.len() as u64 {
            for k0 in first[0]..last[0] {
                for k1 in first[1]..last[1] {
                    for k2 in first[2]..last[2] {
                        for k3 in first[3]..last[3] {
                            let k = [k0, k1, k2, k3];
                            // Lattice coordinates past u32 lie past every recorded
                            // cell (cells start below 2^32).
                            if k.iter().any(|&k| k > u32::MAX as u64) {
                                continue;
                            }
                            let k = k.map(|k| k as u32);
                            let cell = Cell::at(k);
                            let Some(entry) = self.cells.get(cell) else {
                                continue;
                            };
                            let items = 1 + entry.readers.len();
                            visit(entry);
                            if retires(&self.cell_bounds(k)) {
                                removed += items;
                                self.cells.remove(cell);
                            }
                        }
                    }
                }
            }
        } else {
            let (phase, extent) = (self.phase, self.extent);
            self.cells.retain(|k, entry| {
                let start: [u32; MAX_RANK] = std::array::from_fn(|d| phase[d] + k[d] * extent[d]);
                let cell = Bounds {
                    start,
                    end: std::array::from_fn(|d| start[d] + extent[d]),
                };
                if !cell.overlaps(query) {
                    return true;
                }
                visit(entry);
                let retired = retires(&cell);
                if retired {
                    removed += 1 + entry.readers.len();
                }
                !retired
            });
        }
        removed
    }
}

/// The Firefox/rustc hash: one multiply-rotate per word, plenty for page keys.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0xf135_7aea_2e62_a9c5;

    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the high bits best mixed; hashbrown takes its control
        // byte from the top and the bucket from the bottom, so fold them together.
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::region::{Region, Shape};

    fn bounds(shape: &Shape, region: Region) -> Bounds {
        region.resolve(shape).unwrap()[0]
    }

    fn deps(map: &mut DepMap, b: &Bounds, kind: AccessKind) -> Vec<(TaskId, DepKind)> {
        let mut sink = DepSink::new(true);
        map.lookup(b, kind, 0, &mut sink);
        sink.edges
            .unwrap()
            .into_iter()
            .map(|(id, kind, _)| (id, kind))
            .collect()
    }

    /// Ids of real tasks that stay open until `gate` is dropped.
    fn open_tasks(rt: &Runtime, n: usize) -> (Vec<crate::Task<()>>, std::sync::mpsc::Sender<()>) {
        let (gate, wait) = std::sync::mpsc::channel::<()>();
        let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
        let blocker = {
            let wait = wait.clone();
            rt.task(move || {
                let _ = wait.lock().unwrap().recv();
            })
            .submit_blocking()
        };
        let mut tasks = vec![blocker];
        for _ in 1..n {
            let after = tasks[0].id();
            tasks.push(rt.task(|| ()).after([after]).submit_blocking());
        }
        (tasks, gate)
    }

    #[test]
    fn edge_kinds_and_retiring() {
        let rt = Runtime::builder().workers(1).build();
        let (tasks, gate) = open_tasks(&rt, 6);
        let [w1, r1, r2, w2, w3, r3] = [0, 1, 2, 3, 4, 5].map(|i| tasks[i].id());
        let shape = Shape::new(&[8, 8]).unwrap();
        let tile = bounds(&shape, Region::tile([0, 0], [4, 4]));
        let inner = bounds(&shape, Region::tile([1, 1], [2, 2]));
        let other = bounds(&shape, Region::tile([4, 4], [4, 4]));
        let mut map = DepMap::default();

        assert!(deps(&mut map, &tile, AccessKind::Write).is_empty());
        map.record(&tile, AccessKind::Write, w1, &rt);
        assert_eq!(
            deps(&mut map, &inner, AccessKind::Read),
            [(w1, DepKind::Raw)]
        );
        map.record(&inner, AccessKind::Read, r1, &rt);
        assert_eq!(
            deps(&mut map, &tile, AccessKind::Read),
            [(w1, DepKind::Raw)]
        );
        map.record(&tile, AccessKind::Read, r2, &rt);
        assert!(deps(&mut map, &other, AccessKind::ReadWrite).is_empty());
        // The write covers `inner` (retired) and its own tile (kept for `record`).
        let mut found = deps(&mut map, &tile, AccessKind::Write);
        found.sort();
        let mut expected = vec![(r1, DepKind::War), (r2, DepKind::War)];
        expected.sort();
        assert_eq!(found, expected);
        map.record(&tile, AccessKind::Write, w2, &rt);
        assert_eq!(map.items(), 1);
        assert_eq!(
            deps(&mut map, &inner, AccessKind::Write),
            [(w2, DepKind::Waw)]
        );
        map.record(&inner, AccessKind::Write, w3, &rt);
        let mut found = deps(&mut map, &inner, AccessKind::ReadWrite);
        found.sort();
        assert_eq!(found, [(w2, DepKind::Raw), (w3, DepKind::Raw)]);
        map.record(&inner, AccessKind::Read, r3, &rt);
        drop(gate);
        for task in tasks {
            task.wait_blocking().unwrap();
        }
    }

    #[test]
    fn a_cell_hint_records_in_its_cell_until_grids_are_removed() {
        let rt = Runtime::builder().workers(1).build();
        let (tasks, gate) = open_tasks(&rt, 4);
        let [t0, t1, t2, t3] = [0, 1, 2, 3].map(|i| tasks[i].id());
        let shape = Shape::new(&[64]).unwrap();
        let cell = bounds(&shape, Region::range(8..12));
        let mut map = DepMap::default();
        let mut sink = DepSink::new(false);
        // An empty map: looked up, nothing to hint.
        assert!(matches!(
            map.lookup_cell(&cell, AccessKind::Write, 0, &mut sink),
            Some(None)
        ));
        map.record(&cell, AccessKind::Write, t0, &rt);
        let hint = map
            .lookup_cell(&cell, AccessKind::Read, 0, &mut sink)
            .unwrap()
            .unwrap();
        assert_eq!(sink.ids.as_slice(), [t0]);
        // A grid added after the hint leaves it good.
        map.record(
            &bounds(&shape, Region::range(32..40)),
            AccessKind::Write,
            t1,
            &rt,
        );
        assert!(map.record_cell(hint, AccessKind::Read, t2, &rt));
        let found = deps(&mut map, &cell, AccessKind::Write);
        assert_eq!(found, [(t2, DepKind::War)]);
        // A write of everything retires both grids' entries: the grids go, its own
        // becomes the first, and the hint is stale.
        let all = bounds(&shape, Region::all());
        deps(&mut map, &all, AccessKind::Write);
        map.record(&all, AccessKind::Write, t3, &rt);
        assert!(!map.record_cell(hint, AccessKind::Write, t3, &rt));
        assert_eq!(map.items(), 1);
        assert_eq!(
            deps(&mut map, &cell, AccessKind::Read),
            [(t3, DepKind::Raw)]
        );
        drop(gate);
        for task in tasks {
            task.wait_blocking().unwrap();
        }
    }

    #[test]
    fn cleanup_bounds_the_map_by_the_tasks_in_flight() {
        let rt = Runtime::builder().workers(2).build();
        let shape = Shape::new(&[1 << 16]).unwrap();
        let mut map = DepMap::default();
        let mut peak = 0;
        for i in 0..20_000usize {
            let task = rt.task(|| ()).submit_blocking();
            let b = bounds(&shape, Region::range(i..i + 1));
            let mut sink = DepSink::new(false);
            map.lookup(&b, AccessKind::Write, 0, &mut sink);
            map.record(&b, AccessKind::Write, task.id(), &rt);
            drop(task);
            if i % 1000 == 999 {
                rt.synchronize_blocking();
            }
            peak = peak.max(map.items());
        }
        assert!(peak <= 4 * 1024, "the map grew to {peak} items");
    }

    #[test]
    fn a_sole_grid_emptied_by_a_cleanup_stays_until_another_shape_comes() {
        let rt = Runtime::builder().workers(1).build();
        let shape = Shape::new(&[2 * MIN_CLEANUP]).unwrap();
        let mut map = DepMap::default();
        let mut cleaned = false;
        for i in 0..(2 * MIN_CLEANUP) {
            let task = rt.task(|| ()).submit_blocking();
            let id = task.id();
            task.wait_blocking().unwrap();
            let b = bounds(&shape, Region::range(i..i + 1));
            deps(&mut map, &b, AccessKind::Write);
            map.record(&b, AccessKind::Write, id, &rt);
            if map.items() == 0 {
                cleaned = true;
                break;
            }
        }
        assert!(cleaned, "a cleanup drops finished tasks");
        // Every entry went, the grid stayed (with its spare pages).
        assert_eq!(map.grids.len(), 1);
        assert!(map.grids[0].cells.is_empty());
        let cell = bounds(&shape, Region::range(3..4));
        let mut sink = DepSink::new(false);
        let hint = map
            .lookup_cell(&cell, AccessKind::Read, 0, &mut sink)
            .unwrap()
            .unwrap();
        assert!(sink.ids.is_empty());
        // An access of another shape removes it.
        let pair = bounds(&shape, Region::range(4..6));
        assert!(deps(&mut map, &pair, AccessKind::Write).is_empty());
        assert!(map.grids.is_empty());
        let task = rt.task(|| ()).submit_blocking();
        assert!(!map.record_cell(hint, AccessKind::Read, task.id(), &rt));
        map.record(&pair, AccessKind::Write, task.id(), &rt);
        assert_eq!(map.grids.len(), 1);
        assert_eq!(
            deps(&mut map, &pair, AccessKind::Read),
            [(task.id(), DepKind::Raw)]
        );
        task.wait_blocking().unwrap();
    }

    #[test]
    fn a_box_off_a_grids_phase_is_not_its_cell() {
        let rt = Runtime::builder().workers(1).build();
        let (tasks, gate) = open_tasks(&rt, 3);
        let [t0, t1, t2] = [0, 1, 2].map(|i| tasks[i].id());
        let shape = Shape::new(&[64]).unwrap();
        let mut map = DepMap::default();
        // A grid of extent 4 and phase 2: cells 2..6, 6..10, ...
        let cell = bounds(&shape, Region::range(2..6));
        map.record(&cell, AccessKind::Write, t0, &rt);
        // 0..4 has the grid's extent but starts below its phase: it overlaps the
        // cell 2..6 without being a cell of the grid.
        let below = bounds(&shape, Region::range(0..4));
        assert_eq!(
            deps(&mut map, &below, AccessKind::Read),
            [(t0, DepKind::Raw)]
        );
        map.record(&below, AccessKind::Write, t1, &rt);
        let mut found = deps(&mut map, &cell, AccessKind::Read);
        found.sort();
        assert_eq!(found, [(t0, DepKind::Raw), (t1, DepKind::Raw)]);
        // Far cells of the first grid, and a box between the lattice points.
        let far = bounds(&shape, Region::range(58..62));
        map.record(&far, AccessKind::Write, t2, &rt);
        assert_eq!(deps(&mut map, &far, AccessKind::Read), [(t2, DepKind::Raw)]);
        let between = bounds(&shape, Region::range(59..63));
        assert_eq!(
            deps(&mut map, &between, AccessKind::Read),
            [(t2, DepKind::Raw)]
        );
        drop(gate);
        for task in tasks {
            task.wait_blocking().unwrap();
        }
    }

    #[test]
    fn a_grid_of_single_elements_takes_only_single_elements_as_cells() {
        let rt = Runtime::builder().workers(1).build();
        let (tasks, gate) = open_tasks(&rt, 3);
        let [t0, t1, t2] = [0, 1, 2].map(|i| tasks[i].id());
        let shape = Shape::new(&[8, 8]).unwrap();
        let mut map = DepMap::default();
        let one = bounds(&shape, Region::element([3, 5]));
        map.record(&one, AccessKind::Write, t0, &rt);
        assert!(map.grids[0].unit);
        // Each element is its own cell: the neighbours in both dimensions are free.
        for other in [[3, 4], [3, 6], [2, 5], [4, 5]] {
            let other = bounds(&shape, Region::element(other));
            assert_eq!(map.grids[0].lattice_of(&other), Some(other.start));
            assert!(deps(&mut map, &other, AccessKind::Read).is_empty());
        }
        assert_eq!(map.grids[0].lattice_of(&one), Some(one.start));
        assert_eq!(deps(&mut map, &one, AccessKind::Read), [(t0, DepKind::Raw)]);
        // Boxes wider than one element in either dimension are not cells of it, and
        // still find what they overlap.
        for (wide, id) in [
            (Region::tile([3, 4], [1, 2]), t1),
            (Region::tile([2, 5], [2, 1]), t2),
        ] {
            let wide = bounds(&shape, wide);
            assert_eq!(map.grids[0].lattice_of(&wide), None);
            assert_eq!(
                deps(&mut map, &wide, AccessKind::Read),
                [(t0, DepKind::Raw)]
            );
            map.record(&wide, AccessKind::Read, id, &rt);
        }
        // A write of the element follows both readers (their entries are in other
        // grids, so the element's own entry, with no reader, adds its writer).
        let mut found = deps(&mut map, &one, AccessKind::Write);
        found.sort();
        assert_eq!(
            found,
            [(t0, DepKind::Waw), (t1, DepKind::War), (t2, DepKind::War)]
        );
        drop(gate);
        for task in tasks {
            task.wait_blocking().unwrap();
        }
    }

    #[test]
    fn many_grids_stay_exact() {
        let rt = Runtime::builder().workers(1).build();
        let (tasks, gate) = open_tasks(&rt, 3);
        let shape = Shape::new(&[100]).unwrap();
        let mut map = DepMap::default();
        let a = bounds(&shape, Region::range(10..17));
        let b = bounds(&shape, Region::range(17..30));
        let c = bounds(&shape, Region::range(0..11));
        map.record(&a, AccessKind::Write, tasks[0].id(), &rt);
        map.record(&b, AccessKind::Write, tasks[1].id(), &rt);
        assert_eq!(
            deps(&mut map, &c, AccessKind::Read),
            [(tasks[0].id(), DepKind::Raw)]
        );
        let d = bounds(&shape, Region::range(16..18));
        let mut found = deps(&mut map, &d, AccessKind::Read);
        found.sort();
        assert_eq!(found.len(), 2);
        map.record(
            &bounds(&shape, Region::all()),
            AccessKind::Write,
            tasks[2].id(),
            &rt,
        );
        drop(gate);
        for task in tasks {
            task.wait_blocking().unwrap();
        }
    }
}
