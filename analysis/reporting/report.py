"""What the report notebook shows, as functions a test can reach (the notebook only calls them).

The report reads like the results section of a trial (:data:`SECTIONS`, in order): title block,
contents, CONSORT flow, Table 1, the primary analysis, secondary outcomes, responders, missing
data and sensitivity analyses, effect sizes, descriptive statistics, then an appendix (collapsed)
with the full tidy tables and the run's files. Reader-facing tables are
:class:`analysis.reporting.tables.model.Table` s rendered by great-tables; the tidy CSVs stay the
machine-readable output and appear, as they are, only in the appendix through :func:`html_table`,
which escapes every data-derived string (a participant id like ``<script>`` renders as text) and
rounds only for display.
"""

from __future__ import annotations

import hashlib
import html
import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis.core.resources import notebook_path
from analysis.plan import Plan, parse_plan
from analysis.reporting.table1 import apply_labels, table1_stats
from analysis.reporting.tables.model import Table

COUNT_COLUMNS = {"n", "n_missing", "n_treatment", "n_control", "n_boot", "seed", "count",
                 "events_treatment", "events_control", "n_expected", "n_observed"}
STYLE = (
    "<style>table.trialkit{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
    "table.trialkit th,table.trialkit td{padding:2px 8px;text-align:right;white-space:nowrap}"
    "table.trialkit td:first-child,table.trialkit th:first-child{text-align:left}"
    "table.trialkit td.note{white-space:normal;text-align:left;max-width:28em}"
    "img{max-width:100%;height:auto}"
    ".trialkit-banner{background:#fde68a;padding:6px 10px;font-size:15px}"
    "details.trialkit{margin:0.3em 0}details.trialkit>div{overflow-x:auto}div.trialkit-scroll{max-width:100%}"
    "nav.trialkit-toc ul{columns:2;font-size:14px;list-style:none}</style>"
)
FIGURE_WIDTH = 900

# (anchor, heading) of the report's sections, in the order of a trial's results section
SECTIONS = (
    ("flow", "1. Participant flow (CONSORT)"),
    ("baseline", "2. Baseline characteristics"),
    ("primary", "3. Primary outcome"),
    ("secondary", "4. Secondary outcomes"),
    ("responders", "5. Responder analysis"),
    ("sensitivity", "6. Missing data and sensitivity analyses"),
    ("effects", "7. Effect sizes"),
    ("descriptives", "8. Descriptive statistics by arm and visit"),
    ("appendix", "Appendix: tidy result tables and the run's files"),
)


def html_table(frame: pd.DataFrame, digits: int = 3, max_rows: int = 200) -> str:
    """An escaped HTML table; floats shown with ``digits`` decimals, counts as integers, NaN blank."""
    shown = frame.head(max_rows).copy()
    for column in shown.columns:
        if column in COUNT_COLUMNS and pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{int(v)}")
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    table = shown.to_html(index=False, escape=True, na_rep="", border=0, classes="trialkit")
    if len(frame) > max_rows:
        table += f"<p>({len(frame) - max_rows} more rows in the CSV file)</p>"
    return table


