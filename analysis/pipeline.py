"""The run: read -> validate -> derive -> analyse -> tables -> figures -> report, with provenance.

Each stage is a plain function; :func:`run` only orchestrates them, writes into a staging directory
and swaps it into place at the end (a failed or interrupted run leaves the previous outputs
intact). Output tree of ``trialkit run PLAN --out DIR``::

    DIR/
      manifest.json                 inputs' SHA-256, plan hash, versions, seed, timings, files
      accounting.csv                rows read, analysed and excluded (with reasons) per stage
      data/analysis_dataset.csv     the analysis dataset (also .parquet)
      tables/descriptives.csv       per outcome x visit x arm: n, missing, mean, SD, median, IQR
      tables/effect_sizes.csv       every applicable effect size per outcome x visit
      tables/between_arms.csv       MD and Hedges' g at every visit (the report's headline table)
      tables/models.csv             ANCOVA (primary), MMRM, MI and tipping point
      tables/responders.csv         responder analyses from the plan's MCIDs
      tables/missing.csv            missing values per outcome x visit x arm
      meta/arm_summaries.csv        per-arm summaries in metafor / RevMan layout
      meta/effect_sizes.csv         yi / vi per outcome x visit for meta-analysis
      adam/adsl.xpt, adbds.xpt      the analysis dataset as CDISC ADaM (XPT v5 and CSV copies)
      figures/*.png, *.svg          trajectories, change distributions, effects by visit, estimation plots
      report.html                   the rendered report notebook
      report_tables.docx            the report's reader-facing tables in Word (same cells as the HTML)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis.checks.contracts import ValidTrial, validate_trial
from analysis.core.notices import notice, records_warnings
from analysis.core.output import (
    check_output_directory,
    staged_directory,
    write_bytes,
    write_table,
    write_text,
)
from analysis.core.provenance import build_manifest, sha256_file
from analysis.derive.adam import check_adam_derivations
from analysis.derive.dataset import build_analysis_dataset
from analysis.derive.disposition import derivation_rule, derive_disposition, disposition_was_derived
from analysis.plan import LoadedPlan, load_plan
from analysis.plan.inputs import plan_inputs
from analysis.sources.files import RawTable
from analysis.sources.trial import read_sources
from analysis.stats.describe import describe


@dataclass(frozen=True)
class Trial:
    """A plan with its data read, validated and derived into the analysis dataset."""

    loaded: LoadedPlan
    participants_raw: RawTable
    measurements_raw: RawTable
    valid: ValidTrial
    dataset: pd.DataFrame

    @property
    def plan(self):
        return self.loaded.plan

    @property
    def participants(self) -> pd.DataFrame:
        return self.valid.participants

    @property
    def measurements(self) -> pd.DataFrame:
        return self.valid.measurements


def load_trial(plan_path: str | Path) -> Trial:
    """Read, validate and derive: everything up to the analysis dataset.

    Parameters
    ----------
    plan_path
        The study plan; its data section says which files to read and how.

    Returns
    -------
    Trial
        The loaded plan, the raw tables as read, the validated tables (``participants``,
        ``measurements``; arms mapped to ``treatment`` / ``control``) and the analysis ``dataset``
        (one row per participant x outcome x visit, :func:`build_analysis_dataset`).

    Raises
    ------
    PlanError
        The plan is malformed (exit code 2).
    DataError
        A file cannot be read or the data break the contracts (exit code 1), with every failure.

    Examples
    --------
    A plan and one wide CSV holding both tables (one row per participant), in a temporary folder;
    ``p3`` withdrew before week 8:

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.yaml").write_text('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data:
    ...   participants: {path: trial.csv}
    ...   measurements:
    ...     path: trial.csv
    ...     layout: wide
    ...     cell_columns: {pain: {baseline: pain0, week4: pain4, week8: pain8}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... ''')
    >>> _ = (folder / "trial.csv").write_text('''participant_id,arm,disposition,pain0,pain4,pain8
    ... p1,D,completed,7,5,3
    ... p2,P,completed,6,6,5
    ... p3,D,withdrawn,8,6,
    ... p4,P,completed,7,6,6
    ... ''')
    >>> trial = load_trial(folder / "plan.yaml")
    >>> trial.plan.visits.primary, len(trial.participants), len(trial.dataset)
    ('week8', 4, 12)
    >>> shown = ["participant_id", "arm", "visit", "value", "baseline", "change", "responder_points"]
    >>> print(trial.dataset.loc[trial.dataset["participant_id"] == "p3", shown].to_string(index=False))
    participant_id       arm    visit  value  baseline  change  responder_points
                p3 treatment baseline    8.0       8.0     NaN              <NA>
                p3 treatment    week4    6.0       8.0    -2.0              True
                p3 treatment    week8    NaN       8.0     NaN              <NA>
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    loaded = load_plan(plan_path)
    participants_raw, participants, measurements_raw, measurements = read_sources(loaded)
    check_adam_derivations(measurements_raw, measurements, loaded.plan)
    valid = validate_trial(participants_raw, participants, measurements_raw, measurements, loaded.plan)
    if "disposition" not in valid.participants.columns:  # the file records none: derive it, and say so
        derived = derive_disposition(valid.participants, valid.measurements, loaded.plan)
        valid = ValidTrial(participants=derived, measurements=valid.measurements)
        notice(f"{participants_raw.path.name}: disposition {derivation_rule(loaded.plan)}")
    dataset = build_analysis_dataset(valid.measurements, valid.participants, loaded.plan)
    return Trial(loaded, participants_raw, measurements_raw, valid, dataset)


def accounting_table(trial: Trial) -> pd.DataFrame:
    """Where every input row went: read, analysed, or excluded with its reason.

    The sums are checked here (a mismatch is a bug and raises): participants read = randomised in
    the dataset; measurement cells read = cells with a value + cells recorded empty; dataset rows =
    cells read + visit rows added for visits with no record (missed visits).
    """
    plan = trial.plan
    dataset = trial.dataset
    cells = trial.measurements
    n_participants = trial.participants_raw.n_rows
    n_cells = len(cells)
    n_values = int(cells["value"].notna().sum())
    n_added = len(dataset) - n_cells
    in_dataset = trial.dataset["participant_id"].nunique()
    expected = n_participants * len(plan.outcomes) * len(plan.visits.labels)
    if in_dataset != n_participants or len(dataset) != expected or n_added < 0:
        raise RuntimeError("accounting does not reconcile: rows were lost between reading and deriving")
    rows = [
        ("participants", str(trial.participants_raw.path.name), "rows read", n_participants, ""),
        ("participants", "analysis dataset", "participants analysed (intention to treat)", in_dataset, ""),
        ("measurements", str(trial.measurements_raw.path.name), "rows read", trial.measurements_raw.n_rows, ""),
        ("measurements", str(trial.measurements_raw.path.name), "cells read (participant x outcome x visit)", n_cells, ""),
        ("measurements", "analysis dataset", "cells with a value", n_values, ""),
        ("measurements", "analysis dataset", "cells recorded empty", n_cells - n_values, "kept as missing values"),
        ("measurements", "analysis dataset", "visits with no record", n_added, "added as missing values (missed visit or dropout)"),
        ("measurements", "analysis dataset", "rows in the analysis dataset", len(dataset), "equals cells read plus visits with no record"),
    ]
    for raw in (trial.participants_raw, trial.measurements_raw):
        rows += [(raw.label, raw.path.name, item, count, reason) for item, count, reason in raw.notes]
    if disposition_was_derived(trial.participants):
        status = trial.participants["disposition"]
        rule = derivation_rule(plan)
        rows += [("participants", "analysis dataset", f"disposition derived: {code}", int((status == code).sum()), rule)
                 for code in ("completed", "lost_to_follow_up")]
    primary = plan.visits.primary
    covariates = trial.participants.set_index("participant_id")[list(plan.covariates)]
    for outcome in plan.outcomes:
        at_visit = dataset[(dataset["outcome"] == outcome.name) & (dataset["visit"] == primary)]
        has_value = at_visit["value"].notna()
        has_baseline = at_visit["baseline"].notna()
        has_covariates = covariates.reindex(at_visit["participant_id"]).notna().all(axis=1).to_numpy()
        no_follow_up = int((~has_value).sum())
        no_baseline = int((has_value & ~has_baseline).sum())
        no_covariate = int((has_value & has_baseline & ~has_covariates).sum())
        analysed = len(at_visit) - no_follow_up - no_baseline - no_covariate
        rows += [
            ("primary visit", outcome.name, f"participants analysed at {primary} (complete cases)", analysed, ""),
            ("primary visit", outcome.name, "excluded: no value at the primary visit", no_follow_up, "missing follow-up"),
            ("primary visit", outcome.name, "excluded: no baseline value", no_baseline, "missing baseline"),
            ("primary visit", outcome.name, "excluded: a covariate is missing", no_covariate, "missing covariate"),
        ]
    return pd.DataFrame(rows, columns=["stage", "source", "item", "count", "reason"])


@dataclass
class RunLog:
    """Timings of each stage (seconds), in order; reported to the user and kept in the manifest."""

    progress: Callable[[str], None] = lambda _message: None
    timings: dict[str, float] = field(default_factory=dict)

    def stage(self, name: str):
        log = self

        class _Stage:
            def __enter__(self):
                log.progress(name)
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                log.timings[name] = round(time.perf_counter() - self.start, 3)
                return False

        return _Stage()


def analysis_tables(trial: Trial, seed: int) -> dict[str, pd.DataFrame]:
    """Every result table of a run, keyed by its path inside the output directory."""
    from analysis.stats.effects import effect_sizes_table
    from analysis.stats.effects.summaries import meta_exports
    from analysis.stats.models.missing import missing_table
    from analysis.stats.models.plan_models import models_table
    from analysis.stats.models.responders import responders_table

    plan = trial.plan
    dataset = trial.dataset
    ci = plan.analysis.ci_level
    effects = effect_sizes_table(dataset, plan, n_boot=plan.analysis.n_boot, seed=seed)
    exports = meta_exports(dataset, plan)
    return {
        "tables/descriptives.csv": describe(dataset, ci_level=ci),
        "tables/effect_sizes.csv": effects,
        "tables/between_arms.csv": between_arm_table(effects),
        "tables/models.csv": models_table(dataset, plan, trial.participants),
        "tables/responders.csv": responders_table(dataset, plan),
        "tables/missing.csv": missing_table(dataset),
        "meta/arm_summaries.csv": exports["arm_summaries"],
        "meta/effect_sizes.csv": exports["effect_sizes"],
    }


def between_arm_table(effects: pd.DataFrame) -> pd.DataFrame:
    """The headline between-arm rows: MD and Hedges' g on the follow-up values at every visit."""
    from analysis.stats.effects import BETWEEN_ARM_HEADLINE

    keep = effects["measure"].isin(BETWEEN_ARM_HEADLINE)
    return effects.loc[keep].reset_index(drop=True)


@records_warnings  # the run's manifest lists the notices of the run (library warnings in trialkit's words)
def run(
    plan_path: str | Path,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    render_report: bool = True,
    progress: Callable[[str], None] = lambda _message: None,
    command: list[str] | None = None,
) -> Path:
    """Run the whole pipeline and write every output atomically into ``out_dir``.

    Parameters
    ----------
    plan_path
        The study plan.
    out_dir
        Output directory; replaced as a whole only when every stage succeeded.
    seed
        Seed for resampling and imputation; the plan's ``seed`` when omitted. Recorded in the
        manifest and in every resampled row.
    render_report
        Render ``report.html`` from the report notebook (needs a Jupyter kernel).
    progress
        Called with each stage's name as it starts.
    command
        The command line recorded in the manifest (default: ``sys.argv``).

    Returns
    -------
    Path
        The output directory.

    Examples
    --------
    A 12-participant trial (one wide CSV holding both tables; ``p07`` withdrew before week 8),
    run into a temporary folder without the HTML report and with few resamples so it is quick:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.yaml").write_text('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data:
    ...   participants: {path: trial.csv}
    ...   measurements:
    ...     path: trial.csv
    ...     layout: wide
    ...     cell_columns: {pain: {baseline: pain0, week4: pain4, week8: pain8}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... analysis: {n_boot: 200, imputations: 5}
    ... ''')
    >>> _ = (folder / "trial.csv").write_text('''participant_id,arm,disposition,pain0,pain4,pain8
    ... p01,D,completed,7,5,3
    ... p02,P,completed,6,6,5
    ... p03,D,completed,8,6,5
    ... p04,P,completed,7,6,6
    ... p05,D,completed,6,4,2
    ... p06,P,completed,8,7,6
    ... p07,D,withdrawn,7,5,
    ... p08,P,completed,5,5,4
    ... p09,D,completed,9,6,6
    ... p10,P,completed,7,7,5
    ... p11,D,completed,6,5,3
    ... p12,P,completed,8,8,7
    ... ''')
    >>> out = run(folder / "plan.yaml", folder / "out", render_report=False, progress=print)
    read, validate and derive
    analyse
    write tables
    draw figures
    >>> sorted(p.name for p in (out / "tables").iterdir())
    ['between_arms.csv', 'descriptives.csv', 'effect_sizes.csv', 'missing.csv', 'models.csv',
     'responders.csv']
    >>> accounting = pd.read_csv(out / "accounting.csv")
    >>> print(accounting[["item", "count"]].to_string(index=False))
                                               item  count
                                          rows read     12
         participants analysed (intention to treat)     12
                                          rows read     12
         cells read (participant x outcome x visit)     36
                                 cells with a value     35
                               cells recorded empty      1
                              visits with no record      0
                       rows in the analysis dataset     36
    participants analysed at week8 (complete cases)     11
            excluded: no value at the primary visit      1
                        excluded: no baseline value      0
                   excluded: a covariate is missing      0

    The primary ANCOVA (``value ~ arm + baseline`` at week 8, complete cases) is the first row of
    ``models.csv``:

    >>> models = pd.read_csv(out / "tables" / "models.csv")
    >>> models.loc[0, "measure"], round(float(models.loc[0, "estimate"]), 2)
    ('adjusted mean difference', -2.07)
    >>> int(models.loc[0, "n_treatment"]), int(models.loc[0, "n_control"])
    (5, 6)
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    started = datetime.now(UTC)
    log = RunLog(progress=progress)
    out = Path(out_dir)
    check_output_directory(out, plan_inputs(load_plan(plan_path)))  # refuse a bad --out before reading any data
    with log.stage("read, validate and derive"):
        trial = load_trial(plan_path)
    plan = trial.plan
    seed = plan.seed if seed is None else seed
    with staged_directory(out, inputs=plan_inputs(trial.loaded), kind="run") as staging:
        written: list[Path] = []
        with log.stage("analyse"):
            tables = analysis_tables(trial, seed)
            tables["accounting.csv"] = accounting_table(trial)
        with log.stage("write tables"):
            written.append(write_table(trial.dataset, staging / "data" / "analysis_dataset.csv"))
            parquet = staging / "data" / "analysis_dataset.parquet"
            written.append(write_bytes(parquet, trial.dataset.to_parquet(index=False)))
            for relative, frame in tables.items():
                written.append(write_table(frame, staging / relative))
            from analysis.reporting.adam import write_adam

            written += write_adam(trial.dataset, trial.participants, plan, staging)
        with log.stage("draw figures"):
            from analysis.reporting.figures import trial_figures

            written += trial_figures(
                tables["tables/descriptives.csv"], trial.dataset, tables["tables/models.csv"], plan, staging / "figures"
            )
            from analysis.reporting.estimation import estimation_figures

            written += estimation_figures(trial.dataset, plan, staging / "figures", seed=seed)
        write_text(staging / "plan.yaml", trial.loaded.path.read_text(encoding="utf-8-sig"))
        written.append(staging / "plan.yaml")
        if render_report:
            with log.stage("render report"):
                from analysis.reporting.report import RunOutputs, report_docx
                from analysis.reporting.report import render_report as render

                # the report's tables for a manuscript or CSR: the same cells as the HTML, in Word
                docx = report_docx(RunOutputs.load(staging))
                written.append(write_bytes(staging / "report_tables.docx", docx))
                written.append(render(staging, staging / "report.html"))
        manifest = build_manifest(trial, seed, started, log.timings, written, staging, command)
        write_text(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return out


# Files verify does not compare: those whose bytes legitimately differ between identical runs
# (timestamps, execution metadata), and the report's Word tables, written with the report, which
# verify's rerun does not render (their bytes are reproducible: tests/reporting/test_report_layout.py).
NOT_COMPARED = {"manifest.json", "report.html", "report_tables.docx"}


@dataclass(frozen=True)
class Verification:
    """Result of re-running a manifest: changed inputs and output files that differ."""

    changed_inputs: list[str]
    differing_files: list[str]
    compared: int

    @property
    def identical(self) -> bool:
        return not self.changed_inputs and not self.differing_files


def verify(manifest_path: str | Path, *, progress: Callable[[str], None] = lambda _message: None) -> Verification:
    """Re-run the plan recorded in a manifest with its seed and compare every output's SHA-256.

    Inputs whose SHA-256 changed since the run are reported (the rerun then cannot match). Every
    file except ``manifest.json`` and ``report.html`` must be byte-identical.

    Parameters
    ----------
    manifest_path
        The ``manifest.json`` a :func:`run` wrote. The rerun goes to a temporary folder; the
        recorded outputs are not touched.
    progress
        Called with each stage's name as it starts (the rerun's stages, then the comparison).

    Returns
    -------
    Verification
        ``changed_inputs`` (plan or data files whose SHA-256 differs from the manifest's),
        ``differing_files`` (outputs whose bytes differ), ``compared`` (outputs compared) and
        ``identical`` (neither list has an entry).

    Raises
    ------
    UsageError
        The file is not a trialkit manifest.

    Examples
    --------
    Run the 12-participant trial of :func:`run`'s example into a temporary folder, verify it, then
    change one value in the data and verify again:

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.yaml").write_text('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data:
    ...   participants: {path: trial.csv}
    ...   measurements:
    ...     path: trial.csv
    ...     layout: wide
    ...     cell_columns: {pain: {baseline: pain0, week4: pain4, week8: pain8}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... analysis: {n_boot: 200, imputations: 5}
    ... ''')
    >>> _ = (folder / "trial.csv").write_text('''participant_id,arm,disposition,pain0,pain4,pain8
    ... p01,D,completed,7,5,3
    ... p02,P,completed,6,6,5
    ... p03,D,completed,8,6,5
    ... p04,P,completed,7,6,6
    ... p05,D,completed,6,4,2
    ... p06,P,completed,8,7,6
    ... p07,D,withdrawn,7,5,
    ... p08,P,completed,5,5,4
    ... p09,D,completed,9,6,6
    ... p10,P,completed,7,7,5
    ... p11,D,completed,6,5,3
    ... p12,P,completed,8,8,7
    ... ''')
    >>> out = run(folder / "plan.yaml", folder / "out", render_report=False)
    >>> check = verify(out / "manifest.json")
    >>> check.identical, check.compared, check.differing_files
    (True, 24, [])
    >>> csv = folder / "trial.csv"
    >>> _ = csv.write_text(csv.read_text().replace("p12,P,completed,8,8,7", "p12,P,completed,8,8,6"))
    >>> check = verify(out / "manifest.json")
    >>> check.identical, sorted({Path(p).name for p in check.changed_inputs})
    (False, ['trial.csv'])
    >>> "tables/models.csv" in check.differing_files, "tables/missing.csv" in check.differing_files
    (True, False)
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    import tempfile

    from analysis.core.errors import UsageError
    from analysis.core.filesystem import check_readable

    path = Path(manifest_path)
    check_readable(path, "the manifest")  # a folder or an unreadable file: exit 2 saying so
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        plan_path = Path(manifest["plan"]["path"])
        recorded = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
        inputs = manifest["inputs"]
        seed = int(manifest["seed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a trialkit manifest ({type(exc).__name__}: {exc})") from None
    changed = [entry["path"] for entry in inputs if not Path(entry["path"]).exists() or sha256_file(Path(entry["path"])) != entry["sha256"]]
    if not plan_path.is_file() or hashlib.sha256(plan_path.read_bytes()).hexdigest() != manifest["plan"]["sha256"]:
        changed.append(str(plan_path))
    with tempfile.TemporaryDirectory(prefix="trialkit-verify-") as temp:
        rerun = run(plan_path, Path(temp) / "rerun", seed=seed, render_report=False, progress=progress)
        progress("compare outputs with the recorded run")
        differing = []
        compared = 0
        for relative, digest in sorted(recorded.items()):
            if Path(relative).name in NOT_COMPARED:
                continue
            compared += 1
            candidate = rerun / relative
            if not candidate.is_file() or sha256_file(candidate) != digest:
                differing.append(relative)
    return Verification(changed_inputs=changed, differing_files=differing, compared=compared)
