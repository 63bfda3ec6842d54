"""Building the MMRM problem: checking the long frame, visit order, the design matrix (terms
named as R names them), the LS-mean grid, and the missingness patterns with their sufficient
statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.stats.numeric import check_numeric

# --------------------------------------------------------------------------------------------
# Data: long frame -> design matrix, patterns and their sufficient statistics
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Pattern:
    visits: np.ndarray  # indices of the visits observed in this pattern
    n: int  # participants with this pattern
    xx: np.ndarray  # (s, s, p, p): sum_i X_ia' X_ib
    xy: np.ndarray  # (s, s, p):   sum_i X_ia' y_ib
    yy: np.ndarray  # (s, s):      sum_i y_ia y_ib
    group: int = 0  # covariance group of these participants


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    terms: list[str]
    visits: list[str]
    patterns: list[Pattern]
    n_obs: int
    n_participants: int
    n_by_arm: dict[str, int]  # participants in the fit per arm label
    n_dropped_missing: int
    n_dropped_covariate: int
    x: np.ndarray | None  # None: built from pattern statistics alone (no participant rows)
    y: np.ndarray | None
    subject_codes: np.ndarray | None
    grid: pd.DataFrame  # arm, visit + one column per term: the LS-mean rows x0
    n_by_arm_visit: dict[tuple[str, str], int]
    arm_labels: tuple[str, str]  # (treatment, control)
    reml: bool = True  # False: maximum likelihood
    visit_codes: np.ndarray | None = None  # visit index of each row (formula interface)
    group_codes: np.ndarray | None = None  # covariance group of each participant
    grid_matrix: np.ndarray | None = None  # grid[terms] as a float matrix
    between: np.ndarray | None = None  # without rows: columns constant within every participant


def _ordered_visits(values: pd.Series, visit_order: Sequence[str] | None) -> list[str]:
    if visit_order is not None:
        order = [str(v) for v in visit_order]
        if len(set(order)) != len(order):
            raise UsageError(f"visit_order repeats a visit: {order}.")
        return order
    if isinstance(values.dtype, pd.CategoricalDtype):  # categories present in the rows, in order
        present = set(values.dropna().astype(str))
        return [str(v) for v in values.cat.categories if str(v) in present]
    if pd.api.types.is_numeric_dtype(values):
        return [str(v) for v in np.sort(values.dropna().unique())]
    return [str(v) for v in pd.unique(values.dropna())]


def build_problem(
    data: pd.DataFrame,
    *,
    response: str,
    subject: str,
    arm: str,
    visit: str,
    baseline: str | None,
    covariates: Sequence[str],
    visit_order: Sequence[str] | None,
    treatment: str,
    control: str,
    baseline_by_visit: bool,
    by_visit: Sequence[str] = (),
    factor_levels: dict[str, Sequence[str]] | None = None,
    partial: bool = False,
) -> Problem:
    """The MMRM problem of a long frame (see :func:`~analysis.stats.models.mmrm.fit.fit_trial_mmrm`).

    ``factor_levels`` fixes the levels of factor covariates (so that partitions of one data set
    get the same columns); ``partial=True`` builds one partition's share of a problem
    (:mod:`~analysis.stats.models.mmrm.partitioned`): the checks that need every participant
    (participants per arm, observed visits, finite values and their range, aliasing) are left to
    the merged statistics.
    """
    if not isinstance(data, pd.DataFrame):
        raise UsageError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    covariates = list(covariates)
    if baseline_by_visit and baseline is None:
        raise UsageError("baseline_by_visit=True needs a baseline column (baseline is None).")
    predictors = ([baseline] if baseline is not None else []) + covariates
    # numeric predictors with one slope per visit (x:visit); baseline_by_visit is baseline:visit
    by_visit = list(dict.fromkeys(([baseline] if baseline_by_visit else []) + list(by_visit)))
    outside = [c for c in by_visit if c not in predictors]
    if outside:
        raise UsageError(f"{outside} interact with visit but are not the baseline or a covariate "
                         f"({predictors}).")
    needed = [response, subject, arm, visit, *predictors]
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if missing:
        raise UsageError(f"the data have no column {missing!r} (needed by the MMRM).")
    if treatment == control:
        raise UsageError(f"treatment and control must differ (both are {treatment!r}).")
    if not pd.api.types.is_numeric_dtype(data[response]):
        raise UsageError(f"the response column {response!r} is not numeric.")
    if baseline is not None and not pd.api.types.is_numeric_dtype(data[baseline]):
        raise UsageError(f"the baseline column {baseline!r} is not numeric.")

    visits = _ordered_visits(data[visit], visit_order)
    # Plain NumPy arrays and integer codes throughout (pandas string columns and groupbys cost
    # more than the whole REML fit); rows end sorted by participant label, then visit order.
    subject_all = data[subject].astype(str).to_numpy(object)
    arm_all = data[arm].astype(str).to_numpy(object)
    visit_all = data[visit].astype(str).to_numpy(object)
    y_all = data[response].astype(float).to_numpy()
    predictor_all = {column: data[column] for column in predictors}
    visit_all_codes = np.full(visit_all.size, -1)
    for k, label in enumerate(visits):
        visit_all_codes[visit_all == label] = k
    if (visit_all_codes < 0).any():
        unknown_visits = sorted(set(visit_all[visit_all_codes < 0]))
        raise UsageError(
            f"visit column {visit!r} holds {unknown_visits} outside visit_order {visits}; "
            "pass only post-baseline rows of one outcome, or list every visit."
        )
    unknown_arms = sorted(set(arm_all) - {treatment, control})
    if unknown_arms:
        raise UsageError(
            f"arm column {arm!r} holds {unknown_arms}; expected only {treatment!r} (treatment) "
            f"and {control!r} (control)."
        )
    # sorted labels, as np.unique gives them (code point order), without NumPy's string sort
    subject_all_codes, subject_labels = pd.factorize(subject_all, sort=True)
    subject_labels = np.asarray(subject_labels, dtype=object)
    cell = subject_all_codes * len(visits) + visit_all_codes
    _, first_of_cell, cell_count = np.unique(cell, return_index=True, return_counts=True)
    if (cell_count > 1).any():
        seen = np.zeros(len(cell), dtype=bool)
        seen[first_of_cell] = True
        first = int(np.flatnonzero(~seen)[0])
        raise ModelError(
            f"{int((cell_count - 1).sum())} duplicated participant x visit rows (e.g. "
            f"participant {subject_all[first]!r} at visit {visit_all[first]!r}); pass one "
            "outcome at a time."
        )
    treated_all = arm_all == treatment
    arm_count = np.zeros((len(subject_labels), 2), dtype=int)
    np.add.at(arm_count, (subject_all_codes, treated_all.astype(int)), 1)
    if ((arm_count > 0).sum(axis=1) > 1).any():
        both = subject_labels[np.flatnonzero((arm_count > 0).sum(axis=1) > 1)[0]]
        raise ModelError(f"participant {both!r} appears in both arms.")

    missing_y = np.isnan(y_all)
    n_dropped_missing = int(missing_y.sum())
    keep = ~missing_y
    if predictors:
        missing_x = np.zeros(len(y_all), dtype=bool)
        for column in predictors:
            missing_x |= predictor_all[column].isna().to_numpy()
        missing_x &= keep
        n_dropped_covariate = int(missing_x.sum())
        keep &= ~missing_x
    else:
        n_dropped_covariate = 0

    for column in [] if partial else ["_y"] + [c for c in predictors
                                               if pd.api.types.is_numeric_dtype(predictor_all[c])]:
        values = y_all[keep] if column == "_y" else predictor_all[column].to_numpy()[keep]
        values = values.astype(float)
        infinite = ~np.isfinite(values)
        name = response if column == "_y" else column
        if infinite.any():
            raise ModelError(f"column {name!r} holds {int(infinite.sum())} infinite value(s).")
        check_numeric(values, name)
    kept_treated = treated_all[keep]
    kept_subjects = subject_all_codes[keep]
    counts = {treatment: np.unique(kept_subjects[kept_treated]).size,
              control: np.unique(kept_subjects[~kept_treated]).size}
    for label in () if partial else (treatment, control):
        if counts[label] < 2:
            raise ModelError(
                f"arm {label!r} has {int(counts[label])} participant(s) with an observed "
                "response; the MMRM needs at least 2 per arm."
            )
    observed_visits = np.bincount(visit_all_codes[keep], minlength=len(visits))
    empty = [v for k, v in enumerate(visits) if observed_visits[k] == 0]
    if empty and not partial:
        raise ModelError(f"visit(s) {empty} have no observed response; drop them from visit_order.")

    rows_kept = np.flatnonzero(keep)
    order = rows_kept[np.lexsort((visit_all_codes[rows_kept], subject_all_codes[rows_kept]))]
    visit_codes = visit_all_codes[order]
    frame = {column: predictor_all[column].to_numpy()[order] for column in predictors}
    n_by = {}
    for treated_flag, arm_label in ((False, control), (True, treatment)):
        per_visit = np.bincount(visit_codes[treated_all[order] == treated_flag],
                                minlength=len(visits))
        n_by.update({(arm_label, v): int(per_visit[k]) for k, v in enumerate(visits)
                     if per_visit[k] > 0})

    # Design matrix, columns named as R's model.matrix names them.
    columns: dict[str, np.ndarray] = {"(Intercept)": np.ones(order.size)}
    grid_values: dict[str, object] = {"(Intercept)": 1.0}
    if baseline is not None:
        columns[baseline] = frame[baseline].astype(float)
        grid_values[baseline] = float(columns[baseline].mean()) if order.size else np.nan
    for column in covariates:
        fixed = factor_levels.get(column) if factor_levels is not None else None
        if fixed is None and pd.api.types.is_numeric_dtype(frame[column].dtype):
            columns[column] = frame[column].astype(float)
            grid_values[column] = float(columns[column].mean()) if order.size else np.nan
        else:
            values = pd.Series(frame[column]).astype(str).to_numpy(object)
            levels = sorted(pd.unique(values)) if fixed is None else list(fixed)
            if fixed is not None and not set(values) <= set(levels):
                raise UsageError(f"covariate {column!r} holds {sorted(set(values) - set(levels))} "
                                 f"outside the levels given for it ({levels}).")
            for level in levels[1:]:
                columns[f"{column}{level}"] = (values == level).astype(float)
                grid_values[f"{column}{level}"] = 1.0 / len(levels)  # emmeans: equal weights
    is_treated = treated_all[order].astype(float)
    columns[f"{arm}{treatment}"] = is_treated
    visit_dummies = {v: (visit_codes == k).astype(float) for k, v in enumerate(visits) if k > 0}
    for v, dummy in visit_dummies.items():
        columns[f"{visit}{v}"] = dummy
    for v, dummy in visit_dummies.items():
        columns[f"{arm}{treatment}:{visit}{v}"] = is_treated * dummy
    for column in by_visit:
        if column not in columns:
            raise UsageError(f"{column}:{visit} needs a numeric {column!r}, not a factor.")
        for v, dummy in visit_dummies.items():
            columns[f"{column}:{visit}{v}"] = columns[column] * dummy
    terms = list(columns)
    x = np.column_stack([columns[t] for t in terms])
    y = y_all[order]

    # A column is aliased when it lies in the span of the columns before it (R's convention):
    # its diagonal entry in the unpivoted QR factor vanishes.
    if partial:
        aliased = []
    else:
        r_diag = np.abs(np.diag(np.linalg.qr(x, mode="r")))
        aliased = [t for t, d, norm in zip(terms, r_diag, np.linalg.norm(x, axis=0), strict=True)
                   if d <= 1e-9 * max(norm, 1e-300)]
    if aliased:
        raise ModelError(
            f"the design matrix is singular: {aliased} cannot be separated from the other terms "
            "(e.g. a visit without participants in one arm, or a constant or collinear covariate)."
        )

    grid, x_grid = lsmean_grid(terms, visits, grid_values, arm=arm, visit=visit, treatment=treatment,
                               control=control, by_visit=by_visit)
    subject_codes, subject_index = pd.factorize(subject_all_codes[order])
    n_subjects = len(subject_index)
    patterns = missingness_patterns(x, y, subject_codes, visit_codes, len(visits))
    return Problem(
        terms=terms,
        visits=visits,
        patterns=patterns,
        n_obs=int(order.size),
        n_participants=n_subjects,
        n_by_arm={str(label): int(counts[label]) for label in (treatment, control)},
        n_dropped_missing=n_dropped_missing,
        n_dropped_covariate=n_dropped_covariate,
        x=x,
        y=y,
        subject_codes=subject_codes,
        grid=grid,
        n_by_arm_visit={(str(a), str(v)): int(n) for (a, v), n in n_by.items()},
        arm_labels=(treatment, control),
        grid_matrix=x_grid,
    )


def lsmean_grid(terms: list[str], visits: list[str], grid_values: dict[str, object], *, arm: str, visit: str,
                treatment: str, control: str, by_visit: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The LS-mean grid (control visits, then treatment visits, one row each) as a frame (arm,
    visit, one column per term) and as a read-only matrix; ``grid_values`` holds the value of each
    term that is not arm or visit (intercept 1, numeric covariates their mean, factor dummies
    1/levels)."""
    t = len(visits)
    term_index = {term: j for j, term in enumerate(terms)}
    x_grid = np.tile([float(grid_values.get(term, 0.0)) for term in terms], (2 * t, 1))
    x_grid[:, term_index[f"{arm}{treatment}"]] = np.repeat([0.0, 1.0], t)
    for k, v in enumerate(visits[1:], start=1):
        for row in (k, t + k):
            x_grid[row, term_index[f"{visit}{v}"]] = 1.0
            for column in by_visit:
                x_grid[row, term_index[f"{column}:{visit}{v}"]] = grid_values[column]
        x_grid[t + k, term_index[f"{arm}{treatment}:{visit}{v}"]] = 1.0
    grid = pd.DataFrame({"arm": [control] * t + [treatment] * t, "visit": list(visits) * 2,
                         **{term: x_grid[:, j] for j, term in enumerate(terms)}})
    x_grid.setflags(write=False)
    return grid, x_grid


