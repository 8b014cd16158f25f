//! Ordered lanes of tasks: taskweave's streams against tokio's usual way to get them
//! (one consumer task per lane draining an `mpsc` channel of boxed jobs).
//!
//! - `stream_chain`: `launches` launches on one stream, each the linear chain's body
//!   (a load and a store of a shared counter, correct only if every launch runs after
//!   the previous one). Compare with `linear_chain`, the same chain through explicit
//!   `TaskId` dependencies: the difference is what a stream costs per launch.
//! - `stream_fanout`: `launches` launches spread over [`FANOUT_STREAMS`] streams, all
//!   streams joined every [`FANOUT_SEGMENT`] launches per stream (taskweave: events
//!   recorded on every stream, joined into stream 0 and forked back out; tokio: a
//!   `Barrier` job on every lane). Each lane counts its launches with a load and a
//!   store, and the first launch after a join checks that every lane has finished the
//!   previous segment.
//!
//! Launching (graph building) is inside the timed region; handles are dropped at
//! once (fire and forget) and the run ends when every lane is idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use taskweave::Runtime;
use taskweave::streams::{Stream, Streams};
use tokio::sync::{Barrier, mpsc};

use crate::run_state::{self, count_chained_task};

const SYSTEM: &str = "taskweave";
const PEER: &str = "tokio";

/// Streams (lanes) of `stream_fanout`.
pub const FANOUT_STREAMS: usize = 8;
/// Launches per stream between two joins in `stream_fanout`.
pub const FANOUT_SEGMENT: usize = 1_024;
/// Jobs buffered per tokio lane, so that the lanes together buffer as many jobs as
/// taskweave's default task window holds tasks (bounded memory on both sides).
const CHANNEL_CAPACITY: usize = 65_536;

/// One lane's launch counter, on its own cache line (lanes run concurrently).
#[repr(align(64))]
struct LaneCount(AtomicU64);

/// Launches finished per lane in the current `stream_fanout` run (the run lock of
/// [`run_state::begin`] makes runs take turns).
static LANES: [LaneCount; FANOUT_STREAMS] =
    [const { LaneCount(AtomicU64::new(0)) }; FANOUT_STREAMS];

fn reset_lanes() {
    for lane in &LANES {
        lane.0.store(0, Relaxed);
    }
}

/// Body of an ordinary launch on lane `lane`: count it (a load and a store, so a
/// launch that overlaps or overtakes another on the same lane loses a count).
fn lane_step(lane: usize) {
    let count = &LANES[lane].0;
    count.store(count.load(Relaxed) + 1, Relaxed);
}

/// Body of the first launch of segment `segment` on lane `lane`: every lane must have
/// finished the previous segment (the join), then count.
fn lane_step_after_join(lane: usize, segment: usize) {
    let joined = (segment * FANOUT_SEGMENT) as u64;
    if LANES.iter().any(|l| l.0.load(Relaxed) < joined) {
        run_state::order_violated();
    }
    lane_step(lane);
}

fn lanes_counted() -> u64 {
    LANES.iter().map(|l| l.0.load(Relaxed)).sum()
}

/// Launches per lane, checked: a whole number of segments.
fn per_lane(launches: usize) -> usize {
    assert!(
        launches.is_multiple_of(FANOUT_STREAMS * FANOUT_SEGMENT),
        "stream_fanout: {launches} launches is not a whole number of {FANOUT_SEGMENT}-launch \
         segments on {FANOUT_STREAMS} streams"
    );
    launches / FANOUT_STREAMS
}

/// `launches` launches on one stream.
pub fn stream_chain_taskweave(rt: &Runtime, launches: usize) -> u64 {
    let run = run_state::begin();
    let streams = Streams::new(rt);
    let stream = streams.create_stream("chain");
    rt.block_on(async {
        for _ in 0..launches {
            drop(stream.task(count_chained_task).submit().await);
        }
        stream.synchronize().await.expect("stream_chain failed");
    });
    run.check(
        "stream_chain",
        SYSTEM,
        launches as u64,
        run_state::counted(),
    )
}

