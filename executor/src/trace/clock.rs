//! The trace's clock: a raw stamp per event, converted to nanoseconds only when the
//! trace is read.
//!
//! On x86_64 a stamp is the time-stamp counter (`rdtsc`, about 10 ns against about 25
//! for `Instant::now` and its arithmetic), used only where it is a clock: the CPU says
//! the counter is invariant and, on Linux, the kernel itself keeps time with it (so it
//! has checked that all cores agree). Elsewhere a stamp is nanoseconds since the
//! runtime's epoch from `Instant`.
//!
//! Stamps become nanoseconds by linear interpolation between two anchors — a stamp
//! and an `Instant` read together — taken when recording starts and when it stops:
//! inside that span the error is the anchors' own (tens of nanoseconds), whatever
//! the counter's frequency.

use std::sync::OnceLock;
use std::time::Instant;

/// A stamp read together with the nanoseconds since the epoch it corresponds to.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Anchor {
    stamp: u64,
    ns: u64,
}

/// Where stamps come from.
pub(crate) struct Clock {
    epoch: Instant,
    counter: bool,
    /// Read at construction: the baseline for [`Clock::elapsed_ns`].
    created: Anchor,
}

impl Clock {
    pub(crate) fn new(epoch: Instant) -> Self {
        let mut clock = Clock {
            epoch,
            counter: counter_is_a_clock(),
            created: Anchor::default(),
        };
        clock.created = clock.anchor();
        clock
    }

    /// The current stamp (below 2^63: the counter would take a century to reach it).
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        if self.counter {
            read_counter()
        } else {
            self.ns()
        }
    }

    /// The current stamp, read only after every earlier instruction has completed
    /// (`lfence; rdtsc`, as Linux's `rdtsc_ordered`): for a stamp that must not
    /// precede what the thread has just observed: a poll's start, which the trace
    /// shows after its dependencies' ends and its own submission and ready time. A
    /// plain [`Clock::stamp`] (the other events: submission, ready, a poll's end) may
    /// be read a little early — by as much as the CPU runs ahead of a pending load,
    /// tens of nanoseconds — which keeps each before the starts that follow it; the
    /// fence costs about as much as the read, so it is spent only where it matters.
    #[inline]
    pub(crate) fn stamp_ordered(&self) -> u64 {
        if self.counter {
            read_counter_ordered()
        } else {
            self.ns()
        }
    }

    fn ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A stamp and the time it stands for, read back to back: the stamp is the
    /// midpoint of two reads around the `Instant`, the tightest pair of a few tries
    /// (a thread preempted between the reads would make a loose one).
    pub(crate) fn anchor(&self) -> Anchor {
        if !self.counter {
            let ns = self.ns();
            return Anchor { stamp: ns, ns };
        }
        let mut best: Option<(u64, Anchor)> = None;
        for _ in 0..4 {
            let before = read_counter_ordered();
            let ns = self.ns();
            let after = read_counter_ordered();
            let width = after.saturating_sub(before);
            if best.is_none_or(|(narrowest, _)| width < narrowest) {
                let stamp = before + width / 2;
                best = Some((width, Anchor { stamp, ns }));
            }
        }
        best.expect("four tries").1
    }

    /// Nanoseconds elapsed since `stamp`, now (one `Instant` read: for sampled
    /// statistics, not for the trace).
    pub(crate) fn elapsed_ns(&self, stamp: u64) -> u64 {
        let now = self.anchor();
        let calibration = Calibration::between(self.created, now, self.counter);
        calibration
            .to_ns(now.stamp)
            .saturating_sub(calibration.to_ns(stamp))
    }

    /// The conversion of stamps recorded between `start` and `stop`.
    pub(crate) fn calibrate(&self, start: Anchor, stop: Anchor) -> Calibration {
        Calibration::between(start, stop, self.counter)
    }
}

/// Converts stamps to nanoseconds since the runtime's epoch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Calibration {
    origin: Anchor,
    ns_per_stamp: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            origin: Anchor::default(),
            ns_per_stamp: 1.0,
        }
    }
}

