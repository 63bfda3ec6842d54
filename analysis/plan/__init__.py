"""The study plan: a declarative statistical analysis plan loaded into a typed, validated model.

A plan is YAML (read with ``yaml.safe_load``: no tags, no code). Every mapping forbids unknown keys,
so a typo is an error naming the key, what was found and what is allowed (exit code 2). Paths in
the plan are relative to the plan file. The format is documented in ``docs/plan.md``.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from analysis.core.errors import PlanError

ModelT = TypeVar("ModelT", bound=BaseModel)

FORMATS = ("csv", "parquet", "xlsx", "sas7bdat", "xpt", "sav")
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
}

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class StudyInfo(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    design: str = "parallel-group randomised controlled trial"
    simulated: bool = False
    description: str = ""


class DataFile(_Strict):
    """One input file and how its columns map onto canonical names."""

    path: str
    format: Literal["csv", "parquet", "xlsx", "sas7bdat", "xpt", "sav"] | None = None
    sheet: str | int | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

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


class RedcapRepeating(_Strict):
    """A repeating instrument that holds the outcome fields, each instance being one visit."""

    instrument: str
    instances: dict[int, str] = Field(min_length=1)


class RedcapSource(_Strict):
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


class AdamSource(_Strict):
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


class DataSources(_Strict):
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


class Arm(_Strict):
    label: str
    codes: list[str] = Field(min_length=1)

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class Arms(_Strict):
    treatment: Arm
    control: Arm

    @model_validator(mode="after")
    def _distinct_codes(self) -> Arms:
        shared = set(self.treatment.codes) & set(self.control.codes)
        if shared:
            raise ValueError(f"codes {sorted(shared)} are given for both arms")
        return self

    def code_to_arm(self) -> dict[str, str]:
        mapping = {code: "treatment" for code in self.treatment.codes}
        mapping.update({code: "control" for code in self.control.codes})
        return mapping


class FollowUp(_Strict):
    label: str
    week: float = Field(gt=0)


class Visits(_Strict):
    baseline: str
    followup: list[FollowUp] = Field(min_length=1)
    primary: str

    @model_validator(mode="after")
    def _consistent(self) -> Visits:
        labels = [v.label for v in self.followup]
        if len(set(labels)) != len(labels):
            raise ValueError(f"follow-up visit labels repeat: {labels}")
        if self.baseline in labels:
            raise ValueError(f"baseline label '{self.baseline}' is also a follow-up label")
        weeks = [v.week for v in self.followup]
        if weeks != sorted(weeks) or len(set(weeks)) != len(weeks):
            raise ValueError("follow-up visits must be listed in strictly increasing week order")
        if self.primary not in labels:
            raise ValueError(f"primary visit '{self.primary}' is not one of the follow-up labels {labels}")
        return self

    @property
    def labels(self) -> list[str]:
        """All visit labels in time order, baseline first."""
        return [self.baseline] + [v.label for v in self.followup]

    @property
    def weeks(self) -> dict[str, float]:
        return {self.baseline: 0.0} | {v.label: v.week for v in self.followup}


class Mcid(_Strict):
    """Minimal clinically important difference: absolute points and/or percent improvement."""

    points: float | None = Field(default=None, gt=0)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _at_least_one(self) -> Mcid:
        if self.points is None and self.percent is None:
            raise ValueError("give 'points', 'percent' or both")
        return self


class Outcome(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    unit: str
    range: tuple[float, float]
    better: Literal["lower", "higher"]
    mcid: Mcid | None = None
    primary: bool = False

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] >= value[1]:
            raise ValueError(f"range must be [low, high] with low < high, found {list(value)}")
        return value

    @property
    def improvement_sign(self) -> int:
        """+1 when a higher value is better, -1 when lower is better."""
        return 1 if self.better == "higher" else -1


class Analysis(_Strict):
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    primary_model: Literal["ancova", "mmrm"] = "ancova"
    mmrm_covariance: Literal["unstructured", "toeplitz", "ar1", "compound_symmetry"] = "unstructured"
    # Structures to try, in order, if the requested one fails; empty = fail loudly (no fallback).
    mmrm_fallback: list[Literal["toeplitz", "ar1", "compound_symmetry"]] = Field(default_factory=list)
    responder_missing: Literal["non_responder", "complete_case"] = "non_responder"
    multiplicity: Literal["holm", "hochberg", "none"] = "holm"
    imputations: int = Field(default=20, ge=2, le=1000)
    n_boot: int = Field(default=2000, ge=100, le=1_000_000)
    listings: bool = False


NIH_RACES = (
    "American Indian/Alaska Native",
    "Asian",
    "Native Hawaiian or Other Pacific Islander",
    "Black or African American",
    "White",
    "More than One Race",
    "Unknown or Not Reported",
)
NIH_ETHNICITIES = ("Not Hispanic or Latino", "Hispanic or Latino", "Unknown/Not Reported Ethnicity")
NIH_SEXES = ("Female", "Male", "Unknown/Not Reported")


class Table1Variable(_Strict):
    """One Table 1 row block: a participants column, its printed label and how it is summarised."""

    name: str
    label: str
    kind: Literal["continuous", "categorical"]


class NihMapping(_Strict):
    """The data's own race/ethnicity/sex codes -> NIH inclusion categories (policy-configurable).

    A missing value in the data is looked up as the code ``""``; codes absent here are an error.
    """

    race: dict[str, str]
    ethnicity: dict[str, str]
    sex: dict[str, str]
    race_categories: list[str] = Field(default_factory=lambda: list(NIH_RACES), min_length=1)
    ethnicity_categories: list[str] = Field(default_factory=lambda: list(NIH_ETHNICITIES), min_length=1)
    sex_categories: list[str] = Field(default_factory=lambda: list(NIH_SEXES), min_length=1)

    @field_validator("race", "ethnicity", "sex", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {("" if k is None else str(k)): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _targets_known(self) -> NihMapping:
        for field in ("race", "ethnicity", "sex"):
            allowed = getattr(self, f"{field}_categories")
            bad = sorted({v for v in getattr(self, field).values() if v not in allowed})
            if bad:
                raise ValueError(f"{field} maps to {bad}, which are not among the categories {allowed}")
        return self


class ScreeningCounts(_Strict):
    """Screening counts for the CONSORT enrollment box (not in the participants table)."""

    assessed: int = Field(ge=0)
    excluded: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_more_excluded_than_assessed(self) -> ScreeningCounts:
        if any(v < 0 for v in self.excluded.values()):
            raise ValueError("excluded counts must be >= 0")
        if sum(self.excluded.values()) > self.assessed:
            raise ValueError(f"{sum(self.excluded.values())} excluded but only {self.assessed} assessed")
        return self


class AgeGroup(_Strict):
    label: str
    low: float = Field(ge=0)
    high: float | None = None  # exclusive upper bound; None for open-ended


class Reporting(_Strict):
    """Grant and trial reporting: Table 1, NIH inclusion, adverse events, screening."""

    table1: list[Table1Variable] = Field(default_factory=list)
    nih: NihMapping | None = None
    age_groups: list[AgeGroup] | None = None
    adverse_events: DataFile | None = None
    screening: ScreeningCounts | None = None


class SimulatedOutcome(_Strict):
    """How ``trialkit simulate`` draws one outcome: baseline distribution and mean change by arm.

    Mean changes are those at the last follow-up visit; earlier visits get the same change scaled by
    ``week / last week``. Values are clipped to the outcome's range and rounded to ``decimals``.
    """

    baseline_mean: float
    baseline_sd: float = Field(gt=0)
    change_treatment: float
    change_control: float
    change_sd: float = Field(gt=0)
    within_participant_correlation: float = Field(default=0.6, ge=0, lt=1)
    decimals: int = Field(default=1, ge=0, le=6)


class Simulation(_Strict):
    """Parameters of the synthetic-trial generator (``trialkit simulate``)."""

    n_participants: int = Field(ge=4, le=100_000)
    dropout: float = Field(default=0.10, ge=0, lt=1)
    missing_value_rate: float = Field(default=0.01, ge=0, lt=0.5)
    first_enrollment: str = Field(default="2023-01-09", pattern=r"^\d{4}-\d{2}-\d{2}$")
    enrollment_weeks: int = Field(default=26, gt=0)
    sites: list[str] = Field(default_factory=lambda: ["site-1", "site-2", "site-3"], min_length=1)
    outcomes: dict[str, SimulatedOutcome]


class Plan(_Strict):
    study: StudyInfo
    seed: int = Field(ge=0, lt=2**32)
    data: DataSources
    arms: Arms
    visits: Visits
    outcomes: list[Outcome] = Field(min_length=1)
    covariates: list[str] = Field(default_factory=list)
    analysis: Analysis = Field(default_factory=Analysis)
    target_enrollment: int | None = Field(default=None, gt=0)
    simulation: Simulation | None = None
    reporting: Reporting | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [o.name for o in self.outcomes]
        if len(set(names)) != len(names):
            raise ValueError(f"outcome names repeat: {names}")
        self.data.check_against(names, self.visits.labels)
        if sum(o.primary for o in self.outcomes) > 1:
            raise ValueError("more than one outcome is marked primary: true")
        if self.simulation is not None:
            unknown = sorted(set(self.simulation.outcomes) - set(names))
            undeclared = sorted(set(names) - set(self.simulation.outcomes))
            if unknown or undeclared:
                raise ValueError(
                    f"simulation.outcomes must name each plan outcome once: unknown {unknown}, "
                    f"missing {undeclared}"
                )
        return self

    @property
    def primary_outcome(self) -> Outcome:
        """The outcome marked ``primary: true``, or the first one listed."""
        return next((o for o in self.outcomes if o.primary), self.outcomes[0])

    def outcome(self, name: str) -> Outcome:
        return next(o for o in self.outcomes if o.name == name)


class LoadedPlan(BaseModel):
    """A validated plan together with where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    plan: Plan
    path: Path
    sha256: str

    def resolve(self, relative: str) -> Path:
        """A path named in the plan, relative to the plan's folder."""
        return (self.path.parent / relative).resolve()


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(root: type[BaseModel], error: dict[str, object]) -> str:
    where = _location(tuple(error["loc"]))  # type: ignore[arg-type]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = tuple(error["loc"])[:-1]  # type: ignore[index]
        allowed = _allowed_keys(root, parent)
        close = difflib.get_close_matches(str(tuple(error["loc"])[-1]), allowed, n=1)  # type: ignore[index]
        hint = f"did you mean '{close[0]}'? " if close else ""
        listing = "allowed keys here: " + ", ".join(allowed) if allowed else "see the format's documentation for the allowed keys"
        return f"unknown key '{where}' (found {error['input']!r}); {hint}{listing}"
    if kind == "missing":
        return f"missing required key '{where}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"key '{where}': {message} (found {error['input']!r})"


