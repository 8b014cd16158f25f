//! tokio-console end to end (feature `console`): the console-subscriber server runs
//! on a free local port, taskweave runs named tasks, and a client speaking
//! tokio-console's own protocol (the `console-api` gRPC crate) finds them, polled,
//! in the instrument stream.
#![cfg(feature = "console")]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use console_api::field::{Name, Value};
use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use futures::channel::oneshot;
use taskweave::Runtime;
use tracing_subscriber::layer::SubscriberExt;

/// Long enough for a loaded CI machine; the test ends as soon as all is seen.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the console has been told about tasks: each name with the task's poll count.
#[derive(Default)]
struct Console {
    /// Field names of each span metadata (fields may name themselves by index).
    field_names: HashMap<u64, Vec<String>>,
    /// Console task id → `task.name`.
    names: HashMap<u64, String>,
    /// Console task id → polls.
    polls: HashMap<u64, u64>,
}

impl Console {
    fn absorb(&mut self, update: console_api::instrument::Update) {
        for new in update.new_metadata.into_iter().flat_map(|m| m.metadata) {
            if let (Some(id), Some(meta)) = (new.id, new.metadata) {
                self.field_names.insert(id.id, meta.field_names);
            }
        }
        let Some(tasks) = update.task_update else {
            return;
        };
        for task in tasks.new_tasks {
            let Some(id) = task.id else { continue };
            for field in task.fields {
                let name = match field.name {
                    Some(Name::StrName(name)) => name,
                    Some(Name::NameIdx(index)) => field
                        .metadata_id
                        .and_then(|meta| self.field_names.get(&meta.id))
                        .and_then(|names| names.get(index as usize))
                        .cloned()
                        .unwrap_or_default(),
                    None => continue,
                };
                if let (true, Some(Value::StrVal(value) | Value::DebugVal(value))) =
                    (name == "task.name", field.value)
                {
                    self.names.insert(id.id, value.trim_matches('"').to_owned());
                }
            }
        }
        for (id, stats) in tasks.stats_update {
            if let Some(poll) = stats.poll_stats {
                self.polls.insert(id, poll.polls);
            }
        }
    }

    /// The names of tasks the console has seen polled at least once.
    fn polled_names(&self) -> HashSet<&str> {
        self.names
            .iter()
            .filter(|(id, _)| self.polls.get(id).is_some_and(|&polls| polls > 0))
            .map(|(_, name)| name.as_str())
            .collect()
    }
}

#[test]
fn named_tasks_appear_polled_in_the_console_stream() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port();
    let layer = console_subscriber::ConsoleLayer::builder()
        .server_addr(([127, 0, 0, 1], port))
        .publish_interval(Duration::from_millis(20))
        .spawn();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the only subscriber of this test binary");

    // Named tasks: three that finish, one that stays pending until the end.
    let rt = Runtime::builder().workers(2).build();
    let (release, released) = oneshot::channel::<()>();
    let waiting = rt
        .task_async(async move {
            let _ = released.await;
        })
        .name("console-live-waiting")
        .submit_blocking();
    let mut previous = None;
    for step in [
        "console-live-load",
        "console-live-sum",
        "console-live-store",
    ] {
        let task = rt.task(|| ()).name(step).after(previous).submit_blocking();
        previous = Some(task.id());
        task.wait_blocking().unwrap();
    }

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async {
        tokio::time::timeout(PATIENCE, async {
            let mut client = loop {
                match InstrumentClient::connect(format!("http://127.0.0.1:{port}")).await {
                    Ok(client) => break client,
                    // The server thread may not be listening yet.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            let mut updates = client
                .watch_updates(InstrumentRequest {})
                .await
                .expect("watch_updates")
                .into_inner();
            let mut console = Console::default();
            let wanted = [
                "console-live-waiting",
                "console-live-load",
                "console-live-sum",
                "console-live-store",
            ];
            while let Some(update) = updates.message().await.expect("the update stream") {
                console.absorb(update);
                let polled = console.polled_names();
                if wanted.iter().all(|name| polled.contains(name)) {
                    return;
                }
            }
            panic!("the update stream ended");
        })
        .await
        .expect("the console saw every named task polled")
    });
    release.send(()).unwrap();
    waiting.wait_blocking().unwrap();
}
