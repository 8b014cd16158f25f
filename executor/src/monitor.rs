//! The monitor thread: per-task deadlines for deferred completions, and the
//! watchdog that reports what is stuck when nothing has made progress for a while
//! (DESIGN.md §6).
//!
//! Progress is counted per worker (tasks polled, completions drained) in the padded
//! counters of `crate::stats`, which only their worker writes, so watching costs the
//! hot path one relaxed store per task and no shared cache line.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::error::TaskError;
use crate::shared::Shared;
use crate::sync::{Arc, Condvar, Mutex, Ordering};
use crate::task::TaskId;

/// What the watchdog found stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stall {
    /// A task's body returned but it still waits for deferred completions. The
    /// watchdog fails it with [`TaskError::Stalled`], so its handle reports this too.
    DeferredToken {
        /// The task.
        task: TaskId,
        /// Its name.
        name: Option<String>,
        /// The outstanding tokens' descriptions, each once, followed by ` (xN)` when
        /// `N > 1` tokens with that description are out.
        tokens: Vec<String>,
    },
    /// A worker has been inside one task body for the whole stall: the body blocks
    /// the worker (it should await, or hand blocking work to another thread).
    BlockedWorker {
        /// The worker's index.
        worker: usize,
        /// The task whose body it is running.
        task: TaskId,
        /// Its name.
        name: Option<String>,
    },
    /// Ready tasks are queued but no worker ran any of them.
    ReadyNotRunning {
        /// How many are queued.
        queued: usize,
    },
    /// Submitters wait for a free slot and none was freed.
    WindowFull {
        /// The window size.
        window: usize,
    },
    /// The orchestrator waits in a host access (see [`Runtime::host_wait`](crate::Runtime::host_wait)):
    /// its task waits for producers that have not finished, so the orchestrator,
    /// and whatever it would submit next, waits for them too. The producers' own
    /// stalls (a deferred token, a blocked worker) are reported beside this one.
    HostAccess {
        /// The host access's task.
        task: TaskId,
        /// What the host access is, e.g. `host read of 'grid'`.
        what: String,
        /// The producers it still waits for, with their names.
        waits_for: Vec<(TaskId, Option<String>)>,
    },
}

/// The watchdog's report: everything it found stuck after `stalled_for` without
/// progress — or, while the rest of the runtime progresses, one worker that has been
/// inside one task body for `stalled_for`.
#[derive(Clone, Debug)]
pub struct StallReport {
    /// How long nothing had made progress.
    pub stalled_for: Duration,
    /// What is stuck, by class.
    pub stalls: Vec<Stall>,
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "taskweave watchdog: no progress for {:?}",
            self.stalled_for
        )?;
        for stall in &self.stalls {
            match stall {
                Stall::DeferredToken { task, name, tokens } => writeln!(
                    f,
                    "  task {task} {} waits for deferred completion(s): {}",
                    show(name),
                    tokens.join(", ")
                )?,
                Stall::BlockedWorker { worker, task, name } => writeln!(
                    f,
                    "  worker {worker} is blocked inside the body of task {task} {}",
                    show(name)
                )?,
                Stall::ReadyNotRunning { queued } => {
                    writeln!(f, "  {queued} ready task(s) queued but no worker runs them")?
                }
                Stall::WindowFull { window } => {
                    writeln!(f, "  submitters wait for a slot: all {window} are held")?
                }
                Stall::HostAccess {
                    task,
                    what,
                    waits_for,
                } => {
                    let producers: Vec<String> = waits_for
                        .iter()
                        .map(|(id, name)| format!("{id} {}", show(name)))
                        .collect();
                    writeln!(
                        f,
                        "  the orchestrator waits in {what} (task {task}), which waits for: {}",
                        if producers.is_empty() {
                            "nothing unfinished".to_owned()
                        } else {
                            producers.join(", ")
                        }
                    )?
                }
            }
        }
        Ok(())
    }
}

fn show(name: &Option<String>) -> String {
    name.as_ref()
        .map_or_else(|| "<unnamed>".to_owned(), |n| format!("'{n}'"))
}

/// How often a recorded trace samples the ready-queue depth.
const QUEUE_SAMPLE: Duration = Duration::from_millis(1);

/// The callback that receives stall reports.
pub(crate) type StallHandler = Arc<dyn Fn(&StallReport) + Send + Sync>;

struct MonitorState {
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    stopping: bool,
}

