//! A recorded run ([`Trace`]): its tasks, polls, lane spans and queue-depth samples,
//! read back from the recording buffers, and its Chrome trace-event JSON.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::clock::Calibration;
use super::record::{Buffer, Cursor, RawPoll, STAMPED};
use crate::task::TaskId;

/// One submitted task.
#[derive(Clone, Copy, Debug)]
pub struct TaskRecord<'a> {
    /// The task.
    pub id: TaskId,
    /// Its name.
    pub name: Option<&'a str>,
    /// When it was submitted (ns since the runtime's epoch).
    pub submit_ns: u64,
    /// What it depended on (explicit ids and inputs).
    pub deps: &'a [TaskId],
}

/// One poll of a task body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollRecord {
    /// The task.
    pub id: TaskId,
    /// The worker that polled it (`None`: another thread, e.g. at shutdown).
    pub worker: Option<usize>,
    /// When the task became ready (ns; 0 if unknown).
    pub ready_ns: u64,
    /// When the poll started (ns).
    pub start_ns: u64,
    /// When the poll ended (ns).
    pub end_ns: u64,
}

/// A span on a custom lane (e.g. a device core).
#[derive(Clone, Debug)]
pub struct LaneSpan {
    /// The lane's name.
    pub lane: Cow<'static, str>,
    /// What ran.
    pub name: Cow<'static, str>,
    /// Start (ns since the runtime's epoch).
    pub start_ns: u64,
    /// End (ns).
    pub end_ns: u64,
}

/// A recorded run: read it with [`Trace::tasks`] and [`Trace::polls`], export it
/// with [`Trace::to_chrome_json`].
///
/// Records are kept compactly as they were written (one buffer per worker and one
/// for other threads) and decoded as they are read, so a long run costs tens of
/// bytes per task.
///
/// ```
/// # use taskweave_executor::Runtime;
/// let rt = Runtime::builder().workers(2).build();
/// rt.start_trace();
/// let first = rt.task(|| ()).name("first").submit_blocking();
/// let second = rt.task(|| ()).after([first.id()]).submit_blocking();
/// second.wait_blocking().unwrap();
/// let trace = rt.stop_trace();
/// assert_eq!(trace.tasks().len(), 2);
/// assert_eq!(trace.polls().len(), 2);
/// let deps: Vec<_> = trace.tasks().flat_map(|t| t.deps.iter().copied()).collect();
/// assert_eq!(deps, [first.id()]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// One buffer per worker, then one for other threads.
    pub(super) threads: Vec<Buffer>,
    pub(super) calibration: Calibration,
    pub(super) lanes: Vec<LaneSpan>,
    pub(super) queue_depth: Vec<(u64, usize)>,
}

impl Trace {
    /// Number of workers (one lane each).
    pub fn workers(&self) -> usize {
        self.threads.len().saturating_sub(1)
    }

    /// Every task submitted while recording, grouped by the thread that submitted it
    /// (workers, then other threads) and in submission order within each.
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks {
            threads: &self.threads,
            calibration: self.calibration,
            thread: 0,
            entry: Cursor::default(),
            dep: Cursor::default(),
            name: 0,
            remaining: self.threads.iter().map(|b| b.tasks.len()).sum(),
        }
    }

    /// Every poll while recording, grouped by the thread that polled (workers, then
    /// other threads) and in order within each.
    pub fn polls(&self) -> Polls<'_> {
        let calibration = self.calibration;
        let workers = self.workers();
        let polls = self
            .threads
            .iter()
            .enumerate()
            .flat_map(move |(thread, buffer)| {
                let worker = (thread < workers).then_some(thread);
                buffer
                    .polls()
                    .map(move |raw| decode_poll(&calibration, worker, raw))
            });
        Polls {
            inner: Box::new(polls),
            remaining: self.threads.iter().map(|b| b.polls.len()).sum(),
        }
    }

    /// Spans on custom lanes.
    pub fn lanes(&self) -> &[LaneSpan] {
        &self.lanes
    }

    /// Ready-queue depth samples `(ns since the runtime's epoch, depth)`.
    pub fn queue_depth(&self) -> &[(u64, usize)] {
        &self.queue_depth
    }
}

fn decode_poll(calibration: &Calibration, worker: Option<usize>, raw: RawPoll) -> PollRecord {
    let ready_ns = match raw.ready {
        0 => 0,
        stamp if stamp & STAMPED != 0 => calibration.to_ns(stamp & !STAMPED),
        ns => ns,
    };
    PollRecord {
        id: raw.id,
        worker,
        ready_ns,
        start_ns: calibration.to_ns(raw.start),
        end_ns: calibration.to_ns(raw.end),
    }
}

/// The tasks of a [`Trace`] ([`Trace::tasks`]).
#[derive(Clone, Debug)]
pub struct Tasks<'a> {
    threads: &'a [Buffer],
    calibration: Calibration,
    thread: usize,
    entry: Cursor,
    dep: Cursor,
    name: usize,
    remaining: usize,
}

impl<'a> Iterator for Tasks<'a> {
    type Item = TaskRecord<'a>;