def crossproducts(patterns: list[Pattern]) -> tuple[np.ndarray, np.ndarray]:
    """``X'X`` and ``X'y`` of all rows, from the patterns' statistics (the diagonal blocks
    ``sum_i X_ia' X_ia``, ``sum_i X_ia' y_ia`` summed over visits a and patterns)."""
    p = patterns[0].xx.shape[-1] if patterns else 0
    xtx, xty = np.zeros((p, p)), np.zeros(p)
    for pattern in patterns:
        xtx += np.einsum("aapq->pq", pattern.xx)
        xty += np.einsum("aap->p", pattern.xy)
    return xtx, xty


def missingness_patterns(x: np.ndarray, y: np.ndarray, subject_codes: np.ndarray, visit_codes: np.ndarray,
              n_visits: int, group_codes: np.ndarray | None = None) -> list[Pattern]:
    """Missingness patterns (per covariance group) with their sufficient statistics. Rows must
    be sorted by participant, then visit; ``subject_codes`` number the participants 0, 1, ..."""
    n_subjects = int(subject_codes.max()) + 1 if subject_codes.size else 0
    masks = np.zeros(n_subjects, dtype=np.int64)
    np.bitwise_or.at(masks, subject_codes, np.left_shift(1, visit_codes).astype(np.int64))
    groups = np.zeros(n_subjects, dtype=np.int64)
    if group_codes is not None:  # one code per participant
        groups[:] = group_codes
    key = masks * 4096 + groups
    row_key = key[subject_codes]
    patterns = []
    for value in np.unique(key):
        mask, group = int(value // 4096), int(value % 4096)
        pattern_visits = np.array([k for k in range(n_visits) if mask >> k & 1])
        s = pattern_visits.size
        take = row_key == value  # rows of these participants: contiguous, s rows each, in order
        p = x.shape[1]
        xg = x[take].reshape(-1, s * p)  # one row per participant: X_i1, ..., X_is side by side
        yg = y[take].reshape(-1, s)
        patterns.append(
            Pattern(
                visits=pattern_visits,
                n=xg.shape[0],
                xx=(xg.T @ xg).reshape(s, p, s, p).transpose(0, 2, 1, 3).copy(),
                xy=(xg.T @ yg).reshape(s, p, s).transpose(0, 2, 1).copy(),
                yy=yg.T @ yg,
                group=group,
            )
        )
    return patterns
