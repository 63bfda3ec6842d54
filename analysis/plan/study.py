"""The study plan's models: :class:`Plan` (study, arms, visits, outcomes, analysis, simulation,
reporting; the data sources are in :mod:`analysis.plan.sources`) and :class:`LoadedPlan`.
"""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from analysis.plan.sources import DataFile, DataSources, StrictModel


class StudyInfo(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    design: str = "parallel-group randomised controlled trial"
    simulated: bool = False
    description: str = ""


class Arm(StrictModel):
    label: str
    codes: list[str] = Field(min_length=1)

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class Arms(StrictModel):
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


# Days per unit of visit time. A month is 365.25 / 12 days (the mean Julian month, as SAS and ICH
# E2B count ages in months), so month 12 is 52.18 weeks.
DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}


class FollowUp(StrictModel):
    """A follow-up visit: its label and its time since baseline in the plan's ``time_unit``.

    ``time`` is the time; ``week`` is accepted in its place when the unit is weeks (older plans).
    After validation ``time`` holds the time in the plan's unit and ``week`` the same time in weeks
    (converted by :class:`Visits`), whichever the plan gave.
    """

    label: str
    time: float | None = Field(default=None, gt=0)
    week: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_time(self) -> FollowUp:
        if self.time is None and self.week is None:
            raise ValueError(f"follow-up visit '{self.label}' needs its 'time' since baseline")
        if self.time is not None and self.week is not None and {"time", "week"} <= self.model_fields_set:
            raise ValueError(f"follow-up visit '{self.label}' gives both 'time' and 'week'; give 'time' only")
        return self


class Visits(StrictModel):
    baseline: str
    time_unit: Literal["days", "weeks", "months"] = "weeks"
    followup: list[FollowUp] = Field(min_length=1)
    primary: str

    @model_validator(mode="after")
    def _consistent(self) -> Visits:
        labels = [v.label for v in self.followup]
        if len(set(labels)) != len(labels):
            raise ValueError(f"follow-up visit labels repeat: {labels}")
        if self.baseline in labels:
            raise ValueError(f"baseline label '{self.baseline}' is also a follow-up label")
        in_weeks = [v.label for v in self.followup if "week" in v.model_fields_set]
        if in_weeks and self.time_unit != "weeks":
            raise ValueError(
                f"follow-up visit(s) {in_weeks} give 'week' but time_unit is {self.time_unit}; give 'time' "
                f"in {self.time_unit}"
            )
        for visit in self.followup:  # frozen models: the times are completed once, here
            time = visit.time if visit.time is not None else visit.week
            object.__setattr__(visit, "time", time)
            week = time if self.time_unit == "weeks" else time * DAYS_PER_UNIT[self.time_unit] / 7.0
            object.__setattr__(visit, "week", week)
        times = [v.time for v in self.followup]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError(f"follow-up visits must be listed in strictly increasing time order, found {times}")
        if self.primary not in labels:
            close = difflib.get_close_matches(self.primary, labels, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"primary visit '{self.primary}' is not one of the follow-up labels {labels}{hint}")
        return self

    @property
    def labels(self) -> list[str]:
        """All visit labels in time order, baseline first."""
        return [self.baseline] + [v.label for v in self.followup]

    @property
    def times(self) -> dict[str, float]:
        """Visit label -> time since baseline in the plan's ``time_unit`` (0 at baseline)."""
        return {self.baseline: 0.0} | {v.label: float(v.time) for v in self.followup}

    @property
    def weeks(self) -> dict[str, float]:
        """Visit label -> time since baseline in weeks, whatever the plan's unit (0 at baseline)."""
        return {self.baseline: 0.0} | {v.label: float(v.week) for v in self.followup}

    @property
    def days(self) -> dict[str, float]:
        """Visit label -> time since baseline in days (a month is 365.25 / 12 days)."""
        per = DAYS_PER_UNIT[self.time_unit]
        return {label: time * per for label, time in self.times.items()}

    @property
    def time_column(self) -> str:
        """The analysis dataset's column holding the visit time in the plan's unit: ``visit_week``
        for weeks, else ``visit_day`` / ``visit_month`` (kept beside ``visit_week``)."""
        return {"days": "visit_day", "weeks": "visit_week", "months": "visit_month"}[self.time_unit]

    @property
    def time_label(self) -> str:
        """How figures name the time axis: ``Day``, ``Week`` or ``Month``."""
        return {"days": "Day", "weeks": "Week", "months": "Month"}[self.time_unit]


class Mcid(StrictModel):
    """Minimal clinically important difference: absolute points and/or percent improvement."""

    points: float | None = Field(default=None, gt=0)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _at_least_one(self) -> Mcid:
        if self.points is None and self.percent is None:
            raise ValueError("give 'points', 'percent' or both")
        return self


class Outcome(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    unit: str
    range: tuple[float, float]
    better: Literal["lower", "higher"]
    mcid: Mcid | None = None
    primary: bool = False
    # decimals of means, SDs and estimates in the report's tables; None: one more than the data's own
    decimals: int | None = Field(default=None, ge=0, le=6)

    @field_validator("better", mode="before")
    @classmethod
    def _direction_known(cls, value: object, info: ValidationInfo) -> object:
        """``better: unknown`` (what ``plan-from-redcap`` writes) stops every command until it is set."""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "unknown", "todo")):
            name = info.data.get("name")
            which = f"outcome '{name}'" if name else "this outcome"
            raise ValueError(
                f"the direction of improvement of {which} is not set: write 'better: lower' or 'better: higher' "
                "(whether a lower or a higher value is the better result) before running"
            )
        return value

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


