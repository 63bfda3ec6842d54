"""Reading a REDCap export: :func:`read_redcap` and its helpers (missing-data codes, events and
repeat instances -> visits, participant fields, long measurements).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandera.errors import SchemaErrors

from analysis.core.errors import FAILURE_COLUMNS, DataError, failure
from analysis.plan import PARTICIPANT_FIELDS, DataFile, LoadedPlan, RedcapSource
from analysis.sources.files import RawTable, read_file
from analysis.sources.redcap.dictionary import DataDictionary, dictionary_schema, read_dictionary

SYSTEM_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)


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
