"""Grant-report tables as HTML and Word: numbers right-aligned, headers unbroken, fixed bytes."""

import io
import zipfile

import pandas as pd
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn

from analysis.reporting.grant import table_docx, table_html
from analysis.reporting.tables.docx import CELL_PAD_IN, CHAR_IN
from analysis.reporting.tables.frames import number_columns

FRAME = pd.DataFrame({
    "Characteristic": ["Age (years)", "  Mean (SD)", "Sex, n (%)", "  Female", "  Male"],
    "Precision lumbar release (N = 60)": ["", "43.5 (9.5)", "", "28 (46.7%)", "*"],
    "Standard physiotherapy (N = 60)": ["", "42.6 (10.2)", "", "31 (51.7%)", "*"],
    "Std. difference": ["0.10", "", "0.30", "", ""],
})


def test_number_columns_are_every_column_of_numbers_but_the_labels():
    assert number_columns(FRAME) == [False, True, True, True]
    assert number_columns(pd.DataFrame({"a": ["1", "2"], "b": ["x", "3"]})) == [False, False]


def test_html_right_aligns_numbers_only():
    html = table_html(FRAME, "Table 1", "a note")
    assert 'class="gt_row gt_right">43.5 (9.5)</td>' in html  # a number: right-aligned
    assert 'class="gt_row gt_left">\u00a0\u00a0Mean (SD)</td>' in html  # a label, indented as given
    assert "a note" in html


def _document(data: bytes):
    return Document(io.BytesIO(data))


def test_docx_numbers_right_aligned_header_repeats_and_rows_do_not_split():
    table = _document(table_docx(FRAME, "Table 1")).tables[0]
    header = table.rows[0]
    assert header._tr.trPr.find(qn("w:tblHeader")) is not None  # repeated on every page
    assert all(row._tr.trPr.find(qn("w:cantSplit")) is not None for row in table.rows)
    assert table.rows[0].cells[0].paragraphs[0].runs[0].bold
    assert table.cell(2, 1).text == "43.5 (9.5)"
    assert table.cell(2, 1).paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert table.cell(5, 2).text == "*" and table.cell(5, 2).paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert table.cell(2, 0).paragraphs[0].alignment in (None, WD_ALIGN_PARAGRAPH.LEFT)  # labels stay left


def test_docx_header_cells_are_at_least_as_wide_as_their_longest_word():
    # "physiotherapy" (13 letters) must fit one line of its column, bold, with the cell margins
    table = _document(table_docx(FRAME, "Table 1")).tables[0]
    for c, name in enumerate(FRAME.columns):
        longest = max(len(w) for w in name.split())
        assert table.columns[c].width.inches >= longest * CHAR_IN * 1.07 + CELL_PAD_IN - 1e-3, name
    # numbers never wrap: "42.6 (10.2)" fits its column
    assert table.columns[2].width.inches >= len("42.6 (10.2)") * CHAR_IN + CELL_PAD_IN - 1e-3


def test_docx_bytes_are_identical_across_renders_and_carry_no_save_time():
    first, second = table_docx(FRAME, "Table 1", "note"), table_docx(FRAME, "Table 1", "note")
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2000, 1, 1, 0, 0, 0)}
    properties = _document(first).core_properties
    assert properties.created.year == 2000 and properties.modified.year == 2000 and properties.author == "trialkit"


def test_docx_wide_table_goes_landscape_and_merges_two_level_header():
    # the NIH layout: 3 ethnicities x 3 sexes, "Unknown/Not" the longest word
    ethnicities = ("Not Hispanic or Latino", "Hispanic or Latino", "Unknown/Not Reported Ethnicity")
    wide = pd.DataFrame({"Racial Categories": ["Native Hawaiian or Other Pacific Islander", "Total"]}
                        | {f"{e} | {s}": ["1", "2"] for e in ethnicities for s in ("Female", "Male", "Unknown/Not Reported")}
                        | {"Total": ["9", "18"]})
    document = _document(table_docx(wide, "NIH"))
    assert document.sections[0].page_width > document.sections[0].page_height
    table = document.tables[0]
    assert table.cell(0, 1).text == "Not Hispanic or Latino" and table.cell(1, 3).text == "Unknown/Not Reported"
    assert table.columns[3].width.inches >= len("Unknown/Not") * CHAR_IN * 1.07 + CELL_PAD_IN - 1e-3  # breaks at the space only
    assert table.cell(0, 0).text == table.cell(1, 0).text == "Racial Categories"  # merged vertically
