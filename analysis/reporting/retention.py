"""Enrollment and retention for a reporting period.

* Cumulative enrollment: participants by ``enrolled_on`` up to the end of the reporting period,
  overall and per arm, drawn against the plan's ``target_enrollment``.
* Retention per arm x visit: of the participants whose visit was *due* by the period end
  (``enrolled_on + 7 x visit_week <= period_end``), how many attended, where attended means at
  least one outcome of the plan has a value at that visit. Participants not yet due are not
  counted as missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core.errors import UsageError
from analysis.plan import Plan
from analysis.reporting.figures import WIDTH as FIGURE_WIDTH

ARMS = ("treatment", "control")


def _period_end(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UsageError(f"period end '{value}' is not a date (use YYYY-MM-DD)") from None
    if pd.isna(stamp):
        raise UsageError("period end is missing")
    return stamp.normalize()


def _enrolled(participants: pd.DataFrame) -> pd.Series:
    if "enrolled_on" not in participants.columns:
        raise UsageError("the participants table lacks column 'enrolled_on'")
    dates = pd.to_datetime(participants["enrolled_on"], errors="coerce")
    if dates.isna().any():
        first = participants.loc[dates.isna(), "participant_id"].iloc[0]
        raise UsageError(f"{int(dates.isna().sum())} participant(s) have no enrolment date (first: {first})")
    return dates.dt.normalize()


def cumulative_enrollment(participants: pd.DataFrame, period_end: object, period_start: object | None = None) -> pd.DataFrame:
    """Cumulative enrollment by date up to ``period_end`` (inclusive).

    Returns one row per enrolment date with columns ``date, enrolled, cumulative,
    cumulative_treatment, cumulative_control, in_period`` (``in_period``: on or after
    ``period_start`` when given, else True). Cumulative counts run from the first participant.
    """
    end = _period_end(period_end)
    start = _period_end(period_start) if period_start is not None else None
    if start is not None and start > end:
        raise UsageError(f"period start {start.date()} is after period end {end.date()}")
    dates = _enrolled(participants)
    frame = pd.DataFrame({"date": dates, "arm": participants["arm"].astype(str).to_numpy()})
    frame = frame[frame["date"] <= end]
    if frame.empty:
        raise UsageError(f"no participant was enrolled on or before {end.date()}")
    daily = pd.crosstab(frame["date"], frame["arm"]).reindex(columns=list(ARMS), fill_value=0).sort_index()
    out = pd.DataFrame({"date": daily.index})
    out["enrolled"] = daily.sum(axis=1).to_numpy()
    out["cumulative"] = out["enrolled"].cumsum()
    for arm in ARMS:
        out[f"cumulative_{arm}"] = daily[arm].cumsum().to_numpy()
    out["in_period"] = True if start is None else (out["date"] >= start).to_numpy()
    return out


def plot_enrollment(cumulative: pd.DataFrame, target: int | None, period_end: object, ax=None, arm_labels: dict[str, str] | None = None):
    """Step plot of cumulative enrollment (overall and per arm) with the target as a line; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
    labels = {"treatment": "Treatment", "control": "Control"} | (arm_labels or {})
    end = _period_end(period_end)
    dates = list(cumulative["date"]) + [end]
    def extended(column: str) -> list[int]:
        return list(cumulative[column]) + [int(cumulative[column].iloc[-1])]
    ax.step(dates, extended("cumulative"), where="post", color="black", lw=2, label="All")
    for arm, style in zip(ARMS, ("-", "--"), strict=True):
        ax.step(dates, extended(f"cumulative_{arm}"), where="post", lw=1.2, linestyle=style, label=labels[arm])
    if target is not None:
        ax.axhline(target, color="firebrick", lw=1, linestyle=":", label=f"Target ({target})")
    ax.set_ylabel("Participants enrolled (cumulative)")
    ax.set_title(f"Cumulative enrollment to {end.date()}: {int(cumulative['cumulative'].iloc[-1])}"
                 + (f" of {target} ({100 * cumulative['cumulative'].iloc[-1] / target:.0f}%)" if target else ""))
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.figure.autofmt_xdate()
    return ax


