"""ANCOVA, adjusted means, HC3, standardised effect, multiplicity and the models table.

Expected values: R ``lm`` + ``emmeans`` on MASS::anorexia (tests/reference/anorexia_ref.json,
made by tests/reference/make_reference.R), literal hand-worked numbers, or an independent
computation path (textbook formula in NumPy, patsy/statsmodels formula predictions) written here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis.core.errors import UsageError
from analysis.stats.models.ancova import adjust_pvalues, ancova
from analysis.stats.models.plan_models import models_table
from tests.conftest import REFERENCE, REPO

REFERENCE = REFERENCE
REF = json.loads((REFERENCE / "anorexia_ref.json").read_text())
ANOREXIA = pd.read_csv(REFERENCE / "anorexia.csv")
REPO = REPO
EXAMPLE_PLAN = REPO / "data" / "studies" / "example-precision-release.yaml"


def anorexia_dataset(treatment: str) -> pd.DataFrame:
    """MASS::anorexia as a long analysis dataset: weight after vs before, one treatment vs Cont."""
    d = ANOREXIA.loc[ANOREXIA["Treat"].isin([treatment, "Cont"])]
    return pd.DataFrame(
        {
            "participant_id": d["id"].to_numpy(),
            "arm": np.where(d["Treat"] == treatment, "treatment", "control"),
            "outcome": "weight",
            "visit": "post",
            "value": d["Postwt"].to_numpy(float),
            "baseline": d["Prewt"].to_numpy(float),
        }
    )


@pytest.mark.parametrize("treatment", ["CBT", "FT"])
def test_ancova_matches_r_lm_and_emmeans(treatment: str) -> None:
    res = ancova(anorexia_dataset(treatment), outcome="weight", visit="post")
    row = res.effect.iloc[0]
    ref = REF[treatment]["ancova"]
    for ours, theirs in [
        ("estimate", "estimate"),
        ("std_error", "std_error"),
        ("statistic", "t"),
        ("df", "df"),
        ("p_value", "p_value"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
    ]:
        assert row[ours] == pytest.approx(ref[theirs], rel=1e-8), ours
    means = res.adjusted_means.set_index("arm")
    ref_means = REF[treatment]["ancova_adjusted_means"]
    for arm, level in [("treatment", treatment), ("control", "Cont")]:
        r = ref_means[level]
        assert means.loc[arm, "estimate"] == pytest.approx(r["emmean"], rel=1e-8)
        assert means.loc[arm, "std_error"] == pytest.approx(r["SE"], rel=1e-8)
        assert means.loc[arm, "ci_low"] == pytest.approx(r["lower"], rel=1e-8)
        assert means.loc[arm, "ci_high"] == pytest.approx(r["upper"], rel=1e-8)
    arms = REF[treatment]["arms"]
    assert (res.n_treatment, res.n_control) == (arms["treatment"]["n"], arms["control"]["n"])
    assert res.n_excluded_missing == 0
    assert row["contrast"] == "treatment - control"


def test_standardised_effect_uses_the_pooled_follow_up_sd() -> None:
    res = ancova(anorexia_dataset("CBT"), outcome="weight", visit="post")
    std = res.effect.loc[res.effect["measure"] == "standardised adjusted mean difference"].iloc[0]
    # pooled SD from R's per-arm post-treatment SDs (n 29 and 26)
    t, c = REF["CBT"]["arms"]["treatment"], REF["CBT"]["arms"]["control"]
    sd = math.sqrt((28 * t["post_sd"] ** 2 + 25 * c["post_sd"] ** 2) / 53)
    assert std["estimate"] == pytest.approx(REF["CBT"]["ancova"]["estimate"] / sd, rel=1e-8)
    assert std["ci_low"] == pytest.approx(REF["CBT"]["ancova"]["ci_low"] / sd, rel=1e-8)
    assert "pooled within-arm SD" in std["method"]
    resid = ancova(
        anorexia_dataset("CBT"), outcome="weight", visit="post", standardiser="residual_sd"
    )
    assert "residual SD" in resid.effect.iloc[-1]["method"]


def test_hc3_row_matches_the_sandwich_formula() -> None:
    data = anorexia_dataset("FT")
    res = ancova(data, outcome="weight", visit="post", robust=True)
    assert len(res.effect) == 3
    hc3 = res.effect.iloc[1]
    assert "HC3" in hc3["method"]
    # HC3 (MacKinnon & White 1985): (X'X)^-1 X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^-1
    x = np.column_stack(
        [np.ones(len(data)), (data["arm"] == "treatment").astype(float), data["baseline"]]
    )
    y = data["value"].to_numpy(float)
    bread = np.linalg.inv(x.T @ x)
    e = y - x @ (bread @ x.T @ y)
    h = np.einsum("ij,jk,ik->i", x, bread, x)
    meat = x.T @ (x * (e**2 / (1 - h) ** 2)[:, None])
    se = math.sqrt((bread @ meat @ bread)[1, 1])
    assert hc3["std_error"] == pytest.approx(se, rel=1e-10)
    assert hc3["estimate"] == pytest.approx(REF["FT"]["ancova"]["estimate"], rel=1e-8)
    assert hc3["df"] == 40


def _with_covariates() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = anorexia_dataset("CBT")
    rng = np.random.default_rng(11)
    participants = pd.DataFrame(
        {
            "participant_id": data["participant_id"],
            "age": rng.normal(30, 6, len(data)).round(1),
            # unbalanced levels, so equal weights differ from the observed proportions
            "site": rng.choice(["north", "south", "west"], size=len(data), p=[0.6, 0.3, 0.1]),
        }
    )
    return data, participants


def test_adjusted_means_average_factor_levels_with_equal_weights() -> None:
    data, participants = _with_covariates()
    res = ancova(
        data, outcome="weight", visit="post", covariates=["age", "site"], participants=participants
    )
    # independent path: patsy formula fit, predictions on emmeans' reference grid, averaged
    frame = data.merge(participants, on="participant_id")
    fit = smf.ols("value ~ C(arm, Treatment('control')) + baseline + age + C(site)", frame).fit()
    for arm in ("treatment", "control"):
        grid = pd.DataFrame(
            {
                "arm": arm,
                "baseline": frame["baseline"].mean(),
                "age": frame["age"].mean(),
                "site": ["north", "south", "west"],
            }
        )
        expected = float(np.mean(fit.predict(grid)))
        got = res.adjusted_means.set_index("arm").loc[arm, "estimate"]
        assert got == pytest.approx(expected, rel=1e-10)
    assert res.effect.iloc[0]["estimate"] == pytest.approx(fit.params.iloc[1], rel=1e-10)
    assert res.formula == "value ~ arm + baseline + age + C(site)"


def test_missing_values_and_covariates_are_excluded_and_counted() -> None:
    data, participants = _with_covariates()
    data.loc[data.index[:2], "value"] = np.nan  # two control rows (Cont comes first in the file)
    participants.loc[participants.index[-1], "age"] = np.nan  # one CBT participant
    res = ancova(
        data, outcome="weight", visit="post", covariates=["age"], participants=participants
    )
    assert res.excluded_by_arm == {"treatment": 1, "control": 2}
    assert res.n_excluded_missing == 3
    assert (res.n_treatment, res.n_control) == (28, 24)
    assert "treatment 1, control 2" in res.effect.iloc[0]["note"]


def test_bad_arguments_raise_usage_errors() -> None:
    data, participants = _with_covariates()
    with pytest.raises(UsageError, match="participants"):
        ancova(data, outcome="weight", visit="post", covariates=["age"])
    with pytest.raises(UsageError, match="height"):
        ancova(
            data, outcome="weight", visit="post", covariates=["height"], participants=participants
        )
    with pytest.raises(UsageError, match="outcome 'pain'"):
        ancova(data, outcome="pain", visit="post")
    with pytest.raises(UsageError, match="no rows at visit"):
        ancova(data, outcome="weight", visit="week99")
    with pytest.raises(UsageError, match="ci_level"):
        ancova(data, outcome="weight", visit="post", ci_level=95)
    bad = data.assign(arm=np.where(data["arm"] == "treatment", "T", "C"))
    with pytest.raises(UsageError, match="arm must be"):
        ancova(bad, outcome="weight", visit="post")
    constant = participants.assign(site="north")
    with pytest.raises(UsageError, match="rank-deficient"):
        ancova(
            data,
            outcome="weight",
            visit="post",
            covariates=["age", "site"],
            participants=constant.assign(age=1.0),
        )


def test_holm_and_hochberg_hand_worked() -> None:
    p = [0.01, 0.04, 0.03]
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06], rel=1e-12)
    # Hochberg: from the largest: 0.04 * 1 = 0.04; 0.03 * 2 = 0.06 -> min(0.06, 0.04) = 0.04; 0.01 * 3 = 0.03
    assert adjust_pvalues(p, "hochberg") == pytest.approx([0.03, 0.04, 0.04], rel=1e-12)
    out = adjust_pvalues([0.02, np.nan], "holm")
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1])
    with pytest.raises(UsageError, match="multiplicity"):
        adjust_pvalues(p, "bonferroni")


@pytest.fixture(scope="module")
def example_tables():
    if not (REPO / "data" / "examples" / "precision-release-sim" / "measurements.csv").is_file():
        pytest.fail(
            "the bundled example data are missing; run `trialkit simulate` (see data/studies)"
        )
    from analysis.pipeline import load_trial

    trial = load_trial(EXAMPLE_PLAN)
    return trial, models_table(trial.dataset, trial.plan, trial.participants)


def test_models_table_on_the_example_trial(example_tables) -> None:
    trial, table = example_tables
    plan = trial.plan
    primary = plan.primary_outcome.name
    assert set(table["outcome"]) == {o.name for o in plan.outcomes}
    first = table.loc[(table["outcome"] == primary)].iloc[0]
    assert first["measure"] == "adjusted mean difference" and first["visit"] == plan.visits.primary
    assert "primary outcome; primary model" in first["note"]
    # the ANCOVA row equals a direct ancova() call
    direct = ancova(
        trial.dataset,
        outcome=primary,
        visit=plan.visits.primary,
        covariates=plan.covariates,
        participants=trial.participants,
    )
    assert first["estimate"] == pytest.approx(direct.effect.iloc[0]["estimate"], rel=1e-12)
    measures = set(table.loc[table["outcome"] == primary, "measure"])
    assert {
        "adjusted mean",
        "LS-mean difference",
        "standardised adjusted mean difference",
        "tipping point delta",
    } <= measures
    mi = table.loc[
        (table["outcome"] == primary) & table["method"].str.startswith("multiple imputation")
    ]
    assert (
        len(mi) == 1
        and mi["n_boot"].iloc[0] == plan.analysis.imputations
        and mi["seed"].iloc[0] == plan.seed
    )
    # Holm across the secondary outcomes, on their model-based ANCOVA rows only
    adjusted = table.loc[table["p_adjusted"].notna()]
    assert set(adjusted["outcome"]) == {o.name for o in plan.outcomes if o.name != primary}
    assert adjusted["p_adjusted"].to_numpy() == pytest.approx(
        adjust_pvalues(adjusted["p_value"].to_numpy(), "holm")
    )
    assert (adjusted["method"].str.contains("model-based SE")).all()
    # reproducible: same inputs and seed give identical tables
    again = models_table(trial.dataset, plan, trial.participants)
    pd.testing.assert_frame_equal(table, again)


def test_models_table_needs_participants_when_the_plan_has_covariates(example_tables) -> None:
    trial, _ = example_tables
    with pytest.raises(UsageError, match="participants"):
        models_table(trial.dataset, trial.plan)


def test_models_table_with_mmrm_as_primary_model_and_hochberg(example_tables) -> None:
    trial, _ = example_tables
    plan = trial.plan
    analysis = plan.analysis.model_copy(
        update={"primary_model": "mmrm", "multiplicity": "hochberg"}
    )
    table = models_table(
        trial.dataset, plan.model_copy(update={"analysis": analysis}), trial.participants
    )
    adjusted = table.loc[table["p_adjusted"].notna()]
    assert (adjusted["measure"] == "LS-mean difference").all()
    assert (adjusted["visit"] == plan.visits.primary).all()
    assert adjusted["p_adjusted"].to_numpy() == pytest.approx(
        adjust_pvalues(adjusted["p_value"].to_numpy(), "hochberg")
    )
    mmrm = table.loc[
        (table["measure"] == "LS-mean difference") & (table["outcome"] == plan.primary_outcome.name)
    ]
    assert mmrm["visit"].tolist() == [v.label for v in plan.visits.followup]
    assert mmrm["note"].str.contains("primary model").all()
    ancova_rows = table.loc[table["measure"] == "adjusted mean difference"]
    assert ancova_rows["note"].str.contains("secondary model|sensitivity analysis").all()


def test_a_sensitivity_model_that_cannot_be_fitted_becomes_a_row_saying_why(example_tables, monkeypatch) -> None:
    import analysis.stats.models.missing
    from analysis.core.errors import ModelError

    def collinear(*_args, **_kwargs):
        raise ModelError("cannot impute: collinear predictors")

    monkeypatch.setattr(analysis.stats.models.missing, "multiple_imputation_ancova", collinear)
    trial, _ = example_tables
    table = models_table(trial.dataset, trial.plan, trial.participants)
    row = table[table["measure"] == "multiple imputation ANCOVA"]
    assert len(row) == 1 and row["estimate"].isna().all()
    assert "not estimable: cannot impute: collinear predictors" in row["note"].iloc[0]
    assert (table["measure"] == "adjusted mean difference").any()  # the primary analysis still stands
