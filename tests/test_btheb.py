"""A published trial brought in as R exports it, with no workaround: HSAUR3's BtheB ("Beat the
Blues", Proudfoot et al. 2003), written by ``write.csv`` (quoted text, ``NA`` for missing values),
visits in months, no disposition column (tests/reference/btheb.R, btheb_wide.csv, btheb_plan.yaml).

``trialkit run`` must work as is, and its MMRM (unstructured covariance, REML, Satterthwaite df)
must be R's: ``nlme::gls(corSymm + varIdent, REML)`` with emmeans treatment-by-visit contrasts
(btheb_ref.json). Estimates and SEs agree to 1e-4 relative (both fits iterative). The df are
checked twice: against emmeans' ``appx-satterthwaite`` with the tolerance the project uses for it
(2.5%, tests/stats/models/test_mmrm.py: emmeans' df are a random, finite-difference estimate; on
these data they spread by about 1% over seeds, ``df_range``), and against the exact Satterthwaite df
that btheb.R computes independently (its own REML likelihood, numDeriv Hessian and gradient) to
1e-4 relative.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.cli import run_cli
from analysis.core.notices import recording_warnings
from analysis.pipeline import load_trial
from analysis.stats.models.plan_models import fit_plan_mmrm
from tests.conftest import REFERENCE

PLAN = REFERENCE / "btheb_plan.yaml"
REF = json.loads((REFERENCE / "btheb_ref.json").read_text())
R_CONTRASTS = pd.DataFrame(REF["contrasts_treatment_minus_control"])
MONTH_LABEL = {2: "month2", 3: "month3", 5: "month5", 8: "month8"}


def rel(actual, expected) -> float:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


@pytest.fixture(scope="module")
def trial():
    with recording_warnings(forward=lambda _text: None):
        return load_trial(PLAN)


@pytest.fixture(scope="module")
def fit(trial):
    return fit_plan_mmrm(trial.dataset, trial.plan, "bdi", trial.plan.covariates, trial.participants)


def test_trialkit_run_reads_the_r_export_as_is(tmp_path, capsys):
    out = tmp_path / "btheb"
    assert run_cli(["run", str(PLAN), "--out", str(out), "--no-report"]) == 0
    assert "disposition derived from the data" in capsys.readouterr().err  # said, not silent
    accounting = pd.read_csv(out / "accounting.csv", keep_default_na=False)
    count = dict(zip(accounting["item"], accounting["count"], strict=True))
    # every NA that R wrote is a missing value, counted per column (R: colSums(is.na(BtheB)))
    for column in ("bdi.2m", "bdi.3m", "bdi.5m", "bdi.8m"):
        assert count[f"'NA' in {column}"] == REF["missing_per_column"][column]
    assert count["rows read"] == REF["n_randomised"]
    # completed = a value at month 8
    assert count["disposition derived: completed"] == REF["n_randomised"] - REF["missing_per_column"]["bdi.8m"]
    assert count["disposition derived: lost_to_follow_up"] == REF["missing_per_column"]["bdi.8m"]
    models = pd.read_csv(out / "tables" / "models.csv")
    mmrm = models[models["measure"] == "LS-mean difference"].set_index("visit")
    assert mmrm.index.tolist() == ["month2", "month3", "month5", "month8"]
    assert mmrm["note"].str.startswith("primary outcome; primary model").all()
    assert rel(mmrm["estimate"], R_CONTRASTS["estimate"]) < 1e-4
    assert rel(mmrm["std_error"], R_CONTRASTS["SE"]) < 1e-4
    dataset = pd.read_csv(out / "data" / "analysis_dataset.csv", dtype={"participant_id": str})
    assert sorted(dataset["visit_month"].unique()) == [0.0, 2.0, 3.0, 5.0, 8.0]


def test_the_participants_are_read_as_r_wrote_them(trial):
    people = trial.participants.set_index("participant_id")
    assert len(people) == REF["n_randomised"] and people.index[:3].tolist() == ["1", "2", "3"]
    assert people.loc["1", ["arm", "drug", "length"]].tolist() == ["control", "No", ">6m"]  # R's row 1: No, >6m, TAU
    assert (people["disposition"] == "completed").sum() == 52
    assert set(people.loc[people["disposition"] == "lost_to_follow_up", "disposition_reason"]) == {"not recorded"}


def test_the_mmrm_is_rs_model(fit):
    assert fit.n_participants == REF["n_participants"] and fit.n_obs == REF["n_obs"]
    assert fit.covariance_structure == "unstructured"
    assert fit.reml_loglik == pytest.approx(REF["logLik_REML"], abs=1e-6)
    # fixed effects in R's order, R's names with the plan's: bdi.pre = baseline, treatment = arm,
    # visit levels 3, 5, 8 = month3, month5, month8
    renamed = [name.replace("bdi.pre", "baseline").replace("treatmentBtheB", "armtreatment").replace("visit", "visitmonth")
               for name in REF["fixed"]]
    assert list(fit.terms) == renamed
    assert rel(fit.estimates, list(REF["fixed"].values())) < 1e-4
    assert rel(fit.std_errors, list(REF["fixed_se"].values())) < 1e-4


def test_treatment_by_visit_contrasts_agree_with_r(fit):
    got = fit.contrasts.set_index("visit").loc[[MONTH_LABEL[m] for m in R_CONTRASTS["month"]]]
    expected = R_CONTRASTS
    assert rel(got["estimate"], expected["estimate"]) < 1e-4
    assert rel(got["std_error"], expected["SE"]) < 1e-4
    # df: exact Satterthwaite (independent R computation) to 1e-4; emmeans' approximation to 2.5%
    assert rel(got["df"], expected["df_exact"]) < 1e-4
    assert rel(got["df"], expected["df_satterthwaite"]) < 0.025
    # CI and p are R's at R's df
    quantile = stats.t.ppf(0.975, expected["df_satterthwaite"].to_numpy())
    assert rel(got["estimate"].to_numpy() - quantile * got["std_error"].to_numpy(), expected["ci_low"]) < 1e-4
    assert rel(got["estimate"].to_numpy() + quantile * got["std_error"].to_numpy(), expected["ci_high"]) < 1e-4
    p_at_r_df = 2 * stats.t.sf(np.abs(got["statistic"].to_numpy()), expected["df_satterthwaite"].to_numpy())
    assert rel(p_at_r_df, expected["p_value"]) < 5e-4


def test_ls_means_agree_with_emmeans(fit):
    lsmeans = fit.lsmeans.copy()
    lsmeans["arm"] = lsmeans["arm"].map({"treatment": "BtheB", "control": "TAU"})
    expected = pd.DataFrame(REF["lsmeans"]).assign(visit=lambda f: f["month"].map(MONTH_LABEL))
    merged = lsmeans.merge(expected, on=["arm", "visit"])
    assert len(merged) == 8
    assert rel(merged["estimate"], merged["emmean"]) < 1e-4
    assert rel(merged["std_error"], merged["SE"]) < 1e-4
