"""One child run of the `report` binary, shared by the benchmark scripts here."""

import subprocess


def run_child(binary, workload, size, rounds, threads, timeout=None):
    """Runs `binary --child WORKLOAD taskweave ...` and returns its ns per task (the
    median of `rounds` rounds). Raises on a failed, hung (past `timeout` seconds) or
    unparsable run."""
    cmd = [
        str(binary),
        "--child", workload, "taskweave",
        "--size", str(size),
        "--rounds", str(rounds),
        "--threads", str(threads),
    ]
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, timeout=timeout
    ).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return float(fields["ns_per_task"])
