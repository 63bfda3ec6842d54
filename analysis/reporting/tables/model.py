"""One table model for every renderer: a reader-facing table built once, rendered to HTML
(:mod:`analysis.reporting.tables.html`, great-tables) and to Word (:mod:`analysis.reporting.tables.docx`),
so both say the same thing cell for cell.

A :class:`Table` holds text only: every number is already formatted (:mod:`.formats`), so the
renderers never round, and the tidy CSVs stay the machine-readable output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Align = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Column:
    """One column: its key in :attr:`Row.cells`, its header text and alignment."""

    key: str
    label: str
    align: Align = "right"


@dataclass(frozen=True)
class Spanner:
    """A header spanning the adjacent columns ``keys`` (e.g. an arm over n and Mean (SD))."""

    label: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One body row: column key -> text, and the row group it belongs to (``""`` for none)."""

    cells: dict[str, str]
    group: str = ""


@dataclass(frozen=True)
class Table:
    """A reader-facing table: title, columns (the first is the stub), spanners, rows, footnotes.

    Examples
    --------
    >>> table = Table(
    ...     title="Table 2. Primary outcome",
    ...     columns=(Column("label", "Outcome", "left"), Column("est", "Difference (95% CI)")),
    ...     rows=(Row({"label": "Pain", "est": "-4.04 (-6.28, -1.80)"}, group="Week 12"),),
    ...     footnotes=("ANCOVA adjusted for baseline.",))
    >>> table.cell_texts()
    [['Pain', '-4.04 (-6.28, -1.80)']]
    >>> table.groups()
    ['Week 12']
    """

    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    spanners: tuple[Spanner, ...] = ()
    footnotes: tuple[str, ...] = ()
    source_notes: tuple[str, ...] = ()
    anchor: str = ""
    subtitle: str = ""

    def __post_init__(self) -> None:
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"column keys repeat: {keys}")
        for spanner in self.spanners:
            unknown = [k for k in spanner.keys if k not in keys]
            if unknown:
                raise ValueError(f"spanner '{spanner.label}' names unknown column(s) {unknown}")
            positions = [keys.index(k) for k in spanner.keys]
            if positions != list(range(min(positions), max(positions) + 1)):
                raise ValueError(f"spanner '{spanner.label}' must cover adjacent columns in order, found {list(spanner.keys)}")
        for row in self.rows:
            unknown = sorted(set(row.cells) - set(keys))
            if unknown:
                raise ValueError(f"a row names unknown column(s) {unknown}")

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def cell_texts(self) -> list[list[str]]:
        """Every body cell's text, row by row, in column order (missing cells are ``""``)."""
        return [[row.cells.get(k, "") for k in self.keys] for row in self.rows]

    def groups(self) -> list[str]:
        """The row groups in order of first appearance (``""`` omitted)."""
        seen: list[str] = []
        for row in self.rows:
            if row.group and row.group not in seen:
                seen.append(row.group)
        return seen

    @property
    def empty(self) -> bool:
        return not self.rows
