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
//! hash table. (The last page found missing is remembered too: a task's look-ups
//! meet a new page before its records add it.)
//!
//! # Memory
//!
//! An entry is *live* while it has a writer or a reader; a page exists only while
//! one of its entries is live: a page whose last entry is removed (retired by a
//! write, or pruned by the map's cleanup) is freed at once. (A cleanup frees the
//! pages it empties together, in one pass that moves the pages kept up over the
//! gaps and corrects the index without hashing.) Freed pages are kept for reuse,
//! up to as many as were ever in use at once (at least [`SPARE_PAGES`]): a cleanup
//! frees about two pages of three, which the next submissions need again. So the
//! store holds at most one page in use per live entry, and spares up to the most
//! pages ever in use at once, plus [`SPARE_PAGES`]: at most twice the pages of its
//! peak of live entries (a page per live entry in the worst case of scattered
//! cells, one per [`PAGE`] when they are dense). (Spares are not given back to the
//! allocator between bursts: in `submit_cost_5` that holds about 2 MB more at the
//! peak than freeing them would.) The map's cleanup bounds the live entries by the
//! tasks in flight or held: memory is bounded by the task window, not by the number
//! of tasks ever submitted.

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

/// [`Cells::drop_tasks`] for an entry with readers, out of line (the usual entry
/// has none): takes and returns the last task asked about and its answer, and
/// returns the live items the entry leaves, or `None` if it is emptied.
#[inline(never)]
fn drop_readers(
    entry: &mut Entry,
    mut last: TaskId,
    mut last_done: bool,
    done: &mut impl FnMut(TaskId) -> bool,
) -> (TaskId, bool, Option<usize>) {
    let mut ask = |task: TaskId| {
        if task != last {
            last = task;
            last_done = done(task);
        }
        last_done
    };
    if entry.writer.is_valid() && ask(entry.writer) {
        entry.writer = TaskId::INVALID;
    }
    // `SmallVec::retain`, inlined.
    let readers = entry.readers.as_mut_slice();
    let mut kept = 0;
    for at in 0..readers.len() {
        let reader = readers[at];
        if !ask(reader) {
            readers[kept] = reader;
            kept += 1;
        }
    }
    entry.readers.truncate(kept);
    let left = if entry.is_live() {
        Some(1 + kept)
    } else {
        entry.clear();
        None
    };
    (last, last_done, left)
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
    /// Where a sweep moves the page ([`FREED`] if it frees it); meaningless
    /// otherwise.
    to: u32,
    entries: Box<[Entry; PAGE]>,
}

/// [`Page::to`] of a page a sweep frees.
const FREED: u32 = u32::MAX;

