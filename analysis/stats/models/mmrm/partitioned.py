"""The trial MMRM from per-partition sufficient statistics (the Dask engine's map, reduce, fit).

The REML fit reads the data only through the per-missingness-pattern sums
:math:`\\sum_i X_{i,a}'X_{i,b}`, :math:`\\sum_i X_{i,a}'y_{i,b}`, :math:`\\sum_i y_{i,a}y_{i,b}` and
counts (:mod:`~analysis.stats.models.mmrm`), and sums over disjoint sets of participants add up. So
a data set split by participant is fitted in three steps:

1. :func:`pattern_levels` on each part and :func:`merge_pattern_levels`: which covariates are
   factors and their levels, so every part builds the same design columns
   (:meth:`PatternDesign.with_levels`);
2. :func:`pattern_statistics` on each part (the rows used, patterns keyed by visit mask and
   covariance group, counts, sums of the numeric predictors for the LS-mean grid, the largest
   magnitudes and infinite values for the numeric checks, which columns are constant within
   every participant), then :func:`merge_pattern_statistics`;
3. :func:`fit_mmrm_from_patterns`: the checks that need every participant (two per arm, every
   visit observed, finite and representable values, no aliased column), then the fit of
   :func:`~analysis.stats.models.mmrm.fit.fit_trial_mmrm` on a
   :class:`~analysis.stats.models.mmrm.design.Problem` with no participant rows.

The result equals :func:`~analysis.stats.models.mmrm.fit.fit_trial_mmrm` on the whole frame up to
the rounding of the sums (1e-10 relative, tested). Differences: the aliasing check is made on
:math:`X'X` (a column is aliased when its squared residual norm on the columns before it is below
1e-10 of its squared norm, R's order, instead of 1e-9 of the norm in the QR factor of X, which
squaring would lose in rounding); the starting OLS coefficients solve the normal equations; and
the empirical (sandwich) covariance, which needs each participant's residuals, is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg

from analysis.core.errors import ModelError, UsageError
from analysis.stats.models.mmrm.design import (
    Pattern,
    Problem,
    build_problem,
    crossproducts,
    lsmean_grid,
)
from analysis.stats.numeric import check_numeric

_GROUP_BASE = 4096  # pattern key = visit mask * 4096 + group, as missingness_patterns orders them
ALIAS_TOLERANCE = 1e-10


@dataclasses.dataclass(frozen=True)
class PatternDesign:
    """What every part must share to give the same design columns: the columns, the visit order,
    the arm labels, the numeric terms with one slope per visit, and (once merged) the levels of
    the factor covariates (``factor_levels``, ``None`` before :meth:`with_levels`).

    Examples
    --------
    >>> PatternDesign(visits=("w4", "w8"), covariates=("site",)).with_levels({"site": ("A", "B")}).levels
    {'site': ('A', 'B')}
    """

    visits: tuple[str, ...]
    response: str = "value"
    subject: str = "participant_id"
    arm: str = "arm"
    visit: str = "visit"
    baseline: str | None = "baseline"
    covariates: tuple[str, ...] = ()
    treatment: str = "treatment"
    control: str = "control"
    by_visit: tuple[str, ...] = ()
    factor_levels: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    @property
    def levels(self) -> dict[str, tuple[str, ...]]:
        return dict(self.factor_levels or ())

    def with_levels(self, levels: dict[str, Sequence[str]]) -> PatternDesign:
        """The design with the factor covariates' levels fixed (the others are numeric)."""
        unknown = sorted(set(levels) - set(self.covariates))
        if unknown:
            raise UsageError(f"levels given for {unknown}, which are not covariates ({list(self.covariates)}).")
        fixed = tuple((c, tuple(str(v) for v in levels[c])) for c in self.covariates if c in levels)
        return dataclasses.replace(self, factor_levels=fixed)

    @property
    def numeric(self) -> list[str]:
        """The numeric predictors (baseline first), whose means make the LS-mean grid."""
        levels = self.levels
        return ([self.baseline] if self.baseline is not None else []) + [c for c in self.covariates if c not in levels]

    def _build(self, frame: pd.DataFrame, factor_levels=None, partial: bool = True) -> Problem:
        return build_problem(
            frame, response=self.response, subject=self.subject, arm=self.arm, visit=self.visit,
            baseline=self.baseline, covariates=list(self.covariates), visit_order=list(self.visits),
            treatment=self.treatment, control=self.control, baseline_by_visit=False,
            by_visit=list(self.by_visit), factor_levels=factor_levels, partial=partial,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class PatternStatistics:
    """One part's (or the merged) sufficient statistics of the trial MMRM.

    ``patterns`` maps the key ``visit mask * 4096 + group`` to its
    :class:`~analysis.stats.models.mmrm.design.Pattern`; ``sums``, ``top`` and ``infinite`` hold,
    per numeric predictor (and ``top``/``infinite`` also the response), the sum over the rows
    used, the largest finite magnitude and the count of infinite values; ``between`` flags the
    columns constant within every participant (SAS's between-participant effects).
    """

    terms: tuple[str, ...]
    patterns: dict[int, Pattern]
    n_obs: int
    n_by_arm: dict[str, int]
    n_by_arm_visit: dict[tuple[str, str], int]
    n_dropped_missing: int
    n_dropped_covariate: int
    sums: dict[str, float]
    top: dict[str, float]
    infinite: dict[str, int]
    between: np.ndarray


def _kept(frame: pd.DataFrame, design: PatternDesign) -> np.ndarray:
    """The rows build_problem keeps: an observed response and every predictor present."""
    keep = ~np.isnan(frame[design.response].astype(float).to_numpy())
    for column in ([design.baseline] if design.baseline is not None else []) + list(design.covariates):
        keep &= ~frame[column].isna().to_numpy()
    return keep


def pattern_levels(frame: pd.DataFrame, design: PatternDesign) -> dict[str, tuple[bool, set[str]]]:
    """Pass 1 on one part: per covariate, whether it is numeric and its values (as text) among the
    rows the MMRM uses (response and every predictor present); ``{}`` when the part uses no row.

    Examples
    --------
    >>> import pandas as pd
    >>> part = pd.DataFrame({"value": [1.0, None, 2.0], "baseline": [0.0, 1.0, 2.0],
    ...                      "site": ["B", "C", "A"], "age": [30, 40, 50]})
    >>> found = pattern_levels(part, PatternDesign(visits=("w4",), covariates=("site", "age")))
    >>> found["site"][0], sorted(found["site"][1]), found["age"]
    (False, ['A', 'B'], (True, set()))
    """
    needed = [design.response, *([design.baseline] if design.baseline is not None else []), *design.covariates]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise UsageError(f"the data have no column {missing!r} (needed by the MMRM).")
    if not pd.api.types.is_numeric_dtype(frame[design.response]):
        raise UsageError(f"the response column {design.response!r} is not numeric.")
    keep = _kept(frame, design)
    if not keep.any():
        return {}
    out = {}
    for column in design.covariates:
        values = frame[column].to_numpy()
        if pd.api.types.is_numeric_dtype(values.dtype):
            out[column] = (True, set())
        else:
            out[column] = (False, set(pd.Series(values[keep]).astype(str)))
    return out


def merge_pattern_levels(parts: Sequence[dict[str, tuple[bool, set[str]]]]) -> dict[str, tuple[str, ...]]:
    """The factor covariates and their sorted levels over all parts (what
    :meth:`PatternDesign.with_levels` takes).

    Examples
    --------
    >>> merge_pattern_levels([{"site": (False, {"B"})}, {}, {"site": (False, {"A", "B"})}])
    {'site': ('A', 'B')}
    """
    numeric: dict[str, set[bool]] = {}
    levels: dict[str, set[str]] = {}
    for part in parts:
        for column, (is_numeric, values) in part.items():
            numeric.setdefault(column, set()).add(is_numeric)
            levels.setdefault(column, set()).update(values)
    mixed = [c for c, kinds in numeric.items() if len(kinds) > 1]
    if mixed:
        raise ModelError(f"covariate(s) {mixed} are numeric in some parts of the data and not in others; "
                         "give each one type in every part.")
    return {c: tuple(sorted(levels[c])) for c, kinds in numeric.items() if kinds == {False}}


def pattern_statistics(frame: pd.DataFrame, design: PatternDesign) -> PatternStatistics:
    """Pass 2 on one part (participants disjoint from the other parts'): its
    :class:`PatternStatistics`, built by the same code as the whole-frame fit.

    Examples
    --------
    >>> import pandas as pd
    >>> part = pd.DataFrame({"participant_id": ["a", "a", "b"], "arm": ["treatment"] * 2 + ["control"],
    ...                      "visit": ["w4", "w8", "w4"], "value": [1.0, 2.0, 3.0], "baseline": [0.5, 0.5, 1.0]})
    >>> stats = pattern_statistics(part, PatternDesign(visits=("w4", "w8")).with_levels({}))
    >>> sorted(stats.patterns), [p.n for p in stats.patterns.values()], stats.sums
    ([4096, 12288], [1, 1], {'baseline': 2.0})
    """
    if design.factor_levels is None:
        raise UsageError("pattern_statistics needs the factor levels of every part: "
                         "design.with_levels(merge_pattern_levels([...pattern_levels(part, design)...])).")
    problem = design._build(frame, design.levels, partial=True)
    index = {t: j for j, t in enumerate(problem.terms)}
    columns = {name: problem.x[:, index[name]] for name in design.numeric}
    checked = {design.response: problem.y, **columns}
    finite = {name: v[np.isfinite(v)] for name, v in checked.items()}
    return PatternStatistics(
        terms=tuple(problem.terms),
        patterns={int(np.sum(np.left_shift(1, p.visits))) * _GROUP_BASE + p.group: p for p in problem.patterns},
        n_obs=problem.n_obs, n_by_arm=dict(problem.n_by_arm), n_by_arm_visit=dict(problem.n_by_arm_visit),
        n_dropped_missing=problem.n_dropped_missing, n_dropped_covariate=problem.n_dropped_covariate,
        sums={name: float(v.sum()) for name, v in columns.items()},
        top={name: float(np.abs(v).max()) if v.size else 0.0 for name, v in finite.items()},
        infinite={name: int(np.isinf(v).sum()) for name, v in checked.items()},
        between=_constant_within(problem),
    )


def _constant_within(problem: Problem) -> np.ndarray:
    from analysis.stats.models.mmrm.inference import _between_columns

    return _between_columns(problem)


def _add(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = out[key] + value if key in out else value
    return out


def merge_pattern_statistics(parts: Sequence[PatternStatistics]) -> PatternStatistics:
    """The statistics of the union of the parts (their participants must be disjoint): pattern
    sums added key by key, in the parts' order (so reruns give the same bits), counts and sums
    added, largest magnitudes maximised, between-participant flags and-ed.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"participant_id": ["a", "a", "b", "c"], "arm": ["treatment"] * 2 + ["control"] * 2,
    ...                      "visit": ["w4", "w8", "w4", "w4"], "value": [1.0, 2.0, 3.0, 4.0],
    ...                      "baseline": [0.5, 0.5, 1.0, 2.0]})
    >>> design = PatternDesign(visits=("w4", "w8")).with_levels({})
    >>> merged = merge_pattern_statistics([pattern_statistics(rows[:3], design), pattern_statistics(rows[3:], design)])
    >>> {key: p.n for key, p in merged.patterns.items()}, merged.n_obs, merged.sums
    ({4096: 2, 12288: 1}, 4, {'baseline': 4.0})
    """
    if not parts:
        raise UsageError("merge_pattern_statistics needs at least one part.")
    terms = parts[0].terms
    if any(part.terms != terms for part in parts):
        raise UsageError("the parts were built with different design columns; build them from one PatternDesign.")
    patterns: dict[int, Pattern] = {}
    for part in parts:
        for key, p in part.patterns.items():
            held = patterns.get(key)
            patterns[key] = p if held is None else Pattern(
                visits=held.visits, n=held.n + p.n, xx=held.xx + p.xx, xy=held.xy + p.xy, yy=held.yy + p.yy,
                group=held.group)
    top: dict[str, float] = {}
    for part in parts:
        for name, value in part.top.items():
            top[name] = max(top.get(name, 0.0), value)
    out = parts[0]
    for part in parts[1:]:
        out = dataclasses.replace(
            out, n_obs=out.n_obs + part.n_obs, n_by_arm=_add(out.n_by_arm, part.n_by_arm),
            n_by_arm_visit=_add(out.n_by_arm_visit, part.n_by_arm_visit),
            n_dropped_missing=out.n_dropped_missing + part.n_dropped_missing,
            n_dropped_covariate=out.n_dropped_covariate + part.n_dropped_covariate,
            sums=_add(out.sums, part.sums), infinite=_add(out.infinite, part.infinite),
            between=out.between & part.between)
    return dataclasses.replace(out, patterns={key: patterns[key] for key in sorted(patterns)}, top=top)


def aliased_terms(xtx: np.ndarray, terms: Sequence[str], tolerance: float = ALIAS_TOLERANCE) -> list[str]:
    """Columns in the span of the columns before them (R's convention), from ``X'X``.

    Column j is aliased when :math:`1 - c_{jK} C_{KK}^{-1} c_{Kj} \\le` ``tolerance``, with C the
    cross-products scaled to a unit diagonal and K the non-aliased columns before j: the squared
    diagonal entry of the QR factor of X over the squared column norm (Golub and Van Loan, 2013,
    section 5.2). A zero column is aliased.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.column_stack([np.ones(4), [1.0, 2, 3, 4], [2.0, 4, 6, 8]])
    >>> aliased_terms(x.T @ x, ["(Intercept)", "a", "b"])
    ['b']
    """
    diagonal = np.diag(xtx).astype(float)
    scale = np.where(diagonal > 0, 1.0 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0)), 0.0)
    c = xtx * np.outer(scale, scale)
    kept: list[int] = []
    out = []
    for j, term in enumerate(terms):
        if diagonal[j] <= 0:
            out.append(term)
            continue
        residual = c[j, j]
        if kept:
            block = c[np.ix_(kept, kept)]
            residual -= float(c[kept, j] @ linalg.solve(block, c[kept, j], assume_a="pos"))
        if residual <= tolerance:
            out.append(term)
        else:
            kept.append(j)
    return out


