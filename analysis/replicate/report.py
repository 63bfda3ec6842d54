"""Writing a replication: the plain-language conclusion, the outputs read back for the notebooks
(:class:`ReplicationOutputs`) and :func:`replicate`, which runs parts 2-5 of :mod:`analysis.replicate`
and writes every table, figure, the rendered notebook and ``manifest.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.notices import manifest_notices, records_warnings
from analysis.plan.published import LoadedPublished, PublishedCase, PublishedTrial, load_published
from analysis.replicate.calibration import headline_check, write_replication_trial
from analysis.replicate.claims import assumptions_table, claims_table, main_scenario
from analysis.replicate.implied import (
    aggregate_route,
    conclusions_table,
    consistency_table,
    implied_arms_table,
    readings_summary,
    sd_r_grid,
    sensitivity_figure,
    sensitivity_table,
)
from analysis.replicate.single_case import case_figure, case_sensitivity, case_table

# --------------------------------------------------------------------------------------------
# Plain-language conclusion
# --------------------------------------------------------------------------------------------


VERDICT_COLUMNS = ["claim", "printed", "outcome", "readings", "n_readings", "n_plausible", "verdict"]


def _verdict(n_ok: int, n_all: int, what: str) -> str:
    if n_ok == 0:
        return f"implausible: {what} under none of the {n_all} readings"
    if n_ok == n_all:
        return f"plausible: {what} under all {n_all} readings"
    return f"depends on the reading: {what} under {n_ok} of {n_all} readings"


def claim_verdicts(plan: PublishedTrial | PublishedCase, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One verdict per claimed outcome: the figures as printed, the readings tried, under how many they are plausible.

    For a trial, a reading is a (percent reading, fold reading) pair of the ``consistency`` table and
    the figures are plausible under it when every consistency check passes. For a single case, a
    reading is one combination of the unreported values (``case_sensitivity``) and the claim holds
    under it when the gain exceeds the minimal detectable change. The conclusion text, the notebook
    and the terminal summary of ``trialkit replicate`` all say these same verdicts.
    """
    rows = []
    if isinstance(plan, PublishedCase):
        sens = tables["case_sensitivity"]
        claims = [c for c in plan.reported if c.kind == "percent_restored"] or list(plan.reported)
        n_ok, n_all = int(sens["exceeds_mdc"].sum()), len(sens)
        rows.append({"claim": ", ".join(c.id for c in claims), "printed": "; ".join(c.quote for c in claims),
                     "outcome": plan.restored.outcome,
                     "readings": "normative value x pre-treatment value x minimal detectable change (assumption grid)",
                     "n_readings": n_all, "n_plausible": n_ok,
                     "verdict": _verdict(n_ok, n_all, "the gain exceeds measurement noise")})
        return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    consistency = tables["consistency"]
    for spec in plan.claimed_outcomes:
        claims = [c for c in plan.reported if c.kind in ("percent_change", "fold")
                  and (c.outcome == spec.name or spec.name in (c.outcomes or []))]
        ok = consistency[consistency["outcome"] == spec.name].groupby(["percent_reading", "fold_reading"], sort=False)["passed"].all()
        n_ok, n_all = int(ok.sum()), len(ok)
        rows.append({"claim": ", ".join(c.id for c in claims), "printed": "; ".join(c.quote for c in claims),
                     "outcome": spec.name, "readings": "; ".join(f"{p} + {f}" for p, f in ok.index),
                     "n_readings": n_all, "n_plausible": n_ok,
                     "verdict": _verdict(n_ok, n_all, f"the printed figures fit the {spec.label} range and assumptions")})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def conclusion_text(plan: PublishedTrial | PublishedCase, tables: dict[str, pd.DataFrame]) -> str:
    """A plain-language paragraph on what can and cannot be concluded, from the computed tables."""
    if isinstance(plan, PublishedCase):
        case = tables["case"].iloc[0]
        verdict = claim_verdicts(plan, tables).iloc[0]
        share = verdict["n_plausible"] / verdict["n_readings"]
        unit = plan.outcome(plan.restored.outcome).unit
        return (
            f"The case report printed only that {plan.restored.value:g}% of lost {plan.outcome(plan.restored.outcome).label.lower()} "
            f"was restored. With a normative value of {case['normative']:g} and a pre-treatment value of {case['pre']:g} "
            f"(both assumed, not reported), that is a gain of {case['change']:.1f} {unit}, against a minimal detectable change "
            f"of {case['mdc']:g} {unit}: {'larger than' if case['exceeds_mdc'] else 'within'} measurement noise, with a band of "
            f"{case['band_low']:.0f}% to {case['band_high']:.0f}% restored. Over the plausible ranges of the three unreported "
            f"values the gain exceeds measurement noise in {share:.0%} of combinations, so the claim is "
            f"{'robust to' if share == 1 else 'sensitive to'} what was not reported. One patient, without a control or repeated "
            "baseline measurements, cannot show that the treatment caused the change."
        )
    consistency, conclusions = tables["consistency"], tables["conclusions"]
    verdicts = claim_verdicts(plan, tables)
    lines = [f"{plan.study.title}: the paper printed "
             + "; ".join(f'"{c.quote}"' for c in plan.reported if c.kind in ("percent_change", "fold"))
             + f" for n = {plan.sample_size}, and no arm means, SDs, correlations or dropout."]
    for spec in plan.claimed_outcomes:
        mine = consistency[consistency["outcome"] == spec.name]
        verdict = verdicts[verdicts["outcome"] == spec.name].iloc[0]
        n_ok, n_all = int(verdict["n_plausible"]), int(verdict["n_readings"])
        p, f = main_scenario(plan, spec.name)
        text = f"{spec.label}: the printed figures fit the assumptions under {n_ok} of {n_all} readings"
        failed = mine[(mine["percent_reading"] == p) & (mine["fold_reading"] == f) & ~mine["passed"]]
        if len(failed):
            text += f"; under the main reading ({p.replace('_', ' ')}, {f.replace('_', ' ')}) they fail: {failed['detail'].iloc[0]}"
        row = conclusions[(conclusions["outcome"] == spec.name) & (conclusions["percent_reading"] == p)
                          & (conclusions["fold_reading"] == f) & (conclusions["measure"] == "d_ppc2")]
        ratio = conclusions[(conclusions["outcome"] == spec.name) & (conclusions["percent_reading"] == p)
                            & (conclusions["fold_reading"] == f) & (conclusions["measure"] == "ratio_of_improvements")]
        if len(row):
            r0 = row.iloc[0]
            text += (f". The implied standardised effect (Morris d_ppc2) is {r0['estimate_central']:.2f} at the central assumptions "
                     f"and ranges from {r0['estimate_min']:.2f} to {r0['estimate_max']:.2f} over the assumption box ({r0['conclusion']})")
        if len(ratio):
            text += f"; for the ratio of improvements the {ratio.iloc[0]['conclusion'].replace('no effect', 'a ratio of 1')}"
        lines.append(text + ".")
    lines.append("What cannot be concluded: the effect sizes and their uncertainty depend on numbers the paper did not print; "
                 "the participant-level replication reproduces the printed figures by construction, so it shows that data "
                 "consistent with them exist, not that the trial found them.")
    return " ".join(lines)


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationOutputs:
    """The outputs of one ``trialkit replicate``, read back for the notebook."""

    out_dir: Path
    plan: PublishedTrial | PublishedCase

    @classmethod
    def load(cls, out_dir: str | Path) -> ReplicationOutputs:
        root = Path(out_dir)
        return cls(out_dir=root, plan=load_published(root / "published_plan.yaml").plan)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.out_dir / name)

    def has(self, name: str) -> bool:
        return (self.out_dir / name).exists()

    def figure(self, stem: str) -> Path:
        return self.out_dir / "figures" / f"{stem}.png"

    def conclusion(self) -> str:
        return (self.out_dir / "conclusion.txt").read_text(encoding="utf-8")

    def conclusion_html(self) -> str:
        import html

        return html.escape(self.conclusion().strip())

    def run_figures(self) -> list[Path]:
        """The participant-level run's trajectory and change figures (PNG)."""
        return sorted((self.out_dir / "run" / "figures").glob("*.png"))

    def heading_html(self) -> str:
        import html

        p, e = self.plan, html.escape
        if isinstance(p, PublishedCase):
            arms = f"Patient: {e(p.patient)}; intervention: {e(p.intervention)}."
        else:
            arms = (f"Treatment: {e(p.arms.treatment.label)} ({e(p.arms.treatment.description)}); control: "
                    f"{e(p.arms.control.label)}. Follow-up: {e(p.followup.label)} (week {p.followup.week:g}).")
        return (f"<h1>Replicating: {e(p.study.title)}</h1><p>{e(p.study.design_text)}. Source: {e(p.study.source)}. {arms}</p>"
                "<p style='background:#fde68a;padding:6px'>Everything below the printed claims rests on ASSUMPTIONS (listed "
                "with their ranges); participant-level data, where shown, are SIMULATED.</p>")


