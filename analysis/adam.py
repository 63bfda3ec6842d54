"""CDISC ADaM in and out: ADSL + one BDS dataset as a data source, and the analysis dataset as ADaM.

In (:func:`read_adam`): ADSL (one row per subject) gives the participants table and a BDS dataset
(PARAMCD, AVISIT/AVISITN, AVAL, BASE, CHG, PCHG, ABLFL, ANL01FL) gives the measurements, from XPT,
sas7bdat, CSV or Parquet, mapped through the plan's ``data.adam`` section (PARAMCD -> outcome,
AVISIT -> visit, TRT01P -> arm). Where the BDS carries BASE, CHG, PCHG or ABLFL they are checked
against trialkit's own derivations (:mod:`analysis.derive`) and every disagreeing row is reported.

Out (:func:`adam_bds`, :func:`adam_adsl`, :func:`write_adam`): the analysis dataset as an
ADaM-style BDS with upper-case CDISC names and variable labels, in SAS XPT (version 5, via
pyreadstat) and CSV, so a statistician working in SAS or R can pick it up. Values are the trial's
own codes (SEX, RACE, ETHNIC are not recoded to CDISC controlled terminology).

PARAMCD (:func:`paramcd_codes`): the outcome name upper-cased with everything but letters and digits
removed, cut to 8 characters; outcomes whose codes would coincide get the first 7 characters and a
running digit in plan order (``pain_interference``, ``pain_intensity`` -> ``PAININT1``,
``PAININT2``).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.derive import derive_baseline, derive_change, derive_pct_change
from analysis.errors import FAILURE_COLUMNS, DataError, failure
from analysis.io import RawTable, read_file
from analysis.plan import DataFile, LoadedPlan, Plan

LABELS = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "SITEID": "Study Site Identifier",
    "AGE": "Age",
    "AGEU": "Age Units",
    "SEX": "Sex",
    "RACE": "Race",
    "ETHNIC": "Ethnicity",
    "TRT01P": "Planned Treatment for Period 01",
    "TRT01PN": "Planned Treatment for Period 01 (N)",
    "RANDDT": "Date of Randomization",
    "ITTFL": "Intent-To-Treat Population Flag",
    "EOSSTT": "End of Study Status",
    "DCSREAS": "Reason for Discontinuation from Study",
    "DCSREASP": "Reason Spec for Discont from Study",
    "PARAMCD": "Parameter Code",
    "PARAM": "Parameter",
    "AVISIT": "Analysis Visit",
    "AVISITN": "Analysis Visit (N)",
    "AVAL": "Analysis Value",
    "BASE": "Baseline Value",
    "CHG": "Change from Baseline",
    "PCHG": "Percent Change from Baseline",
    "ABLFL": "Baseline Record Flag",
    "ANL01FL": "Analysis Flag 01",
    "CRIT1": "Analysis Criterion 1",
    "CRIT1FL": "Criterion 1 Evaluation Result Flag",
    "CRIT2": "Analysis Criterion 2",
    "CRIT2FL": "Criterion 2 Evaluation Result Flag",
}
ADSL_VARIABLES = {"site": "SITEID", "age": "AGE", "sex": "SEX", "race": "RACE", "ethnicity": "ETHNIC"}
BDS_REQUIRED = ["USUBJID", "PARAMCD", "AVISIT", "AVAL"]
LOST = "LOST TO FOLLOW-UP"
_XPT_STAMP = re.compile(rb"\d{2}[A-Z]{3}\d{2}:\d{2}:\d{2}:\d{2}")


def paramcd_codes(outcomes: list[str]) -> dict[str, str]:
    """Outcome name -> PARAMCD (at most 8 upper-case letters and digits; rule in the module doc).

    Examples
    --------
    >>> paramcd_codes(["pain_interference", "pain_intensity", "trunk_rotation", "nrs"])
    {'pain_interference': 'PAININT1', 'pain_intensity': 'PAININT2', 'trunk_rotation': 'TRUNKROT', 'nrs': 'NRS'}
    """
    base = {name: re.sub(r"[^A-Z0-9]", "", name.upper())[:8] for name in outcomes}
    codes = {}
    for name in outcomes:
        same = [n for n in outcomes if base[n] == base[name]]
        if len(same) == 1:
            codes[name] = base[name]
        else:
            number = str(same.index(name) + 1)
            codes[name] = base[name][: 8 - len(number)] + number
    if len(set(codes.values())) != len(codes):  # a numbered code met another outcome's plain code
        codes = {name: f"P{i:0{len(str(len(outcomes)))}d}" for i, name in enumerate(outcomes, start=1)}
    return codes


# ---------------------------------------------------------------------------------------------
# Out


def _flag(values: pd.Series) -> np.ndarray:
    """Nullable boolean -> 'Y' / 'N' / '' (the ADaM *FL convention for evaluated criteria)."""
    return np.where(values.isna(), "", np.where(values.fillna(False).astype(bool), "Y", "N"))


def adam_adsl(participants: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """ADSL: one row per subject (validated participants table -> CDISC names).

    Columns: STUDYID, USUBJID (the participant id), SITEID, AGE, AGEU, SEX, RACE, ETHNIC (where
    present), TRT01P (the plan's arm label), TRT01PN (1 treatment, 2 control), RANDDT, ITTFL ('Y'
    for every randomised participant), EOSSTT (COMPLETED / DISCONTINUED), DCSREAS (LOST TO
    FOLLOW-UP, or OTHER for a withdrawal, whose reason the data do not code), DCSREASP (the
    recorded reason text).
    """
    people = participants.sort_values("participant_id", kind="stable")
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    adsl = pd.DataFrame({"STUDYID": plan.study.id, "USUBJID": people["participant_id"].astype(str)})
    for column, variable in ADSL_VARIABLES.items():
        if column in people:
            adsl[variable] = people[column].to_numpy()
            if column == "age":
                adsl["AGEU"] = np.where(people["age"].notna(), "YEARS", "")
    adsl["TRT01P"] = people["arm"].map(labels).to_numpy()
    adsl["TRT01PN"] = people["arm"].map({"treatment": 1.0, "control": 2.0}).to_numpy()
    if "enrolled_on" in people:
        adsl["RANDDT"] = [d.date() if pd.notna(d) else None for d in pd.to_datetime(people["enrolled_on"])]
    adsl["ITTFL"] = "Y"
    disposition = people["disposition"].astype(str).to_numpy()
    adsl["EOSSTT"] = np.where(disposition == "completed", "COMPLETED", "DISCONTINUED")
    adsl["DCSREAS"] = np.select([disposition == "lost_to_follow_up", disposition == "withdrawn"], [LOST, "OTHER"], "")
    if "disposition_reason" in people:
        adsl["DCSREASP"] = people["disposition_reason"].to_numpy()
    return _text_blank(adsl.reset_index(drop=True))


def adam_bds(dataset: pd.DataFrame, participants: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The analysis dataset as an ADaM BDS, one row per subject x parameter x analysis visit.

    Columns: STUDYID, USUBJID, TRT01P, TRT01PN, the plan's covariates copied from ADSL (SITEID, AGE,
    SEX, ...), PARAMCD (:func:`paramcd_codes`), PARAM (the outcome's label), AVISIT (the plan's
    visit label), AVISITN (its week), AVAL, BASE, CHG, PCHG (as derived by trialkit: CHG and PCHG
    missing on the baseline record, PCHG missing when BASE is 0), ABLFL ('Y' on the baseline
    record, else ''), ANL01FL ('Y': every record is in the analysis dataset), and CRIT1/CRIT1FL
    (improvement by the MCID in points) and CRIT2/CRIT2FL (in percent) where the plan has MCIDs,
    the flag 'Y', 'N' or '' (not evaluable). Sorted by USUBJID, PARAMCD, AVISITN.

    Examples
    --------
    >>> # trial = analysis.pipeline.load_trial(plan_path)
    >>> # bds = adam_bds(trial.dataset, trial.participants, trial.plan)
    """
    codes = paramcd_codes([o.name for o in plan.outcomes])
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    outcome = dataset["outcome"]
    bds = pd.DataFrame({
        "STUDYID": plan.study.id,
        "USUBJID": dataset["participant_id"].astype(str),
        "TRT01P": dataset["arm"].map(labels),
        "TRT01PN": dataset["arm"].map({"treatment": 1.0, "control": 2.0}),
    })
    people = participants.set_index("participant_id")
    for covariate in plan.covariates:
        variable = ADSL_VARIABLES.get(covariate, re.sub(r"[^A-Z0-9]", "", covariate.upper())[:8])
        if covariate in people:
            bds[variable] = dataset["participant_id"].map(people[covariate]).to_numpy()
    bds["PARAMCD"] = outcome.map(codes)
    bds["PARAM"] = outcome.map({o.name: o.label[:200] for o in plan.outcomes})
    bds["AVISIT"] = dataset["visit"].astype(str)
    bds["AVISITN"] = dataset["visit_week"].astype(float)
    bds["AVAL"] = dataset["value"].astype(float)
    bds["BASE"] = dataset["baseline"].astype(float)
    bds["CHG"] = dataset["change"].astype(float)
    bds["PCHG"] = dataset["pct_change"].astype(float)
    bds["ABLFL"] = np.where(dataset["baseline_flag"], "Y", "")
    bds["ANL01FL"] = "Y"
    for number, (column, kind) in enumerate((("responder_points", "points"), ("responder_percent", "percent")), start=1):
        criteria = {o.name: _criterion(o, kind) for o in plan.outcomes}
        if column in dataset and any(criteria.values()):
            bds[f"CRIT{number}"] = outcome.map(criteria)
            bds[f"CRIT{number}FL"] = _flag(dataset[column])
    bds = bds.sort_values(["USUBJID", "PARAMCD", "AVISITN"], kind="stable").reset_index(drop=True)
    return _text_blank(bds)


