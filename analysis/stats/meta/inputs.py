"""From a table of effect sizes (the CLI and the notebook): :func:`effects_from_table` validates it
(the file is read by :func:`analysis.sources.tables.read_csv_text`), :func:`meta_analyse` pools it into a fit and its tidy table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, UsageError, failure
from analysis.stats.meta.pooling import MetaResult, Method, Test, pool
from analysis.stats.meta.tables import meta_table

EFFECT_COLUMNS = ("study", "yi", "vi")
ARM_COLUMNS = ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i")


def effects_from_table(frame: pd.DataFrame, *, measure: str | None = None, source: str = "<table>") -> pd.DataFrame:
    """Validate an effects table and return ``study, measure, yi, vi`` (plus ``n1i``/``n2i`` if given).

    The input has a ``study`` column and either ``yi`` and ``vi`` (as ``trialkit escalc`` writes
    them; a ``measure`` column, if present, names the measure) or, with ``measure`` (MD, SMD, SMDH
    or ROM), the arm summaries ``n1i, m1i, sd1i, n2i, m2i, sd2i`` (group 1 = treatment), from which
    ``yi, vi`` are computed by the effect-size engine :func:`analysis.stats.effects.escalc`. Row ``j`` of
    ``frame`` is reported as file row ``j + 2`` (a CSV with one header line).

    Raises
    ------
    DataError
        Listing every failure (file, row, column, rule, value): missing columns, missing or
        non-numeric values, ``vi <= 0``, repeated or empty study labels, fewer than two studies,
        effect sizes the engine cannot compute. Nothing is dropped silently.

    Examples
    --------
    >>> frame = pd.DataFrame({"study": ["A", "B"], "yi": [0.1, 0.3], "vi": [0.01, 0.02]})
    >>> effects_from_table(frame, measure="SMD")["measure"].tolist()
    ['SMD', 'SMD']
    """
    from analysis.stats.effects import BETWEEN_MEASURES, escalc  # the one effect-size engine

    failures: list[dict[str, object]] = []
    columns = list(frame.columns)
    use_arms = measure is not None and not {"yi", "vi"} <= set(columns)
    if use_arms and measure not in BETWEEN_MEASURES:
        raise UsageError(f"--measure must be one of {', '.join(BETWEEN_MEASURES)} for arm summaries (found {measure!r})")
    needed = ("study", *ARM_COLUMNS) if use_arms else EFFECT_COLUMNS
    missing = [c for c in needed if c not in columns]
    if missing:
        hint = "" if use_arms else " (or give arm summaries n1i, m1i, sd1i, n2i, m2i, sd2i with --measure)"
        failures = [failure(source, 1, column, "required column" + hint, "") for column in missing]
        raise DataError(_message(source, failures), pd.DataFrame(failures))

    frame = frame.reset_index(drop=True)
    rows = np.arange(len(frame)) + 2
    study = frame["study"]
    labels = study.astype(object).where(study.notna(), "").map(lambda x: str(x).strip())
    for j in np.flatnonzero((labels == "").to_numpy()):
        failures.append(failure(source, int(rows[j]), "study", "study label is required", ""))
    for j in np.flatnonzero((labels.duplicated(keep="first") & (labels != "")).to_numpy()):
        failures.append(failure(source, int(rows[j]), "study", "study labels must be unique", labels.iloc[j]))
    if len(frame) < 2:
        failures.append(failure(source, "", "study", "a meta-analysis needs at least two studies", len(frame)))

    out = pd.DataFrame({"study": labels.to_numpy(dtype=object)})
    if use_arms:
        if failures:
            raise DataError(_message(source, failures), pd.DataFrame(failures))
        computed = escalc(measure, frame[list(ARM_COLUMNS)], source=source)  # raises for impossible values
        for j in np.flatnonzero(computed["yi"].isna().to_numpy()):
            failures.append(failure(source, int(rows[j]), "yi", f"{measure} cannot be computed: {computed['note'].iloc[j]}", ""))
        out["measure"] = measure
        out["yi"] = computed["yi"].to_numpy(dtype=float)
        out["vi"] = computed["vi"].to_numpy(dtype=float)
        out["n1i"] = pd.to_numeric(frame["n1i"], errors="coerce").to_numpy(dtype=float)
        out["n2i"] = pd.to_numeric(frame["n2i"], errors="coerce").to_numpy(dtype=float)
    else:
        numbers = {}
        for column in ("yi", "vi"):
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce").astype(float)
            for j in np.flatnonzero(values.isna().to_numpy()):
                empty = pd.isna(raw.iloc[j]) or str(raw.iloc[j]).strip() == ""
                failures.append(failure(source, int(rows[j]), column, "value is required" if empty else "must be a number", "" if empty else raw.iloc[j]))
            for j in np.flatnonzero((values.notna() & ~np.isfinite(values)).to_numpy()):
                failures.append(failure(source, int(rows[j]), column, "must be finite", raw.iloc[j]))
            numbers[column] = values
        for j in np.flatnonzero((numbers["vi"] <= 0).to_numpy()):
            failures.append(failure(source, int(rows[j]), "vi", "sampling variance must be > 0", frame["vi"].iloc[j]))
        found = sorted(set(frame["measure"].dropna().astype(str))) if "measure" in columns else []
        if len(found) > 1:
            failures.append(failure(source, "", "measure", "one measure per meta-analysis", ", ".join(found)))
        elif found and measure is not None and found[0] != measure:
            failures.append(failure(source, "", "measure", f"must match --measure {measure}", found[0]))
        out["measure"] = found[0] if found else (measure or "")
        out["yi"] = numbers["yi"].to_numpy()
        out["vi"] = numbers["vi"].to_numpy()
        for column in ("n1i", "n2i"):
            if column in columns:
                out[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if failures:
        failures.sort(key=lambda f: (f["row"] if isinstance(f["row"], int) else 10**12, str(f["column"])))
        raise DataError(_message(source, failures), pd.DataFrame(failures))
    return out


def _message(source: str, failures: list[dict[str, object]]) -> str:
    lines = []
    for f in failures[:20]:
        where = f"row {f['row']}, " if f["row"] != "" else ""
        value = f" (found {f['value']!r})" if f["value"] != "" else ""
        lines.append(f"  {source}: {where}column '{f['column']}': {f['rule']}{value}")
    more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
    return f"{source}: {len(failures)} problem(s) in the effects table:\n" + "\n".join(lines) + more


def meta_analyse(
    effects: pd.DataFrame,
    *,
    method: Method = "REML",
    test: Test = "z",
    ci_level: float = 0.95,
    exponentiate: bool = False,
) -> tuple[MetaResult, pd.DataFrame]:
    """Pool a validated effects table (from :func:`effects_from_table`); returns the fit and its tidy table.

    Examples
    --------
    >>> effects = pd.DataFrame({"study": ["A", "B"], "measure": "MD", "yi": [1.0, 2.0], "vi": [1.0, 1.0]})
    >>> fit, table = meta_analyse(effects, method="FE")
    >>> round(fit.estimate, 6)
    1.5
    """
    measure = str(effects["measure"].iloc[0]) if "measure" in effects.columns and len(effects) else ""
    fit = pool(effects["yi"], effects["vi"], studies=effects["study"].tolist(), method=method, test=test, ci_level=ci_level)
    n1 = effects["n1i"].to_numpy() if "n1i" in effects.columns else None
    n2 = effects["n2i"].to_numpy() if "n2i" in effects.columns else None
    return fit, meta_table(fit, measure=measure, exponentiate=exponentiate, n_treatment=n1, n_control=n2)
