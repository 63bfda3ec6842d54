"""Scaling of `trialkit validate` and `trialkit run --no-report` with the number of participants.

Builds SIMULATED trials shaped like the bundled example (3 outcomes x 4 visits, 10% dropout, 1%
missing values) with `trialkit simulate` at 1,000, 10,000 and 100,000 participants (and 1,000,000
with ``--full`` or ``TRIALKIT_SCALE_FULL=1``), then times each command as a subprocess and measures
its peak resident memory. Each command runs under a fresh Python wrapper, whose
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is then the peak RSS of that one command (no
``/usr/bin/time`` needed). The machine may be shared: with ``--repeats N`` the best of N runs is
shown.

Prints the table (n, simulate s, validate s, run s and CPU s, peak RSS) with the targets of issue 17
(100,000 participants: run at most 60 s and 4 GiB) and, as the peer comparison, the 10k -> 100k
time ratio of `run` (linear cost: about 10x). Run: ``.venv/bin/python benchmarks/scale.py``
(about 3 minutes; ``--full`` adds the million, about 15 more).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "data" / "studies" / "example-precision-release.yaml"
TRIALKIT = Path(sys.executable).parent / "trialkit"
TARGET_N, TARGET_SECONDS, TARGET_GIB = 100_000, 60.0, 4.0

# The wrapper runs one command and prints its wall time and peak RSS (KiB on Linux) as the last line.
WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - start
sys.stderr.write(code.stderr[-2000:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{code.returncode} {seconds:.3f} {usage.ru_utime + usage.ru_stime:.3f} {usage.ru_maxrss}")
"""


def plan_text(n: int, fmt: str) -> str:
    """The example plan with n participants, its data beside it (measurements as a Parquet directory)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"n_participants: \d+", f"n_participants: {n}", text)
    text = text.replace("id: example-precision-release", f"id: scale-{n}")
    text = text.replace("path: ../examples/precision-release-sim/participants.csv", "path: participants.csv")
    measurements = "measurements.parquet" if fmt == "parquet" else "measurements.csv"
    return text.replace("path: ../examples/precision-release-sim/measurements.csv", f"path: {measurements}")


def measure(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (GiB) of one command; exits with its message if it fails."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], cwd=cwd, capture_output=True, text=True)
    code, seconds, cpu, kib = done.stdout.split()[-4:]
    if code != "0":
        sys.exit(f"`{' '.join(command)}` failed (exit {code}) in {cwd}:\n{done.stderr}")
    return float(seconds), float(cpu), int(kib) / 2**20


def best(command: list[str], cwd: Path, repeats: int) -> tuple[float, float, float]:
    runs = [measure(command, cwd) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also 1,000,000 participants")
    parser.add_argument("--sizes", type=int, nargs="*", help="participant counts (overrides the default)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per command; the best time is shown")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="measurements file format")
    parser.add_argument("--keep", type=Path, help="build the trials in this folder and keep them")
    args = parser.parse_args()
    sizes = args.sizes or [1_000, 10_000, 100_000]
    if not args.sizes and (args.full or os.environ.get("TRIALKIT_SCALE_FULL") == "1"):
        sizes.append(1_000_000)

    with tempfile.TemporaryDirectory(prefix="trialkit-scale-") as temp:
        root = args.keep or Path(temp)
        rows = []
        for n in sizes:
            folder = root / f"n{n}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "plan.yaml").write_text(plan_text(n, args.format), encoding="utf-8")
            started = time.perf_counter()
            simulate_s, _cpu, _gib = measure([str(TRIALKIT), "simulate", "plan.yaml", "--seed", "1"], folder)
            validate_s, _cpu, validate_gib = best([str(TRIALKIT), "validate", "plan.yaml"], folder, args.repeats)
            run_s, run_cpu, run_gib = best([str(TRIALKIT), "run", "plan.yaml", "--no-report", "--out", "out"], folder, args.repeats)
            rows.append((n, simulate_s, validate_s, validate_gib, run_s, run_cpu, run_gib))
            print(f"  n = {n:>9,}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    print(f"trialkit at scale (3 outcomes x 4 visits, measurements as {args.format}; best of {args.repeats})")
    print(f"{'participants':>12} {'simulate s':>11} {'validate s':>11} {'validate GiB':>13} {'run s':>8} "
          f"{'run CPU s':>10} {'run GiB':>8}")
    for n, simulate_s, validate_s, validate_gib, run_s, run_cpu, run_gib in rows:
        print(f"{n:>12,} {simulate_s:>11.1f} {validate_s:>11.1f} {validate_gib:>13.2f} {run_s:>8.1f} "
              f"{run_cpu:>10.1f} {run_gib:>8.2f}")
    timed = {n: run_s for n, _s, _v, _g, run_s, _c, _rg in rows}
    if 10_000 in timed and 100_000 in timed:
        print(f"peer (linear cost): run time 100k / 10k = {timed[100_000] / timed[10_000]:.1f}x (ideal 10x)")
    if 100_000 in timed and 1_000_000 in timed:
        print(f"run time 1M / 100k = {timed[1_000_000] / timed[100_000]:.1f}x (ideal 10x)")
    for n, _s, _v, _g, run_s, _c, run_gib in rows:
        if n == TARGET_N:
            met = run_s <= TARGET_SECONDS and run_gib <= TARGET_GIB
            print(f"target at {TARGET_N:,}: run <= {TARGET_SECONDS:.0f} s and <= {TARGET_GIB:.0f} GiB peak RSS: "
                  f"{run_s:.1f} s, {run_gib:.2f} GiB -> {'met' if met else 'NOT met'}")
            if not met:
                sys.exit(1)  # a missed target fails the run, so a script timing it sees it


if __name__ == "__main__":
    main()
