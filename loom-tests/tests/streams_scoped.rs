//! The scoped stream (`with_stream`): when the scope returns — the stream destroyed
//! — every task launched on it in the body has completed, whatever the device did
//! meanwhile.
#![cfg(taskweave_loom)]

#[path = "streams_model.rs"]
mod model;

use std::sync::Arc;

use model::{Device, Model, block_on, lane, launch_checked};
use taskweave_streams::loom_hooks::{Lane, scoped};

#[test]
fn a_scoped_stream_synchronizes_before_it_is_destroyed() {
    loom::model(|| {
        let device = Device::new();
        let d = device.clone();
        let runner = loom::thread::spawn(move || d.run(2));

        let body_device = device.clone();
        let (launched, outcome) = block_on(scoped(
            lane("scoped"),
            move |s: Arc<Lane<Model>>| async move {
                let (x1, _) = launch_checked(&s, &body_device, &[]);
                let (x2, _) = launch_checked(&s, &body_device, &[x1]);
                [x1, x2]
            },
        ));
        outcome.unwrap();
        for id in launched {
            assert!(
                device.is_closed(id),
                "the scoped stream was destroyed before {id} completed"
            );
        }
        runner.join().unwrap();
    });
}
