"""A seeded generator of synthetic trials shaped as a plan declares (``trialkit simulate``).

Everything it draws is labelled SIMULATED by the plan that drives it. The generator is generic: it
reads the plan's arms, visits, outcomes (range, rounding) and its ``simulation`` section; nothing is
specific to one study.

Model, per participant *i* and outcome, at follow-up visit *k* with week :math:`w_k` (last week
:math:`W`)::

    baseline_i  ~ N(baseline_mean, baseline_sd^2)
    change_ik   = (w_k / W) * mu_arm + change_sd * (sqrt(rho) * u_i + sqrt(1 - rho) * e_ik)
    value_ik    = clip(round(baseline_i + change_ik, decimals), range)

with ``u_i, e_ik ~ N(0, 1)`` independent and ``rho`` the within-participant correlation of
changes. Participants are allocated 1:1 in randomly permuted blocks of 4. A fraction ``dropout``
leave after a random visit (withdrawn or lost to follow-up, with a reason) and have no later rows; a
fraction ``missing_value_rate`` of the remaining follow-up values are recorded as empty cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import PlanError
from analysis.plan import LoadedPlan, Plan

SEX_CODES = (["F", "M", "U"], [0.54, 0.44, 0.02])
RACE_CODES = (
    ["White", "Black", "Asian", "AIAN", "NHPI", "Multiple", "Unknown"],
    [0.62, 0.14, 0.12, 0.02, 0.01, 0.05, 0.04],
)
ETHNICITY_CODES = (["NotHispanic", "Hispanic", "Unknown"], [0.80, 0.16, 0.04])
WITHDRAWAL_REASONS = ["moved away", "time constraints", "adverse event", "no longer interested"]
LOSS_REASONS = ["did not attend follow-up", "no response to contact"]


@dataclass(frozen=True)
class SimulatedTrial:
    """The two tables of a synthetic trial, as they are written to CSV."""

    participants: pd.DataFrame
    measurements: pd.DataFrame


def simulate_trial(plan: Plan, seed: int) -> SimulatedTrial:
    """Draw a synthetic trial from the plan's ``simulation`` section.

    Parameters
    ----------
    plan
        A plan with a ``simulation`` section.
    seed
        Seed of ``numpy.random.default_rng``; the same plan and seed give identical tables.

    Returns
    -------
    SimulatedTrial
        ``participants`` and long ``measurements`` (values as text, rounded to the outcome's
        ``decimals``; an empty string is a value recorded as missing), as they are written to CSV.

    Examples
    --------
    Eight participants, each with a 25% chance of dropping out:

    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial, simulated: true}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... simulation:
    ...   n_participants: 8
    ...   dropout: 0.25
    ...   outcomes:
    ...     pain: {baseline_mean: 7, baseline_sd: 1, change_treatment: -3, change_control: -1,
    ...            change_sd: 1, decimals: 0}
    ... ''')
    >>> trial = simulate_trial(plan, seed=1)
    >>> shown = ["participant_id", "arm", "age", "site", "enrolled_on", "disposition"]
    >>> print(trial.participants[shown].to_string(index=False))
    participant_id arm  age   site enrolled_on       disposition
           SIM0001   P   49 site-3  2023-02-23         completed
           SIM0002   P   37 site-3  2023-02-24 lost_to_follow_up
           SIM0003   D   26 site-3  2023-02-27         completed
           SIM0004   D   44 site-3  2023-03-06         completed
           SIM0005   D   43 site-3  2023-03-27         completed
           SIM0006   P   30 site-3  2023-06-08         completed
           SIM0007   D   35 site-1  2023-06-16         completed
           SIM0008   P   41 site-1  2023-06-30         completed
    >>> trial.measurements.head(6)
      participant_id     visit outcome value
    0        SIM0001  baseline    pain     7
    1        SIM0001     week4    pain     6
    2        SIM0001     week8    pain     6
    3        SIM0002  baseline    pain     6
    4        SIM0002     week4    pain     6
    5        SIM0003  baseline    pain     8

    Allocation is 1:1 in blocks of 4 (four D, four P above); ``SIM0002`` left after week 4, so it
    has no week-8 row:

    >>> trial.measurements.groupby("visit", sort=False).size().to_dict()
    {'baseline': 8, 'week4': 8, 'week8': 7}
    >>> simulate_trial(plan, seed=1).measurements.equals(trial.measurements)
    True
    """
    if plan.simulation is None:
        raise PlanError("the plan has no 'simulation' section, so there is nothing to simulate from")
    sim = plan.simulation
    rng = np.random.default_rng(seed)
    n = sim.n_participants
    ids = [f"SIM{i + 1:04d}" for i in range(n)]
    blocks = np.concatenate([rng.permutation([0, 0, 1, 1]) for _ in range((n + 3) // 4)])[:n]
    arm_is_treatment = blocks.astype(bool)
    arm_code = np.where(arm_is_treatment, plan.arms.treatment.codes[0], plan.arms.control.codes[0])

    start = date.fromisoformat(sim.first_enrollment)
    enrolled = sorted(start + timedelta(days=int(d)) for d in rng.integers(0, sim.enrollment_weeks * 7, n))
    followup = plan.visits.followup
    dropped = rng.random(n) < sim.dropout
    last_visit = np.where(dropped, rng.integers(0, len(followup), n), len(followup))
    lost = rng.random(n) < 0.5
    disposition = np.where(~dropped, "completed", np.where(lost, "lost_to_follow_up", "withdrawn"))
    reasons = np.where(
        ~dropped,
        "",
        np.where(lost, rng.choice(LOSS_REASONS, n), rng.choice(WITHDRAWAL_REASONS, n)),
    )
    participants = pd.DataFrame(
        {
            "participant_id": ids,
            "arm": arm_code,
            "age": np.clip(np.round(rng.normal(42, 10, n)), 18, 75).astype(int),
            "sex": rng.choice(SEX_CODES[0], n, p=SEX_CODES[1]),
            "race": rng.choice(RACE_CODES[0], n, p=RACE_CODES[1]),
            "ethnicity": rng.choice(ETHNICITY_CODES[0], n, p=ETHNICITY_CODES[1]),
            "site": rng.choice(sim.sites, n),
            "enrolled_on": [d.isoformat() for d in enrolled],
            "disposition": disposition,
            "disposition_reason": reasons,
        }
    )

    weeks = np.array([v.week for v in followup])
    fraction = weeks / weeks[-1]
    rows = []
    for outcome in plan.outcomes:
        spec = sim.outcomes[outcome.name]
        low, high = outcome.range
        baseline = np.clip(np.round(rng.normal(spec.baseline_mean, spec.baseline_sd, n), spec.decimals), low, high) + 0.0
        mean_change = np.where(arm_is_treatment, spec.change_treatment, spec.change_control)
        shared = rng.standard_normal(n)[:, None]
        own = rng.standard_normal((n, len(weeks)))
        rho = spec.within_participant_correlation
        change = fraction[None, :] * mean_change[:, None] + spec.change_sd * (
            np.sqrt(rho) * shared + np.sqrt(1 - rho) * own
        )
        # + 0.0 turns a rounded -0.0 into 0.0, which would otherwise print as "-0"
        values = np.clip(np.round(baseline[:, None] + change, spec.decimals), low, high) + 0.0
        blank = rng.random((n, len(weeks))) < sim.missing_value_rate
        def text(value: float, decimals: int = spec.decimals) -> str:
            return f"{value:.{decimals}f}"

        for i, pid in enumerate(ids):
            rows.append((pid, plan.visits.baseline, outcome.name, text(baseline[i])))
            for k, visit in enumerate(followup):
                if k >= last_visit[i]:
                    break
                rows.append((pid, visit.label, outcome.name, "" if blank[i, k] else text(values[i, k])))
    measurements = pd.DataFrame(rows, columns=["participant_id", "visit", "outcome", "value"])
    order = {label: i for i, label in enumerate(plan.visits.labels)}
    measurements = measurements.sort_values(
        ["participant_id", "visit"], key=lambda s: s.map(order) if s.name == "visit" else s, kind="stable"
    ).reset_index(drop=True)
    return SimulatedTrial(participants=participants, measurements=measurements)


def write_simulated_trial(loaded: LoadedPlan, seed: int, out_dir: Path | None = None) -> list[Path]:
    """Simulate and write the trial as CSV where the plan's data section points (or to ``out_dir``).

    The plan must name CSV files in long layout with canonical column names, as the files are
    written in that form.
    """
    from analysis.core.filesystem import refuse_overwriting_inputs
    from analysis.core.output import write_table

    plan = loaded.plan
    data = plan.data
    try:
        formats = {data.participants.resolved_format(), data.measurements.resolved_format()}
    except ValueError as exc:  # a suffix that names no format
        raise PlanError(f"{loaded.path}: {exc}") from None
    if data.measurements.layout != "long" or formats != {"csv"}:
        raise PlanError("simulate writes CSV files in long layout; the plan's data section names another form")
    if data.participants.columns or data.measurements.columns:
        raise PlanError("simulate writes canonical column names; remove the 'columns' mappings from the plan's data section")
    trial = simulate_trial(plan, seed)
    targets = [
        (trial.participants, loaded.resolve(data.participants.path)),
        (trial.measurements, loaded.resolve(data.measurements.path)),
    ]
    destinations = [out_dir / path.name if out_dir is not None else path for _frame, path in targets]
    refuse_overwriting_inputs({"the simulated participants file": destinations[0],
                               "the simulated measurements file": destinations[1]}, [loaded.path])
    return [write_table(frame, destination) for (frame, _path), destination in zip(targets, destinations, strict=True)]