def retention_table(participants: pd.DataFrame, dataset: pd.DataFrame, plan: Plan, period_end: object) -> pd.DataFrame:
    """Retention per arm and visit among participants due by ``period_end``.

    Columns ``arm, visit, visit_week, n_enrolled, n_due, n_attended, percent_attended`` where
    ``n_enrolled`` counts participants enrolled by the period end, ``n_due`` those whose visit
    date (enrolled_on + 7 x week days) is on or before it, and ``percent_attended`` =
    100 x n_attended / n_due (NaN when none is due). A participant attended a visit when any
    outcome has a value there.

    Parameters
    ----------
    participants
        One row per participant: ``participant_id, arm, enrolled_on`` (YYYY-MM-DD).
    dataset
        The long analysis dataset (``participant_id, visit, value``).
    plan
        The study plan (visit labels and weeks).
    period_end
        Last day of the reporting period (a date or ``"YYYY-MM-DD"``).

    Returns
    -------
    pandas.DataFrame
        One row per arm x visit, in plan order.

    Examples
    --------
    ``t2``'s week-8 visit is not yet due on 1 March; ``c1`` missed week 4; ``c2`` enrolled later:

    >>> import pandas as pd
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> participants = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "c1", "c2"],
    ...     "arm": ["treatment", "treatment", "control", "control"],
    ...     "enrolled_on": ["2024-01-01", "2024-02-01", "2024-01-02", "2024-03-15"]})
    >>> dataset = pd.DataFrame({
    ...     "participant_id": ["t1", "t1", "t1", "t2", "t2", "c1", "c1"],
    ...     "visit": ["baseline", "week4", "week8", "baseline", "week4", "baseline", "week8"],
    ...     "value": [7.0, 5.0, 4.0, 6.0, 5.0, 8.0, 7.0]})
    >>> table = retention_table(participants, dataset, plan, period_end="2024-03-01")
    >>> print(table.to_string(index=False))
          arm    visit  visit_week  n_enrolled  n_due  n_attended  percent_attended
    treatment baseline         0.0           2      2           2             100.0
    treatment    week4         4.0           2      2           2             100.0
    treatment    week8         8.0           2      1           1             100.0
      control baseline         0.0           1      1           1             100.0
      control    week4         4.0           1      1           0               0.0
      control    week8         8.0           1      1           1             100.0
    """
    end = _period_end(period_end)
    need = [c for c in ("participant_id", "visit", "value") if c not in dataset.columns]
    if need:
        raise UsageError(f"the analysis dataset lacks column(s) {need}")
    dates = _enrolled(participants)
    people = pd.DataFrame({
        "participant_id": participants["participant_id"].astype(str).to_numpy(),
        "arm": participants["arm"].astype(str).to_numpy(),
        "enrolled_on": dates.to_numpy(),
    })
    people = people[people["enrolled_on"] <= end]
    observed = dataset[dataset["value"].notna()]
    attended = set(zip(observed["participant_id"].astype(str), observed["visit"].astype(str), strict=True))
    rows = []
    for arm in ARMS:
        group = people[people["arm"] == arm]
        for visit in plan.visits.labels:
            week = plan.visits.weeks[visit]
            due = group[group["enrolled_on"] + pd.to_timedelta(7 * week, unit="D") <= end]
            n_att = int(sum((pid, visit) in attended for pid in due["participant_id"]))
            rows.append({
                "arm": arm, "visit": visit, "visit_week": week, "n_enrolled": len(group), "n_due": len(due),
                "n_attended": n_att, "percent_attended": 100.0 * n_att / len(due) if len(due) else np.nan,
            })
    return pd.DataFrame(rows)


