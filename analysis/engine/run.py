"""``trialkit run PLAN --engine dask``: read, validate, derive and summarise on a Dask cluster.

Every partition is read, validated and derived on a worker and stays there
(:mod:`analysis.engine.partitions`); the statistics are mapped over the partitions as sufficient
statistics, reduced on the cluster and finished on the client (:mod:`analysis.engine.summaries`,
:mod:`analysis.engine.tables`). Writes ``tables/descriptives.csv``, ``tables/between_arms.csv``
``tables/models.csv`` (the ANCOVA and MMRM rows), ``tables/missing.csv``, ``tables/effect_sizes.csv`` and
``meta/`` (gathered, :func:`gathered_tables`) in the pandas engine's layout, ``plan.yaml`` and a
``manifest.json`` recording the engine and the scheduler. What it does not compute is listed in
:data:`NOT_COMPUTED` and in the manifest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import ModelError
from analysis.core.output import staged_directory, write_table, write_text
from analysis.core.provenance import manifest_record, sha256_file
from analysis.core.tidy import contrast_label, tidy_frame
from analysis.engine.cluster import ClusterInfo, connect
from analysis.engine.moments import merge_all, merge_keyed
from analysis.engine.partitions import (
    gather_failures,
    load_partition,
    partition_files,
    partition_report,
)
from analysis.engine.summaries import (
    ancova_levels,
    ancova_meat,
    ancova_moments,
    cell_summaries,
    dataset_rows,
    mmrm_levels,
    mmrm_statistics,
)
from analysis.engine.tables import ancova_fit, between_arms, descriptives, missing_counts, t_row
from analysis.plan import load_plan
from analysis.plan.inputs import plan_inputs

NOT_COMPUTED = (
    "multiple imputation and tipping point (participant-level resampling)",
    "tables/responders.csv, accounting.csv",
    "data/analysis_dataset.*, adam/, figures/, report.html",
)


class DaskSession:
    """The partitions of one plan, loaded on a cluster (futures that stay on the workers)."""

    def __init__(self, client, loaded) -> None:
        self.client = client
        self.loaded = loaded
        self.plan = loaded.plan
        self.gathered_seconds = 0.0
        self.files = partition_files(loaded)
        self.parts = client.map(load_partition, [loaded] * len(self.files), self.files, pure=False)
        self.reports = client.gather(client.map(partition_report, self.parts))
        gather_failures(self.reports, loaded)

    def reduce(self, function, *args, merge=merge_keyed):
        """Map ``function`` over the partitions and merge the results on the cluster."""
        mapped = [self.client.submit(function, part, *args, pure=False) for part in self.parts]
        return self.client.submit(merge, mapped).result()

    def gather(self, function, *args) -> list:
        return self.client.gather([self.client.submit(function, part, *args, pure=False) for part in self.parts])


def _merge_cells(parts: list[dict]) -> dict:
    # participants are disjoint across partitions (checked when loading), so their counts add up
    out = {"moments": merge_keyed([p["moments"] for p in parts]), "missing": merge_keyed([p["missing"] for p in parts]),
           "expected": merge_keyed([p["expected"] for p in parts]), "values": {}}
    for part in parts:
        for key, (ids, values) in part["values"].items():
            held = out["values"].get(key)
            out["values"][key] = (ids, values) if held is None else (np.concatenate([held[0], ids]), np.concatenate([held[1], values]))
    return out


def _merge_ancova(parts: list[dict]) -> dict:
    return {"xy": merge_all([p["xy"] for p in parts]),
            "arms": {a: merge_all([p["arms"][a] for p in parts]) for a in ("treatment", "control")}}


def _sum_meat(parts: list[dict]) -> dict:
    return {"meat": sum(p["meat"] for p in parts), "leverage": max(p["leverage"] for p in parts)}


def ancova_rows(session: DaskSession, outcome: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ANCOVA effect rows and adjusted means of one outcome at the primary visit, as
    :func:`analysis.stats.models.ancova.ancova` gives them (``robust=True``, pooled-SD standardiser)."""
    plan = session.plan
    visit = plan.visits.primary
    covariates = list(plan.covariates)
    level = plan.analysis.ci_level
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    first = session.gather(ancova_levels, outcome, visit, covariates)
    factors = {c for p in first for c, f in p["factors"].items() if f}
    levels = {c: sorted(set().union(*(p["levels"].get(c, set()) for p in first))) for c in factors}
    excluded = {a: sum(p["excluded"][a] for p in first) for a in ("treatment", "control")}
    merged = session.reduce(ancova_moments, outcome, visit, covariates, levels, merge=_merge_ancova)
    xy, arms = merged["xy"], merged["arms"]
    for a in ("treatment", "control"):
        if arms[a].n == 0:
            raise ModelError(f"no {a} participant has complete data for this ANCOVA")
    fit = ancova_fit(xy)
    k = fit["k"]
    n_t, n_c = arms["treatment"].n, arms["control"].n
    terms = ["baseline", *(f"C({c})" if c in levels else c for c in covariates)]
    formula = "value ~ arm + " + " + ".join(terms)
    note = f"complete cases; excluded for missing value, baseline or covariate: treatment {excluded['treatment']}, control {excluded['control']}"
    common = {"outcome": outcome, "visit": visit, "contrast": contrast_label(labels["treatment"], labels["control"]),
              "n_treatment": n_t, "n_control": n_c, "note": note}
    estimate = float(fit["slopes"][0])
    se = float(np.sqrt(fit["sigma2"] * fit["inverse"][0, 0]))
    rows = [{**common, "measure": "adjusted mean difference", **t_row(estimate, se, fit["df"], level),
             "method": f"ANCOVA (OLS) {formula}; model-based SE"}]
    meat = session.reduce(ancova_meat, outcome, visit, covariates, levels, xy.mean, fit["slopes"], fit["inverse"], xy.n,
                          merge=_sum_meat)
    hc3_method = f"ANCOVA (OLS) {formula}; HC3 robust SE"
    if meat["leverage"] > 1.0 - 1e-8:
        hc3 = {**t_row(estimate, float("nan"), fit["df"], level), "ci_low": np.nan, "ci_high": np.nan}
        hc3_method += ("; not estimable: a participant has leverage 1 (for example the only one in a covariate level), "
                       "so the HC3 weight 1/(1 - h)^2 is undefined")
    else:
        robust = fit["inverse"] @ meat["meat"] @ fit["inverse"]
        hc3 = t_row(estimate, float(np.sqrt(robust[0, 0])), fit["df"], level)
    rows.append({**common, "measure": "adjusted mean difference", **hc3, "method": hc3_method})
    if min(n_t, n_c) < 2:
        sd = float("nan")
    else:
        sd = float(np.sqrt((arms["treatment"].comoment[0, 0] + arms["control"].comoment[0, 0]) / (n_t + n_c - 2)))
    sd_name = f"pooled within-arm SD of {outcome} at {visit} (unadjusted)"
    std_method = f"ANCOVA adjusted mean difference / {sd_name} = {sd:.6g}; CI treats the SD as known"
    if sd > 0:
        std = t_row(estimate / sd, se / sd, fit["df"], level)
    else:
        std = {"estimate": np.nan, "std_error": np.nan, "df": fit["df"], "ci_level": level}
        std_method += ("; not estimable: fewer than two analysed participants in an arm" if np.isnan(sd)
                       else "; not estimable: the SD is 0 (no variation), so the standardised difference is undefined")
    rows.append({**common, "measure": "standardised adjusted mean difference", **std, "statistic": np.nan,
                 "p_value": np.nan, "method": std_method})
    # emmeans' reference grid: baseline and numeric covariates at their mean, factors at 1/k per level
    tail, column = [], 2
    for cov in covariates:
        if cov in levels:
            tail += [1.0 / len(levels[cov])] * (len(levels[cov]) - 1)
            column += len(levels[cov]) - 1
        else:
            tail.append(float(xy.mean[column]))
            column += 1
    q = float(stats.t.ppf(0.5 + level / 2.0, fit["df"]))
    means = []
    for a in ("treatment", "control"):
        grid = np.array([1.0 if a == "treatment" else 0.0, float(xy.mean[1]), *tail])
        d = grid - xy.mean[:k]
        est = float(xy.mean[k] + d @ fit["slopes"])
        se_mean = float(np.sqrt(fit["sigma2"] * (1.0 / xy.n + d @ fit["inverse"] @ d)))
        means.append({"outcome": outcome, "visit": visit, "contrast": labels[a], "measure": "adjusted mean",
                      "estimate": est, "std_error": se_mean, "df": fit["df"], "ci_low": est - q * se_mean,
                      "ci_high": est + q * se_mean, "ci_level": level,
                      "method": f"ANCOVA (OLS) {formula}; emmeans default reference grid",
                      "n_treatment": n_t if a == "treatment" else None, "n_control": n_c if a == "control" else None})
    return tidy_frame(rows), tidy_frame(means)


