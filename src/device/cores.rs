//! The device's compute cores: one thread per core, pulling blocks of launched
//! kernels from a queue per core kind, so a launch spreads over whichever cores of
//! its kind are free. With the `trace` feature, each block is recorded on its core's
//! lane of a trace being recorded (`device cube core 0`, ...).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use taskweave_executor::{CompletionToken, Runtime, TaskId};

use self::lane::CoreLane;
use super::{CoreKind, DeviceError};

/// What a kernel block sees of itself.
pub struct Block {
    index: usize,
    count: usize,
    core: usize,
    launch: Arc<Launch>,
}

impl Block {
    /// This block's index, `0..block_num`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The launch's `block_num`.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The core (of the kernel's kind) running this block.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Sets the device's overflow flag for this launch, as a kernel that saturated a
    /// value would. The kernel keeps running; the launch fails once all blocks are
    /// done, with a [`DeviceError`] naming the task, the kernel, this block and `detail`.
    pub fn raise_overflow(&self, detail: impl Into<String>) {
        let mut fault = self.launch.fault.lock().unwrap_or_else(|e| e.into_inner());
        // The flag and its companion fields are set together, in one record.
        fault.get_or_insert_with(|| DeviceError {
            kernel: self.launch.kernel.clone(),
            task: self.launch.task,
            block: self.index,
            detail: detail.into(),
        });
    }
}

type Kernel = Arc<dyn Fn(&Block) + Send + Sync>;

/// One kernel launch in flight.
pub(crate) struct Launch {
    kernel: Cow<'static, str>,
    task: TaskId,
    kind: CoreKind,
    block_num: usize,
    body: Kernel,
    remaining: AtomicUsize,
    fault: Mutex<Option<DeviceError>>,
    token: Mutex<Option<CompletionToken>>,
}

impl Launch {
    pub(crate) fn new(
        kernel: Cow<'static, str>,
        task: TaskId,
        kind: CoreKind,
        block_num: usize,
        body: Kernel,
        token: CompletionToken,
    ) -> Self {
        Launch {
            kernel,
            task,
            kind,
            block_num,
            body,
            remaining: AtomicUsize::new(block_num),
            fault: Mutex::new(None),
            token: Mutex::new(Some(token)),
        }
    }

    /// Called after each block; the last one reports the launch's outcome.
    fn block_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let token = self.token.lock().unwrap_or_else(|e| e.into_inner()).take();
        let fault = self.fault.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(token) = token {
            match fault {
                Some(error) => token.fail(error),
                None => token.complete(),
            }
        }
    }
}

/// Queued blocks (launch, block index) and whether the cores should stop.
type Blocks = (VecDeque<(Arc<Launch>, usize)>, bool);

struct Queue {
    blocks: Mutex<Blocks>,
    ready: Condvar,
}

/// The cores of both kinds.
pub(crate) struct Cores {
    cube: Arc<Queue>,
    vector: Arc<Queue>,
    counts: [usize; 2],
    threads: Vec<JoinHandle<()>>,
    /// The core threads' lanes hold runtime handles; this one is dropped only after
    /// `drop` has joined them, so a core thread never drops the last handle (which
    /// joins the workers — possibly the very thread that is joining the cores).
    #[cfg(feature = "trace")]
    _runtime: Runtime,
}

impl Cores {
    pub(crate) fn start(cube: usize, vector: usize, runtime: &Runtime) -> Self {
        let queue = || {
            Arc::new(Queue {
                blocks: Mutex::new((VecDeque::new(), false)),
                ready: Condvar::new(),
            })
        };
        let (cube_queue, vector_queue) = (queue(), queue());
        let mut threads = Vec::new();
        for (kind, count, queue) in [
            (CoreKind::Cube, cube, &cube_queue),
            (CoreKind::Vector, vector, &vector_queue),
        ] {
            for core in 0..count {
                let queue = Arc::clone(queue);
                let lane = CoreLane::new(runtime, kind, core);
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("device-{kind}-{core}"))
                        .spawn(move || run_core(&queue, core, &lane))
                        .expect("taskweave: failed to spawn a device core thread"),
                );
            }
        }
        Cores {
            cube: cube_queue,
            vector: vector_queue,
            counts: [cube, vector],
            threads,
            #[cfg(feature = "trace")]
            _runtime: runtime.clone(),
        }
    }

    pub(crate) fn count(&self, kind: CoreKind) -> usize {
        self.counts[kind as usize]
    }

    fn queue(&self, kind: CoreKind) -> &Queue {
        match kind {
            CoreKind::Cube => &self.cube,
            CoreKind::Vector => &self.vector,
        }
    }

    /// Queues every block of `launch` for the cores of its kind.
    pub(crate) fn dispatch(&self, launch: Launch) {
        let launch = Arc::new(launch);
        let queue = self.queue(launch.kind);
        let mut blocks = queue.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks
            .0
            .extend((0..launch.block_num).map(|i| (Arc::clone(&launch), i)));
        drop(blocks);
        queue.ready.notify_all();
    }
}

impl Drop for Cores {
    fn drop(&mut self) {
        for queue in [&self.cube, &self.vector] {
            queue.blocks.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
            queue.ready.notify_all();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn run_core(queue: &Queue, core: usize, lane: &CoreLane) {
    loop {
        let (launch, index) = {
            let mut blocks = queue.blocks.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(next) = blocks.0.pop_front() {
                    break next;
                }
                if blocks.1 {
                    return;
                }
                blocks = queue.ready.wait(blocks).unwrap_or_else(|e| e.into_inner());
            }
        };
        let block = Block {
            index,
            count: launch.block_num,
            core,
            launch: Arc::clone(&launch),
        };
        let body = Arc::clone(&launch.body);
        let mut panicked = false;
        lane.run(&launch, || {
            panicked =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&block))).is_err();
        });
        if panicked {
            block.raise_overflow("the kernel panicked");
        }
        launch.block_done();
    }
}

#[cfg(feature = "trace")]
mod lane {
    use std::borrow::Cow;
    use std::time::Instant;

    use taskweave_executor::Runtime;

    use super::Launch;
    use crate::device::CoreKind;

    /// A core's lane in a recorded trace: each block is a span named after its kernel.
    pub(super) struct CoreLane {
        runtime: Runtime,
        name: Cow<'static, str>,
    }

    impl CoreLane {
        pub(super) fn new(runtime: &Runtime, kind: CoreKind, core: usize) -> Self {
            CoreLane {
                runtime: runtime.clone(),
                name: format!("device {kind} core {core}").into(),
            }
        }

        /// Runs one block of `launch` and records it (kept only while a trace is
        /// being recorded).
        #[inline]
        pub(super) fn run(&self, launch: &Launch, block: impl FnOnce()) {
            let start = Instant::now();
            block();
            self.runtime.trace_span(
                self.name.clone(),
                launch.kernel.clone(),
                start,
                Instant::now(),
            );
        }
    }
}

#[cfg(not(feature = "trace"))]
mod lane {
    use taskweave_executor::Runtime;

    use super::Launch;
    use crate::device::CoreKind;

    /// Tracing compiled out: a zero-sized lane that just runs the block.
    pub(super) struct CoreLane;

    impl CoreLane {
        #[inline(always)]
        pub(super) fn new(_runtime: &Runtime, _kind: CoreKind, _core: usize) -> Self {
            CoreLane
        }

        #[inline(always)]
        pub(super) fn run(&self, _launch: &Launch, block: impl FnOnce()) {
            block();
        }
    }
}