impl Calibration {
    fn between(start: Anchor, stop: Anchor, counter: bool) -> Self {
        let stamps = stop.stamp.saturating_sub(start.stamp);
        let ns_per_stamp = if !counter {
            1.0
        } else if stamps == 0 {
            0.0
        } else {
            stop.ns.saturating_sub(start.ns) as f64 / stamps as f64
        };
        Calibration {
            origin: start,
            ns_per_stamp,
        }
    }

    /// Nanoseconds since the epoch at `stamp`.
    pub(crate) fn to_ns(self, stamp: u64) -> u64 {
        let since_origin = i128::from(stamp) - i128::from(self.origin.stamp);
        let ns = self.origin.ns as f64 + since_origin as f64 * self.ns_per_stamp;
        ns.round().max(0.0) as u64
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_counter() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64 (every x86_64 CPU has it); it is
    // only `unsafe` in older toolchains' signatures.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_counter_ordered() -> u64 {
    // SAFETY: `lfence` (SSE2, part of x86_64) and `rdtsc` have no preconditions; they
    // are only `unsafe` in older toolchains' signatures.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_counter() -> u64 {
    unreachable!("the counter is only used on x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_counter_ordered() -> u64 {
    unreachable!("the counter is only used on x86_64")
}

/// Whether the time-stamp counter can stand in for `Instant` (checked once).
fn counter_is_a_clock() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64") && invariant_counter() && kernel_trusts_counter()
    })
}

/// CPUID 0x8000_0007 EDX bit 8: the counter ticks at a constant rate in every
/// power state.
#[cfg(target_arch = "x86_64")]
fn invariant_counter() -> bool {
    use core::arch::x86_64::__cpuid;
    // SAFETY: `cpuid` exists on every x86_64 CPU and only reads identification
    // registers; it is only `unsafe` in older toolchains' signatures.
    #[allow(unused_unsafe)]
    let (max_leaf, power) = unsafe {
        let max_leaf = __cpuid(0x8000_0000).eax;
        (max_leaf, __cpuid(0x8000_0007.min(max_leaf)).edx)
    };
    max_leaf >= 0x8000_0007 && power & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_counter() -> bool {
    false
}

/// On Linux: the kernel's clocksource is `tsc`, so it found the counters of all cores
/// in step. Elsewhere the invariant bit has to do.
fn kernel_trusts_counter() -> bool {
    if cfg!(target_os = "linux") {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps_convert_to_the_instants_they_were_read_at() {
        let epoch = Instant::now();
        let clock = Clock::new(epoch);
        let ns = || epoch.elapsed().as_nanos() as u64;
        let start = clock.anchor();
        let (before_first, first, after_first) = (ns(), clock.stamp_ordered(), ns());
        std::thread::sleep(Duration::from_millis(20));
        let (before_second, second, after_second) = (ns(), clock.stamp_ordered(), ns());
        std::thread::sleep(Duration::from_millis(5));
        let calibration = clock.calibrate(start, clock.anchor());
        let (a, b) = (calibration.to_ns(first), calibration.to_ns(second));
        // Each conversion lands between the `Instant`s read around its stamp, give or
        // take the anchors' own error (2 µs: generous).
        let slack = 2_000;
        assert!(
            before_first.saturating_sub(slack) <= a && a <= after_first + slack,
            "{before_first} <= {a} <= {after_first}"
        );
        assert!(
            before_second.saturating_sub(slack) <= b && b <= after_second + slack,
            "{before_second} <= {b} <= {after_second}"
        );
        assert!(b - a >= 20_000_000, "the sleep is in the difference");
    }

    #[test]
    fn elapsed_counts_from_a_stamp() {
        let clock = Clock::new(Instant::now());
        let stamp = clock.stamp();
        std::thread::sleep(Duration::from_millis(10));
        let elapsed = clock.elapsed_ns(stamp);
        assert!(
            (9_000_000..5_000_000_000).contains(&elapsed),
            "{elapsed} ns"
        );
    }
}