/// A host access an orchestrator waits in (registered by [`Runtime::host_wait`](crate::Runtime::host_wait)).
#[derive(Clone)]
pub(crate) struct HostWaitRecord {
    pub(crate) task: TaskId,
    pub(crate) what: String,
    pub(crate) waits_for: Vec<TaskId>,
}

/// The monitor's shared state and configuration.
pub(crate) struct Monitor {
    state: Mutex<MonitorState>,
    /// Host accesses orchestrators wait in (off the hot path: one per host access).
    pub(crate) host_waits: Mutex<slab::Slab<HostWaitRecord>>,
    wake: Condvar,
    stall_after: Option<Duration>,
    on_stall: Option<StallHandler>,
}

impl Monitor {
    pub(crate) fn new(stall_after: Option<Duration>, on_stall: Option<StallHandler>) -> Self {
        Monitor {
            state: Mutex::new(MonitorState {
                deadlines: BinaryHeap::new(),
                stopping: false,
            }),
            host_waits: Mutex::new(slab::Slab::new()),
            wake: Condvar::new(),
            stall_after,
            on_stall,
        }
    }

    /// Arms a deadline: if task `id` still waits for tokens at `at`, it fails.
    pub(crate) fn add_deadline(&self, at: Instant, id: TaskId) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.deadlines.push(Reverse((at, id.to_bits())));
        drop(state);
        self.wake.notify_one();
    }

    /// Wakes the monitor to re-read its configuration (e.g. tracing started).
    #[cfg_attr(not(feature = "trace"), allow(dead_code))]
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn stop(&self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stopping = true;
        self.wake.notify_one();
    }
}

/// The monitor thread's loop.
pub(crate) fn run_monitor(shared: Arc<Shared>) {
    let monitor = &shared.monitor;
    let watch_tick = monitor
        .stall_after
        .map(|d| (d / 4).max(Duration::from_millis(1)));
    let mut last_progress = total_progress(&shared);
    let mut last_change = Instant::now();
    let mut reported = false;
    // Per worker: the task it was polling and its poll count when first seen there.
    let mut workers: Vec<WorkerWatch> = (0..shared.worker_states.len())
        .map(|_| WorkerWatch::default())
        .collect();
    let mut state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stopping {
            return;
        }
        let now = Instant::now();
        // While a trace is recorded, sample the ready-queue depth every millisecond.
        let tick = match (watch_tick, shared.tracer.enabled()) {
            (tick, false) => tick,
            (Some(tick), true) => Some(tick.min(QUEUE_SAMPLE)),
            (None, true) => Some(QUEUE_SAMPLE),
        };
        let next_deadline = state.deadlines.peek().map(|Reverse((at, _))| *at);
        let wait = match (next_deadline, tick) {
            (Some(at), Some(tick)) => Some(at.saturating_duration_since(now).min(tick)),
            (Some(at), None) => Some(at.saturating_duration_since(now)),
            (None, tick) => tick,
        };
        state = match wait {
            Some(wait) => {
                monitor
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => monitor.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
        };
        if state.stopping {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, bits))) = state.deadlines.peek().copied() {
            if at > now {
                break;
            }
            state.deadlines.pop();
            due.push(bits);
        }
        drop(state);
        if shared.tracer.enabled() {
            let depth =
                shared.injector.len() + shared.stealers.iter().map(|s| s.len()).sum::<usize>();
            shared
                .tracer
                .queue_depth(crate::stats::nanos_since(shared.epoch), depth);
        }
        for bits in due {
            expire_deadline(&shared, bits);
        }
        if let Some(stall_after) = monitor.stall_after {
            let progress = total_progress(&shared);
            if progress != last_progress {
                last_progress = progress;
                last_change = now;
                reported = false;
                // The runtime moves, but one worker may still be stuck in one body.
                report_blocked_workers(&shared, &mut workers, now, stall_after);
            } else if !reported
                && now.duration_since(last_change) >= stall_after
                && let Some(report) = stall_report(&shared, now.duration_since(last_change))
            {
                reported = true;
                match &monitor.on_stall {
                    Some(handler) => handler(&report),
                    None => eprint!("{report}"),
                }
                fail_stuck_tokens(&shared, &report);
            }
        }
        state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// What the watchdog remembers of one worker between ticks.
#[derive(Default)]
struct WorkerWatch {
    running: u64,
    polls: u64,
    since: Option<Instant>,
    reported: bool,
}

