//! The simulated device: SPMD launches run exactly `block_num` blocks on cores of
//! their kind, device errors name the task and kernel, DMA completes through tokens,
//! and device tasks order with CPU tasks in one graph.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave::device::{CoreKind, Device, DeviceBuffer, DeviceError};
use taskweave::{Runtime, TaskError};

#[test]
fn an_spmd_launch_runs_exactly_block_num_blocks_on_cores_of_its_kind() {
    let rt = Runtime::builder().workers(2).build();
    let device = Device::builder().cube_cores(2).vector_cores(3).build(&rt);
    for (kind, blocks) in [(CoreKind::Cube, 37usize), (CoreKind::Vector, 64)] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = device
            .launch("count-blocks", kind, blocks, move |block| {
                let thread = std::thread::current().name().unwrap_or("?").to_owned();
                record
                    .lock()
                    .unwrap()
                    .push((block.index(), block.count(), thread));
            })
            .submit_blocking();
        task.wait_blocking().expect("launch");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), blocks, "exactly block_num blocks ran");
        let indices: HashSet<usize> = seen.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(indices, (0..blocks).collect(), "each block index once");
        assert!(seen.iter().all(|(_, count, _)| *count == blocks));
        let prefix = format!("device-{kind}-");
        assert!(
            seen.iter()
                .all(|(_, _, thread)| thread.starts_with(&prefix)),
            "blocks ran only on {kind} cores"
        );
    }
}

#[test]
fn a_device_error_names_the_task_and_the_kernel() {
    let rt = Runtime::builder().workers(2).build();
    let device = Device::builder().build(&rt);
    let after = Arc::new(AtomicUsize::new(0));
    let (kernel, dependent) = rt.block_on(async {
        let kernel = device
            .launch("softmax_fp16", CoreKind::Vector, 8, |block| {
                if block.index() == 5 {
                    block.raise_overflow("exp() overflowed fp16");
                }
            })
            .name("softmax_fp16")
            .await;
        let ran = after.clone();
        let dependent = rt
            .task(move || ran.fetch_add(1, SeqCst))
            .after([kernel.id()])
            .name("consume")
            .await;
        (kernel, dependent)
    });
    let id = kernel.id();
    match kernel.wait_blocking() {
        Err(TaskError::TokenFailed { task, error, .. }) => {
            assert_eq!(task, id);
            let device_error = error.downcast_ref::<DeviceError>().expect("a DeviceError");
            assert_eq!(device_error.kernel, "softmax_fp16");
            assert_eq!(device_error.task, id);
            assert_eq!(device_error.block, 5);
            assert!(
                error.to_string().contains("softmax_fp16"),
                "the message names the kernel: {error}"
            );
        }
        other => panic!("expected a device error, got {other:?}"),
    }
    assert!(matches!(
        dependent.wait_blocking(),
        Err(TaskError::DependencyFailed { .. })
    ));
    assert_eq!(after.load(SeqCst), 0);
}

#[test]
fn dma_then_kernel_then_cpu_task_in_one_graph() {
    let rt = Runtime::builder().workers(2).build();
    let device = Device::builder()
        .dma_latency(Duration::from_micros(200))
        .build(&rt);
    let input = DeviceBuffer::zeros(16);
    let output = DeviceBuffer::zeros(16);
    let data: Arc<[f32]> = (0..16).map(|i| i as f32).collect();
    let total = rt.block_on(async {
        let copy = device.dma_task("h2d", data, &input, 0).await;
        let (src, dst) = (input.clone(), output.clone());
        let kernel = device
            .launch("double", CoreKind::Vector, 16, move |block| {
                let i = block.index();
                dst.set(i, 2.0 * src.get(i));
            })
            .after([copy.id()])
            .await;
        let out = output.clone();
        let sum = rt
            .task(move || out.to_vec().iter().sum::<f32>())
            .after([kernel.id()])
            .name("sum")
            .await;
        sum.await
    });
    assert_eq!(total.unwrap(), 2.0 * (0..16).sum::<i32>() as f32);
}
