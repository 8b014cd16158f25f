//! The dependency list of one submission: `TaskId`s as given, `INVALID` dropped,
//! duplicates removed, without allocating for the common case of a few.

use crate::task::TaskId;

const INLINE: usize = 4;

/// A submission's explicit and input dependencies.
#[derive(Clone, Debug)]
pub(crate) struct DepList {
    inline: [TaskId; INLINE],
    len: usize,
    spilled: Vec<TaskId>,
}

impl DepList {
    /// Adds one dependency (`INVALID` adds nothing).
    pub(crate) fn push(&mut self, id: TaskId) {
        if !id.is_valid() {
            return;
        }
        if self.spilled.is_empty() && self.len < INLINE {
            if !self.inline[..self.len].contains(&id) {
                self.inline[self.len] = id;
                self.len += 1;
            }
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend_from_slice(&self.inline[..self.len]);
            }
            self.spilled.push(id);
        }
    }

    /// Adds each of `ids` ([`DepList::push`]).
    pub(crate) fn extend(&mut self, ids: &[TaskId]) {
        for &id in ids {
            self.push(id);
        }
    }

    /// The distinct dependencies.
    pub(crate) fn finish(&mut self) -> &[TaskId] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            self.spilled.sort_unstable();
            self.spilled.dedup();
            &self.spilled
        }
    }
}

impl Default for DepList {
    fn default() -> Self {
        DepList {
            inline: [TaskId::INVALID; INLINE],
            len: 0,
            spilled: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_skipped_and_duplicates_removed() {
        let a = TaskId::new(1, 0);
        let b = TaskId::new(2, 0);
        let mut deps = DepList::default();
        for id in [a, TaskId::INVALID, b, a, b] {
            deps.push(id);
        }
        assert_eq!(deps.finish(), &[a, b]);
        let mut many = DepList::default();
        for i in 0..10 {
            many.push(TaskId::new(i % 6, 0));
        }
        assert_eq!(many.finish().len(), 6);
    }
}
