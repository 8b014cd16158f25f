//! A simulated accelerator: cores of two kinds running SPMD kernels, a DMA engine
//! with latency, and asynchronously detected device errors — all completing through
//! the executor's deferred completions, so device work sits in the same dependency
//! graph as CPU tasks (DESIGN.md §6).
//!
//! A kernel launch is a task. Its body dispatches `block_num` blocks to the free cores
//! of the kernel's [`CoreKind`] and defers its completion with a token; the last
//! block to finish completes the token. A block may raise the device's overflow flag
//! ([`Block::raise_overflow`]); that error is detected after the blocks finished —
//! asynchronously, as on hardware — and fails the task with a [`DeviceError`] that
//! names the task and the kernel (the flag and its companion fields travel in one
//! record, so the name cannot be lost).
//!
//! ```
//! use taskweave::Runtime;
//! use taskweave::device::{CoreKind, Device, DeviceBuffer};
//! let rt = Runtime::builder().workers(2).build();
//! let device = Device::builder().cube_cores(2).vector_cores(2).build(&rt);
//! let out = DeviceBuffer::zeros(8);
//! let dst = out.clone();
//! let kernel = device
//!     .launch("square", CoreKind::Vector, 8, move |block| {
//!         let i = block.index();
//!         dst.set(i, (i * i) as f32);
//!     })
//!     .submit_blocking();
//! kernel.wait_blocking().unwrap();
//! assert_eq!(out.to_vec()[3], 9.0);
//! ```

mod buffer;
mod cores;
mod dma;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use buffer::DeviceBuffer;
pub use cores::Block;
use cores::{Cores, Launch};
use dma::DmaEngine;
use taskweave_executor::{BoxError, Runtime, Submit, TaskId, defer};

/// The two kinds of compute core (as on Ascend AICore: cube for matrix work,
/// vector for element-wise work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoreKind {
    /// Matrix cores.
    Cube,
    /// Vector cores.
    Vector,
}

impl fmt::Display for CoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoreKind::Cube => "cube",
            CoreKind::Vector => "vector",
        })
    }
}

/// An error the device detected while running a kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("device error in kernel '{kernel}' (task {task}, block {block}): {detail}")]
pub struct DeviceError {
    /// The kernel's name.
    pub kernel: Cow<'static, str>,
    /// The task that launched it.
    pub task: TaskId,
    /// The block that raised the flag.
    pub block: usize,
    /// What the kernel reported.
    pub detail: String,
}

/// Configures a [`Device`].
#[derive(Clone, Debug)]
pub struct DeviceBuilder {
    cube: usize,
    vector: usize,
    dma_latency: Duration,
}

impl Default for DeviceBuilder {
    fn default() -> Self {
        DeviceBuilder {
            cube: 2,
            vector: 2,
            dma_latency: Duration::from_micros(20),
        }
    }
}

impl DeviceBuilder {
    /// Number of cube cores (threads), at least 1. Default 2.
    pub fn cube_cores(mut self, n: usize) -> Self {
        self.cube = n;
        self
    }

    /// Number of vector cores (threads), at least 1. Default 2.
    pub fn vector_cores(mut self, n: usize) -> Self {
        self.vector = n;
        self
    }

    /// How long each DMA transfer takes before it completes. Default 20 µs.
    pub fn dma_latency(mut self, latency: Duration) -> Self {
        self.dma_latency = latency;
        self
    }

    /// Starts the core and DMA threads; device tasks go to `runtime`.
    ///
    /// # Panics
    /// If a core count is 0.
    pub fn build(self, runtime: &Runtime) -> Device {
        assert!(
            self.cube >= 1 && self.vector >= 1,
            "taskweave: a device needs at least one core of each kind"
        );
        Device {
            inner: Arc::new(Inner {
                runtime: runtime.clone(),
                cores: Cores::start(self.cube, self.vector, runtime),
                dma: DmaEngine::start(self.dma_latency),
            }),
        }
    }
}

struct Inner {
    runtime: Runtime,
    cores: Cores,
    dma: DmaEngine,
}

/// A simulated device attached to a runtime. Cheap to clone; the core and DMA
/// threads stop when the last clone is dropped (after finishing queued work).
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("cube_cores", &self.inner.cores.count(CoreKind::Cube))
            .field("vector_cores", &self.inner.cores.count(CoreKind::Vector))
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Configures a device.
    pub fn builder() -> DeviceBuilder {
        DeviceBuilder::default()
    }

    /// Number of cores of `kind`.
    pub fn cores(&self, kind: CoreKind) -> usize {
        self.inner.cores.count(kind)
    }

    /// A kernel launch as a task: `block_num` blocks of `kernel` run on the free cores
    /// of `kind` (SPMD: each block sees its [`Block::index`]); the task completes when
    /// every block has finished, and fails with a [`DeviceError`] if a block raised
    /// the overflow flag. Name it, add dependencies (`.after`, as for any task), then
    /// submit it.
    ///
    /// # Panics
    /// The task fails (it does not panic) if `block_num` is 0.
    pub fn launch<N, K>(
        &self,
        name: N,
        kind: CoreKind,
        block_num: usize,
        kernel: K,
    ) -> Submit<'_, (), impl Future<Output = Result<(), BoxError>> + Send + 'static + use<N, K>>
    where
        N: Into<Cow<'static, str>> + 'static,
        K: Fn(&Block) + Send + Sync + 'static,
    {
        let name: Cow<'static, str> = name.into();
        let inner = Arc::clone(&self.inner);
        let kernel_name = name.clone();
        self.inner
            .runtime
            .try_task(move || {
                if block_num == 0 {
                    return Err(
                        format!("kernel '{kernel_name}' launched with block_num = 0").into(),
                    );
                }
                let token = defer(format!(
                    "kernel '{kernel_name}': {block_num} blocks on {kind} cores"
                ));
                let task = token.task();
                inner.cores.dispatch(Launch::new(
                    kernel_name,
                    task,
                    kind,
                    block_num,
                    Arc::new(kernel),
                    token,
                ));
                Ok::<(), BoxError>(())
            })
            .name(name)
    }

    /// Copies `data` into `dst` starting at `offset`, through the DMA engine. Call it
    /// inside a task body: the task completes only when the copy has (after the DMA
    /// latency), like any deferred completion.
    ///
    /// # Panics
    /// Outside a task body, or if the copy does not fit.
    pub fn dma_to_device(&self, data: Arc<[f32]>, dst: &DeviceBuffer, offset: usize) {
        assert!(
            offset + data.len() <= dst.len(),
            "taskweave: DMA of {} values at {offset} overruns a device buffer of {}",
            data.len(),
            dst.len()
        );
        let token = defer(format!(
            "dma: {} values to device offset {offset}",
            data.len()
        ));
        self.inner
            .dma
            .copy_to_device(data, dst.clone(), offset, token);
    }

    /// A task that copies `data` into `dst` at `offset` through the DMA engine.
    pub fn dma_task<N>(
        &self,
        name: N,
        data: Arc<[f32]>,
        dst: &DeviceBuffer,
        offset: usize,
    ) -> Submit<'_, (), impl Future<Output = Result<(), BoxError>> + Send + 'static + use<N>>
    where
        N: Into<Cow<'static, str>> + 'static,
    {
        let device = self.clone();
        let dst = dst.clone();
        self.inner
            .runtime
            .task(move || device.dma_to_device(data, &dst, offset))
            .name(name)
    }
}