    fn next(&mut self) -> Option<TaskRecord<'a>> {
        loop {
            let buffer = self.threads.get(self.thread)?;
            let Some(entry) = buffer.tasks.next(&mut self.entry) else {
                self.thread += 1;
                (self.entry, self.dep, self.name) = (Cursor::default(), Cursor::default(), 0);
                continue;
            };
            let deps = buffer.deps.next_slice(&mut self.dep, entry.deps as usize);
            let name = entry.named.then(|| {
                self.name += 1;
                buffer.names[self.name - 1].as_ref()
            });
            self.remaining -= 1;
            return Some(TaskRecord {
                id: entry.id,
                name,
                submit_ns: self.calibration.to_ns(entry.submit),
                deps,
            });
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Tasks<'_> {}

/// The polls of a [`Trace`] ([`Trace::polls`]).
pub struct Polls<'a> {
    inner: Box<dyn Iterator<Item = PollRecord> + 'a>,
    remaining: usize,
}

impl std::fmt::Debug for Polls<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polls")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl Iterator for Polls<'_> {
    type Item = PollRecord;

    fn next(&mut self) -> Option<PollRecord> {
        let poll = self.inner.next()?;
        self.remaining -= 1;
        Some(poll)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Polls<'_> {}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

impl Trace {
    /// The trace as Chrome trace-event JSON (open it in Perfetto or
    /// chrome://tracing): one lane per worker (`tid` = worker index), one per
    /// custom lane (device cores), a slice per poll, a flow arrow per dependency
    /// (from the producer's last poll to the consumer's first), and a counter
    /// track of the ready-queue depth.
    pub fn to_chrome_json(&self) -> String {
        use std::collections::HashMap;
        let tasks: HashMap<TaskId, TaskRecord<'_>> = self.tasks().map(|t| (t.id, t)).collect();
        let polls: Vec<PollRecord> = self.polls().collect();
        let mut first_poll: HashMap<TaskId, &PollRecord> = HashMap::new();
        let mut last_poll: HashMap<TaskId, &PollRecord> = HashMap::new();
        for poll in &polls {
            first_poll
                .entry(poll.id)
                .and_modify(|p| {
                    if poll.start_ns < p.start_ns {
                        *p = poll
                    }
                })
                .or_insert(poll);
            last_poll
                .entry(poll.id)
                .and_modify(|p| {
                    if poll.end_ns > p.end_ns {
                        *p = poll
                    }
                })
                .or_insert(poll);
        }
        let workers = self.workers();
        let tid = |worker: Option<usize>| worker.unwrap_or(workers);
        let mut lanes: Vec<&str> = self.lanes.iter().map(|s| s.lane.as_ref()).collect();
        lanes.sort_unstable();
        lanes.dedup();
        let lane_tid = |lane: &str| workers + 1 + lanes.binary_search(&lane).unwrap_or(0);

        let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
        let event = |out: &mut String, body: String| {
            out.push_str(&body);
            out.push_str(",\n");
        };
        for w in 0..=workers {
            let label = if w < workers {
                format!("worker {w}")
            } else {
                "other threads".to_owned()
            };
            let mut name = String::new();
            json_string(&mut name, &label);
            event(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":{w},\"args\":{{\"name\":{name}}}}}"
                ),
            );
        }
        for lane in &lanes {
            let mut name = String::new();
            json_string(&mut name, lane);
            event(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":{name}}}}}",
                    lane_tid(lane)
                ),
            );
        }
        for poll in &polls {
            let mut name = String::new();
            let label = tasks
                .get(&poll.id)
                .and_then(|t| t.name)
                .map_or_else(|| format!("task {}", poll.id), str::to_owned);
            json_string(&mut name, &label);
            let submit = tasks.get(&poll.id).map_or(0, |t| t.submit_ns);
            event(
                &mut out,
                format!(
                    "{{\"ph\":\"X\",\"cat\":\"task\",\"name\":{name},\"pid\":1,\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{\"id\":\"{}\",\"submit_us\":{},\"ready_us\":{}}}}}",
                    tid(poll.worker),
                    micros(poll.start_ns),
                    micros(poll.end_ns.saturating_sub(poll.start_ns)),
                    poll.id,
                    micros(submit),
                    micros(poll.ready_ns)
                ),
            );
        }
        let mut flow = 0u64;
        for task in self.tasks() {
            let Some(consumer) = first_poll.get(&task.id) else {
                continue;
            };
            for dep in task.deps {
                let Some(producer) = last_poll.get(dep) else {
                    continue;
                };
                flow += 1;
                event(
                    &mut out,
                    format!(
                        "{{\"ph\":\"s\",\"cat\":\"dep\",\"name\":\"dep\",\"id\":{flow},\"pid\":1,\"tid\":{},\"ts\":{}}}",
                        tid(producer.worker),
                        micros(producer.end_ns)
                    ),
                );
                event(
                    &mut out,
                    format!(
                        "{{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"dep\",\"name\":\"dep\",\"id\":{flow},\"pid\":1,\"tid\":{},\"ts\":{}}}",
                        tid(consumer.worker),
                        micros(consumer.start_ns)
                    ),
                );
            }
        }
        for span in &self.lanes {
            let mut name = String::new();
            json_string(&mut name, &span.name);
            event(
                &mut out,
                format!(
                    "{{\"ph\":\"X\",\"cat\":\"lane\",\"name\":{name},\"pid\":1,\"tid\":{},\"ts\":{},\"dur\":{}}}",
                    lane_tid(&span.lane),
                    micros(span.start_ns),
                    micros(span.end_ns.saturating_sub(span.start_ns))
                ),
            );
        }
        for (at, depth) in &self.queue_depth {
            event(
                &mut out,
                format!(
                    "{{\"ph\":\"C\",\"name\":\"ready queue\",\"pid\":1,\"ts\":{},\"args\":{{\"depth\":{depth}}}}}",
                    micros(*at)
                ),
            );
        }
        // Close the array with a harmless metadata event (no trailing comma).
        out.push_str("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":\"taskweave\"}}\n]}\n");
        out
    }
}
