"""Drafting a study plan from a REDCap data dictionary (``trialkit plan-from-redcap``): :func:`draft_plan`."""

from __future__ import annotations

import re
from pathlib import Path

from analysis.sources.redcap.dictionary import DataDictionary

_PARTICIPANT_HINTS = {
    "arm": ("arm", "group", "randomi", "allocation", "treatment"),
    "age": ("age",),
    "sex": ("sex", "gender"),
    "race": ("race",),
    "ethnicity": ("ethnic",),
    "site": ("site", "centre", "center"),
    "enrolled_on": ("enrol", "enroll", "rand_date", "randomisation_date", "randomization_date"),
    "disposition": ("disposition", "completion_status", "study_status"),
    "disposition_reason": ("disposition_reason", "withdraw", "discontinu"),
}


def draft_plan(dictionary: DataDictionary, export_path: str, dictionary_path: str, events: list[str] | None = None) -> str:
    """A draft study plan (YAML text) for a REDCap project, for the user to check and edit.

    Participant columns are guessed from field names (``arm``, ``age``, ``sex``, ...); every other
    numeric field (integer/number text, calc, slider) becomes an outcome whose range is the
    dictionary's validation min/max. Events (from the export, in order of first appearance) become
    visits, the first the baseline; a follow-up's week is the number in the event name. Guesses
    are marked ``# CHECK``; values that cannot be guessed are ``TODO`` and must be filled in.
    """
    participants: dict[str, str] = {}
    for canonical, hints in _PARTICIPANT_HINTS.items():
        for field in dictionary.fields.values():
            if field.name not in participants.values() and any(field.name.lower().startswith(h) or h in field.name.lower() for h in hints):
                participants[canonical] = field.name
                break
    record_id = next(iter(dictionary.fields))
    used = set(participants.values()) | {record_id}
    outcomes = [f for f in dictionary.fields.values() if f.name not in used and (f.numeric or f.type in ("calc", "slider"))]
    events = events or []
    lines = [
        "# DRAFT written by `trialkit plan-from-redcap`: check every line marked CHECK, fill in every TODO.",
        "study:",
        f"  id: {re.sub(r'[^A-Za-z0-9_.-]+', '-', Path(export_path).stem) or 'redcap-study'}",
        "  title: TODO",
        "seed: 20240101  # CHECK: any fixed integer; recorded in every run",
        "data:",
        "  redcap:",
        f"    export: {export_path}",
        f"    dictionary: {dictionary_path}",
    ]
    if record_id != "record_id":
        lines.append(f"    record_id: {record_id}")
    visit_names = [re.sub(r"_arm_\d+$", "", e) for e in events]
    if events:
        lines.append("    events:")
        lines += [f"      {e}: {v}" for e, v in zip(events, visit_names, strict=True)]
    else:
        lines.append("    events: {}  # TODO: redcap_event_name -> visit (pass --export to read them)")
    lines.append("    outcomes:")
    lines += [f"      {_outcome_name(f.name)}: {f.name}" for f in outcomes]
    renamed = {c: n for c, n in participants.items() if c != n}
    if renamed:
        lines.append("    participants:  # CHECK: canonical column -> REDCap field")
        lines += [f"      {c}: {n}" for c, n in renamed.items()]
    lines.append("    missing_data_codes: []  # CHECK: the project's missing-data codes, e.g. [UNK, NASK]")
    arm = dictionary.fields.get(participants.get("arm", ""))
    choices = list(arm.choices.items()) if arm is not None else []
    lines.append("arms:  # CHECK which arm is the treatment")
    for role, index in (("treatment", 0), ("control", 1)):
        code, label = choices[index] if len(choices) > index else ("TODO", "TODO")
        lines.append(f"  {role}: {{label: {_yaml_text(label)}, codes: [{_yaml_text(code)}]}}")
    lines.append("visits:")
    if visit_names:
        lines.append(f"  baseline: {visit_names[0]}")
        lines.append("  followup:")
        for name in visit_names[1:]:
            week = re.search(r"\d+(\.\d+)?", name)
            lines.append(f"    - {{label: {name}, week: {week.group(0) if week else 'TODO'}}}")
        lines.append(f"  primary: {visit_names[-1] if len(visit_names) > 1 else 'TODO'}  # CHECK")
    else:
        lines += ["  baseline: TODO", "  followup: []  # TODO", "  primary: TODO"]
    lines.append("outcomes:")
    for i, field in enumerate(outcomes):
        low = field.minimum or ("0" if field.type == "slider" else "TODO")
        high = field.maximum or ("100" if field.type == "slider" else "TODO")
        lines += [
            f"  - name: {_outcome_name(field.name)}",
            f"    label: {_yaml_text(field.label or field.name)}",
            f"    unit: {_yaml_text('TODO')}  # CHECK",
            f"    range: [{low}, {high}]",
            "    better: lower  # CHECK: lower or higher",
        ]
        if i == 0:
            lines.append("    primary: true  # CHECK")
    covariates = [c for c in ("age", "sex", "site") if c in participants]
    lines.append(f"covariates: [{', '.join(covariates)}]  # CHECK: baseline covariates of the primary model")
    return "\n".join(lines) + "\n"


def _yaml_text(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_ ./()-]*", text) and ": " not in text else '"' + text.replace('"', '\\"') + '"'


def _outcome_name(field: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", field.lower())
    return name if name[:1].isalpha() else "o_" + name