def result_view(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A tidy result table condensed for reading: ``estimate [ci_low, ci_high]`` in one column,
    the contrast and CI level dropped (stated once in the report), columns that are empty in
    every row dropped. Rounding happens here, for display only."""

    def interval(row: pd.Series) -> str:
        if pd.isna(row["estimate"]):
            return ""
        text = f"{row['estimate']:.{digits}f}"
        if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
            text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
        return text

    view = frame.copy()
    view.insert(view.columns.get_loc("estimate"), "estimate [CI]", view.apply(interval, axis=1))
    view = view.drop(columns=["estimate", "ci_low", "ci_high", "ci_level", "contrast"])
    return view.dropna(axis=1, how="all")


def heading(text: str, level: int = 3) -> str:
    """An HTML heading with its (plan- or data-derived) text escaped."""
    return f"<h{level}>{html.escape(text)}</h{level}>"


LISTING_COLUMNS = ["participant_id", "arm", "visit", "value", "baseline", "change", "pct_change"]


def listing_html(dataset: pd.DataFrame, plan: Plan) -> str:
    """The primary outcome's per-participant listing, only when the plan sets
    ``analysis.listings: true``; otherwise a sentence saying identifiers are withheld."""
    if not plan.analysis.listings:
        return (
            "<p>Participant listings are off (<code>analysis.listings: false</code> in the plan): "
            "this report shows no participant identifiers.</p>"
        )
    rows = dataset.loc[dataset["outcome"] == plan.primary_outcome.name, LISTING_COLUMNS]
    return heading(f"Listing: {plan.primary_outcome.label}") + html_table(rows, max_rows=len(rows))


@dataclass(frozen=True)
class RunOutputs:
    """The outputs of one ``trialkit run``, read back for rendering."""

    run_dir: Path
    plan: Plan

    @classmethod
    def load(cls, run_dir: str | Path) -> RunOutputs:
        root = Path(run_dir)
        plan = parse_plan((root / "plan.yaml").read_text(encoding="utf-8"), str(root / "plan.yaml"))
        return cls(run_dir=root, plan=plan)

    def table(self, relative: str) -> pd.DataFrame:
        return pd.read_csv(self.run_dir / relative, dtype={"participant_id": str})

    def heading_html(self) -> str:
        """Study title, design, arms, visits and outcomes; a SIMULATED banner when the data are."""
        return f"{STYLE}<h1>{html.escape(self.plan.study.title)}</h1>{self.banner_html()}{self.summary_html()}"

    def banner_html(self) -> str:
        """The SIMULATED DATA banner when the plan says the data are synthetic, else nothing."""
        if not self.plan.study.simulated:
            return ""
        return ("<p class='trialkit-banner' style='background:#fde68a;padding:6px'><b>SIMULATED DATA</b>: this trial is "
                "synthetic, for demonstration and testing; no real participants.</p>")

    def summary_html(self) -> str:
        """Disposition note, design, arms, visits, primary analysis and the outcomes (primary marked)."""
        plan = self.plan
        e = html.escape
        outcomes = "".join(
            f"<li>{e(o.label)}" + (" (<b>primary</b>)" if o is plan.primary_outcome else "")
            + f": unit {e(o.unit)}; valid {o.range[0]:g} to {o.range[1]:g}; {e(o.better)} is better"
            + (f"; MCID {e(_mcid_text(o))}" if o.mcid else "")
            + "</li>"
            for o in plan.outcomes
        )
        visits = ", ".join(e(v) for v in plan.visits.labels)
        return (
            f"{self.disposition_html()}"
            f"<p>{e(plan.study.design)}. Study id <code>{e(plan.study.id)}</code>.</p>"
            f"<p><b>Arms</b>: treatment = {e(plan.arms.treatment.label)}; control = {e(plan.arms.control.label)}. "
            f"<b>Visits</b>: {visits} (primary: {e(plan.visits.primary)}). "
            f"<b>Primary analysis</b>: {e(plan.analysis.primary_model.upper())}, "
            f"{plan.analysis.ci_level:.0%} confidence intervals; effects are treatment minus control.</p>"
            f"<ul>{outcomes}</ul>"
        )

    def disposition_html(self) -> str:
        """A paragraph saying the disposition was derived from the data (the accounting table's
        ``disposition derived`` rows), or nothing when the participants file recorded it."""
        path = self.run_dir / "accounting.csv"
        if not path.is_file():
            return ""
        accounting = pd.read_csv(path, dtype=str, keep_default_na=False)
        derived = accounting[accounting["item"].str.startswith("disposition derived")]
        if derived.empty:
            return ""
        counts = "; ".join(f"{item.removeprefix('disposition derived: ')} {n}"
                           for item, n in zip(derived["item"], derived["count"], strict=True))
        return (f"<p style='background:#e0f2fe;padding:6px'><b>Disposition not recorded</b>: "
                f"{html.escape(derived['reason'].iloc[0])} ({html.escape(counts)}).</p>")

    def figures(self, prefix: str) -> list[Path]:
        return sorted((self.run_dir / "figures").glob(f"{prefix}_*.png"))

    def rows(self, relative: str, **equals: object) -> pd.DataFrame:
        frame = self.table(relative)
        for column, value in equals.items():
            frame = frame[frame[column] == value]
        return frame

    # ------------------------------------------------------------------------------------------
    # The results-section report

    def outcome_figures(self, prefix: str, which: str = "all") -> list[Path]:
        """``figures/<prefix>_<outcome>.png`` that exist, the primary outcome first, then plan order;
        ``which`` is ``all``, ``primary`` or ``secondary`` (every outcome but the primary)."""
        from analysis.reporting.tables.builders import ordered_outcomes

        outcomes = ordered_outcomes(self.plan)
        chosen = {"all": outcomes, "primary": outcomes[:1], "secondary": outcomes[1:]}[which]
        paths = [self.run_dir / "figures" / f"{prefix}_{o.name}.png" for o in chosen]
        return [p for p in paths if p.is_file()]

    def exists(self, relative: str) -> bool:
        return (self.run_dir / relative).is_file()

    def title_block_html(self, run_date: str | None = None) -> str:
        """Study title, plan hash, date, SIMULATED banner, and the table of contents."""
        e = html.escape
        plan_hash = hashlib.sha256((self.run_dir / "plan.yaml").read_bytes()).hexdigest()
        when = run_date or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        toc = "".join(f"<li><a href='#{anchor}'>{e(title)}</a></li>" for anchor, title in SECTIONS)
        return (
            f"{STYLE}<h1 id='top'>{e(self.plan.study.title)}</h1>{self.banner_html()}"
            f"<p>Plan SHA-256 <code>{plan_hash}</code>; report rendered {e(when)}.</p>"
            f"{self.summary_html()}<nav class='trialkit-toc'><h2>Contents</h2><ul>{toc}</ul></nav>"
        )

    def decimals(self) -> dict[str, int]:
        """Decimals of each outcome's means and estimates (plan ``outcomes[].decimals`` or the data's)."""
        from analysis.reporting.tables.builders import outcome_decimals

        dataset = self.table("data/analysis_dataset.csv") if self.exists("data/analysis_dataset.csv") else None
        return outcome_decimals(self.plan, dataset)

    def arm_sizes(self) -> dict[str, int]:
        from analysis.reporting.tables.builders import arm_sizes

        return arm_sizes(self.table("tables/missing.csv"))

    def participants(self) -> pd.DataFrame:
        """The participants table rebuilt from the run's ADaM ADSL (and BDS covariates)."""
        return participants_from_adam(self.run_dir, self.plan)

    def reader_tables(self) -> dict[str, Table]:
        """Every reader-facing table of the report, keyed by its place (``table1``, ``primary``, ...)."""
        from analysis.reporting.tables import builders, results

        plan, decimals, sizes = self.plan, self.decimals(), self.arm_sizes()
        models = self.table("tables/models.csv")
        tables: dict[str, Table] = {}
        people = self.participants() if self.exists("adam/adsl.csv") else None
        if people is not None:
            variables = table1_variables(plan, people)
            if variables:
                shown = apply_labels(people, variables, table1_labels(plan, variables))
                table1 = builders.baseline_table(table1_stats(shown, variables), plan, variables)
                absent = [v.label for v in (plan.reporting.table1 if plan.reporting is not None else []) if v not in variables]
                if absent:  # the run's ADaM files carry only ADSL variables and the plan's covariates
                    table1 = replace(table1, footnotes=(*table1.footnotes, "Not in the run's ADaM files, so not shown: "
                                                        + ", ".join(absent) + " (see the grant report's Table 1)."))
                tables["table1"] = table1
            tables["consort"] = builders.consort_table(self.consort_flow(people).counts, plan)
        tables["primary"] = results.primary_table(models, plan, decimals, sizes)
        if len(plan.outcomes) > 1:
            tables["secondary"] = results.secondary_table(models, plan, decimals, sizes)
        tables["responders"] = results.responder_table(self.table("tables/responders.csv"), plan)
        tables["sensitivity"] = results.sensitivity_table(models, plan, decimals)
        tables["missing"] = builders.missing_table(self.table("tables/missing.csv"), plan)
        tables["between_arms"] = results.effect_size_table(
            self.table("tables/between_arms.csv"), plan, decimals,
            "Table 6. Between-arm effect at every visit (observed values)", "table-6")
        tables["effect_sizes"] = results.effect_size_table(
            self.table("tables/effect_sizes.csv"), plan, decimals, "Table 7. All effect sizes", "table-7")
        descriptives = self.table("tables/descriptives.csv")
        for outcome in builders.ordered_outcomes(plan):
            tables[f"descriptives_{outcome.name}"] = builders.descriptives_table(
                descriptives, plan, outcome, decimals[outcome.name], sizes)
        return tables

    def consort_flow(self, people: pd.DataFrame | None = None):
        from analysis.reporting.consort import consort_flow

        people = self.participants() if people is None else people
        return consort_flow(people, self.table("data/analysis_dataset.csv"), self.plan)

    def accounting_html(self) -> str:
        """The accounting of every input row (``accounting.csv``), collapsed; empty when absent."""
        if not self.exists("accounting.csv"):
            return ""
        return ("<details class='trialkit'><summary>Validation and accounting: every input row is either analysed "
                f"or listed with the reason it was excluded</summary><div>{html_table(self.table('accounting.csv'))}"
                "</div></details>")

    def appendix_html(self) -> str:
        """The tidy CSVs as they are (collapsed), then the run's files with their SHA-256 and the
        manifest when it exists (it is written after the report)."""
        parts = []
        for relative in APPENDIX_TABLES:
            if self.exists(relative):
                frame = self.table(relative)
                # The machine-readable tables keep all their columns, so they are wider than a page:
                # each scrolls sideways inside its own labelled region (the page itself never does).
                label = html.escape(f"{relative}, all columns: scroll sideways")
                parts.append(f"<details class='trialkit'><summary><code>{html.escape(relative)}</code> "
                             f"({len(frame)} rows)</summary><div class='trialkit-scroll' role='region' tabindex='0' "
                             f"aria-label='{label}'>{html_table(frame)}</div></details>")
        files = sorted(p for p in self.run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.name not in ("report.html", "manifest.json"))
        rows = "".join(f"<tr><td style='text-align:left'><code>{html.escape(p.relative_to(self.run_dir).as_posix())}</code></td>"
                       f"<td>{p.stat().st_size}</td><td><code>{hashlib.sha256(p.read_bytes()).hexdigest()}</code></td></tr>"
                       for p in files)
        parts.append("<details class='trialkit'><summary>Files of this run (SHA-256)</summary><div>"
                     "<table class='trialkit'><tr><th>file</th><th>bytes</th><th>SHA-256</th></tr>"
                     f"{rows}</table><p><code>manifest.json</code> (inputs, versions, seed, timings) is "
                     "written after this report; <code>trialkit verify</code> reruns it.</p></div></details>")
        if self.exists("manifest.json"):
            text = (self.run_dir / "manifest.json").read_text(encoding="utf-8")
            parts.append(f"<details class='trialkit'><summary>manifest.json</summary><pre>{html.escape(text)}</pre></details>")
        return "".join(parts)


