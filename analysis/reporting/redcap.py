"""Making a REDCap project from trial tables: :func:`to_redcap` builds the export and data
dictionary (:class:`RedcapProject`) of a longitudinal project holding a trial, :func:`write_redcap`
writes them; the bundled REDCap fixtures are made with it (:mod:`analysis.replicate.fixtures`).
Reading REDCap is :mod:`analysis.sources.redcap`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.plan import Plan
from analysis.sources.redcap import DICTIONARY_COLUMNS, DictionaryField


@dataclass(frozen=True)
class RedcapProject:
    """A REDCap-shaped project: flat export (raw codes), data dictionary, and what a plan needs to
    read it back (event -> visit mapping and participant-field recodes)."""

    export: pd.DataFrame
    dictionary: pd.DataFrame
    events: dict[str, str]
    codes: dict[str, dict[str, str]]


def event_name(visit: str) -> str:
    """REDCap's unique event name for a visit label in a one-arm project: ``week 4`` -> ``week_4_arm_1``."""
    return re.sub(r"[^a-z0-9]+", "_", visit.lower()).strip("_") + "_arm_1"


def _safe_codes(values: list[str]) -> dict[str, str]:
    """Choice code -> value: the values themselves when REDCap accepts them as codes (letters,
    digits, underscores), otherwise 1, 2, ... in sorted order."""
    if all(re.fullmatch(r"[A-Za-z0-9_]+", v) for v in values):
        return {v: v for v in values}
    return {str(i): v for i, v in enumerate(values, start=1)}


def _number(value: float, integer: bool) -> str:
    """A value as REDCap text, exactly (``-0`` keeps its sign so the round trip is bit-identical)."""
    return f"{value:.0f}" if integer else repr(float(value))


def _number_text(values: pd.Series, integer: bool) -> pd.Series:
    text = values.map(lambda v: "" if pd.isna(v) else _number(v, integer))
    return text.astype(object)