def problem_from_statistics(statistics: PatternStatistics, design: PatternDesign) -> Problem:
    """A :class:`~analysis.stats.models.mmrm.design.Problem` with no participant rows, after the
    checks of :func:`~analysis.stats.models.mmrm.design.build_problem` that need every
    participant, in its order (finite and representable values, two participants per arm, every
    visit observed, no aliased column)."""
    for name in [design.response, *design.numeric]:
        if statistics.infinite.get(name, 0):
            raise ModelError(f"column {name!r} holds {statistics.infinite[name]} infinite value(s).")
        check_numeric(np.array([statistics.top.get(name, 0.0)]), name)
    for label in (design.treatment, design.control):
        if statistics.n_by_arm.get(label, 0) < 2:
            raise ModelError(
                f"arm {label!r} has {int(statistics.n_by_arm.get(label, 0))} participant(s) with an observed "
                "response; the MMRM needs at least 2 per arm."
            )
    visits = list(design.visits)
    observed = {v: sum(n for (_, visit), n in statistics.n_by_arm_visit.items() if visit == v) for v in visits}
    empty = [v for v in visits if observed[v] == 0]
    if empty:
        raise ModelError(f"visit(s) {empty} have no observed response; drop them from visit_order.")
    patterns = list(statistics.patterns.values())
    terms = list(statistics.terms)
    aliased = aliased_terms(crossproducts(patterns)[0], terms)
    if aliased:
        raise ModelError(
            f"the design matrix is singular: {aliased} cannot be separated from the other terms "
            "(e.g. a visit without participants in one arm, or a constant or collinear covariate)."
        )
    grid_values: dict[str, object] = {"(Intercept)": 1.0}
    for name in design.numeric:
        grid_values[name] = statistics.sums[name] / statistics.n_obs
    for column, levels in design.levels.items():
        for level in levels[1:]:
            grid_values[f"{column}{level}"] = 1.0 / len(levels)
    grid, x_grid = lsmean_grid(terms, visits, grid_values, arm=design.arm, visit=design.visit,
                               treatment=design.treatment, control=design.control, by_visit=list(design.by_visit))
    return Problem(
        terms=terms, visits=visits, patterns=patterns, n_obs=statistics.n_obs,
        n_participants=sum(p.n for p in patterns), n_by_arm=dict(statistics.n_by_arm),
        n_dropped_missing=statistics.n_dropped_missing, n_dropped_covariate=statistics.n_dropped_covariate,
        x=None, y=None, subject_codes=None, grid=grid, n_by_arm_visit=dict(statistics.n_by_arm_visit),
        arm_labels=(design.treatment, design.control), grid_matrix=x_grid, between=statistics.between,
    )


