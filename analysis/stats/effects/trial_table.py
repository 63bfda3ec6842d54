"""Participant data: the tidy effect-size table for `trialkit run`.

Owns :func:`effect_sizes_table` (every applicable measure per outcome x follow-up visit, from the
long analysis dataset, docs/architecture.md, contracts), :func:`between_arm_effects` (the headline
subset), ``BETWEEN_ARM_HEADLINE``, ``DATASET_COLUMNS`` and the per-cell row builders.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import ModelError, UsageError
from analysis.core.tidy import (
    RESULT_COLUMNS,
    contrast_label,
    tidy_frame,
    z_quantile,
)
from analysis.stats.effects.between_arm import (
    log_ratio_of_means,
    mean_difference,
    smd_noncentral_ci,
    standardized_mean_difference,
)
from analysis.stats.effects.bootstrap import _check_counts, bootstrap_ci
from analysis.stats.effects.common import EffectSize
from analysis.stats.effects.participant_bootstrap import hedges_g_bootstrap, ratio_of_means_batch
from analysis.stats.effects.prepost import d_ppc2, smcr
from analysis.stats.effects.ratios import (
    mean_of_percent_changes,
    percent_change_of_means,
    ratio_of_improvements,
)
from analysis.stats.numeric import check_numeric

# Measures of the headline between-arm table (tables/between_arms.csv): MD and Hedges' g on follow-up values.
BETWEEN_ARM_HEADLINE = ("MD", "SMD")


DATASET_COLUMNS = (
    "participant_id",
    "arm",
    "outcome",
    "visit",
    "value",
    "baseline",
    "change",
    "pct_change",
)


def _summary(values: np.ndarray) -> tuple[int, float, float]:
    return (
        values.size,
        float(values.mean()) if values.size else math.nan,
        float(values.std(ddof=1)) if values.size > 1 else math.nan,
    )


def _pooled_correlation(pairs: list[np.ndarray]) -> float:
    """Pooled within-arm pre-post correlation: sum (n-1) cov / sqrt(sum (n-1) var_pre * sum (n-1) var_post)."""
    sxy = sum(((p[:, 0] - p[:, 0].mean()) * (p[:, 1] - p[:, 1].mean())).sum() for p in pairs)
    sxx = sum(((p[:, 0] - p[:, 0].mean()) ** 2).sum() for p in pairs)
    syy = sum(((p[:, 1] - p[:, 1].mean()) ** 2).sum() for p in pairs)
    return float(sxy / math.sqrt(sxx * syy)) if sxx > 0 and syy > 0 else math.nan


class _Cell:
    """Rows for one outcome x follow-up visit; every row carries the cell's identifiers."""

    def __init__(self, outcome: str, visit: str, ci_level: float) -> None:
        self.outcome, self.visit, self.ci_level = outcome, visit, ci_level
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        contrast: str,
        measure: str,
        n_t: int | None,
        n_c: int | None,
        result: Any = None,
        **extra: Any,
    ) -> None:
        row: dict[str, Any] = {
            "outcome": self.outcome,
            "visit": self.visit,
            "contrast": contrast,
            "measure": measure,
            "ci_level": self.ci_level,
            "n_treatment": n_t,
            "n_control": n_c,
            "n_boot": None,
            "seed": None,
            "note": None,
        }
        if result is not None:  # an EffectSize or a BootstrapResult: the same estimate fields
            row.update(estimate=result.estimate, std_error=result.std_error,
                       ci_low=result.ci_low, ci_high=result.ci_high, note=result.note)
            if isinstance(result, EffectSize):
                row["method"] = result.method
            else:
                row.update(n_boot=result.n_boot, seed=result.seed)
        row.update(extra)
        self.rows.append(row)


def _check_dataset(dataset: pd.DataFrame) -> None:
    absent = [c for c in DATASET_COLUMNS if c not in dataset.columns]
    if absent:
        raise UsageError(f"the analysis dataset lacks column(s) {', '.join(absent)}")


def _cells(dataset: pd.DataFrame, plan: Any):
    """Yield (outcome, visit, treatment rows, control rows) for every plan outcome x follow-up visit."""
    arm = dataset["arm"].astype(str)
    for outcome in plan.outcomes:
        of = dataset[dataset["outcome"].astype(str) == outcome.name]
        if of.empty:
            continue
        for followup in plan.visits.followup:
            cell = of[of["visit"].astype(str) == followup.label]
            yield (
                outcome.name,
                followup.label,
                cell[arm.loc[cell.index] == "treatment"],
                cell[arm.loc[cell.index] == "control"],
            )


