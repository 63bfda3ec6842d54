"""metafor-style frame entry point: :func:`escalc` applies the arm-summary measures row-wise.

Owns ``REQUIRED_COLUMNS`` (input columns per measure), ``OUTPUT_COLUMNS``
(``yi, vi, sei, ci_low, ci_high, note``), ``MISSING_TEXT`` and the row, parsing and error-report
helpers. The module is not named ``escalc`` so that it is not shadowed by the function of that
name re-exported from :mod:`analysis.stats.effects`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, UsageError, failure
from analysis.core.tidy import check_ci_level
from analysis.stats.effects.between_arm import (
    log_ratio_of_means,
    mean_difference,
    smd_heteroscedastic,
    standardized_mean_difference,
)
from analysis.stats.effects.common import (
    BETWEEN_MEASURES,
    MEASURES,
    SMC_VTYPES,
    SMD_VTYPES,
    EffectSize,
)
from analysis.stats.effects.prepost import mean_change, smcc, smcr
from analysis.stats.effects.reported import (
    DISTRIBUTIONS,
    SUMMARY_STEMS,
    arm_column,
    mean_sd,
    notes,
    problems,
)

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "MD": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "SMD": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "SMDH": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "ROM": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "MC": ("ni", "m1i", "m2i", "sd1i", "sd2i", "ri"),
    "SMCC": ("ni", "m1i", "m2i", "sd1i", "sd2i", "ri"),
    "SMCR": ("ni", "m1i", "m2i", "sd1i", "ri"),
}
OUTPUT_COLUMNS = ["yi", "vi", "sei", "ci_low", "ci_high", "note"]
MISSING_TEXT = {"", "na", "nan", "null", "none", "."}


def _one_row(measure: str, v: Mapping[str, float], ci_level: float, vtype: str) -> EffectSize:
    if measure in BETWEEN_MEASURES:
        args = (v["n1i"], v["m1i"], v["sd1i"], v["n2i"], v["m2i"], v["sd2i"])
        if measure == "MD":
            return mean_difference(*args, ci_level=ci_level, vtype=vtype)
        if measure == "SMD":
            return standardized_mean_difference(*args, ci_level=ci_level, vtype=vtype)
        if measure == "SMDH":
            return smd_heteroscedastic(*args, ci_level=ci_level, vtype=vtype)
        return log_ratio_of_means(*args, ci_level=ci_level)
    if measure == "MC":
        return mean_change(
            v["ni"], v["m1i"], v["m2i"], v["sd1i"], v["sd2i"], v["ri"], ci_level=ci_level
        )
    if measure == "SMCC":
        return smcc(
            v["ni"],
            v["m1i"],
            v["m2i"],
            v["sd1i"],
            v["sd2i"],
            v["ri"],
            ci_level=ci_level,
            vtype=vtype,
        )
    return smcr(v["ni"], v["m1i"], v["m2i"], v["sd1i"], v["ri"], ci_level=ci_level, vtype=vtype)


def _numeric(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers, plus a mask of cells that are present but not numbers."""
    text = column.astype(object).where(column.notna(), "")
    text = text.map(lambda x: str(x).strip())
    missing = text.str.lower().isin(MISSING_TEXT)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    return values.astype(float), values.isna() & ~missing


