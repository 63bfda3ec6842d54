"""Small-cell suppression: no hidden cell can be worked out from the shown cells and the margins.

The attacker check is independent of the code under test: for every hidden cell an integer
program (scipy.optimize.milp, integrality on every unknown) finds the smallest and largest value
consistent with the shown cells, every row total, every column total and the grand total; the cell
is protected when max > min. Expected masks and ranges are worked by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from analysis.reporting.suppression import (
    complementary_suppression,
    feasible_ranges,
    masked,
    primary_suppression,
    suppress_small_cells,
)


def integer_ranges(values, hidden, row_totals=True, column_totals=True):
    """{cell: (min, max)} over nonnegative integer tables agreeing with everything published."""
    values, hidden = np.asarray(values), np.asarray(hidden, dtype=bool)
    cells = list(zip(*np.nonzero(hidden), strict=True))
    index = {c: k for k, c in enumerate(cells)}
    a, b = [], []
    lines = []
    if row_totals:
        lines += [[(i, j) for j in range(values.shape[1])] for i in range(values.shape[0])]
    if column_totals:
        lines += [[(i, j) for i in range(values.shape[0])] for j in range(values.shape[1])]
    lines.append([(i, j) for i in range(values.shape[0]) for j in range(values.shape[1])])  # grand total
    for line in lines:
        row = np.zeros(len(cells))
        for c in line:
            if hidden[c]:
                row[index[c]] = 1
        total = values[tuple(np.array(line).T)].sum()
        shown = sum(values[c] for c in line if not hidden[c])
        a.append(row)
        b.append(total - shown)
    constraint = LinearConstraint(np.array(a), np.array(b), np.array(b))
    out = {}
    for c, k in index.items():
        bounds = []
        for sign in (1, -1):
            objective = np.zeros(len(cells))
            objective[k] = sign
            result = milp(objective, constraints=constraint, integrality=np.ones(len(cells)),
                          bounds=Bounds(0, values.sum()))
            assert result.success
            bounds.append(round(sign * result.fun))
        out[c] = tuple(bounds)
    return out


def protected(values, hidden, **margins):
    return all(high > low for low, high in integer_ranges(values, hidden, **margins).values())


def frame(rows):
    return pd.DataFrame(rows, columns=[f"c{j}" for j in range(len(rows[0]))], index=[f"r{i}" for i in range(len(rows))])


def test_primary_suppression_small_positive_cells_only_zeros_optional():
    counts = frame([[0, 6], [3, 1], [7, 9]])
    assert primary_suppression(counts, 5).to_numpy().tolist() == [[False, False], [True, True], [False, False]]
    assert primary_suppression(counts, 5, zeros_sensitive=True).to_numpy().tolist() == [[True, False], [True, True], [False, False]]


def test_hiding_small_cells_only_leaks_through_the_row_total():
    counts = frame([[1, 10, 12], [8, 9, 7], [6, 11, 13]])
    naive = primary_suppression(counts, 5)
    assert integer_ranges(counts, naive) == {(0, 0): (1, 1)}  # 23 - 10 - 12 = 1
    mask = suppress_small_cells(counts, 5)
    assert protected(counts, mask)
    # by hand: row r0 adds its smallest other cell (10), column c0 its smallest (6), column c1
    # then needs a second: r2's 11 (r1's 9 is smaller but would leave r1 with one hidden cell,
    # which the two-per-line rule then fixes) -- whatever the path, every line has 0 or >= 2
    hidden = mask.to_numpy()
    assert hidden[0, 0]
    assert all(n != 1 for n in hidden.sum(axis=0)) and all(n != 1 for n in hidden.sum(axis=1))


def test_one_complement_per_row_leaks_through_the_column_total():
    counts = frame([[2, 7, 9], [8, 6, 10], [9, 12, 11]])
    one_per_row = primary_suppression(counts, 5).to_numpy().copy()
    one_per_row[0, 1] = True  # the smallest other cell of the row
    assert integer_ranges(counts, one_per_row)[(0, 0)] == (2, 2)  # column c0: 19 - 8 - 9
    mask = suppress_small_cells(counts, 5)
    assert mask.astype(int).to_numpy().tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    # worked by hand: x00 + x01 = 9, x10 + x11 = 14, x00 + x10 = 10, x01 + x11 = 13
    assert integer_ranges(counts, mask) == {(0, 0): (0, 9), (0, 1): (0, 9), (1, 0): (1, 10), (1, 1): (4, 13)}
    ranges = feasible_ranges(counts, mask)
    assert ranges[["low", "high"]].to_numpy().tolist() == [[0, 9], [0, 9], [1, 10], [4, 13]]


def test_two_per_line_is_not_enough_a_bridge_between_two_cycles_is_determined():
    # hidden: cycle r0,r1 x c0,c1; cycle r2,r3 x c2,c3; and the bridge (r0, c2). Every row and
    # column holds >= 2 hidden cells, yet the bridge is determined: any change of the hidden cells
    # must be a circulation, and a bridge carries none.
    counts = frame([[3, 8, 2, 9], [7, 6, 10, 12], [11, 9, 4, 6], [10, 13, 8, 3]])
    hidden = np.zeros((4, 4), dtype=bool)
    for cell in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (0, 2)]:
        hidden[cell] = True
    assert all(n >= 2 for n in hidden.sum(axis=0)) and all(n >= 2 for n in hidden.sum(axis=1))
    assert integer_ranges(counts, hidden)[(0, 2)] == (2, 2)
    ranges = feasible_ranges(counts, pd.DataFrame(hidden, index=counts.index, columns=counts.columns))
    bridge = ranges[(ranges["row"] == "r0") & (ranges["column"] == "c2")].iloc[0]
    assert (bridge["low"], bridge["high"]) == (2, 2)
    mask = complementary_suppression(counts, pd.DataFrame(hidden, index=counts.index, columns=counts.columns))
    assert mask.to_numpy()[hidden].all()  # keeps what was hidden
    assert protected(counts, mask)


def test_zeros_can_block_a_cycle_and_the_audit_notices():
    # 1 and 4 are small; the two-per-line rule hides the smallest positive cells (not the zeros).
    # A cycle through zeros can move in one direction only; the exact check decides.
    counts = frame([[1, 0, 20], [0, 4, 30], [25, 35, 40]])
    mask = suppress_small_cells(counts, 5)
    assert protected(counts, mask)


def test_the_age_table_example_hides_the_65_plus_row_and_a_complement_row():
    counts = pd.DataFrame({"Female": [12, 1], "Male": [9, 1]}, index=["18-64", "65+"])
    # naive "<5" with row total 2 and column totals 13, 10: 65+ female = 13 - 12 = 1
    assert integer_ranges(counts, primary_suppression(counts, 5)) == {(1, 0): (1, 1), (1, 1): (1, 1)}
    mask = suppress_small_cells(counts, 5)
    assert mask.to_numpy().all()
    assert integer_ranges(counts, mask) == {(0, 0): (11, 13), (0, 1): (8, 10), (1, 0): (0, 2), (1, 1): (0, 2)}


def test_row_totals_only():
    counts = frame([[1, 0], [12, 9]])
    mask = suppress_small_cells(counts, 5, column_totals=False)
    assert mask.astype(int).to_numpy().tolist() == [[1, 1], [0, 0]]
    assert integer_ranges(counts, mask, column_totals=False) == {(0, 0): (0, 1), (0, 1): (0, 1)}


def test_a_table_that_cannot_be_protected_is_an_error():
    with pytest.raises(ValueError, match="cannot be protected"):
        suppress_small_cells(frame([[1, 7]]), 5)  # one row: column totals are the cells


@pytest.mark.parametrize("seed", range(12))
def test_random_tables_are_protected(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 6)), int(rng.integers(2, 5)))
    counts = frame(rng.choice([0, 1, 2, 3, 4, 6, 9, 15], size=shape).tolist())
    mask = suppress_small_cells(counts, 5)
    values = counts.to_numpy()
    assert mask.to_numpy()[(values > 0) & (values < 5)].all()
    if mask.to_numpy().any():
        assert protected(counts, mask)


def test_masked_marks_cells():
    table = frame([["1", "2"], ["3", "4"]])
    mask = frame([[True, False], [False, False]])
    assert masked(table, mask).to_numpy().tolist() == [["*", "2"], ["3", "4"]]
