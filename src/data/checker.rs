//! The run-time access checker of manual tensors (rule D5 in [`crate::data`]).
//!
//! Manual tensors are not in the dependency map: only explicit dependencies order
//! their accesses. To keep a forgotten dependency from becoming a data race, a task
//! registers its accesses to manual tensors here when its body starts and removes
//! them when the body ends; an access that conflicts with a registered one (they
//! overlap and one writes) fails the task with
//! [`DataError::Conflict`](crate::DataError::Conflict) before any view exists.
//! Registration and removal go through one mutex per tensor, which also orders
//! (happens-before) accesses that ran one after the other without an edge.

use std::sync::{Mutex, PoisonError};

use super::access::{AccessKind, OwnedAccesses};
use super::region::{Boxes, Region};
use super::tensor::TensorMeta;
use crate::error::DataError;

/// The accesses running on one manual tensor.
#[derive(Default)]
pub(crate) struct Checker {
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    next_token: u64,
    accesses: Vec<RunningAccess>,
}

struct RunningAccess {
    token: u64,
    boxes: Boxes,
    region: Region,
    kind: AccessKind,
}

impl Checker {
    /// Registers an access, or reports the running access it conflicts with.
    fn acquire(
        &self,
        meta: &TensorMeta,
        region: &Region,
        kind: AccessKind,
    ) -> Result<u64, DataError> {
        let boxes = region
            .resolve(&meta.shape)
            .expect("regions are checked at submission");
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let conflict = running.accesses.iter().find(|other| {
            (kind.writes() || other.kind.writes())
                && boxes
                    .iter()
                    .any(|a| other.boxes.iter().any(|b| a.overlaps(b)))
        });
        if let Some(other) = conflict {
            return Err(DataError::Conflict {
                tensor: meta.name.clone(),
                region: *region,
                kind,
                running: other.region,
                running_kind: other.kind,
            });
        }
        let token = running.next_token;
        running.next_token += 1;
        running.accesses.push(RunningAccess {
            token,
            boxes,
            region: *region,
            kind,
        });
        Ok(token)
    }

    fn release(&self, token: u64) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = running.accesses.iter().position(|a| a.token == token) {
            running.accesses.swap_remove(at);
        }
    }
}

/// The registrations of one running task; dropping it (when the body ends, returns
/// or unwinds) removes them.
pub(crate) struct CheckGuard<'a> {
    held: Vec<(&'a TensorMeta, u64)>,
}

impl<'a> CheckGuard<'a> {
    /// Registers every access of `accesses` to a manual tensor. All or nothing: on a
    /// conflict, what was registered is removed again. Free when no access is to a
    /// manual tensor.
    #[inline]
    pub(crate) fn acquire<O: OwnedAccesses>(accesses: &'a O) -> Result<Self, DataError> {
        let mut guard = CheckGuard { held: Vec::new() };
        if !accesses.any_manual() {
            return Ok(guard);
        }
        let mut failure = None;
        accesses.for_each_owned(&mut |meta, region, kind| {
            if !meta.manual || failure.is_some() {
                return;
            }
            match meta.checker.acquire(meta, region, kind) {
                Ok(token) => guard.held.push((meta, token)),
                Err(error) => failure = Some(error),
            }
        });
        match failure {
            None => Ok(guard),
            // Dropping the guard removes the registrations made so far.
            Some(error) => Err(error),
        }
    }
}

impl Drop for CheckGuard<'_> {
    fn drop(&mut self) {
        for (meta, token) in self.held.drain(..) {
            meta.checker.release(token);
        }
    }
}
