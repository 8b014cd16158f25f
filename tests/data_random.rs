//! Random programs: tasks with random accesses (read, write, read-write) on random
//! regions (whole tensors, 1-d ranges, n-d tiles) of tensors of rank 1 to 4, in
//! randomly nested scopes, with host reads and writes in between. Each program runs
//! on the runtime and sequentially; every task's result, every host read and the
//! final contents must agree. Many seeds, two window sizes (one small enough for
//! back-pressure), sync and async bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use taskweave::data::{Read, ReadWrite, Write};
use taskweave::{Access, Region, Runtime, Scope, Tensor};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const SHAPES: [&[usize]; 4] = [&[23], &[4, 6], &[2, 3, 4], &[2, 2, 3, 2]];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Read,
    Write,
    ReadWrite,
}

#[derive(Clone, Debug)]
struct Spec {
    tensor: usize,
    region: Region,
    /// Flat indices of the region, in row-major order of the region.
    elements: Vec<usize>,
    mode: Mode,
    constant: i64,
}

#[derive(Debug)]
enum Item {
    Task {
        accesses: Vec<Spec>,
        asynchronous: bool,
        after: Option<usize>,
    },
    HostRead(Spec),
    HostWrite(Spec, Vec<i64>),
    Block(Vec<Item>),
}

fn random_region(rng: &mut Rng, shape: &[usize]) -> (Region, Vec<usize>) {
    let n: usize = shape.iter().product();
    match rng.below(10) {
        0 => (Region::all(), (0..n).collect()),
        1..=3 => {
            let start = rng.below(n);
            let end = (start + 1 + rng.below(12)).min(n);
            (Region::range(start..end), (start..end).collect())
        }
        _ => {
            let mut offset = [0usize; 4];
            let mut extent = [1usize; 4];
            for d in 0..shape.len() {
                offset[d] = rng.below(shape[d]);
                extent[d] = 1 + rng.below(shape[d] - offset[d]);
            }
            let region = match shape.len() {
                1 => Region::tile([offset[0]], [extent[0]]),
                2 => Region::tile([offset[0], offset[1]], [extent[0], extent[1]]),
                3 => Region::tile(
                    [offset[0], offset[1], offset[2]],
                    [extent[0], extent[1], extent[2]],
                ),
                _ => Region::tile(offset, extent),
            };
            // Row-major enumeration of the tile.
            let mut strides = vec![1usize; shape.len()];
            for d in (0..shape.len() - 1).rev() {
                strides[d] = strides[d + 1] * shape[d + 1];
            }
            let mut elements = vec![0usize];
            for d in 0..shape.len() {
                let stride = strides[d];
                elements = elements
                    .iter()
                    .flat_map(|base| {
                        (offset[d]..offset[d] + extent[d]).map(move |i| base + i * stride)
                    })
                    .collect();
            }
            (region, elements)
        }
    }
}

fn random_spec(rng: &mut Rng, mode: Mode) -> Spec {
    let tensor = rng.below(SHAPES.len());
    let (region, elements) = random_region(rng, SHAPES[tensor]);
    Spec {
        tensor,
        region,
        elements,
        mode,
        constant: rng.below(1000) as i64,
    }
}

fn random_block(rng: &mut Rng, depth: usize, tasks: &mut usize) -> Vec<Item> {
    let len = if depth == 0 {
        20 + rng.below(40)
    } else {
        1 + rng.below(14)
    };
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let roll = rng.below(100);
        if roll < 8 && depth < 2 {
            items.push(Item::Block(random_block(rng, depth + 1, tasks)));
        } else if roll < 14 {
            items.push(Item::HostRead(random_spec(rng, Mode::Read)));
        } else if roll < 18 {
            let spec = random_spec(rng, Mode::Write);
            let data = (0..spec.elements.len())
                .map(|_| rng.below(50) as i64)
                .collect();
            items.push(Item::HostWrite(spec, data));
        } else {
            let mut accesses: Vec<Spec> = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let mode = [Mode::Read, Mode::Write, Mode::ReadWrite][rng.below(3)];
                let spec = random_spec(rng, mode);
                // Keep the task valid: no region twice, no write overlapping another
                // access of the task.
                let clashes = accesses.iter().any(|other| {
                    other.tensor == spec.tensor
                        && (other.region == spec.region
                            || ((other.mode != Mode::Read || spec.mode != Mode::Read)
                                && other.elements.iter().any(|e| spec.elements.contains(e))))
                });
                if !clashes {
                    accesses.push(spec);
                }
            }
            let after = (*tasks > 0 && rng.chance(20)).then(|| rng.below(*tasks));
            *tasks += 1;
            items.push(Item::Task {
                accesses,
                asynchronous: rng.chance(25),
                after,
            });
        }
    }
    items
}

