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
class _Pattern:
    visits: np.ndarray  # indices of the visits observed in this pattern
    n: int  # participants with this pattern
    xx: np.ndarray  # (s, s, p, p): sum_i X_ia' X_ib
    xy: np.ndarray  # (s, s, p):   sum_i X_ia' y_ib
    yy: np.ndarray  # (s, s):      sum_i y_ia y_ib


@dataclasses.dataclass(frozen=True, eq=False)
class _Problem:
    terms: list[str]
    visits: list[str]
    patterns: list[_Pattern]
    n_obs: int
    n_participants: int
    n_by_arm: dict[str, int]  # participants in the fit per arm label
    n_dropped_missing: int
    n_dropped_covariate: int
    x: np.ndarray
    y: np.ndarray
    subject_codes: np.ndarray
    grid: pd.DataFrame  # arm, visit + one column per term: the LS-mean rows x0
    n_by_arm_visit: dict[tuple[str, str], int]
    arm_labels: tuple[str, str]  # (treatment, control)


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


def _build_problem(
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
) -> _Problem:
    if not isinstance(data, pd.DataFrame):
        raise UsageError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    covariates = list(covariates)
    if baseline_by_visit and baseline is None:
        raise UsageError("baseline_by_visit=True needs a baseline column (baseline is None).")
    predictors = ([baseline] if baseline is not None else []) + covariates
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
    frame = pd.DataFrame(
        {
            "_subject": data[subject].astype(str).to_numpy(),
            "_arm": data[arm].astype(str).to_numpy(),
            "_visit": data[visit].astype(str).to_numpy(),
            "_y": data[response].astype(float).to_numpy(),
        }
    )
    for column in predictors:
        frame[column] = data[column].to_numpy()
    unknown_visits = sorted(set(frame["_visit"]) - set(visits))
    if unknown_visits:
        raise UsageError(
            f"visit column {visit!r} holds {unknown_visits} outside visit_order {visits}; "
            "pass only post-baseline rows of one outcome, or list every visit."
        )
    unknown_arms = sorted(set(frame["_arm"]) - {treatment, control})
    if unknown_arms:
        raise UsageError(
            f"arm column {arm!r} holds {unknown_arms}; expected only {treatment!r} (treatment) "
            f"and {control!r} (control)."
        )
    duplicated = frame.duplicated(["_subject", "_visit"])
    if duplicated.any():
        first = frame.loc[duplicated, ["_subject", "_visit"]].iloc[0]
        raise ModelError(
            f"{int(duplicated.sum())} duplicated participant x visit rows (e.g. participant "
            f"{first['_subject']!r} at visit {first['_visit']!r}); pass one outcome at a time."
        )
    arms_per_subject = frame.groupby("_subject")["_arm"].nunique()
    if (arms_per_subject > 1).any():
        raise ModelError(
            f"participant {arms_per_subject[arms_per_subject > 1].index[0]!r} appears in both arms."
        )

    missing_y = frame["_y"].isna()
    n_dropped_missing = int(missing_y.sum())
    frame = frame.loc[~missing_y]
    missing_x = frame[predictors].isna().any(axis=1) if predictors else pd.Series(False, frame.index)
    n_dropped_covariate = int(missing_x.sum())
    frame = frame.loc[~missing_x]

    numeric = ["_y"] + [c for c in predictors if pd.api.types.is_numeric_dtype(frame[c])]
    for column in numeric:
        infinite = ~np.isfinite(frame[column].to_numpy(float))
        if infinite.any():
            name = response if column == "_y" else column
            raise ModelError(f"column {name!r} holds {int(infinite.sum())} infinite value(s).")
        check_numeric(frame[column].to_numpy(float), response if column == "_y" else column)
    counts = frame.groupby("_arm")["_subject"].nunique()
    for label in (treatment, control):
        if counts.get(label, 0) < 2:
            raise ModelError(
                f"arm {label!r} has {int(counts.get(label, 0))} participant(s) with an observed "
                "response; the MMRM needs at least 2 per arm."
            )
    observed = set(frame["_visit"])
    empty = [v for v in visits if v not in observed]
    if empty:
        raise ModelError(f"visit(s) {empty} have no observed response; drop them from visit_order.")

    visit_codes = pd.Categorical(frame["_visit"], categories=visits).codes.astype(int)
    frame = frame.assign(_code=visit_codes).sort_values(["_subject", "_code"], kind="stable")
    visit_codes = frame["_code"].to_numpy()

    # Design matrix, columns named as R's model.matrix names them.
    columns: dict[str, np.ndarray] = {"(Intercept)": np.ones(len(frame))}
    grid_values: dict[str, object] = {"(Intercept)": 1.0}
    if baseline is not None:
        columns[baseline] = frame[baseline].astype(float).to_numpy()
        grid_values[baseline] = float(columns[baseline].mean())
    for column in covariates:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            columns[column] = values.astype(float).to_numpy()
            grid_values[column] = float(columns[column].mean())
        else:
            levels = sorted(pd.unique(values.astype(str)))
            for level in levels[1:]:
                columns[f"{column}{level}"] = (values.astype(str) == level).to_numpy(float)
                grid_values[f"{column}{level}"] = 1.0 / len(levels)  # emmeans: equal weights
    is_treated = (frame["_arm"] == treatment).to_numpy(float)
    columns[f"{arm}{treatment}"] = is_treated
    visit_dummies = {v: (visit_codes == k).astype(float) for k, v in enumerate(visits) if k > 0}
    for v, dummy in visit_dummies.items():
        columns[f"{visit}{v}"] = dummy
    for v, dummy in visit_dummies.items():
        columns[f"{arm}{treatment}:{visit}{v}"] = is_treated * dummy
    if baseline_by_visit:
        for v, dummy in visit_dummies.items():
            columns[f"{baseline}:{visit}{v}"] = columns[baseline] * dummy
    terms = list(columns)
    x = np.column_stack([columns[t] for t in terms])
    y = frame["_y"].to_numpy(float)

    # A column is aliased when it lies in the span of the columns before it (R's convention):
    # its diagonal entry in the unpivoted QR factor vanishes.
    r_diag = np.abs(np.diag(np.linalg.qr(x, mode="r")))
    aliased = [t for t, d, norm in zip(terms, r_diag, np.linalg.norm(x, axis=0), strict=True)
               if d <= 1e-9 * max(norm, 1e-300)]
    if aliased:
        raise ModelError(
            f"the design matrix is singular: {aliased} cannot be separated from the other terms "
            "(e.g. a visit without participants in one arm, or a constant or collinear covariate)."
        )

    grid_rows = []
    for arm_label in (control, treatment):
        for k, v in enumerate(visits):
            row: dict[str, object] = {"arm": arm_label, "visit": v}
            for term in terms:
                row[term] = grid_values.get(term, 0.0)
            row[f"{arm}{treatment}"] = float(arm_label == treatment)
            if k > 0:
                row[f"{visit}{v}"] = 1.0
                row[f"{arm}{treatment}:{visit}{v}"] = float(arm_label == treatment)
                if baseline_by_visit:
                    row[f"{baseline}:{visit}{v}"] = grid_values[baseline]
            grid_rows.append(row)
    grid = pd.DataFrame(grid_rows)

    subject_codes, subject_index = pd.factorize(frame["_subject"])
    n_subjects = len(subject_index)
    masks = np.zeros(n_subjects, dtype=np.int64)
    np.bitwise_or.at(masks, subject_codes, np.left_shift(1, visit_codes).astype(np.int64))
    row_mask = masks[subject_codes]
    patterns = []
    for mask in np.unique(masks):
        pattern_visits = np.array([k for k in range(len(visits)) if mask >> k & 1])
        s = pattern_visits.size
        take = row_mask == mask  # rows of these participants: contiguous, s rows each, in order
        xg = x[take].reshape(-1, s, x.shape[1])
        yg = y[take].reshape(-1, s)
        patterns.append(
            _Pattern(
                visits=pattern_visits,
                n=xg.shape[0],
                xx=np.einsum("iap,ibq->abpq", xg, xg),
                xy=np.einsum("iap,ib->abp", xg, yg),
                yy=yg.T @ yg,
            )
        )
    n_by = frame.groupby(["_arm", "_visit"])["_subject"].nunique()
    return _Problem(
        terms=terms,
        visits=visits,
        patterns=patterns,
        n_obs=len(frame),
        n_participants=n_subjects,
        n_by_arm={str(label): int(counts.get(label, 0)) for label in (treatment, control)},
        n_dropped_missing=n_dropped_missing,
        n_dropped_covariate=n_dropped_covariate,
        x=x,
        y=y,
        subject_codes=subject_codes,
        grid=grid,
        n_by_arm_visit={(str(a), str(v)): int(n) for (a, v), n in n_by.items()},
        arm_labels=(treatment, control),
    )
