//! Recording a run for a Chrome / Perfetto trace (feature `trace`).
//!
//! With the feature off, [`Tracer`] is a zero-sized type whose methods do nothing and
//! whose `enabled()` is a constant `false`, so the hooks in the hot paths compile
//! away. With it on, recording is switched on and off at run time
//! ([`Runtime::start_trace`](crate::Runtime::start_trace)); while it is off each hook
//! costs one relaxed load.
//!
//! What is recorded: per task its name, submission time and dependencies (by the
//! submitter); per poll its worker, start and end (by the worker, into its own
//! buffer); the time the task became ready; the ready-queue depth (sampled by the
//! monitor thread); and spans on custom lanes such as device cores.

#[cfg(feature = "trace")]
pub use enabled::*;

#[cfg(not(feature = "trace"))]
pub(crate) use disabled::*;

#[cfg(not(feature = "trace"))]
mod disabled {
    use std::borrow::Cow;

    use crate::task::TaskId;

    /// Recording compiled out: every method is a no-op.
    pub(crate) struct Tracer;

    impl Tracer {
        pub(crate) fn new(_workers: usize, _epoch: std::time::Instant) -> Self {
            Tracer
        }
        #[inline(always)]
        pub(crate) fn enabled(&self) -> bool {
            false
        }
        #[inline(always)]
        pub(crate) fn now(&self) -> u64 {
            0
        }
        #[inline(always)]
        pub(crate) fn submitted(
            &self,
            _id: TaskId,
            _name: &Option<Cow<'static, str>>,
            _deps: &[TaskId],
            _at: u64,
        ) {
        }
        #[inline(always)]
        pub(crate) fn polled(
            &self,
            _worker: Option<usize>,
            _id: TaskId,
            _ready: u64,
            _start: u64,
            _end: u64,
        ) {
        }
        #[inline(always)]
        pub(crate) fn queue_depth(&self, _at: u64, _depth: usize) {}
    }
}

#[cfg(feature = "trace")]
mod enabled {
    use std::borrow::Cow;
    use std::fmt::Write as _;
    use std::time::Instant;

    use crate::sync::{AtomicBool, Mutex, Ordering};
    use crate::task::TaskId;

    /// One submitted task.
    #[derive(Clone, Debug)]
    pub struct TaskRecord {
        /// The task.
        pub id: TaskId,
        /// Its name.
        pub name: Option<Cow<'static, str>>,
        /// When it was submitted (ns since the trace's epoch).
        pub submit_ns: u64,
        /// What it depended on (explicit ids and inputs).
        pub deps: Vec<TaskId>,
    }

    /// One poll of a task body.
    #[derive(Clone, Copy, Debug)]
    pub struct PollRecord {
        /// The task.
        pub id: TaskId,
        /// The worker that polled it (`None`: another thread, e.g. at shutdown).
        pub worker: Option<usize>,
        /// When the task became ready (ns; 0 if unknown).
        pub ready_ns: u64,
        /// When the poll started and ended (ns).
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
        /// Start and end (ns since the trace's epoch).
        pub start_ns: u64,
        /// End (ns).
        pub end_ns: u64,
    }

    /// A recorded run: export it with [`Trace::to_chrome_json`].
    #[derive(Clone, Debug, Default)]
    pub struct Trace {
        /// Every task submitted while recording.
        pub tasks: Vec<TaskRecord>,
        /// Every poll while recording.
        pub polls: Vec<PollRecord>,
        /// Spans on custom lanes.
        pub lanes: Vec<LaneSpan>,
        /// Ready-queue depth samples `(ns, depth)`.
        pub queue_depth: Vec<(u64, usize)>,
        /// Number of workers (one lane each).
        pub workers: usize,
    }

    /// The recorder of one runtime.
    pub(crate) struct Tracer {
        on: AtomicBool,
        epoch: Instant,
        tasks: Mutex<Vec<TaskRecord>>,
        /// One buffer per worker (uncontended: only its worker pushes) plus one for
        /// other threads.
        polls: Box<[Mutex<Vec<PollRecord>>]>,
        lanes: Mutex<Vec<LaneSpan>>,
        queue_depth: Mutex<Vec<(u64, usize)>>,
    }

    fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl Tracer {
        pub(crate) fn new(workers: usize, epoch: Instant) -> Self {
            Tracer {
                on: AtomicBool::new(false),
                epoch,
                tasks: Mutex::new(Vec::new()),
                polls: (0..=workers).map(|_| Mutex::new(Vec::new())).collect(),
                lanes: Mutex::new(Vec::new()),
                queue_depth: Mutex::new(Vec::new()),
            }
        }

        #[inline]
        pub(crate) fn enabled(&self) -> bool {
            self.on.load(Ordering::Relaxed)
        }

        /// Nanoseconds since the trace's epoch.
        #[inline]
        pub(crate) fn now(&self) -> u64 {
            self.epoch.elapsed().as_nanos() as u64
        }

        pub(crate) fn ns_of(&self, at: Instant) -> u64 {
            at.saturating_duration_since(self.epoch).as_nanos() as u64
        }

        pub(crate) fn start(&self) {
            let _ = self.take();
            self.on.store(true, Ordering::SeqCst);
        }

        pub(crate) fn stop(&self, workers: usize) -> Trace {
            self.on.store(false, Ordering::SeqCst);
            let mut trace = self.take();
            trace.workers = workers;
            trace
        }

        fn take(&self) -> Trace {
            let mut polls = Vec::new();
            for buffer in self.polls.iter() {
                polls.append(&mut lock(buffer));
            }
            Trace {
                tasks: std::mem::take(&mut *lock(&self.tasks)),
                polls,
                lanes: std::mem::take(&mut *lock(&self.lanes)),
                queue_depth: std::mem::take(&mut *lock(&self.queue_depth)),
                workers: 0,
            }
        }

        pub(crate) fn submitted(
            &self,
            id: TaskId,
            name: &Option<Cow<'static, str>>,
            deps: &[TaskId],
            at: u64,
        ) {
            if self.enabled() {
                lock(&self.tasks).push(TaskRecord {
                    id,
                    name: name.clone(),
                    submit_ns: at,
                    deps: deps.to_vec(),
                });
            }
        }

        pub(crate) fn polled(
            &self,
            worker: Option<usize>,
            id: TaskId,
            ready_ns: u64,
            start_ns: u64,
            end_ns: u64,
        ) {
            let buffer = &self.polls[worker.unwrap_or(self.polls.len() - 1)];
            lock(buffer).push(PollRecord {
                id,
                worker,
                ready_ns,
                start_ns,
                end_ns,
            });
        }

        pub(crate) fn queue_depth(&self, at: u64, depth: usize) {
            if self.enabled() {
                lock(&self.queue_depth).push((at, depth));
            }
        }

        pub(crate) fn lane_span(
            &self,
            lane: Cow<'static, str>,
            name: Cow<'static, str>,
            start: Instant,
            end: Instant,
        ) {
            if self.enabled() {
                let span = LaneSpan {
                    lane,
                    name,
                    start_ns: self.ns_of(start),
                    end_ns: self.ns_of(end),
                };
                lock(&self.lanes).push(span);
            }
        }
    }

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
            let names: HashMap<TaskId, &TaskRecord> =
                self.tasks.iter().map(|t| (t.id, t)).collect();
            let mut first_poll: HashMap<TaskId, &PollRecord> = HashMap::new();
            let mut last_poll: HashMap<TaskId, &PollRecord> = HashMap::new();
            for poll in &self.polls {
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
            let tid = |worker: Option<usize>| worker.unwrap_or(self.workers);
            let mut lanes: Vec<&str> = self.lanes.iter().map(|s| s.lane.as_ref()).collect();
            lanes.sort_unstable();
            lanes.dedup();
            let lane_tid = |lane: &str| self.workers + 1 + lanes.binary_search(&lane).unwrap_or(0);

            let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
            let event = |out: &mut String, body: String| {
                out.push_str(&body);
                out.push_str(",\n");
            };
            for w in 0..=self.workers {
                let label = if w < self.workers {
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
            for poll in &self.polls {
                let mut name = String::new();
                let label = names
                    .get(&poll.id)
                    .and_then(|t| t.name.as_deref())
                    .map_or_else(|| format!("task {}", poll.id), str::to_owned);
                json_string(&mut name, &label);
                let submit = names.get(&poll.id).map_or(0, |t| t.submit_ns);
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
            for task in &self.tasks {
                let Some(consumer) = first_poll.get(&task.id) else {
                    continue;
                };
                for dep in &task.deps {
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
}
