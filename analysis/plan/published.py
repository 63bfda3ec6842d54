"""Published-results plans: what a paper printed, and every assumption needed to go further.

A published-results plan is a different document from a trial plan (:mod:`analysis.plan`): there
is no participant data, only the figures a paper reported (quoted verbatim, with where they were
reported) and, kept strictly apart, the assumptions that fill the gaps (arm sizes, baseline mean
and SD per outcome, pre-post correlation, dropout; for a single case the normative value, the
pre-treatment value and the minimal detectable change). Each assumption carries a central value,
a plausible range ``[low, high]`` and a one-line justification. The format is described for
humans in ``data/schemas/published_results.md``; the pydantic models below are the schema (every
mapping forbids unknown keys and is frozen) and :func:`published_json_schema` exports it.

Two designs share the top-level keys ``document: published-results`` and ``design``:

* ``parallel_trial``: two arms, percent changes, an optional "x-fold" comparison, sample size,
  duration, a ``replication`` section (seed, readings used for calibration, tolerances);
* ``single_case``: one patient, "percent of lost range restored".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.core.errors import PlanError
from analysis.plan import Outcome, read_yaml_document, validate_document, yaml_mapping

PERCENT_READINGS = ("change_of_means", "mean_of_percent_changes")
FOLD_READINGS = ("ratio_of_percent_improvements", "ratio_of_mean_changes", "ratio_of_responder_proportions")


class _Strict(BaseModel):
    # allow_inf_nan=False: YAML .nan / .inf in any number is an error naming the key (a NaN range bound
    # would switch range checking off, silently)
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


class Assumption(_Strict):
    """A value the paper did not report: central value, plausible range and why."""

    value: float
    low: float
    high: float
    why: str = Field(min_length=10)
    source: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Assumption:
        if not self.low <= self.value <= self.high:
            raise ValueError(f"needs low <= value <= high, found low={self.low}, value={self.value}, high={self.high}")
        return self


class PublishedStudy(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    design_text: str
    population: str = ""
    source: str


class ArmInfo(_Strict):
    label: str
    description: str = ""


class TrialArms(_Strict):
    treatment: ArmInfo
    control: ArmInfo


class FollowUpVisit(_Strict):
    label: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    week: float = Field(gt=0)


class PublishedOutcome(Outcome):
    """A trial plan's outcome (range, direction, optional MCID) plus the rounding the replication
    uses when it draws participant values."""

    decimals: int = Field(default=1, ge=0, le=4)


class Claim(_Strict):
    """One reported figure, quoted verbatim with where it was reported.

    ``kind`` decides which other keys apply:

    * ``percent_change``: ``outcome`` and ``values`` (``{treatment: 41}`` or
      ``{treatment: -42, control: -18}``), percent change from baseline to follow-up;
    * ``fold``: ``outcomes`` (which outcomes the comparison is read for) and ``value`` (1.7);
    * ``sample_size``: ``value`` (participants randomised);
    * ``duration_weeks``: ``value``;
    * ``percent_restored``: ``outcome`` and ``value`` (single case).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    quote: str = Field(min_length=1)
    where: str = Field(min_length=1)
    kind: Literal["percent_change", "fold", "sample_size", "duration_weeks", "percent_restored"]
    outcome: str | None = None
    outcomes: list[str] | None = None
    value: float | None = None
    values: dict[Literal["treatment", "control"], float] | None = None

    @model_validator(mode="after")
    def _keys_for_kind(self) -> Claim:
        needs = {
            "percent_change": {"outcome", "values"},
            "fold": {"outcomes", "value"},
            "sample_size": {"value"},
            "duration_weeks": {"value"},
            "percent_restored": {"outcome", "value"},
        }[self.kind]
        given = {k for k in ("outcome", "outcomes", "value", "values") if getattr(self, k) is not None}
        if given != needs:
            raise ValueError(f"a '{self.kind}' claim takes exactly the keys {sorted(needs)}, found {sorted(given)}")
        if self.kind == "percent_change":
            if "treatment" not in self.values:
                raise ValueError("a percent_change claim needs at least the treatment arm's value")
            if any(v <= -100 for v in self.values.values()):
                raise ValueError("a percent change must be greater than -100")
        if self.kind == "fold" and not self.value > 0:
            raise ValueError(f"a fold comparison must be positive, found {self.value}")
        if self.kind == "sample_size" and (self.value < 4 or self.value != int(self.value)):
            raise ValueError(f"sample size must be a whole number >= 4, found {self.value}")
        return self


