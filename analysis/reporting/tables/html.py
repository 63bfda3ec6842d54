"""A :class:`~analysis.reporting.tables.model.Table` as HTML, rendered by great-tables.

Every text (title, headers, cells, notes) is plain text that great-tables escapes, so a
data-derived string such as ``<script>`` shows as text. The table carries a fixed id (from the
table's anchor), so the same table always renders to the same bytes. The CSS wraps long cells
instead of clipping them and caps the table at the page width, so nothing is cut off on a
1280 px page.
"""

from __future__ import annotations

import html as _html
import re

from analysis.reporting.tables.model import Table

_STUB = "__stub_group__"

# great-tables sets white-space:nowrap on some parts and lets the container scroll; a report page
# must wrap instead (the issue: `method` and `n_*` columns cut off at the right edge).
_WRAP_CSS = (
    "#{id} table {{max-width:100%; width:auto;}}\n"
    "#{id} .gt_col_heading, #{id} .gt_column_spanner, #{id} .gt_row {{white-space:normal; "
    "overflow-wrap:normal; word-break:normal; hyphens:manual; vertical-align:top;}}\n"
    "#{id} .gt_col_heading {{vertical-align:bottom;}}\n"
    "#{id} .gt_sourcenote, #{id} .gt_footnote {{white-space:normal; text-align:left;}}\n"
    "#{id} .gt_row.gt_right {{white-space:nowrap;}}\n"
)


def table_id(table: Table) -> str:
    """A stable HTML id from the table's anchor or title (letters, digits, dashes)."""
    text = table.anchor or table.title
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "table"


def _label(text: str):
    """A header text; a newline in it is a line break (an arm's name above its ``N = n``)."""
    if "\n" not in text:
        return text
    from great_tables import html

    return html("<br>".join(_html.escape(part) for part in text.split("\n")))


def to_gt(table: Table):
    """The great-tables ``GT`` object for ``table`` (header, spanners, row groups, alignment, notes).

    Examples
    --------
    >>> from analysis.reporting.tables.model import Column, Row, Table
    >>> t = Table("T", (Column("a", "A", "left"), Column("b", "B")), (Row({"a": "x", "b": "1"}),))
    >>> type(to_gt(t)).__name__
    'GT'
    """
    import pandas as pd
    from great_tables import GT

    keys = table.keys
    grouped = any(row.group for row in table.rows)
    frame = pd.DataFrame([[row.cells.get(k, "") for k in keys] for row in table.rows], columns=keys, dtype=object)
    if frame.empty:
        frame = pd.DataFrame({k: pd.Series([], dtype=object) for k in keys})
    if grouped:
        frame[_STUB] = [row.group for row in table.rows]
    gt = GT(frame, groupname_col=_STUB if grouped else None, auto_align=False, id=table_id(table))
    if table.title or table.subtitle:
        gt = gt.tab_header(title=table.title, subtitle=table.subtitle or None)
    gt = gt.cols_label(**{c.key: _label(c.label) for c in table.columns})
    for align in ("left", "right", "center"):
        columns = [c.key for c in table.columns if c.align == align]
        if columns:
            gt = gt.cols_align(align=align, columns=columns)
    for number, spanner in enumerate(table.spanners):
        gt = gt.tab_spanner(label=_label(spanner.label), columns=list(spanner.keys), id=f"spanner-{number}")
    for note in table.footnotes + table.source_notes:
        gt = gt.tab_source_note(note)
    gt = gt.tab_options(table_font_size="13px", data_row_padding="3px", heading_align="left", table_margin_left="0",
                        heading_title_font_size="15px", row_group_padding="4px", container_overflow_x="visible")
    return gt.opt_css(_WRAP_CSS.format(id=table_id(table)))


def render_html(table: Table) -> str:
    """The table as an HTML fragment (a ``<div>`` with its own scoped ``<style>``).

    Examples
    --------
    >>> from analysis.reporting.tables.model import Column, Row, Table
    >>> t = Table("T", (Column("a", "A", "left"), Column("b", "B")), (Row({"a": "<x>", "b": "1"}),))
    >>> html = render_html(t)
    >>> "&lt;x&gt;" in html and "<x>" not in html
    True
    """
    return to_gt(table).as_raw_html()