# the MMRM covariance structures (analysis.stats.models.mmrm.STRUCTURES)
MmrmStructure = Literal[
    "unstructured", "compound_symmetry", "ar1", "toeplitz", "cs_heterogeneous",
    "ar1_heterogeneous", "toeplitz_heterogeneous", "antedependence",
    "antedependence_heterogeneous", "spatial_exponential",
]


class Analysis(StrictModel):
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    primary_model: Literal["ancova", "mmrm"] = "ancova"
    mmrm_covariance: MmrmStructure = "unstructured"
    # Structures to try, in order, if the requested one fails; empty = fail loudly (no fallback).
    mmrm_fallback: list[MmrmStructure] = Field(default_factory=list)
    mmrm_df: Literal["satterthwaite", "kenward-roger", "kenward-roger-linear", "between-within",
                     "residual"] = "satterthwaite"
    # extra fixed terms: a numeric covariate (or the baseline) with one slope per visit
    mmrm_terms: list[str] = Field(default_factory=list)

    @field_validator("mmrm_terms")
    @classmethod
    def _by_visit_terms(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if len(t.split(":")) != 2 or t.split(":")[1] != "visit"
               or not t.split(":")[0].isidentifier()]
        if bad:
            raise ValueError(f"mmrm_terms must look like 'baseline:visit' or '<covariate>:visit', "
                             f"found {bad}")
        return value
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


class Table1Variable(StrictModel):
    """One Table 1 row block: a participants column, its printed label and how it is summarised."""

    name: str
    label: str
    kind: Literal["continuous", "categorical"]


class NihMapping(StrictModel):
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


class ScreeningCounts(StrictModel):
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


class AgeGroup(StrictModel):
    label: str
    low: float = Field(ge=0)
    high: float | None = None  # exclusive upper bound; None for open-ended


ADVERSE_EVENT_CATEGORY = "adverse_event_category"  # the reporting.labels key of adverse-event categories


def _yaml_code(code: object) -> str:
    """A label's code as the data are read: ``1`` and ``1.0`` -> ``'1'``."""
    if isinstance(code, bool):  # YAML reads yes/no/on/off unquoted as booleans: the code is lost
        raise ValueError(f"a code read as {code} by YAML: quote codes such as 'yes', 'no', 'on', 'off'")
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return "" if code is None else str(code)


class Reporting(StrictModel):
    """Grant and trial reporting: Table 1, NIH inclusion, adverse events, screening."""

    table1: list[Table1Variable] = Field(default_factory=list)
    nih: NihMapping | None = None
    age_groups: list[AgeGroup] | None = None
    adverse_events: DataFile | None = None
    screening: ScreeningCounts | None = None
    # Opt-in small-cell suppression (with complementary suppression) of the tables for public
    # release (Table 1 categorical counts, adverse events by arm); the NIH tables, submitted to
    # NIH, always stay exact.
    suppress_below: int | None = Field(default=None, ge=2)
    # Printed names of category codes: a Table 1 categorical variable (or the adverse events'
    # ``category``, key ADVERSE_EVENT_CATEGORY) -> {code as read: label}; order = order shown.
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _label_codes_as_text(cls, value: object) -> object:
        # YAML reads the code 1 as a number; codes are text once read
        if isinstance(value, dict):
            return {k: ({_yaml_code(c): v for c, v in m.items()} if isinstance(m, dict) else m) for k, m in value.items()}
        return value

    @model_validator(mode="after")
    def _labels_name_categorical_variables(self) -> Reporting:
        kinds = {v.name: v.kind for v in self.table1}
        known = [n for n, k in kinds.items() if k == "categorical"] + [ADVERSE_EVENT_CATEGORY]
        for name, mapping in self.labels.items():
            if kinds.get(name) == "continuous":
                raise ValueError(f"labels.{name}: '{name}' is a continuous Table 1 variable; labels name the codes of a categorical one")
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"labels.{name}: '{name}' is not a categorical variable of reporting.table1 "
                                 f"(nor '{ADVERSE_EVENT_CATEGORY}'): one of {known}{hint}")
            empty = [c for c, label in mapping.items() if not str(label).strip()]
            if empty:
                raise ValueError(f"labels.{name}: code(s) {empty} have an empty label")
        return self


class SimulatedOutcome(StrictModel):
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


class Simulation(StrictModel):
    """Parameters of the synthetic-trial generator (``trialkit simulate``)."""

    n_participants: int = Field(ge=4)  # any size: simulate draws and writes it in chunks
    dropout: float = Field(default=0.10, ge=0, lt=1)
    missing_value_rate: float = Field(default=0.01, ge=0, lt=0.5)
    first_enrollment: str = Field(default="2023-01-09", pattern=r"^\d{4}-\d{2}-\d{2}$")
    enrollment_weeks: int = Field(default=26, gt=0)
    sites: list[str] = Field(default_factory=lambda: ["site-1", "site-2", "site-3"], min_length=1)
    outcomes: dict[str, SimulatedOutcome]

    @field_validator("first_enrollment")
    @classmethod
    def _calendar_date(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a real calendar date (YYYY-MM-DD), found {value!r}") from None
        return value


class Plan(StrictModel):
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
