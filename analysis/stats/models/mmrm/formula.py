"""The formula interface of the MMRM (R ``mmrm`` syntax): splitting the covariance term
``STRUCT(TIME | SUBJECT)`` or ``STRUCT(TIME | GROUP / SUBJECT)`` off the formula, building the
fixed-effects design with ``formulaic`` (terms renamed as R's ``model.matrix`` names them), the
missingness patterns per covariance group, and emmeans' reference grid.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
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


def _first_non_number(values: pd.Series) -> str:
    """``: row 8 holds 'x2'`` for the first present value that is not a number (the frame's
    index names the row), or nothing."""
    present = values.dropna()
    bad = present[pd.to_numeric(present.astype(str), errors="coerce").isna()]
    if bad.empty:
        return ""
    return f": {values.index.name or 'index'} {bad.index[0]} holds {str(bad.iloc[0])!r}"


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
    model_spec: object  # formulaic ModelSpec of the fixed effects
    factors: dict[str, list[str]]  # factor variable -> levels (first = reference)
    numeric: dict[str, float]  # numeric variable -> mean over the rows used
    between: np.ndarray  # per fixed-effect column: True when constant within every subject
    n_dropped: int
    reference: str | None = None  # the level asked to be every factor's reference
    # emmeans' reference grid when it was materialised with the data (see _grid_codes)
    grid_codes: np.ndarray | None = None
    grid_matrix: np.ndarray | None = None


@functools.lru_cache(maxsize=64)
def _fixed_formula(text: str):
    import formulaic

    try:
        return formulaic.Formula(text)
    except Exception as error:  # formulaic's parse errors
        raise UsageError(f"cannot read the fixed effects {text!r}: {error}") from None


def factor_variables(factor, columns) -> set[str]:
    """The columns among ``columns`` a formulaic factor reads: the column itself, or the names
    in its Python expression (``center(x)``, ``np.log(x)`` -> x)."""
    if factor.expr in columns:
        return {factor.expr}
    try:
        tree = ast.parse(factor.expr, mode="eval")
    except SyntaxError:  # formulaic's own quoting; formulaic reports it when evaluating
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in columns}


def _required_variables(formula, columns: pd.Index) -> list[str]:
    """The data columns the fixed effects use: formulaic's ``required_variables`` plus the
    columns named inside a transform, which formulaic 1.2 leaves out for stateful ones such as
    ``center(x)`` (fixed upstream by formulaic pull request 268)."""
    names = {str(name) for name in formula.required_variables}
    for term in formula:
        for factor in term.factors:
            names |= factor_variables(factor, columns)
    return sorted(names)


def _lookup_only(formula) -> bool:
    """True when every factor of the formula is a column or a literal: its model matrix is then
    row by row a function of that row alone (no stateful transform such as ``center(x)`` learns
    from the rows), so other rows can be materialised with the data."""
    from formulaic.parser.types import Factor

    allowed = {Factor.EvalMethod.LOOKUP, Factor.EvalMethod.LITERAL}
    try:
        return all(factor.eval_method in allowed for term in formula for factor in term.factors)
    except (TypeError, AttributeError):  # a structured formula
        return False


def _factor_codes(values: pd.Series, given: Sequence[str] | None, reference: str | None,
                  ) -> tuple[list[str], np.ndarray]:
    """The levels of a factor (as text: the given order, else a categorical's categories, else
    sorted; ``reference`` first) and each row's level code; labels are compared as text, so
    1 and "1" are one level."""
    raw_codes, uniques = pd.factorize(values)
    text = [str(value) for value in uniques]
    present = set(text)
    if given is not None:
        order = [str(v) for v in given]
        unknown = sorted(present - set(order))
        if unknown:
            raise UsageError(f"values {unknown} are missing from the given order {order}.")
        levels = [v for v in order if v in present]
    elif isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(v) for v in values.cat.categories if str(v) in present]
    else:
        levels = sorted(present)
    if reference is not None and reference in levels:
        levels = [reference] + [v for v in levels if v != reference]
    index = {level: k for k, level in enumerate(levels)}
    lookup = np.array([index[t] for t in text] + [-1], dtype=np.int64)  # -1: a missing value
    return levels, lookup[raw_codes]


def _levels(values: pd.Series, given: Sequence[str] | None, reference: str | None) -> list[str]:
    return _factor_codes(values, given, reference)[0]


def _grid_codes(factors: dict[str, list[str]]) -> np.ndarray:
    """Every level combination of the factors (last factor fastest), as level codes."""
    sizes = [len(levels) for levels in factors.values()]
    return np.array(list(itertools.product(*(range(k) for k in sizes))),
                    dtype=np.int64).reshape(math.prod(sizes), len(sizes))


def _visit_order_factors(time: str, time_column: pd.Series, variables: list[str], column,
                         visit_order: Sequence[str]) -> set[str]:
    """With a numeric time (as sp_exp has), the factors of the fixed effects whose labels the
    visit order lists (it orders them); else the order must list the time's values in
    increasing order (a numeric time is ordered by value), or it is refused."""
    order = set(map(str, visit_order))
    found = {name for name in variables if name != time
             and not pd.api.types.is_numeric_dtype(column(name))
             and {str(v) for v in pd.unique(column(name))} <= order}
    if found:
        return found
    time_labels = [f"{v:g}" for v in np.unique(time_column.to_numpy(float))]
    named = [str(v) for v in visit_order if str(v) in set(time_labels)]
    if not set(time_labels) <= set(named):
        raise UsageError(f"the visit order {list(visit_order)} names neither the values of the "
                         f"numeric time {time!r} nor the levels of a factor of the fixed effects.")
    if named != time_labels:
        raise UsageError(f"the numeric time {time!r} is in the order of its values "
                         f"{time_labels}, not {named}.")
    return set()


def build_formula_problem(formula: str, data: pd.DataFrame, *, reml: bool,
                           visit_order: Sequence[str] | None, reference: str | None,
                           emmeans_grid: bool = False) -> FormulaProblem:
    """The fitting problem of an R ``mmrm`` formula on ``data``: rows with the response and every
    variable (the others counted in ``n_dropped``), sorted by subject label then time, the
    fixed-effects design from formulaic, and the missingness patterns. With ``emmeans_grid``
    the reference grid's design rows are materialised with the data when that is safe."""
    if not isinstance(data, pd.DataFrame):
        raise UsageError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    parsed = _parse_formula(formula)
    fixed_formula = _fixed_formula(parsed.fixed)
    variables = _required_variables(fixed_formula, data.columns)
    needed = list(dict.fromkeys([parsed.response, parsed.subject, parsed.time,
                                 *([parsed.group] if parsed.group else []), *variables]))
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise UsageError(f"the data have no column {missing!r} (named in the formula).")
    if not pd.api.types.is_numeric_dtype(data[parsed.response]):
        raise UsageError(f"the response column {parsed.response!r} is not numeric"
                         f"{_first_non_number(data[parsed.response])}.")
    complete = np.logical_and.reduce([data[c].notna().to_numpy() for c in needed])
    kept = np.flatnonzero(complete)
    n_dropped = len(data) - kept.size
    if kept.size == 0:
        raise ModelError("no row has the response and every variable of the formula.")

    def column(name: str) -> pd.Series:
        return data[name].iloc[kept] if n_dropped else data[name]

    time_column = column(parsed.time)
    spatial = parsed.structure == "spatial_exponential"
    time_numeric = pd.api.types.is_numeric_dtype(time_column)
    if spatial and not time_numeric:
        raise UsageError(f"sp_exp needs a numeric time; {parsed.time!r} is not numeric.")
    visit_factors = (_visit_order_factors(parsed.time, time_column, variables, column, visit_order)
                     if time_numeric and visit_order is not None else set())
    factors: dict[str, list[str]] = {}
    factor_codes: dict[str, np.ndarray] = {}
    numeric: dict[str, float] = {}
    numeric_values: dict[str, np.ndarray] = {}
    for name in variables:
        values = column(name)
        if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype,
                                                                   pd.CategoricalDtype):
            numeric_values[name] = values.to_numpy(float)
            check_numeric(numeric_values[name], name)
            numeric[name] = float(values.astype(float).mean())
            continue
        given = visit_order if name == parsed.time or name in visit_factors else None
        factors[name], factor_codes[name] = _factor_codes(values, given, reference)
    y = column(parsed.response).to_numpy(float)
    if not np.all(np.isfinite(y)):
        raise ModelError(f"column {parsed.response!r} holds infinite values.")

    times = None
    if time_numeric and parsed.time not in factors:
        time_values = time_column.to_numpy(float)
        times = np.unique(time_values)
        visits = [f"{v:g}" for v in times]
        time_codes = np.searchsorted(times, time_values)
    elif parsed.time in factors:
        visits, time_codes = factors[parsed.time], factor_codes[parsed.time]
    else:
        visits, time_codes = _factor_codes(time_column, visit_order, None)
    if len(visits) > 30:
        raise UsageError(f"the time variable {parsed.time!r} has {len(visits)} distinct values; "
                         "an MMRM needs a few visits.")
    # rows by subject label, then time (a stable sort, as sort_values(kind="stable") on both)
    raw_subjects, subject_values = pd.factorize(column(parsed.subject))
    label_codes, _ = pd.factorize(np.array([str(v) for v in subject_values], dtype=object),
                                  sort=True)
    subject_sorted_codes = label_codes[raw_subjects]
    order = np.lexsort((time_codes, subject_sorted_codes))
    codes = np.asarray(time_codes, dtype=np.int64)[order]
    cells = subject_sorted_codes[order] * len(visits) + codes
    duplicated = np.r_[False, cells[1:] == cells[:-1]]
    if duplicated.any():
        first = order[np.flatnonzero(duplicated)[0]]
        raise ModelError(f"{int(duplicated.sum())} duplicated {parsed.subject} x {parsed.time} "
                         f"rows (e.g. {str(subject_values[raw_subjects[first]])!r} at "
                         f"{visits[time_codes[first]]!r}).")
    subject_codes, subject_index = pd.factorize(subject_sorted_codes[order])
    groups: tuple[str, ...] = ()
    group_codes = None
    if parsed.group:
        group_levels, row_groups = _factor_codes(column(parsed.group), None, None)
        groups, row_groups = tuple(group_levels), row_groups[order]
        same_subject = subject_codes[1:] == subject_codes[:-1]
        if np.any(same_subject & (row_groups[1:] != row_groups[:-1])):
            raise ModelError(f"a participant appears in more than one {parsed.group!r} group.")
        group_codes = row_groups[np.r_[True, ~same_subject]]

    design = {name: (pd.Categorical.from_codes(factor_codes[name][order], categories=factors[name])
                     if name in factors else numeric_values[name][order]) for name in variables}
    spec, names, x, grid_codes, grid_matrix = _design_matrix(
        fixed_formula, parsed.fixed, design, len(cells), factors, numeric,
        with_grid=emmeans_grid and _lookup_only(fixed_formula))
    y = y[order]
    problem = Problem(
        terms=names, visits=visits,
        patterns=missingness_patterns(x, y, subject_codes, codes, len(visits), group_codes),
        n_obs=len(cells), n_participants=len(subject_index), n_by_arm={},
        n_dropped_missing=n_dropped, n_dropped_covariate=0, x=x, y=y,
        subject_codes=subject_codes, grid=pd.DataFrame(), n_by_arm_visit={}, arm_labels=("", ""),
        reml=reml, visit_codes=codes, group_codes=group_codes,
    )
    covariance = Covariance(parsed.structure, groups=groups,
                            times=tuple(float(t) for t in times) if spatial else None)
    return FormulaProblem(parsed=parsed, problem=problem, covariance=covariance,
                          model_spec=spec, factors=factors, numeric=numeric,
                          between=_between_columns(x, subject_codes), n_dropped=n_dropped,
                          reference=reference, grid_codes=grid_codes, grid_matrix=grid_matrix)


