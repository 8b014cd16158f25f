//! Per-runtime storage for layers built on the executor (`Runtime::extension`): one
//! value per type, created on first use and shared by every handle of the runtime.

use std::any::{Any, TypeId};

use crate::sync::{Arc, Mutex};

/// The values stored with one runtime, by type. A handful at most (one per layer),
/// so a vector searched linearly.
pub(crate) struct Extensions {
    values: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
}

impl Extensions {
    pub(crate) fn new() -> Self {
        Extensions {
            values: Mutex::new(Vec::new()),
        }
    }

    /// The stored `T`, storing `init()` first if there is none. `init` runs without
    /// the lock held (it may itself use extensions); if two callers race, the first
    /// to store wins and the other's value is dropped.
    pub(crate) fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        if let Some(value) = self.get::<T>() {
            return value;
        }
        let fresh: Arc<T> = Arc::new(init());
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = find::<T>(&values) {
            drop(values);
            // Lost the race: ours is dropped outside the lock (it may run user code).
            drop(fresh);
            return value;
        }
        values.push((TypeId::of::<T>(), fresh.clone()));
        fresh
    }

    fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        find(&self.values.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Drops every stored value (outside the lock). Called when the last `Runtime`
    /// handle is gone, once the workers have stopped.
    pub(crate) fn clear(&self) {
        let values = std::mem::take(&mut *self.values.lock().unwrap_or_else(|e| e.into_inner()));
        drop(values);
    }
}

fn find<T: Any + Send + Sync>(values: &[(TypeId, Arc<dyn Any + Send + Sync>)]) -> Option<Arc<T>> {
    let (_, value) = values.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
    Some(
        Arc::clone(value)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("stored under its own TypeId")),
    )
}