def mmrm_fit(session: DaskSession, outcome: str):
    """The plan's MMRM of one outcome (:func:`analysis.stats.models.plan_models.fit_plan_mmrm`)
    from per-missingness-pattern cross-products: factor levels gathered, the partitions' pattern
    statistics merged on the cluster, the REML fit on the client
    (:mod:`analysis.stats.models.mmrm.partitioned`)."""
    from analysis.stats.models.mmrm.partitioned import (
        PatternDesign,
        fit_mmrm_from_patterns,
        merge_pattern_levels,
        merge_pattern_statistics,
    )
    from analysis.stats.models.plan_models import plan_mmrm_options

    plan = session.plan
    options = plan_mmrm_options(plan)
    design = PatternDesign(visits=tuple(v.label for v in plan.visits.followup), covariates=tuple(plan.covariates),
                           by_visit=tuple(dict.fromkeys(options.pop("by_visit"))))
    design = design.with_levels(merge_pattern_levels(session.gather(mmrm_levels, session.plan, outcome, design)))
    merged = session.reduce(mmrm_statistics, plan, outcome, design, merge=merge_pattern_statistics)
    return fit_mmrm_from_patterns(merged, design, ci_level=plan.analysis.ci_level, **options)


def models_table(session: DaskSession) -> pd.DataFrame:
    """``tables/models.csv`` as :func:`analysis.stats.models.plan_models.models_table` makes it,
    without the multiple-imputation sensitivity rows: per outcome the ANCOVA effect rows and
    adjusted means, then the MMRM contrasts; Holm/Hochberg ``p_adjusted`` across the secondary
    outcomes on the primary model's row at the primary visit."""
    from analysis.stats.models.ancova import adjust_pvalues
    from analysis.stats.models.plan_models import mmrm_rows

    plan = session.plan
    primary = plan.primary_outcome.name
    primary_model = plan.analysis.primary_model
    visit = plan.visits.primary
    level = plan.analysis.ci_level
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    frames = []
    # the outcomes' passes overlap (each pass is a round trip to the cluster); results are per outcome
    with ThreadPoolExecutor(max_workers=max(1, 2 * len(plan.outcomes))) as pool:
        pending = [pool.submit(ancova_rows, session, outcome.name) for outcome in plan.outcomes]
        fits = [pool.submit(mmrm_fit, session, outcome.name) for outcome in plan.outcomes]
    for outcome, future, fit in zip(plan.outcomes, pending, fits, strict=True):
        role = "primary outcome" if outcome.name == primary else "secondary outcome"
        model_note = "primary model" if primary_model == "ancova" else "secondary model"
        try:
            effect, means = future.result()
        except ModelError as error:
            if outcome.name == primary and primary_model == "ancova":
                raise
            effect = tidy_frame([{"outcome": outcome.name, "visit": visit,
                                  "contrast": contrast_label(labels["treatment"], labels["control"]),
                                  "measure": "adjusted mean difference", "ci_level": level, "method": "ANCOVA (OLS)",
                                  "note": f"{role}; {model_note}; not estimable: {error}"}])
            means = tidy_frame([])
        else:
            effect["note"] = [f"{role}; {model_note}; {n}" for n in effect["note"]]
            means["note"] = f"{role}; adjusted mean by arm"
        mmrm = mmrm_rows(fit.result, plan, outcome.name,
                         f"{role}; {'primary' if primary_model == 'mmrm' else 'secondary'} model")
        frames.append(pd.concat([f for f in (effect, means, mmrm) if len(f)], ignore_index=True))
    table = tidy_frame(pd.concat(frames, ignore_index=True))
    method = plan.analysis.multiplicity
    secondary = [o.name for o in plan.outcomes if o.name != primary]
    if method != "none" and secondary:
        wanted = "adjusted mean difference" if primary_model == "ancova" else "LS-mean difference"
        index = [int(np.flatnonzero((table["outcome"] == name).to_numpy()
                                    & (table["visit"] == visit).to_numpy()
                                    & (table["measure"] == wanted).to_numpy()
                                    & ~table["method"].str.contains("HC3", regex=False).to_numpy(dtype=bool))[0])
                 for name in secondary]
        table["p_adjusted"] = np.nan
        table.loc[index, "p_adjusted"] = adjust_pvalues(table.loc[index, "p_value"].to_numpy(float), method)
        family = f"{method.capitalize()} across {len(secondary)} secondary outcome(s) ({', '.join(secondary)}) at {visit}"
        table.loc[index, "note"] = [f"{n}; p_adjusted: {family}" for n in table.loc[index, "note"]]
    return tidy_frame(table)


