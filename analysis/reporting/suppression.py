"""Small-cell suppression with complementary suppression for count tables published with margins.

A table for public release must not show counts of fewer than ``k`` people, and must not let a
reader work a hidden count out again from what is shown: with row and column totals printed, one
hidden cell in a row is the row total minus the rest. The rules here:

1. **Primary suppression.** Cells with ``0 < n < k`` are sensitive. Zeros are *not* sensitive by
   default: a zero names no one (the NIH convention of showing 0); ``zeros_sensitive=True`` treats
   ``n < k`` including 0 as sensitive, for tables where "nobody in this group" is itself a disclosure.
2. **Complementary suppression.** Every row (column) whose total is published and that holds a
   hidden cell must hold at least two; the complement is the smallest positive shown cell of the
   line (a zero only when no positive cell is left, since a hidden zero can only move upwards).
   Repeated until no line holds exactly one hidden cell.
3. **Exact audit.** The two-per-line rule is necessary, not sufficient (two cycles of hidden cells
   joined by a single hidden cell leave that cell determined; zeros can block a cycle). For every
   hidden cell the smallest and largest value consistent with the shown cells and all margins
   (nonnegative) are computed by linear programming (:func:`feasible_ranges`); the constraint
   matrix of a table with margins is totally unimodular, so these bounds are integers and equal the
   integer bounds. A cell with ``low == high`` gets a cycle of hidden cells through it: the
   cheapest 2 x 2 rectangle (sum of newly hidden counts) along which it can move by one. Steps 2-3
   repeat until no hidden cell is determined; hiding more never narrows a range, so this ends.

The margins themselves are always published unchanged (a small margin is not suppressed).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

SUPPRESSED_MARK = "*"


def primary_suppression(counts: pd.DataFrame, threshold: int, zeros_sensitive: bool = False) -> pd.DataFrame:
    """Cells that are sensitive in themselves: ``0 < n < threshold`` (``n < threshold`` with ``zeros_sensitive``).

    Parameters
    ----------
    counts
        The interior of the table (no margins): nonnegative integer counts.
    threshold
        ``k``: counts below it are sensitive.
    zeros_sensitive
        Treat zero counts as sensitive too.

    Returns
    -------
    pandas.DataFrame
        Boolean mask shaped like ``counts``.

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"F": [0, 3, 7], "M": [6, 1, 9]})
    >>> primary_suppression(counts, 5).to_numpy().tolist()
    [[False, False], [True, True], [False, False]]
    """
    values = _values(counts)
    low = 0 if zeros_sensitive else 1
    return pd.DataFrame((values >= low) & (values < threshold), index=counts.index, columns=counts.columns)


def feasible_ranges(
    counts: pd.DataFrame, suppressed: pd.DataFrame, row_totals: bool = True, column_totals: bool = True
) -> pd.DataFrame:
    """Smallest and largest value of each hidden cell consistent with everything published.

    Published: the shown cells, the row totals (``row_totals``), the column totals
    (``column_totals``) and the grand total; unknowns are nonnegative. Solved by linear programming
    (``scipy.optimize.linprog``); the constraints form a totally unimodular system, so the bounds
    are attained at integer points. ``high`` is ``inf`` when nothing bounds a cell.

    Returns
    -------
    pandas.DataFrame
        Columns ``row, column, value, low, high`` (``row``/``column`` are the labels), one row per
        hidden cell in row-major order.

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"a": [2, 8], "b": [7, 6]})
    >>> mask = pd.DataFrame({"a": [True, True], "b": [True, True]})
    >>> feasible_ranges(counts, mask)[["value", "low", "high"]].to_numpy().tolist()
    [[2, 0, 9], [7, 0, 9], [8, 1, 10], [6, 4, 13]]
    """
    from scipy.optimize import linprog

    values, hidden = _values(counts), np.asarray(suppressed, dtype=bool)
    cells = list(zip(*np.nonzero(hidden), strict=True))
    if not cells:
        return pd.DataFrame(columns=["row", "column", "value", "low", "high"])
    position = {cell: i for i, cell in enumerate(cells)}
    equations, rhs = [], []
    lines = []
    if row_totals:
        lines += [[(i, j) for j in range(values.shape[1])] for i in range(values.shape[0])]
    if column_totals:
        lines += [[(i, j) for i in range(values.shape[0])] for j in range(values.shape[1])]
    if not lines:
        lines = [[(i, j) for i in range(values.shape[0]) for j in range(values.shape[1])]]  # grand total only
    for line in lines:
        unknown = [position[c] for c in line if hidden[c]]
        if unknown:
            row = np.zeros(len(cells))
            row[unknown] = 1.0
            equations.append(row)
            rhs.append(float(sum(values[c] for c in line if hidden[c])))  # = total - shown cells
    a_eq, b_eq = np.array(equations).reshape(-1, len(cells)), np.array(rhs)
    out = []
    for cell, k in position.items():
        objective = np.zeros(len(cells))
        objective[k] = 1.0
        bounds = []
        for sign in (1.0, -1.0):
            result = linprog(sign * objective, A_eq=a_eq if len(rhs) else None, b_eq=b_eq if len(rhs) else None,
                             bounds=(0, None), method="highs")
            if result.status == 3:  # unbounded
                bounds.append(np.inf)
            else:
                bounds.append(float(np.round(sign * result.fun)))
        out.append({"row": counts.index[cell[0]], "column": counts.columns[cell[1]], "value": int(values[cell]),
                    "low": int(bounds[0]), "high": bounds[1] if np.isinf(bounds[1]) else int(bounds[1])})
    return pd.DataFrame(out, columns=["row", "column", "value", "low", "high"])


def complementary_suppression(
    counts: pd.DataFrame, suppressed: pd.DataFrame, row_totals: bool = True, column_totals: bool = True
) -> pd.DataFrame:
    """Extend a mask of hidden cells until none can be worked out from what is published.

    Steps 2 and 3 of the module docstring: two hidden cells per line with a published total, then
    the exact audit of :func:`feasible_ranges`, adding cycles through determined cells.

    Raises
    ------
    ValueError
        A hidden cell stays determined whatever else is hidden (e.g. a table with one row and
        published column totals, or a sensitive zero in a row whose total is 0).

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"a": [2, 8, 9], "b": [7, 6, 12], "c": [9, 10, 11]})
    >>> mask = complementary_suppression(counts, primary_suppression(counts, 5))
    >>> mask.astype(int).to_numpy().tolist()
    [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    """
    values = _values(counts)
    hidden = np.array(suppressed, dtype=bool, copy=True)
    n_rows, n_cols = values.shape
    while True:
        _two_per_line(values, hidden, row_totals, column_totals)
        ranges = feasible_ranges(counts, pd.DataFrame(hidden), row_totals, column_totals)
        determined = ranges[ranges["low"] == ranges["high"]]
        if determined.empty:
            return pd.DataFrame(hidden, index=counts.index, columns=counts.columns)
        added = False
        for label_row, label_col in zip(determined["row"], determined["column"], strict=True):
            i, j = counts.index.get_loc(label_row), counts.columns.get_loc(label_col)
            cycle = _cheapest_cycle(values, hidden, i, j, row_totals, column_totals, n_rows, n_cols)
            if cycle is None:
                raise ValueError(f"cell ({label_row!r}, {label_col!r}) cannot be protected: it is determined by the published margins")
            for cell in cycle:
                added |= not hidden[cell]
                hidden[cell] = True
            if added:
                break  # re-audit: one cycle may protect other cells too
        if not added:
            raise ValueError("suppression cannot protect every hidden cell of this table")


def suppress_small_cells(
    counts: pd.DataFrame,
    threshold: int,
    zeros_sensitive: bool = False,
    row_totals: bool = True,
    column_totals: bool = True,
) -> pd.DataFrame:
    """Primary plus complementary suppression: the mask of cells to hide in a table published with margins.

    Examples
    --------
    The 65+ row of an age table (1 female, 1 male, total 2) hides both cells and, so that the
    column totals do not give them away, the smallest cells of another row:

    >>> import pandas as pd
    >>> counts = pd.DataFrame({"Female": [12, 1], "Male": [9, 1]}, index=["18-64", "65+"])
    >>> suppress_small_cells(counts, 5).astype(int).to_numpy().tolist()
    [[1, 1], [1, 1]]
    """
    return complementary_suppression(counts, primary_suppression(counts, threshold, zeros_sensitive), row_totals, column_totals)


def masked(table: pd.DataFrame, mask: pd.DataFrame, mark: str = SUPPRESSED_MARK) -> pd.DataFrame:
    """``table`` (text or numbers) with the cells of ``mask`` replaced by ``mark`` (aligned by label)."""
    out = table.astype(object).copy()
    for row, column in zip(*np.nonzero(np.asarray(mask, dtype=bool)), strict=True):
        out.loc[mask.index[row], mask.columns[column]] = mark
    return out


def footnote(threshold: int, mark: str = SUPPRESSED_MARK) -> str:
    """The footnote explaining ``mark``."""
    return (f"{mark} suppressed: a count of 1 to {threshold - 1}, or a cell hidden so that such a count cannot be "
            "worked out from the other cells and the totals.")


# ----------------------------------------------------------------------------------------------


def _values(counts: pd.DataFrame) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    if values.ndim != 2 or np.isnan(values).any() or (values < 0).any() or (values != np.round(values)).any():
        raise ValueError("counts must be a 2-D table of nonnegative integers")
    return values.astype(np.int64)


def _complement_key(value: int) -> tuple[int, int]:
    return (int(value == 0), int(value))


def _two_per_line(values: np.ndarray, hidden: np.ndarray, row_totals: bool, column_totals: bool) -> None:
    changed = True
    while changed:
        changed = False
        for axis, published in ((0, row_totals), (1, column_totals)):
            if not published:
                continue
            for line in range(values.shape[axis]):
                cells = [(line, j) for j in range(values.shape[1])] if axis == 0 else [(i, line) for i in range(values.shape[0])]
                if sum(hidden[c] for c in cells) != 1:
                    continue
                shown = [c for c in cells if not hidden[c]]
                if shown:
                    hidden[min(shown, key=lambda c: (*_complement_key(values[c]), c))] = True
                    changed = True


def _cheapest_cycle(values, hidden, i, j, row_totals, column_totals, n_rows, n_cols):
    """The cheapest set of cells forming, with (i, j), a cycle along which (i, j) can change by one."""
    if row_totals and column_totals:
        candidates = [((i, b), (a, j), (a, b)) for a, b in itertools.product(range(n_rows), range(n_cols)) if a != i and b != j]

        def movable(cycle):
            (ib, aj, ab) = cycle
            return (values[ib] >= 1 and values[aj] >= 1) or (values[i, j] >= 1 and values[ab] >= 1)
    else:
        if row_totals:
            candidates = [((i, b),) for b in range(n_cols) if b != j]
        else:
            candidates = [((a, j),) for a in range(n_rows) if a != i]

        def movable(cycle):
            return values[cycle[0]] >= 1 or values[i, j] >= 1
    useful = [c for c in candidates if movable(c) and not all(hidden[cell] for cell in c)]
    if not useful:
        return None
    return min(useful, key=lambda c: (sum(int(values[cell]) for cell in c if not hidden[cell]), c))
