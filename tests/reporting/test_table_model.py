"""The table model: rendered by great-tables (HTML) and python-docx (Word), both say the same thing."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from analysis.reporting.tables.docx import docx_cell_texts, render_docx
from analysis.reporting.tables.html import render_html
from analysis.reporting.tables.model import Column, Row, Spanner, Table

TABLE = Table(
    title="Table 2. Primary outcome",
    columns=(Column("label", "Analysis", "left"), Column("t_n", "n"), Column("t_est", "Adjusted mean (95% CI)"),
             Column("c_n", "n"), Column("c_est", "Adjusted mean (95% CI)"), Column("diff", "Difference (95% CI)"),
             Column("p", "p-value")),
    spanners=(Spanner("Drug\nN = 60", ("t_n", "t_est")), Spanner("Placebo\nN = 60", ("c_n", "c_est"))),
    rows=(
        Row({"label": "ANCOVA at week12", "t_n": "53", "t_est": "53.39 (50.18, 56.60)", "c_n": "57",
             "c_est": "57.43 (54.48, 60.38)", "diff": "-4.04 (-6.28, -1.80)", "p": "<0.001"}, group="Pain"),
        Row({"label": "MMRM at week4", "t_n": "57", "c_n": "59", "diff": "-0.68 (-2.95, 1.58)", "p": "0.551"}, group="Pain"),
        Row({"label": "<script>x</script>", "diff": "NNTB 7.3 to \u221e to NNTH 5.0"}, group="Function"),
    ),
    footnotes=("ANCOVA: value ~ arm + baseline.",),
    anchor="table-2",
)


class _Cells(HTMLParser):
    """Header cells (th in thead), group headings and body cells (td) of a great-tables table."""

    def __init__(self):
        super().__init__()
        self.head: list[str] = []
        self.body: list[list[str]] = []
        self.notes: list[str] = []
        self._where, self._text, self._tag = "", None, None

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class", "") or ""
        if tag in ("thead", "tbody", "tfoot"):
            self._where = tag
        elif tag == "tr" and self._where == "tbody":
            self.body.append([])
        elif tag in ("th", "td") and "gt_title" not in classes:
            self._text, self._tag = [], tag
        elif tag == "br" and self._text is not None:
            self._text.append("\n")

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._text is not None:
            text = "".join(self._text).strip()
            if self._where == "thead":
                self.head.append(text)
            elif self._where == "tbody":
                self.body[-1].append(text)
            elif self._where == "tfoot":
                self.notes.append(text)
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def test_html_and_docx_hold_the_same_cells():
    parsed = _Cells()
    parsed.feed(render_html(TABLE))
    (word,) = docx_cell_texts(render_docx([TABLE]))
    # Word: a spanner row and the column-label row (a label without spanner is merged down, so
    # it shows in both), then body rows with a full-width row per row group; HTML: the same.
    assert set(parsed.head) == set(word[0]) | set(word[1])
    assert word[0] == ["Analysis", "Drug\nN = 60", "Placebo\nN = 60", "Difference (95% CI)", "p-value"]
    assert "Drug\nN = 60" in parsed.head
    assert parsed.body == word[2:]
    assert parsed.body[0] == ["Pain"]
    assert parsed.body[1] == TABLE.cell_texts()[0]
    assert parsed.body[3] == ["Function"]
    assert parsed.body[4] == TABLE.cell_texts()[2]
    assert parsed.notes == ["ANCOVA: value ~ arm + baseline."]


def test_html_escapes_data_and_is_reproducible():
    html = render_html(TABLE)
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert html == render_html(TABLE)
    assert 'id="table-2"' in html


def test_docx_bytes_are_reproducible_and_headers_repeat():
    first = render_docx([TABLE], title="Report")
    assert first == render_docx([TABLE], title="Report")
    import io
    import zipfile

    xml = zipfile.ZipFile(io.BytesIO(first)).read("word/document.xml").decode()
    assert xml.count("<w:tblHeader") == 2  # both header rows repeat on every page
    assert 'w:jc w:val="right"' in xml  # numbers right-aligned
    core = zipfile.ZipFile(io.BytesIO(first)).read("docProps/core.xml").decode()
    assert "2000-01-01T00:00:00Z" in core


def test_table_refuses_inconsistent_columns():
    columns = (Column("a", "A", "left"), Column("b", "B"), Column("c", "C"))
    with pytest.raises(ValueError, match="adjacent"):
        Table("T", columns, (), spanners=(Spanner("S", ("a", "c")),))
    with pytest.raises(ValueError, match="unknown column"):
        Table("T", columns, (Row({"z": "1"}),))
    with pytest.raises(ValueError, match="repeat"):
        Table("T", (Column("a", "A"), Column("a", "B")), ())
