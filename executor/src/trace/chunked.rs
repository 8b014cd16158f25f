//! Append-only sequences for the recording buffers, stored in chunks that are
//! allocated once and never moved.
//!
//! Why not a `Vec`: doubling copies what was recorded and touches the memory twice.
//! Why huge pages: profiling a recorded run of a million tasks showed the page faults
//! of fresh buffer memory (one per 4 KiB, each a few microseconds in a VM) as the
//! largest single cost of recording, on the submitting thread and the workers alike.
//! So chunks grow from [`FIRST_CHUNK_BYTES`] (a short trace stays small) to
//! [`HUGE_PAGE`] bytes; a chunk of that size is aligned to it and, on Linux, advised
//! to be backed by a transparent huge page (one fault per 2 MiB; where the system
//! has them disabled, the advice changes nothing).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

/// The size and alignment of a transparent huge page on x86_64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// The first chunk of a sequence; each next one is twice as large, up to
/// [`HUGE_PAGE`].
const FIRST_CHUNK_BYTES: usize = 16 << 10;

/// Contiguous room for `capacity` values, of which the first `len` are written.
struct Chunk<T> {
    ptr: NonNull<T>,
    len: usize,
    capacity: usize,
    /// How it was allocated.
    layout: Layout,
}

// SAFETY: a `Chunk` owns its values like a `Vec` does; it shares nothing.
unsafe impl<T: Send> Send for Chunk<T> {}
// SAFETY: as above; `&Chunk` only gives out `&T`.
unsafe impl<T: Sync> Sync for Chunk<T> {}

impl<T: Copy> Chunk<T> {
    /// A chunk for at least `capacity` values. From half a huge page up, the
    /// allocation is rounded up to whole huge pages, aligned to them, and all of it
    /// is used.
    fn with_capacity(capacity: usize) -> Self {
        assert!(
            size_of::<T>() > 0 && capacity > 0,
            "a chunk holds some bytes"
        );
        let bytes = size_of::<T>()
            .checked_mul(capacity)
            .expect("a trace chunk fits in memory");
        let layout = if bytes >= HUGE_PAGE / 2 {
            Layout::from_size_align(bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
        } else {
            Layout::from_size_align(bytes, align_of::<T>())
        }
        .expect("a valid trace chunk layout");
        let capacity = layout.size() / size_of::<T>();
        // SAFETY: the layout's size is not zero (asserted above).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            handle_alloc_error(layout)
        };
        if layout.align() == HUGE_PAGE {
            advise_huge_pages(raw, layout.size());
        }
        Chunk {
            ptr,
            len: 0,
            capacity,
            layout,
        }
    }