def plot_retention(table: pd.DataFrame, ax=None, arm_labels: dict[str, str] | None = None):
    """Percent attended by visit week, one line per arm (last visit's attended/due in the legend); returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
    labels = {"treatment": "Treatment", "control": "Control"} | (arm_labels or {})
    for arm, marker in zip(ARMS, ("o", "s"), strict=True):
        part = table[table["arm"] == arm]
        last = part.iloc[-1]
        # Counts per visit are in the retention table; the legend carries the last visit's, to avoid overlapping labels.
        ax.plot(part["visit_week"], part["percent_attended"], marker=marker,
                label=f"{labels[arm]} ({last['visit']}: {last['n_attended']}/{last['n_due']} due)")
    visits = table.drop_duplicates("visit")
    ax.set_xticks(visits["visit_week"], [f"{v}\n(wk {w:g})" for v, w in zip(visits["visit"], visits["visit_week"], strict=True)])
    ax.set_ylim(0, 105)
    ax.set_ylabel("Attended, % of those due")
    ax.set_title("Retention by visit")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return ax


def retention_display(table: pd.DataFrame, arm_labels: dict[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """The printable retention table: one row per visit, per arm "attended/due" and "%" (``digits`` decimals).

    Columns ``Visit`` then, for each arm, ``"<label> (N = enrolled) | Attended/due"`` and
    ``"<label> (N = enrolled) | %"`` (a two-level header); "%" is empty when none is due.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"arm": ["treatment", "treatment", "control", "control"],
    ...                       "visit": ["baseline", "week8"] * 2, "visit_week": [0.0, 8.0] * 2,
    ...                       "n_enrolled": [12, 12, 11, 11], "n_due": [12, 9, 11, 0],
    ...                       "n_attended": [12, 8, 11, 0], "percent_attended": [100.0, 800 / 9, 100.0, float("nan")]})
    >>> shown = retention_display(table, {"treatment": "Drug", "control": "Placebo"})
    >>> print(shown.to_string(index=False))
              Visit Drug (N = 12) | Attended/due Drug (N = 12) | % Placebo (N = 11) | Attended/due Placebo (N = 11) | %
    baseline (wk 0)                        12/12              100.0                          11/11                 100.0
       week8 (wk 8)                          8/9               88.9                            0/0
    """
    labels = {"treatment": "Treatment", "control": "Control"} | (arm_labels or {})
    visits = table.drop_duplicates("visit")
    out = pd.DataFrame({"Visit": [f"{v} (wk {w:g})" for v, w in zip(visits["visit"], visits["visit_week"], strict=True)]})
    for arm in ARMS:
        part = table[table["arm"] == arm].set_index("visit").reindex(visits["visit"])
        head = f"{labels[arm]} (N = {int(part['n_enrolled'].iloc[0])})"
        out[f"{head} | Attended/due"] = [f"{int(a)}/{int(d)}" for a, d in zip(part["n_attended"], part["n_due"], strict=True)]
        out[f"{head} | %"] = ["" if pd.isna(p) else f"{p:.{digits}f}" for p in part["percent_attended"]]
    return out


def enrollment_against_target(cumulative: pd.DataFrame, target: int | None, period_end: object,
                              arm_labels: dict[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Enrolled by the period end (overall, per arm, in the period) against the plan's target.

    Returns columns ``Measure, Value`` (text): enrolled, per arm, enrolled in the reporting
    period, the target ("target not declared" when the plan has no ``target_enrollment``) and the
    percentage of the target reached (``digits`` decimals).

    Examples
    --------
    >>> import pandas as pd
    >>> cumulative = pd.DataFrame({"date": pd.to_datetime(["2024-01-02", "2024-02-01"]), "enrolled": [2, 1],
    ...     "cumulative": [2, 3], "cumulative_treatment": [1, 2], "cumulative_control": [1, 1], "in_period": [False, True]})
    >>> print(enrollment_against_target(cumulative, 8, "2024-03-01").to_string(index=False))
                          Measure Value
     Enrolled by 2024-03-01 (all)     3
                        Treatment     2
                          Control     1
    Enrolled in reporting period     1
                Target enrollment     8
               Percent of target  37.5
    >>> enrollment_against_target(cumulative, None, "2024-03-01")["Value"].iloc[-1]
    'target not declared'
    """
    labels = {"treatment": "Treatment", "control": "Control"} | (arm_labels or {})
    end = _period_end(period_end)
    total = int(cumulative["cumulative"].iloc[-1])
    rows = [(f"Enrolled by {end.date()} (all)", str(total))]
    rows += [(labels[arm], str(int(cumulative[f"cumulative_{arm}"].iloc[-1]))) for arm in ARMS]
    rows.append(("Enrolled in reporting period", str(int(cumulative.loc[cumulative["in_period"], "enrolled"].sum()))))
    if target is None:
        rows += [("Target enrollment", "target not declared"), ("Percent of target", "target not declared")]
    else:
        rows += [("Target enrollment", str(int(target))), ("Percent of target", f"{100.0 * total / target:.{digits}f}")]
    return pd.DataFrame(rows, columns=["Measure", "Value"])