def _design_matrix(fixed_formula, fixed: str, design: dict[str, object], n: int,
                   factors: dict[str, list[str]], numeric: dict[str, float], with_grid: bool):
    """(model spec, R's column names, X, grid codes, grid rows): the fixed-effects design of
    ``design`` (one entry of n values per variable; none for an intercept-only model), and with ``with_grid`` emmeans' reference grid, from
    one formulaic materialisation (formulaic's cost is mostly per call). A design that cannot be
    evaluated, or a singular one, is refused naming the terms."""
    import formulaic

    grid_codes = None
    if with_grid:
        grid_codes = _grid_codes(factors)
        names = list(factors)
        for name, values in list(design.items()):
            grid = (grid_codes[:, names.index(name)] if name in factors
                    else np.full(len(grid_codes), numeric[name]))
            design[name] = (pd.Categorical.from_codes(np.r_[values.codes, grid],
                                                      categories=factors[name])
                            if name in factors else np.r_[values, grid])
    rows = n + (0 if grid_codes is None else len(grid_codes))
    frame = pd.DataFrame(design, index=pd.RangeIndex(rows), copy=False)
    try:
        with np.errstate(all="ignore"):  # the error below says what went wrong
            matrix = formulaic.model_matrix(fixed_formula, frame, na_action="raise",
                                            output="numpy")
    except (formulaic.errors.FormulaicError, ValueError, TypeError) as error:
        raise UsageError(f"cannot evaluate the fixed effects {fixed!r}: {error}") from None
    names = [_r_name(c) for c in matrix.model_spec.column_names]
    x_all = np.asarray(matrix, dtype=float)
    x = x_all[:n]
    r_diag = np.abs(np.diag(np.linalg.qr(x, mode="r")))
    aliased = [t for t, d, norm in zip(names, r_diag, np.linalg.norm(x, axis=0), strict=True)
               if d <= 1e-9 * max(norm, 1e-300)]
    if aliased:
        raise ModelError(f"the design matrix is singular: {aliased} cannot be separated from the "
                         "other terms (e.g. a level combination without observations).")
    return (matrix.model_spec, names, x, grid_codes,
            None if grid_codes is None else x_all[n:])


def _between_columns(x: np.ndarray, subject_codes: np.ndarray) -> np.ndarray:
    """Per column of X: True when constant within every participant (rows sorted by
    participant: max - min over each run)."""
    starts = np.flatnonzero(np.r_[True, subject_codes[1:] != subject_codes[:-1]])
    spread = np.maximum.reduceat(x, starts, axis=0) - np.minimum.reduceat(x, starts, axis=0)
    return (spread <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))).all(axis=0)


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
    codes, x_grid = fp.grid_codes, fp.grid_matrix
    if x_grid is None:  # a stateful transform: the grid goes through the data's model spec
        codes = _grid_codes(fp.factors)
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
