"""The analysis dataset out as CDISC ADaM: ADSL + an ADaM-style BDS.

:func:`adam_bds`, :func:`adam_adsl` and :func:`write_adam` write the analysis dataset with
upper-case CDISC names and variable labels, in SAS XPT (version 5, via pyreadstat) and CSV, so a
statistician working in SAS or R can pick it up. Values are the trial's own codes (SEX, RACE,
ETHNIC are not recoded to CDISC controlled terminology).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.plan import Plan
from analysis.reporting.xpt import write_xpt_stream, xpt_chunks
from analysis.sources.adam import ADSL_VARIABLES, LOST, paramcd_codes

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
    visit label), AVISITN (its time in the plan's ``visits.time_unit``: weeks, days or months),
    AVAL, BASE, CHG, PCHG (as derived by trialkit: CHG and PCHG missing on the baseline record, PCHG missing when BASE is 0), ABLFL ('Y' on the baseline
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
    bds["AVISITN"] = dataset[plan.visits.time_column].astype(float)  # the time in the plan's unit
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
    """Text columns with '' for missing (SAS has no missing text), as pandas' Arrow-backed ``str``
    (a Python object per cell would take gigabytes at a million participants x 12 visits)."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]) and column != "RANDDT":
            series = out[column]
            if not pd.api.types.is_string_dtype(series) or series.dtype == object:
                series = series.astype(object).where(series.notna(), "").astype(str)
            out[column] = series.astype("str").fillna("")
    return out


def _check_xpt_names(frame: pd.DataFrame, name: str, label: str) -> None:
    long_names = [c for c in frame.columns if len(c) > 8]
    long_labels = [c for c in frame.columns if len(LABELS.get(c, "")) > 40]
    if long_names or long_labels or len(name) > 8 or len(label) > 40:
        raise ValueError(f"XPT version 5 allows names <= 8 and labels <= 40 characters: {long_names + long_labels or [name, label]}")


def xpt_bytes(frame: pd.DataFrame, name: str, label: str) -> bytes:
    """A SAS transport (XPT version 5) file of ``frame``, byte-stable for the same frame.

    Names must be <= 8 characters and labels <= 40 (the version 5 limits, checked here). The
    header's creation and modification stamps are set to 01JAN70:00:00:00 (as reproducible builds
    do with ``SOURCE_DATE_EPOCH=0``) so the same data always give the same bytes. The bytes are
    pyreadstat's (:mod:`analysis.reporting.xpt` encodes the rows in NumPy).
    """
    _check_xpt_names(frame, name, label)
    buffer = io.BytesIO()
    write_xpt_stream(frame, buffer, name, label, LABELS, date_columns=("RANDDT",))
    return buffer.getvalue()


def write_adam(dataset: pd.DataFrame, participants: pd.DataFrame, plan: Plan, out_dir: Path) -> list[Path]:
    """Write ``adam/adsl.xpt``, ``adam/adsl.csv``, ``adam/adbds.xpt`` and ``adam/adbds.csv`` into
    ``out_dir`` (each atomically; same data give the same bytes). Returns the paths written.
    """
    return write_adam_files(dataset, participants, plan, Path(out_dir) / "adam")


def write_adam_files(dataset: pd.DataFrame, participants: pd.DataFrame, plan: Plan, folder: Path) -> list[Path]:
    """Write ``adsl.xpt``, ``adsl.csv``, ``adbds.xpt`` and ``adbds.csv`` into ``folder`` itself."""
    from analysis.core.output import write_bytes, write_table

    folder = Path(folder)
    written = []
    for name, frame, label in (
        ("ADSL", adam_adsl(participants, plan), "Subject-Level Analysis Dataset"),
        ("ADBDS", adam_bds(dataset, participants, plan), "Analysis Dataset (BDS)"),
    ):
        _check_xpt_names(frame, name, label)
        # streamed: no copy of the file in memory
        chunks = xpt_chunks(frame, name, label, LABELS, date_columns=("RANDDT",))
        written.append(write_bytes(folder / f"{name.lower()}.xpt", chunks))
        text = frame.copy()
        if "RANDDT" in text:
            text["RANDDT"] = [d.isoformat() if d is not None else "" for d in text["RANDDT"]]
        written.append(write_table(text, folder / f"{name.lower()}.csv"))
    return written


# ---------------------------------------------------------------------------------------------
# In