/// What a task does, given the values it reads: returns the checksum `s` of every
/// value read, writes `constant + position + s` to `Write` regions and
/// `3 * old + constant + position + s` to `ReadWrite` regions.
fn checksum(reads: impl Iterator<Item = i64>) -> i64 {
    reads.fold(0i64, |s, x| s.wrapping_mul(31).wrapping_add(x))
}

/// The sequential execution.
struct Reference {
    tensors: Vec<Vec<i64>>,
    task_results: Vec<i64>,
    host_reads: Vec<Vec<i64>>,
}

impl Reference {
    fn run(&mut self, items: &[Item]) {
        for item in items {
            match item {
                Item::Block(inner) => self.run(inner),
                Item::HostRead(spec) => {
                    let t = &self.tensors[spec.tensor];
                    self.host_reads
                        .push(spec.elements.iter().map(|&e| t[e]).collect());
                }
                Item::HostWrite(spec, data) => {
                    for (&e, &v) in spec.elements.iter().zip(data) {
                        self.tensors[spec.tensor][e] = v;
                    }
                }
                Item::Task { accesses, .. } => {
                    let mut reads = Vec::new();
                    for mode in [Mode::Read, Mode::ReadWrite] {
                        for spec in accesses.iter().filter(|a| a.mode == mode) {
                            reads.extend(
                                spec.elements.iter().map(|&e| self.tensors[spec.tensor][e]),
                            );
                        }
                    }
                    let s = checksum(reads.into_iter());
                    for spec in accesses.iter().filter(|a| a.mode != Mode::Read) {
                        for (p, &e) in spec.elements.iter().enumerate() {
                            let x = &mut self.tensors[spec.tensor][e];
                            let base = if spec.mode == Mode::Write {
                                0
                            } else {
                                x.wrapping_mul(3)
                            };
                            *x = base.wrapping_add(spec.constant + p as i64).wrapping_add(s);
                        }
                    }
                    self.task_results.push(s);
                }
            }
        }
    }
}

/// A future that is pending once (and wakes itself).
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

type Views<'v> = (
    Vec<taskweave::View<'v, i64>>,
    Vec<taskweave::ViewMut<'v, i64>>,
    Vec<taskweave::ViewMut<'v, i64>>,
);

/// The task body on views (the same computation as `Reference`).
fn body(
    (reads, mut writes, mut read_writes): Views<'_>,
    write_constants: &[i64],
    rw_constants: &[i64],
) -> i64 {
    let mut values = Vec::new();
    for view in &reads {
        values.extend(view.to_vec());
    }
    for view in &read_writes {
        values.extend(view.to_vec());
    }
    let s = checksum(values.into_iter());
    for (view, &c) in writes.iter_mut().zip(write_constants) {
        let mut p = 0i64;
        for row in view.rows_mut() {
            for x in row {
                *x = (c + p).wrapping_add(s);
                p += 1;
            }
        }
    }
    for (view, &c) in read_writes.iter_mut().zip(rw_constants) {
        let mut p = 0i64;
        for row in view.rows_mut() {
            for x in row {
                *x = x.wrapping_mul(3).wrapping_add(c + p).wrapping_add(s);
                p += 1;
            }
        }
    }
    s
}

struct Run<'a, 's> {
    tensors: &'a [Tensor<'s, i64>],
    /// Each task stores its result here (holding every handle would hold every
    /// slot, and the small window would fill).
    results: Arc<Vec<AtomicI64>>,
    ids: Vec<taskweave::TaskId>,
    host_reads: Vec<Vec<i64>>,
}

impl Run<'_, '_> {
    fn run(&mut self, scope: &Scope<'_>, items: &[Item]) {
        for item in items {
            match item {
                Item::Block(inner) => {
                    let nested = scope.scope("block").unwrap();
                    self.run(&nested, inner);
                }
                Item::HostRead(spec) => {
                    let values = scope
                        .read_blocking(&self.tensors[spec.tensor], spec.region)
                        .unwrap();
                    self.host_reads.push(values);
                }
                Item::HostWrite(spec, data) => {
                    scope
                        .write_blocking(&self.tensors[spec.tensor], spec.region, data.clone())
                        .unwrap();
                }
                Item::Task {
                    accesses,
                    asynchronous,
                    after,
                } => {
                    let of = |mode| accesses.iter().filter(move |a: &&Spec| a.mode == mode);
                    let reads: Vec<Access<'_, i64, Read>> = of(Mode::Read)
                        .map(|a| self.tensors[a.tensor].read(a.region))
                        .collect();
                    let writes: Vec<Access<'_, i64, Write>> = of(Mode::Write)
                        .map(|a| self.tensors[a.tensor].write(a.region))
                        .collect();
                    let read_writes: Vec<Access<'_, i64, ReadWrite>> = of(Mode::ReadWrite)
                        .map(|a| self.tensors[a.tensor].read_write(a.region))
                        .collect();
                    let wc: Vec<i64> = of(Mode::Write).map(|a| a.constant).collect();
                    let rwc: Vec<i64> = of(Mode::ReadWrite).map(|a| a.constant).collect();
                    let explicit = after.map(|i| self.ids[i]);
                    let declared = (reads, writes, read_writes);
                    let (results, index) = (self.results.clone(), self.ids.len());
                    let store = move |s| results[index].store(s, Ordering::Relaxed);
                    let task = if *asynchronous {
                        scope
                            .task_async(declared, move |views| {
                                Box::pin(async move {
                                    YieldOnce(false).await;
                                    store(body(views, &wc, &rwc));
                                })
                            })
                            .after(explicit)
                            .submit_blocking()
                    } else {
                        scope
                            .task(declared, move |views| store(body(views, &wc, &rwc)))
                            .after(explicit)
                            .submit_blocking()
                    }
                    .unwrap();
                    self.ids.push(task.id());
                }
            }
        }
    }