APPENDIX_TABLES = ("tables/models.csv", "tables/responders.csv", "tables/between_arms.csv", "tables/effect_sizes.csv",
                   "tables/descriptives.csv", "tables/missing.csv", "accounting.csv")


def section_html(anchor: str) -> str:
    """The heading of the section ``anchor`` (:data:`SECTIONS`), with its id for the contents."""
    title = dict(SECTIONS)[anchor]
    return f"<h2 id='{anchor}'>{html.escape(title)}</h2>"


def table_html(table: Table) -> str:
    """A reader-facing table as HTML (great-tables)."""
    from analysis.reporting.tables.html import render_html

    return render_html(table)


def image_html(png: bytes | Path, alt: str, width_px: int = FIGURE_WIDTH) -> str:
    """An embedded PNG at ``width_px`` (never wider than the page), with alternative text."""
    import base64

    data = png.read_bytes() if isinstance(png, Path) else png
    return (f"<img src='data:image/png;base64,{base64.b64encode(data).decode('ascii')}' width='{width_px}' "
            f"style='max-width:100%;height:auto' alt='{html.escape(alt, quote=True)}'>")


def figures_html(paths: list[Path]) -> str:
    """The figures at :data:`FIGURE_WIDTH`, their file names as alternative text."""
    return "".join(image_html(path, f"figure {path.stem}") for path in paths)


