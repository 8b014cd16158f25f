//! Two threads launching on one stream at the same time: the lane lock serialises
//! them, so one launch follows the other (never both the same predecessor), and the
//! later one is the stream's tail.
#![cfg(taskweave_loom)]

#[path = "streams_model.rs"]
mod model;

use model::{Device, lane, launch};

#[test]
fn concurrent_launches_on_one_stream_are_chained() {
    loom::model(|| {
        let device = Device::new();
        let shared = lane("shared");
        let (first, _, _) = launch(&shared, &device);

        let (d, s) = (device.clone(), shared.clone());
        let other = loom::thread::spawn(move || launch(&s, &d));
        let (a, _, a_deps) = launch(&shared, &device);
        let (b, _, b_deps) = other.join().unwrap();

        let tail: Vec<_> = shared.snapshot().points().map(|p| p.id).collect();
        if a_deps == [first] {
            assert_eq!(b_deps, [a], "b must follow a");
            assert_eq!(tail, [b]);
        } else {
            assert_eq!(b_deps, [first], "one launch follows the first task");
            assert_eq!(a_deps, [b], "a must follow b");
            assert_eq!(tail, [a]);
        }
    });
}
