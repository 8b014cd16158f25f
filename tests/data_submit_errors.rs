//! Submissions rejected before anything runs: regions out of bounds or of the wrong
//! rank, the same region declared twice, a task's write overlapping its other
//! accesses, tensors of another scope tree. Each error names what it is about.

use taskweave::{DataError, Region, Runtime, Scope};

fn runtime() -> Runtime {
    Runtime::builder().workers(1).build()
}

fn message(error: &DataError) -> String {
    error.to_string()
}

#[test]
fn out_of_bounds_regions_name_the_tensor_region_and_shape() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let m = scope.zeros::<f64>("matrix", [4, 6]);
    let cases = [
        Region::tile([3, 0], [2, 6]),
        Region::tile([0, 5], [1, 2]),
        Region::range(20..25),
        Region::element([4, 0]),
    ];
    for region in cases {
        let error = scope
            .task(m.read(region), |_| ())
            .name("t")
            .submit_blocking()
            .unwrap_err();
        assert!(matches!(error, DataError::OutOfBounds { .. }), "{error:?}");
        let text = message(&error);
        assert!(
            text.contains("'matrix'")
                && text.contains(&region.to_string())
                && text.contains("[4, 6]"),
            "{text}"
        );
        assert!(text.contains("task 't'"), "{text}");
    }
}

#[test]
fn tiles_of_the_wrong_rank_are_rejected() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let v = scope.zeros::<i32>("v", [8]);
    let m = scope.zeros::<i32>("m", [2, 2, 2]);
    let e1 = scope
        .task(v.write(Region::tile([0, 0], [1, 1])), |_| ())
        .submit_blocking()
        .unwrap_err();
    let e2 = scope
        .task(m.write(Region::tile([0, 0], [1, 1])), |_| ())
        .submit_blocking()
        .unwrap_err();
    let e3 = scope
        .task(m.write(Region::tile([0; 5], [1; 5])), |_| ())
        .submit_blocking()
        .unwrap_err();
    for (error, tensor, shape) in [
        (e1, "'v'", "[8]"),
        (e2, "'m'", "[2, 2, 2]"),
        (e3, "'m'", "[2, 2, 2]"),
    ] {
        assert!(matches!(error, DataError::RankMismatch { .. }), "{error:?}");
        let text = message(&error);
        assert!(text.contains(tensor) && text.contains(shape), "{text}");
    }
}

#[test]
fn the_same_region_twice_is_rejected() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let m = scope.zeros::<u8>("m", [4, 4]);
    let tile = Region::tile([0, 0], [2, 2]);
    let error = scope
        .task((m.read(tile), m.read(tile)), |_| ())
        .name("twice")
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(error, DataError::DuplicateAccess { .. }),
        "{error:?}"
    );
    let text = message(&error);
    assert!(
        text.contains("'twice'") && text.contains("tile [0..2, 0..2]") && text.contains("'m'"),
        "{text}"
    );
    let error = scope
        .task((m.read(tile), m.write(tile)), |_| ())
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(error, DataError::DuplicateAccess { .. }),
        "{error:?}"
    );
}

#[test]
fn a_write_overlapping_another_access_of_the_task_is_rejected() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let m = scope.zeros::<u8>("m", [4, 4]);
    let a = Region::tile([0, 0], [2, 2]);
    let b = Region::tile([1, 1], [2, 2]);
    for error in [
        scope
            .task((m.write(a), m.write(b)), |_| ())
            .submit_blocking()
            .unwrap_err(),
        scope
            .task((m.read(a), m.read_write(b)), |_| ())
            .submit_blocking()
            .unwrap_err(),
        scope
            .task(vec![m.write(..), m.write(Region::range(3..4))], |_| ())
            .submit_blocking()
            .unwrap_err(),
    ] {
        assert!(
            matches!(error, DataError::OverlappingAccesses { .. }),
            "{error:?}"
        );
        assert!(message(&error).contains("'m'"));
    }
    // Overlapping reads are fine, and so are disjoint writes.
    let ok = scope.task(
        (m.read(a), m.read(b), m.write(Region::tile([3, 3], [1, 1]))),
        |_| (),
    );
    ok.submit_blocking().unwrap().wait_blocking().unwrap();
    let writes = vec![
        m.write(Region::tile([0, 0], [2, 4])),
        m.write(Region::tile([2, 0], [2, 4])),
    ];
    scope
        .task(writes, |views| views.len())
        .submit_blocking()
        .unwrap()
        .wait_blocking()
        .unwrap();
}