class OutcomeAssumptions(_Strict):
    """Per outcome: baseline mean and SD (follow-up SD assumed equal) and the pre-post correlation."""

    baseline_mean: Assumption
    baseline_sd: Assumption
    pre_post_r: Assumption

    @model_validator(mode="after")
    def _valid(self) -> OutcomeAssumptions:
        if self.baseline_sd.low <= 0:
            raise ValueError("baseline_sd must be positive over its whole range")
        if not (-1 < self.pre_post_r.low and self.pre_post_r.high < 1):
            raise ValueError("pre_post_r must lie strictly between -1 and 1 over its whole range")
        return self


class TrialAssumptions(_Strict):
    treatment_fraction: Assumption
    dropout: Assumption
    outcomes: dict[str, OutcomeAssumptions]

    @model_validator(mode="after")
    def _valid(self) -> TrialAssumptions:
        if not (0 < self.treatment_fraction.low and self.treatment_fraction.high < 1):
            raise ValueError("treatment_fraction must lie strictly between 0 and 1 over its whole range")
        if not (0 <= self.dropout.low and self.dropout.high < 0.9):
            raise ValueError("dropout must lie in [0, 0.9) over its whole range")
        return self


class Replication(_Strict):
    """How the participant-level replication is calibrated and how close it must come."""

    seed: int = Field(ge=0, lt=2**32)
    percent_reading: Literal["change_of_means", "mean_of_percent_changes"] = "change_of_means"
    fold_reading: Literal["ratio_of_percent_improvements", "ratio_of_mean_changes"] = "ratio_of_percent_improvements"
    tolerance_percent_points: float = Field(gt=0)
    tolerance_fold: float = Field(gt=0)
    tolerance_why: str = Field(min_length=10)
    n_boot: int = Field(default=500, ge=100, le=100_000)


class CaseAssumptions(_Strict):
    normative: Assumption
    pre: Assumption
    mdc: Assumption

    @model_validator(mode="after")
    def _valid(self) -> CaseAssumptions:
        if self.normative.low <= self.pre.high:
            raise ValueError(
                f"normative.low ({self.normative.low}) must exceed pre.high ({self.pre.high}) so that some range is lost everywhere in the box"
            )
        if self.mdc.low <= 0:
            raise ValueError("mdc must be positive over its whole range")
        return self


class _Common(_Strict):
    document: Literal["published-results"]
    study: PublishedStudy
    outcomes: list[PublishedOutcome] = Field(min_length=1)
    reported: list[Claim] = Field(min_length=1)

    def claims(self, kind: str) -> list[Claim]:
        return [c for c in self.reported if c.kind == kind]

    def outcome(self, name: str) -> PublishedOutcome:
        return next(o for o in self.outcomes if o.name == name)

    def _check_common(self) -> None:
        names = [o.name for o in self.outcomes]
        if len(set(names)) != len(names):
            raise ValueError(f"outcome names repeat: {names}")
        ids = [c.id for c in self.reported]
        if len(set(ids)) != len(ids):
            raise ValueError(f"claim ids repeat: {ids}")
        for claim in self.reported:
            for name in ([claim.outcome] if claim.outcome else []) + (claim.outcomes or []):
                if name not in names:
                    raise ValueError(f"claim '{claim.id}' names outcome '{name}', which is not among the outcomes {names}")


