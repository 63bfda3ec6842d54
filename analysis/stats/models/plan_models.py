"""The plan's models table (``tables/models.csv``): every analysis the plan declares, stacked.

For every outcome: the ANCOVA at the plan's primary visit (with an HC3 row and a standardised
effect), per-arm adjusted means, the MMRM contrasts when the plan asks for them, Holm/Hochberg
adjusted p-values across the secondary outcomes, and the multiple-imputation ANCOVA with its
tipping point for the primary outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.core.tidy import contrast_label, tidy_frame
from analysis.stats.models.ancova import AncovaResult, adjust_pvalues, ancova

if TYPE_CHECKING:
    from analysis.plan import Plan


def _labels(plan: Plan) -> dict[str, str]:
    return {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}


def _mean_rows(result: AncovaResult, note: str) -> list[dict[str, object]]:
    rows = []
    for m in result.adjusted_means.to_dict("records"):
        rows.append(
            {
                "outcome": m["outcome"],
                "visit": m["visit"],
                "contrast": m["label"],
                "measure": "adjusted mean",
                "estimate": m["estimate"],
                "std_error": m["std_error"],
                "df": m["df"],
                "ci_low": m["ci_low"],
                "ci_high": m["ci_high"],
                "ci_level": m["ci_level"],
                "method": f"ANCOVA (OLS) {result.formula}; emmeans default reference grid",
                "n_treatment": m["n"] if m["arm"] == "treatment" else None,
                "n_control": m["n"] if m["arm"] == "control" else None,
                "note": note,
            }
        )
    return rows


def fit_plan_mmrm(
    dataset: pd.DataFrame,
    plan: Plan,
    outcome: str,
    covariates: Sequence[str] = (),
    participants: pd.DataFrame | None = None,
):
    """The plan's MMRM for one outcome: value ~ baseline + arm * visit (+ covariates) over the
    follow-up visits (+ the plan's ``mmrm_terms``, e.g. ``baseline:visit``), with the plan's
    covariance structure, fallbacks and df method (``mmrm_df``). Returns the
    :class:`analysis.stats.models.mmrm.MmrmResult` (its ``n_treatment`` / ``n_control`` are the participants
    the fit used, which CONSORT's analysed counts must equal)."""
    from analysis.stats.models.mmrm import fit_mmrm

    followup = [v.label for v in plan.visits.followup]
    data = plan_mmrm_data(dataset, plan, outcome, covariates, participants)
    return fit_mmrm(
        data,
        covariates=list(covariates),
        visit_order=followup,
        ci_level=plan.analysis.ci_level,
        **plan_mmrm_options(plan),
    )


def plan_mmrm_data(dataset: pd.DataFrame, plan: Plan, outcome: str, covariates: Sequence[str] = (),
                   participants: pd.DataFrame | None = None) -> pd.DataFrame:
    """The long frame the plan's MMRM of one outcome reads: its follow-up rows (visit as text),
    with the covariates joined from ``participants``."""
    followup = [v.label for v in plan.visits.followup]
    data = dataset.loc[
        (dataset["outcome"] == outcome) & dataset["visit"].astype(str).isin(followup)
    ].copy()
    data["visit"] = data["visit"].astype(str)
    if covariates:
        extra = participants[["participant_id", *covariates]].copy()
        extra["participant_id"] = extra["participant_id"].astype(str)
        data["participant_id"] = data["participant_id"].astype(str)
        data = data.merge(extra, on="participant_id", how="left")
    return data


def plan_mmrm_options(plan: Plan) -> dict[str, object]:
    """The plan's MMRM options: covariance structure, fallbacks, df method, per-visit slopes, and
    the follow-up visits' times (in the plan's time unit: the spatial structure's distances)."""
    return {"covariance": plan.analysis.mmrm_covariance, "fallback": tuple(plan.analysis.mmrm_fallback),
            "df": plan.analysis.mmrm_df, "by_visit": [term.split(":")[0] for term in plan.analysis.mmrm_terms],
            "visit_times": [v.time for v in plan.visits.followup]}


def _mmrm_rows(
    dataset: pd.DataFrame,
    plan: Plan,
    outcome: str,
    covariates: Sequence[str],
    participants: pd.DataFrame | None,
    role: str,
) -> pd.DataFrame:
    return mmrm_rows(lambda: fit_plan_mmrm(dataset, plan, outcome, covariates, participants), plan, outcome, role)


def mmrm_rows(fit_call, plan: Plan, outcome: str, role: str) -> pd.DataFrame:
    """The MMRM rows of ``models.csv`` for one outcome from ``fit_call()`` (an
    :class:`~analysis.stats.models.mmrm.MmrmResult`): its contrasts, or, when the fit raises
    :class:`ModelError` and it is not the primary outcome's primary model, one row saying why."""
    contrast = contrast_label(plan.arms.treatment.label, plan.arms.control.label)
    try:
        fit = fit_call()
    except ModelError as error:
        if role == "primary outcome; primary model":
            raise  # the primary analysis must fail loudly, never become a blank row
        return tidy_frame(
            [
                {
                    "outcome": outcome,
                    "visit": plan.visits.primary,
                    "contrast": contrast,
                    "measure": "LS-mean difference",
                    "ci_level": plan.analysis.ci_level,
                    "method": "MMRM (REML, unstructured covariance)",
                    "note": f"{role}; MMRM not fitted: {error}",
                }
            ]
        )
    rows = fit.contrasts.copy()
    rows["outcome"] = outcome
    rows["contrast"] = contrast
    old = rows["note"] if "note" in rows.columns else pd.Series([None] * len(rows))
    rows["note"] = [f"{role}; {n}" if isinstance(n, str) and n else role for n in old]
    return tidy_frame(rows)



def _sensitivity_rows(dataset, plan, outcome, visit, covariates, participants, labels) -> pd.DataFrame:
    """MI-ANCOVA and the tipping point for the primary outcome. Both are sensitivity analyses, so a
    model that cannot be fitted (e.g. a collinear imputation model) becomes a row saying why,
    instead of stopping the primary analysis."""
    from analysis.stats.models.missing import multiple_imputation_ancova, tipping_point

    shared = dict(
        outcome=outcome.name,
        visit=visit,
        m=plan.analysis.imputations,
        seed=plan.seed,
        visits=[v.label for v in plan.visits.followup],
        covariates=covariates,
        participants=participants,
        ci_level=plan.analysis.ci_level,
        labels=labels,
    )
    rows = []
    for name, fit in (
        ("multiple imputation ANCOVA", lambda: multiple_imputation_ancova(dataset, **shared).effect),
        ("tipping point", lambda: tipping_point(dataset, better=outcome.better, **shared).effect),
    ):
        try:
            rows.append(fit())
        except (ModelError, UsageError) as error:  # a sensitivity analysis becomes a row saying why
            rows.append(tidy_frame([{"outcome": outcome.name, "visit": visit, "measure": name,
                                     "ci_level": plan.analysis.ci_level, "method": name,
                                     "note": f"not estimable: {error}"}]))
    return pd.concat(rows, ignore_index=True)

def models_table(
    dataset: pd.DataFrame,
    plan: Plan,
    participants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every model-based treatment effect the plan asks for, as one tidy table (``models.csv``).

    For each outcome, at the plan's primary visit: the ANCOVA adjusted mean difference
    (model-based SE), the same with HC3 SEs, the standardised adjusted difference and the two
    adjusted means (:func:`ancova`, adjusting for ``plan.covariates`` from ``participants``); the
    MMRM LS-mean difference at every follow-up visit (:func:`analysis.stats.models.mmrm.fit_mmrm`; the primary
    model when ``plan.analysis.primary_model == "mmrm"``, else a secondary model). Across the
    secondary outcomes, the primary model's p-values at the primary visit get ``p_adjusted``
    (``plan.analysis.multiplicity``: Holm or Hochberg). For the primary outcome, the
    multiple-imputation ANCOVA (``plan.analysis.imputations`` imputations, ``plan.seed``) and its
    delta-adjusted tipping point (:mod:`analysis.stats.models.missing`). ``note`` says which outcome is
    primary, which model is primary, and how many participants each analysis left out.

    Examples
    --------
    >>> models_table(dataset, plan, participants).query("measure == 'adjusted mean difference'")  # doctest: +SKIP
    """

    covariates = list(plan.covariates)
    if covariates and participants is None:
        raise UsageError(
            f"the plan adjusts for {covariates}; pass the participants table to models_table"
        )
    labels = _labels(plan)
    ci_level = plan.analysis.ci_level
    visit = plan.visits.primary
    primary = plan.primary_outcome.name
    primary_model = plan.analysis.primary_model
    present = set(pd.unique(dataset["outcome"]).astype(str)) if "outcome" in dataset.columns else set()
    frames: list[pd.DataFrame] = []
    for outcome in plan.outcomes:
        if outcome.name not in present:
            continue
        role = "primary outcome" if outcome.name == primary else "secondary outcome"
        model_note = "primary model" if primary_model == "ancova" else "secondary model"
        try:
            res = ancova(
                dataset,
                outcome=outcome.name,
                visit=visit,
                covariates=covariates,
                participants=participants,
                robust=True,
                ci_level=ci_level,
                labels=labels,
            )
        except ModelError as error:
            if outcome.name == primary and primary_model == "ancova":
                raise  # the primary analysis must fail loudly, never become a blank row
            effect = tidy_frame([{
                "outcome": outcome.name, "visit": visit, "contrast": contrast_label(labels["treatment"], labels["control"]),
                "measure": "adjusted mean difference", "ci_level": ci_level, "method": "ANCOVA (OLS)",
                "note": f"{role}; {model_note}; not estimable: {error}",
            }])
            means = tidy_frame([])
        else:
            effect = res.effect.copy()
            effect["note"] = [f"{role}; {model_note}; {n}" for n in effect["note"]]
            mean_note = f"{role}; adjusted mean by arm" + (f"; {res.note}" if res.note else "")
            means = tidy_frame(_mean_rows(res, mean_note))
        mmrm = _mmrm_rows(
            dataset,
            plan,
            outcome.name,
            covariates,
            participants,
            f"{role}; {'primary' if primary_model == 'mmrm' else 'secondary'} model",
        )
        frame = pd.concat([f for f in (effect, means, mmrm) if len(f)], ignore_index=True)
        if outcome.name == primary:
            extra = _sensitivity_rows(dataset, plan, outcome, visit, covariates, participants, labels)
            extra["note"] = [f"{role}; sensitivity analysis; {n}" for n in extra["note"]]
            frame = pd.concat([frame, extra], ignore_index=True)
        frames.append(frame)
    if not frames:
        raise UsageError("none of the plan's outcomes is in the analysis dataset")
    table = tidy_frame(pd.concat(frames, ignore_index=True))
    method = plan.analysis.multiplicity
    secondary = [o.name for o in plan.outcomes if o.name != primary and o.name in present]
    if method != "none" and secondary:
        # locate each secondary outcome's primary-model row at the primary visit in the stacked table
        wanted = "adjusted mean difference" if primary_model == "ancova" else "LS-mean difference"
        index = []
        for name in secondary:
            mask = (
                (table["outcome"] == name).to_numpy()
                & (table["visit"] == visit).to_numpy()
                & (table["measure"] == wanted).to_numpy()
                & ~table["method"].str.contains("HC3", regex=False).to_numpy(dtype=bool)
            )
            index.append(int(np.flatnonzero(mask)[0]))
        adjusted = adjust_pvalues(table.loc[index, "p_value"].to_numpy(float), method)
        table["p_adjusted"] = np.nan
        table.loc[index, "p_adjusted"] = adjusted
        family = f"{method.capitalize()} across {len(secondary)} secondary outcome(s) ({', '.join(secondary)}) at {visit}"
        table.loc[index, "note"] = [f"{n}; p_adjusted: {family}" for n in table.loc[index, "note"]]
    return tidy_frame(table)
