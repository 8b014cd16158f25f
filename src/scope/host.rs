//! Host access: the orchestrator reads or writes a tensor region.
//!
//! A host access is a task like any other (PTO2's `get/set_tensor_data`): a read is
//! ordered after the region's writers, a write after its writers and readers, and
//! later tasks are ordered after it. The orchestrator awaits it, so when `read`
//! returns, the data is what every earlier submitted writer left there; when `write`
//! returns, every later submitted task sees the new data. Typical use: read a
//! computed control value, then shape the rest of the graph with it.
//!
//! A manual tensor's accesses are ordered only by explicit dependencies, so a host
//! access to one is ordered by nothing: submit the task yourself with `.after(..)`
//! (`scope.task(m.read(..), |v| v.to_vec()).after(ids)`) and await its handle.

use super::Scope;
use crate::data::{Element, Region, Tensor, View};
use crate::error::DataError;

impl<'p> Scope<'p> {
    /// Reads `region` of `tensor` (row-major), after every task submitted before
    /// that writes it.
    ///
    /// # Errors
    /// A submission error for the region, or [`DataError::HostAccess`] if a writer
    /// it waited for failed.
    pub async fn read<T: Element>(
        &self,
        tensor: &Tensor<'_, T>,
        region: impl Into<Region>,
    ) -> Result<Vec<T>, DataError> {
        self.read_with(tensor, region, |view| view.to_vec()).await
    }

    /// Reads `region` of `tensor` through a view given to `f` (on a worker), after
    /// every task submitted before that writes it, and returns what `f` returns.
    ///
    /// # Errors
    /// As [`Scope::read`].
    pub async fn read_with<T, F, R>(
        &self,
        tensor: &Tensor<'_, T>,
        region: impl Into<Region>,
        f: F,
    ) -> Result<R, DataError>
    where
        T: Element,
        F: for<'v> FnOnce(View<'v, T>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.task(tensor.read(region), f)
            .run_as_host_access(format!("host read of '{}'", tensor.name()), tensor.meta())
            .await
    }

    /// Writes `data` (row-major) into `region` of `tensor`, after every task
    /// submitted before that reads or writes it; tasks submitted afterwards see it.
    ///
    /// # Errors
    /// A submission error for the region, [`DataError::LengthMismatch`] if `data`
    /// does not fill the region, or [`DataError::HostAccess`] if a task it waited
    /// for failed.
    pub async fn write<T: Element>(
        &self,
        tensor: &Tensor<'_, T>,
        region: impl Into<Region>,
        data: Vec<T>,
    ) -> Result<(), DataError> {
        let region = region.into();
        let meta = tensor.meta();
        if let Ok(boxes) = region.resolve(&meta.shape) {
            let expected: usize = boxes
                .iter()
                .map(|b| b.extent().iter().map(|&e| e as usize).product::<usize>())
                .sum();
            if expected != data.len() {
                return Err(DataError::LengthMismatch {
                    tensor: meta.name.clone(),
                    what: "the data written",
                    region,
                    shape: meta.shape.dims(),
                    expected,
                    got: data.len(),
                });
            }
        }
        self.task(tensor.write(region), move |mut view| {
            view.copy_from_slice(&data)
        })
        .run_as_host_access(format!("host write of '{}'", tensor.name()), meta)
        .await
    }

    /// [`Scope::read`] for non-async callers.
    pub fn read_blocking<T: Element>(
        &self,
        tensor: &Tensor<'_, T>,
        region: impl Into<Region>,
    ) -> Result<Vec<T>, DataError> {
        self.tree.rt.block_on(self.read(tensor, region))
    }

    /// [`Scope::write`] for non-async callers.
    pub fn write_blocking<T: Element>(
        &self,
        tensor: &Tensor<'_, T>,
        region: impl Into<Region>,
        data: Vec<T>,
    ) -> Result<(), DataError> {
        self.tree.rt.block_on(self.write(tensor, region, data))
    }
}
