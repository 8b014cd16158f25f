//! The entries of one grid of the dependency map (see [`dep_map`](super::dep_map)),
//! stored in pages of consecutive cells.
//!
//! A grid's boxes are the cells of a lattice, so a cell is named by its lattice
//! coordinates `k` (one per dimension). A *page* holds [`PAGE`] cells that are
//! consecutive in the innermost dimension; a page is found by its key (the
//! coordinates with the innermost one divided by [`PAGE`]) in a small hash map, and
//! the page of the previous access is remembered, so that a program that walks
//! through a tensor (the common case) finds its cell by index arithmetic alone, and
//! neighbouring cells share cache lines instead of being scattered over a large
//! hash table.
//!
//! # Memory
//!
//! An entry is *live* while it has a writer or a reader; a page exists only while
//! one of its entries is live: a page whose last entry is removed (retired by a
//! write, or pruned by the map's cleanup) is freed at once, and freed pages are kept
//! for reuse up to as many as are in use (at least [`SPARE_PAGES`]). So the store
//! holds at most one page in use per live entry and as many spares, plus
//! [`SPARE_PAGES`]: `2 * PAGE` entries per live entry in the worst case of scattered
//! cells, about one when the live cells are dense. The map's cleanup bounds the live
//! entries by the tasks in flight or held: memory is bounded by the task window, not
//! by the number of tasks ever submitted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use smallvec::SmallVec;

use super::dep_map::FxHasher;
use super::region::MAX_RANK;
use crate::TaskId;

/// Cells per page.
pub(super) const PAGE: usize = 32;

/// Freed pages kept for reuse, at least (more while more pages are in use: a
/// cleanup frees many pages at once, which the next submissions need again).
const SPARE_PAGES: usize = 64;

/// What the map knows about one box.
pub(super) struct Entry {
    /// The last task that wrote the box, or `INVALID`.
    pub(super) writer: TaskId,
    /// Tasks that read the box since that write.
    pub(super) readers: SmallVec<[TaskId; 2]>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            writer: TaskId::INVALID,
            readers: SmallVec::new(),
        }
    }
}

impl Entry {
    /// Whether the entry is live (has a writer or a reader).
    #[inline]
    pub(super) fn is_live(&self) -> bool {
        self.writer.is_valid() || !self.readers.is_empty()
    }

    /// Makes the entry empty (not live), giving back a spilled reader list.
    fn clear(&mut self) {
        self.writer = TaskId::INVALID;
        if self.readers.spilled() {
            self.readers = SmallVec::new();
        } else {
            self.readers.clear();
        }
    }
}

/// Where a cell lives: its page's key and its offset in the page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Cell {
    page: PageKey,
    offset: usize,
}

impl Cell {
    /// The cell of lattice coordinates `k`.
    #[inline]
    pub(super) fn at(k: [u32; MAX_RANK]) -> Cell {
        let inner = k[MAX_RANK - 1];
        let mut page = k;
        page[MAX_RANK - 1] = inner / PAGE as u32;
        Cell {
            page: PageKey(page),
            offset: inner as usize % PAGE,
        }
    }
}

/// The lattice coordinates of a page's first cell, with the innermost one divided
/// by [`PAGE`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PageKey([u32; MAX_RANK]);

impl Hash for PageKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d] = self.0.map(u64::from);
        state.write_u64(a << 32 | b);
        state.write_u64(c << 32 | d);
    }
}

/// [`PAGE`] consecutive cells.
struct Page {
    key: PageKey,
    /// Live entries in `entries`.
    live: u32,
    entries: Box<[Entry; PAGE]>,
}

/// The live entries of one grid, by cell.
#[derive(Default)]
pub(super) struct Cells {
    /// Page key to position in `pages`.
    index: HashMap<PageKey, u32, BuildHasherDefault<FxHasher>>,
    pages: Vec<Page>,
    /// Freed pages (every entry empty), kept for reuse.
    #[allow(
        clippy::vec_box,
        reason = "pages move between `pages` and here: a pointer, not 16 entries"
    )]
    spare: Vec<Box<[Entry; PAGE]>>,
    /// The page of the last access and its position in `pages`.
    last: Option<(PageKey, u32)>,
    /// Live entries.
    len: usize,
}

impl Cells {
    /// Live entries.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is live.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages allocated (for tests of the memory bound).
    #[cfg(test)]
    pub(super) fn pages(&self) -> usize {
        self.pages.len()
    }

    /// The position in `pages` of the page `key`, if it exists.
    #[inline(always)]
    fn find(&mut self, key: PageKey) -> Option<usize> {
        if let Some((last, at)) = self.last
            && last == key
        {
            return Some(at as usize);
        }
        self.find_in_index(key)
    }

