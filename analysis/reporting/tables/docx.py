""":class:`~analysis.reporting.tables.model.Table` s as a Word document (python-docx).

The Word table says what the HTML table says: the same header texts, spanners (merged header
cells), row groups (a full-width row), body cells and notes. Header rows repeat on every page;
numbers are right-aligned; column widths follow the longest word of each column's header and the
longest cell, so a header never breaks inside a word. The document's core properties, and the
timestamps of the parts inside the ``.docx`` zip, are fixed, so the same tables give the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime

from analysis.reporting.tables.model import Table

FIXED_TIME = datetime(2000, 1, 1)
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
_ALIGN = {"left": 0, "center": 1, "right": 2}  # WD_ALIGN_PARAGRAPH values


def _repeat_as_header(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    properties.append(flag)


def _keep_row_together(row) -> None:
    from docx.oxml import OxmlElement

    row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))


def _write(cell, text: str, align: str, bold: bool = False, size: float = 8.5) -> None:
    """Cell text; a newline in a header is a line break (the arm's name above its ``N = n``)."""
    from docx.shared import Pt

    paragraph = cell.paragraphs[0]
    paragraph.alignment = _ALIGN[align]
    paragraph.paragraph_format.space_after = Pt(0)
    lines = text.split("\n")
    for number, line in enumerate(lines):
        run = paragraph.add_run(line)
        run.bold = bold
        run.font.size = Pt(size)
        if number < len(lines) - 1:
            run.add_break()


FONT_PT = 8.5  # body and header cells
# Average advance of a Calibri glyph in inches per character at FONT_PT (bold about 7% wider),
# and a cell's left + right margins in Word's Table Grid style (0.08 in each).
CHAR_IN = 0.52 * FONT_PT / 72
BOLD = 1.07
CELL_PAD_IN = 0.16
MARGIN_IN = 0.7
PORTRAIT_IN, LANDSCAPE_IN = 8.5 - 2 * MARGIN_IN, 11.0 - 2 * MARGIN_IN  # Letter


def column_widths(table: Table) -> list[tuple[float, float]]:
    """Per column, (least, natural) width in inches.

    Least: the longest word of its header (so a header wraps only between words) and of its body
    cells, and for a right-aligned (number) column its longest cell (numbers never wrap).
    Natural: its longest header line or cell on one line. A spanner counts for none of its columns.

    Examples
    --------
    >>> from analysis.reporting.tables.model import Column, Row, Table
    >>> t = Table("T", (Column("a", "Label", "left"), Column("b", "Unknown/Not Reported")),
    ...           (Row({"a": "Mean (SD)", "b": "43.5 (9.5)"}),))
    >>> least, natural = column_widths(t)[1]
    >>> round((least - CELL_PAD_IN) / CHAR_IN, 2), round((natural - CELL_PAD_IN) / CHAR_IN, 2)
    (11.77, 21.4)
    """
    out = []
    for column in table.columns:
        lines = column.label.split("\n")
        cells = [row.cells.get(column.key, "") for row in table.rows]
        head_word = max((len(w) for line in lines for w in line.split()), default=0) * BOLD
        head_line = max((len(line) for line in lines), default=0) * BOLD
        cell_word = max((len(w) for v in cells for w in v.split()), default=0)
        cell_line = max((len(v) for v in cells), default=0)
        least = max(head_word, cell_line if column.align == "right" else cell_word, 3)
        natural = max(head_line, cell_line, least)
        out.append((least * CHAR_IN + CELL_PAD_IN, natural * CHAR_IN + CELL_PAD_IN))
    return out


def needs_landscape(tables: Sequence[Table]) -> bool:
    """A landscape page when some table's least widths do not fit a portrait page, or its natural
    widths do not and it has more than five columns."""
    for table in tables:
        widths = column_widths(table)
        least, natural = sum(w for w, _ in widths), sum(n for _, n in widths)
        if least > PORTRAIT_IN or (natural > PORTRAIT_IN and len(widths) > 5):
            return True
    return False


def _fitted_widths(table: Table, usable_in: float) -> list[float]:
    """Widths (inches) between each column's least and natural width: the room above the least
    widths goes to the columns in proportion to what they lack of their natural width."""
    widths = column_widths(table)
    least = sum(w for w, _ in widths)
    lacking = sum(n for _, n in widths) - least
    share = min(max(usable_in - least, 0.0) / lacking, 1.0) if lacking > 0 else 0.0
    return [round(w + share * (n - w), 3) for w, n in widths]


def _add_table(document, table: Table) -> None:
    from docx.shared import Pt

    heading = document.add_paragraph()
    run = heading.add_run(table.title)
    run.bold = True
    run.font.size = Pt(10)
    heading.paragraph_format.keep_with_next = True
    if table.subtitle:
        document.add_paragraph(table.subtitle).paragraph_format.keep_with_next = True
    n_cols = len(table.columns)
    header_rows = 2 if table.spanners else 1
    word = document.add_table(rows=header_rows, cols=n_cols)
    word.style = "Table Grid"
    word.autofit = False
    if table.spanners:
        top = word.rows[0]
        covered = set()
        for spanner in table.spanners:
            first, last = table.keys.index(spanner.keys[0]), table.keys.index(spanner.keys[-1])
            merged = top.cells[first].merge(top.cells[last]) if last > first else top.cells[first]
            _write(merged, spanner.label, "center", bold=True)
            covered.update(range(first, last + 1))
        for c, column in enumerate(table.columns):
            if c not in covered:
                merged = word.cell(0, c).merge(word.cell(1, c))
                _write(merged, column.label, column.align, bold=True)
        for c, column in enumerate(table.columns):
            if c in covered:
                _write(word.cell(1, c), column.label, column.align, bold=True)
    else:
        for c, column in enumerate(table.columns):
            _write(word.cell(0, c), column.label, column.align, bold=True)
    for r in range(header_rows):
        _repeat_as_header(word.rows[r])
        _keep_row_together(word.rows[r])
    group = None
    for row in table.rows:
        if row.group and row.group != group:
            cells = word.add_row().cells
            merged = cells[0].merge(cells[-1]) if n_cols > 1 else cells[0]
            _write(merged, row.group, "left", bold=True)
            _keep_row_together(word.rows[-1])
        group = row.group
        cells = word.add_row().cells
        for c, column in enumerate(table.columns):
            _write(cells[c], row.cells.get(column.key, ""), column.align)
        _keep_row_together(word.rows[-1])
    from docx.shared import Inches

    section = document.sections[-1]
    usable = (section.page_width - section.left_margin - section.right_margin) / 914400  # EMU per inch
    widths = [Inches(w) for w in _fitted_widths(table, usable)]
    for column, width in zip(word.columns, widths, strict=True):
        column.width = width
    for r in word.rows:
        at = 0
        for tc in r._tr.tc_lst:  # a merged cell spans grid columns: its width is their sum
            tc.width = sum(widths[at:at + tc.grid_span])
            at += tc.grid_span
    for note in table.footnotes + table.source_notes:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        note_run = paragraph.add_run(note)
        note_run.font.size = Pt(8)
    document.add_paragraph()


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every entry's timestamp fixed (python-docx stamps the current time)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            target.writestr(fixed, source.read(info.filename))
    return buffer.getvalue()


def render_docx(tables: Sequence[Table], title: str = "", landscape: bool | None = None) -> bytes:
    """The tables in one Word document, as bytes (reproducible: fixed core properties and zip times).

    Parameters
    ----------
    tables
        Rendered in order, each with its title above and its notes below.
    title
        A heading at the top of the document (none when empty).
    landscape
        Page orientation; by default landscape when any table has more than five columns.

    Examples
    --------
    >>> from analysis.reporting.tables.model import Column, Row, Table
    >>> t = Table("T", (Column("a", "A", "left"), Column("b", "B")), (Row({"a": "x", "b": "1"}),))
    >>> render_docx([t]) == render_docx([t])
    True
    """
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Inches, Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(9)
    section = document.sections[0]
    if landscape is None:
        landscape = needs_landscape(tables)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    section.left_margin = section.right_margin = Inches(MARGIN_IN)
    if title:
        document.add_paragraph(title, style="Heading 1")
    for table in tables:
        _add_table(document, table)
    properties = document.core_properties
    properties.author = properties.last_modified_by = "trialkit"
    properties.created = properties.modified = FIXED_TIME
    properties.revision = 1
    properties.title = title
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip(buffer.getvalue())


def docx_cell_texts(data: bytes) -> list[list[list[str]]]:
    """Every table's cell texts as Word shows them, row by row (merged cells once per row):
    what a test compares with the HTML.

    Examples
    --------
    >>> from analysis.reporting.tables.model import Column, Row, Table
    >>> t = Table("T", (Column("a", "A", "left"), Column("b", "B")), (Row({"a": "x", "b": "1"}),))
    >>> docx_cell_texts(render_docx([t]))
    [[['A', 'B'], ['x', '1']]]
    """
    from docx import Document

    document = Document(io.BytesIO(data))
    out = []
    for word in document.tables:
        rows = []
        for row in word.rows:
            texts, seen = [], set()
            for cell in row.cells:
                if id(cell._tc) in seen:
                    continue
                seen.add(id(cell._tc))
                texts.append(cell.text)
            rows.append(texts)
        out.append(rows)
    return out
