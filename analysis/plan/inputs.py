"""Every file a study plan makes trialkit read: the inputs an output must never overwrite or delete."""

from __future__ import annotations

from pathlib import Path

from analysis.plan.study import LoadedPlan


def plan_inputs(loaded: LoadedPlan) -> list[Path]:
    """The plan file and every file it names, resolved against the plan's folder, without repeats.

    That is the participants and measurements files (for a REDCap source the export, for ADaM the
    ADSL and BDS files), the REDCap data dictionary and the adverse-events file, whether or not
    they exist yet. Outputs (:func:`analysis.core.output.staged_directory`, single output files)
    are checked against this list.

    Examples
    --------
    >>> from analysis.plan import load_plan
    >>> [p.name for p in plan_inputs(load_plan("data/studies/example-precision-release.yaml"))]  # doctest: +SKIP
    ['example-precision-release.yaml', 'participants.csv', 'measurements.csv']
    """
    plan = loaded.plan
    data = plan.data
    named = [spec.path for spec in (data.participants, data.measurements) if spec is not None]
    if data.redcap is not None:
        named += [data.redcap.export, data.redcap.dictionary]
    if data.adam is not None:
        named += [data.adam.adsl, data.adam.bds]
    if plan.reporting is not None and plan.reporting.adverse_events is not None:
        named.append(plan.reporting.adverse_events.path)
    paths = [loaded.path, *(loaded.resolve(name) for name in named)]
    return list(dict.fromkeys(paths))