    /// [`Cells::find`] when the page is not the last one used.
    #[inline(never)]
    fn find_in_index(&mut self, key: PageKey) -> Option<usize> {
        let at = *self.index.get(&key)?;
        self.last = Some((key, at));
        Some(at as usize)
    }

    /// The live entry of `cell`, if any.
    #[inline(always)]
    pub(super) fn get(&mut self, cell: Cell) -> Option<&Entry> {
        let at = self.find(cell.page)?;
        let entry = &self.pages[at].entries[cell.offset];
        entry.is_live().then_some(entry)
    }

    /// The entry of `cell`, and whether it was empty (then the caller must make it
    /// live before the next call on this store).
    #[inline(always)]
    pub(super) fn get_or_insert(&mut self, cell: Cell) -> (&mut Entry, bool) {
        let at = match self.find(cell.page) {
            Some(at) => at,
            None => self.new_page(cell.page),
        };
        let page = &mut self.pages[at];
        let entry = &mut page.entries[cell.offset];
        let inserted = !entry.is_live();
        if inserted {
            page.live += 1;
            self.len += 1;
        }
        (entry, inserted)
    }

    #[cold]
    fn new_page(&mut self, key: PageKey) -> usize {
        let entries = self
            .spare
            .pop()
            .unwrap_or_else(|| Box::new(std::array::from_fn(|_| Entry::default())));
        let at = self.pages.len();
        self.pages.push(Page {
            key,
            live: 0,
            entries,
        });
        self.index.insert(key, at as u32);
        self.last = Some((key, at as u32));
        at
    }

    /// Empties the entry of `cell` (which must be live), freeing its page if that
    /// was its last live entry.
    pub(super) fn remove(&mut self, cell: Cell) {
        let at = self
            .find(cell.page)
            .expect("taskweave: removing a cell of no page");
        let page = &mut self.pages[at];
        let entry = &mut page.entries[cell.offset];
        debug_assert!(entry.is_live());
        entry.clear();
        page.live -= 1;
        self.len -= 1;
        if page.live == 0 {
            self.free_page(at);
        }
    }

    /// Calls `keep` with the lattice coordinates and the entry of every live cell;
    /// empties those for which it returns `false` (freeing emptied pages).
    pub(super) fn retain(&mut self, mut keep: impl FnMut([u32; MAX_RANK], &mut Entry) -> bool) {
        let mut at = 0;
        while at < self.pages.len() {
            let page = &mut self.pages[at];
            let mut k = page.key.0;
            let first = k[MAX_RANK - 1] * PAGE as u32;
            for (offset, entry) in page.entries.iter_mut().enumerate() {
                if !entry.is_live() {
                    continue;
                }
                k[MAX_RANK - 1] = first + offset as u32;
                if !keep(k, entry) {
                    entry.clear();
                    page.live -= 1;
                    self.len -= 1;
                }
            }
            if page.live == 0 {
                self.free_page(at);
            } else {
                at += 1;
            }
        }
        self.shrink();
    }

    /// Gives memory back after a burst, without churning: shrinking to fit and
    /// growing again would rehash on every cleanup.
    fn shrink(&mut self) {
        if self.index.capacity() > 8 * self.index.len() + 1024 {
            self.index.shrink_to(2 * self.index.len());
        }
        if self.pages.capacity() > 8 * self.pages.len() + 1024 {
            self.pages.shrink_to(2 * self.pages.len());
        }
    }