def figure_png(figure, width_px: int = FIGURE_WIDTH) -> bytes:
    """A matplotlib figure as PNG bytes at least ``width_px`` wide (no timestamp in the file)."""
    import matplotlib.pyplot as plt

    dpi = max(100.0, width_px / figure.get_figwidth())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def table1_variables(plan: Plan, people: pd.DataFrame) -> list:
    """The plan's ``reporting.table1`` rows, or age, sex, race, ethnicity and site when present."""
    from analysis.plan import Table1Variable

    if plan.reporting is not None and plan.reporting.table1:
        return [v for v in plan.reporting.table1 if v.name in people.columns]
    defaults = [("age", "Age (years)", "continuous"), ("sex", "Sex", "categorical"), ("race", "Race", "categorical"),
                ("ethnicity", "Ethnicity", "categorical"), ("site", "Site", "categorical")]
    return [Table1Variable(name=n, label=label, kind=kind) for n, label, kind in defaults
            if n in people.columns and people[n].notna().any()]


def table1_labels(plan: Plan, variables: list) -> dict[str, dict[str, str]]:
    """Code -> label of each categorical Table 1 variable: the plan's ``reporting.labels``, else the
    NIH mapping's names for sex, race and ethnicity (the run's ADaM files keep the data's codes)."""
    from analysis.reporting.tables.builders import category_labels

    own = dict(getattr(plan.reporting, "labels", None) or {}) if plan.reporting is not None else {}
    return {v.name: own.get(v.name) or category_labels(plan, v) for v in variables
            if v.kind == "categorical" and (own.get(v.name) or category_labels(plan, v))}