def _between_rows(
    cell: _Cell,
    t: pd.DataFrame,
    c: pd.DataFrame,
    labels: tuple[str, str],
    boot: tuple[int, int] | None,
) -> None:
    yt = t["value"].to_numpy(dtype=float)
    yc = c["value"].to_numpy(dtype=float)
    yt, yc = yt[np.isfinite(yt)], yc[np.isfinite(yc)]
    n_t, m_t, s_t = _summary(yt)
    n_c, m_c, s_c = _summary(yc)
    diff = contrast_label(*labels)
    if min(n_t, n_c) < 2:
        for measure in ("MD", "SMD"):
            cell.add(
                diff,
                measure,
                n_t,
                n_c,
                note="fewer than 2 participants with a value in an arm at this visit",
            )
        return
    args = (n_t, m_t, s_t, n_c, m_c, s_c)
    cell.add(diff, "MD", n_t, n_c, mean_difference(*args, ci_level=cell.ci_level))
    if s_t == 0 and s_c == 0:
        cell.add(diff, "SMD", n_t, n_c, note="both arms have SD 0; SMD undefined")
        return
    cell.add(diff, "SMD", n_t, n_c, standardized_mean_difference(*args, ci_level=cell.ci_level))
    cell.add(diff, "SMD", n_t, n_c, smd_noncentral_ci(*args, ci_level=cell.ci_level))
    if boot is not None:
        result = hedges_g_bootstrap(yt, yc, n_boot=boot[0], seed=boot[1], ci_level=cell.ci_level)
        cell.add(
            diff,
            "SMD",
            n_t,
            n_c,
            result,
            method="Hedges' g (exact J), BCa bootstrap stratified by arm",
        )


