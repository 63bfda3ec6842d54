"""NIH Cumulative Inclusion Enrollment Report tables from the participants table.

The enrollment table has one row per NIH race category plus ``Total``; its columns are each NIH
ethnicity category split by sex (``<ethnicity> | <sex>``) plus ``Total``. The data's own codes are
translated by the plan's ``reporting.nih`` mapping (race, ethnicity, sex); a code the mapping does
not cover is an error that lists every such code, never a silent "Unknown". A missing value is
looked up as the code ``""`` so that the plan must say explicitly where it goes.

The age table follows the NIH Inclusion Enrollment Report age data table: counts by age group and
sex. Both tables are submitted to NIH, which wants exact counts, so nothing is suppressed by
default. For a copy meant for public release, ``suppress_below=k`` hides cells with 0 < n < k and
complementary cells (:mod:`analysis.reporting.suppression`), so that no hidden count can be worked
out from the shown cells and the totals (which are kept). Default age groups are children (< 18), adults (18-64) and older adults
(65+), the NIH Inclusion Across the Lifespan definitions; the plan can set others
(``reporting.age_groups``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, UsageError, failure
from analysis.plan import AgeGroup, NihMapping
from analysis.reporting.tables.frames import SEPARATOR  # "top | bottom": a column under a spanner

TOTAL = "Total"
DEFAULT_AGE_GROUPS = (
    AgeGroup(label="<18 years", low=0, high=18),
    AgeGroup(label="18-64 years", low=18, high=65),
    AgeGroup(label="65+ years", low=65, high=None),
)
UNKNOWN_AGE = "Unknown/Not Reported age"


def map_nih_categories(participants: pd.DataFrame, mapping: NihMapping, source: str = "participants") -> pd.DataFrame:
    """Participants with their NIH categories: columns ``participant_id, nih_race, nih_ethnicity, nih_sex``.

    Raises
    ------
    DataError
        Listing every (row, column, code) whose code is not in the mapping (rows numbered as in a
        CSV file with a header, i.e. first data row = 2).
    """
    needed = [c for c in ("participant_id", "race", "ethnicity", "sex") if c not in participants.columns]
    if needed:
        raise UsageError(f"the participants table lacks column(s) {needed} needed for the NIH report")
    out = pd.DataFrame({"participant_id": participants["participant_id"].astype(str).to_numpy()})
    problems: list[dict[str, object]] = []
    for column in ("race", "ethnicity", "sex"):
        table = getattr(mapping, column)
        codes = participants[column].astype(object).where(participants[column].notna(), "").astype(str).str.strip()
        mapped = codes.map(table)
        for position in np.flatnonzero(mapped.isna().to_numpy()):
            problems.append(failure(source, int(position) + 2, column, "nih_mapping", codes.iloc[position]))
        out[f"nih_{column}"] = mapped.to_numpy()
    if problems:
        failures = pd.DataFrame(problems)
        unmapped = {
            col: sorted(set(failures.loc[failures["column"] == col, "value"]))
            for col in ("race", "ethnicity", "sex")
            if (failures["column"] == col).any()
        }
        listing = "; ".join(f"{col}: {', '.join(repr(c) for c in codes)}" for col, codes in unmapped.items())
        raise DataError(
            f"{len(problems)} participant(s) have codes the plan's reporting.nih mapping does not cover ({listing}); "
            "add them to the mapping (a missing value is the code '')",
            failures,
        )
    return out


def enrollment_table(participants: pd.DataFrame, mapping: NihMapping, source: str = "participants") -> pd.DataFrame:
    """The NIH cumulative inclusion enrollment table (counts, ``Int64``).

    Rows: ``mapping.race_categories`` then ``Total`` (column ``Racial Categories``). Columns:
    ``f"{ethnicity} | {sex}"`` for every ethnicity x sex category pair, in the mapping's order,
    then ``Total``. Every category appears even when its count is 0.

    Parameters
    ----------
    participants
        One row per participant with ``participant_id, race, ethnicity, sex`` in the data's codes.
    mapping
        The plan's ``reporting.nih``: data code -> NIH category (a missing value is the code ``""``).
    source
        File name used in failure rows.

    Returns
    -------
    pandas.DataFrame
        Column ``Racial Categories``, one ``Int64`` column per ethnicity x sex pair, and ``Total``.

    Raises
    ------
    DataError
        Listing every code the mapping does not cover (rows numbered as in a CSV with a header).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.plan import NihMapping
    >>> mapping = NihMapping(
    ...     race={"W": "White", "B": "Black or African American", "": "Unknown or Not Reported"},
    ...     ethnicity={"N": "Not Hispanic or Latino", "H": "Hispanic or Latino"},
    ...     sex={"F": "Female", "M": "Male"})
    >>> participants = pd.DataFrame({"participant_id": ["p1", "p2", "p3", "p4", "p5"],
    ...                              "race": ["W", "W", "B", None, "W"],
    ...                              "ethnicity": ["N", "H", "N", "N", "N"],
    ...                              "sex": ["F", "M", "F", "F", "M"]})
    >>> table = enrollment_table(participants, mapping)
    >>> len(table.columns), table.columns[1]
    (11, 'Not Hispanic or Latino | Female')
    >>> print(table[["Racial Categories", "Not Hispanic or Latino | Female", "Total"]].to_string(index=False))
                            Racial Categories  Not Hispanic or Latino | Female  Total
                American Indian/Alaska Native                                0      0
                                        Asian                                0      0
    Native Hawaiian or Other Pacific Islander                                0      0
                    Black or African American                                1      1
                                        White                                1      3
                           More than One Race                                0      0
                      Unknown or Not Reported                                1      1
                                        Total                                3      5

    A code the mapping does not cover is an error, never a silent "Unknown":

    >>> participants.loc[4, "sex"] = "X"
    >>> try:
    ...     enrollment_table(participants, mapping)
    ... except DataError as error:
    ...     print(error.failures[["row", "column", "value"]].to_string(index=False))
     row column value
       6    sex     X
    """
    cats = map_nih_categories(participants, mapping, source)
    rows = list(mapping.race_categories)
    columns = [(e, s) for e in mapping.ethnicity_categories for s in mapping.sex_categories]
    counts = cats.groupby(["nih_race", "nih_ethnicity", "nih_sex"]).size()
    data = {
        f"{e}{SEPARATOR}{s}": [int(counts.get((race, e, s), 0)) for race in rows] for e, s in columns
    }
    table = pd.DataFrame(data, index=rows)
    table[TOTAL] = table.sum(axis=1)
    table.loc[TOTAL] = table.sum(axis=0)
    table = table.astype("Int64")
    table.index.name = "Racial Categories"
    return table.reset_index()


def _age_group(age: float, groups: Sequence[AgeGroup]) -> str | None:
    if pd.isna(age):
        return UNKNOWN_AGE
    for group in groups:
        if age >= group.low and (group.high is None or age < group.high):
            return group.label
    return None


def age_table(
    participants: pd.DataFrame,
    mapping: NihMapping,
    groups: Sequence[AgeGroup] | None = None,
    suppress_below: int | None = None,
    source: str = "participants",
) -> pd.DataFrame:
    """Enrollment by age group (rows) and NIH sex category (columns), exact counts.

    With ``suppress_below=k`` (public release only; NIH wants exact counts), cells with 0 < n < k
    and complementary cells are shown as ``"*"`` so that none can be worked out from the shown
    cells, the ``Total`` column and the column totals. Participants with missing age form the row
    ``Unknown/Not Reported age``. An age outside every group is an error naming it.
    Returns text cells (counts rendered) with first column ``Age group``.
    """
    groups = list(groups or DEFAULT_AGE_GROUPS)
    if "age" not in participants.columns:
        raise UsageError("the participants table lacks column 'age' needed for the NIH age table")
    cats = map_nih_categories(participants, mapping, source)
    ages = pd.to_numeric(participants["age"], errors="coerce").to_numpy(dtype=float)
    labels = [_age_group(a, groups) for a in ages]
    outside = [i for i, lab in enumerate(labels) if lab is None]
    if outside:
        failures = pd.DataFrame([failure(source, i + 2, "age", "age_group", ages[i]) for i in outside])
        raise DataError(f"{len(outside)} participant age(s) fall in none of the age groups", failures)
    cats["age_group"] = labels
    row_order = [g.label for g in groups] + ([UNKNOWN_AGE] if UNKNOWN_AGE in labels else [])
    counts = pd.crosstab(cats["age_group"], cats["nih_sex"]).reindex(index=row_order, columns=list(mapping.sex_categories), fill_value=0)
    out = pd.DataFrame({"Age group": row_order})
    for sex in mapping.sex_categories:
        out[sex] = [str(int(n)) for n in counts[sex]]
    out[TOTAL] = [str(int(n)) for n in counts.sum(axis=1)]
    if suppress_below is not None:
        from analysis.reporting.suppression import masked, suppress_small_cells

        mask = suppress_small_cells(counts.reset_index(drop=True), suppress_below)
        out[list(mapping.sex_categories)] = masked(out[list(mapping.sex_categories)], mask)
    return out
