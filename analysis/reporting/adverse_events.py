"""Adverse events: the per-arm summary for grant reports.

The events come validated from :mod:`analysis.checks.adverse_events`. The summary counts
*participants* with at least one event (n and percent of the arm's
randomised participants, the safety population here) and *events* (every row), per arm and
overall: any event, any serious event, and each category.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def adverse_event_summary(events: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """Participants with events and event counts per arm and overall.

    Rows: ``any adverse event``, ``serious adverse event``, then one per category (sorted). Columns:
    ``row, category``, and for each group g in treatment, control, overall: ``g_participants``
    (participants with >= 1 such event), ``g_percent`` (100 x that / ``g_n``), ``g_events``
    (number of events) and ``g_n`` (randomised participants in the group, the denominator).
    """
    groups = {
        "treatment": participants[participants["arm"] == "treatment"],
        "control": participants[participants["arm"] == "control"],
        "overall": participants,
    }
    definitions: list[tuple[str, str | None, pd.Series]] = [
        ("any adverse event", None, pd.Series(True, index=events.index)),
        ("serious adverse event", None, events["serious"].astype(bool)),
    ]
    for category in sorted(events["category"].astype(str).unique()):
        definitions.append(("category", category, events["category"].astype(str) == category))
    rows = []
    for label, category, mask in definitions:
        row: dict[str, object] = {"row": label, "category": category}
        selected = events[mask]
        for group, people in groups.items():
            ids = set(people["participant_id"].astype(str))
            in_group = selected[selected["participant_id"].isin(ids)]
            n_people = int(in_group["participant_id"].nunique())
            row[f"{group}_participants"] = n_people
            row[f"{group}_percent"] = 100.0 * n_people / len(ids) if ids else np.nan
            row[f"{group}_events"] = len(in_group)
            row[f"{group}_n"] = len(ids)
        rows.append(row)
    return pd.DataFrame(rows)


def adverse_event_display(
    summary: pd.DataFrame,
    arm_labels: dict[str, str] | None = None,
    digits: int = 1,
    category_labels: dict[str, str] | None = None,
    suppress_below: int | None = None,
) -> pd.DataFrame:
    """Printable table: ``Event``, then per group "Participants, n (%)" and "Events" under a
    ``"<label> (N = n)"`` heading (a two-level header, ``" | "`` separated).

    ``category_labels`` prints a category code by its label (the plan's
    ``reporting.labels.adverse_event_category``). ``suppress_below`` (public release): per row,
    arm counts of participants with 0 < n < k are hidden (``*``) with a complementary arm cell,
    as the overall count is published (:func:`analysis.reporting.suppression.suppress_small_cells`,
    row totals only: categories overlap, so columns have no published total); a hidden cell hides
    its percentage and its number of events too (events >= participants would bound it).

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"row": ["any adverse event", "category"], "category": [None, "GI"],
    ...     "treatment_participants": [6, 2], "treatment_percent": [60.0, 20.0], "treatment_events": [9, 2],
    ...     "treatment_n": [10, 10], "control_participants": [5, 0], "control_percent": [50.0, 0.0],
    ...     "control_events": [5, 0], "control_n": [10, 10], "overall_participants": [11, 2],
    ...     "overall_percent": [55.0, 10.0], "overall_events": [14, 2], "overall_n": [20, 20]})
    >>> shown = adverse_event_display(summary, {"treatment": "Drug", "control": "Placebo"},
    ...                               category_labels={"GI": "Gastrointestinal"}, suppress_below=5)
    >>> shown.columns[1], shown.columns[2]
    ('Drug (N = 10) | Participants, n (%)', 'Drug (N = 10) | Events')
    >>> shown.iloc[1].tolist()
    ['  Gastrointestinal', '*', '*', '*', '*', '2 (10.0%)', '2']
    """
    labels = {"treatment": "Treatment", "control": "Control", "overall": "Overall"} | (arm_labels or {})
    names = category_labels or {}
    out = pd.DataFrame({"Event": [r if c is None or pd.isna(c) else f"  {names.get(str(c), c)}"
                                  for r, c in zip(summary["row"], summary["category"], strict=True)]})
    hidden = _hidden(summary, suppress_below)
    for group in ("treatment", "control", "overall"):
        n = int(summary[f"{group}_n"].iloc[0]) if len(summary) else 0
        head = f"{labels[group]} (N = {n})"
        out[f"{head} | Participants, n (%)"] = [
            "*" if h else f"{int(p)} ({pct:.{digits}f}%)"
            for p, pct, h in zip(summary[f"{group}_participants"], summary[f"{group}_percent"], hidden[group], strict=True)
        ]
        out[f"{head} | Events"] = ["*" if h else str(int(e)) for e, h in zip(summary[f"{group}_events"], hidden[group], strict=True)]
    return out


def _hidden(summary: pd.DataFrame, suppress_below: int | None) -> dict[str, np.ndarray]:
    """Per group, the rows whose participant count is suppressed (the overall column never is)."""
    hidden = {g: np.zeros(len(summary), dtype=bool) for g in ("treatment", "control", "overall")}
    if suppress_below is not None and len(summary):
        from analysis.reporting.suppression import suppress_small_cells

        counts = summary[["treatment_participants", "control_participants"]].astype(int).reset_index(drop=True)
        mask = suppress_small_cells(counts, suppress_below, row_totals=True, column_totals=False)
        hidden["treatment"], hidden["control"] = mask.iloc[:, 0].to_numpy(), mask.iloc[:, 1].to_numpy()
    return hidden


def suppress_summary(summary: pd.DataFrame, suppress_below: int) -> pd.DataFrame:
    """:func:`adverse_event_summary` for public release: the cells :func:`adverse_event_display`
    hides are missing (participants, percent, events) and flagged in ``<group>_suppressed``.

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"row": ["any adverse event"], "category": [None],
    ...     "treatment_participants": [2], "treatment_percent": [20.0], "treatment_events": [3], "treatment_n": [10],
    ...     "control_participants": [9], "control_percent": [90.0], "control_events": [9], "control_n": [10],
    ...     "overall_participants": [11], "overall_percent": [55.0], "overall_events": [12], "overall_n": [20]})
    >>> public = suppress_summary(summary, 5)
    >>> print(public[["treatment_participants", "control_events", "overall_participants", "treatment_suppressed"]].to_string(index=False))
     treatment_participants  control_events  overall_participants  treatment_suppressed
                       <NA>            <NA>                    11                  True
    """
    hidden = _hidden(summary, suppress_below)
    out = summary.copy()
    for group in ("treatment", "control"):
        for column in ("participants", "events"):
            out[f"{group}_{column}"] = pd.array(out[f"{group}_{column}"], dtype="Int64")
            out.loc[hidden[group], f"{group}_{column}"] = pd.NA
        out.loc[hidden[group], f"{group}_percent"] = np.nan
        out[f"{group}_suppressed"] = hidden[group]
    return out