def escalc(
    measure: str,
    data: pd.DataFrame,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
    source: str = "<data>",
    reported_ci_level: float = 0.95,
    ci_distribution: str = "t",
) -> pd.DataFrame:
    """Effect sizes from arm-level summaries, row by row, like metafor ``escalc`` + ``summary``.

    Parameters
    ----------
    measure
        ``MD``, ``SMD`` (Hedges' g, exact J), ``SMDH``, ``ROM`` (between arms; columns ``n1i, m1i,
        sd1i, n2i, m2i, sd2i``, group 1 = treatment) or ``MC``, ``SMCC``, ``SMCR`` (within an arm;
        columns ``ni, m1i, m2i, sd1i, sd2i, ri`` with 1 = post, 2 = pre; ``SMCR`` standardises by
        ``sd1i`` exactly as metafor does, so put the pretest SD there, and does not need ``sd2i``).
    data
        One row per study/arm. Other columns pass through unchanged.
    ci_level
        Level of the Wald interval ``yi -/+ z sqrt(vi)``.
    vtype
        Variance type, metafor's names; default ``"LS"`` (metafor's default).
    source
        File name used in error reports.
    reported_ci_level, ci_distribution
        For published summaries (below): the level of a reported CI of an arm's mean where no
        ``ci_level1i`` / ``ci_level2i`` cell gives it (default 0.95), and the quantile that CI used,
        ``"t"`` with n - 1 df (default, the Cochrane Handbook's small-sample rule, for every n) or
        ``"z"`` (3.92 for 95%).

    Returns
    -------
    pandas.DataFrame
        ``data`` plus ``yi, vi, sei, ci_low, ci_high, note``. A row with a missing input keeps its
        place with empty results and a ``note`` naming the missing column(s).

    Published summaries: except for ``SMCR``, an arm's mean and SD may instead be given as a paper
    reports them, in columns named as in ``data/schemas/published_summaries.md`` with metafor's
    suffix (:func:`analysis.stats.effects.reported.arm_column`): ``se1i``; ``ci_low1i, ci_high1i``
    (+ ``ci_level1i``); ``median1i`` with ``q1_1i, q3_1i`` or ``minimum1i, maximum1i`` (and ``...2i``).
    Each row and arm is converted by :func:`analysis.stats.effects.reported.mean_sd` (a reported SD
    or mean always wins); empty ``m1i`` / ``sd1i`` cells are filled in (absent columns are added),
    a ``method`` column names each arm's conversion and ``note`` says what was not used.

    Raises
    ------
    DataError
        Impossible input (required column absent, a non-number, SD < 0, n < 2, |r| > 1, a
        non-positive mean for ROM), listing every offending cell (file, row, column, rule, value;
        row numbered as in a CSV file with a header, so the first data row is 2).

    Examples
    --------
    >>> d = pd.DataFrame({"n1i": [155], "m1i": [55], "sd1i": [47], "n2i": [156], "m2i": [75], "sd2i": [64]})
    >>> escalc("MD", d)[["yi", "vi"]].round(4).values.tolist()
    [[-20.0, 40.508]]
    """
    if measure not in MEASURES:
        raise UsageError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    check_ci_level(ci_level)
    allowed = {
        "MD": ("LS", "UB", "HO"),
        "ROM": ("LS",),
        "SMD": SMD_VTYPES,
        "SMDH": ("LS", "LS2", "LS3"),
        "MC": ("LS",),
    }
    if vtype not in allowed.get(measure, SMC_VTYPES):
        raise UsageError(
            f"vtype {vtype!r} is not available for {measure}; choose one of {', '.join(allowed.get(measure, SMC_VTYPES))}"
        )
    required = REQUIRED_COLUMNS[measure]
    summary = _summary_columns(measure, data.columns, reported_ci_level, ci_distribution)
    derivable = [c for c in required if c not in data.columns and _derivable(c, summary)]
    absent = [c for c in required if c not in data.columns and c not in derivable]
    if absent:
        rows = [failure(source, 1, c, f"column required for {measure}", "") for c in absent]
        raise DataError(
            _failure_message(
                f"{source}: missing column(s) {', '.join(absent)} required for {measure}", rows
            ),
            pd.DataFrame(rows),
        )
    values: dict[str, pd.Series] = {}
    failures: list[dict[str, object]] = []
    for column in [*required, *summary]:
        if column in derivable:
            values[column] = pd.Series(np.nan, index=data.index, dtype=float)
            continue
        numbers, bad = _numeric(data[column])
        values[column] = numbers
        for i in np.flatnonzero(bad.to_numpy()):
            failures.append(
                failure(source, int(i) + 2, column, "must be a number", data[column].iloc[i])
            )
    for column in required:
        numbers = values[column]
        if column.startswith("sd"):
            rule, bad = "SD must be >= 0", numbers < 0
        elif column.startswith("n"):
            rule, bad = "n must be >= 2", numbers < 2
        elif column == "ri":
            rule, bad = "|r| must be <= 1", numbers.abs() > 1
        elif measure == "ROM":
            rule, bad = "mean must be > 0 for ROM", numbers <= 0
        else:
            continue
        for i in np.flatnonzero(bad.to_numpy()):
            failures.append(failure(source, int(i) + 2, column, rule, data[column].iloc[i]))
    conversions = (
        _convert_summaries(measure, data, values, summary, source, failures, reported_ci_level, ci_distribution)
        if summary
        else None
    )
    if failures:
        order = [*required, *summary]
        failures.sort(key=lambda f: (f["row"], order.index(f["column"])))
        raise DataError(
            _failure_message(
                f"{source}: {len(failures)} impossible value(s) for {measure}", failures
            ),
            pd.DataFrame(failures),
        )
    columns = OUTPUT_COLUMNS if conversions is None else [*OUTPUT_COLUMNS[:-1], "method", "note"]
    results: dict[str, list[Any]] = {c: [] for c in columns}
    for i in range(len(data)):
        row = {c: float(values[c].iloc[i]) for c in required}
        missing = [c for c in required if math.isnan(row[c])]
        if missing:
            es, note = None, f"not computed: missing {', '.join(missing)}"
        else:
            es, note = _safe_row(measure, row, ci_level, vtype)
        for c, v in zip(
            OUTPUT_COLUMNS,
            (es.estimate, es.variance, es.std_error, es.ci_low, es.ci_high)
            if es
            else (math.nan,) * 5,
            strict=False,
        ):
            results[c].append(v)
        if conversions is not None:
            results["method"].append(conversions[0][i])
            note = "; ".join(t for t in (note, *conversions[1][i]) if t) or None
        results["note"].append(note)
    out = data.copy()
    if conversions is not None:  # metafor's replace="ifna": fill empty means and SDs, add absent columns
        for c in (c for c in required if c[0] in "ms"):
            if c not in data.columns:
                out[c] = values[c]
            else:  # a reported cell keeps its text; only empty cells that a conversion filled change
                keep = _numeric(data[c])[0].notna() | values[c].isna()
                out[c] = data[c].where(keep, values[c])
    for c in columns:
        out[c] = pd.Series(results[c], index=out.index, dtype=object if c in ("method", "note") else float)
    return out


