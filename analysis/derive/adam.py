"""Checking an ADaM BDS's own derived variables (BASE, CHG, PCHG, ABLFL) against trialkit's.

A BDS read by :func:`analysis.sources.adam.read_adam` carries the sponsor's derivations; when the
plan keeps ``data.adam.check_derived`` on (the default), every record whose BASE, CHG, PCHG or
ABLFL disagrees with :mod:`analysis.derive.dataset` is reported before anything is analysed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core.errors import FAILURE_COLUMNS, DataError, failure
from analysis.derive.dataset import derive_baseline, derive_change, derive_pct_change
from analysis.plan import Plan
from analysis.sources.files import RawTable


def derived_disagreements(bds: pd.DataFrame, long: pd.DataFrame, plan: Plan, file: str) -> list[dict]:
    """Rows where the file's BASE, CHG, PCHG or ABLFL disagree with trialkit's derivations.

    ``long`` holds the rows used (participant_id, outcome, visit, value, source_row). Our values
    come from :func:`analysis.derive.dataset.derive_baseline`, :func:`~analysis.derive.dataset.derive_change` and
    :func:`~analysis.derive.dataset.derive_pct_change`; numbers agree when both are missing or they differ
    by at most 1e-8 x max(1, |ours|). CHG and PCHG are compared on post-baseline records only (on
    the baseline record ADaM leaves them to the sponsor). Nothing is checked when a participant x
    parameter x visit repeats or an AVAL is not a number (validation reports those).
    """
    if long.duplicated(["participant_id", "outcome", "visit"]).any():
        return []
    frame = long[["participant_id", "outcome", "visit"]].copy()
    frame["value"] = pd.to_numeric(long["value"], errors="coerce")
    if (frame["value"].isna() & long["value"].notna()).any():
        return []  # an AVAL that is not a number: validation names it; comparing would only blame CHG
    ours = derive_pct_change(derive_change(derive_baseline(frame, plan.visits.baseline)))
    rows = long["source_row"].to_numpy()
    source = bds.loc[rows]
    problems = []
    post = ~ours["baseline_flag"].to_numpy()
    for variable, column, where, what in (
        ("BASE", "baseline", np.ones(len(ours), bool), f"AVAL at the plan's baseline visit '{plan.visits.baseline}'"),
        ("CHG", "change", post, "AVAL - BASE"),
        ("PCHG", "pct_change", post, "100 x (AVAL - BASE) / BASE, missing when BASE is 0"),
    ):
        if variable not in source:
            continue
        theirs = pd.to_numeric(source[variable], errors="coerce").to_numpy(dtype=float)
        mine = ours[column].to_numpy(dtype=float)
        both_missing = np.isnan(theirs) & np.isnan(mine)
        close = np.abs(theirs - mine) <= 1e-8 * np.maximum(1.0, np.abs(mine))
        bad = where & ~(both_missing | close)
        for i in np.flatnonzero(bad):
            problems.append(failure(file, int(rows[i]), variable, f"{variable} must equal trialkit's derivation ({what})",
                                    f"{source[variable].iloc[i]} (trialkit: {'' if np.isnan(mine[i]) else f'{mine[i]:.10g}'})"))
    if "ABLFL" in source:
        flagged = source["ABLFL"].astype(object).fillna("").astype(str).str.strip().str.upper().to_numpy() == "Y"
        for i in np.flatnonzero(flagged != ours["baseline_flag"].to_numpy()):
            problems.append(failure(file, int(rows[i]), "ABLFL", f"ABLFL must be 'Y' exactly on the plan's baseline visit '{plan.visits.baseline}'",
                                    source["ABLFL"].iloc[i]))
    return problems


def check_adam_derivations(measurements_raw: RawTable, measurements: pd.DataFrame, plan: Plan) -> None:
    """Raise a :class:`~analysis.core.errors.DataError` listing every disagreeing BDS record.

    Does nothing unless the plan's source is ADaM with ``check_derived`` on (the default).
    """
    src = plan.data.adam
    if src is None or not src.check_derived:
        return
    problems = derived_disagreements(measurements_raw.frame, measurements, plan, str(measurements_raw.path))
    if problems:
        failures = pd.DataFrame(problems, columns=FAILURE_COLUMNS)
        failures["value"] = failures["value"].astype(str)
        failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        raise DataError(
            f"{len(failures)} BDS record value(s) in {measurements_raw.path.name} disagree with trialkit's derivation "
            "(set check_derived: false in data.adam to skip this check)",
            failures,
        )