class PublishedTrial(_Common):
    """A published two-arm trial: claims, assumptions and replication settings."""

    design: Literal["parallel_trial"]
    arms: TrialArms
    followup: FollowUpVisit
    assumptions: TrialAssumptions
    replication: Replication

    @model_validator(mode="after")
    def _consistent(self) -> PublishedTrial:
        self._check_common()
        if len(self.claims("sample_size")) != 1:
            raise ValueError("a parallel_trial needs exactly one 'sample_size' claim (the n the paper reported)")
        if self.claims("percent_restored"):
            raise ValueError("'percent_restored' claims belong to single_case plans")
        folded = {name for c in self.claims("fold") for name in c.outcomes}
        claimed = [c.outcome for c in self.claims("percent_change")]
        if len(set(claimed)) != len(claimed):
            raise ValueError(f"more than one percent_change claim for the same outcome: {claimed}")
        for claim in self.claims("percent_change"):
            has_control = "control" in claim.values
            if has_control == (claim.outcome in folded):
                raise ValueError(
                    f"outcome '{claim.outcome}' needs its control result from exactly one source: a control value in "
                    f"claim '{claim.id}' or a fold claim naming it"
                )
        for name in folded - set(claimed):
            raise ValueError(f"fold claim names outcome '{name}' but no percent_change claim reports its treatment result")
        needed, given = set(claimed), set(self.assumptions.outcomes)
        if needed != given:
            raise ValueError(
                f"assumptions.outcomes must cover exactly the outcomes with claims: missing {sorted(needed - given)}, "
                f"unexpected {sorted(given - needed)}"
            )
        for name in folded:
            if self.outcome(name).mcid is None or self.outcome(name).mcid.points is None:
                raise ValueError(f"outcome '{name}' is read under a fold claim, so it needs mcid.points (for the responder reading)")
        return self

    @property
    def sample_size(self) -> int:
        return int(self.claims("sample_size")[0].value)

    @property
    def claimed_outcomes(self) -> list[PublishedOutcome]:
        """Outcomes with a percent_change claim, in the order the plan lists them."""
        names = {c.outcome for c in self.claims("percent_change")}
        return [o for o in self.outcomes if o.name in names]

    def percent_claim(self, outcome: str) -> Claim:
        return next(c for c in self.claims("percent_change") if c.outcome == outcome)

    def fold_claim(self, outcome: str) -> Claim | None:
        return next((c for c in self.claims("fold") if outcome in c.outcomes), None)


class PublishedCase(_Common):
    """A published single-patient case report."""

    design: Literal["single_case"]
    patient: str
    intervention: str
    assumptions: CaseAssumptions

    @model_validator(mode="after")
    def _consistent(self) -> PublishedCase:
        self._check_common()
        restored = self.claims("percent_restored")
        if len(restored) != 1 or len(self.reported) != 1:
            raise ValueError("a single_case plan holds exactly one claim, of kind 'percent_restored'")
        if not 0 < restored[0].value <= 100:
            raise ValueError(f"percent restored must lie in (0, 100], found {restored[0].value}")
        return self

    @property
    def restored(self) -> Claim:
        return self.claims("percent_restored")[0]


PublishedPlan = PublishedTrial | PublishedCase
MODELS: dict[str, type[BaseModel]] = {"parallel_trial": PublishedTrial, "single_case": PublishedCase}


class LoadedPublished(BaseModel):
    """A validated published-results plan with its file path and SHA-256."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    plan: PublishedTrial | PublishedCase
    path: Path
    sha256: str


def parse_published(text: str, source: str = "<published plan>") -> PublishedTrial | PublishedCase:
    """Parse published-results YAML into a validated model.

    Raises
    ------
    PlanError
        One sentence naming the file, the key and what is wrong.
    """
    raw = yaml_mapping(text, source, "a published-results plan")
    if raw.get("document") != "published-results":
        raise PlanError(f"{source}: not a published-results plan (needs 'document: published-results' at the top level)")
    design = raw.get("design")
    if design not in MODELS:
        raise PlanError(f"{source}: key 'design' must be one of {', '.join(MODELS)}, found {design!r}")
    return validate_document(MODELS[design], raw, source)  # type: ignore[return-value]


def is_published_results(path: str | Path) -> bool:
    """Whether a YAML file declares itself a published-results plan (``document: published-results``)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the ordinary plan loader reports the problem in its own words
    return isinstance(raw, dict) and raw.get("document") == "published-results"


def load_published(path: str | Path) -> LoadedPublished:
    """Read and validate a published-results plan file.

    Examples
    --------
    >>> loaded = load_published("data/studies/precision-release-2023.yaml")  # doctest: +SKIP
    >>> loaded.plan.sample_size  # doctest: +SKIP
    120
    """
    plan_path, text, sha256 = read_yaml_document(path, "published-results plan")
    return LoadedPublished(plan=parse_published(text, str(plan_path)), path=plan_path, sha256=sha256)


def published_json_schema(design: Literal["parallel_trial", "single_case"]) -> dict[str, Any]:
    """The JSON Schema of a published-results plan of the given design (from the pydantic model)."""
    if design not in MODELS:
        raise PlanError(f"design must be one of {', '.join(MODELS)}, found {design!r}")
    return MODELS[design].model_json_schema()
