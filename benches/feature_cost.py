#!/usr/bin/env python3
"""What the `trace` feature costs while it is compiled in but not recording.

DESIGN.md §7 and issue 6 promise that observability costs nothing when it is
switched off. This script checks it for trace recording: it builds the `report`
binary twice — with the benches crate's default features (taskweave built with
`trace`, recording off: each hook is one relaxed load) and with
`--no-default-features` (no trace code at all: the hooks are zero-sized types) —
then runs the `linear_chain` workload (the cheapest task, so the hooks weigh most)
in both builds, alternating (ABBA) so that a change in machine load hits both
alike, and prints the two times and their ratio beside the spread of the
baseline's own runs.

    benches/feature_cost.py [--quick] [--runs N] [--rounds R] [--threads T]
                            [--size S] [--no-build]

--quick: 2^16 tasks, 4 runs (about a minute with the builds on 2 cores). The
binaries are kept as target/feature-cost/report-{with,without}-trace; the build
with the feature is done last, so target/release/report stays the usual one.
Informational, like the report's goals: the exit status is 0 unless a build or a
run fails.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from child import run_child

WORKLOAD = "linear_chain"
ROOT = Path(__file__).resolve().parent.parent


def target_dir() -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def build(features: list[str], target: Path, name: str) -> Path:
    cmd = ["cargo", "build", "--release", "-p", "taskweave-benches", "--bin", "report"]
    print("feature_cost: " + " ".join(cmd + features), file=sys.stderr, flush=True)
    subprocess.run(cmd + features, cwd=ROOT, check=True)
    out = target / "feature-cost" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target / "release" / "report", out)
    return out


def run(binary: Path, args: argparse.Namespace) -> float:
    """One child process of the report: the median ns/task of `rounds` rounds."""
    return run_child(binary, WORKLOAD, args.size, args.rounds, args.threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int)
    parser.add_argument("--no-build", action="store_true",
                        help="reuse the binaries in target/feature-cost")
    args = parser.parse_args()
    args.runs = args.runs or (4 if args.quick else 8)
    args.size = args.size or (1 << 16 if args.quick else 1 << 20)

    target = target_dir()
    variants = {
        "without_trace": (["--no-default-features"], "report-without-trace"),
        "with_trace": ([], "report-with-trace"),
    }
    binaries = {}
    for variant, (features, name) in variants.items():
        binaries[variant] = (
            target / "feature-cost" / name if args.no_build else build(features, target, name)
        )

    samples = {variant: [] for variant in binaries}
    order = list(binaries)
    for i in range(args.runs):
        for variant in order if i % 2 == 0 else reversed(order):
            samples[variant].append(run(binaries[variant], args))

    print(
        f"feature_cost: {WORKLOAD} on taskweave, {args.threads} threads, {args.size} tasks, "
        f"{args.runs} alternating runs of {args.rounds} rounds (ns per task; median of rounds)"
    )
    for variant, values in samples.items():
        listed = " ".join(f"{v:.1f}" for v in values)
        print(
            f"variant={variant:<14} median={statistics.median(values):.1f} "
            f"min={min(values):.1f} runs=[{listed}]"
        )
    with_, without = samples["with_trace"], samples["without_trace"]
    median_ratio = statistics.median(with_) / statistics.median(without)
    min_ratio = min(with_) / min(without)
    noise = statistics.median(without) / min(without)
    print(
        f"with_trace/without_trace: median {median_ratio:.3f}, min {min_ratio:.3f}; "
        f"noise (without_trace median/min) {noise:.3f}"
    )
    verdict = "within noise" if min_ratio <= noise and median_ratio <= noise else "ABOVE noise"
    print(f"goal: recorder compiled in but off costs nothing measurable: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