def _criterion(outcome, kind: str) -> str:
    if outcome.mcid is None or getattr(outcome.mcid, kind) is None:
        return ""
    threshold = getattr(outcome.mcid, kind)
    unit = "%" if kind == "percent" else f" {outcome.unit}"
    direction = "decrease" if outcome.better == "lower" else "increase"
    return f"{outcome.label[:120]}: {direction} from baseline >= {threshold:g}{unit}"


def _text_blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns with '' for missing (SAS has no missing text) and object dtype for pyreadstat."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]) and column != "RANDDT":
            out[column] = out[column].astype(object).where(out[column].notna(), "").astype(str).astype(object)
    return out


def xpt_bytes(frame: pd.DataFrame, name: str, label: str) -> bytes:
    """A SAS transport (XPT version 5) file of ``frame``, byte-stable for the same frame.

    Names must be <= 8 characters and labels <= 40 (the version 5 limits, checked here). The
    header's creation and modification stamps are set to 01JAN70:00:00:00 (as reproducible builds
    do with ``SOURCE_DATE_EPOCH=0``) so the same data always give the same bytes.
    """
    import pyreadstat

    long_names = [c for c in frame.columns if len(c) > 8]
    long_labels = [c for c in frame.columns if len(LABELS.get(c, "")) > 40]
    if long_names or long_labels or len(name) > 8 or len(label) > 40:
        raise ValueError(f"XPT version 5 allows names <= 8 and labels <= 40 characters: {long_names + long_labels or [name, label]}")
    formats = {"RANDDT": "DATE9."} if "RANDDT" in frame else None
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"{name.lower()}.xpt"
        pyreadstat.write_xport(
            frame, str(target), file_label=label, column_labels={c: LABELS[c] for c in frame.columns if c in LABELS},
            table_name=name, file_format_version=5, variable_format=formats,
        )
        data = target.read_bytes()
    header_end = data.find(b"HEADER RECORD*******OBS")
    header = _XPT_STAMP.sub(b"01JAN70:00:00:00", data[:header_end])
    return header + data[header_end:]


