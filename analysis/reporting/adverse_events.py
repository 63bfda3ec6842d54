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


def adverse_event_display(summary: pd.DataFrame, arm_labels: dict[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Printable table: ``Event``, then per group "participants (%)" and "events" columns."""
    labels = {"treatment": "Treatment", "control": "Control", "overall": "Overall"} | (arm_labels or {})
    out = pd.DataFrame({"Event": [r if c is None or pd.isna(c) else f"  {c}" for r, c in zip(summary["row"], summary["category"], strict=True)]})
    for group in ("treatment", "control", "overall"):
        n = int(summary[f"{group}_n"].iloc[0]) if len(summary) else 0
        out[f"{labels[group]} (n = {n}): participants, n (%)"] = [
            f"{p} ({pct:.{digits}f}%)" for p, pct in zip(summary[f"{group}_participants"], summary[f"{group}_percent"], strict=True)
        ]
        out[f"{labels[group]}: events"] = summary[f"{group}_events"].astype(int).astype(str).to_numpy()
    return out
