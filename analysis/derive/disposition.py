"""Disposition derived from the data, for a participants table that records none.

Many published datasets (R packages, journal supplements) give the measurements but no end-of-study
status. trialkit then derives it, and every output that uses it says so: a participant with a value
of any plan outcome at the primary visit ``completed``; any other was ``lost_to_follow_up`` with
the reason ``not recorded`` (whether they withdrew or were lost is not in the data). The derived
rows carry ``disposition_derived = True``; the accounting table, the CONSORT flow and the report
state the rule.
"""

from __future__ import annotations

import pandas as pd

from analysis.plan import Plan

DERIVED_REASON = "not recorded"
DERIVED_COLUMN = "disposition_derived"


def derivation_rule(plan: Plan) -> str:
    """The rule in words, for the accounting table, the CONSORT flow and the report."""
    return (
        f"derived from the data (the participants file has no disposition): completed = a value at the "
        f"primary visit ({plan.visits.primary}), otherwise lost to follow-up, reason '{DERIVED_REASON}'"
    )


def disposition_was_derived(participants: pd.DataFrame) -> bool:
    """Whether the table's disposition was derived by :func:`derive_disposition`."""
    return DERIVED_COLUMN in participants.columns and bool(participants[DERIVED_COLUMN].fillna(False).astype(bool).any())


def derive_disposition(participants: pd.DataFrame, measurements: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Add ``disposition`` (and ``disposition_reason``) derived from the primary visit.

    Parameters
    ----------
    participants
        Validated participants without a ``disposition`` column (``participant_id``; a
        ``disposition_reason`` column, if any, is kept for those lost).
    measurements
        Validated long measurements (``participant_id, visit, outcome, value``).
    plan
        The study plan (its primary visit and outcomes).

    Returns
    -------
    pandas.DataFrame
        A copy with ``disposition`` (``completed`` when any plan outcome has a value at the
        primary visit, else ``lost_to_follow_up``), ``disposition_reason`` (``not recorded`` for
        those lost, unless the file gives a reason) and ``disposition_derived`` (True).

    Examples
    --------
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   time_unit: months
    ...   followup: [{label: m2, time: 2}, {label: m8, time: 8}]
    ...   primary: m8
    ... outcomes:
    ... - {name: bdi, label: BDI, unit: points, range: [0, 63], better: lower}
    ... ''')
    >>> participants = pd.DataFrame({"participant_id": ["1", "2", "3"], "arm": "treatment"})
    >>> measurements = pd.DataFrame({"participant_id": ["1", "1", "2", "2", "3"], "outcome": "bdi",
    ...                              "visit": ["baseline", "m8", "baseline", "m8", "baseline"],
    ...                              "value": [29.0, 9.0, 32.0, None, 25.0]})
    >>> out = derive_disposition(participants, measurements, plan)
    >>> print(out.to_string(index=False))
    participant_id       arm       disposition disposition_reason  disposition_derived
                 1 treatment         completed                NaN                 True
                 2 treatment lost_to_follow_up       not recorded                 True
                 3 treatment lost_to_follow_up       not recorded                 True
    """
    outcomes = {o.name for o in plan.outcomes}
    seen = measurements.loc[
        (measurements["visit"].astype(str) == plan.visits.primary)
        & measurements["outcome"].astype(str).isin(outcomes)
        & measurements["value"].notna(),
        "participant_id",
    ]
    completed = participants["participant_id"].astype(str).isin(set(seen.astype(str))).to_numpy()
    out = participants.copy()
    out["disposition"] = pd.Series(completed, index=out.index).map({True: "completed", False: "lost_to_follow_up"})
    given = out["disposition_reason"] if "disposition_reason" in out.columns else pd.Series(None, index=out.index, dtype=object)
    given = given.astype(object).where(given.notna() & (given.astype(str).str.strip() != ""), None)
    reason = given.where(given.notna(), DERIVED_REASON).astype(object)
    out["disposition_reason"] = reason.where(~completed, None).to_numpy(dtype=object)
    out[DERIVED_COLUMN] = True
    return out
