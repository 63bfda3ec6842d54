"""Benchmark: validating a 5M-row long measurements frame, factorised checks vs plain pandera.

The frame is what ``trialkit`` holds after reading a long CSV (every cell text, Arrow-backed
``str`` columns): 625,000 participants x 2 outcomes x 4 visits = 5,000,000 rows, with one planted
failure of every rule (a value that is not a number, an empty required cell, a visit and an
outcome not in the plan, a value outside its outcome's range, a repeated participant x outcome x
visit, an unlisted participant, a missing baseline) and a missing value (allowed).

Ours: :func:`analysis.checks.contracts.validate_measurements` (the contract and the plan's checks,
each on factorised codes). Peer: the same checks as plain pandera schemas validated with
``lazy=True`` (:func:`analysis.checks.plain.plain_measurement_failures`: the contract, then the
plan's rules on the typed frame, then the baselines on the participants). Both are timed in this
run, best of 3 (wall-clock and CPU time: on a shared machine the wall time also counts waiting
for a core), and must report the same failures. Memory: the growth of the resident set
(``VmHWM`` after resetting it, Linux) while ours runs, and the peak of NumPy/Python allocations
(``tracemalloc``), against the frame's own size (``memory_usage(deep=True)``).

Targets: ours at most 1.0 s, at least 4x faster than the peer, extra memory at most the frame's
size.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.checks.contracts import validate_measurements
from analysis.checks.plain import plain_measurement_failures
from analysis.core.errors import FAILURE_COLUMNS
from analysis.plan.documents import parse_plan
from analysis.sources.files import RawTable

PLAN = """\
study: {id: bench, title: Validation benchmark}
seed: 1
data:
  participants: {path: participants.csv}
  measurements: {path: measurements.csv}
arms: {treatment: {label: Drug, codes: [T]}, control: {label: Placebo, codes: [C]}}
visits:
  baseline: base
  followup: [{label: w4, week: 4}, {label: w8, week: 8}, {label: w12, week: 12}]
  primary: w12
outcomes:
- {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
- {name: function, label: Function, unit: points, range: [0, 100], better: higher}
"""
PEOPLE, VISITS, OUTCOMES, SEED, REPEATS = 625_000, ["base", "w4", "w8", "w12"], ["pain", "function"], 20261202, 3
TARGET_SECONDS, TARGET_RATIO = 1.0, 4.0


def build_frame(people: int = PEOPLE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long frame (rows in participant order, as a long CSV is usually written) and the
    typed participants, with one planted failure of every rule."""
    rng = np.random.default_rng(SEED)
    per = len(VISITS) * len(OUTCOMES)
    n = people * per
    ids = np.char.add("P", np.char.zfill(np.arange(people).astype(str), 7))
    high = np.tile([10.0, 100.0], n // 2)
    values = np.round(rng.uniform(0, 1, n) * high, 1).astype(str)
    text = {
        "participant_id": np.repeat(ids, per).astype(object),
        "visit": np.tile(np.repeat(VISITS, len(OUTCOMES)), people).astype(object),
        "outcome": np.tile(OUTCOMES, people * len(VISITS)).astype(object),
        "value": values.astype(object),
    }
    # row i: participant i // 8, visit (i % 8) // 2, outcome i % 2 (pain, function)
    text["value"][10] = "4x"  # not a number
    text["visit"][20] = None  # required cell empty (and so not a plan visit)
    text["visit"][30] = "w13"  # not a plan visit
    text["outcome"][40] = "mood"  # not a plan outcome: P5 has no pain baseline
    text["value"][52] = "11"  # pain above 10
    text["value"][60] = None  # missing value: allowed
    text["participant_id"][70] = "Q1"  # not listed
    text["visit"][86] = "w4"  # P10 pain at w4 twice
    long = pd.DataFrame({c: pd.Series(v, dtype="str") for c, v in text.items()})
    long["source_row"] = np.arange(2, n + 2)
    long["source_column"] = pd.Series(np.full(n, "value", dtype=object), dtype="str")
    participants = pd.DataFrame({"participant_id": pd.Series(ids, dtype="str"), "source_row": np.arange(2, people + 2)})
    return long, participants


def best_of(repeats: int, func) -> tuple[float, float, object]:
    """Best wall-clock and best CPU time of ``repeats`` runs, and the last result."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        out = func()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu, out


def _trim() -> None:
    """Hand freed memory back to the system, so the resident set is the live data."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def extra_resident_bytes(func) -> int:
    """Peak growth of the resident set while ``func`` runs (Linux: VmHWM after resetting it)."""
    _trim()
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    func()
    return _status("VmHWM") - before


def table(problems: list[dict]) -> list[tuple]:
    frame = pd.DataFrame(problems, columns=FAILURE_COLUMNS)
    frame["value"] = frame["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    return sorted(map(tuple, frame.astype(str).to_numpy().tolist()))


def main(people: int = PEOPLE) -> None:
    plan = parse_plan(PLAN)
    long, participants = build_frame(people)
    raw = RawTable(frame=long.iloc[:0], path=Path("measurements.csv"), format="csv", label="measurements")
    frame_bytes = int(long.memory_usage(deep=True).sum())

    def ours() -> list[dict]:
        return validate_measurements(raw, long, plan, participants, "participants.csv")[1]

    def peer() -> pd.DataFrame:
        return plain_measurement_failures(long, plan, participants, "measurements.csv", "participants.csv", "measurements.csv")

    extra_rss = extra_resident_bytes(ours)
    tracemalloc.start()
    ours()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_ours, cpu_ours, found = best_of(REPEATS, ours)
    t_peer, cpu_peer, reference = best_of(REPEATS, peer)
    same = table(found) == sorted(map(tuple, reference.astype(str).to_numpy().tolist()))
    ratio = t_peer / t_ours
    extra = max(extra_rss, traced_peak)
    print(f"validation of a long measurements frame: {len(long):,} rows ({people:,} participants x "
          f"{len(OUTCOMES)} outcomes x {len(VISITS)} visits), Arrow-backed text, {len(found)} planted failures")
    print(f"  ours, factorised checks (validate_measurements): {t_ours:8.3f} s wall, {cpu_ours:8.3f} s CPU "
          f"(best of {REPEATS}; target <= {TARGET_SECONDS:g} s)")
    print(f"  peer, plain pandera schemas, lazy=True:          {t_peer:8.3f} s wall, {cpu_peer:8.3f} s CPU (best of {REPEATS})")
    print(f"  speed-up: {ratio:.1f}x wall, {cpu_peer / cpu_ours:.1f}x CPU (target >= {TARGET_RATIO:g}x)")
    print(f"  memory: frame {frame_bytes / 1e6:.0f} MB; ours extra: resident-set growth {extra_rss / 1e6:.0f} MB, "
          f"tracemalloc peak {traced_peak / 1e6:.0f} MB (target <= frame size)")
    print(f"  same failures as the peer: {'yes' if same else 'NO'} ({len(found)} vs {len(reference)})")
    # CPU time is what the code costs; wall time also counts waiting for a core on a shared machine
    print(f"  load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if t_ours > TARGET_SECONDS or ratio < TARGET_RATIO or extra > frame_bytes or not same:
        raise SystemExit("benchmark target missed")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else PEOPLE)