    /// Waits for every task and returns their results in submission order.
    fn results(&self, rt: &Runtime) -> Vec<i64> {
        rt.synchronize_blocking();
        self.results[..self.ids.len()]
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .collect()
    }
}

fn check_seed(rt: &Runtime, seed: u64) {
    let mut rng = Rng(seed);
    let mut task_count = 0;
    let program = random_block(&mut rng, 0, &mut task_count);
    let initial: Vec<Vec<i64>> = SHAPES
        .iter()
        .map(|s| {
            (0..s.iter().product::<usize>())
                .map(|_| rng.below(100) as i64)
                .collect()
        })
        .collect();
    let mut reference = Reference {
        tensors: initial.clone(),
        task_results: Vec::new(),
        host_reads: Vec::new(),
    };
    reference.run(&program);

    assert!(
        task_count > 10,
        "seed {seed}: a program of {task_count} tasks"
    );
    let root = Scope::new(rt, format!("seed {seed}"));
    let tensors: Vec<Tensor<'_, i64>> = SHAPES
        .iter()
        .zip(&initial)
        .enumerate()
        .map(|(i, (shape, data))| root.from_vec(format!("t{i}"), shape, data.clone()).unwrap())
        .collect();
    let mut run = Run {
        tensors: &tensors,
        results: Arc::new((0..task_count).map(|_| AtomicI64::new(0)).collect()),
        ids: Vec::new(),
        host_reads: Vec::new(),
    };
    run.run(&root, &program);
    let results = run.results(rt);
    assert_eq!(results, reference.task_results, "seed {seed}: task results");
    assert_eq!(
        run.host_reads, reference.host_reads,
        "seed {seed}: host reads"
    );
    for (i, tensor) in tensors.iter().enumerate() {
        assert_eq!(
            root.read_blocking(tensor, ..).unwrap(),
            reference.tensors[i],
            "seed {seed}: final contents of t{i}\nprogram: {program:#?}"
        );
    }
}

#[test]
fn random_programs_match_their_sequential_execution() {
    let small = Runtime::builder().workers(3).window(128).build();
    let large = Runtime::builder().workers(2).build();
    for seed in 0..400 {
        check_seed(if seed % 2 == 0 { &small } else { &large }, seed);
    }
}

#[test]
fn long_random_programs_exercise_map_cleanup() {
    // Long flat programs: thousands of entries and readers pass through the maps.
    let rt = Runtime::builder().workers(2).window(4096).build();
    for seed in 1000..1010 {
        let mut rng = Rng(seed);
        let mut tasks = 0;
        let mut program = Vec::new();
        while tasks < 1500 {
            program.push(Item::Block(random_block(&mut rng, 1, &mut tasks)));
        }
        let initial: Vec<Vec<i64>> = SHAPES.iter().map(|s| vec![1; s.iter().product()]).collect();
        let mut reference = Reference {
            tensors: initial.clone(),
            task_results: Vec::new(),
            host_reads: Vec::new(),
        };
        reference.run(&program);
        let root = Scope::new(&rt, "long");
        let tensors: Vec<Tensor<'_, i64>> = SHAPES
            .iter()
            .zip(&initial)
            .map(|(shape, data)| root.from_vec("t", shape, data.clone()).unwrap())
            .collect();
        let mut run = Run {
            tensors: &tensors,
            results: Arc::new((0..tasks).map(|_| AtomicI64::new(0)).collect()),
            ids: Vec::new(),
            host_reads: Vec::new(),
        };
        run.run(&root, &program);
        let results = run.results(&rt);
        assert_eq!(results, reference.task_results, "seed {seed}");
        assert_eq!(run.host_reads, reference.host_reads, "seed {seed}");
        for (i, tensor) in tensors.iter().enumerate() {
            assert_eq!(
                root.read_blocking(tensor, ..).unwrap(),
                reference.tensors[i],
                "seed {seed}"
            );
        }
    }
}
