"""The study plan: a declarative statistical analysis plan loaded into a typed, validated model.

A plan is YAML (read with ``yaml.safe_load``: no tags, no code). Every mapping forbids unknown keys,
so a typo is an error naming the key, what was found and what is allowed (exit code 2). Paths in
the plan are relative to the plan file. The format is documented in ``docs/plan.md``.

The models are in :mod:`analysis.plan.study` (the plan) and :mod:`analysis.plan.sources` (its data
sources); reading and validating documents is :mod:`analysis.plan.documents`. This module
re-exports their public names.
"""

from analysis.plan.documents import (
    ModelT,
    load_plan,
    parse_plan,
    read_yaml_document,
    validate_document,
    yaml_mapping,
)
from analysis.plan.sources import (
    ADSL_DEFAULTS,
    DISPOSITIONS,
    FORMATS,
    MEASUREMENT_FIELDS,
    PARTICIPANT_FIELDS,
    SUFFIX_FORMAT,
    AdamSource,
    DataFile,
    DataSources,
    MeasurementsFile,
    ParticipantsFile,
    RedcapRepeating,
    RedcapSource,
)
from analysis.plan.study import (
    NIH_ETHNICITIES,
    NIH_RACES,
    NIH_SEXES,
    AgeGroup,
    Analysis,
    Arm,
    Arms,
    FollowUp,
    LoadedPlan,
    Mcid,
    NihMapping,
    Outcome,
    Plan,
    Reporting,
    ScreeningCounts,
    SimulatedOutcome,
    Simulation,
    StudyInfo,
    Table1Variable,
    Visits,
)

__all__ = [
    "ADSL_DEFAULTS",
    "AdamSource",
    "AgeGroup",
    "Analysis",
    "Arm",
    "Arms",
    "DISPOSITIONS",
    "DataFile",
    "DataSources",
    "FORMATS",
    "FollowUp",
    "LoadedPlan",
    "MEASUREMENT_FIELDS",
    "Mcid",
    "MeasurementsFile",
    "ModelT",
    "NIH_ETHNICITIES",
    "NIH_RACES",
    "NIH_SEXES",
    "NihMapping",
    "Outcome",
    "PARTICIPANT_FIELDS",
    "ParticipantsFile",
    "Plan",
    "RedcapRepeating",
    "RedcapSource",
    "Reporting",
    "SUFFIX_FORMAT",
    "ScreeningCounts",
    "SimulatedOutcome",
    "Simulation",
    "StudyInfo",
    "Table1Variable",
    "Visits",
    "load_plan",
    "parse_plan",
    "read_yaml_document",
    "validate_document",
    "yaml_mapping",
]
