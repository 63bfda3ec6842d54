"""The formula interface of the MMRM (R ``mmrm`` syntax): splitting the covariance term
``STRUCT(TIME | SUBJECT)`` or ``STRUCT(TIME | GROUP / SUBJECT)`` off the formula, building the
fixed-effects design with ``formulaic`` (terms renamed as R's ``model.matrix`` names them), the
missingness patterns per covariance group, and emmeans' reference grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.stats.models.mmrm.covariance import ALIASES, Covariance, structure_name
from analysis.stats.models.mmrm.design import Problem, missingness_patterns
from analysis.stats.numeric import check_numeric

_COV_TERM = re.compile(
    r"(?:^|\+)\s*([A-Za-z_][A-Za-z0-9_.()]*?)\s*\(\s*([^|()+]+?)\s*\|\s*"
    r"(?:([^|()/+]+?)\s*/\s*)?([^|()/+]+?)\s*\)\s*(?=\+|$)"
)


@dataclasses.dataclass(frozen=True)
class _Formula:
    response: str
    fixed: str  # right-hand side of the fixed effects
    structure: str  # canonical structure name
    time: str
    subject: str
    group: str | None


def _parse_formula(formula: str) -> _Formula:
    if not isinstance(formula, str) or "~" not in formula:
        raise UsageError(f"the formula must read 'RESPONSE ~ TERMS + STRUCT(TIME | SUBJECT)', "
                         f"not {formula!r}.")
    lhs, rhs = (part.strip() for part in formula.split("~", 1))
    matches = list(_COV_TERM.finditer(rhs))
    if len(matches) != 1:
        raise UsageError(
            "the formula needs exactly one covariance term such as us(AVISIT | USUBJID) or "
            f"us(AVISIT | ARMCD / USUBJID); structures: {', '.join(sorted(set(ALIASES)))}.")
    match = matches[0]
    try:
        structure = structure_name(match.group(1))
    except ValueError:
        raise UsageError(f"unknown covariance structure {match.group(1)!r}; choose from "
                         f"{', '.join(sorted(set(ALIASES)))}.") from None
    fixed = (rhs[:match.start()] + rhs[match.end():]).strip().strip("+").strip()
    fixed = re.sub(r"\+\s*\+", "+", fixed) or "1"
    if not lhs:
        raise UsageError("the formula has no response on the left of '~'.")
    return _Formula(response=lhs, fixed=fixed, structure=structure, time=match.group(2).strip(),
                    subject=match.group(4).strip(),
                    group=match.group(3).strip() if match.group(3) else None)


def _r_name(column: str) -> str:
    """formulaic's ``ARMCD[T.TRT]:AVISIT[T.VIS2]`` -> R's ``ARMCDTRT:AVISITVIS2``."""
    if column == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[T\.(.*?)\]", r"\1", column)


@dataclasses.dataclass(frozen=True, eq=False)
class FormulaProblem:
    parsed: _Formula
    problem: Problem
    covariance: Covariance
    frame: pd.DataFrame  # the rows used, sorted by subject and time, factors as categoricals
    model_spec: object  # formulaic ModelSpec of the fixed effects
    factors: dict[str, list[str]]  # factor variable -> levels (first = reference)
    numeric: dict[str, float]  # numeric variable -> mean over the rows used
    between: np.ndarray  # per fixed-effect column: True when constant within every subject
    n_dropped: int


def _levels(values: pd.Series, given: Sequence[str] | None, reference: str | None) -> list[str]:
    present = [str(v) for v in pd.unique(values.dropna().astype(str))]
    if given is not None:
        order = [str(v) for v in given]
        unknown = sorted(set(present) - set(order))
        if unknown:
            raise UsageError(f"values {unknown} are missing from the given order {order}.")
        levels = [v for v in order if v in set(present)]
    elif isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(v) for v in values.cat.categories if str(v) in set(present)]
    else:
        levels = sorted(present)
    if reference is not None and reference in levels:
        levels = [reference] + [v for v in levels if v != reference]
    return levels


def _categorical(values: pd.Series, levels: list[str]) -> pd.Categorical:
    """``pd.Categorical(values.astype(str), categories=levels)``, from codes found by comparing
    the labels (much faster than pandas' own lookup for a few levels)."""
    text = values.astype(str).to_numpy(object)
    codes = np.full(text.size, -1, dtype=np.int64)
    for k, level in enumerate(levels):
        codes[text == level] = k
    return pd.Categorical.from_codes(codes, categories=levels)


def build_formula_problem(formula: str, data: pd.DataFrame, *, reml: bool,
                           visit_order: Sequence[str] | None, reference: str | None,
                           ) -> FormulaProblem:
    import formulaic

    if not isinstance(data, pd.DataFrame):
        raise UsageError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    parsed = _parse_formula(formula)
    try:
        fixed_formula = formulaic.Formula(parsed.fixed)
    except Exception as error:  # formulaic's parse errors
        raise UsageError(f"cannot read the fixed effects {parsed.fixed!r}: {error}") from None
    variables = sorted(set(fixed_formula.required_variables))
    needed = list(dict.fromkeys([parsed.response, parsed.subject, parsed.time,
                                 *([parsed.group] if parsed.group else []), *variables]))
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise UsageError(f"the data have no column {missing!r} (named in the formula).")
    if not pd.api.types.is_numeric_dtype(data[parsed.response]):
        raise UsageError(f"the response column {parsed.response!r} is not numeric.")
    frame = data[needed]  # a new frame (column selection takes a copy)
    complete = frame.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    frame = frame.loc[complete].reset_index(drop=True) if n_dropped else frame.reset_index(drop=True)
    if frame.empty:
        raise ModelError("no row has the response and every variable of the formula.")

    spatial = parsed.structure == "spatial_exponential"
    time_numeric = pd.api.types.is_numeric_dtype(frame[parsed.time])
    if spatial and not time_numeric:
        raise UsageError(f"sp_exp needs a numeric time; {parsed.time!r} is not numeric.")
    factors: dict[str, list[str]] = {}
    numeric: dict[str, float] = {}
    for name in variables:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not isinstance(column.dtype,
                                                                   pd.CategoricalDtype):
            check_numeric(column.to_numpy(float), name)
            numeric[name] = float(column.astype(float).mean())
            continue
        given = visit_order if name == parsed.time else None
        factors[name] = _levels(column, given, reference)
        frame[name] = _categorical(column, factors[name])
    y = frame[parsed.response].to_numpy(float)
    if not np.all(np.isfinite(y)):
        raise ModelError(f"column {parsed.response!r} holds infinite values.")

    if time_numeric and parsed.time not in factors:
        times = np.sort(frame[parsed.time].astype(float).unique())
        visits = [f"{v:g}" for v in times]
        time_codes = np.searchsorted(times, frame[parsed.time].astype(float).to_numpy())
    else:
        visits = factors.get(parsed.time) or _levels(frame[parsed.time], visit_order, None)
        times = None
        time_codes = (frame[parsed.time].cat.codes.to_numpy() if parsed.time in factors
                      else _categorical(frame[parsed.time], visits).codes)
    if len(visits) > 30:
        raise UsageError(f"the time variable {parsed.time!r} has {len(visits)} distinct values; "
                         "an MMRM needs a few visits.")
    frame["_time_code"] = np.asarray(time_codes, dtype=np.int64)
    subject_text = frame[parsed.subject].astype(str).to_numpy(object)
    frame["_subject"] = subject_text
    groups: tuple[str, ...] = ()
    if parsed.group:
        groups = tuple(_levels(frame[parsed.group], None, None))
        frame["_group_code"] = pd.Categorical(frame[parsed.group].astype(str),
                                              categories=list(groups)).codes.astype(np.int64)
        if (frame.groupby("_subject")["_group_code"].nunique() > 1).any():
            raise ModelError(f"a participant appears in more than one {parsed.group!r} group.")
    # rows by subject label, then time (a stable sort, as sort_values(kind="stable") on both)
    subject_sorted_codes, _ = pd.factorize(subject_text, sort=True)
    time_codes = frame["_time_code"].to_numpy()
    order = np.lexsort((time_codes, subject_sorted_codes))
    frame = frame.take(order).reset_index(drop=True)
    cells = subject_sorted_codes[order] * len(visits) + time_codes[order]
    duplicated = np.r_[False, cells[1:] == cells[:-1]]
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise ModelError(f"{int(duplicated.sum())} duplicated {parsed.subject} x {parsed.time} "
                         f"rows (e.g. {first['_subject']!r} at {visits[first['_time_code']]!r}).")

    matrix = formulaic.model_matrix(fixed_formula, frame, na_action="raise", output="numpy")
    names = [_r_name(c) for c in matrix.model_spec.column_names]
    x = np.asarray(matrix, dtype=float)
    y = frame[parsed.response].to_numpy(float)
    r_diag = np.abs(np.diag(np.linalg.qr(x, mode="r")))
    aliased = [t for t, d, norm in zip(names, r_diag, np.linalg.norm(x, axis=0), strict=True)
               if d <= 1e-9 * max(norm, 1e-300)]
    if aliased:
        raise ModelError(f"the design matrix is singular: {aliased} cannot be separated from the "
                         "other terms (e.g. a level combination without observations).")
    subject_codes, subject_index = pd.factorize(subject_sorted_codes[order])
    codes = frame["_time_code"].to_numpy()
    group_codes = None
    if parsed.group:
        group_codes = frame.groupby(subject_codes)["_group_code"].first().to_numpy()
    problem = Problem(
        terms=names, visits=visits, patterns=missingness_patterns(x, y, subject_codes, codes, len(visits),
                                                       group_codes),
        n_obs=len(frame), n_participants=len(subject_index), n_by_arm={},
        n_dropped_missing=n_dropped, n_dropped_covariate=0, x=x, y=y,
        subject_codes=subject_codes, grid=pd.DataFrame(), n_by_arm_visit={}, arm_labels=("", ""),
        reml=reml, visit_codes=codes, group_codes=group_codes,
    )
    # per-subject max - min of each column (rows are sorted by subject: reduce over runs)
    starts = np.flatnonzero(np.r_[True, subject_codes[1:] != subject_codes[:-1]])
    spread = np.maximum.reduceat(x, starts, axis=0) - np.minimum.reduceat(x, starts, axis=0)
    between = (spread <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))).all(axis=0)
    covariance = Covariance(parsed.structure, groups=groups,
                            times=tuple(float(t) for t in times) if spatial else None)
    return FormulaProblem(parsed=parsed, problem=problem, covariance=covariance, frame=frame,
                           model_spec=matrix.model_spec, factors=factors, numeric=numeric,
                           between=between, n_dropped=n_dropped)