def analysis_tables(session: DaskSession, seed: int) -> dict[str, pd.DataFrame]:
    """Every table the dask engine computes, keyed by its path in the output directory."""
    plan = session.plan
    n_boot = plan.analysis.n_boot or None
    cells = session.reduce(cell_summaries, True, merge=_merge_cells)
    tables = {
        "tables/descriptives.csv": descriptives(cells, plan.analysis.ci_level),
        "tables/between_arms.csv": between_arms(cells, plan, n_boot, seed),
        "tables/models.csv": models_table(session),
        "tables/missing.csv": missing_counts(cells, plan),
    }
    tables.update(gathered_tables(session, seed))
    return tables


def gathered_tables(session: DaskSession, seed: int) -> dict[str, pd.DataFrame]:
    """``tables/effect_sizes.csv`` and ``meta/``: the plan's bootstrap rows resample participants,
    so the dataset's rows (value, baseline, change, percent change) are gathered to the client, put
    in the pandas engine's order (outcome as in the plan, participant, visit time) and given to the
    pandas engine's own functions: identical rows, at 10 columns per participant x outcome x
    visit of client memory."""
    from analysis.stats.effects import effect_sizes_table
    from analysis.stats.effects.summaries import meta_exports

    clock = time.perf_counter()
    plan = session.plan
    parts = session.gather(dataset_rows)
    rows = pd.concat(parts, ignore_index=True)
    order = {o.name: i for i, o in enumerate(plan.outcomes)}
    rows = rows.sort_values(["outcome", "participant_id", "visit_week"], key=lambda s: s.map(order) if s.name == "outcome" else s,
                            kind="stable").reset_index(drop=True)
    effects = effect_sizes_table(rows, plan, n_boot=plan.analysis.n_boot, seed=seed)
    exports = meta_exports(rows, plan)
    session.gathered_seconds = round(time.perf_counter() - clock, 3)
    return {"tables/effect_sizes.csv": effects, "meta/arm_summaries.csv": exports["arm_summaries"],
            "meta/effect_sizes.csv": exports["effect_sizes"]}


