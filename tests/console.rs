//! tokio-console instrumentation (feature `console`): one `runtime.spawn` span per
//! task, entered and exited once per poll, and waker events that name the span.
#![cfg(feature = "console")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use taskweave::Runtime;
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Default)]
struct Seen {
    /// Per `runtime.spawn` span: (task.name, enters, exits, closed).
    spans: HashMap<u64, (String, usize, usize, bool)>,
    /// Waker events: (op, span id).
    waker_events: Vec<(String, u64)>,
}

struct Recorder(Arc<Mutex<Seen>>);

struct Fields {
    name: String,
    op: String,
    task_id: u64,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "task.name" => self.name = value.to_owned(),
            "op" => self.op = value.to_owned(),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "task.id" {
            self.task_id = value;
        }
    }
    fn record_debug(&mut self, _field: &tracing::field::Field, _value: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() == "runtime.spawn" && attrs.metadata().target() == "tokio::task"
        {
            let mut fields = Fields {
                name: String::new(),
                op: String::new(),
                task_id: 0,
            };
            attrs.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .spans
                .insert(id.into_u64(), (fields.name, 0, 0, false));
        }
    }
    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            span.1 += 1;
        }
    }
    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            span.2 += 1;
        }
    }
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            span.3 = true;
        }
    }
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "tokio::task::waker" {
            let mut fields = Fields {
                name: String::new(),
                op: String::new(),
                task_id: 0,
            };
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .waker_events
                .push((fields.op, fields.task_id));
        }
    }
}

/// Polls `Pending` once (waking itself by an owned clone), then `Ready`.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        // An owned clone on purpose: the test expects waker.clone then waker.wake.
        #[allow(clippy::waker_clone_wake)]
        cx.waker().clone().wake();
        std::task::Poll::Pending
    }
}

#[test]
fn one_spawn_span_per_task_and_one_enter_exit_per_poll() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Bodies run on worker threads: the subscriber must be the global default.
    let subscriber = tracing_subscriber::registry().with(Recorder(seen.clone()));
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other global subscriber in this test binary");
    let rt = Runtime::builder().workers(1).build();
    rt.task(|| 1)
        .name("closure-task")
        .submit_blocking()
        .wait_blocking()
        .unwrap();
    rt.task_async(YieldOnce(false))
        .name("yielding-task")
        .submit_blocking()
        .wait_blocking()
        .unwrap();
    drop(rt);

    let seen = seen.lock().unwrap();
    let by_name = |name: &str| {
        seen.spans
            .iter()
            .filter(|(_, s)| s.0 == name)
            .map(|(id, s)| (*id, s.clone()))
            .collect::<Vec<_>>()
    };
    let closure = by_name("closure-task");
    assert_eq!(closure.len(), 1, "exactly one runtime.spawn span per task");
    let (_, (_, enters, exits, closed)) = &closure[0];
    assert_eq!((*enters, *exits), (1, 1), "a closure body is polled once");
    assert!(closed, "the span closes when the task ends");

    let yielding = by_name("yielding-task");
    assert_eq!(yielding.len(), 1);
    let (span_id, (_, enters, exits, _)) = &yielding[0];
    assert_eq!((*enters, *exits), (2, 2), "two polls, two enters and exits");
    let ops: Vec<&str> = seen
        .waker_events
        .iter()
        .filter(|(_, id)| id == span_id)
        .map(|(op, _)| op.as_str())
        .collect();
    assert_eq!(
        ops,
        ["waker.clone", "waker.wake"],
        "the body cloned its waker and woke it"
    );
}