def _prepost_rows(
    cell: _Cell,
    t: pd.DataFrame,
    c: pd.DataFrame,
    labels: tuple[str, str],
    baseline: str,
    boot: tuple[int, int] | None,
) -> None:
    def pairs_of(frame: pd.DataFrame) -> np.ndarray:
        p = frame[["baseline", "value"]].to_numpy(dtype=float)
        return p[np.isfinite(p).all(axis=1)]

    pt, pc = pairs_of(t), pairs_of(c)
    n_t, n_c = len(pt), len(pc)
    diff = contrast_label(*labels)
    if min(n_t, n_c) < 3:
        cell.add(
            diff,
            "MD_change",
            n_t,
            n_c,
            note="fewer than 3 participants with baseline and follow-up values in an arm",
        )
        return
    ct, cc = pt[:, 1] - pt[:, 0], pc[:, 1] - pc[:, 0]
    level = cell.ci_level
    md = mean_difference(
        n_t, ct.mean(), ct.std(ddof=1), n_c, cc.mean(), cc.std(ddof=1), ci_level=level
    )
    cell.add(
        diff,
        "MD_change",
        n_t,
        n_c,
        md,
        method="difference in mean change from baseline (metafor MD on change scores), Wald CI",
    )
    r_pool = _pooled_correlation([pt, pc])
    sd_pre_t, sd_pre_c = pt[:, 0].std(ddof=1), pc[:, 0].std(ddof=1)
    if math.isfinite(r_pool) and (sd_pre_t > 0 or sd_pre_c > 0):
        morris = d_ppc2(
            n_t,
            pt[:, 0].mean(),
            pt[:, 1].mean(),
            sd_pre_t,
            n_c,
            pc[:, 0].mean(),
            pc[:, 1].mean(),
            sd_pre_c,
            r_pool,
            ci_level=level,
        )
        cell.add(
            diff,
            "d_ppc2",
            n_t,
            n_c,
            morris,
            method=morris.method + f"; r = pooled within-arm pre-post correlation {r_pool:.4f}",
        )
    else:
        cell.add(
            diff,
            "d_ppc2",
            n_t,
            n_c,
            note="pretest SD is 0 in both arms or the pre-post correlation is undefined",
        )

    arm_pct: dict[str, EffectSize] = {}
    arm_mean_pct: dict[str, tuple[EffectSize, np.ndarray]] = {}
    for name, label, p, frame in (("treatment", labels[0], pt, t), ("control", labels[1], pc, c)):
        n = len(p)
        counts = (n, None) if name == "treatment" else (None, n)
        within = f"{label}: {cell.visit} - {baseline}"
        sd_pre, sd_post = p[:, 0].std(ddof=1), p[:, 1].std(ddof=1)
        r = float(np.corrcoef(p[:, 0], p[:, 1])[0, 1]) if sd_pre > 0 and sd_post > 0 else math.nan
        if sd_pre > 0 and math.isfinite(r):
            cell.add(
                within,
                "SMCR",
                *counts,
                smcr(n, p[:, 1].mean(), p[:, 0].mean(), sd_pre, r, ci_level=level),
            )
        else:
            cell.add(
                within,
                "SMCR",
                *counts,
                note="pretest SD is 0 or the pre-post correlation is undefined",
            )
        # with a constant pre or post value the correlation is undefined but has no weight in the
        # delta-method variance (it multiplies sd_pre * sd_post = 0)
        r_pct = r if math.isfinite(r) else (0.0 if sd_pre == 0 or sd_post == 0 else math.nan)
        if p[:, 0].mean() != 0 and math.isfinite(r_pct):
            pct = percent_change_of_means(
                n, p[:, 0].mean(), p[:, 1].mean(), sd_pre, sd_post, r_pct, ci_level=level
            )
            arm_pct[name] = pct
            cell.add(within, "pct_change_of_means", *counts, pct)
        else:
            cell.add(
                within,
                "pct_change_of_means",
                *counts,
                note="baseline mean is 0 or the pre-post correlation is undefined",
            )
        complete = frame[
            np.isfinite(frame["baseline"].to_numpy(dtype=float))
            & np.isfinite(frame["value"].to_numpy(dtype=float))
        ]
        pcts = complete["pct_change"].to_numpy(dtype=float)
        dropped = int((~np.isfinite(pcts)).sum())
        pcts = pcts[np.isfinite(pcts)]
        mp = mean_of_percent_changes(pcts, ci_level=level)
        note = f"{dropped} participant(s) with baseline 0 excluded" if dropped else mp.note
        counts_pct = (pcts.size, None) if name == "treatment" else (None, pcts.size)
        cell.add(within, "mean_pct_change", *counts_pct, mp, note=note)
        arm_mean_pct[name] = (mp, pcts)

    if len(arm_pct) == 2:
        a, b = arm_pct["treatment"], arm_pct["control"]
        est, se = a.estimate - b.estimate, math.hypot(a.std_error, b.std_error)
        z = z_quantile(level)
        cell.add(
            diff,
            "diff_pct_change_of_means",
            n_t,
            n_c,
            estimate=est,
            std_error=se,
            ci_low=est - z * se,
            ci_high=est + z * se,
            method="difference in percent change of arm means (treatment - control), Wald CI from the per-arm delta-method SEs",
            note="both arms' delta-method SEs are 0: zero-width interval" if se == 0 else None,
        )
    pct_t, pct_c = arm_mean_pct["treatment"][1], arm_mean_pct["control"][1]
    welch_method = "difference in mean of individual percent changes (treatment - control), Welch t-test and CI"
    if min(pct_t.size, pct_c.size) >= 2 and pct_t.max() == pct_t.min() and pct_c.max() == pct_c.min():
        est = float(pct_t.mean() - pct_c.mean())
        cell.add(
            diff,
            "diff_mean_pct_change",
            pct_t.size,
            pct_c.size,
            estimate=est,
            std_error=0.0,
            ci_low=est,
            ci_high=est,
            method=welch_method,
            note="every participant of each arm has the same percent change: SE 0, no Welch test, zero-width interval",
        )
    elif min(pct_t.size, pct_c.size) >= 2:
        with warnings.catch_warnings():
            if pct_t.max() == pct_t.min() or pct_c.max() == pct_c.min():
                # an arm's variance is exactly 0 (constant values), which is what scipy warns about
                warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            welch = stats.ttest_ind(pct_t, pct_c, equal_var=False)
            ci = welch.confidence_interval(confidence_level=level)
        est = float(pct_t.mean() - pct_c.mean())
        cell.add(
            diff,
            "diff_mean_pct_change",
            pct_t.size,
            pct_c.size,
            estimate=est,
            std_error=est / float(welch.statistic) if welch.statistic else math.nan,
            statistic=float(welch.statistic),
            df=float(welch.df),
            p_value=float(welch.pvalue),
            ci_low=float(ci.low),
            ci_high=float(ci.high),
            method=welch_method,
        )

    ratio_contrast = contrast_label(*labels, ratio=True)
    se_t, se_c = ct.std(ddof=1) / math.sqrt(n_t), cc.std(ddof=1) / math.sqrt(n_c)
    fieller = ratio_of_improvements(ct.mean(), se_t, cc.mean(), se_c, ci_level=level)
    cell.add(
        ratio_contrast,
        "ratio_of_improvements",
        n_t,
        n_c,
        estimate=fieller.estimate,
        ci_low=fieller.ci_low,
        ci_high=fieller.ci_high,
        method=fieller.method,
        note=fieller.note,
    )
    if boot is not None:
        method = "ratio of mean changes (treatment/control), percentile bootstrap stratified by arm"
        if fieller.bounded:
            result = bootstrap_ci(
                [ct, cc],
                ratio_of_means_batch,
                n_boot=boot[0],
                seed=boot[1],
                ci_level=level,
                method="percentile",
            )
            cell.add(ratio_contrast, "ratio_of_improvements", n_t, n_c, result, method=method)
        else:
            cell.add(
                ratio_contrast,
                "ratio_of_improvements",
                n_t,
                n_c,
                method=method,
                n_boot=boot[0],
                seed=boot[1],
                note=fieller.note,
            )