#[test]
fn overlaps_are_found_in_any_declaration_order() {
    // Accesses declared in increasing order skip the pairwise check; every other
    // order must still find the overlap, wherever it is in the list.
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let v = scope.zeros::<u8>("v", [16]);
    let w = scope.zeros::<u8>("w", [16]);
    let m = scope.zeros::<u8>("m", [4, 4]);
    let rejected = [
        // Increasing, then one that overlaps the first (not the last) access.
        vec![
            v.write(0..4),
            v.write(8..10),
            v.write(12..16),
            v.write(3..5),
        ],
        // Decreasing.
        vec![v.write(12..16), v.write(8..10), v.write(9..10)],
        // Another tensor's accesses in between.
        vec![v.write(0..4), w.write(0..16), w.write(0..1)],
    ];
    for accesses in rejected {
        let error = scope.task(accesses, |_| ()).submit_blocking().unwrap_err();
        assert!(
            matches!(
                error,
                DataError::OverlappingAccesses { .. } | DataError::DuplicateAccess { .. }
            ),
            "{error:?}"
        );
    }
    // Tiles whose row-major spans interleave (column 0, then column 1, then an
    // element of column 0 again): only the exact check tells.
    let column = |c: usize| m.write(Region::tile([0, c], [4, 1]));
    let error = scope
        .task(
            vec![column(0), column(1), m.write(Region::element([2, 0]))],
            |_| (),
        )
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(error, DataError::OverlappingAccesses { .. }),
        "{error:?}"
    );
    // Disjoint in any order is fine, as are empty regions anywhere.
    let fine = vec![
        v.write(8..10),
        v.write(0..4),
        v.write(4..4),
        v.write(12..16),
        v.write(10..12),
        v.write(4..8),
    ];
    scope
        .task(fine, |_| ())
        .submit_blocking()
        .unwrap()
        .wait_blocking()
        .unwrap();
    let columns = vec![column(1), column(0), column(3), column(2)];
    scope
        .task(columns, |_| ())
        .submit_blocking()
        .unwrap()
        .wait_blocking()
        .unwrap();
}

#[test]
fn a_rejected_submission_leaves_no_trace() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let m = scope.zeros::<u8>("m", [4]);
    assert!(scope.task(m.write(0..9), |_| ()).submit_blocking().is_err());
    assert_eq!(scope.tasks(), 0);
    assert!(scope.graph().tasks.is_empty());
}

#[test]
fn tensors_of_another_scope_tree_are_rejected() {
    let rt = runtime();
    let one = Scope::new(&rt, "one");
    let two = Scope::new(&rt, "two");
    let x = one.zeros::<u8>("x", [4]);
    let error = two.task(x.read(..), |_| ()).submit_blocking().unwrap_err();
    assert!(
        matches!(error, DataError::ForeignTensor { .. }),
        "{error:?}"
    );
    assert!(message(&error).contains("'x'") && message(&error).contains("'two'"));
}

#[test]
fn from_vec_checks_the_length() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let error = scope
        .from_vec("short", [2, 3], vec![1.0f32; 5])
        .unwrap_err();
    let text = message(&error);
    assert!(
        text.contains("'short'")
            && text.contains("[2, 3]")
            && text.contains('5')
            && text.contains('6'),
        "{text}"
    );
}

#[test]
#[should_panic(expected = "1..=4 dimensions")]
fn tensors_have_at_most_four_dimensions() {
    let rt = runtime();
    let scope = Scope::new(&rt, "s");
    let _ = scope.zeros::<u8>("five", [1, 1, 1, 1, 1]);
}

