//! The DMA engine: one thread that performs transfers after a fixed latency and
//! reports each through its completion token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use taskweave_executor::CompletionToken;

use super::DeviceBuffer;

struct Transfer {
    due: Instant,
    sequence: u64,
    data: Arc<[f32]>,
    dst: DeviceBuffer,
    offset: usize,
    token: CompletionToken,
}

impl PartialEq for Transfer {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}
impl Eq for Transfer {}
impl PartialOrd for Transfer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Transfer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

struct State {
    pending: BinaryHeap<Reverse<Transfer>>,
    sequence: u64,
    stopping: bool,
}

/// The DMA engine's queue and thread.
pub(crate) struct DmaEngine {
    state: Arc<(Mutex<State>, Condvar)>,
    latency: Duration,
    thread: Option<JoinHandle<()>>,
}

impl DmaEngine {
    pub(crate) fn start(latency: Duration) -> Self {
        let state = Arc::new((
            Mutex::new(State {
                pending: BinaryHeap::new(),
                sequence: 0,
                stopping: false,
            }),
            Condvar::new(),
        ));
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("device-dma".to_owned())
            .spawn(move || run_dma(&shared))
            .expect("taskweave: failed to spawn the DMA thread");
        DmaEngine {
            state,
            latency,
            thread: Some(thread),
        }
    }

    pub(crate) fn copy_to_device(
        &self,
        data: Arc<[f32]>,
        dst: DeviceBuffer,
        offset: usize,
        token: CompletionToken,
    ) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.sequence += 1;
        let sequence = state.sequence;
        state.pending.push(Reverse(Transfer {
            due: Instant::now() + self.latency,
            sequence,
            data,
            dst,
            offset,
            token,
        }));
        drop(state);
        wake.notify_one();
    }
}

impl Drop for DmaEngine {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stopping = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_dma(state: &(Mutex<State>, Condvar)) {
    let (lock, wake) = state;
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        match guard.pending.peek() {
            Some(Reverse(next)) if next.due <= now => {
                let Reverse(transfer) = guard.pending.pop().expect("peeked");
                drop(guard);
                transfer.dst.write_slice(transfer.offset, &transfer.data);
                transfer.token.complete();
                guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            }
            // Queued transfers are finished before stopping: none is lost.
            Some(Reverse(next)) => {
                let wait = next.due - now;
                guard = wake
                    .wait_timeout(guard, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            None if guard.stopping => return,
            None => guard = wake.wait(guard).unwrap_or_else(|e| e.into_inner()),
        }
    }
}