def effect_sizes_table(
    dataset: pd.DataFrame, plan: Any, *, n_boot: int | None = None, seed: int | None = None
) -> pd.DataFrame:
    """Every applicable effect size for each outcome x follow-up visit, as a tidy frame.

    Per outcome x follow-up visit (participants without a value at that visit are left out of that
    visit; pre-post quantities use complete baseline/follow-up pairs; ``n_treatment``/``n_control``
    give the numbers used):

    * between arms on the follow-up values: ``MD`` (Wald), ``SMD`` Hedges' g with the Wald CI
      (metafor LS variance) and again with the noncentral-t CI (R effectsize), plus a BCa
      bootstrap row when ``n_boot`` is given; ``ROM`` (log scale) when every value is positive;
    * ``MD_change`` (difference in mean change) and Morris ``d_ppc2`` (pooled within-arm r);
    * per arm: ``SMCR``, ``pct_change_of_means`` (delta-method CI), ``mean_pct_change`` (t CI);
    * ``diff_pct_change_of_means`` (Wald) and ``diff_mean_pct_change`` (Welch);
    * ``ratio_of_improvements`` (treatment change / control change, Fieller CI; percentile
      bootstrap row when ``n_boot`` is given). When the control change's CI includes zero the
      ratio is unbounded: the row has no numbers and its ``note`` says so.

    Parameters
    ----------
    dataset
        The analysis dataset (docs/architecture.md, contracts).
    plan
        The study plan (:class:`analysis.plan.Plan`); uses ``arms``, ``visits``, ``outcomes`` and
        ``analysis.ci_level``.
    n_boot, seed
        Bootstrap resamples (None: no bootstrap rows) and seed (default ``plan.seed``); both are
        recorded on every resampled row.

    Returns
    -------
    pandas.DataFrame
        ``RESULT_COLUMNS`` + ``n_boot``, ``seed``, ``note``.

    Examples
    --------
    Four participants per arm, baseline and week 8 (``n_boot`` left out, so no bootstrap rows):

    >>> import pandas as pd
    >>> from analysis.derive.dataset import build_analysis_dataset
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> ids = ["t1", "t2", "t3", "t4", "c1", "c2", "c3", "c4"]
    >>> participants = pd.DataFrame({"participant_id": ids, "arm": ["treatment"] * 4 + ["control"] * 4})
    >>> measurements = pd.DataFrame({
    ...     "participant_id": ids * 2, "outcome": "pain", "visit": ["baseline"] * 8 + ["week8"] * 8,
    ...     "value": [6.0, 7.0, 8.0, 9.0, 6.0, 7.0, 8.0, 9.0, 3.0, 5.0, 4.0, 6.0, 5.0, 6.0, 7.0, 7.0]})
    >>> dataset = build_analysis_dataset(measurements, participants, plan)
    >>> table = effect_sizes_table(dataset, plan)
    >>> print(table[["contrast", "measure", "estimate", "ci_low", "ci_high"]].round(3).to_string(index=False))
                     contrast                  measure  estimate  ci_low  ci_high
               Drug - Placebo                       MD    -1.750  -3.325   -0.175
               Drug - Placebo                      SMD    -1.338  -2.871    0.196
               Drug - Placebo                      SMD    -1.338  -2.712    0.114
               Drug / Placebo                      ROM    -0.329  -0.647   -0.010
               Drug - Placebo                MD_change    -1.750  -2.688   -0.812
               Drug - Placebo                   d_ppc2    -1.179  -2.346   -0.012
       Drug: week8 - baseline                     SMCR    -1.681  -3.001   -0.362
       Drug: week8 - baseline      pct_change_of_means   -40.000 -50.669  -29.331
       Drug: week8 - baseline          mean_pct_change   -40.476 -58.246  -22.706
    Placebo: week8 - baseline                     SMCR    -0.701  -1.287   -0.115
    Placebo: week8 - baseline      pct_change_of_means   -16.667 -21.371  -11.962
    Placebo: week8 - baseline          mean_pct_change   -16.419 -23.148   -9.690
               Drug - Placebo diff_pct_change_of_means   -23.333 -34.993  -11.673
               Drug - Placebo     diff_mean_pct_change   -24.058 -40.906   -7.210
               Drug / Placebo    ratio_of_improvements     2.400   1.524    4.147

    By hand: week-8 means 4.5 and 6.25, so MD = -1.75 and ROM = ln(4.5 / 6.25) = -0.329; the
    pooled SD is 1.137 and Hedges' J(6) = 0.869, so g = 0.869 x -1.75 / 1.137 = -1.338; mean
    changes are -3 and -1.25 (MD_change -1.75, ratio 2.4) from means of 7.5 at baseline (-40% and
    -16.7%). The two SMD rows differ in their CI (Wald, then noncentral t), as ``method`` says.
    """
    _check_dataset(dataset)
    if n_boot is not None:
        seed = plan.seed if seed is None else seed
        _check_counts(n_boot, seed)  # a usage error, not a per-cell "not estimable"
        boot: tuple[int, int] | None = (int(n_boot), int(seed))
    else:
        boot = None
    labels = (plan.arms.treatment.label, plan.arms.control.label)
    level = plan.analysis.ci_level
    rows: list[dict[str, Any]] = []
    for outcome, visit, t, c in _cells(dataset, plan):
        cell = _Cell(outcome, visit, level)
        try:
            _cell_rows(cell, t, c, labels, plan.visits.baseline, boot)
        except (ModelError, UsageError) as error:  # a degenerate cell is a row saying why
            cell.add(contrast_label(*labels), "not estimable", None, None, note=f"not estimable: {error}")
        rows.extend(cell.rows)
    return _table(rows)


