"""Every covariance structure x df method gives one answer by its three doors: the study plan
(``analysis: mmrm_covariance / mmrm_df``), Python (``fit_mmrm(formula, data, ...)``) and the
command line (``trialkit mmrm``). Follow-up visits at unequal times (weeks 2, 6, 12), so the
spatial structure's distances matter. The numbers themselves are checked against R and SAS in
test_mmrm_formula.py and test_mmrm_sas_kr.py; here the doors must agree with each other.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.mmrm.formula_fit import DF_METHODS
from analysis.stats.models.plan_models import fit_plan_mmrm, plan_mmrm_data
from tests.conftest import SMALL_PLAN

# plan name -> R mmrm name
STRUCTURES = {"unstructured": "us", "compound_symmetry": "cs", "cs_heterogeneous": "csh",
              "ar1": "ar1", "ar1_heterogeneous": "ar1h", "toeplitz": "toep",
              "toeplitz_heterogeneous": "toeph", "antedependence": "ad",
              "antedependence_heterogeneous": "adh", "spatial_exponential": "sp_exp"}
WEEKS = {"w2": 2, "w6": 6, "w12": 12}
N = 90


def _files() -> tuple[str, str]:
    rng = np.random.default_rng(11)
    participants = "participant_id,arm,age,disposition\n" + "".join(
        f"P{i},{'T' if i % 2 else 'C'},{30 + (i * 7) % 25},completed\n" for i in range(1, N + 1))
    sd = np.array([1.0, 1.2, 1.5])
    corr = np.array([[1.0, 0.6, 0.4], [0.6, 1.0, 0.6], [0.4, 0.6, 1.0]])
    rows = []
    for i in range(1, N + 1):
        base = rng.uniform(4, 8)
        rows.append(f"P{i},base,pain,{base:.2f}")
        error = rng.multivariate_normal(np.zeros(3), corr * np.outer(sd, sd))
        drop = 3 - (i % 7 == 0) - (i % 11 == 0)  # some leave after week 2 or week 6
        for k, visit in enumerate(list(WEEKS)[:drop]):
            effect = (0.4 + 0.3 * k) if i % 2 else 0.0
            value = np.clip(0.7 * base + 1.0 - 0.3 * k - effect + error[k], 0, 10)
            rows.append(f"P{i},{visit},pain,{value:.2f}")
    return participants, "participant_id,visit,outcome,value\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    from analysis.pipeline import load_trial

    folder = tmp_path_factory.mktemp("every_path")
    participants, measurements = _files()
    (folder / "participants.csv").write_text(participants)
    (folder / "measurements.csv").write_text(measurements)
    plan = SMALL_PLAN.replace("    - {label: w4, week: 4}\n    - {label: w8, week: 8}\n",
                              "".join(f"    - {{label: {v}, week: {w}}}\n"
                                      for v, w in WEEKS.items())).replace("primary: w8",
                                                                          "primary: w12")
    (folder / "plan.yaml").write_text(plan)
    return load_trial(folder / "plan.yaml")


@pytest.fixture(scope="module")
def long_csv(trial, tmp_path_factory):
    data = plan_mmrm_data(trial.dataset, trial.plan, "pain")
    data["week"] = data["visit"].map(WEEKS)
    path = tmp_path_factory.mktemp("every_path_cli") / "long.csv"
    data.to_csv(path, index=False)
    return data, path


def _formula(r_name: str) -> str:
    time = "week" if r_name == "sp_exp" else "visit"
    return f"value ~ baseline + arm * visit + {r_name}({time} | participant_id)"


@pytest.mark.parametrize("df", DF_METHODS)
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_plan_python_and_cli_agree(trial, long_csv, tmp_path, structure, df):
    data, path = long_csv
    control = "control"  # the analysis frame's arm codes; the plan's labels are for reports
    analysis = trial.plan.analysis.model_copy(update={"mmrm_covariance": structure, "mmrm_df": df})
    plan = trial.plan.model_copy(update={"analysis": analysis})
    from_plan = fit_plan_mmrm(trial.dataset, plan, "pain").contrasts

    options = {"df": df, "emmeans": "arm | visit", "reference": control,
               "visit_order": list(WEEKS)}
    from_python = fit_mmrm(_formula(STRUCTURES[structure]), data, **options).rows("contrast")
    assert from_python["contrast"].tolist() == ["treatment - control"] * 3
    assert from_plan["visit"].tolist() == from_python["visit"].tolist() == list(WEEKS)
    for column, tolerance in (("estimate", 1e-8), ("std_error", 1e-6), ("df", 1e-6)):
        np.testing.assert_allclose(from_plan[column], from_python[column], rtol=tolerance,
                                   err_msg=f"{structure}, {df}: {column}")

    out = tmp_path / "out.csv"
    code = run_cli(["mmrm", str(path), "--formula", _formula(STRUCTURES[structure]), "--df", df,
                    "--emmeans", "arm | visit", "--reference", control, "--visit-order",
                    ",".join(WEEKS), "--output", str(out)])
    assert code == 0
    table = pd.read_csv(io.StringIO(out.read_text()))
    from_cli = table.loc[table["type"] == "contrast"].reset_index(drop=True)
    for column in ("estimate", "std_error", "df", "p_value", "ci_low", "ci_high"):
        np.testing.assert_allclose(from_cli[column], from_python[column], rtol=1e-12)
    assert from_cli["method"].iloc[0] == from_python["method"].iloc[0]


def test_spatial_distances_are_the_plans_visit_times(trial):
    """With visits at weeks 2, 6 and 12 the spatial structure is not AR(1) on the visit index:
    the fitted correlations fall as rho^4 and rho^6 from week 2 (rho^10 from week 2 to 12)."""
    analysis = trial.plan.analysis.model_copy(update={"mmrm_covariance": "spatial_exponential"})
    fit = fit_plan_mmrm(trial.dataset, trial.plan.model_copy(update={"analysis": analysis}),
                        "pain")
    sigma = fit.covariance.to_numpy()
    corr = sigma / sigma[0, 0]
    rho = corr[0, 1] ** (1 / 4)
    np.testing.assert_allclose([corr[1, 2], corr[0, 2]], [rho**6, rho**10], rtol=1e-10)
    index_spaced = fit_mmrm(plan_mmrm_data(trial.dataset, trial.plan, "pain"),
                            visit_order=list(WEEKS), covariance="spatial_exponential")
    assert not np.isclose(index_spaced.reml_loglik, fit.reml_loglik, rtol=1e-6)
