"""REDCap as a data source: a flat CSV export read together with its data dictionary.

The contract is described for data managers in ``data/schemas/redcap.md``. In short:

* the export is REDCap's flat CSV (raw codes, not labels): one row per record x event (x repeat
  instance), with ``record_id``, ``redcap_event_name`` (longitudinal projects),
  ``redcap_repeat_instrument`` / ``redcap_repeat_instance`` (repeating instruments), checkbox
  choices as ``field___code`` columns holding 0/1, and ``<form>_complete`` (0, 1, 2);
* the data dictionary is REDCap's 18-column CSV. Its field types, choices and text-validation
  min/max become pandera checks (:func:`dictionary_schema`), so a value outside the declared range
  or choices is a failure naming the field;
* the plan's ``data.redcap`` section maps events (or repeat instances) to visits, fields to
  outcomes and to participant columns, and declares the project's missing-data codes. A declared
  code is read as a missing value and counted, never as a number; a field whose annotation carries
  REDCap's ``@NOMISSING`` action tag may not hold one.

:func:`read_redcap` returns the same four tables as :func:`analysis.sources.trial.read_sources` does for
native files, so validation and derivation are shared. :func:`to_redcap` builds a REDCap-shaped
project (export + dictionary) from validated trial tables; the bundled fixtures are made with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.core.errors import FAILURE_COLUMNS, DataError, failure
from analysis.plan import PARTICIPANT_FIELDS, DataFile, LoadedPlan, Plan, RedcapSource
from analysis.sources.files import RawTable, read_file

DICTIONARY_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
SYSTEM_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)
_INTEGER = r"[+-]?\d+"
_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
_NUMBER_COMMA = r"[+-]?\d+(,\d*)?"
_DATE = r"\d{4}-\d{2}-\d{2}"
_PATTERNS = {
    "integer": (_INTEGER, "an integer"),
    "number": (_NUMBER, "a number"),
    "date": (_DATE, "a date written YYYY-MM-DD"),
    "datetime": (_DATE + r" \d{2}:\d{2}", "a date-time written YYYY-MM-DD HH:MM"),
    "datetime_seconds": (_DATE + r" \d{2}:\d{2}:\d{2}", "a date-time written YYYY-MM-DD HH:MM:SS"),
    "time": (r"\d{2}:\d{2}", "a time written HH:MM"),
}


# ---------------------------------------------------------------------------------------------
# The data dictionary


@dataclass(frozen=True)
class DictionaryField:
    """One row of a REDCap data dictionary (the columns trialkit uses)."""

    name: str
    form: str
    type: str
    label: str
    choices: dict[str, str]
    validation: str
    minimum: str
    maximum: str
    annotation: str

    @property
    def kind(self) -> str:
        """How the stored text is checked: integer, number, date, datetime, ..., choice, or text."""
        if self.type in ("radio", "dropdown", "checkbox"):
            return "choice"
        if self.type in ("yesno", "truefalse"):
            return "binary"
        if self.type in ("calc", "slider"):
            return "number"
        if self.type != "text" or not self.validation:
            return "text"
        if self.validation == "integer":
            return "integer"
        if self.validation.startswith("number"):
            return "number_comma" if "comma" in self.validation else "number"
        for prefix in ("datetime_seconds", "datetime", "date", "time"):
            if self.validation.startswith(prefix):
                return prefix
        return "text"

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number", "number_comma")

    @property
    def no_missing_codes(self) -> bool:
        """REDCap's ``@NOMISSING`` action tag: the field may not hold a missing-data code."""
        return "@NOMISSING" in self.annotation.upper()

    def checkbox_column(self, code: str) -> str:
        """The export column of one checkbox choice (REDCap lower-cases the code, ``-`` -> ``_``)."""
        return f"{self.name}___{re.sub(r'[^a-z0-9_]', '_', code.lower())}"


@dataclass(frozen=True)
class DataDictionary:
    """A parsed REDCap data dictionary, fields in dictionary order."""

    path: Path
    fields: dict[str, DictionaryField]

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields.values()))

    def checkbox_columns(self, missing_codes: list[str]) -> dict[str, tuple[str, str]]:
        """Export column -> (field, code) for every checkbox choice and declared missing-data code."""
        columns = {}
        for field in self.fields.values():
            if field.type == "checkbox":
                for code in [*field.choices, *missing_codes]:
                    columns[field.checkbox_column(code)] = (field.name, code)
        return columns


