"""Writing a replication: the plain-language conclusion, the outputs read back for the notebooks
(:class:`ReplicationOutputs`) and :func:`replicate`, which runs parts 2-5 of :mod:`analysis.replicate`
and writes every table, figure, the rendered notebook and ``manifest.json``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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


VERDICT_COLUMNS = ["claim", "printed", "outcome", "readings", "n_readings", "n_plausible", "share_of_box_plausible",
                   "plausible_under", "verdict"]


def _words(name: str) -> str:
    """A snake_case name as words: ``change_of_means`` -> ``change of means``."""
    return str(name).replace("_", " ")


def _reading(percent: str, fold: str) -> str:
    return f"{_words(percent)} + {_words(fold)}"


def _share(share: float) -> str:
    """A share as a percent that never rounds a few cases away (0.2% is "< 1%", not "0%")."""
    if 0 < share < 0.01:
        return "< 1%"
    if 0.99 < share < 1:
        return "> 99%"
    return f"{share:.0%}"


def plausible_under(n_ok: int, n_all: int, share_of_box: float | None = None) -> str:
    """``k of n readings`` at the central assumptions, and the share of readings x assumption-box
    points under which the figures fit, when that box was explored.

    Examples
    --------
    >>> plausible_under(0, 6, 0.0)
    '0 of 6 readings at the central assumptions; 0% of readings across the assumption box'
    >>> plausible_under(314, 343)
    '314 of 343 readings'
    """
    text = f"{n_ok} of {n_all} readings"
    if share_of_box is not None and share_of_box == share_of_box:  # not NaN
        text += f" at the central assumptions; {_share(share_of_box)} of readings across the assumption box"
    return text


def claimed_in_order(plan: PublishedTrial) -> list:
    """The claimed outcomes, primary first, then in the plan's order."""
    claimed = list(plan.claimed_outcomes)
    return sorted(claimed, key=lambda spec: not getattr(spec, "primary", False))


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
    under it when the gain exceeds the minimal detectable change. For a trial,
    ``share_of_box_plausible`` is the share of (reading, point of the low/central/high assumption
    box) pairs in which every check passes (``box``, from :func:`conclusions_table`);
    ``plausible_under`` says both in words (:func:`plausible_under`). Trial outcomes come primary
    first. The conclusion text, the notebook's claims table and the terminal summary of
    ``trialkit replicate`` all say these same verdicts.
    """
    rows = []
    if isinstance(plan, PublishedCase):
        sens = tables["case_sensitivity"]
        claims = [c for c in plan.reported if c.kind == "percent_restored"] or list(plan.reported)
        n_ok, n_all = int(sens["exceeds_mdc"].sum()), len(sens)
        rows.append({"claim": ", ".join(c.id for c in claims), "printed": "; ".join(c.quote for c in claims),
                     "outcome": plan.restored.outcome,
                     "readings": "normative value x pre-treatment value x minimal detectable change (assumption grid)",
                     "n_readings": n_all, "n_plausible": n_ok, "share_of_box_plausible": float("nan"),
                     "plausible_under": plausible_under(n_ok, n_all),
                     "verdict": _verdict(n_ok, n_all, "the gain exceeds measurement noise")})
        return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    consistency, box = tables["consistency"], tables.get("box")
    for spec in claimed_in_order(plan):
        claims = [c for c in plan.reported if c.kind in ("percent_change", "fold")
                  and (c.outcome == spec.name or spec.name in (c.outcomes or []))]
        ok = consistency[consistency["outcome"] == spec.name].groupby(["percent_reading", "fold_reading"], sort=False)["passed"].all()
        n_ok, n_all = int(ok.sum()), len(ok)
        # every reading at every point of the low/central/high assumption box (conclusions_table's factorial)
        mine = box[box["outcome"] == spec.name] if box is not None else pd.DataFrame()
        share = float(mine["consistent"].astype(bool).mean()) if len(mine) else float("nan")
        rows.append({"claim": ", ".join(c.id for c in claims), "printed": "; ".join(c.quote for c in claims),
                     "outcome": spec.name, "readings": "; ".join(_reading(p, f) for p, f in ok.index),
                     "n_readings": n_all, "n_plausible": n_ok, "share_of_box_plausible": share,
                     "plausible_under": plausible_under(n_ok, n_all, share),
                     "verdict": _verdict(n_ok, n_all, f"the printed figures fit the {spec.label} range and assumptions")})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def construction_text(check: pd.DataFrame) -> str:
    """What the calibrated SIMULATED trial shows, from its headline check: the same sentence in the
    terminal and in the report."""
    ok = int(check["within_tolerance"].astype(bool).sum())
    return (f"the SIMULATED calibrated trial reproduces the printed figures by construction ({ok} of {len(check)} "
            "within tolerance): this shows data consistent with them can be made, not that they are plausible")


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
    for spec in claimed_in_order(plan):
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


STYLE = (
    "<style>table.tk-rep{border-collapse:collapse;font-size:13px;margin:.4em 0 1em;max-width:100%}"
    "table.tk-rep th,table.tk-rep td{padding:3px 8px;text-align:right;vertical-align:top;border:0;"
    "border-bottom:1px solid #e5e7eb;white-space:nowrap}"
    "table.tk-rep th{background:#f3f4f6;text-align:right}"
    "table.tk-rep .t{text-align:left;white-space:normal;min-width:8em}table.tk-rep .r{text-align:left;white-space:nowrap}"
    "table.tk-rep td.no{background:#fee2e2}table.tk-rep td.mixed{background:#fef3c7}table.tk-rep td.yes{background:#dcfce7}"
    "details.tk-rep{margin:.5em 0;padding:.3em .7em;border:1px solid #d1d5db;border-radius:4px}"
    "details.tk-rep>summary{cursor:pointer;font-weight:600}"
    "img.tk-rep{width:960px;max-width:100%;height:auto}</style>"
)


def _cell(value: object, digits: int | None = 2) -> str:
    """A value as a reader wants it: integers without decimals, other numbers to ``digits`` (as
    few as needed when None), true/false as yes/no, missing as blank."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{value:g}" if digits is None else f"{value:,.{digits}f}"
    return str(value)