def to_redcap(participants: pd.DataFrame, measurements: pd.DataFrame, plan: Plan, *, missing_code: str = "UNK") -> RedcapProject:
    """A longitudinal REDCap project holding a trial: export and data dictionary.

    Forms: ``enrolment`` (participant characteristics and arm, on the baseline event; race as a
    checkbox, other categorical columns as radio buttons), ``outcomes`` (one text field per plan
    outcome, validated as integer when every value is whole, else number, with the outcome's range
    as validation min/max) on every visit's event, ``study_completion`` (disposition, reason) on
    the last visit's event. A measurement recorded empty is written as ``missing_code``; a
    participant recorded as ``Multiple`` race gets the first two race boxes ticked (which ones
    cannot be known from the data; the fixture only needs it to read back as ``Multiple``).

    Parameters
    ----------
    participants, measurements
        Validated tables (:attr:`analysis.pipeline.Trial.participants` / ``.measurements``).
    plan
        The plan the tables were validated against.
    missing_code
        The missing-data code written for empty measurements (declare it in the reading plan).
    """
    visits = plan.visits.labels
    events = {event_name(v): v for v in visits}
    by_visit = {v: e for e, v in events.items()}
    people = participants.sort_values("source_row", kind="stable") if "source_row" in participants else participants
    dictionary: list[dict[str, str]] = []
    fields: dict[str, pd.Series] = {"record_id": people["participant_id"].astype(str)}
    codes: dict[str, dict[str, str]] = {}

    def declare(name, form, ftype, label, choices="", validation="", low="", high="", annotation="", note=""):
        row = dict.fromkeys(DICTIONARY_COLUMNS, "")
        row.update({
            "Variable / Field Name": name, "Form Name": form, "Field Type": ftype, "Field Label": label,
            "Choices, Calculations, OR Slider Labels": choices, "Field Note": note,
            "Text Validation Type OR Show Slider Number": validation, "Text Validation Min": low,
            "Text Validation Max": high, "Field Annotation": annotation,
        })
        dictionary.append(row)

    declare("record_id", "enrolment", "text", "Participant ID", annotation="@NOMISSING")
    enrolment = ["record_id"]
    if "enrolled_on" in people and people["enrolled_on"].notna().any():
        declare("enrolled_on", "enrolment", "text", "Date of randomisation", validation="date_ymd")
        fields["enrolled_on"] = pd.to_datetime(people["enrolled_on"]).dt.strftime("%Y-%m-%d").astype(object)
        enrolment.append("enrolled_on")
    if "age" in people and people["age"].notna().any():
        whole = bool((people["age"].dropna() % 1 == 0).all())
        declare("age", "enrolment", "text", "Age (years)", validation="integer" if whole else "number", low="0", high="120")
        fields["age"] = _number_text(people["age"], whole)
        enrolment.append("age")
    arm_labels = {c: plan.arms.treatment.label for c in plan.arms.treatment.codes}
    arm_labels |= {c: plan.arms.control.label for c in plan.arms.control.codes}
    categorical = [c for c in ("sex", "race", "ethnicity", "site", "arm") if c in people and people[c].notna().any()]
    for name in categorical:
        source = people["arm_code"] if name == "arm" else people[name]
        values = sorted(source.dropna().astype(str).unique())
        if name == "race":
            choices = [v for v in values if v != "Multiple"]
            declare("race", "enrolment", "checkbox", "Race (tick all that apply)", " | ".join(f"{c}, {c}" for c in choices))
            ticked = {c: (source == c) for c in choices}
            for c in choices[:2]:
                ticked[c] = ticked[c] | (source == "Multiple")
            for c in choices:
                column = DictionaryField("race", "", "checkbox", "", {}, "", "", "", "").checkbox_column(c)
                fields[column] = ticked[c].map({True: "1", False: "0"}).astype(object)
                enrolment.append(column)
            continue
        mapping = _safe_codes(values)
        if any(k != v for k, v in mapping.items()):
            codes[name] = mapping
        inverse = {v: k for k, v in mapping.items()}
        labels = {k: (arm_labels.get(v, v) if name == "arm" else v) for k, v in mapping.items()}
        declare(name, "enrolment", "dropdown" if name == "site" else "radio", name.capitalize(),
                " | ".join(f"{k}, {labels[k]}" for k in mapping))
        fields[name] = source.map(inverse).astype(object)
        enrolment.append(name)

    declare_outcomes = []
    for outcome in plan.outcomes:
        values = measurements.loc[measurements["outcome"] == outcome.name, "value"].dropna()
        whole = bool((values % 1 == 0).all())
        declare(outcome.name, "outcomes", "text", outcome.label, validation="integer" if whole else "number",
                low=f"{outcome.range[0]:g}", high=f"{outcome.range[1]:g}", note=outcome.unit)
        declare_outcomes.append((outcome.name, whole))
    completion = [c for c in ("disposition", "disposition_reason") if c in people]
    if "disposition" in completion:
        values = sorted(people["disposition"].dropna().astype(str).unique())
        declare("disposition", "study_completion", "radio", "Status at the end of follow-up",
                " | ".join(f"{v}, {v.replace('_', ' ').capitalize()}" for v in values))
    if "disposition_reason" in completion:
        declare("disposition_reason", "study_completion", "notes", "Reason for withdrawal or loss to follow-up")

    wide = measurements.pivot(index=["participant_id", "visit"], columns="outcome", values="value")
    recorded = set(wide.index)
    rows = []
    for i, pid in enumerate(people["participant_id"].astype(str)):
        for visit in visits:
            row: dict[str, object] = {"record_id": pid, "redcap_event_name": by_visit[visit]}
            if visit == plan.visits.baseline:
                row |= {c: fields[c].iloc[i] for c in enrolment[1:]} | {"enrolment_complete": "2"}
            if (pid, visit) in recorded:
                for name, whole in declare_outcomes:
                    value = wide.at[(pid, visit), name] if name in wide.columns else np.nan
                    row[name] = missing_code if pd.isna(value) else _number(value, whole)
                row["outcomes_complete"] = "2"
            if visit == visits[-1] and completion:
                row |= {c: people[c].iloc[i] for c in completion} | {"study_completion_complete": "2"}
            if len(row) > 2:
                rows.append(row)
    columns = ["record_id", "redcap_event_name", *enrolment[1:], "enrolment_complete",
               *[n for n, _ in declare_outcomes], "outcomes_complete", *completion]
    columns += ["study_completion_complete"] if completion else []
    export = pd.DataFrame(rows).reindex(columns=columns)
    export = export.astype(object).where(export.notna(), "")
    return RedcapProject(export=export, dictionary=pd.DataFrame(dictionary, columns=DICTIONARY_COLUMNS),
                         events=events, codes=codes)


def write_redcap(project: RedcapProject, folder: Path) -> list[Path]:
    """Write ``export.csv`` and ``dictionary.csv`` (atomic, byte-stable) into ``folder``.

    Written as REDCap writes them, cell for cell: unlike trialkit's result tables they are not made
    spreadsheet-safe, because a leading ``'`` would corrupt REDCap content such as ``@NOMISSING``.
    """
    from analysis.core.output import write_bytes

    def csv_bytes(frame: pd.DataFrame) -> bytes:
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")

    return [write_bytes(folder / "export.csv", csv_bytes(project.export)),
            write_bytes(folder / "dictionary.csv", csv_bytes(project.dictionary))]