    /// Frees the (empty) page at `at`.
    fn free_page(&mut self, at: usize) {
        let page = self.pages.swap_remove(at);
        self.index.remove(&page.key);
        if let Some(moved) = self.pages.get(at) {
            *self
                .index
                .get_mut(&moved.key)
                .expect("every page is indexed") = at as u32;
        }
        self.last = None;
        if self.spare.len() < SPARE_PAGES.max(self.pages.len()) {
            self.spare.push(page.entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Runtime, Task};

    /// `n` distinct task ids (their handles keep their slots).
    fn ids(rt: &Runtime, n: usize) -> (Vec<TaskId>, Vec<Task<()>>) {
        let tasks: Vec<_> = (0..n).map(|_| rt.task(|| ()).submit_blocking()).collect();
        (tasks.iter().map(Task::id).collect(), tasks)
    }

    fn write(cells: &mut Cells, k: [u32; MAX_RANK], id: TaskId) {
        let (entry, _) = cells.get_or_insert(Cell::at(k));
        entry.writer = id;
    }

    #[test]
    fn cells_are_found_by_their_coordinates() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 5);
        let task = |i: u32| task[i as usize];
        let mut cells = Cells::default();
        let page = PAGE as u32;
        let spots = [
            [0, 0, 0, 0],
            [0, 0, 0, page - 1],
            [0, 0, 0, page],
            [0, 0, 3, 1],
            [7, 0, 0, 2 * page + 8],
        ];
        for (i, k) in spots.into_iter().enumerate() {
            write(&mut cells, k, task(i as u32));
        }
        assert_eq!(cells.len(), 5);
        // [0, 0, 0, 0] and [0, 0, 0, PAGE - 1] share a page.
        assert_eq!(cells.pages(), 4);
        for (i, k) in spots.into_iter().enumerate() {
            assert_eq!(
                cells.get(Cell::at(k)).map(|e| e.writer),
                Some(task(i as u32))
            );
        }
        assert!(cells.get(Cell::at([0, 0, 0, 1])).is_none());
        assert!(cells.get(Cell::at([1, 0, 0, 0])).is_none());
        let mut seen = Vec::new();
        cells.retain(|k, entry| {
            seen.push((k, entry.writer));
            true
        });
        seen.sort_by_key(|&(_, id)| id);
        let expected: Vec<_> = spots
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, task(i as u32)))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn emptied_pages_are_freed_and_reused() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 1);
        let mut cells = Cells::default();
        let window = 4 * PAGE as u32;
        for round in 0..100u32 {
            // A window of four pages of cells sliding along the innermost dimension.
            for i in 0..window {
                write(&mut cells, [0, 0, 0, round * window + i], task[0]);
            }
            assert_eq!(cells.pages(), 4);
            for i in 0..window / 2 {
                cells.remove(Cell::at([0, 0, 0, round * window + i]));
            }
            assert_eq!(cells.len(), window as usize / 2);
            assert_eq!(cells.pages(), 2);
            cells.retain(|_, _| false);
            assert!(cells.is_empty());
            assert_eq!(cells.pages(), 0);
            assert!(cells.spare.len() <= SPARE_PAGES);
            assert!(cells.spare.len() >= 4, "freed pages are kept for reuse");
        }
        // Reused pages come back empty.
        assert!(cells.get(Cell::at([0, 0, 0, 0])).is_none());
        let (entry, inserted) = cells.get_or_insert(Cell::at([0, 0, 0, 0]));
        assert!(inserted && entry.readers.is_empty() && !entry.writer.is_valid());
    }

    #[test]
    fn pages_emptied_in_place_are_freed() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 4);
        let mut cells = Cells::default();
        for i in 0..(4 * PAGE as u32) {
            write(&mut cells, [0, 0, 0, i], task[i as usize / PAGE]);
        }
        // Empty pages 0 and 2, and half of page 1 (pages are told apart by writer),
        // in place, as the map's cleanup does: the entry says whether it is live.
        let mut calls = 0;
        cells.retain(|k, entry| {
            calls += 1;
            let page = task.iter().position(|&t| t == entry.writer).unwrap();
            let upto = [PAGE, PAGE / 2, PAGE, 0][page];
            if (k[MAX_RANK - 1] as usize) % PAGE < upto {
                entry.writer = TaskId::INVALID;
            }
            entry.is_live()
        });
        assert_eq!(calls, 4 * PAGE);
        assert_eq!(cells.pages(), 2);
        assert_eq!(cells.len(), PAGE + PAGE / 2);
        let mut live = Vec::new();
        cells.retain(|k, entry| {
            live.push((k[MAX_RANK - 1], entry.writer));
            true
        });
        live.sort();
        let expected: Vec<_> = (PAGE + PAGE / 2..2 * PAGE)
            .chain(3 * PAGE..4 * PAGE)
            .map(|i| (i as u32, task[i / PAGE]))
            .collect();
        assert_eq!(live, expected);
    }

    #[test]
    fn pages_are_bounded_by_the_live_cells() {
        // Scattered cells (one per page), pruned as a cleanup would: the pages follow
        // the live cells, not the cells ever used.
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 1);
        let mut cells = Cells::default();
        let mut peak = 0;
        for i in 0..10_000u32 {
            write(&mut cells, [0, 0, i, 0], task[0]);
            if i % 100 == 99 {
                cells.retain(|k, _| k[2] + 10 > i);
            }
            peak = peak.max(cells.pages());
        }
        assert!(peak <= 110, "{peak} pages for at most 110 live cells");
        assert!(cells.spare.len() <= SPARE_PAGES.max(peak));
        assert_eq!(cells.index.len(), cells.pages());
    }
}