def html_table(frame: pd.DataFrame, text: tuple[str, ...] = (), digits: int | None = 2,
               classes: dict[str, pd.Series] | None = None, nowrap: tuple[str, ...] = ()) -> str:
    """An escaped HTML table with the frame's (readable) column names as headers; ``text`` columns
    are left-aligned and wrap, ``nowrap`` ones left-aligned on one line; ``classes`` gives a CSS
    class per row for some columns."""
    e = html.escape

    def kind(c: str) -> list[str]:
        return ["t"] if c in text else ["r"] if c in nowrap else []

    head = "".join(f"<th class='{kind(c)[0]}'>{e(c)}</th>" if kind(c) else f"<th>{e(c)}</th>" for c in frame.columns)
    body = []
    for i in range(len(frame)):
        cells = []
        for c in frame.columns:
            names = kind(c)
            if classes and c in classes:
                names.append(str(classes[c].iloc[i]))
            attr = f" class='{' '.join(names)}'" if names else ""
            cells.append(f"<td{attr}>{e(_cell(frame[c].iloc[i], digits))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='tk-rep'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _details(summary: str, body: str, *, escaped_summary: bool = False) -> str:
    title = summary if escaped_summary else html.escape(summary)
    return f"<details class='tk-rep'><summary>{title}</summary>{body}</details>"


def _image(path: Path, alt: str) -> str:
    """A PNG embedded in the HTML (so it can sit inside a collapsed section), shown 960 CSS px wide."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<p><img class='tk-rep' src='data:image/png;base64,{data}' alt='{html.escape(alt, quote=True)}'></p>"


CASE_ASSUMPTIONS = {"normative": "normative value", "pre": "pre-treatment value", "mdc": "minimal detectable change"}


def _verdict_class(verdict: str) -> str:
    return "no" if verdict.startswith("implausible") else "yes" if verdict.startswith("plausible") else "mixed"


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
        return html.escape(self.conclusion().strip())

    def run_figures(self, prefixes: tuple[str, ...] = ("estimation", "effect_by_visit", "trajectory", "change")) -> list[Path]:
        """The participant-level run's figures (PNG): by kind, and within a kind primary outcome first."""
        folder = self.out_dir / "run" / "figures"
        names = [spec.name for spec in claimed_in_order(self.plan)] if isinstance(self.plan, PublishedTrial) else []
        names += [o.name for o in self.plan.outcomes if o.name not in names]
        return [path for prefix in prefixes for name in names if (path := folder / f"{prefix}_{name}.png").is_file()]

    def heading_html(self) -> str:
        p, e = self.plan, html.escape
        if isinstance(p, PublishedCase):
            arms = f"Patient: {e(p.patient)}; intervention: {e(p.intervention)}."
        else:
            arms = (f"Treatment: {e(p.arms.treatment.label)} ({e(p.arms.treatment.description)}); control: "
                    f"{e(p.arms.control.label)}. Follow-up: {e(p.followup.label)} (week {p.followup.week:g}).")
        return (f"{STYLE}<h1>Replicating: {e(p.study.title)}</h1><p>{e(p.study.design_text)}. Source: {e(p.study.source)}. {arms}</p>"
                "<p style='background:#fde68a;padding:6px'>Everything below the printed claims rests on ASSUMPTIONS (listed "
                "with their ranges); participant-level data, where shown, are SIMULATED.</p>")

    def _label(self, outcome: str) -> str:
        try:
            return self.plan.outcome(outcome).label
        except (KeyError, ValueError, StopIteration):
            return outcome

    def claims_html(self) -> str:
        """The claims table: each claim as printed, the readings tried, under how many the figures
        are plausible, and the verdict (``claim_verdicts.csv``, as ``trialkit replicate`` prints it)."""
        v = self.table("claim_verdicts.csv")
        shown = pd.DataFrame({
            "Claim as printed": v["printed"],
            "Outcome": [self._label(o) for o in v["outcome"]],
            "Readings tried": v["readings"],
            "Plausible under": v["plausible_under"],
            "Verdict": v["verdict"],
        })
        table = html_table(shown, text=tuple(shown.columns), classes={"Verdict": v["verdict"].map(_verdict_class)})
        # one reading per line: the terminal prints them joined by "; "
        return _readings_on_lines(table, v["readings"])

    def summary_html(self) -> str:
        """The conclusion paragraph and, for a trial, what the calibrated SIMULATED trial shows."""
        parts = [f"<p>{self.conclusion_html()}</p>"]
        if self.has("headline_check.csv"):
            text = construction_text(self.table("headline_check.csv"))
            parts.append(f"<p><b>Participant-level replication</b>: {html.escape(text[0].upper() + text[1:])}.</p>")
        return "".join(parts)

    def claim_details_html(self) -> str:
        """Per claim, collapsed: the checks under each reading, the implied arms, what the implied
        effects conclude over the assumption box, and the calibrated trial's check."""
        verdicts = self.table("claim_verdicts.csv")
        if isinstance(self.plan, PublishedCase):
            return self._case_details(verdicts.iloc[0])
        sections = []
        for row in verdicts.itertuples(index=False):
            body = (self._checks_html(row.outcome) + self._arms_html(row.outcome) + self._conclusions_html(row.outcome)
                    + self._headline_html(str(row.claim).split(", ")))
            summary = f'"{row.printed}" ({self._label(row.outcome)}): {row.verdict}'
            sections.append(_details(summary, body))
        return "".join(sections)

    def _checks_html(self, outcome: str) -> str:
        c = self.table("consistency.csv")
        c = c[c["outcome"] == outcome]
        shown = pd.DataFrame({"Reading (percent + fold)": [_reading(p, f) for p, f in zip(c["percent_reading"], c["fold_reading"], strict=True)],
                              "Check": c["check"].map(_words), "Passed": c["passed"].astype(bool), "Detail": c["detail"]})
        classes = {"Passed": c["passed"].map(lambda ok: "yes" if ok else "no")}
        return ("<h4>The consistency checks under each reading (central assumptions)</h4>"
                + html_table(shown, text=("Check", "Detail"), nowrap=("Reading (percent + fold)",), classes=classes))

    def _arms_html(self, outcome: str) -> str:
        a = self.table("implied_arms.csv")
        a = a[a["outcome"] == outcome]

        def mean_sd(mean: str, sd: str) -> list[str]:
            return [f"{m:.2f} ({s:.2f})" for m, s in zip(a[mean], a[sd], strict=True)]

        shown = pd.DataFrame({
            "Reading (percent + fold)": [_reading(p, f) for p, f in zip(a["percent_reading"], a["fold_reading"], strict=True)],
            "Arm": a["arm"], "n": a["n_analysed"].astype(int),
            "Baseline mean (SD)": mean_sd("mean_baseline", "sd_baseline"),
            "Follow-up mean (SD)": mean_sd("mean_followup", "sd_followup"),
            "Change mean (SD)": mean_sd("mean_change", "sd_change"),
            "Pre-post r": a["pre_post_r"], "% change of means": a["pct_change_of_means"],
            "Mean % change": a["mean_pct_change"]})
        return "<h4>Implied arm summaries (central assumptions)</h4>" + html_table(shown, text=("Reading (percent + fold)", "Arm"))

    def _conclusions_html(self, outcome: str) -> str:
        c = self.table("conclusions.csv")
        c = c[c["outcome"] == outcome]
        shown = pd.DataFrame({
            "Reading (percent + fold)": [_reading(p, f) for p, f in zip(c["percent_reading"], c["fold_reading"], strict=True)],
            "Measure": c["measure"].map(_words), "At the central assumptions": c["estimate_central"],
            "Range over the box": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(c["estimate_min"], c["estimate_max"], strict=True)],
            "CI limits over the box": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(c["ci_low_min"], c["ci_high_max"], strict=True)],
            "Conclusion": c["conclusion"]})
        points = ", ".join(f"{n:,}" for n in dict.fromkeys(c["n_points"].astype(int)))
        return (f"<h4>Implied effects over the assumption box ({points} points; treatment minus control, or treatment / control)</h4>"
                + html_table(shown, text=("Measure", "Conclusion"), nowrap=("Reading (percent + fold)",)))

    def _headline_html(self, claim_ids: list[str]) -> str:
        if not self.has("headline_check.csv"):
            return ""
        h = self.table("headline_check.csv")
        h = h[h["claim"].isin(claim_ids)]
        quantity = h["quantity"].str.replace("pct_change_of_means", "% change of means").str.replace("mean_pct_change", "mean % change")
        for spec in self.plan.outcomes:
            quantity = quantity.str.replace(spec.name, spec.label, regex=False)
        shown = pd.DataFrame({"Claim as printed": h["quote"], "Quantity": quantity.map(_words), "Printed": h["target"],
                              "Reproduced": h["achieved"], "Tolerance": h["tolerance"],
                              "Within tolerance": h["within_tolerance"].astype(bool)})
        return ("<h4>The calibrated SIMULATED trial (reproduces the printed figures by construction)</h4>"
                + html_table(shown, text=("Claim as printed", "Quantity")))

    def _case_details(self, verdict: pd.Series) -> str:
        from analysis.replicate.single_case import case_sensitivity_summary

        case = self.table("case.csv")
        spec = self.plan.outcome(self.plan.restored.outcome)
        c, unit = case.iloc[0], spec.unit
        shown = pd.DataFrame({"Quantity": [
            f"Normative value (assumed, {unit})", f"Pre-treatment value (assumed, {unit})", "Percent of lost range restored (printed)",
            f"Lost range ({unit})", f"Gain ({unit})", f"Post-treatment value ({unit})", f"Minimal detectable change (assumed, {unit})",
            "Smallest detectable percent restored", "Band (percent restored)", "Gain exceeds the minimal detectable change"],
            "Value": [f"{c['normative']:g}", f"{c['pre']:g}", f"{c['percent_restored']:g}%", f"{c['lost']:.2f}", f"{c['change']:.2f}",
                      f"{c['post']:.2f}", f"{c['mdc']:g}", f"{c['threshold_percent']:.1f}%",
                      f"{c['band_low']:.0f}% to {c['band_high']:.0f}%", "yes" if bool(c["exceeds_mdc"]) else "no"]})
        summary = case_sensitivity_summary(self.table("case_sensitivity.csv"))
        grid = pd.DataFrame({f"Assumed MDC ({spec.unit})": summary["mdc"], "Combinations": summary["combinations"].astype(int),
                             "Share where the gain exceeds the MDC": summary["share_exceeding_mdc"].map(_share),
                             "Smallest detectable % restored": [f"{lo:.0f} to {hi:.0f}" for lo, hi in
                                                                zip(summary["threshold_percent_min"], summary["threshold_percent_max"], strict=True)],
                             f"Implied gain ({spec.unit})": [f"{lo:.1f} to {hi:.1f}" for lo, hi in
                                                             zip(summary["implied_change_min"], summary["implied_change_max"], strict=True)]})
        body = ("<h4>What the claim implies at the central assumptions</h4><p>Percent of lost range restored = "
                "(post - pre) / (normative - pre) x 100; the band is the claim plus or minus the smallest detectable percent.</p>"
                + html_table(shown, text=("Quantity",)) + "<h4>Over the grid of assumptions</h4>" + html_table(grid)
                + _image(self.figure("case_restoration"), "smallest detectable percent restored against the lost range"))
        return _details(f'"{verdict["printed"]}" ({spec.label}): {verdict["verdict"]}', body)

    def assumptions_html(self) -> str:
        """The assumptions (every number the paper did not print) and the printed claims' sources, collapsed."""
        a = self.table("assumptions.csv")
        names = a["assumption"].replace(CASE_ASSUMPTIONS).map(_words).str.replace(".", ": ", regex=False)
        shown = pd.DataFrame({"Assumption": names,
                              "Central": a["value"], "Low": a["low"], "High": a["high"], "Why": a["why"],
                              "Source": a["source"] if "source" in a else ""})
        c = self.table("claims.csv")
        claims = pd.DataFrame({"Claim as printed": c["quote"], "Where": c["where"], "Kind": c["kind"].map(_words)})
        return (_details("The assumptions: every number the paper did not print, with its range and why",
                         html_table(shown, text=("Assumption", "Why", "Source"), digits=None))
                + _details("The claims as printed, with where each was reported", html_table(claims, text=tuple(claims.columns))))

    def sensitivity_html(self) -> str:
        """Sensitivity figure (trial) and the participant-level replication's figures and tables, collapsed."""
        if isinstance(self.plan, PublishedCase):
            return ""
        parts = [_details("Sensitivity to the assumptions (figure)",
                          "<p>Left: Morris d<sub>ppc2</sub> with its 95% CI for low, central and high pre-post correlation, and "
                          "Hedges' g, against the assumed baseline SD. Right: the ratio of improvements with its Fieller 95% CI "
                          "against the assumed correlation, for low, central and high SD.</p>"
                          + _image(self.figure("sensitivity"), "sensitivity of the implied effects to the assumptions"))]
        if self.has("run/tables/between_arms.csv"):
            b = self.table("run/tables/between_arms.csv")
            b = b[b["visit"] == self.plan.followup.label]
            shown = pd.DataFrame({"Outcome": [self._label(o) for o in b["outcome"]], "Measure": b["measure"],
                                  "Estimate": b["estimate"], "95% CI": [f"{lo:.2f} to {hi:.2f}" for lo, hi in
                                                                         zip(b["ci_low"], b["ci_high"], strict=True)],
                                  "n treatment": b["n_treatment"].astype(int), "n control": b["n_control"].astype(int)})
            figures = "".join(_image(path, path.stem.replace("_", " ")) for path in self.run_figures())
            parts.append(_details("Participant-level replication (SIMULATED data, calibrated to the printed figures)",
                                  "<p>A synthetic trial drawn with the recorded seed and calibrated by construction to the "
                                  "printed figures, then analysed by the full <code>trialkit run</code> pipeline (its own "
                                  "report: <code>run/report.html</code>).</p>"
                                  + html_table(shown, text=("Outcome", "Measure")) + figures))
        return "".join(parts)


def _readings_on_lines(table: str, readings: pd.Series) -> str:
    """Put each reading of the "Readings tried" cells on its own line (the terminal joins them with "; ")."""
    for text in dict.fromkeys(readings.astype(str)):
        escaped = html.escape(text)
        table = table.replace(f"<td class='t'>{escaped}</td>", "<td class='t'>" + "<br>".join(
            html.escape(part) for part in text.split("; ")) + "</td>")
    return table


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