def parse_specs(specs: str, factors: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """``"ARMCD | AVISIT"`` -> (['ARMCD'], ['AVISIT']); ``"ARMCD * AVISIT"`` -> both primary."""
    primary_text, _, by_text = str(specs).partition("|")
    primary = [v.strip() for v in re.split(r"[*+:]", primary_text) if v.strip()]
    by = [v.strip() for v in re.split(r"[*+:]", by_text) if v.strip()]
    unknown = [v for v in primary + by if v not in factors]
    if unknown or not primary:
        raise UsageError(f"--emmeans names {unknown or specs!r}, which are not factors of the "
                         f"fixed effects ({', '.join(factors) or 'none'}).")
    return primary, by


def emmeans_rows(fp: FormulaProblem, primary: list[str], by: list[str]):
    """LS-mean rows of the design (emmeans' reference grid: every factor level combination,
    numeric variables at their mean, averaged with equal weights over the other factors).
    Returns (labels: list of dict factor -> level, matrix L)."""
    names = list(fp.factors)
    # every level combination (last factor fastest), as level codes
    codes = np.array(list(itertools.product(*(range(len(fp.factors[n])) for n in names))),
                     dtype=int).reshape(math.prod(len(fp.factors[n]) for n in names), len(names))
    columns: dict[str, object] = {
        name: pd.Categorical.from_codes(codes[:, j], categories=fp.factors[name])
        for j, name in enumerate(names)}
    columns.update({name: np.full(len(codes), mean) for name, mean in fp.numeric.items()})
    grid = pd.DataFrame(columns, copy=False)
    x_grid = np.asarray(fp.model_spec.get_model_matrix(grid), dtype=float)
    keys = by + primary
    key_columns = codes[:, [names.index(k) for k in keys]]
    labels, rows = [], []
    for key in itertools.product(*(range(len(fp.factors[k])) for k in keys)):
        take = (key_columns == np.asarray(key, dtype=int)).all(axis=1)
        labels.append({k: fp.factors[k][level] for k, level in zip(keys, key, strict=True)})
        rows.append(x_grid[take].mean(axis=0))
    return labels, np.array(rows)


_build_formula_problem = build_formula_problem  # the name existing tests import
