"""Model-based treatment effects: baseline-adjusted ANCOVA and the ``models.csv`` table.

The primary analysis of a single follow-up visit is ANCOVA (Vickers & Altman, BMJ 2001):
``value ~ arm + baseline (+ covariates)`` fitted by ordinary least squares (statsmodels ``OLS``),
with control as the reference arm so the ``arm`` coefficient is treatment minus control.
Adjusted (least-squares) means follow emmeans' default reference grid: numeric covariates at their
mean over the analysed participants, categorical covariates averaged with equal weight over their
levels. :func:`models_table` stacks, for every outcome, the ANCOVA at the plan's primary visit (with
an HC3 row and a standardised effect), per-arm adjusted means, MMRM contrasts when
:mod:`analysis.mmrm` is available, Holm/Hochberg adjusted p-values across the secondary outcomes,
and the multiple-imputation ANCOVA with its tipping point for the primary outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.errors import UsageError
from analysis.tidy import check_ci_level, contrast_label, tidy_frame

if TYPE_CHECKING:
    from analysis.plan import Plan

ARMS = ("treatment", "control")
DATASET_COLUMNS = ("participant_id", "arm", "outcome", "visit", "value", "baseline")
STANDARDISERS = ("pooled_sd", "residual_sd")
MULTIPLICITY_METHODS = {"holm": "holm", "hochberg": "simes-hochberg"}


@dataclass(frozen=True)
class AncovaResult:
    """Baseline-adjusted ANCOVA at one visit.

    Attributes
    ----------
    effect
        Tidy rows (:data:`analysis.tidy.RESULT_COLUMNS`): the adjusted mean difference with the
        model-based SE; with ``robust=True`` a second row with HC3 SEs; then the standardised
        adjusted difference (the SD it divides by is named in ``method``).
    adjusted_means
        One row per arm: ``outcome, visit, arm, estimate, std_error, df, ci_low, ci_high, ci_level,
        n`` (emmeans' default reference grid).
    n_treatment, n_control
        Participants analysed per arm.
    n_excluded_missing
        Participants with a row for this outcome and visit who were left out because the
        follow-up value, the baseline or a covariate is missing (per arm in
        ``excluded_by_arm``).
    formula
        The fitted model, written in R/patsy notation.
    residual_df
        Residual degrees of freedom (n - number of coefficients).
    """

    effect: pd.DataFrame
    adjusted_means: pd.DataFrame
    n_treatment: int
    n_control: int
    n_excluded_missing: int
    excluded_by_arm: Mapping[str, int]
    formula: str
    residual_df: float


@dataclass(frozen=True)
class _Design:
    """Design matrix of an ANCOVA and the emmeans reference-grid rows for each arm."""

    y: np.ndarray
    x: np.ndarray
    names: list[str]
    grid: dict[str, np.ndarray]
    arm: np.ndarray  # 'treatment' / 'control' per analysed row
    ids: np.ndarray
    excluded: dict[str, int]
    formula: str


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _visit_rows(
    dataset: pd.DataFrame,
    outcome: str,
    visit: str,
    covariates: Sequence[str],
    participants: pd.DataFrame | None,
) -> pd.DataFrame:
    """The rows of one outcome at one visit, one per participant, with covariates merged in."""
    _require_columns(dataset, DATASET_COLUMNS, "the analysis dataset")
    if outcome not in set(dataset["outcome"]):
        raise UsageError(f"outcome '{outcome}' is not in the analysis dataset")
    rows = dataset.loc[(dataset["outcome"] == outcome) & (dataset["visit"] == visit)]
    if rows.empty:
        raise UsageError(f"outcome '{outcome}' has no rows at visit '{visit}'")
    if rows["participant_id"].duplicated().any():
        dup = rows.loc[rows["participant_id"].duplicated(), "participant_id"].iloc[0]
        raise UsageError(
            f"participant '{dup}' has more than one '{outcome}' row at visit '{visit}'"
        )
    bad_arms = sorted(set(rows["arm"].astype(str)) - set(ARMS))
    if bad_arms:
        raise UsageError(f"arm must be 'treatment' or 'control', found {bad_arms}")
    rows = rows[["participant_id", "arm", "value", "baseline"]].copy()
    rows["participant_id"] = rows["participant_id"].astype(str)
    rows["arm"] = rows["arm"].astype(str)
    if covariates:
        if participants is None:
            raise UsageError(
                f"covariates {list(covariates)} come from the participants table; pass participants="
            )
        _require_columns(participants, ["participant_id", *covariates], "the participants table")
        clash = [c for c in covariates if c in {"value", "baseline", "arm", "participant_id"}]
        if clash:
            raise UsageError(f"covariate name(s) {clash} clash with analysis dataset columns")
        extra = participants[["participant_id", *covariates]].copy()
        extra["participant_id"] = extra["participant_id"].astype(str)
        if extra["participant_id"].duplicated().any():
            raise UsageError("the participants table lists a participant_id more than once")
        rows = rows.merge(extra, on="participant_id", how="left", validate="one_to_one")
    return rows


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _design(rows: pd.DataFrame, covariates: Sequence[str]) -> _Design:
    """Complete cases, the OLS design (intercept, arm, baseline, covariates) and emmeans grid."""
    needed = ["value", "baseline", *covariates]
    complete = rows[needed].notna().all(axis=1).to_numpy()
    excluded = {a: int(((rows["arm"] == a).to_numpy() & ~complete).sum()) for a in ARMS}
    used = rows.loc[complete]
    arm = used["arm"].to_numpy(dtype=object)
    for a in ARMS:
        if (arm == a).sum() == 0:
            raise UsageError(f"no {a} participant has complete data for this ANCOVA")
    columns = [
        np.ones(len(used)),
        (arm == "treatment").astype(float),
        used["baseline"].to_numpy(float),
    ]
    names = ["intercept", "arm[treatment]", "baseline"]
    # emmeans' reference grid: arm varies; numeric terms at their mean; a factor's dummies at
    # 1/k each, i.e. the equally weighted average over its k levels.
    grid_tail = [float(np.mean(columns[2]))]
    terms = ["baseline"]
    for cov in covariates:
        series = used[cov]
        if _is_categorical(series):
            if isinstance(series.dtype, pd.CategoricalDtype):
                levels = [lv for lv in series.cat.categories if (series == lv).any()]
            else:
                levels = sorted(series.astype(str).unique())
            text = series.astype(str).to_numpy(dtype=object)
            for level in levels[1:]:
                columns.append((text == str(level)).astype(float))
                names.append(f"{cov}[{level}]")
                grid_tail.append(1.0 / len(levels))
            terms.append(f"C({cov})")
        else:
            values = series.to_numpy(float)
            columns.append(values)
            names.append(cov)
            grid_tail.append(float(values.mean()))
            terms.append(cov)
    x = np.column_stack(columns)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise UsageError(
            "the ANCOVA design is rank-deficient (a covariate is constant or collinear with arm "
            f"or baseline); terms: {names}"
        )
    grid = {a: np.array([1.0, 1.0 if a == "treatment" else 0.0, *grid_tail]) for a in ARMS}
    return _Design(
        y=used["value"].to_numpy(float),
        x=x,
        names=names,
        grid=grid,
        arm=arm,
        ids=used["participant_id"].to_numpy(dtype=object),
        excluded=excluded,
        formula="value ~ arm + " + " + ".join(terms),
    )


def _t_row(estimate: float, se: float, df: float, ci_level: float) -> dict[str, float]:
    """Estimate, SE, t statistic, df, two-sided p and t-based CI."""
    t = estimate / se
    q = stats.t.ppf(0.5 + ci_level / 2.0, df)
    return {
        "estimate": estimate,
        "std_error": se,
        "statistic": t,
        "df": df,
        "p_value": float(2.0 * stats.t.sf(abs(t), df)),
        "ci_low": estimate - q * se,
        "ci_high": estimate + q * se,
        "ci_level": ci_level,
    }


def ancova(
    dataset: pd.DataFrame,
    *,
    outcome: str,
    visit: str,
    covariates: Sequence[str] = (),
    participants: pd.DataFrame | None = None,
    robust: bool = False,
    ci_level: float = 0.95,
    labels: Mapping[str, str] | None = None,
    standardiser: Literal["pooled_sd", "residual_sd"] = "pooled_sd",
) -> AncovaResult:
    """Baseline-adjusted ANCOVA of one outcome at one visit (Vickers & Altman 2001).

    Fits ``value ~ arm + baseline + covariates`` by OLS (statsmodels) on the participants with a
    value, a baseline and every covariate (complete cases; the rest are counted in
    ``n_excluded_missing``). Control is the reference level, so the arm coefficient is the
    adjusted mean difference treatment - control.

    Parameters
    ----------
    dataset
        The long analysis dataset (``participant_id, arm, outcome, visit, value, baseline``...).
    outcome, visit
        Which outcome, and which follow-up visit label.
    covariates
        Extra adjustment terms, taken from ``participants`` (merged on ``participant_id``).
        Numeric columns enter linearly; text/categorical/boolean columns as treatment-coded
        factors (first level, sorted, is the reference).
    participants
        One row per participant with ``participant_id`` and the covariate columns.
    robust
        Add a row with heteroscedasticity-consistent HC3 SEs (MacKinnon & White 1985), tested
        with t on the residual df as R's ``lmtest::coeftest(fit, sandwich::vcovHC(fit, "HC3"))``.
    ci_level
        Confidence level of every interval.
    labels
        ``{"treatment": ..., "control": ...}`` arm labels for the ``contrast`` column.
    standardiser
        SD the standardised adjusted effect divides by: ``"pooled_sd"`` (default; the pooled
        within-arm SD of the outcome at this visit over the analysed participants, so the value is
        on the scale of an unadjusted Cohen's d, as the What Works Clearinghouse recommends for
        adjusted effects) or ``"residual_sd"`` (the ANCOVA root mean squared error). Its SE and CI
        treat that SD as known (the mean difference's SE and CI divided by it).

    Returns
    -------
    AncovaResult

    Notes
    -----
    Adjusted mean of arm a: ``x_a' b`` with SE ``sqrt(x_a' V x_a)`` and t on the residual df,
    where ``x_a`` is emmeans' default reference-grid row (numeric covariates at their mean;
    a factor's k levels weighted 1/k each). Matches R ``lm`` + ``emmeans::emmeans(fit, "arm")``
    (tests/reference/anorexia_ref.json, agreement better than 1e-10 relative).

    Examples
    --------
    >>> res = ancova(data, outcome="pain", visit="week12")  # doctest: +SKIP
    >>> res.effect[["estimate", "ci_low", "ci_high"]]  # doctest: +SKIP
    """
    check_ci_level(ci_level)
    if standardiser not in STANDARDISERS:
        raise UsageError(f"standardiser must be one of {STANDARDISERS}, found {standardiser!r}")
    covariates = list(covariates)
    rows = _visit_rows(dataset, outcome, visit, covariates, participants)
    design = _design(rows, covariates)
    fit = sm.OLS(design.y, design.x).fit()
    df_resid = float(fit.df_resid)
    if df_resid < 1:
        raise UsageError(
            f"too few complete participants for the ANCOVA of '{outcome}' at '{visit}'"
        )
    labels = dict(labels or {"treatment": "treatment", "control": "control"})
    contrast = contrast_label(labels["treatment"], labels["control"])
    n_t = int((design.arm == "treatment").sum())
    n_c = int((design.arm == "control").sum())
    excl = design.excluded
    note = (
        f"complete cases; excluded for missing value, baseline or covariate: "
        f"treatment {excl['treatment']}, control {excl['control']}"
    )
    common = {
        "outcome": outcome,
        "visit": visit,
        "contrast": contrast,
        "n_treatment": n_t,
        "n_control": n_c,
        "note": note,
    }
    estimate = float(fit.params[1])
    model_row = {
        **common,
        "measure": "adjusted mean difference",
        **_t_row(estimate, float(fit.bse[1]), df_resid, ci_level),
        "method": f"ANCOVA (OLS) {design.formula}; model-based SE",
    }
    effect_rows = [model_row]
    if robust:
        hc3 = fit.get_robustcov_results(cov_type="HC3", use_t=True)
        effect_rows.append(
            {
                **common,
                "measure": "adjusted mean difference",
                **_t_row(estimate, float(hc3.bse[1]), df_resid, ci_level),
                "method": f"ANCOVA (OLS) {design.formula}; HC3 robust SE",
            }
        )
    if standardiser == "pooled_sd":
        sd = _pooled_sd(design.y, design.arm)
        sd_name = f"pooled within-arm SD of {outcome} at {visit} (unadjusted)"
    else:
        sd = float(np.sqrt(fit.scale))
        sd_name = "ANCOVA residual SD (root mean squared error)"
    std = _t_row(estimate / sd, float(fit.bse[1]) / sd, df_resid, ci_level)
    effect_rows.append(
        {
            **common,
            "measure": "standardised adjusted mean difference",
            **std,
            "statistic": np.nan,
            "p_value": np.nan,
            "method": f"ANCOVA adjusted mean difference / {sd_name} = {sd:.6g}; CI treats the SD as known",
        }
    )
    cov = np.asarray(fit.cov_params())
    q = stats.t.ppf(0.5 + ci_level / 2.0, df_resid)
    means = []
    for a in ARMS:
        g = design.grid[a]
        est = float(g @ fit.params)
        se = float(np.sqrt(g @ cov @ g))
        means.append(
            {
                "outcome": outcome,
                "visit": visit,
                "arm": a,
                "label": labels[a],
                "estimate": est,
                "std_error": se,
                "df": df_resid,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "ci_level": ci_level,
                "n": n_t if a == "treatment" else n_c,
            }
        )
    return AncovaResult(
        effect=tidy_frame(effect_rows),
        adjusted_means=pd.DataFrame(means),
        n_treatment=n_t,
        n_control=n_c,
        n_excluded_missing=excl["treatment"] + excl["control"],
        excluded_by_arm=excl,
        formula=design.formula,
        residual_df=df_resid,
    )


def _pooled_sd(y: np.ndarray, arm: np.ndarray) -> float:
    """sqrt(((n_t - 1) s_t^2 + (n_c - 1) s_c^2) / (n_t + n_c - 2))."""
    parts = [y[arm == a] for a in ARMS]
    if min(len(p) for p in parts) < 2:
        raise UsageError("each arm needs at least two analysed participants for a pooled SD")
    ss = sum((len(p) - 1) * np.var(p, ddof=1) for p in parts)
    return float(np.sqrt(ss / (sum(len(p) for p in parts) - 2)))


# --------------------------------------------------------------------------------------------
# The models table
# --------------------------------------------------------------------------------------------


def adjust_pvalues(p_values: Sequence[float], method: Literal["holm", "hochberg"]) -> np.ndarray:
    """Family-wise adjusted p-values: Holm (1979) step-down or Hochberg (1988) step-up.

    Thin name mapping onto statsmodels ``multipletests`` (``"holm"``, ``"simes-hochberg"``);
    matches R ``p.adjust(p, "holm" | "hochberg")``. Missing p-values stay missing and do not
    count towards the family size.
    """
    if method not in MULTIPLICITY_METHODS:
        raise UsageError(
            f"multiplicity method must be one of {list(MULTIPLICITY_METHODS)}, found {method!r}"
        )
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    if present.any():
        out[present] = multipletests(p[present], method=MULTIPLICITY_METHODS[method])[1]
    return out


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
    follow-up visits, with the plan's covariance structure and fallbacks. Returns the
    :class:`analysis.mmrm.MmrmResult` (its ``n_treatment`` / ``n_control`` are the participants
    the fit used, which CONSORT's analysed counts must equal)."""
    from analysis.mmrm import fit_mmrm

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
    return fit_mmrm(
        data,
        covariates=list(covariates),
        visit_order=followup,
        ci_level=plan.analysis.ci_level,
        covariance=plan.analysis.mmrm_covariance,
        fallback=tuple(plan.analysis.mmrm_fallback),
    )


def _mmrm_rows(
    dataset: pd.DataFrame,
    plan: Plan,
    outcome: str,
    covariates: Sequence[str],
    participants: pd.DataFrame | None,
    role: str,
) -> pd.DataFrame:
    from analysis.errors import ModelError

    contrast = contrast_label(plan.arms.treatment.label, plan.arms.control.label)
    try:
        fit = fit_plan_mmrm(dataset, plan, outcome, covariates, participants)
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
    from analysis.errors import ModelError
    from analysis.missing import multiple_imputation_ancova, tipping_point

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
        except ModelError as error:
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
    MMRM LS-mean difference at every follow-up visit (:func:`analysis.mmrm.fit_mmrm`; the primary
    model when ``plan.analysis.primary_model == "mmrm"``, else a secondary model). Across the
    secondary outcomes, the primary model's p-values at the primary visit get ``p_adjusted``
    (``plan.analysis.multiplicity``: Holm or Hochberg). For the primary outcome, the
    multiple-imputation ANCOVA (``plan.analysis.imputations`` imputations, ``plan.seed``) and its
    delta-adjusted tipping point (:mod:`analysis.missing`). ``note`` says which outcome is
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
    present = set(dataset["outcome"].astype(str)) if "outcome" in dataset.columns else set()
    frames: list[pd.DataFrame] = []
    for outcome in plan.outcomes:
        if outcome.name not in present:
            continue
        role = "primary outcome" if outcome.name == primary else "secondary outcome"
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
        model_note = "primary model" if primary_model == "ancova" else "secondary model"
        effect = res.effect.copy()
        effect["note"] = [f"{role}; {model_note}; {n}" for n in effect["note"]]
        means = tidy_frame(_mean_rows(res, f"{role}; adjusted mean by arm"))
        mmrm = _mmrm_rows(
            dataset,
            plan,
            outcome.name,
            covariates,
            participants,
            f"{role}; {'primary' if primary_model == 'mmrm' else 'secondary'} model",
        )
        frame = pd.concat([effect, means, mmrm], ignore_index=True)
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