def _cell_rows(
    cell: _Cell,
    t: pd.DataFrame,
    c: pd.DataFrame,
    labels: tuple[str, str],
    baseline: str,
    boot: tuple[int, int] | None,
) -> None:
    """Every effect size of one outcome x visit cell (see :func:`effect_sizes_table`)."""
    for column in ("value", "baseline", "change", "pct_change"):  # missing is allowed, +-inf is not
        check_numeric(np.concatenate([t[column].to_numpy(dtype=float), c[column].to_numpy(dtype=float)]), column)
    level = cell.ci_level
    _between_rows(cell, t, c, labels, boot)
    values = np.concatenate(
        [t["value"].to_numpy(dtype=float), c["value"].to_numpy(dtype=float)]
    )
    values = values[np.isfinite(values)]
    yt, yc = (f["value"].to_numpy(dtype=float) for f in (t, c))
    yt, yc = yt[np.isfinite(yt)], yc[np.isfinite(yc)]
    if values.size and (values > 0).all() and min(yt.size, yc.size) >= 2:
        rom = log_ratio_of_means(
            yt.size,
            yt.mean(),
            yt.std(ddof=1),
            yc.size,
            yc.mean(),
            yc.std(ddof=1),
            ci_level=level,
        )
        cell.add(contrast_label(*labels, ratio=True), "ROM", yt.size, yc.size, rom)
    _prepost_rows(cell, t, c, labels, baseline, boot)


def between_arm_effects(dataset: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """Between-arm MD and Hedges' g at every follow-up visit (Wald and noncentral-t rows).

    The subset of :func:`effect_sizes_table` that the visit-by-visit between-arm summary needs, without
    bootstrap rows. Same columns.
    """
    _check_dataset(dataset)
    labels = (plan.arms.treatment.label, plan.arms.control.label)
    rows: list[dict[str, Any]] = []
    for outcome, visit, t, c in _cells(dataset, plan):
        cell = _Cell(outcome, visit, plan.analysis.ci_level)
        _between_rows(cell, t, c, labels, None)
        rows.extend(cell.rows)
    return _table(rows)


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "n_boot", "seed", "note"])
    return tidy_frame(frame)
