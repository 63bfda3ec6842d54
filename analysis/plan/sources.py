"""The data-source part of the study plan (``data:``): input files and their column mappings
(:class:`DataFile`, :class:`ParticipantsFile`, :class:`MeasurementsFile`), a REDCap project
(:class:`RedcapSource`), CDISC ADaM files (:class:`AdamSource`), and :class:`DataSources`, which
holds exactly one of them. Also the strict, frozen base model of every plan mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FORMATS = ("csv", "parquet", "xlsx", "sas7bdat", "xpt", "sav", "dta")
SUFFIX_FORMAT = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".xls": "xlsx",
    ".sas7bdat": "sas7bdat",
    ".xpt": "xpt",
    ".sav": "sav",
    ".dta": "dta",
}
# Texts read as a missing value in number columns unless the plan says otherwise: an empty cell, R's
# NA (write.csv) and SAS's '.' (analysis.sources.files reads them; the accounting counts them).
DEFAULT_NA_VALUES = ("", "NA", ".")

PARTICIPANT_FIELDS = (
    "participant_id",
    "arm",
    "age",
    "sex",
    "race",
    "ethnicity",
    "site",
    "enrolled_on",
    "disposition",
    "disposition_reason",
)
MEASUREMENT_FIELDS = ("participant_id", "visit", "outcome", "value")
DISPOSITIONS = ("completed", "withdrawn", "lost_to_follow_up")


class StrictModel(BaseModel):
    # allow_inf_nan=False: YAML .nan / .inf in any number is an error naming the key (a NaN range bound
    # would switch range checking off, silently)
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


class DataFile(StrictModel):
    """One input file and how its columns map onto canonical names."""

    path: str
    format: Literal["csv", "parquet", "xlsx", "sas7bdat", "xpt", "sav", "dta"] | None = None
    sheet: str | int | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: dict[str, str] = Field(default_factory=dict)
    # Texts that mean "missing" in the file's number columns (an empty cell always does).
    na_values: list[str] = Field(default_factory=lambda: list(DEFAULT_NA_VALUES))

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("na_values", mode="before")
    @classmethod
    def _na_values_as_text(cls, value: object) -> object:
        # YAML reads -99 as a number; NO, off and the like as booleans: say so rather than guess
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, bool) or item is None or (isinstance(item, float) and item != item):
                raise ValueError(f"{item!r} is not a text; quote each missing-value code, e.g. \"NA\"")
            out.append(str(int(item)) if isinstance(item, float) and item.is_integer() else str(item))
        return out

    def resolved_format(self) -> str:
        if self.format is not None:
            return self.format
        suffix = Path(self.path).suffix.lower()
        if suffix not in SUFFIX_FORMAT:
            raise ValueError(
                f"cannot tell the format of '{self.path}' from its suffix; set 'format' to one of "
                f"{', '.join(FORMATS)}"
            )
        return SUFFIX_FORMAT[suffix]

    def column(self, canonical: str) -> str:
        """The file's column name for a canonical name (the canonical name itself by default)."""
        return self.columns.get(canonical, canonical)


class ParticipantsFile(DataFile):
    """Participants: one row per participant (id, arm, baseline covariates, disposition)."""


