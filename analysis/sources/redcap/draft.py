"""Drafting a study plan from a REDCap data dictionary (``trialkit plan-from-redcap``): :func:`draft_plan`,
and finding the project's missing-data codes in its export (:func:`detect_missing_codes`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis.plan import DataFile
from analysis.sources.files import read_file
from analysis.sources.redcap.dictionary import DataDictionary, DictionaryField

# REDCap's suggested missing-data codes (Project Setup > Additional customizations; HL7 null flavors).
REDCAP_MISSING_CODES = ("NI", "INV", "UNK", "NASK", "ASKU", "NAV", "MSK", "NA", "NAVU", "NP", "QS", "QI", "TRC",
                        "UNC", "DER", "PINF", "NINF", "OTH")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
_SENTINEL = re.compile(r"-?(9+|8+|7+)([.,]0*)?")

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


@dataclass(frozen=True)
class MissingCode:
    """A value of the export read as a missing-data code: how many cells hold it, in which fields, and why."""

    code: str
    cells: int
    fields: tuple[str, ...]
    reason: str


def _scanned(field: DictionaryField) -> bool:
    return field.numeric or field.type in ("calc", "slider")


def _outside(field: DictionaryField, text: str) -> bool:
    """A sentinel-shaped number (-9, 99, -999, -888 ...) that no valid value of the field can be."""
    if not _SENTINEL.fullmatch(text):
        return False
    value = float(text.replace(",", "."))
    low, high = field.minimum, field.maximum
    if field.type == "slider":
        low, high = low or "0", high or "100"
    if not (low or high):  # unbounded: only a negative code of 3+ digits (-999, -888) is taken
        return value < 0 and len(text.lstrip("-").split(".")[0].split(",")[0]) >= 3
    try:
        return (bool(low) and value < float(low.replace(",", "."))) or (bool(high) and value > float(high.replace(",", ".")))
    except ValueError:  # a bound that is no number (the dictionary check reports it)
        return False


def detect_missing_codes(dictionary: DataDictionary, export: pd.DataFrame) -> tuple[list[MissingCode], list[tuple[str, str]]]:
    """The missing-data codes an export uses, found in its numeric fields (REDCap keeps the list in
    the project settings, not in the data dictionary).

    A cell of a numeric field (integer or number validation, calc, slider) that is no number is a
    code when it is one of REDCap's suggested codes (:data:`REDCAP_MISSING_CODES`, e.g. ``UNK``,
    ``NASK``, ``ASKU``, ``NA``) or recurs (two cells or more); a number shaped like a sentinel
    (``-9``, ``99``, ``-999``, ``-888``) is a code when it lies outside the field's validation
    min/max (in a field without bounds: a negative one of three digits or more). A checkbox column
    for a value that is no choice of its field (``race___unk``) names a code too, as REDCap adds one
    per missing-data code. Fields tagged ``@NOMISSING`` are skipped: a code there is an error.

    Returns
    -------
    codes, once
        The codes, most frequent first, and the other non-numbers seen only once as ``(value,
        field)`` (typing errors more likely than codes: validation will report them).

    Examples
    --------
    >>> from analysis.sources.redcap.dictionary import DictionaryField
    >>> pain = DictionaryField("pain", "visit", "text", "Pain", {}, "integer", "0", "10", "")
    >>> d = DataDictionary(Path("dictionary.csv"), {"pain": pain})
    >>> codes, once = detect_missing_codes(d, pd.DataFrame({"pain": ["3", "UNK", "-99", "n/a", "", "7"]}))
    >>> [(c.code, c.cells) for c in codes], once
    ([('-99', 1), ('UNK', 1)], [('n/a', 'pain')])
    """
    found: dict[str, dict[str, int]] = {}
    reasons: dict[str, str] = {}
    texts: dict[str, dict[str, int]] = {}
    for field in dictionary.fields.values():
        if not _scanned(field) or field.no_missing_codes or field.name not in export.columns:
            continue
        cells = export[field.name].dropna().astype(str).str.strip()
        for text, count in cells[cells != ""].value_counts(sort=False).items():
            if _NUMBER.fullmatch(text):
                if _outside(field, text):
                    found.setdefault(text, {})[field.name] = int(count)
                    reasons[text] = "a sentinel number outside the fields' valid range"
            else:
                texts.setdefault(text, {})[field.name] = int(count)
    once = []
    for text, fields in texts.items():
        if text in REDCAP_MISSING_CODES or sum(fields.values()) >= 2:
            found[text] = fields
            reasons[text] = "one of REDCap's missing-data codes" if text in REDCAP_MISSING_CODES else "recurs in numeric fields"
        else:
            once += [(text, name) for name in fields]
    choices = {f.checkbox_column(c) for f in dictionary.fields.values() if f.type == "checkbox" for c in f.choices}
    for field in (f for f in dictionary.fields.values() if f.type == "checkbox" and not f.no_missing_codes):
        for column in export.columns:
            if column.startswith(f"{field.name}___") and column not in choices:
                suffix = column[len(field.name) + 3:]
                code = next((c for c in found if c.lower() == suffix), suffix.upper())
                ticked = int((export[column].astype(str).str.strip() == "1").sum())
                found.setdefault(code, {})[column] = ticked
                reasons.setdefault(code, "a checkbox column for it")
    codes = [MissingCode(code, sum(f.values()), tuple(f), reasons[code]) for code, f in found.items()]
    return sorted(codes, key=lambda c: (-c.cells, c.code)), sorted(once)


def _yaml_scalar(text: str) -> str:
    """``text`` as a YAML flow scalar that loads back as the same string (``-999``, ``NO``, ``null`` are quoted)."""
    try:
        plain = yaml.safe_load(text) == text and not re.search(r"[,\[\]{}#:]", text)
    except yaml.YAMLError:
        plain = False
    return text if plain else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _missing_codes_lines(codes: Sequence[MissingCode], once: Sequence[tuple[str, str]], scanned: bool) -> list[str]:
    if not scanned:
        return ["    missing_data_codes: []  # CHECK: the project's missing-data codes, e.g. [UNK, NASK] (pass --export to find them)"]
    lines = ["    # CHECK: missing-data codes found in the export's numeric fields (REDCap keeps the list in the",
             "    # project settings, not in the dictionary); a listed code is read as a missing value, never a number."]
    for code in codes:
        shown = ", ".join(code.fields[:5]) + (", ..." if len(code.fields) > 5 else "")
        lines.append(f"    #   {code.code}: {code.cells} cell(s) in {shown} ({code.reason})")
    if not codes:
        lines.append("    #   none found")
    for text, field in once[:10]:
        lines.append(f"    #   not listed, seen once: {text!r} in {field} (a typing error? validation will report it)")
    lines.append(f"    missing_data_codes: [{', '.join(_yaml_scalar(c.code) for c in codes)}]")
    return lines


def draft_plan(dictionary: DataDictionary, export_path: str, dictionary_path: str, events: list[str] | None = None,
               *, export_file: str | Path | None = None) -> str:
    """A draft study plan (YAML text) for a REDCap project, for the user to check and edit.

    Participant columns are guessed from field names (``arm``, ``age``, ``sex``, ...); every other
    numeric field (integer/number text, calc, slider) becomes an outcome whose range is the
    dictionary's validation min/max. Events (from the export, in order of first appearance) become
    visits, the first the baseline; a follow-up's week is the number in the event name. Guesses
    are marked ``# CHECK``; values that cannot be guessed are ``TODO`` and must be filled in.

    Whether a lower or a higher value of an outcome is better cannot be read from a dictionary, so
    every outcome gets ``better: unknown``: the plan loads only once each is set to ``lower`` or
    ``higher`` (exit code 2 naming the outcome until then).

    Parameters
    ----------
    dictionary
        The parsed data dictionary (:func:`analysis.sources.redcap.read_dictionary`).
    export_path, dictionary_path
        The paths written into the plan (relative to the folder the plan will be in).
    events
        ``redcap_event_name`` values in order; default: read from ``export_file``.
    export_file
        The export to read (a path the caller can open, unlike ``export_path``): its events become
        visits when ``events`` is not given, and its missing-data codes
        (:func:`detect_missing_codes`) are listed under ``missing_data_codes``. Without it the
        list is empty and marked CHECK.
    """
    codes: list[MissingCode] = []
    once: list[tuple[str, str]] = []
    if export_file is not None:
        export = read_file(DataFile(path=str(export_file), format="csv"), Path.cwd(), "REDCap export").frame
        if events is None and "redcap_event_name" in export:
            events = list(pd.unique(export["redcap_event_name"].dropna()))
        codes, once = detect_missing_codes(dictionary, export)
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
    lines += _missing_codes_lines(codes, once, export_file is not None)
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
            "    better: unknown  # CHECK: lower or higher; trialkit will not run until it is set",
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
