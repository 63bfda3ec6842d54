"""CDISC ADaM in: ADSL + one BDS dataset as a data source.

:func:`read_adam` reads ADSL (one row per subject) as the participants table and a BDS dataset
(PARAMCD, AVISIT/AVISITN, AVAL, BASE, CHG, PCHG, ABLFL, ANL01FL) as the measurements, from XPT,
sas7bdat, CSV or Parquet, mapped through the plan's ``data.adam`` section (PARAMCD -> outcome,
AVISIT -> visit, TRT01P -> arm). The BDS's own BASE, CHG, PCHG and ABLFL are checked against
trialkit's derivations by :mod:`analysis.derive.adam`; the analysis dataset is written back as
ADaM by :mod:`analysis.reporting.adam`.

PARAMCD (:func:`paramcd_codes`): the outcome name upper-cased with everything but letters and digits
removed, cut to 8 characters; outcomes whose codes would coincide get the first 7 characters and a
running digit in plan order (``pain_interference``, ``pain_intensity`` -> ``PAININT1``,
``PAININT2``).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, failure
from analysis.plan import DataFile, LoadedPlan, Plan
from analysis.sources.files import RawTable, read_file

ADSL_VARIABLES = {"site": "SITEID", "age": "AGE", "sex": "SEX", "race": "RACE", "ethnicity": "ETHNIC"}
BDS_REQUIRED = ["USUBJID", "PARAMCD", "AVISIT", "AVAL"]
LOST = "LOST TO FOLLOW-UP"


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

def read_adam(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame, RawTable, pd.DataFrame]:
    """Read the plan's ADSL and BDS files into trialkit's input tables.

    Returns
    -------
    participants_raw, participants, measurements_raw, measurements
        As :func:`analysis.sources.trial.read_sources`. Participants: one per ADSL row, canonical columns from
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
        AVISIT, AVAL in the BDS). BASE / CHG / PCHG / ABLFL are checked against trialkit's
        derivation afterwards, by :func:`analysis.derive.adam.check_adam_derivations`.
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
    notes = tuple(n for n in notes if n[1])
    measurements_raw = RawTable(bds.frame, bds.path, bds.format, "measurements", notes=notes)
    participants_raw = RawTable(adsl.frame, adsl.path, adsl.format, "participants")
    return participants_raw, participants, measurements_raw, long