def write_adam(dataset: pd.DataFrame, participants: pd.DataFrame, plan: Plan, out_dir: Path) -> list[Path]:
    """Write ``adam/adsl.xpt``, ``adam/adsl.csv``, ``adam/adbds.xpt`` and ``adam/adbds.csv`` into
    ``out_dir`` (each atomically; same data give the same bytes). Returns the paths written.
    """
    from analysis.output import write_bytes, write_table

    folder = Path(out_dir) / "adam"
    written = []
    for name, frame, label in (
        ("ADSL", adam_adsl(participants, plan), "Subject-Level Analysis Dataset"),
        ("ADBDS", adam_bds(dataset, participants, plan), "Analysis Dataset (BDS)"),
    ):
        written.append(write_bytes(folder / f"{name.lower()}.xpt", xpt_bytes(frame, name, label)))
        text = frame.copy()
        if "RANDDT" in text:
            text["RANDDT"] = [d.isoformat() if d is not None else "" for d in text["RANDDT"]]
        written.append(write_table(text, folder / f"{name.lower()}.csv"))
    return written


# ---------------------------------------------------------------------------------------------
# In


def _blank_to_missing(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column
    return column.astype(object).where(column.notna() & (column.astype(str).str.strip() != ""))


def _iso_date(value: object) -> object:
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return value


def _require(table: RawTable, variables: list[str]) -> None:
    absent = [v for v in variables if v not in table.frame.columns]
    if absent:
        raise DataError(
            f"{table.path}: required ADaM variable(s) {absent} not found; the file has {list(table.frame.columns)}",
            pd.DataFrame([failure(str(table.path), 1, v, "required ADaM variable", "") for v in absent]),
        )


def _participants(adsl: RawTable, variables: dict[str, str], plan: Plan) -> pd.DataFrame:
    frame = adsl.frame
    out = pd.DataFrame(index=frame.index)
    for canonical, variable in variables.items():
        if variable in frame.columns:
            out[canonical] = _blank_to_missing(frame[variable])
    label_code = {plan.arms.treatment.label: plan.arms.treatment.codes[0], plan.arms.control.label: plan.arms.control.codes[0]}
    out["arm"] = out["arm"].map(lambda v: label_code.get(v, v))
    if "enrolled_on" in out:
        out["enrolled_on"] = out["enrolled_on"].map(_iso_date)
    if variables.get("disposition") == "EOSSTT" and "disposition" in out:
        status = out["disposition"].astype(object).str.upper()
        reason = _blank_to_missing(frame["DCSREAS"]).astype(object).str.upper() if "DCSREAS" in frame else pd.Series(np.nan, index=frame.index)
        discontinued = np.where(reason == LOST, "lost_to_follow_up", "withdrawn")
        out["disposition"] = np.select([status == "COMPLETED", status == "DISCONTINUED"], ["completed", discontinued], out["disposition"].astype(object))
        out["disposition"] = out["disposition"].where(status.notna())
        if "disposition_reason" not in out and "DCSREAS" in frame:
            out["disposition_reason"] = _blank_to_missing(frame["DCSREAS"])
    return out


def derived_disagreements(bds: pd.DataFrame, long: pd.DataFrame, plan: Plan, file: str) -> list[dict]:
    """Rows where the file's BASE, CHG, PCHG or ABLFL disagree with trialkit's derivations.

    ``long`` holds the rows used (participant_id, outcome, visit, value, source_row). Our values
    come from :func:`analysis.derive.derive_baseline`, :func:`~analysis.derive.derive_change` and
    :func:`~analysis.derive.derive_pct_change`; numbers agree when both are missing or they differ
    by at most 1e-8 x max(1, |ours|). CHG and PCHG are compared on post-baseline records only (on
    the baseline record ADaM leaves them to the sponsor). Nothing is checked when a participant x
    parameter x visit repeats or an AVAL is not a number (validation reports those).
    """
    if long.duplicated(["participant_id", "outcome", "visit"]).any():
        return []
    frame = long[["participant_id", "outcome", "visit"]].copy()
    frame["value"] = pd.to_numeric(long["value"], errors="coerce")
    if (frame["value"].isna() & long["value"].notna()).any():
        return []  # an AVAL that is not a number: validation names it; comparing would only blame CHG
    ours = derive_pct_change(derive_change(derive_baseline(frame, plan.visits.baseline)))
    rows = long["source_row"].to_numpy()
    source = bds.loc[rows]
    problems = []
    post = ~ours["baseline_flag"].to_numpy()
    for variable, column, where, what in (
        ("BASE", "baseline", np.ones(len(ours), bool), f"AVAL at the plan's baseline visit '{plan.visits.baseline}'"),
        ("CHG", "change", post, "AVAL - BASE"),
        ("PCHG", "pct_change", post, "100 x (AVAL - BASE) / BASE, missing when BASE is 0"),
    ):
        if variable not in source:
            continue
        theirs = pd.to_numeric(source[variable], errors="coerce").to_numpy(dtype=float)
        mine = ours[column].to_numpy(dtype=float)
        both_missing = np.isnan(theirs) & np.isnan(mine)
        close = np.abs(theirs - mine) <= 1e-8 * np.maximum(1.0, np.abs(mine))
        bad = where & ~(both_missing | close)
        for i in np.flatnonzero(bad):
            problems.append(failure(file, int(rows[i]), variable, f"{variable} must equal trialkit's derivation ({what})",
                                    f"{source[variable].iloc[i]} (trialkit: {'' if np.isnan(mine[i]) else f'{mine[i]:.10g}'})"))
    if "ABLFL" in source:
        flagged = source["ABLFL"].astype(object).fillna("").astype(str).str.strip().str.upper().to_numpy() == "Y"
        for i in np.flatnonzero(flagged != ours["baseline_flag"].to_numpy()):
            problems.append(failure(file, int(rows[i]), "ABLFL", f"ABLFL must be 'Y' exactly on the plan's baseline visit '{plan.visits.baseline}'",
                                    source["ABLFL"].iloc[i]))
    return problems


def read_adam(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame, RawTable, pd.DataFrame]:
    """Read the plan's ADSL and BDS files into trialkit's input tables.

    Returns
    -------
    participants_raw, participants, measurements_raw, measurements
        As :func:`analysis.io.read_sources`. Participants: one per ADSL row, canonical columns from
        the ADSL variables (``data.adam.participants`` over the defaults USUBJID, TRT01P, AGE, SEX,
        RACE, ETHNIC, SITEID, RANDDT, EOSSTT, DCSREASP); TRT01P may hold an arm's code or the
        plan's arm label; disposition is COMPLETED -> completed, DISCONTINUED -> lost_to_follow_up
        when DCSREAS is LOST TO FOLLOW-UP, else withdrawn. Measurements: BDS records with
        ANL01FL = 'Y' (when the variable exists) whose PARAMCD and AVISIT the plan maps; the
        others are counted in ``measurements_raw.notes``.

    Raises
    ------
    DataError
        A required variable is absent (USUBJID and the arm variable in ADSL; USUBJID, PARAMCD,
        AVISIT, AVAL in the BDS), or, with ``check_derived`` (the default), BASE / CHG / PCHG /
        ABLFL disagree with trialkit's derivation (one failure per disagreeing record).
    """
    src = loaded.plan.data.adam
    if src is None:
        raise ValueError("the plan's data source is not adam")
    plan = loaded.plan
    base = loaded.path.parent
    adsl = read_file(DataFile(path=src.adsl), base, "participants (ADSL)")
    bds = read_file(DataFile(path=src.bds), base, "measurements (BDS)")
    _require(adsl, ["USUBJID", src.arm])
    _require(bds, BDS_REQUIRED)
    participants = _participants(adsl, src.variables(), plan)

    frame = bds.frame
    paramcd = src.paramcd or {code: name for name, code in paramcd_codes([o.name for o in plan.outcomes]).items()}
    visits = src.visits or {label: label for label in plan.visits.labels}
    notes = []
    keep = pd.Series(True, index=frame.index)
    if "ANL01FL" in frame:
        flagged = frame["ANL01FL"].astype(object).fillna("").astype(str).str.strip() == "Y"
        notes.append(("BDS records without ANL01FL = 'Y'", int((~flagged).sum()), "not analysed (analysis flag)"))
        keep &= flagged
    for variable, mapping, what in (("PARAMCD", paramcd, "parameters"), ("AVISIT", visits, "visits")):
        known = frame[variable].astype(object).isin(list(mapping))
        notes.append((f"BDS records of {what} the plan does not map ({variable})", int((keep & ~known).sum()), "not analysed"))
        keep &= known
    used = frame.loc[keep]
    long = pd.DataFrame({
        "participant_id": used["USUBJID"].astype(str),
        "visit": used["AVISIT"].astype(object).map(visits),
        "outcome": used["PARAMCD"].astype(object).map(paramcd),
        "value": used["AVAL"],
        "source_column": "AVAL",
    })
    long["source_row"] = long.index
    long = long.reset_index(drop=True)
    if src.check_derived:
        problems = derived_disagreements(frame, long, plan, str(bds.path))
        if problems:
            failures = pd.DataFrame(problems, columns=FAILURE_COLUMNS)
            failures["value"] = failures["value"].astype(str)
            failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
            raise DataError(
                f"{len(failures)} BDS record value(s) in {bds.path.name} disagree with trialkit's derivation "
                "(set check_derived: false in data.adam to skip this check)",
                failures,
            )
    notes = tuple(n for n in notes if n[1])
    measurements_raw = RawTable(bds.frame, bds.path, bds.format, "measurements", notes=notes)
    participants_raw = RawTable(adsl.frame, adsl.path, adsl.format, "participants")
    return participants_raw, participants, measurements_raw, long