def fit_mmrm_from_patterns(
    statistics: PatternStatistics,
    design: PatternDesign,
    *,
    covariance: str = "unstructured",
    fallback: Sequence[str] = (),
    ci_level: float = 0.95,
    max_iterations: int = 200,
    df: str = "satterthwaite",
    visit_times: Sequence[float] | None = None,
):
    """Fit the trial MMRM (:func:`~analysis.stats.models.mmrm.fit.fit_trial_mmrm`'s model, options
    and result) from merged :class:`PatternStatistics`.

    Every df method works from the patterns: Satterthwaite, Kenward-Roger (and -linear: their
    pieces are sums over patterns), between-within (the between-participant columns from the
    merged flags, their rank from :math:`X_b'X_b`) and residual.

    Returns
    -------
    MmrmResult

    Raises
    ------
    ModelError
        As :func:`~analysis.stats.models.mmrm.fit.fit_trial_mmrm` (fewer than 2 participants per
        arm, an unobserved visit, an aliased column, non-convergence ...).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> long = pd.DataFrame({"participant_id": np.repeat([f"P{i:02d}" for i in range(30)], 2),
    ...                      "arm": np.repeat(["control", "treatment"], 30), "visit": np.tile(["w4", "w8"], 30),
    ...                      "baseline": np.repeat(rng.normal(50, 5, 30), 2)})
    >>> long["value"] = 0.5 * long["baseline"] + rng.normal(0, 3, 60)
    >>> design = PatternDesign(visits=("w4", "w8"))
    >>> parts = [long[:20], long[20:]]
    >>> design = design.with_levels(merge_pattern_levels([pattern_levels(p, design) for p in parts]))
    >>> merged = merge_pattern_statistics([pattern_statistics(p, design) for p in parts])
    >>> split = fit_mmrm_from_patterns(merged, design)
    >>> from analysis.stats.models.mmrm import fit_trial_mmrm
    >>> whole = fit_trial_mmrm(long, visit_order=["w4", "w8"])
    >>> bool(np.allclose(split.contrasts["estimate"], whole.contrasts["estimate"], rtol=1e-10, atol=0))
    True
    """
    from analysis.stats.models.mmrm.fit import fit_options, fit_problem

    covariance, fallback, df = fit_options(covariance, fallback, ci_level, max_iterations, df)
    problem = problem_from_statistics(statistics, design)
    return fit_problem(problem, covariance, fallback, float(ci_level), int(max_iterations), df,
                       visit_times)