/// The edges the graph recorded into `to`, by producer.
fn producers(scope: &Scope<'_>, to: taskweave::TaskId) -> Vec<taskweave::TaskId> {
    let mut from: Vec<_> = scope
        .graph()
        .edges
        .iter()
        .filter(|e| e.to == to)
        .map(|e| e.from)
        .collect();
    from.sort();
    from.dedup();
    from
}

#[test]
fn a_submission_rejected_partway_leaves_the_maps_as_they_were() {
    // Accesses are checked, looked up and recorded one by one: a rejection found at a
    // later access takes back what the earlier ones recorded. The slot of the
    // rejected task is free again, so the next task may get its very id: any record
    // left behind would make that task depend on itself and never run.
    let rt = Runtime::builder().workers(2).build();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let v = scope.zeros::<u8>("v", [16]);
    let w = scope
        .task((v.write(0..1), v.write(1..2)), |_| ())
        .submit_blocking()
        .unwrap();
    let r = scope.task(v.read(2..3), |_| ()).submit_blocking().unwrap();
    // A fresh element, w's element, r's element, then the first element again.
    let error = scope
        .task(
            [v.write(5..6), v.write(0..1), v.write(2..3), v.write(5..6)],
            |_| (),
        )
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(error, DataError::DuplicateAccess { .. }),
        "{error:?}"
    );
    // A read joining r's readers, then a tensor of another tree.
    let other = Scope::new(&rt, "other");
    let foreign = other.zeros::<u8>("foreign", [4]);
    let error = scope
        .task((v.read(2..3), v.read(3..4), foreign.read(0..1)), |_| ())
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(error, DataError::ForeignTensor { .. }),
        "{error:?}"
    );
    let a = scope.task(v.read(0..1), |_| ()).submit_blocking().unwrap();
    let b = scope.task(v.write(2..3), |_| ()).submit_blocking().unwrap();
    let c = scope.task(v.read(5..6), |_| ()).submit_blocking().unwrap();
    let d = scope.task(v.write(3..4), |_| ()).submit_blocking().unwrap();
    assert_eq!(producers(&scope, a.id()), [w.id()]);
    assert_eq!(producers(&scope, b.id()), [r.id()]);
    assert!(producers(&scope, c.id()).is_empty());
    assert!(producers(&scope, d.id()).is_empty());
    assert_eq!(scope.tasks(), 6);
    for task in [w, r, a, b, c, d] {
        task.wait_blocking().unwrap();
    }
}

#[test]
fn a_task_the_one_pass_path_does_not_take_is_submitted_whole() {
    // A single element then a range of two (not an element of the map's grid): the
    // first record is taken back and the task goes the general way, with every edge.
    let rt = Runtime::builder().workers(2).build();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let v = scope.zeros::<u8>("v", [16]);
    let first = scope
        .task((v.write(7..8), v.write(9..10)), |_| ())
        .submit_blocking()
        .unwrap();
    let mixed = scope
        .task((v.write(7..8), v.write(8..10)), |_| ())
        .submit_blocking()
        .unwrap();
    let after = scope
        .task((v.read(7..8), v.read(9..10)), |_| ())
        .submit_blocking()
        .unwrap();
    assert_eq!(producers(&scope, mixed.id()), [first.id()]);
    assert_eq!(producers(&scope, after.id()), [mixed.id()]);
    for task in [first, mixed, after] {
        task.wait_blocking().unwrap();
    }
}

#[test]
fn tasks_of_many_accesses_and_tensors_take_the_fast_paths_whole() {
    // More accesses and tensors than the fast paths keep inline: their lists move to
    // the heap, and a rejection at the last access still takes every record back.
    let rt = Runtime::builder().workers(2).build();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let tensors: Vec<_> = (0..6)
        .map(|i| scope.zeros::<u8>(format!("t{i}"), [8]))
        .collect();
    // Twenty elements over six tensors, each tensor's out of order (so D3 compares).
    let writes = |tag: usize| -> Vec<_> {
        (0..20)
            .map(|k| {
                let at = (k + tag) % 8;
                tensors[k % 6].write(at..at + 1)
            })
            .collect()
    };
    let first = scope.task(writes(0), |_| ()).submit_blocking().unwrap();
    let mut rejected = writes(1);
    rejected.push(tensors[0].write(1..2)); // the first access's region again
    let error = scope.task(rejected, |_| ()).submit_blocking().unwrap_err();
    assert!(
        matches!(error, DataError::DuplicateAccess { .. }),
        "{error:?}"
    );
    let second = scope.task(writes(0), |_| ()).submit_blocking().unwrap();
    assert_eq!(producers(&scope, second.id()), [first.id()]);
    let readers: Vec<_> = tensors.iter().map(|t| t.read(..)).collect();
    let last = scope.task(readers, |_| ()).submit_blocking().unwrap();
    assert_eq!(producers(&scope, last.id()), [second.id()]);
    for task in [first, second, last] {
        task.wait_blocking().unwrap();
    }
}

