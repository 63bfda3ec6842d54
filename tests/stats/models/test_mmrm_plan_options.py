"""The plan's MMRM options (analysis: mmrm_covariance, mmrm_df, mmrm_terms) on a small plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.plan_models import fit_plan_mmrm
from tests.conftest import SMALL_PLAN

N = 24


def _files() -> tuple[str, str]:
    rng = np.random.default_rng(3)
    participants = "participant_id,arm,age,disposition\n" + "".join(
        f"P{i},{'T' if i % 2 else 'C'},{30 + (i * 7) % 25},completed\n" for i in range(1, N + 1))
    rows = []
    for i in range(1, N + 1):
        base = rng.uniform(4, 8)
        rows.append(f"P{i},base,pain,{base:.1f}")
        w4 = np.clip(base - (1.5 if i % 2 else 0.5) + rng.normal(0, 1), 0, 10)
        rows.append(f"P{i},w4,pain,{w4:.1f}")
        if i % 5:  # every fifth participant drops out after week 4
            w8 = np.clip(0.6 * w4 + rng.normal(0, 1) - (1.0 if i % 2 else 0.0), 0, 10)
            rows.append(f"P{i},w8,pain,{w8:.1f}")
    return participants, "participant_id,visit,outcome,value\n" + "\n".join(rows) + "\n"


def _trial(small_trial, analysis: str, covariates: str = ""):
    from analysis.pipeline import load_trial

    participants, measurements = _files()
    return load_trial(small_trial(SMALL_PLAN + covariates + "analysis:\n" + analysis,
                                  participants, measurements))


def _long(trial):
    data = trial.dataset.loc[(trial.dataset["outcome"] == "pain")
                             & trial.dataset["visit"].astype(str).isin(["w4", "w8"])].copy()
    data["visit"] = data["visit"].astype(str)
    return data


def test_default_plan_options_are_the_satterthwaite_unstructured_fit(small_trial):
    trial = _trial(small_trial, "  primary_model: mmrm\n")
    fit = fit_plan_mmrm(trial.dataset, trial.plan, "pain")
    assert fit.method == "MMRM, unstructured covariance, REML, Satterthwaite df"
    direct = fit_mmrm(_long(trial), visit_order=["w4", "w8"])
    assert np.array_equal(fit.contrasts["estimate"], direct.contrasts["estimate"])
    assert np.array_equal(fit.contrasts["df"], direct.contrasts["df"])


@pytest.mark.parametrize("structure", ["cs_heterogeneous", "ar1_heterogeneous",
                                       "antedependence", "spatial_exponential"])
def test_plan_takes_every_structure(small_trial, structure):
    trial = _trial(small_trial, f"  mmrm_covariance: {structure}\n")
    fit = fit_plan_mmrm(trial.dataset, trial.plan, "pain")
    assert fit.covariance_structure == structure
    direct = fit_mmrm(_long(trial), visit_order=["w4", "w8"], covariance=structure)
    np.testing.assert_allclose(fit.contrasts["estimate"], direct.contrasts["estimate"], rtol=1e-10)


@pytest.mark.parametrize("method", ["kenward-roger", "kenward-roger-linear", "between-within",
                                    "residual"])
def test_plan_df_method_matches_the_formula_interface(small_trial, method):
    trial = _trial(small_trial, f"  mmrm_df: {method}\n")
    fit = fit_plan_mmrm(trial.dataset, trial.plan, "pain")
    assert method.split("-")[0] in fit.method.lower()
    data = _long(trial)
    formula = fit_mmrm("value ~ baseline + arm * visit + us(visit | participant_id)", data,
                       df=method, emmeans="arm | visit", reference="control",
                       visit_order=["w4", "w8"])
    expected = formula.rows("contrast")
    np.testing.assert_allclose(fit.contrasts["estimate"], expected["estimate"], rtol=1e-8)
    np.testing.assert_allclose(fit.contrasts["std_error"], expected["std_error"], rtol=1e-6)
    np.testing.assert_allclose(fit.contrasts["df"], expected["df"], rtol=1e-6)
    if method == "residual":
        assert fit.contrasts["df"].tolist() == [fit.n_obs - 5.0] * 2


def test_plan_by_visit_terms(small_trial):
    trial = _trial(small_trial, "  mmrm_terms: ['baseline:visit', 'age:visit']\n",
                   covariates="covariates: [age]\n")
    fit = fit_plan_mmrm(trial.dataset, trial.plan, "pain", ["age"], trial.participants)
    assert {"baseline:visitw8", "age:visitw8"} <= set(fit.terms)
    assert all(math.isfinite(v) for v in fit.contrasts["estimate"])
    only_baseline = _trial(small_trial, "  mmrm_terms: ['baseline:visit']\n")
    fit = fit_plan_mmrm(only_baseline.dataset, only_baseline.plan, "pain")
    direct = fit_mmrm(_long(only_baseline), visit_order=["w4", "w8"], baseline_by_visit=True)
    assert np.array_equal(fit.estimates, direct.estimates)


def test_plan_rejects_unknown_options(small_trial):
    for bad in ("  mmrm_df: containment\n", "  mmrm_covariance: banded\n",
                "  mmrm_terms: ['baseline*visit']\n"):
        with pytest.raises((ValidationError, Exception), match="mmrm_"):
            _trial(small_trial, bad)