/// The live entries of one grid, by cell.
#[derive(Default)]
pub(super) struct Cells {
    /// Page key to position in `pages`.
    index: HashMap<PageKey, u32, BuildHasherDefault<FxHasher>>,
    pages: Vec<Page>,
    /// Freed pages (every entry empty), kept for reuse: at most
    /// [`Cells::spare_room`].
    #[allow(
        clippy::vec_box,
        reason = "pages move between `pages` and here: a pointer, not 32 entries"
    )]
    spare: Vec<Box<[Entry; PAGE]>>,
    /// The page of the last access and its position in `pages`.
    last: Option<(PageKey, u32)>,
    /// A page found missing since the last page was added: the accesses of a task
    /// that steps onto a new page look for it several times before one adds it.
    missing: Option<PageKey>,
    /// Live entries.
    len: usize,
    /// The most pages ever in use at once.
    peak: usize,
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
        if self.missing == Some(key) {
            return None;
        }
        let Some(&at) = self.index.get(&key) else {
            self.missing = Some(key);
            return None;
        };
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
            to: FREED,
            entries,
        });
        self.index.insert(key, at as u32);
        self.last = Some((key, at as u32));
        self.peak = self.peak.max(at + 1);
        // (Only `key` was found missing, or another page, which is still missing;
        // forgetting it is simplest.)
        self.missing = None;
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
        let mut removed = 0;
        self.sweep(|page| {
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
                    removed += 1;
                }
            }
        });
        self.len -= removed;
    }

    /// Drops the tasks for which `done` returns `true` from every entry (as writer
    /// or reader), emptying the entries left with neither (freeing emptied pages).
    /// Returns the live entries plus their readers left.
    ///
    /// The map's cleanup: [`Cells::retain`] with its test inlined, and a short path
    /// for the usual entry, a writer without readers. A task's accesses are
    /// recorded together, so consecutive entries often name the same task: the last
    /// answer is remembered, and `done` is asked again only for another task.
    pub(super) fn drop_tasks(&mut self, mut done: impl FnMut(TaskId) -> bool) -> usize {
        let mut items = 0;
        let mut removed = 0;
        let mut last = TaskId::INVALID;
        let mut last_done = false;
        self.sweep(|page| {
            let mut live = page.live;
            for entry in page.entries.iter_mut() {
                if !entry.readers.is_empty() {
                    // Out of line, so that the loop keeps its registers for the
                    // usual entry (the memo travels by value).
                    let left;
                    (last, last_done, left) = drop_readers(entry, last, last_done, &mut done);
                    match left {
                        Some(left) => items += left,
                        None => live -= 1,
                    }
                    continue;
                }
                let writer = entry.writer;
                if !writer.is_valid() {
                    continue;
                }
                if writer != last {
                    last = writer;
                    last_done = done(writer);
                }
                if last_done {
                    entry.writer = TaskId::INVALID;
                    live -= 1;
                } else {
                    items += 1;
                }
            }
            removed += (page.live - live) as usize;
            page.live = live;
        });
        self.len -= removed;
        items
    }

    /// Calls `scan` on every page (which keeps `live` right), then frees the pages
    /// left without a live entry. The pages kept move up to close the gaps (in
    /// order), and the index follows in one pass over it, with no hashing: cheaper
    /// than freeing the pages one by one, which costs three hash operations each.
    #[inline(always)]
    fn sweep(&mut self, mut scan: impl FnMut(&mut Page)) {
        let mut kept = 0;
        for page in &mut self.pages {
            scan(page);
            page.to = if page.live == 0 {
                FREED
            } else {
                kept += 1;
                kept - 1
            };
        }
        if kept as usize != self.pages.len() {
            self.close_gaps(kept as usize);
        }
        self.shrink();
    }

    /// The end of [`Cells::sweep`] when it freed pages: `kept` pages stay.
    #[inline(never)]
    fn close_gaps(&mut self, kept: usize) {
        let pages = &self.pages;
        self.index.retain(|_, at| {
            *at = pages[*at as usize].to;
            *at != FREED
        });
        self.last = self.last.and_then(|(key, at)| {
            let to = pages[at as usize].to;
            (to != FREED).then_some((key, to))
        });
        // In order: the kept pages before `from` are in place, so page `from` moves
        // to `to <= from`, over a freed page (or stays).
        for from in 0..self.pages.len() {
            let to = self.pages[from].to;
            if to != FREED && to as usize != from {
                self.pages.swap(to as usize, from);
            }
        }
        let room = self.spare_room();
        let reused = room
            .saturating_sub(self.spare.len())
            .min(self.pages.len() - kept);
        // (The freed pages not taken are dropped with the drain.)
        self.spare.extend(
            self.pages
                .drain(kept..)
                .take(reused)
                .map(|page| page.entries),
        );
    }

    /// Up to how many spare pages to keep: as many as were ever in use at once (at
    /// least [`SPARE_PAGES`]). A cleanup of the map frees about two pages of three at
    /// once (it runs when the entries reach three times what the last one left),
    /// and the submissions that follow need as many again; and as the tasks in
    /// flight come and go in bursts, the spares are kept for the next burst (a bound
    /// that followed the pages in use would drop the pages freed after a burst while
    /// the burst's spares are taken, one allocation and one free per page).
    #[inline]
    fn spare_room(&self) -> usize {
        SPARE_PAGES.max(self.peak)
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
        let room = self.spare_room();
        let page = self.pages.swap_remove(at);
        self.index.remove(&page.key);
        if let Some(moved) = self.pages.get(at) {
            *self
                .index
                .get_mut(&moved.key)
                .expect("every page is indexed") = at as u32;
        }
        self.last = None;
        if self.spare.len() < room {
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

    /// Checks the store's bookkeeping: the index names every page at its position,
    /// the counts of live entries are right, the last page is where `last` says,
    /// and the spares are empty and within bounds.
    fn check(cells: &Cells) {
        assert_eq!(cells.index.len(), cells.pages.len());
        for (key, &at) in &cells.index {
            assert_eq!(cells.pages[at as usize].key, *key);
        }
        let mut len = 0;
        for page in &cells.pages {
            let live = page.entries.iter().filter(|e| e.is_live()).count();
            assert!(live > 0, "an empty page is kept");
            assert_eq!(page.live as usize, live);
            len += live;
        }
        assert_eq!(cells.len, len);
        if let Some((key, at)) = cells.last {
            assert_eq!(cells.pages[at as usize].key, key);
        }
        if let Some(key) = cells.missing {
            assert!(!cells.index.contains_key(&key));
        }
        assert!(cells.spare.len() <= cells.spare_room());
        assert!(cells.peak >= cells.pages.len());
        for spare in &cells.spare {
            assert!(spare.iter().all(|e| !e.is_live() && !e.readers.spilled()));
        }
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

    #[test]
    fn a_page_found_missing_is_found_once_added() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 2);
        let mut cells = Cells::default();
        write(&mut cells, [0, 0, 0, 0], task[0]);
        // Looked up (twice) before it exists, as a task's look-ups do before its
        // records add the page.
        let next = [0, 0, 0, PAGE as u32];
        assert!(cells.get(Cell::at(next)).is_none());
        assert!(cells.get(Cell::at(next)).is_none());
        assert_eq!(cells.missing, Some(Cell::at(next).page));
        check(&cells);
        write(&mut cells, next, task[1]);
        check(&cells);
        // Found through the index too, not only as the last page.
        assert_eq!(
            cells.get(Cell::at([0, 0, 0, 0])).map(|e| e.writer),
            Some(task[0])
        );
        assert_eq!(cells.get(Cell::at(next)).map(|e| e.writer), Some(task[1]));
        // A page freed after it was found missing (or before) is missing again.
        cells.remove(Cell::at(next));
        assert!(cells.get(Cell::at(next)).is_none());
        check(&cells);
        write(&mut cells, [0, 0, 0, PAGE as u32 + 1], task[1]);
        assert_eq!(
            cells
                .get(Cell::at([0, 0, 0, PAGE as u32 + 1]))
                .map(|e| e.writer),
            Some(task[1])
        );
        check(&cells);
    }

    #[test]
    fn a_sweep_moves_the_pages_it_keeps_and_the_index_follows() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 2);
        let mut cells = Cells::default();
        let pages = 40u32;
        let page = PAGE as u32;
        for p in 0..pages {
            // Two cells per page: page p's cells are written by task p % 2.
            write(&mut cells, [0, 0, 0, p * page + 3], task[p as usize % 2]);
            write(&mut cells, [0, 1, 0, p * page + 5], task[p as usize % 2]);
        }
        // The last page used is one that stays, at a new position.
        assert_eq!(
            cells
                .get(Cell::at([0, 0, 0, 37 * page + 3]))
                .map(|e| e.writer),
            Some(task[1])
        );
        check(&cells);
        cells.retain(|k, entry| entry.writer == task[1] || k[1] == 1 && k[MAX_RANK - 1] < 8 * page);
        check(&cells);
        assert_eq!(
            cells.last.map(|(key, _)| key),
            Some(Cell::at([0, 0, 0, 37 * page]).page)
        );
        // Pages of [0, 0, ..]: the odd ones; of [0, 1, ..]: the odd ones, and the first
        // four even ones.
        assert_eq!(cells.pages(), pages as usize + 4);
        for p in 0..pages {
            for (k1, offset) in [(0, 3), (1, 5)] {
                let kept = p % 2 == 1 || k1 == 1 && p < 8;
                let found = cells.get(Cell::at([0, k1, 0, p * page + offset]));
                assert_eq!(
                    found.map(|e| e.writer),
                    kept.then_some(task[p as usize % 2])
                );
            }
        }
        check(&cells);
        // Freed pages come back empty.
        for p in 0..pages {
            let (entry, inserted) = cells.get_or_insert(Cell::at([1, 0, 0, p * page]));
            assert!(inserted && !entry.is_live());
            entry.writer = task[0];
        }
        check(&cells);
    }

    #[test]
    fn spares_are_bounded_by_the_pages_in_use() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 1);
        let mut cells = Cells::default();
        for round in 0..4u32 {
            // A burst of scattered cells (one per page), then all but a few pruned.
            for i in 0..2_000 {
                write(&mut cells, [round, 0, i, 0], task[0]);
            }
            check(&cells);
            cells.retain(|k, _| k[0] == round && k[2] < 10 * round);
            check(&cells);
            assert_eq!(cells.pages(), 10 * round as usize);
            // At most the most pages in use at once (at least SPARE_PAGES).
            assert!(cells.spare.len() <= 2_000 + 10 * round as usize);
            assert!(cells.spare.len() >= SPARE_PAGES, "freed pages are kept");
        }
        // Freed one by one: the spares are still bounded by the peak.
        for i in 0..30 {
            cells.remove(Cell::at([3, 0, i, 0]));
            check(&cells);
        }
        assert!(cells.is_empty());
        assert!(cells.spare.len() <= 2_030);
    }

    #[test]
    fn spares_of_a_burst_are_kept_through_small_cleanups() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 1);
        let mut cells = Cells::default();
        for i in 0..1_000 {
            write(&mut cells, [0, 0, i, 0], task[0]);
        }
        cells.retain(|_, _| false);
        assert_eq!(cells.spare.len(), 1_000);
        // Small rounds take a few spares and give them back: none is dropped (and
        // allocated again by the next round).
        for round in 0..10u32 {
            for i in 0..10 {
                write(&mut cells, [1, round, i, 0], task[0]);
            }
            assert_eq!(cells.spare.len(), 990);
            cells.retain(|k, _| k[2] >= 5);
            cells.retain(|_, _| false);
            check(&cells);
            assert_eq!(cells.spare.len(), 1_000);
        }
    }

    #[test]
    fn dropping_tasks_keeps_the_others_and_counts_what_is_left() {
        let rt = Runtime::builder().workers(1).build();
        let (task, _held) = ids(&rt, 4);
        let [done, running, reader_done, reader_running] = [0, 1, 2, 3].map(|i| task[i]);
        let mut cells = Cells::default();
        let page = PAGE as u32;
        // Page 0: writers only, half done. Page 1: all done. Page 2: readers, some
        // spilled (more than two), with done or running writers.
        for i in 0..page {
            write(
                &mut cells,
                [0, 0, 0, i],
                if i % 2 == 0 { done } else { running },
            );
            write(&mut cells, [0, 0, 0, page + i], done);
            let (entry, _) = cells.get_or_insert(Cell::at([0, 0, 0, 2 * page + i]));
            entry.writer = if i % 4 < 2 { done } else { running };
            for _ in 0..(i % 5) {
                entry.readers.push(if i % 3 == 0 {
                    reader_done
                } else {
                    reader_running
                });
            }
        }
        check(&cells);
        let mut asked = 0;
        let left = cells.drop_tasks(|id| {
            asked += 1;
            id == done || id == reader_done
        });
        check(&cells);
        assert!(asked > 0);
        let mut expected_items = 0;
        for i in 0..page {
            let found = cells.get(Cell::at([0, 0, 0, i])).map(|e| e.writer);
            assert_eq!(found, (i % 2 == 1).then_some(running));
            expected_items += usize::from(i % 2 == 1);
            assert!(cells.get(Cell::at([0, 0, 0, page + i])).is_none());
            let readers = if i % 3 == 0 { 0 } else { i as usize % 5 };
            let writer = i % 4 >= 2;
            match cells.get(Cell::at([0, 0, 0, 2 * page + i])) {
                Some(entry) => {
                    assert_eq!(entry.writer.is_valid(), writer);
                    assert_eq!(entry.readers.len(), readers);
                    assert!(entry.readers.iter().all(|&r| r == reader_running));
                    expected_items += 1 + readers;
                }
                None => assert!(!writer && readers == 0),
            }
        }
        assert_eq!(left, expected_items);
        assert_eq!(cells.pages(), 2);
    }
}