def parse_choices(text: str) -> dict[str, str]:
    """REDCap choices ``"1, Label | 2, Other label"`` -> ``{"1": "Label", "2": "Other label"}``.

    Examples
    --------
    >>> parse_choices("F, Female | M, Male")
    {'F': 'Female', 'M': 'Male'}
    """
    choices = {}
    for item in str(text).split("|"):
        code, _, label = item.partition(",")
        if code.strip():
            choices[code.strip()] = label.strip()
    return choices


def read_dictionary(path: Path) -> DataDictionary:
    """Read a REDCap data dictionary CSV (the 18 standard columns, recognised by position).

    Raises
    ------
    DataError
        The file is unreadable, is not a data dictionary, or a field name repeats.
    """
    table = read_file(DataFile(path=str(path), format="csv"), path.parent, "REDCap data dictionary")
    frame = table.frame
    if len(frame.columns) < 10 or frame.columns[0].lower() not in ("variable / field name", "field_name"):
        raise DataError(
            f"{path}: not a REDCap data dictionary (its first column must be 'Variable / Field Name' "
            f"and it has {len(frame.columns)} of the 18 standard columns)",
            pd.DataFrame([failure(str(path), 1, str(frame.columns[0]), "REDCap data dictionary header", "")]),
        )
    frame = frame.iloc[:, : len(DICTIONARY_COLUMNS)].fillna("")
    fields: dict[str, DictionaryField] = {}
    problems = []
    for row, values in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [str(v).strip() for v in values] + [""] * (len(DICTIONARY_COLUMNS) - len(values))
        name, form, _section, ftype, label, choices, _note, validation, low, high = cells[:10]
        if name in fields:
            problems.append(failure(str(path), row, DICTIONARY_COLUMNS[0], "field names must be unique", name))
            continue
        if ftype == "descriptive":  # display text only; never in an export
            continue
        fields[name] = DictionaryField(
            name=name,
            form=form,
            type=ftype,
            label=label,
            choices=parse_choices(choices) if ftype in ("radio", "dropdown", "checkbox") else {},
            validation=validation,
            minimum=low,
            maximum=high,
            annotation=cells[17],
        )
    if problems:
        raise DataError(f"{path}: {len(problems)} repeated field name(s)", pd.DataFrame(problems))
    return DataDictionary(path=path, fields=fields)


def _bound_checks(field: DictionaryField) -> list[pa.Check]:
    low, high = field.minimum, field.maximum
    if field.type == "slider":  # REDCap sliders run 0-100 unless the dictionary says otherwise
        low, high = low or "0", high or "100"
    if not (low or high):
        return []
    where = f"{low or '-inf'} to {high or 'inf'} (dictionary validation min/max)"
    if field.kind in ("date", "datetime", "datetime_seconds", "time"):
        # ISO text sorts in time order, so the bounds compare as text.
        return [pa.Check(lambda s, lo=low, hi=high: ((s >= lo) if lo else True) & ((s <= hi) if hi else True),
                         error=f"must be within {where}")]
    lo = float(low.replace(",", ".")) if low else -np.inf
    hi = float(high.replace(",", ".")) if high else np.inf

    def within(s: pd.Series) -> pd.Series:
        values = pd.to_numeric(s.str.replace(",", ".", regex=False), errors="coerce")
        return values.isna() | values.between(lo, hi)  # text that is no number fails the type check

    return [pa.Check(within, error=f"must be within {where}")]


def field_checks(field: DictionaryField, missing_codes: list[str]) -> list[pa.Check]:
    """The pandera checks a field's stored text must pass, generated from its dictionary row.

    Declared missing-data codes are removed before these run (see :func:`read_redcap`). Choice
    fields (radio, dropdown) must hold one of the dictionary's codes; yes/no and true/false 0 or 1;
    text fields with a validation type must match it (integer, number, dates, times) and lie within
    the validation min/max; calc and slider fields must be numbers (sliders within 0-100 unless
    bounded in the dictionary). Checkbox columns are checked by :func:`dictionary_schema`.
    """
    kind = field.kind
    codes_hint = (
        f" or one of the declared missing-data codes {missing_codes}"
        if missing_codes
        else " (declare missing-data codes in the plan's data.redcap.missing_data_codes)"
    )
    if field.type in ("radio", "dropdown"):
        codes = list(field.choices)
        return [pa.Check.isin(codes, error=f"must be one of the dictionary's choices {codes}")]
    if kind == "binary":
        return [pa.Check.isin(["0", "1"], error=f"must be 0 or 1 ({field.type})")]
    pattern_key = "number" if kind == "number_comma" else kind
    if pattern_key not in _PATTERNS:
        return []
    pattern, what = _PATTERNS[pattern_key]
    if kind == "number_comma":
        pattern = _NUMBER_COMMA
    rule = f"must be {what}" + (codes_hint if field.numeric or kind == "number" else "")
    checks = [pa.Check(lambda s, p=pattern: s.str.fullmatch(p).fillna(False).astype(bool), error=rule)]
    return checks + _bound_checks(field)