class MeasurementsFile(DataFile):
    """Measurements, long or wide.

    * ``layout: long``: one row per participant x visit x outcome; columns ``participant_id``,
      ``visit``, ``outcome``, ``value`` (mapped through ``columns``).
    * ``layout: wide``: either one row per participant x visit with one column per outcome
      (``outcome_columns: {outcome: column}``, plus ``participant_id`` and ``visit``), or one row
      per participant with one column per outcome x visit
      (``cell_columns: {outcome: {visit: column}}``).
    """

    layout: Literal["long", "wide"] = "long"
    outcome_columns: dict[str, str] | None = None
    cell_columns: dict[str, dict[str, str]] | None = None

    @field_validator("columns")
    @classmethod
    def _known_measurement_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MEASUREMENT_FIELDS))
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown}; allowed: {list(MEASUREMENT_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _layout_consistent(self) -> MeasurementsFile:
        if self.layout == "long" and (self.outcome_columns or self.cell_columns):
            raise ValueError("'outcome_columns' and 'cell_columns' are for layout: wide")
        if self.layout == "wide" and bool(self.outcome_columns) == bool(self.cell_columns):
            raise ValueError("layout: wide needs exactly one of 'outcome_columns' or 'cell_columns'")
        return self


class RedcapRepeating(StrictModel):
    """A repeating instrument that holds the outcome fields, each instance being one visit."""

    instrument: str
    instances: dict[int, str] = Field(min_length=1)


class RedcapSource(StrictModel):
    """A REDCap flat CSV export with its data dictionary (contract: ``data/schemas/redcap.md``).

    ``events`` maps ``redcap_event_name`` to plan visits (longitudinal projects); rows of
    ``ignore_events`` hold no visit. ``outcomes`` maps plan outcomes to REDCap fields;
    ``participants`` maps canonical participant columns to fields where the names differ;
    ``codes`` recodes a participant field's REDCap codes; ``missing_data_codes`` are read as
    missing values (and counted), never as numbers.
    """

    export: str
    dictionary: str
    record_id: str = "record_id"
    events: dict[str, str] = Field(default_factory=dict)
    ignore_events: list[str] = Field(default_factory=list)
    outcomes: dict[str, str] = Field(min_length=1)
    participants: dict[str, str] = Field(default_factory=dict)
    codes: dict[str, dict[str, str]] = Field(default_factory=dict)
    multiple_choices: str = "Multiple"
    missing_data_codes: list[str] = Field(default_factory=list)
    repeating: RedcapRepeating | None = None

    @field_validator("missing_data_codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("codes", mode="before")
    @classmethod
    def _recode_keys_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: ({str(c): v for c, v in m.items()} if isinstance(m, dict) else m) for k, m in value.items()}
        return value

    @field_validator("participants", "codes")
    @classmethod
    def _known_participant_fields(cls, value: dict) -> dict:
        unknown = sorted(set(value) - set(PARTICIPANT_FIELDS[1:]))
        if unknown:
            raise ValueError(
                f"unknown participant column(s) {unknown}; allowed: {list(PARTICIPANT_FIELDS[1:])} "
                "(the participant id is 'record_id')"
            )
        return value


ADSL_DEFAULTS = {
    "participant_id": "USUBJID",
    "arm": "TRT01P",
    "age": "AGE",
    "sex": "SEX",
    "race": "RACE",
    "ethnicity": "ETHNIC",
    "site": "SITEID",
    "enrolled_on": "RANDDT",
    "disposition": "EOSSTT",
    "disposition_reason": "DCSREASP",
}


class AdamSource(StrictModel):
    """CDISC ADaM files: ADSL (one row per subject) and one BDS dataset (XPT, sas7bdat, CSV, Parquet).

    ``paramcd`` maps PARAMCD to plan outcomes (default: the codes trialkit writes, see
    ``analysis.sources.adam.paramcd_codes``); ``visits`` maps AVISIT to plan visits (default: AVISIT holds
    the plan's visit labels); ``participants`` overrides the ADSL variable of a canonical column.
    """

    adsl: str
    bds: str
    paramcd: dict[str, str] = Field(default_factory=dict)
    visits: dict[str, str] = Field(default_factory=dict)
    arm: str = "TRT01P"
    participants: dict[str, str] = Field(default_factory=dict)
    check_derived: bool = True

    @field_validator("participants")
    @classmethod
    def _known_participant_fields(cls, value: dict) -> dict:
        unknown = sorted(set(value) - set(PARTICIPANT_FIELDS))
        if unknown:
            raise ValueError(f"unknown participant column(s) {unknown}; allowed: {list(PARTICIPANT_FIELDS)}")
        return value

    def variables(self) -> dict[str, str]:
        """Canonical participant column -> ADSL variable."""
        return ADSL_DEFAULTS | {"arm": self.arm} | self.participants


class DataSources(StrictModel):
    """Exactly one data source: the native pair (participants + measurements), ``redcap`` or ``adam``.

    For ``redcap`` and ``adam`` the ``participants`` / ``measurements`` entries are filled in from
    the source section (pointing at the export or the ADaM files, with the source's own field or
    variable names as ``columns``), so validation reports name the REDCap field or ADaM variable.
    """

    participants: ParticipantsFile | None = None
    measurements: MeasurementsFile | None = None
    redcap: RedcapSource | None = None
    adam: AdamSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_source(cls, value: object) -> object:
        if isinstance(value, dict):
            native = [k for k in ("participants", "measurements") if k in value]
            other = [k for k in ("redcap", "adam") if k in value]
            if len(other) + bool(native) != 1:
                raise ValueError("give exactly one data source: participants + measurements, redcap, or adam")
            if native and len(native) != 2:
                raise ValueError("the native data source needs both 'participants' and 'measurements'")
        return value

    @model_validator(mode="after")
    def _source_files(self) -> DataSources:
        # The model is frozen; the derived file entries are set once, here, during validation.
        if self.redcap is not None:
            src = self.redcap
            fields = {"participant_id": src.record_id} | src.participants
            object.__setattr__(self, "participants", ParticipantsFile(path=src.export, format="csv", columns=fields))
            visit_column = "redcap_repeat_instance" if src.repeating and not src.events else "redcap_event_name"
            object.__setattr__(self, "measurements", MeasurementsFile(
                path=src.export, format="csv", layout="wide", outcome_columns=src.outcomes,
                columns={"participant_id": src.record_id, "visit": visit_column},
            ))
        elif self.adam is not None:
            src = self.adam
            object.__setattr__(self, "participants", ParticipantsFile(path=src.adsl, columns=src.variables()))
            object.__setattr__(self, "measurements", MeasurementsFile(
                path=src.bds, columns={"participant_id": "USUBJID", "visit": "AVISIT", "outcome": "PARAMCD", "value": "AVAL"},
            ))
        return self

    def check_against(self, outcomes: list[str], visits: list[str]) -> None:
        """The source section names only the plan's outcomes and visits (raises ValueError)."""
        named: list[tuple[str, list[str], list[str]]] = []
        if self.redcap is not None:
            src = self.redcap
            if not src.events and src.repeating is None:
                raise ValueError("data.redcap needs 'events' (longitudinal project) or 'repeating' (visits as instances)")
            unmapped = sorted(set(outcomes) - set(src.outcomes))
            if unmapped:
                raise ValueError(f"data.redcap.outcomes must name a REDCap field for every plan outcome; missing {unmapped}")
            named += [("data.redcap.events", list(src.events.values()), visits), ("data.redcap.outcomes", list(src.outcomes), outcomes)]
            if src.repeating is not None:
                named.append(("data.redcap.repeating.instances", list(src.repeating.instances.values()), visits))
        if self.adam is not None:
            named += [("data.adam.paramcd", list(self.adam.paramcd.values()), outcomes),
                      ("data.adam.visits", list(self.adam.visits.values()), visits)]
        for key, names, allowed in named:
            bad = sorted(set(names) - set(allowed))
            if bad:
                raise ValueError(f"{key} names {bad}, which are not among the plan's {allowed}")
