//! `stream_parallel`'s fork and join, with a device thread completing tasks as they
//! become ready: a worker stream's first task cannot become ready before the launch
//! stream's work before the fork has completed (fork), and the launch stream's next
//! task cannot become ready before every worker's work has completed (join).
#![cfg(taskweave_loom)]

#[path = "streams_model.rs"]
mod model;

use model::{Device, lane, launch_checked};
use taskweave_streams::loom_hooks::{ForkPoint, join_into};

#[test]
fn fork_waits_for_the_launch_stream_and_join_waits_for_every_worker() {
    loom::model(|| {
        let device = Device::new();
        let d = device.clone();
        let runner = loom::thread::spawn(move || d.run(4));

        let (main, w1, w2) = (lane("main"), lane("w1"), lane("w2"));
        let (before, _) = launch_checked(&main, &device, &[]);
        // Fork: both workers start after `before`.
        let fork = ForkPoint::new(&main);
        fork.start(&w1);
        fork.start(&w2);
        let (b1, _) = launch_checked(&w1, &device, &[before]);
        let (b2, _) = launch_checked(&w2, &device, &[before]);
        // Join: main's next task follows both branches.
        join_into(&main, &w1);
        join_into(&main, &w2);
        launch_checked(&main, &device, &[before, b1, b2]);

        runner.join().unwrap();
    });
}

#[test]
fn the_fork_point_is_fixed_when_the_fork_is_made() {
    // Work launched on the launch stream after the fork runs concurrently with the
    // workers: the worker's task must follow `before` but may run before `during`.
    loom::model(|| {
        let device = Device::new();
        let d = device.clone();
        let runner = loom::thread::spawn(move || d.run(3));

        let (main, worker) = (lane("main"), lane("worker"));
        let (before, _) = launch_checked(&main, &device, &[]);
        let fork = ForkPoint::new(&main);
        let (during, _) = launch_checked(&main, &device, &[before]);
        fork.start(&worker);
        let (_, deps) = launch_checked(&worker, &device, &[before]);
        assert!(
            deps.contains(&before) && !deps.contains(&during),
            "the worker waits for the fork point only, got {deps:?}"
        );
        runner.join().unwrap();
    });
}

#[test]
fn a_fork_right_after_a_join_follows_the_joined_work() {
    // The launch stream launches nothing between the join and the next fork: the
    // fork point must still cover the joined branch (a snapshot includes the lane's
    // pending waits, rule L5).
    loom::model(|| {
        let device = Device::new();
        let d = device.clone();
        let runner = loom::thread::spawn(move || d.run(3));

        let (main, w1, w2) = (lane("main"), lane("w1"), lane("w2"));
        let (before, _) = launch_checked(&main, &device, &[]);
        ForkPoint::new(&main).start(&w1);
        let (b1, _) = launch_checked(&w1, &device, &[before]);
        join_into(&main, &w1);
        ForkPoint::new(&main).start(&w2);
        launch_checked(&w2, &device, &[before, b1]);

        runner.join().unwrap();
    });
}