def dictionary_schema(dictionary: DataDictionary, columns: list[str], missing_codes: list[str]) -> pa.DataFrameSchema:
    """A pandera schema for the export's columns, generated from the data dictionary.

    Every column is text, may be empty, and is checked by :func:`field_checks` (dictionary fields),
    0/1 (checkbox columns) or 0/1/2 (``<form>_complete``).
    """
    checkbox = dictionary.checkbox_columns(missing_codes)
    forms = {f"{form}_complete" for form in dictionary.forms}
    schema_columns = {}
    for column in columns:
        if column in dictionary.fields:
            checks = field_checks(dictionary.fields[column], missing_codes)
        elif column in checkbox:
            checks = [pa.Check.isin(["0", "1"], error="checkbox column must be 0 or 1")]
        elif column in forms:
            checks = [pa.Check.isin(["0", "1", "2"], error="form status must be 0 (incomplete), 1 (unverified) or 2 (complete)")]
        else:
            continue
        schema_columns[column] = pa.Column(None, checks=checks, nullable=True, required=False)
    return pa.DataFrameSchema(schema_columns)


# ---------------------------------------------------------------------------------------------
# Reading an export


@dataclass
class _Collector:
    path: str
    rows: list[dict]

    def add(self, row: object, column: str, rule: str, value: object) -> None:
        self.rows.append(failure(self.path, row, column, rule, value))


def _missing_codes(export: pd.DataFrame, dictionary: DataDictionary, codes: list[str], problems: _Collector) -> tuple[pd.DataFrame, list[tuple[str, int, str]]]:
    """Blank out declared missing-data codes (counted per field and code); @NOMISSING fields fail."""
    if not codes:
        return export, []
    data = export.copy()
    notes = []
    checkbox = dictionary.checkbox_columns(codes)
    for column in data.columns:
        if column in SYSTEM_COLUMNS or column.endswith("_complete") or column in checkbox:
            continue
        coded = data[column].isin(codes)
        if not coded.any():
            continue
        field = dictionary.fields.get(column)
        if field is not None and field.no_missing_codes:
            for row in coded[coded].index:
                problems.add(row, column, "missing-data codes are not allowed in this field (@NOMISSING)", data.at[row, column])
        for code, count in data.loc[coded, column].value_counts(sort=False).items():
            notes.append((f"REDCap missing-data code '{code}' in {column}", int(count), "read as a missing value"))
        data[column] = data[column].mask(coded)
    return data, notes


def _visits(export: pd.DataFrame, src: RedcapSource, problems: _Collector) -> tuple[pd.Series, pd.Series]:
    """The plan visit of each export row (NaN where none) and which rows are participant rows."""
    visit = pd.Series(np.nan, index=export.index, dtype=object)
    instrument = export.get("redcap_repeat_instrument", pd.Series("", index=export.index, dtype=object)).fillna("")
    participant_rows = instrument == ""
    if src.events:
        event = export["redcap_event_name"]
        known = event.isin(list(src.events) + src.ignore_events)
        for row in known[~known].index:
            problems.add(row, "redcap_event_name",
                         f"event must be mapped to a visit in data.redcap.events {list(src.events)} "
                         "or listed in data.redcap.ignore_events", event.loc[row])
        visit = visit.mask(participant_rows, event.map(src.events))
    if src.repeating is not None:
        repeating = instrument == src.repeating.instrument
        instance = pd.to_numeric(export.get("redcap_repeat_instance"), errors="coerce")
        mapped = instance.map({float(k): v for k, v in src.repeating.instances.items()})
        for row in repeating[repeating & mapped.isna()].index:
            problems.add(row, "redcap_repeat_instance",
                         f"instance must be one of data.redcap.repeating.instances {list(src.repeating.instances)}",
                         export.at[row, "redcap_repeat_instance"])
        visit = visit.mask(repeating, mapped)
    return visit, participant_rows


