//! `TaskId`: a 64-bit name for one occupancy of one task slot.

use std::fmt;

/// Names one task: the index of its slot in the task window and the slot's
/// generation when the task was submitted.
///
/// `TaskId` is `Copy` and 64 bits. When a slot is reclaimed its generation is bumped,
/// so an id held past that point is *stale*; a stale id means "completed long ago"
/// and a dependency on it is satisfied at once. [`TaskId::INVALID`] is a placeholder
/// ("no producer yet"): a dependency on it adds no edge.
///
/// ```
/// use taskweave_executor::TaskId;
/// let none = TaskId::INVALID;
/// assert!(!none.is_valid());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u64);

impl TaskId {
    /// The id that names no task; depending on it adds no edge.
    pub const INVALID: TaskId = TaskId(u64::MAX);

    pub(crate) const fn new(index: u32, generation: u32) -> TaskId {
        TaskId(((generation as u64) << 32) | index as u64)
    }

    /// The slot index in the task window.
    pub const fn index(self) -> u32 {
        self.0 as u32
    }

    /// The slot's generation when this task was submitted.
    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// `false` only for [`TaskId::INVALID`].
    pub const fn is_valid(self) -> bool {
        self.0 != u64::MAX
    }

    /// The raw 64 bits (stable within one runtime; useful as a map key or in traces).
    pub const fn to_bits(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_valid() {
            write!(f, "TaskId({}v{})", self.index(), self.generation())
        } else {
            f.write_str("TaskId(INVALID)")
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_valid() {
            write!(f, "#{}v{}", self.index(), self.generation())
        } else {
            f.write_str("#invalid")
        }
    }
}