def _save(fig: Any, stem: Path) -> list[Path]:
    from analysis.reporting.figures import save_figure

    return save_figure(fig, stem)


@records_warnings  # its manifest lists the notices of the replication
def replicate(
    plan_path: str | Path,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    render_report: bool = True,
    progress: Callable[[str], None] = lambda _message: None,
) -> Path:
    """Run parts 2-5 for a published-results plan and write everything atomically into ``out_dir``.

    Output tree::

        published_plan.yaml   the plan, copied       claims.csv, assumptions.csv
        implied_arms.csv      arm means/SDs by reading          implied_effects.csv
        consistency.csv, readings.csv                            sensitivity.csv, sd_r_grid.csv
        conclusions.csv, box.csv                                 figures/sensitivity.png|svg
        trial/plan.yaml, participants.csv, measurements.csv     (SIMULATED, calibrated)
        run/                  `trialkit run` on the trial        headline_check.csv
        case.csv, case_sensitivity.csv  (single case)            conclusion.txt
        claim_verdicts.csv    per claimed outcome: readings tried, plausible under k of n, verdict
        replication.html      the rendered notebook              manifest.json

    Parameters
    ----------
    plan_path
        A published-results plan (:func:`analysis.plan.published.load_published`).
    out_dir
        Output directory; replaced as a whole only when every step succeeded.
    seed
        Seed of the participant-level draw; the plan's ``replication.seed`` when omitted.
    render_report
        Render ``replication.html`` (and the run's ``report.html``).

    Raises
    ------
    PlanError
        The plan is malformed (exit code 2).
    """
    from analysis.core.output import staged_directory, write_table, write_text
    from analysis.core.provenance import package_versions, sha256_file

    loaded: LoadedPublished = load_published(plan_path)
    plan = loaded.plan
    out = Path(out_dir)
    tables: dict[str, pd.DataFrame] = {"claims": claims_table(plan), "assumptions": assumptions_table(plan)}
    manifest: dict[str, Any] = {"study": plan.study.id, "plan": {"path": str(loaded.path), "sha256": loaded.sha256},
                                "design": plan.design}
    with staged_directory(out, inputs=[loaded.path], kind="replicate") as staging:
        write_text(staging / "published_plan.yaml", loaded.path.read_text(encoding="utf-8-sig"))
        figures = staging / "figures"
        if isinstance(plan, PublishedCase):
            progress("single case: percent restored against measurement error")
            tables["case"] = case_table(plan)
            tables["case_sensitivity"] = case_sensitivity(plan)
            _save(case_figure(plan), figures / "case_restoration")
        else:
            progress("aggregate route: implied arms and effects")
            tables["implied_arms"] = implied_arms_table(plan)
            tables["implied_effects"] = aggregate_route(plan)
            tables["consistency"] = consistency_table(plan)
            progress("sensitivity over the assumptions")
            tables["sensitivity"] = sensitivity_table(plan)
            grids = {spec.name: sd_r_grid(plan, spec.name) for spec in plan.claimed_outcomes}
            tables["sd_r_grid"] = pd.concat([g for g in grids.values()], ignore_index=True)
            tables["conclusions"], tables["box"] = conclusions_table(plan)
            tables["readings"] = readings_summary(plan, tables["consistency"], tables["box"])
            _save(sensitivity_figure(plan, grids), figures / "sensitivity")
            seed = plan.replication.seed if seed is None else seed
            progress(f"participant-level replication (seed {seed})")
            trial_plan = write_replication_trial(plan, staging / "trial", seed)
            from analysis.pipeline import run

            run(trial_plan, staging / "run", seed=seed, render_report=render_report, command=["trialkit", "replicate", str(plan_path)])
            tables["headline_check"] = headline_check(plan, staging / "run")
            manifest["seed"] = seed
            manifest["trial_plan"] = "trial/plan.yaml"
        tables["claim_verdicts"] = claim_verdicts(plan, tables)
        for name, frame in tables.items():
            write_table(frame, staging / f"{name}.csv")
        write_text(staging / "conclusion.txt", conclusion_text(plan, tables) + "\n")
        if render_report:
            progress("render notebook")
            from analysis.core.resources import notebook_path
            from analysis.reporting.notebook import render_notebook

            template = "replicate_case.ipynb" if isinstance(plan, PublishedCase) else "replicate_trial.ipynb"
            render_notebook(notebook_path(template), {"out_dir": str(staging)}, staging / "replication.html")
        files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != "manifest.json")
        manifest["packages"] = package_versions()
        manifest["files"] = [{"path": str(p.relative_to(staging)), "sha256": sha256_file(p)} for p in files]
        manifest["warnings"] = manifest_notices()  # library warnings in trialkit's words
        write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return out