/// Reports each worker that has been inside the same poll of the same task for
/// `stall_after` while the rest of the runtime progressed (a body blocking its worker).
fn report_blocked_workers(
    shared: &Shared,
    workers: &mut [WorkerWatch],
    now: Instant,
    stall_after: Duration,
) {
    for (worker, (state, watch)) in shared
        .worker_states
        .iter()
        .zip(workers.iter_mut())
        .enumerate()
    {
        let running = state.running.load(Ordering::Relaxed);
        let polls = state.polls.get();
        if running == u64::MAX || running != watch.running || polls != watch.polls {
            *watch = WorkerWatch {
                running,
                polls,
                since: Some(now),
                reported: false,
            };
            continue;
        }
        let blocked_for = now.duration_since(watch.since.unwrap_or(now));
        if !watch.reported && blocked_for >= stall_after {
            watch.reported = true;
            let task = task_id_from_bits(running);
            let report = StallReport {
                stalled_for: blocked_for,
                stalls: vec![Stall::BlockedWorker {
                    worker,
                    task,
                    name: shared.name_of(task).map(Cow::into_owned),
                }],
            };
            match &shared.monitor.on_stall {
                Some(handler) => handler(&report),
                None => eprint!("{report}"),
            }
        }
    }
}

fn total_progress(shared: &Shared) -> u64 {
    shared
        .worker_states
        .iter()
        .map(|w| w.progress.get())
        .fold(0, u64::wrapping_add)
}

/// Tasks whose body returned and that wait for tokens, in id order, with the
/// descriptions of the tokens still out.
fn tokens_by_task(shared: &Shared) -> BTreeMap<TaskId, Vec<String>> {
    shared.tasks_waiting_for_tokens().into_iter().collect()
}

fn expire_deadline(shared: &Shared, bits: u64) {
    let id = task_id_from_bits(bits);
    let waiting_for = shared
        .outstanding_tokens_of(id)
        .map(|t| t.join(", "))
        .unwrap_or_default();
    let waited = shared.deadline_of(id).unwrap_or_default();
    shared.cut(
        id,
        || TaskError::Stalled {
            task: id,
            name: shared.name_of(id),
            waiting_for,
            waited,
        },
        &mut |index| shared.schedule(index),
    );
}

fn task_id_from_bits(bits: u64) -> TaskId {
    TaskId::new(bits as u32, (bits >> 32) as u32)
}

/// Builds the report of what is stuck; `None` when nothing is (an idle runtime is
/// not stalled).
fn stall_report(shared: &Shared, stalled_for: Duration) -> Option<StallReport> {
    let mut stalls = Vec::new();
    for (task, tokens) in tokens_by_task(shared) {
        let name = shared.name_of(task).map(Cow::into_owned);
        stalls.push(Stall::DeferredToken { task, name, tokens });
    }
    for (worker, state) in shared.worker_states.iter().enumerate() {
        let running = state.running.load(Ordering::Relaxed);
        if running != u64::MAX {
            let task = task_id_from_bits(running);
            stalls.push(Stall::BlockedWorker {
                worker,
                task,
                name: shared.name_of(task).map(Cow::into_owned),
            });
        }
    }
    let queued = shared.injector.len() + shared.stealers.iter().map(|s| s.len()).sum::<usize>();
    if queued > 0 {
        stalls.push(Stall::ReadyNotRunning { queued });
    }
    if shared.window.has_waiters() {
        stalls.push(Stall::WindowFull {
            window: shared.window.len(),
        });
    }
    let host_waits: Vec<HostWaitRecord> = {
        let waits = shared
            .monitor
            .host_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        waits.iter().map(|(_, record)| record.clone()).collect()
    };
    for record in host_waits.into_iter().filter(|r| shared.is_open(r.task)) {
        let waits_for = record
            .waits_for
            .iter()
            .filter(|&&id| shared.is_open(id))
            .map(|&id| (id, shared.name_of(id).map(Cow::into_owned)))
            .collect();
        stalls.push(Stall::HostAccess {
            task: record.task,
            what: record.what,
            waits_for,
        });
    }
    (!stalls.is_empty()).then_some(StallReport {
        stalled_for,
        stalls,
    })
}

/// After the report went out: fails the tasks stuck on deferred completions, so
/// their handles say what they waited for.
fn fail_stuck_tokens(shared: &Shared, report: &StallReport) {
    for stall in &report.stalls {
        if let Stall::DeferredToken { task, tokens, .. } = stall {
            let task = *task;
            let waiting_for = tokens.join(", ");
            shared.cut(
                task,
                || TaskError::Stalled {
                    task,
                    name: shared.name_of(task),
                    waiting_for,
                    waited: report.stalled_for,
                },
                &mut |index| shared.schedule(index),
            );
        }
    }
}