#[test]
fn a_task_of_a_hundred_accesses_is_checked_recorded_and_taken_back_whole() {
    // A hundred accesses: the one pass keeps its lists on the heap, a rejection at
    // the last access takes all hundred records back, and the task's dependencies
    // and views are those of its accesses.
    let rt = Runtime::builder().workers(2).build();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let v = scope.zeros::<u32>("v", [100]);
    let w = scope.zeros::<u32>("w", [1]);
    let all = || -> Vec<_> { (0..100).map(|k| v.write(k..k + 1)).collect() };
    let first = scope
        .task(all(), |views| {
            for (k, mut view) in views.into_iter().enumerate() {
                view[[0]] = k as u32 + 1;
            }
        })
        .submit_blocking()
        .unwrap();
    let mut rejected = all();
    rejected.push(v.write(98..100)); // overlaps two writes of the same task
    let error = scope.task(rejected, |_| ()).submit_blocking().unwrap_err();
    assert!(
        matches!(error, DataError::OverlappingAccesses { .. }),
        "{error:?}"
    );
    // The rejection left the map as it was: the next reader depends on `first` only.
    let reader = scope
        .task((v.read(..), w.write(..)), |(v, mut w)| {
            w[[0]] = v.as_slice().unwrap().iter().sum();
        })
        .submit_blocking()
        .unwrap();
    assert_eq!(producers(&scope, reader.id()), [first.id()]);
    first.wait_blocking().unwrap();
    reader.wait_blocking().unwrap();
    let sum = scope.read_blocking(&w, ..).unwrap()[0];
    assert_eq!(sum, (1..=100).sum::<u32>());
}

#[test]
fn a_repeat_among_many_tensors_of_a_task_is_rejected() {
    // Eighteen tensors and nineteen accesses in one task, more than the fast paths
    // keep inline (4 tensors met, 16 accesses): a repeated or overlapping region of
    // the last tensors is still found, and the task without it derives its edges.
    let rt = Runtime::builder().workers(2).build();
    let scope = Scope::new(&rt, "s");
    scope.record_graph();
    let tensors: Vec<_> = (0..18)
        .map(|i| scope.zeros::<u8>(format!("t{i}"), [4]))
        .collect();
    let writes = || -> Vec<_> { tensors.iter().map(|t| t.write(2..3)).collect() };
    let rejected = (writes(), tensors[17].read(2..3));
    let error = scope.task(rejected, |_| ()).submit_blocking().unwrap_err();
    assert!(
        matches!(&error, DataError::DuplicateAccess { tensor, .. } if tensor == "t17"),
        "{error:?}"
    );
    let mut overlapping = writes();
    overlapping.push(tensors[16].write(0..4));
    let error = scope
        .task(overlapping, |_| ())
        .submit_blocking()
        .unwrap_err();
    assert!(
        matches!(&error, DataError::OverlappingAccesses { tensor, .. } if tensor == "t16"),
        "{error:?}"
    );
    let first = scope
        .task(writes(), |views| {
            for mut view in views {
                view[[0]] = 7;
            }
        })
        .submit_blocking()
        .unwrap();
    let reader = scope
        .task(tensors[17].read(..), |view| view.as_slice().unwrap()[2])
        .submit_blocking()
        .unwrap();
    assert_eq!(producers(&scope, reader.id()), [first.id()]);
    first.wait_blocking().unwrap();
    assert_eq!(reader.wait_blocking().unwrap(), 7);
}
