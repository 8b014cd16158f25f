#!/usr/bin/env python3
"""Compares `report` binaries (or worker counts) on one workload, in many rotated rounds.

On the shared 2-core VM the same binary swings between about 210 and 700 ns per task
in `submit_cost_5`, in phases that last seconds to minutes. A difference of a few
percent only shows in many rounds, each running every variant once, back to back,
in an order that rotates from round to round (so that no variant always runs first
after a phase change). Each variant is a binary and a worker count:

    benches/rotate.py WORKLOAD BIN[:THREADS] BIN[:THREADS] ... [--rounds N]
                      [--size S] [--timeout SECS]

For example, this session's "one worker instead of two":

    cp target/release/report /tmp/head
    benches/rotate.py submit_cost_5 /tmp/head:2 /tmp/head:1 --rounds 100

It prints, per variant: the median and the minimum ns per task, and the median over
rounds of its ratio to the first variant in the same round, with the number of
rounds in which it was faster. A round in which a run fails or hangs is left out
(and said). Each run is `BIN --child WORKLOAD taskweave --size S --rounds 1
--threads T`: one measured round in a fresh process.
"""

import argparse
import os
import statistics
import subprocess
import sys

from child import run_child


def variant(spec: str) -> tuple[str, int]:
    binary, _, threads = spec.partition(":")
    if threads and not (threads.isdigit() and int(threads) > 0):
        raise SystemExit(f"rotate: {spec}: the worker count after ':' must be a positive integer")
    return binary, int(threads) if threads else 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload")
    parser.add_argument("variants", nargs="+", metavar="BIN[:THREADS]")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    specs = args.variants
    parsed = [variant(spec) for spec in specs]
    for binary, _ in parsed:
        if not os.access(binary, os.X_OK):
            print(f"rotate: {binary}: not an executable file", file=sys.stderr)
            return 2

    rows = []
    for i in range(args.rounds):
        row = {}
        for k in range(len(specs)):
            at = (i + k) % len(specs)
            binary, threads = parsed[at]
            try:
                row[specs[at]] = run_child(
                    binary, args.workload, args.size, 1, threads, timeout=args.timeout
                )
            except (subprocess.SubprocessError, KeyError, ValueError) as error:
                print(f"rotate: round {i + 1} left out: {specs[at]}: {error}", file=sys.stderr)
                row = None
                break
        if row is not None:
            rows.append(row)
    if not rows:
        print("rotate: no round completed", file=sys.stderr)
        return 1

    base = specs[0]
    print(
        f"rotate: {args.workload}, {args.size} tasks, {len(rows)} of {args.rounds} "
        f"rounds (ns per task; ratio to {base} in the same round)"
    )
    for spec in specs:
        values = [row[spec] for row in rows]
        ratios = [row[spec] / row[base] for row in rows]
        faster = sum(r < 1 for r in ratios)
        print(
            f"{spec}: median {statistics.median(values):.1f} min {min(values):.1f} "
            f"ratio median {statistics.median(ratios):.3f} "
            f"({faster} of {len(rows)} rounds faster)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
