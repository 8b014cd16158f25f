//! What task bodies see: views of exactly the declared regions, row by row, as one
//! slice where contiguous, in the shape the accesses were declared in; and async
//! bodies holding views across awaits that really wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use taskweave::{Region, Runtime, Scope};

fn runtime() -> Runtime {
    Runtime::builder().workers(2).build()
}

#[test]
fn tiles_are_seen_row_by_row_and_contiguous_regions_as_one_slice() {
    let rt = runtime();
    let scope = Scope::new(&rt, "views");
    let data: Vec<u32> = (0..60).collect();
    let t = scope.from_vec("t", [3, 4, 5], data).unwrap();
    let seen = scope
        .task(
            (
                t.read(Region::tile([1, 1, 2], [2, 2, 3])),
                t.read(Region::tile([0, 1, 0], [1, 2, 5])),
                t.read(Region::range(7..13)),
                t.read(..),
            ),
            |(tile, rows, range, all)| {
                assert_eq!(tile.shape(), [2, 2, 3]);
                assert_eq!((tile.row_count(), tile.row_len(), tile.len()), (4, 3, 12));
                assert!(tile.as_slice().is_none());
                assert_eq!(tile.row(0), [27, 28, 29]);
                assert_eq!(tile.row(3), [52, 53, 54]);
                assert_eq!(tile[[1, 0, 2]], 49);
                assert_eq!(tile.get(&[2, 0, 0]), None);
                assert_eq!(tile.get(&[0, 0]), None);
                // Whole rows of one outer index: contiguous.
                assert_eq!(rows.as_slice().unwrap(), (5..15).collect::<Vec<_>>());
                assert_eq!(range.shape(), [6]);
                assert_eq!(range.as_slice().unwrap(), [7, 8, 9, 10, 11, 12]);
                assert_eq!(all.shape(), [3, 4, 5]);
                assert_eq!(all.as_slice().unwrap().len(), 60);
                tile.to_vec()
            },
        )
        .submit_blocking()
        .unwrap();
    assert_eq!(
        seen.wait_blocking().unwrap(),
        [27, 28, 29, 32, 33, 34, 47, 48, 49, 52, 53, 54]
    );
}

#[test]
fn exclusive_views_write_exactly_their_region() {
    let rt = runtime();
    let scope = Scope::new(&rt, "views");
    let m = scope.zeros::<i16>("m", [4, 5]);
    let first = scope
        .task(
            (
                m.write(Region::tile([1, 1], [2, 3])),
                m.read_write(Region::range(0..2)),
            ),
            |(mut tile, mut head)| {
                for (i, row) in tile.rows_mut().enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = (10 * (i + 1) + j) as i16;
                    }
                }
                tile[[1, 2]] = 99;
                *tile.get_mut(&[0, 0]).unwrap() += 1;
                head.as_mut_slice().unwrap().copy_from_slice(&[-1, -2]);
            },
        )
        .submit_blocking()
        .unwrap();
    drop(first);
    let second = scope
        .task(m.read_write(Region::tile([3, 0], [1, 5])), |mut last| {
            last.copy_from_slice(&[5, 6, 7, 8, 9]);
            assert_eq!(last.to_vec(), [5, 6, 7, 8, 9]);
            last.fill(4);
        })
        .submit_blocking()
        .unwrap();
    drop(second);
    assert_eq!(
        scope.read_blocking(&m, ..).unwrap(),
        [
            -1, -2, 0, 0, 0, 0, 11, 11, 12, 0, 0, 20, 21, 99, 0, 4, 4, 4, 4, 4
        ]
    );
}

#[test]
fn views_come_in_the_shape_the_accesses_were_declared_in() {
    let rt = runtime();
    let scope = Scope::new(&rt, "views");
    let v = scope.from_vec("v", [6], vec![1u64, 2, 3, 4, 5, 6]).unwrap();
    let out = scope.zeros::<u64>("out", [3]);
    let parts = [v.read(0..2), v.read(2..4), v.read(4..6)];
    let cells: Vec<_> = (0..3).map(|i| out.write(i..i + 1)).collect();
    let sums = scope
        .task((parts, cells), |(parts, cells)| {
            for (part, mut cell) in parts.into_iter().zip(cells) {
                cell[[0]] = part.to_vec().iter().sum();
            }
        })
        .submit_blocking()
        .unwrap();
    drop(sums);
    assert_eq!(scope.read_blocking(&out, ..).unwrap(), [3, 7, 11]);
    let nothing = scope.task((), |()| 5).submit_blocking().unwrap();
    assert_eq!(nothing.wait_blocking().unwrap(), 5);
}

#[test]
fn async_bodies_hold_their_views_across_awaits_that_wait() {
    let rt = runtime();
    let scope = Scope::new(&rt, "async");
    let x = scope.zeros::<u32>("x", [4]);
    let (send, receive) = futures::channel::oneshot::channel::<u32>();
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let writer = scope
        .task_async(x.write(..), move |mut view| {
            Box::pin(async move {
                view.fill(1);
                counted.fetch_add(1, Ordering::Relaxed);
                // Really pending: the value is sent below, after submission.
                let value = receive.await.unwrap();
                view.fill(value);
                counted.fetch_add(1, Ordering::Relaxed);
            })
        })
        .submit_blocking()
        .unwrap();
    // A reader submitted meanwhile must wait for the whole async body.
    let reader = scope
        .task(x.read(..), |v| v.to_vec())
        .submit_blocking()
        .unwrap();
    send.send(7).unwrap();
    writer.wait_blocking().unwrap();
    assert_eq!(reader.wait_blocking().unwrap(), [7; 4]);
    assert_eq!(polls.load(Ordering::Relaxed), 2);
    let failing = scope
        .try_task_async(x.read(..), |view| {
            Box::pin(async move { if view[[0]] == 7 { Err("seven") } else { Ok(()) } })
        })
        .submit_blocking()
        .unwrap();
    assert!(failing.wait_blocking().is_err());
}

#[test]
fn bodies_run_once_and_a_panicking_body_fails_its_task() {
    let rt = runtime();
    let scope = Scope::new(&rt, "panic");
    let x = scope.zeros::<u8>("x", [1]);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let bad = scope
        .task(x.write(..), move |_| {
            r.fetch_add(1, Ordering::Relaxed);
            panic!("boom")
        })
        .submit_blocking()
        .unwrap();
    assert!(matches!(
        bad.wait_blocking(),
        Err(taskweave::TaskError::Panicked { .. })
    ));
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}
