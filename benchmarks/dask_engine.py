"""Benchmark: the Dask engine on a 1M-participant partitioned trial, beside the pandas engine.

Draws a trial shaped like the bundled example (3 outcomes x 4 visits, covariates age, sex, site)
as a directory of Parquet files (``--partitions`` files; participants in contiguous blocks, each
one's measurements in the file of the same position), then times

* the dask engine (``run_dask``: read, validate, derive per partition on a local cluster of 2
  worker processes; descriptives, between-arm effects, the ANCOVA and the MMRM from sufficient
  statistics),
  including the cluster's start-up;
* the pandas engine's same tables on the same data read as one Parquet file (``load_trial``,
  ``describe``, the between-arm effect sizes, ``ancova``, the plan's MMRM), in this process.

Peak memory is the largest resident set of this process and all its descendants (the workers),
sampled every 0.2 s. The dask run includes the bootstrap of Hedges' g at the plan's smallest ``n_boot`` (100), on the gathered values; the pandas side times the same tables without it. On a shared 2-core machine
timings are noisy: run it more than once and take the best. There is no peer to compare against
here; the target is that the dask engine finishes 1M participants with the workers' memory
bounded by a partition, not the whole trial.

Run: ``.venv/bin/python benchmarks/dask_engine.py [--participants 1000000] [--partitions 20]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import yaml

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "data" / "studies" / "example-precision-release.yaml"
OUTCOMES = {  # name: (baseline mean, sd, change treatment, change control, change sd, low, high)
    "pain_interference": (62, 5, -8, -4, 5.5, 30, 90),
    "pain_intensity": (6.2, 1.4, -2.6, -1.1, 1.6, 0, 10),
    "trunk_rotation": (42, 8, 12, 7, 6, 0, 180),
}
VISITS = ("baseline", "week4", "week8", "week12")


def draw(folder: Path, n: int, n_parts: int, seed: int = 1) -> Path:
    """Write the partitioned trial and its plan; return the plan's path."""
    rng = np.random.default_rng(seed)
    pdir, mdir = folder / "participants", folder / "measurements"
    pdir.mkdir(parents=True)
    mdir.mkdir(parents=True)
    for k, block in enumerate(np.array_split(np.arange(n), n_parts)):
        m = block.size
        ids = np.char.add("P", np.char.zfill(block.astype(str), 7))
        arm = np.where(rng.random(m) < 0.5, "PLR", "PT")
        pd.DataFrame({
            "participant_id": ids, "arm": arm, "age": rng.integers(20, 70, m).astype(float),
            "sex": rng.choice(["F", "M"], m), "site": rng.choice(["site-A", "site-B", "site-C"], m),
            "disposition": "completed",
        }).to_parquet(pdir / f"part-{k:04d}.parquet", index=False)
        frames = []
        for outcome, (mean, sd, ct, cc, csd, low, high) in OUTCOMES.items():
            base = rng.normal(mean, sd, m)
            change = np.where(arm == "PLR", ct, cc)
            for j, visit in enumerate(VISITS):
                value = base if j == 0 else base + change * j / 3 + rng.normal(0, csd, m)
                value = np.clip(np.round(value, 1), low, high)
                if j:
                    value[rng.random(m) < 0.05] = np.nan
                frames.append(pd.DataFrame({"participant_id": ids, "visit": visit, "outcome": outcome, "value": value}))
        pd.concat(frames, ignore_index=True).to_parquet(mdir / f"part-{k:04d}.parquet", index=False)
    plan = yaml.safe_load(EXAMPLE_PLAN.read_text())
    plan["data"] = {"participants": {"path": str(pdir), "format": "parquet"},
                    "measurements": {"path": str(mdir), "format": "parquet", "layout": "long"}}
    plan["analysis"]["n_boot"] = 100  # the smallest the plan allows; the bootstrap runs on the client
    plan["covariates"] = ["age", "sex", "site"]
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def one_file_plan(plan_path: Path, folder: Path) -> Path:
    """The same trial as one participants and one measurements Parquet file (for the pandas engine)."""
    plan = yaml.safe_load(plan_path.read_text())
    for role in ("participants", "measurements"):
        source = Path(plan["data"][role]["path"])
        frame = pd.concat([pd.read_parquet(p) for p in sorted(source.glob("*.parquet"))], ignore_index=True)
        target = folder / f"{role}.parquet"
        frame.to_parquet(target, index=False)
        plan["data"][role]["path"] = str(target)
    path = folder / "plan-one-file.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


class PeakMemory:
    """Largest resident set of this process and its descendants, sampled in a thread."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def pandas_tables(plan_path: Path) -> None:
    from analysis.pipeline import load_trial
    from analysis.stats.describe import describe
    from analysis.stats.effects.between_arm import mean_difference
    from analysis.stats.models.ancova import ancova
    from analysis.stats.models.plan_models import fit_plan_mmrm

    trial = load_trial(plan_path)
    plan = trial.plan
    describe(trial.dataset, ci_level=plan.analysis.ci_level)
    for outcome in plan.outcomes:
        at = trial.dataset[(trial.dataset["outcome"] == outcome.name) & (trial.dataset["visit"] == plan.visits.primary)]
        t = at.loc[at["arm"] == "treatment", "value"].dropna()
        c = at.loc[at["arm"] == "control", "value"].dropna()
        mean_difference(len(t), t.mean(), t.std(), len(c), c.mean(), c.std())
        ancova(trial.dataset, outcome=outcome.name, visit=plan.visits.primary, covariates=list(plan.covariates),
               participants=trial.participants, robust=True)
        # the dask engine fits the plan's MMRM too: like for like
        fit_plan_mmrm(trial.dataset, plan, outcome.name, list(plan.covariates), trial.participants)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    from analysis.engine.run import run_dask

    with tempfile.TemporaryDirectory(prefix="trialkit-dask-bench-") as temp:
        folder = Path(temp)
        start = time.perf_counter()
        plan = draw(folder / "trial", args.participants, args.partitions)
        print(f"drew {args.participants:,} participants in {args.partitions} partitions: {time.perf_counter() - start:.1f} s")
        with PeakMemory() as memory:
            start = time.perf_counter()
            run_dask(plan, folder / "out-dask")
            dask_time = time.perf_counter() - start
        print(f"dask engine (local cluster, 2 workers, start-up included): {dask_time:.1f} s, peak memory {memory.peak / 2**30:.2f} GiB")
        stages = json.loads((folder / "out-dask" / "manifest.json").read_text())["timings_seconds"]
        print("  stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items()))
        if args.skip_pandas:
            return
        one = one_file_plan(plan, folder)
        with PeakMemory() as memory:
            start = time.perf_counter()
            pandas_tables(one)
            pandas_time = time.perf_counter() - start
        print(f"pandas engine (same tables, one process):             {pandas_time:.1f} s, peak memory {memory.peak / 2**30:.2f} GiB")
        print(f"ratio dask / pandas time: {dask_time / pandas_time:.2f}")


if __name__ == "__main__":
    main()
