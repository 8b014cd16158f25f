//! The simulated device in a recorded trace: each kernel block is a span on its
//! core's lane; and recording takes nothing away from shutdown — dropping every
//! handle while a launch runs still lets all threads exit.

use std::time::{Duration, Instant};

use futures::channel::oneshot;
use taskweave::Runtime;
use taskweave::device::{CoreKind, Device};

#[cfg(feature = "trace")]
#[test]
fn each_block_is_a_span_on_its_core_lane() {
    let rt = Runtime::builder().workers(2).build();
    let device = Device::builder().cube_cores(2).vector_cores(1).build(&rt);
    rt.start_trace();
    let cube = device
        .launch("matmul", CoreKind::Cube, 6, |_| {
            std::thread::sleep(Duration::from_millis(1))
        })
        .submit_blocking();
    let vector = device
        .launch("relu", CoreKind::Vector, 3, |_| ())
        .submit_blocking();
    cube.wait_blocking().unwrap();
    vector.wait_blocking().unwrap();
    let trace = rt.stop_trace();

    let mut spans: Vec<(&str, &str)> = trace
        .lanes()
        .iter()
        .map(|s| (s.lane.as_ref(), s.name.as_ref()))
        .collect();
    spans.sort_unstable();
    let on = |lane: &str, kernel: &str| spans.iter().filter(|s| **s == (lane, kernel)).count();
    assert_eq!(spans.len(), 9, "one span per block: {spans:?}");
    assert_eq!(
        on("device cube core 0", "matmul") + on("device cube core 1", "matmul"),
        6
    );
    assert_eq!(on("device vector core 0", "relu"), 3);
    assert!(trace.lanes().iter().all(|s| s.start_ns <= s.end_ns));
    // The export names the lanes.
    let json = trace.to_chrome_json();
    assert!(json.contains("\"device vector core 0\""));
}

/// Names of this process's threads that start with `prefix` (Linux: /proc).
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_every_handle_while_a_launch_runs_lets_all_threads_exit() {
    let rt = Runtime::builder()
        .workers(2)
        .thread_name("drop-probe")
        .build();
    let device = Device::builder().cube_cores(2).vector_cores(1).build(&rt);
    #[cfg(feature = "trace")]
    rt.start_trace();
    // The launch waits for a gate, so it runs after every user handle is gone: its
    // body then drops the device's last reference on a worker, which joins the cores
    // while their blocks still run.
    let (open, gate) = oneshot::channel::<()>();
    let gate = rt
        .task_async(async move {
            let _ = gate.await;
        })
        .submit_blocking();
    let launch = device
        .launch("slow", CoreKind::Cube, 4, |_| {
            std::thread::sleep(Duration::from_millis(20))
        })
        .after([gate.id()])
        .submit_blocking();
    drop((launch, gate, device, rt));
    open.send(()).unwrap();

    let give_up = Instant::now() + Duration::from_secs(20);
    while threads_named("drop-probe") > 0 {
        assert!(
            Instant::now() < give_up,
            "the runtime's threads did not exit: a core thread and a worker wait for each other"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
