"""Derivations that turn validated measurements into the analysis dataset (ADaM BDS-like).

One derivation per function, each named by the column(s) it adds and each checking its input
columns first (after admiral's ``derive_var_base`` / ``derive_var_chg`` / ``derive_var_pchg``).
The analysis dataset has one row per participant x outcome x visit, for every randomised
participant and every visit the plan declares, so a missed visit is a row with a missing value,
never an absent row:

``participant_id, arm, outcome, visit, visit_week, value, baseline, change, pct_change,
baseline_flag`` plus ``responder_points`` / ``responder_percent`` for outcomes with an MCID, and
``visit_day`` / ``visit_month`` after ``visit_week`` when the plan counts visit time in days or
months. The participants' ``disposition``, when the file has none, is derived in
:mod:`analysis.derive.disposition`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.plan import Outcome, Plan

ANALYSIS_COLUMNS = [
    "participant_id",
    "arm",
    "outcome",
    "visit",
    "visit_week",
    "value",
    "baseline",
    "change",
    "pct_change",
    "baseline_flag",
]


def _require(frame: pd.DataFrame, columns: Iterable[str], derivation: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{derivation} needs column(s) {missing}; the input has {list(frame.columns)}")


def expand_visit_grid(measurements: pd.DataFrame, participants: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """One row per randomised participant x declared outcome x declared visit, with its ``arm``.

    Visits a participant did not attend get ``value`` NaN. Requires validated inputs (unique
    participant x outcome x visit, known participants).
    """
    _require(measurements, ["participant_id", "outcome", "visit", "value"], "expand_visit_grid")
    _require(participants, ["participant_id", "arm"], "expand_visit_grid")
    grid = pd.MultiIndex.from_product(
        [participants["participant_id"], [o.name for o in plan.outcomes], plan.visits.labels],
        names=["participant_id", "outcome", "visit"],
    ).to_frame(index=False)
    frame = grid.merge(measurements[["participant_id", "outcome", "visit", "value"]], how="left", validate="one_to_one")
    arms = participants.set_index("participant_id")["arm"]
    frame.insert(1, "arm", frame["participant_id"].map(arms))
    return frame


def derive_visit_week(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Add ``visit_week`` (0 at baseline, the plan's week number at each follow-up) and, for a plan
    whose ``visits.time_unit`` is days or months, the time as the plan gives it in ``visit_day`` /
    ``visit_month`` (``visit_week`` is then that time in weeks: days / 7, months x 365.25 / 12 / 7).
    """
    _require(frame, ["visit"], "derive_visit_week")
    out = frame.copy()
    out["visit_week"] = out["visit"].map(plan.visits.weeks).astype(float)
    if plan.visits.time_column != "visit_week":
        out[plan.visits.time_column] = out["visit"].map(plan.visits.times).astype(float)
    return out


def derive_baseline(frame: pd.DataFrame, baseline_visit: str) -> pd.DataFrame:
    """Add ``baseline_flag`` (row is the baseline visit) and ``baseline`` (that row's value).

    ``baseline`` is repeated on every row of the participant x outcome, and is missing when the
    baseline value is missing (after admiral's ``derive_var_base``).

    Parameters
    ----------
    frame
        Long rows with ``participant_id, outcome, visit, value``; at most one row per participant
        x outcome at the baseline visit.
    baseline_visit
        The plan's baseline visit label.

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``baseline_flag`` (bool) and ``baseline`` (float) added.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"participant_id": ["p1", "p1", "p2", "p2"], "outcome": "pain",
    ...                       "visit": ["baseline", "week4", "baseline", "week4"],
    ...                       "value": [7.0, 4.0, None, 5.0]})
    >>> derive_baseline(frame, "baseline")
      participant_id outcome     visit  value  baseline_flag  baseline
    0             p1    pain  baseline    7.0           True       7.0
    1             p1    pain     week4    4.0          False       7.0
    2             p2    pain  baseline    NaN           True       NaN
    3             p2    pain     week4    5.0          False       NaN
    """
    _require(frame, ["participant_id", "outcome", "visit", "value"], "derive_baseline")
    out = frame.copy()
    out["baseline_flag"] = out["visit"] == baseline_visit
    base = out.loc[out["baseline_flag"]].set_index(["participant_id", "outcome"])["value"]
    keys = pd.MultiIndex.from_frame(out[["participant_id", "outcome"]])
    out["baseline"] = base.reindex(keys).to_numpy()
    return out