    /// Appends `value`, or gives it back if the chunk is full.
    #[inline]
    fn try_push(&mut self, value: T) -> Result<(), T> {
        if self.len == self.capacity {
            return Err(value);
        }
        // SAFETY: `len < capacity`, so the slot is inside the allocation and unwritten
        // (nothing reads past `len`); `T: Copy` has no destructor to skip.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Appends all of `values` if they fit, else nothing.
    #[inline]
    fn try_extend(&mut self, values: &[T]) -> bool {
        if self.capacity - self.len < values.len() {
            return false;
        }
        // SAFETY: the `values.len()` slots from `len` are inside the allocation
        // (checked above) and unwritten, so they cannot overlap `values`, which the
        // caller borrows from elsewhere.
        unsafe {
            std::ptr::copy_nonoverlapping(
                values.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                values.len(),
            )
        };
        self.len += values.len();
        true
    }

    fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` values are initialised (written by `try_push` or
        // `try_extend`) and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Chunk<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `with_capacity` with `layout`, and is freed
        // once, here.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

impl<T: Copy> Clone for Chunk<T> {
    fn clone(&self) -> Self {
        let mut copy = Chunk::with_capacity(self.capacity);
        copy.try_extend(self.as_slice());
        copy
    }
}

impl<T> std::fmt::Debug for Chunk<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    // SAFETY: `[start, start + bytes)` is an allocation this module owns, and
    // `start` is page-aligned (huge-page-aligned, in fact). MADV_HUGEPAGE changes
    // how the kernel backs the range, never its contents or any memory outside it.
    // The result is ignored: it is advice, and the chunk works either way.
    let _ = unsafe { libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _bytes: usize) {}

/// An append-only sequence stored in chunks (see the module documentation).
#[derive(Debug)]
pub(super) struct Chunked<T> {
    chunks: Vec<Chunk<T>>,
    len: usize,
}

impl<T: Copy> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

/// A read position in a [`Chunked`] sequence.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cursor {
    chunk: usize,
    offset: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy> Chunked<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(super) fn push(&mut self, value: T) {
        let value = match self.chunks.last_mut() {
            Some(chunk) => match chunk.try_push(value) {
                Ok(()) => {
                    self.len += 1;
                    return;
                }
                Err(value) => value,
            },
            None => value,
        };
        let pushed = self.new_chunk(1).try_push(value);
        debug_assert!(pushed.is_ok());
        self.len += 1;
    }

    /// Appends `values` into one chunk, so that they can be read back as a slice.
    #[inline]
    pub(super) fn extend_contiguous(&mut self, values: &[T]) {
        if values.is_empty() {
            return;
        }
        if !self
            .chunks
            .last_mut()
            .is_some_and(|chunk| chunk.try_extend(values))
        {
            let extended = self.new_chunk(values.len()).try_extend(values);
            debug_assert!(extended);
        }
        self.len += values.len();
    }

    #[cold]
    fn new_chunk(&mut self, at_least: usize) -> &mut Chunk<T> {
        let bytes = FIRST_CHUNK_BYTES
            .checked_shl(self.chunks.len() as u32)
            .unwrap_or(HUGE_PAGE)
            .min(HUGE_PAGE);
        let capacity = (bytes / size_of::<T>()).max(at_least);
        self.chunks.push(Chunk::with_capacity(capacity));
        self.chunks.last_mut().expect("just pushed")
    }

    /// The value at `cursor`, which then moves past it.
    #[inline]
    pub(super) fn next(&self, cursor: &mut Cursor) -> Option<&T> {
        loop {
            let chunk = self.chunks.get(cursor.chunk)?.as_slice();
            if let Some(value) = chunk.get(cursor.offset) {
                cursor.offset += 1;
                return Some(value);
            }
            *cursor = Cursor {
                chunk: cursor.chunk + 1,
                offset: 0,
            };
        }
    }

    /// The next `n` values appended by one [`Chunked::extend_contiguous`] (or none).
    pub(super) fn next_slice(&self, cursor: &mut Cursor, n: usize) -> &[T] {
        if n == 0 {
            return &[];
        }
        loop {
            // The writer moved to a new chunk exactly when the values did not fit
            // into the rest of this one, so they are here iff they are before its end.
            let chunk = self.chunks[cursor.chunk].as_slice();
            if cursor.offset + n <= chunk.len() {
                cursor.offset += n;
                return &chunk[cursor.offset - n..cursor.offset];
            }
            *cursor = Cursor {
                chunk: cursor.chunk + 1,
                offset: 0,
            };
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(Chunk::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskId;

    #[test]
    fn values_read_back_in_order_across_growing_and_huge_chunks() {
        let mut values = Chunked::<u64>::default();
        let count = 3 * HUGE_PAGE / size_of::<u64>();
        for v in 0..count as u64 {
            values.push(v);
        }
        assert_eq!(values.len(), count);
        assert!(values.chunks.iter().any(|c| c.layout.align() == HUGE_PAGE));
        assert!(values.iter().copied().eq(0..count as u64));
        let mut cursor = Cursor::default();
        let mut read = 0;
        while let Some(&v) = values.next(&mut cursor) {
            assert_eq!(v, read);
            read += 1;
        }
        assert_eq!(read, count as u64);
        let clone = values.clone();
        assert!(clone.iter().eq(values.iter()));
    }

    #[test]
    fn dependency_lists_read_back_as_slices_across_chunks() {
        let mut deps = Chunked::<TaskId>::default();
        // Lists of 0..7 ids, enough to fill several chunks, each list written whole.
        let lists: Vec<Vec<TaskId>> = (0..HUGE_PAGE / size_of::<TaskId>())
            .map(|i| {
                (0..i % 7)
                    .map(|k| TaskId::new(i as u32, k as u32))
                    .collect()
            })
            .collect();
        for list in &lists {
            deps.extend_contiguous(list);
        }
        // And one list longer than a chunk.
        let long: Vec<TaskId> = (0..HUGE_PAGE / size_of::<TaskId>() + 3)
            .map(|k| TaskId::new(k as u32, 0))
            .collect();
        deps.extend_contiguous(&long);
        assert!(deps.chunks.len() >= 3);
        let mut cursor = Cursor::default();
        for list in &lists {
            assert_eq!(deps.next_slice(&mut cursor, list.len()), &list[..]);
        }
        assert_eq!(deps.next_slice(&mut cursor, long.len()), &long[..]);
        assert_eq!(
            deps.len(),
            long.len() + lists.iter().map(Vec::len).sum::<usize>()
        );
    }
}
