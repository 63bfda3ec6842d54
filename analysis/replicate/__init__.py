"""Replicating a published trial from its headline figures (``trialkit replicate``).

A paper that prints "+41%", "1.7-fold" or "42% vs 18%" does not print arm means, SDs, the pre-post
correlation or dropout. This package makes explicit what such figures imply once those gaps are
filled by the assumptions of a published-results plan (:mod:`analysis.plan.published`), how fragile
that is, and draws participant-level data that reproduce the figures through the real pipeline.

Parts (each a plain function; :func:`replicate` orchestrates and writes):

1. **Readings.** A reported percent change ``p`` of an arm is read as the change of the arm mean
   (``change_of_means``: mean change ``m = mu0 p/100``) or as the mean of the participants' own
   percent changes (``mean_of_percent_changes``). For the latter, with ``B`` the baseline and
   ``D`` the change, pre and post bivariate normal (SDs ``sd0``, ``sd1``, correlation ``r``), the
   conditional mean of the change is linear, ``E[D | B] = m + beta (B - mu0)``, ``beta = r sd1/sd0 - 1``,
   so exactly::

       E[100 D/B] = 100 [ (m - beta mu0) E[1/B] + beta ],

   with ``E[1/B]`` by quadrature over the normal baseline truncated to the instrument's positive range.
   It is linear in ``m`` and solved for it (:func:`change_for_percent`). A fold comparison
   ``f`` gives the control arm from the treatment arm as a ratio of percent improvements
   (``p_C = p_T/f``), a ratio of mean changes (``m_C = m_T/f``) or a ratio of responder
   proportions (``pi_C = pi_T/f`` with ``pi = Phi((s m - MCID)/sd_change)``, normal changes,
   ``s`` = +1 if higher is better, else -1).
2. **Aggregate route.** The implied arm summaries (:class:`ImpliedArms`) go through the effect-size
   engine (:mod:`analysis.stats.effects`): MD, Hedges' g, ROM, MD of changes, Morris d_ppc2, percent
   change of means per arm (delta-method CI) and the ratio of improvements (Fieller CI).
   :func:`consistency_table` checks each combination of readings for feasibility.
3. **Sensitivity.** Each assumption is moved over its range with the others at their central value
   (:func:`sensitivity_table`); a baseline-SD x correlation grid feeds the figure; a 3-level
   factorial over every assumption gives the range of conclusions (:func:`conclusions_table`).
4. **Participant-level replication.** A generated, SIMULATED trial plan plus data drawn by
   :func:`analysis.replicate.simulate.simulate_trial`, then calibrated by construction
   (:func:`calibrate_trial`): per arm and outcome the complete cases' baseline values are mapped
   affinely to the assumed mean and SD, follow-up values are rebuilt with the assumed SD and
   correlation and shifted to the target statistic, and the rounding to the instrument's decimals
   is corrected with a largest-remainder step, so the sample statistics hit the printed figures
   to within half a rounding unit divided by the arm size.
5. **Single case.** Percent of lost range restored, ``100 (post - pre)/(normative - pre)``,
   against the minimal detectable change (:func:`case_restoration`).

Submodules:

- :mod:`analysis.replicate.claims`: the claims and assumptions as tables, central values of the
  assumptions, and the readings (part 1: :class:`ImpliedArms`, :func:`implied_arms`, scenarios).
- :mod:`analysis.replicate.implied`: the aggregate route with its consistency checks (part 2) and
  the sensitivity analyses, factorial box of conclusions and sensitivity figure (part 3).
- :mod:`analysis.replicate.calibration`: the generated trial plan, calibration by construction of
  the simulated draw, writing the replication trial and the headline check of its run (part 4).
- :mod:`analysis.replicate.single_case`: percent of lost range restored against the MDC (part 5).
- :mod:`analysis.replicate.report`: the plain-language conclusion, :class:`ReplicationOutputs`
  for the notebooks and :func:`replicate`, which writes every output and the manifest.
- :mod:`analysis.replicate.simulate`: the participant-level draw
  (:func:`~analysis.replicate.simulate.simulate_trial`).
- ``analysis.replicate.fixtures``: a ``python -m`` script regenerating the bundled example trial
  (``make fixtures``); deliberately not imported here.
"""

from __future__ import annotations

from analysis.replicate.calibration import (
    CONTROL_CODE,
    TREATMENT_CODE,
    calibrate_trial,
    headline_check,
    round_to_target,
    trial_plan_document,
    write_replication_trial,
)
from analysis.replicate.claims import (
    REPORTED,
    ImpliedArms,
    arm_sizes,
    assumptions_of,
    assumptions_table,
    central_values,
    change_for_percent,
    change_for_responders,
    claims_table,
    implied_arms,
    main_scenario,
    mean_inverse_baseline,
    mean_percent_from_change,
    responder_proportion,
    scenarios,
)
from analysis.replicate.implied import (
    CONSISTENCY_COLUMNS,
    LEVELS,
    NULL_VALUE,
    OUT_OF_RANGE_LIMIT,
    SENSITIVITY_COLUMNS,
    aggregate_route,
    conclusions_table,
    consistency_table,
    effect_rows,
    effects_frame,
    factorial_box,
    implied_arms_table,
    implied_effects,
    readings_summary,
    sd_r_grid,
    sensitivity_figure,
    sensitivity_table,
)
from analysis.replicate.report import (
    ReplicationOutputs,
    conclusion_text,
    replicate,
)
from analysis.replicate.single_case import (
    CaseResult,
    case_figure,
    case_restoration,
    case_sensitivity,
    case_sensitivity_summary,
    case_table,
)

__all__ = [
    "REPORTED",
    "claims_table",
    "assumptions_of",
    "assumptions_table",
    "central_values",
    "arm_sizes",
    "mean_inverse_baseline",
    "mean_percent_from_change",
    "change_for_percent",
    "responder_proportion",
    "change_for_responders",
    "ImpliedArms",
    "implied_arms",
    "scenarios",
    "main_scenario",
    "OUT_OF_RANGE_LIMIT",
    "LEVELS",
    "effect_rows",
    "effects_frame",
    "implied_effects",
    "implied_arms_table",
    "aggregate_route",
    "CONSISTENCY_COLUMNS",
    "consistency_table",
    "readings_summary",
    "SENSITIVITY_COLUMNS",
    "sensitivity_table",
    "sd_r_grid",
    "NULL_VALUE",
    "factorial_box",
    "conclusions_table",
    "sensitivity_figure",
    "CaseResult",
    "case_restoration",
    "case_table",
    "case_sensitivity",
    "case_sensitivity_summary",
    "case_figure",
    "TREATMENT_CODE",
    "CONTROL_CODE",
    "trial_plan_document",
    "round_to_target",
    "calibrate_trial",
    "write_replication_trial",
    "headline_check",
    "conclusion_text",
    "ReplicationOutputs",
    "replicate",
]