def _summary_columns(measure: str, columns: pd.Index, ci_level: float, distribution: str) -> dict[str, tuple[int, str]]:
    """Published-summary columns in ``columns``: column -> (group, stem), e.g. ``q1_2i -> (2, "q1")``."""
    found = {arm_column(stem, slot): (slot, stem) for slot in (1, 2) for stem in SUMMARY_STEMS}
    found = {c: found[c] for c in columns if c in found}
    if found:
        if measure == "SMCR":
            raise UsageError(
                f"SMCR reads no published-summary columns ({', '.join(found)}): its sd1i is the pretest SD, "
                "not the SD of m1i; convert them first (for example with --measure MC, which fills m1i, sd1i, m2i, sd2i)"
            )
        check_ci_level(ci_level)
        if distribution not in DISTRIBUTIONS:
            raise UsageError(f"the quantile of a reported CI must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
    return found


def _derivable(column: str, summary: dict[str, tuple[int, str]]) -> bool:
    """An absent ``m1i`` / ``sd1i`` column that the group's published summaries can fill."""
    slot, stems = int(column[-2]), {stem for s, stem in summary.values() if s == int(column[-2])}
    if column == arm_column("mean", slot):
        return "median" in stems
    return column == arm_column("sd", slot) and bool(stems - {"median", "ci_level"})


def _convert_summaries(
    measure: str, data: pd.DataFrame, values: dict[str, pd.Series], summary: dict[str, tuple[int, str]],
    source: str, failures: list[dict[str, object]], ci_level: float, distribution: str,
) -> tuple[list[str | None], list[list[str]]] | None:
    """Check the published summaries (failures appended), then fill ``values``' means and SDs in place.

    Returns each row's ``method`` text and notes (per arm, :mod:`analysis.stats.effects.reported`).
    """
    slots = {slot: {stem: c for c, (s, stem) in summary.items() if s == slot} for slot in (1, 2)}
    for i in range(len(data)):
        for stems in slots.values():
            cells = {stem: float(values[c].iloc[i]) for stem, c in stems.items()}
            for stem, rule in problems(cells):
                failures.append(failure(source, i + 2, stems[stem], rule.format(**stems), data[stems[stem]].iloc[i]))
    if failures:
        return None
    methods: list[str | None] = []
    said: list[list[str]] = []
    for i in range(len(data)):
        parts, row_notes = [], []
        for slot, stems in slots.items():
            m, sd = arm_column("mean", slot), arm_column("sd", slot)
            n = float(values["ni" if measure in ("MC", "SMCC") else f"n{slot}i"].iloc[i])
            cells = {stem: float(values[c].iloc[i]) for stem, c in stems.items()}
            cells.update(mean=float(values[m].iloc[i]), sd=float(values[sd].iloc[i]))
            try:
                result = mean_sd(n, cells, ci_level=ci_level, distribution=distribution)
            except UsageError as error:  # e.g. a conversion beyond the floating-point range
                row_notes.append(f"{m}, {sd} not converted: {error}")
                continue
            values[m].iloc[i], values[sd].iloc[i] = result.mean, result.sd
            if result.conversion:
                parts.append(f"{m}, {sd}: {result.conversion}")
            row_notes += notes(result, n, lambda stem, slot=slot: arm_column(stem, slot))
            if measure == "ROM" and result.mean_from not in (None, "reported") and result.mean <= 0:
                failures.append(failure(source, i + 2, stems["median"], f"the mean from {stems['median']} must be > 0 for ROM", data[stems["median"]].iloc[i]))
        methods.append("; ".join(parts) or None)
        said.append(row_notes)
    return methods, said


def _safe_row(
    measure: str, row: dict[str, float], ci_level: float, vtype: str
) -> tuple[EffectSize | None, str | None]:
    es = _one_row(measure, row, ci_level, vtype)
    if not (math.isfinite(es.estimate) and math.isfinite(es.variance)):
        return None, es.note or "not computed: the effect size or its variance is not a finite number"
    return es, es.note


def _failure_message(summary: str, failures: list[dict[str, object]]) -> str:
    lines = [summary + ":"] + [
        f"  file {f['file']}, row {f['row']}, column {f['column']}: {f['rule']} (value: {f['value']!r})"
        for f in failures
    ]
    return "\n".join(lines)