def _participants(data: pd.DataFrame, rows: pd.Series, src: RedcapSource, dictionary: DataDictionary,
                  problems: _Collector) -> tuple[pd.DataFrame, list[tuple[str, int, str]]]:
    """One row per record (index = the record's first export row), canonical participant columns."""
    frame = data.loc[rows]
    record = frame[src.record_id]
    first_rows = record.reset_index().drop_duplicates(src.record_id).set_index(src.record_id)["row"]
    out = pd.DataFrame({"participant_id": first_rows.index.astype(str)}, index=pd.Index(first_rows.to_numpy(), name="row"))
    notes = []
    for canonical in PARTICIPANT_FIELDS[1:]:
        name = src.participants.get(canonical, canonical)
        field = dictionary.fields.get(name)
        if field is not None and field.type == "checkbox":
            values, coded = _checkbox_values(frame, record, field, src)
            if coded:
                notes.append((f"REDCap missing-data code ticked in {name}", coded, "read as a missing value"))
        elif name in frame.columns:
            values = _one_value_per_record(frame[name], record, name, problems)
        else:
            continue
        values = values.reindex(first_rows.index)
        if canonical in src.codes:
            recode = src.codes[canonical]
            unknown = values.notna() & ~values.isin(list(recode))
            for pid in unknown[unknown].index:
                problems.add(first_rows[pid], name, f"must be one of the codes recoded in data.redcap.codes.{canonical} {list(recode)}", values[pid])
            values = values.map(recode)
        out[canonical] = values.to_numpy()
    return out, notes


def _one_value_per_record(column: pd.Series, record: pd.Series, name: str, problems: _Collector) -> pd.Series:
    first = column.groupby(record, sort=False).transform("first")
    clash = column.notna() & (column != first)
    for row in clash[clash].index:
        problems.add(row, name, f"one value per record (record {record[row]} has {first[row]!r} on an earlier row)", column[row])
    return column.groupby(record, sort=False).first()


def _checkbox_values(frame: pd.DataFrame, record: pd.Series, field, src: RedcapSource) -> tuple[pd.Series, int]:
    """A checkbox participant field as one value: the ticked code, ``multiple_choices`` when more
    than one is ticked, missing when none is (or a missing-data code is)."""
    codes = [c for c in field.choices if field.checkbox_column(c) in frame.columns]
    ticked = pd.DataFrame({c: frame[field.checkbox_column(c)] == "1" for c in codes}).groupby(record, sort=False).any()
    coded_columns = [field.checkbox_column(c) for c in src.missing_data_codes if field.checkbox_column(c) in frame.columns]
    coded = (frame[coded_columns] == "1").any(axis=1).groupby(record, sort=False).any() if coded_columns else None
    count = ticked.sum(axis=1)
    single = ticked.idxmax(axis=1) if codes else pd.Series(np.nan, index=ticked.index)
    values = single.where(count == 1).astype(object)
    values = values.mask(count > 1, src.multiple_choices)
    n_coded = 0
    if coded is not None:
        values = values.mask(coded & (count == 0))
        n_coded = int((coded & (count == 0)).sum())
    return values, n_coded


def _measurements(export: pd.DataFrame, data: pd.DataFrame, visit: pd.Series, src: RedcapSource) -> tuple[pd.DataFrame, list]:
    """Long cells from rows with a visit that recorded the outcome form (any outcome field filled
    in, a missing-data code counting as filled in)."""
    fields = list(src.outcomes.values())
    recorded = export[fields].notna().any(axis=1)
    use = recorded & visit.notna()
    notes = []
    unused = int((recorded & visit.isna()).sum())
    if unused:
        notes.append(("REDCap rows with outcome values but no visit", unused, "not analysed (ignored event or other repeating instrument)"))
    pieces = [
        pd.DataFrame({
            "participant_id": data.loc[use, src.record_id].astype(str),
            "visit": visit[use],
            "outcome": outcome,
            "value": data.loc[use, field],
            "source_column": field,
        })
        for outcome, field in src.outcomes.items()
    ]
    long = pd.concat(pieces).sort_index(kind="stable")
    long["source_row"] = long.index
    return long.reset_index(drop=True), notes


