//! Simulated device memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A buffer of `f32` in (simulated) device memory, shared by the kernels and DMA
/// transfers that use it. Cheap to clone (the clone is the same memory).
///
/// Values are stored as atomics, so blocks on different cores can touch the buffer at
/// once without `unsafe`; ordering between kernels and transfers comes from the
/// dependency graph (a kernel that reads what a DMA wrote depends on the DMA task).
#[derive(Clone)]
pub struct DeviceBuffer {
    values: Arc<[AtomicU32]>,
}

impl DeviceBuffer {
    /// A buffer of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        DeviceBuffer {
            values: (0..len).map(|_| AtomicU32::new(0f32.to_bits())).collect(),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Reads value `i`.
    pub fn get(&self, i: usize) -> f32 {
        f32::from_bits(self.values[i].load(Ordering::Relaxed))
    }

    /// Writes value `i`.
    pub fn set(&self, i: usize, value: f32) {
        self.values[i].store(value.to_bits(), Ordering::Relaxed);
    }

    /// Copies `data` in at `offset`.
    pub fn write_slice(&self, offset: usize, data: &[f32]) {
        for (i, value) in data.iter().enumerate() {
            self.set(offset + i, *value);
        }
    }

    /// A copy of the whole buffer.
    pub fn to_vec(&self) -> Vec<f32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

impl fmt::Debug for DeviceBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("len", &self.len())
            .finish()
    }
}
