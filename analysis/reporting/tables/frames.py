"""A display frame (text cells, already formatted) as a :class:`~analysis.reporting.tables.model.Table`.

The grant report's tables (Table 1, NIH, CONSORT counts, retention, adverse events) are built
as frames whose column names carry the header (``"top | bottom"`` for a two-level header, the NIH
layout) and whose cells are the text to print. This turns such a frame into the one table model,
so the same renderers (great-tables HTML, python-docx Word) draw every reader-facing table.
"""

from __future__ import annotations

import re

import pandas as pd

from analysis.reporting.tables.model import Column, Row, Spanner, Table

SEPARATOR = " | "  # "top | bottom": a column under a spanner (analysis.reporting.nih uses the same)

# A cell is a number when it starts with one (counts, "43.5 (9.5)", "53/60", "88.3"), is the
# suppression mark, or says a count was not recorded; a column of such cells is right-aligned.
_NUMBER = re.compile(r"^(\*.*|[-−+]?\d.*|not recorded|target not declared)$")


def _indent(text: str) -> str:
    """Leading spaces (a level under its heading row) as no-break spaces, which HTML keeps."""
    stripped = text.lstrip(" ")
    return "\u00a0" * (len(text) - len(stripped)) + stripped


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)]


def number_columns(frame: pd.DataFrame) -> list[bool]:
    """Per column: right-aligned when every non-empty cell is a number; the first column (the row
    labels) never is.

    Examples
    --------
    >>> number_columns(pd.DataFrame({"Stage": ["a", "b"], "n": ["3", "*"], "x": ["1", "y"]}))
    [False, True, False]
    """
    cells = _cells(frame)
    out = []
    for c in range(len(frame.columns)):
        values = [row[c].strip() for row in cells if row[c].strip()]
        out.append(c > 0 and bool(values) and all(_NUMBER.match(v) for v in values))
    return out


def table_from_frame(frame: pd.DataFrame, title: str, note: str = "") -> Table:
    """The frame as a :class:`Table`: one column per frame column (numbers right-aligned), a
    spanner over adjacent columns named ``"top | bottom"`` with the same top, ``note`` as a footnote.

    Examples
    --------
    >>> frame = pd.DataFrame({"Race": ["Asian"], "Female | n": ["3"], "Female | %": ["50.0"], "Total": ["6"]})
    >>> t = table_from_frame(frame, "NIH", "exact counts")
    >>> [c.label for c in t.columns], [(s.label, len(s.keys)) for s in t.spanners]
    (['Race', 'n', '%', 'Total'], [('Female', 2)])
    >>> t.cell_texts(), t.footnotes
    ([['Asian', '3', '50.0', '6']], ('exact counts',))
    """
    names = [str(c) for c in frame.columns]
    right = number_columns(frame)
    keys = [f"c{k}" for k in range(len(names))]
    columns = []
    spanners: list[Spanner] = []
    for k, (key, name) in enumerate(zip(keys, names, strict=True)):
        top, _, bottom = name.partition(SEPARATOR)
        columns.append(Column(key, bottom if bottom else name, "right" if right[k] else "left"))
        if bottom:
            if spanners and spanners[-1].label == top and names[k - 1].startswith(top + SEPARATOR):
                spanners[-1] = Spanner(top, (*spanners[-1].keys, key))
            else:
                spanners.append(Spanner(top, (key,)))
    rows = tuple(Row(dict(zip(keys, map(_indent, cells), strict=True))) for cells in _cells(frame))
    return Table(title=title, columns=tuple(columns), rows=rows, spanners=tuple(spanners),
                 footnotes=(note,) if note else ())