def read_redcap(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame, RawTable, pd.DataFrame]:
    """Read the plan's REDCap export and data dictionary into trialkit's input tables.

    Returns
    -------
    participants_raw, participants, measurements_raw, measurements
        As :func:`analysis.sources.trial.read_sources`: the participants frame has one row per record, indexed
        by the record's first row in the export, with canonical column names; the measurements frame
        is long (``participant_id, visit, outcome, value, source_column, source_row``), one row per
        outcome field of every row that recorded the outcome form. Both RawTables point at the
        export and list the dictionary in ``inputs``; their ``notes`` count the missing-data codes
        read as missing values and the rows not analysed.

    Raises
    ------
    DataError
        Every failure at once (file, row as in the export, column = REDCap field, rule, value):
        unknown event or repeat instance, a value breaking the dictionary (choice code, validation
        type, min/max, checkbox 0/1, form status), a missing-data code in an ``@NOMISSING`` field,
        a column the dictionary does not declare, or two different values of a participant field
        within one record.

    Examples
    --------
    >>> from analysis.plan import load_plan
    >>> tables = read_redcap(load_plan("data/studies/example-precision-release-redcap.yaml"))  # doctest: +SKIP
    """
    src = loaded.plan.data.redcap
    if src is None:
        raise ValueError("the plan's data source is not redcap")
    base = loaded.path.parent
    dictionary = read_dictionary((base / src.dictionary).resolve())
    table = read_file(DataFile(path=src.export, format="csv"), base, "REDCap export")
    export = table.frame
    path = str(table.path)
    required = [src.record_id, *src.outcomes.values()]
    required += ["redcap_event_name"] if src.events else []
    required += ["redcap_repeat_instrument", "redcap_repeat_instance"] if src.repeating else []
    absent = [c for c in dict.fromkeys(required) if c not in export.columns]
    if absent:
        raise DataError(
            f"{path}: required REDCap column(s) {absent} not found in the export",
            pd.DataFrame([failure(path, 1, c, "required column", "") for c in absent]),
        )
    problems = _Collector(path, [])
    checkbox = dictionary.checkbox_columns(src.missing_data_codes)
    forms = {f"{form}_complete" for form in dictionary.forms}
    for column in export.columns:
        if not (column in dictionary.fields or column in checkbox or column in forms or column in SYSTEM_COLUMNS
                or column.endswith("_timestamp")):
            problems.add(1, column, f"column must be a field of the data dictionary {dictionary.path.name}", column)
    for row in export.index[export[src.record_id].isna()]:
        problems.add(row, src.record_id, "required: must not be empty", "")

    data, notes = _missing_codes(export, dictionary, src.missing_data_codes, problems)
    schema = dictionary_schema(dictionary, list(data.columns), src.missing_data_codes)
    try:
        schema.validate(data, lazy=True)
    except SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            problems.add(case.index, str(case.column), str(case.check), case.failure_case)
    visit, participant_rows = _visits(export, src, problems)
    participants, more = _participants(data, participant_rows & data[src.record_id].notna(), src, dictionary, problems)
    notes += more
    measurements, more = _measurements(export, data, visit, src)
    notes += more
    other = int((~participant_rows & visit.isna()).sum())
    if other:
        notes.append(("REDCap rows of other repeating instruments", other, "not used"))
    if problems.rows:
        failures = pd.DataFrame(problems.rows, columns=FAILURE_COLUMNS)
        failures["value"] = failures["value"].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        failures = failures.sort_values("row", kind="stable").reset_index(drop=True)
        raise DataError(f"{len(failures)} failure(s) in the REDCap export {table.path.name} against its data dictionary and the plan", failures)
    inputs = (dictionary.path,)
    # Each count goes with the table it concerns: outcome fields and rows -> measurements.
    about_participants = tuple(n for n in notes if not any(n[0].endswith(f" in {f}") for f in src.outcomes.values())
                               and not n[0].startswith("REDCap rows"))
    about_measurements = tuple(n for n in notes if n not in about_participants)
    participants_raw = RawTable(participants, table.path, "redcap", "participants", inputs=inputs, notes=about_participants)
    measurements_raw = RawTable(export, table.path, "redcap", "measurements", inputs=inputs, notes=about_measurements)
    return participants_raw, participants, measurements_raw, measurements


# ---------------------------------------------------------------------------------------------
# Making a REDCap project from trial tables (fixtures) and drafting a plan from a dictionary


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
