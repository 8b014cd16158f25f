//! Each launch owns its arguments: the same kernel function launched concurrently on
//! two streams with different arguments, many times, sees its own arguments every
//! time (quadrants shared one argument buffer between streams, so a launch could run
//! with the arguments of a later launch on another stream).

use std::sync::{Arc, Mutex};

use taskweave::Runtime;
use taskweave::streams::Streams;

mod support;
use support::hang_guard;

/// A kernel's arguments: which stream and launch it is, and its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Args {
    stream: u64,
    launch: u64,
    scale: u64,
    offset: u64,
}

/// The kernel: records the arguments it saw and computes from them.
fn saxpy_like(args: Args, seen: &Mutex<Vec<Args>>) -> u64 {
    seen.lock().unwrap().push(args);
    args.launch * args.scale + args.offset
}

#[test]
fn the_same_kernel_on_two_streams_sees_its_own_arguments() {
    let _guard = hang_guard("own_arguments", 120);
    const LAUNCHES: u64 = 2_000;
    // Every handle is kept until the end, so the window must hold them all.
    let rt = Runtime::builder().workers(2).window(8_192).build();
    let streams = Streams::new(&rt);
    let seen: Vec<Arc<Mutex<Vec<Args>>>> = (0..2).map(|_| Arc::default()).collect();
    // Two orchestrator threads launch at the same time, one per stream.
    let launchers: Vec<_> = (0..2u64)
        .map(|stream| {
            let (rt, s) = (rt.clone(), streams.create_stream(format!("s{stream}")));
            let seen = seen[stream as usize].clone();
            std::thread::spawn(move || {
                rt.block_on(async {
                    let mut handles = Vec::with_capacity(LAUNCHES as usize);
                    for launch in 0..LAUNCHES {
                        let args = Args {
                            stream,
                            launch,
                            scale: 2 + stream,
                            offset: 1_000 * (stream + 1),
                        };
                        let seen = seen.clone();
                        handles.push((args, s.task(move || saxpy_like(args, &seen)).await));
                    }
                    for (args, handle) in handles {
                        let expected = args.launch * args.scale + args.offset;
                        assert_eq!(handle.await.unwrap(), expected, "{args:?}");
                    }
                    s.synchronize().await.unwrap();
                })
            })
        })
        .collect();
    for launcher in launchers {
        launcher.join().unwrap();
    }
    for (stream, seen) in seen.iter().enumerate() {
        let stream = stream as u64;
        let expected: Vec<Args> = (0..LAUNCHES)
            .map(|launch| Args {
                stream,
                launch,
                scale: 2 + stream,
                offset: 1_000 * (stream + 1),
            })
            .collect();
        assert_eq!(*seen.lock().unwrap(), expected, "stream {stream}");
    }
}
