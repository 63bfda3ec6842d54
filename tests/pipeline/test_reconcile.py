"""Nothing lost across outputs: the counts in Table 1, CONSORT, the accounting table and the
primary analysis of the same trial agree with each other and with the raw files."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.cli import run_cli
from tests.conftest import EXAMPLE_PLAN, REPO


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reconcile")
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(root / "run"), "--no-report"]) == 0
    assert run_cli(["grant-report", str(EXAMPLE_PLAN), "--period-end", "2023-12-31", "--out", str(root / "grant"), "--no-report"]) == 0
    return root / "run", root / "grant"


def test_table1_consort_accounting_and_primary_analysis_agree(outputs):
    run, grant = outputs
    raw = pd.read_csv(REPO / "data" / "examples" / "precision-release-sim" / "participants.csv")
    randomised = raw["arm"].map({"PLR": "treatment", "PT": "control"}).value_counts()

    table1 = pd.read_csv(grant / "tables" / "table1_stats.csv")
    table1_n = table1[table1["row"] == "N"].set_index("group")["n"]
    consort = pd.read_csv(grant / "tables" / "consort_counts.csv")
    allocated = consort[consort["stage"] == "allocated"].set_index("arm")["n"]
    analysed = consort[consort["stage"] == "analysed"].set_index("arm")["n"]
    accounting = pd.read_csv(run / "accounting.csv")
    models = pd.read_csv(run / "tables" / "models.csv")
    primary = models[(models["outcome"] == "pain_interference") & (models["measure"] == "adjusted mean difference")].iloc[0]

    for arm in ("treatment", "control"):
        assert table1_n[arm] == allocated[arm] == randomised[arm]
        assert analysed[arm] == primary[f"n_{arm}"]
    itt = accounting.loc[accounting["item"] == "participants analysed (intention to treat)", "count"].iloc[0]
    assert itt == len(raw) == allocated.sum()
    complete = accounting[(accounting["source"] == "pain_interference")
                          & accounting["item"].str.startswith("participants analysed at")]["count"].iloc[0]
    assert complete == analysed.sum() == primary["n_treatment"] + primary["n_control"]


def test_accounting_counts_a_missing_covariate_as_an_exclusion(small_trial):
    from analysis.pipeline import accounting_table, load_trial
    from analysis.stats.models.ancova import ancova
    from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS, SMALL_PLAN

    extra_people = "".join(f"P{i},{'TC'[i % 2]},{30 + 3 * i},completed\n" for i in range(5, 11))
    extra_values = "".join(f"P{i},{v},pain,{(i * 7 + k) % 9}\n" for i in range(5, 11) for k, v in enumerate(("base", "w4", "w8")))
    plan = small_trial(
        plan=SMALL_PLAN + "covariates: [age]\n",
        participants=SMALL_PARTICIPANTS.replace("P3,T,35", "P3,T,") + extra_people,
        measurements=SMALL_MEASUREMENTS + extra_values,
    )
    trial = load_trial(plan)
    table = accounting_table(trial).set_index("item")["count"]
    assert table["excluded: a covariate is missing"] == 1  # P3 has no age
    assert table["excluded: no value at the primary visit"] == 1  # P4 withdrew before w8
    fit = ancova(trial.dataset, outcome="pain", visit="w8", covariates=["age"], participants=trial.participants)
    assert table["participants analysed at w8 (complete cases)"] == fit.n_treatment + fit.n_control == 8