def run_dask(
    plan_path: str | Path,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str], None] = lambda _message: None,
    command: list[str] | None = None,
) -> Path:
    """Run the dask engine and write its tables atomically into ``out_dir`` (see the module)."""
    started = datetime.now(UTC)
    loaded = load_plan(plan_path)
    out = Path(out_dir)
    seed = loaded.plan.seed if seed is None else seed
    timings: dict[str, float] = {}
    with connect(scheduler) as (client, info):
        clock = time.perf_counter()
        progress("read, validate and derive (dask)")
        session = DaskSession(client, loaded)
        timings["read, validate and derive"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        progress("analyse (dask)")
        tables = analysis_tables(session, seed)
        timings["analyse"] = round(time.perf_counter() - clock, 3)
        timings["of which gathered tables (effect sizes, meta)"] = session.gathered_seconds
    files = [f for pair in session.files for f in dict.fromkeys((pair.participants, pair.measurements))]
    rows = {}
    for report in session.reports:
        rows[report["files"].participants] = report["rows_read"][0]
        rows[report["files"].measurements] = report["rows_read"][1]
    with staged_directory(out, inputs=plan_inputs(loaded), kind="run") as staging:
        written = [write_table(frame, staging / relative) for relative, frame in tables.items()]
        write_text(staging / "plan.yaml", loaded.path.read_text(encoding="utf-8-sig"))
        written.append(staging / "plan.yaml")
        manifest = _manifest(loaded, files, rows, seed, started, timings, written, staging, command, info,
                             partitions=len(session.files))
        write_text(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return out


def _manifest(loaded, files, rows, seed, started, timings, written, root, command, info: ClusterInfo,
              partitions: int) -> dict:
    inputs = [{"role": "data", "path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size,
               "rows": rows.get(p)} for p in files]
    engine = {"name": "dask", "scheduler": info.address, "cluster": info.kind, "workers": info.workers,
              "partitions": partitions, "not_computed": list(NOT_COMPUTED)}
    return manifest_record(loaded, inputs, seed, started, timings, written, root, command, engine=engine)
