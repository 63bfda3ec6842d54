"""The REDCap data dictionary: its parsed form (:class:`DataDictionary`, :class:`DictionaryField`),
reading it (:func:`read_dictionary`, :func:`parse_choices`) and the pandera checks generated from it
(:func:`field_checks`, :func:`dictionary_schema`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from analysis.core.dates import impossible_dates
from analysis.core.errors import DataError, failure
from analysis.plan import DataFile
from analysis.sources.files import read_file

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

# validation kinds whose values name a moment -> (strptime format, what a valid value is)
_MOMENTS = {
    "date": ("%Y-%m-%d", "calendar date (YYYY-MM-DD)"),
    "datetime": ("%Y-%m-%d %H:%M", "date and time (YYYY-MM-DD HH:MM)"),
    "datetime_seconds": ("%Y-%m-%d %H:%M:%S", "date and time (YYYY-MM-DD HH:MM:SS)"),
    "time": ("%H:%M", "time of day (HH:MM)"),
}


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

    Declared missing-data codes are removed before these run (see
    :func:`analysis.sources.redcap.read_redcap`). Choice
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
    moment = _MOMENTS.get(kind) if kind != "time" or field.validation == "time" else None
    if moment is not None:  # the form alone lets 2023-02-30 or 25:70 through
        fmt, what = moment
        checks.append(pa.Check(lambda s, f=fmt: ~impossible_dates(s, f), error=f"must be a real {what}"))
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