def derive_change(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``change = value - baseline``; missing on the baseline row and when either is missing.

    After admiral's ``derive_var_chg``.

    Parameters
    ----------
    frame
        Rows with ``value``, ``baseline`` and ``baseline_flag`` (:func:`derive_baseline`).

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``change`` added.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"participant_id": ["p1", "p1", "p2", "p2"], "outcome": "pain",
    ...                       "visit": ["baseline", "week4", "baseline", "week4"],
    ...                       "value": [7.0, 4.0, 6.0, None]})
    >>> out = derive_change(derive_baseline(frame, "baseline"))
    >>> out[["participant_id", "visit", "value", "baseline", "change"]]
      participant_id     visit  value  baseline  change
    0             p1  baseline    7.0       7.0     NaN
    1             p1     week4    4.0       7.0    -3.0
    2             p2  baseline    6.0       6.0     NaN
    3             p2     week4    NaN       6.0     NaN
    """
    _require(frame, ["value", "baseline", "baseline_flag"], "derive_change")
    out = frame.copy()
    out["change"] = (out["value"] - out["baseline"]).where(~out["baseline_flag"])
    return out


def derive_pct_change(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``pct_change = 100 * change / baseline``; missing when baseline is 0 or missing.

    Missing on the baseline row (where ``change`` is missing). After admiral's
    ``derive_var_pchg``.

    Parameters
    ----------
    frame
        Rows with ``change`` and ``baseline`` (:func:`derive_change`).

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``pct_change`` added.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"participant_id": ["p1", "p1", "p2", "p2"], "outcome": "pain",
    ...                       "visit": ["baseline", "week4", "baseline", "week4"],
    ...                       "value": [8.0, 6.0, 0.0, 2.0]})
    >>> out = derive_pct_change(derive_change(derive_baseline(frame, "baseline")))
    >>> out[["participant_id", "visit", "baseline", "change", "pct_change"]]
      participant_id     visit  baseline  change  pct_change
    0             p1  baseline       8.0     NaN         NaN
    1             p1     week4       8.0    -2.0       -25.0
    2             p2  baseline       0.0     NaN         NaN
    3             p2     week4       0.0     2.0         NaN
    """
    _require(frame, ["change", "baseline"], "derive_pct_change")
    out = frame.copy()
    usable = out["baseline"].notna() & (out["baseline"] != 0)
    out["pct_change"] = (100.0 * out["change"] / out["baseline"]).where(usable)
    return out


def derive_responders(frame: pd.DataFrame, outcomes: Iterable[Outcome]) -> pd.DataFrame:
    """Add responder flags from each outcome's MCID, respecting the direction of improvement.

    ``responder_points``: improvement ``sign * change >= mcid.points``;
    ``responder_percent``: improvement ``sign * pct_change >= mcid.percent``, where ``sign`` is
    +1 when higher is better and -1 when lower is better. Nullable booleans: missing on baseline
    rows, when the change (or percent change) is missing, and for outcomes without that MCID.
    """
    _require(frame, ["outcome", "change", "pct_change"], "derive_responders")
    out = frame.copy()
    out["responder_points"] = pd.array([pd.NA] * len(out), dtype="boolean")
    out["responder_percent"] = pd.array([pd.NA] * len(out), dtype="boolean")
    for outcome in outcomes:
        if outcome.mcid is None:
            continue
        rows = out["outcome"] == outcome.name
        for column, source, threshold in (
            ("responder_points", "change", outcome.mcid.points),
            ("responder_percent", "pct_change", outcome.mcid.percent),
        ):
            if threshold is None:
                continue
            improvement = outcome.improvement_sign * out.loc[rows, source]
            flag = pd.array(np.where(improvement.isna(), pd.NA, improvement >= threshold), dtype="boolean")
            out.loc[rows, column] = flag
    return out


def build_analysis_dataset(measurements: pd.DataFrame, participants: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The analysis dataset: the visit grid with every derivation applied, in a stable order.

    One row per randomised participant x outcome x visit of the plan (a visit with no measurement
    is a row with a missing ``value``), then ``visit_week``, ``baseline``/``baseline_flag``,
    ``change = value - baseline``, ``pct_change = 100 * change / baseline`` and the responder
    flags (see the module docstring). Sorted by outcome (plan order), participant, visit week.

    Parameters
    ----------
    measurements
        Validated long measurements: ``participant_id, outcome, visit, value``.
    participants
        Validated participants: ``participant_id`` and ``arm`` (``treatment`` / ``control``).
    plan
        The study plan (outcomes, visits, MCIDs).

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id, arm, outcome, visit, visit_week, value, baseline, change,
        pct_change, baseline_flag, responder_points, responder_percent``; with ``visit_day`` or
        ``visit_month`` after ``visit_week`` when the plan's ``time_unit`` is days or months.

    Examples
    --------
    Participant ``p2`` has no week-4 measurement; the dataset still has the row:

    >>> import pandas as pd
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week4, week: 4}], primary: week4}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... ''')
    >>> participants = pd.DataFrame({"participant_id": ["p1", "p2"], "arm": ["treatment", "control"]})
    >>> measurements = pd.DataFrame({"participant_id": ["p1", "p1", "p2"], "outcome": "pain",
    ...                              "visit": ["baseline", "week4", "baseline"],
    ...                              "value": [7.0, 4.0, 6.0]})
    >>> dataset = build_analysis_dataset(measurements, participants, plan)
    >>> shown = ["participant_id", "arm", "visit", "visit_week", "value", "change", "responder_points"]
    >>> print(dataset[shown].to_string(index=False))
    participant_id       arm    visit  visit_week  value  change  responder_points
                p1 treatment baseline         0.0    7.0     NaN              <NA>
                p1 treatment    week4         4.0    4.0    -3.0              True
                p2   control baseline         0.0    6.0     NaN              <NA>
                p2   control    week4         4.0    NaN     NaN              <NA>
    """
    frame = expand_visit_grid(measurements, participants, plan)
    frame = derive_visit_week(frame, plan)
    frame = derive_baseline(frame, plan.visits.baseline)
    frame = derive_change(frame)
    frame = derive_pct_change(frame)
    frame = derive_responders(frame, plan.outcomes)
    order = {name: i for i, name in enumerate(o.name for o in plan.outcomes)}
    frame = frame.sort_values(
        ["outcome", "participant_id", "visit_week"],
        key=lambda s: s.map(order) if s.name == "outcome" else s,
        kind="stable",
    )
    columns = ANALYSIS_COLUMNS + ["responder_points", "responder_percent"]
    if plan.visits.time_column != "visit_week":  # the plan's own time unit, beside visit_week
        columns.insert(columns.index("visit_week") + 1, plan.visits.time_column)
    return frame[columns].reset_index(drop=True)