/// `launches` launches over [`FANOUT_STREAMS`] streams, joined every
/// [`FANOUT_SEGMENT`] launches per stream with events.
pub fn stream_fanout_taskweave(rt: &Runtime, launches: usize) -> u64 {
    let per_lane = per_lane(launches);
    let run = run_state::begin();
    reset_lanes();
    let streams = Streams::new(rt);
    let lanes: Vec<Stream> = (0..FANOUT_STREAMS)
        .map(|lane| streams.create_stream(format!("lane-{lane}")))
        .collect();
    rt.block_on(async {
        for segment in 0..per_lane / FANOUT_SEGMENT {
            if segment > 0 {
                // Join every lane into lane 0, then fork lane 0's point back out.
                for lane in &lanes[1..] {
                    lanes[0].wait_event(&lane.record_event());
                }
                let joined = lanes[0].record_event();
                for lane in &lanes[1..] {
                    lane.wait_event(&joined);
                }
            }
            for (lane, stream) in lanes.iter().enumerate() {
                if segment > 0 {
                    drop(
                        stream
                            .task(move || lane_step_after_join(lane, segment))
                            .submit()
                            .await,
                    );
                } else {
                    drop(stream.task(move || lane_step(lane)).submit().await);
                }
                for _ in 1..FANOUT_SEGMENT {
                    drop(stream.task(move || lane_step(lane)).submit().await);
                }
            }
        }
        streams.synchronize().await.expect("stream_fanout failed");
    });
    run.check("stream_fanout", SYSTEM, launches as u64, lanes_counted())
}

/// A job of a tokio lane.
enum Job {
    /// Run a closure.
    Run(Box<dyn FnOnce() + Send>),
    /// Wait until every lane has reached this job (the join).
    Join(Arc<Barrier>),
}

/// A tokio lane: runs its jobs one after another, in order.
async fn drain(mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Run(body) => body(),
            Job::Join(barrier) => {
                barrier.wait().await;
            }
        }
    }
}

/// `launches` jobs on one tokio lane.
pub fn stream_chain_tokio(rt: &tokio::runtime::Runtime, launches: usize) -> u64 {
    let run = run_state::begin();
    rt.block_on(async {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let lane = tokio::spawn(drain(receiver));
        for _ in 0..launches {
            let job = Job::Run(Box::new(count_chained_task));
            if sender.send(job).await.is_err() {
                panic!("stream_chain on tokio: the lane stopped");
            }
        }
        drop(sender);
        lane.await
            .expect("stream_chain on tokio: the lane panicked");
    });
    run.check("stream_chain", PEER, launches as u64, run_state::counted())
}

/// `launches` jobs over [`FANOUT_STREAMS`] tokio lanes, joined every
/// [`FANOUT_SEGMENT`] jobs per lane with a `Barrier` job.
pub fn stream_fanout_tokio(rt: &tokio::runtime::Runtime, launches: usize) -> u64 {
    let per_lane = per_lane(launches);
    let run = run_state::begin();
    reset_lanes();
    rt.block_on(async {
        let (senders, lanes): (Vec<_>, Vec<_>) = (0..FANOUT_STREAMS)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY / FANOUT_STREAMS);
                (sender, tokio::spawn(drain(receiver)))
            })
            .unzip();
        let send = |lane: usize, job: Job| {
            let sender = &senders[lane];
            async move {
                if sender.send(job).await.is_err() {
                    panic!("stream_fanout on tokio: lane {lane} stopped");
                }
            }
        };
        for segment in 0..per_lane / FANOUT_SEGMENT {
            if segment > 0 {
                let barrier = Arc::new(Barrier::new(FANOUT_STREAMS));
                for lane in 0..FANOUT_STREAMS {
                    send(lane, Job::Join(barrier.clone())).await;
                }
            }
            for lane in 0..FANOUT_STREAMS {
                let first: Box<dyn FnOnce() + Send> = if segment > 0 {
                    Box::new(move || lane_step_after_join(lane, segment))
                } else {
                    Box::new(move || lane_step(lane))
                };
                send(lane, Job::Run(first)).await;
                for _ in 1..FANOUT_SEGMENT {
                    send(lane, Job::Run(Box::new(move || lane_step(lane)))).await;
                }
            }
        }
        drop(senders);
        for lane in lanes {
            lane.await.expect("stream_fanout on tokio: a lane panicked");
        }
    });
    run.check("stream_fanout", PEER, launches as u64, lanes_counted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_counts_what_it_launched() {
        let rt = crate::on_taskweave::runtime(2);
        assert_eq!(stream_chain_taskweave(&rt, 5_000), 5_000);
        assert_eq!(stream_fanout_taskweave(&rt, 3 * 8 * 1_024), 3 * 8 * 1_024);
        let tokio = crate::on_tokio::runtime(2);
        assert_eq!(stream_chain_tokio(&tokio, 5_000), 5_000);
        assert_eq!(stream_fanout_tokio(&tokio, 3 * 8 * 1_024), 3 * 8 * 1_024);
    }
}