def _allowed_keys(root: type[BaseModel], parent: tuple[object, ...]) -> list[str]:
    """Keys allowed in the mapping at ``parent`` (dict keys such as outcome names are skipped)."""
    model: type[BaseModel] | None = root
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:  # a dict key (e.g. an outcome name) or a union tag
            continue
        model = _model_in(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def yaml_mapping(text: str, source: str, what: str) -> dict:
    """Safe-load YAML text that must be a mapping; anything else is a one-sentence PlanError."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: {what} must be a YAML mapping of keys to values, found {type(raw).__name__}")
    return raw


def validate_document(model: type[ModelT], raw: dict, source: str) -> ModelT:
    """``model.model_validate(raw)``, with the first problem as one sentence naming the key, what
    was found and what is allowed (a typo'd key is reported before the key it made "missing")."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        more = f" ({len(errors) - 1} more problem(s) after fixing this one)" if len(errors) > 1 else ""
        raise PlanError(f"{source}: {_describe(model, errors[0])}{more}") from None


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse plan YAML text into a validated :class:`Plan`.

    Raises
    ------
    PlanError
        One sentence naming the key, what was found and what is allowed.
    """
    return validate_document(Plan, yaml_mapping(text, source, "a plan"), source)


def load_plan(path: str | Path) -> LoadedPlan:
    """Read and validate a study plan file.

    Examples
    --------
    >>> loaded = load_plan("data/studies/example-precision-release.yaml")  # doctest: +SKIP
    >>> loaded.plan.visits.primary  # doctest: +SKIP
    'week12'
    """
    plan_path, text, sha256 = read_yaml_document(path, "plan file")
    return LoadedPlan(plan=parse_plan(text, str(plan_path)), path=plan_path, sha256=sha256)


def read_yaml_document(path: str | Path, what: str) -> tuple[Path, str, str]:
    """A plan-like YAML file's resolved path, its UTF-8 text (a BOM is accepted) and the SHA-256 of
    its bytes; a missing or non-UTF-8 file is a :class:`PlanError` naming ``what`` it should be."""
    plan_path = Path(path)
    if not plan_path.is_file():
        raise PlanError(f"{what} '{plan_path}' does not exist")
    data = plan_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{plan_path}: not UTF-8 text (byte {exc.start})") from None
    return plan_path.resolve(), text, hashlib.sha256(data).hexdigest()
