//! `Runtime::extension`: one value per type per runtime, shared by every handle,
//! initialised once, and dropped with the last runtime handle (also when it holds
//! task references, which hold the runtime's shared state).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use taskweave::{Runtime, TaskWatch};

/// Counts its drops.
struct Tracked {
    drops: Arc<AtomicUsize>,
    _watch: Option<TaskWatch>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn one_value_per_type_initialised_once_and_shared_by_every_handle() {
    let rt = Runtime::builder().workers(1).build();
    let inits = AtomicUsize::new(0);
    let a = rt.extension(|| {
        inits.fetch_add(1, SeqCst);
        AtomicUsize::new(7)
    });
    let b = rt.clone().extension(|| {
        inits.fetch_add(1, SeqCst);
        AtomicUsize::new(99)
    });
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(b.load(SeqCst), 7);
    assert_eq!(inits.load(SeqCst), 1);
    let other_type = rt.extension(|| String::from("text"));
    assert_eq!(*other_type, "text");
    let other_runtime = Runtime::builder().workers(1).build();
    assert_eq!(
        other_runtime.extension(|| AtomicUsize::new(3)).load(SeqCst),
        3
    );
}

#[test]
fn values_are_dropped_with_the_last_runtime_handle() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(1).build();
    let task = rt.task(|| 5).submit_blocking();
    let watch = task.watch();
    assert!(watch.is_some());
    let d = drops.clone();
    drop(rt.extension(move || Tracked {
        drops: d,
        _watch: watch,
    }));
    let clone = rt.clone();
    drop(rt);
    assert_eq!(drops.load(SeqCst), 0, "a handle is left");
    assert_eq!(task.wait_blocking().unwrap(), 5);
    drop(clone);
    assert_eq!(drops.load(SeqCst), 1, "dropped with the last handle");
}

#[test]
fn racing_initialisations_keep_one_value() {
    let rt = Runtime::builder().workers(1).build();
    let drops = Arc::new(AtomicUsize::new(0));
    let kept: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (rt, drops) = (rt.clone(), drops.clone());
                scope.spawn(move || {
                    rt.extension(move || Tracked {
                        drops,
                        _watch: None,
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(kept.iter().all(|v| Arc::ptr_eq(v, &kept[0])));
    let losers = drops.load(SeqCst);
    assert!(losers <= 3, "at most the losers of the race were dropped");
    drop(kept);
    assert_eq!(
        drops.load(SeqCst),
        losers,
        "the kept value lives in the runtime"
    );
}