def participants_from_adam(run_dir: Path, plan: Plan) -> pd.DataFrame:
    """The run's participants (id, arm, age, sex, race, ethnicity, site, disposition and the plan's
    covariates) read back from ``adam/adsl.csv`` and ``adam/adbds.csv``, which the run writes from
    the validated participants table (:mod:`analysis.reporting.adam`)."""
    import re

    from analysis.sources.adam import ADSL_VARIABLES, LOST

    adsl = pd.read_csv(Path(run_dir) / "adam" / "adsl.csv", dtype=str, keep_default_na=False)
    people = pd.DataFrame({"participant_id": adsl["USUBJID"],
                           "arm": adsl["TRT01PN"].map({"1.0": "treatment", "1": "treatment", "2.0": "control", "2": "control"})})
    for column, variable in ADSL_VARIABLES.items():
        if variable in adsl:
            values = adsl[variable].replace("", pd.NA)
            people[column] = pd.to_numeric(values) if column == "age" else values
    status, reason = adsl.get("EOSSTT", pd.Series("", index=adsl.index)), adsl.get("DCSREAS", pd.Series("", index=adsl.index))
    people["disposition"] = [("completed" if s == "COMPLETED" else "lost_to_follow_up" if r == LOST else "withdrawn")
                             for s, r in zip(status, reason, strict=True)]
    people["disposition_reason"] = adsl.get("DCSREASP", pd.Series("", index=adsl.index)).to_numpy()
    missing = [c for c in plan.covariates if c not in people.columns]
    bds_path = Path(run_dir) / "adam" / "adbds.csv"
    if missing and bds_path.is_file():
        bds = pd.read_csv(bds_path, dtype={"USUBJID": str}).drop_duplicates("USUBJID").set_index("USUBJID")
        for covariate in missing:
            variable = re.sub(r"[^A-Z0-9]", "", covariate.upper())[:8]
            if variable in bds:
                people[covariate] = people["participant_id"].map(bds[variable]).to_numpy()
    return people


def report_docx(out: RunOutputs) -> bytes:
    """Every reader-facing table of the report in one Word document (same cells as the HTML)."""
    from analysis.reporting.tables.docx import render_docx

    return render_docx(list(out.reader_tables().values()), title=out.plan.study.title)


def _mcid_text(outcome) -> str:
    parts = []
    if outcome.mcid.points is not None:
        parts.append(f"{outcome.mcid.points:g} {outcome.unit}")
    if outcome.mcid.percent is not None:
        parts.append(f"{outcome.mcid.percent:g}% improvement")
    return " or ".join(parts)


def render_report(run_dir: Path, out_html: Path) -> Path:
    """Execute ``notebooks/report.ipynb`` on a run directory and write HTML with code hidden."""
    from analysis.reporting.notebook import render_notebook

    return render_notebook(notebook_path("report.ipynb"), {"run_dir": str(run_dir)}, out_html)
