"""Table 1: baseline characteristics by arm and overall, with standardised differences.

CONSORT discourages p-values for baseline differences (randomisation makes any difference due to
chance by construction), so the table reports the standardised difference between arms instead
(Austin 2009; Yang & Dalton 2012):

* continuous: d = (mean_T - mean_C) / sqrt((s_T^2 + s_C^2) / 2), signed, treatment minus control;
* one level of a categorical variable: d = (p_T - p_C) / sqrt((p_T (1 - p_T) + p_C (1 - p_C)) / 2);
* a categorical variable as a whole (k levels): d = sqrt((T - C)' S^-1 (T - C)), T and C the
  proportions of levels 2..k, S = (S_T + S_C) / 2 with S_g = diag(p_g) - p_g p_g' (non-negative;
  equals |d| of the binary formula when k = 2). Same as R ``tableone``'s ``ExtractSmd``.

Percentages use the participants with a value as denominator; the missing count is its own row.
Quartiles use linear interpolation (R's default ``quantile`` type 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import UsageError
from analysis.plan import Table1Variable

GROUPS = ("treatment", "control", "overall")
STATS_COLUMNS = [
    "variable", "label", "kind", "row", "level", "group", "n", "denominator", "percent",
    "mean", "sd", "median", "q1", "q3",
]


def _levels(values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    return sorted(str(v) for v in values.dropna().unique())


def _check_columns(participants: pd.DataFrame, variables: Sequence[Table1Variable]) -> None:
    missing = [v.name for v in variables if v.name not in participants.columns]
    if "arm" not in participants.columns:
        missing.insert(0, "arm")
    if missing:
        raise UsageError(f"Table 1 variable(s) {missing} are not columns of the participants table")
    if not variables:
        raise UsageError("no Table 1 variables: list them under reporting.table1 in the plan")
    arms = set(participants["arm"].dropna().unique())
    if not arms <= {"treatment", "control"}:
        raise UsageError(f"participants.arm must be 'treatment' or 'control', found {sorted(arms - {'treatment', 'control'})}")


def _groups(participants: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "treatment": participants[participants["arm"] == "treatment"],
        "control": participants[participants["arm"] == "control"],
        "overall": participants,
    }


def table1_stats(participants: pd.DataFrame, variables: Sequence[Table1Variable]) -> pd.DataFrame:
    """Summary statistics per variable, row and group (treatment, control, overall), long form.

    Returns columns ``variable, label, kind, row, level, group, n, denominator, percent, mean, sd,
    median, q1, q3`` where ``row`` is ``"N"`` (participants in the group), ``"summary"`` (continuous:
    mean, SD, median, quartiles over non-missing values; ``n`` = non-missing), ``"level"``
    (categorical: ``n`` with the level, ``denominator`` = non-missing, ``percent`` = 100 n / denominator)
    or ``"missing"`` (``n`` missing). SD uses ddof = 1; quartiles use linear interpolation (R's
    ``quantile`` type 7).

    Parameters
    ----------
    participants
        One row per participant with ``arm`` (``treatment`` / ``control``) and every variable.
    variables
        The Table 1 rows (the plan's ``reporting.table1``): column name, label, kind.

    Returns
    -------
    pandas.DataFrame
        Long form, one row per variable x row (x level) x group, unrounded.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.plan import Table1Variable
    >>> participants = pd.DataFrame({
    ...     "arm": ["treatment"] * 3 + ["control"] * 3,
    ...     "age": [40, 50, 60, 45, 55, None],
    ...     "sex": ["F", "F", "M", "F", "M", "M"]})
    >>> variables = [Table1Variable(name="age", label="Age (years)", kind="continuous"),
    ...              Table1Variable(name="sex", label="Sex", kind="categorical")]
    >>> summary = table1_stats(participants, variables)
    >>> shown = ["variable", "row", "level", "group", "n", "percent", "mean", "sd"]
    >>> print(summary.loc[summary["group"] != "overall", shown].round(1).to_string(index=False))
    variable     row level     group  n  percent  mean   sd
                   N   NaN treatment  3      NaN   NaN  NaN
                   N   NaN   control  3      NaN   NaN  NaN
         age summary   NaN treatment  3      NaN  50.0 10.0
         age missing   NaN treatment  0      NaN   NaN  NaN
         age summary   NaN   control  2      NaN  50.0  7.1
         age missing   NaN   control  1      NaN   NaN  NaN
         sex   level     F treatment  2     66.7   NaN  NaN
         sex   level     M treatment  1     33.3   NaN  NaN
         sex missing   NaN treatment  0      NaN   NaN  NaN
         sex   level     F   control  1     33.3   NaN  NaN
         sex   level     M   control  2     66.7   NaN  NaN
         sex missing   NaN   control  0      NaN   NaN  NaN
    """
    _check_columns(participants, variables)
    groups = _groups(participants)
    rows: list[dict[str, object]] = []
    for group, frame in groups.items():
        rows.append({"variable": "", "label": "Participants", "kind": "", "row": "N", "level": None, "group": group, "n": len(frame)})
    for var in variables:
        column = participants[var.name]
        levels = _levels(column) if var.kind == "categorical" else []
        for group, frame in groups.items():
            values = frame[var.name]
            present = values.dropna()
            base = {"variable": var.name, "label": var.label, "kind": var.kind, "group": group}
            if var.kind == "continuous":
                x = pd.to_numeric(present, errors="raise").astype(float).to_numpy()
                q1, med, q3 = (np.quantile(x, [0.25, 0.5, 0.75]) if len(x) else (np.nan,) * 3)
                rows.append(base | {
                    "row": "summary", "level": None, "n": len(x),
                    "mean": x.mean() if len(x) else np.nan,
                    "sd": x.std(ddof=1) if len(x) > 1 else np.nan,
                    "median": med, "q1": q1, "q3": q3,
                })
            else:
                text = present.astype(str)
                for level in levels:
                    count = int((text == level).sum())
                    rows.append(base | {
                        "row": "level", "level": level, "n": count, "denominator": len(text),
                        "percent": 100.0 * count / len(text) if len(text) else np.nan,
                    })
            rows.append(base | {"row": "missing", "level": None, "n": int(values.isna().sum())})
    out = pd.DataFrame(rows).reindex(columns=STATS_COLUMNS)
    out["n"] = out["n"].astype("Int64")
    out["denominator"] = pd.array(out["denominator"], dtype="Int64")
    return out


def _smd_continuous(t: np.ndarray, c: np.ndarray) -> float:
    if len(t) < 2 or len(c) < 2:
        return float("nan")
    pooled = np.sqrt((t.var(ddof=1) + c.var(ddof=1)) / 2.0)
    return float((t.mean() - c.mean()) / pooled) if pooled > 0 else float("nan")


def _smd_level(pt: float, pc: float) -> float:
    denom = np.sqrt((pt * (1 - pt) + pc * (1 - pc)) / 2.0)
    return float((pt - pc) / denom) if denom > 0 else float("nan")


def _smd_categorical(pt: np.ndarray, pc: np.ndarray) -> float:
    """Yang & Dalton (2012) multivariate standardised difference over levels 2..k."""
    if len(pt) < 2:
        return 0.0
    t, c = pt[1:], pc[1:]
    s = (np.diag(t) - np.outer(t, t) + np.diag(c) - np.outer(c, c)) / 2.0
    diff = t - c
    # pinv: a level absent from both arms makes S singular; it carries no difference either.
    return float(np.sqrt(max(diff @ np.linalg.pinv(s) @ diff, 0.0)))


def standardised_differences(participants: pd.DataFrame, variables: Sequence[Table1Variable]) -> pd.DataFrame:
    """Standardised differences, treatment vs control: columns ``variable, level, std_diff``.

    One row per variable (``level`` missing; continuous signed, categorical the non-negative
    multivariate value) and, for categorical variables, one signed row per level. Missing values
    are left out (proportions among participants with a value). See the module docstring.
    """
    _check_columns(participants, variables)
    t_frame = participants[participants["arm"] == "treatment"]
    c_frame = participants[participants["arm"] == "control"]
    rows: list[dict[str, object]] = []
    for var in variables:
        if var.kind == "continuous":
            t = pd.to_numeric(t_frame[var.name].dropna()).astype(float).to_numpy()
            c = pd.to_numeric(c_frame[var.name].dropna()).astype(float).to_numpy()
            rows.append({"variable": var.name, "level": None, "std_diff": _smd_continuous(t, c)})
            continue
        levels = _levels(participants[var.name])
        t_text = t_frame[var.name].dropna().astype(str)
        c_text = c_frame[var.name].dropna().astype(str)
        if len(t_text) == 0 or len(c_text) == 0:
            rows.append({"variable": var.name, "level": None, "std_diff": float("nan")})
            continue
        pt = np.array([(t_text == lv).mean() for lv in levels])
        pc = np.array([(c_text == lv).mean() for lv in levels])
        rows.append({"variable": var.name, "level": None, "std_diff": _smd_categorical(pt, pc)})
        rows.extend({"variable": var.name, "level": lv, "std_diff": _smd_level(a, b)} for lv, a, b in zip(levels, pt, pc, strict=True))
    return pd.DataFrame(rows, columns=["variable", "level", "std_diff"])


def suppress_stats(stats: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Table 1 statistics for public release: small counts hidden so that none can be worked out.

    Per variable the counts form a 2-D table: rows the levels and ``missing`` (a continuous
    variable: ``missing`` only), columns the arms; the ``overall`` counts (row totals) and, for a
    categorical variable, the arm sizes (column totals) are published. Cells are hidden by
    :func:`analysis.reporting.suppression.suppress_small_cells` (primary 0 < n < ``threshold``,
    complementary, exact audit). Adds a boolean column ``suppressed``; hidden cells get ``n``
    missing. ``percent`` and ``denominator`` are dropped: a shown percentage with its
    denominator would give the hidden missing count away.
    """
    from analysis.reporting.suppression import suppress_small_cells

    out = stats.copy()
    out["suppressed"] = False
    for _variable, part in out[out["row"].isin(["level", "missing"]) & out["group"].isin(["treatment", "control"])].groupby("variable", sort=False):
        key = part["row"] + ":" + part["level"].astype(str)
        counts = pd.DataFrame({"key": key, "group": part["group"], "n": part["n"].astype(int)}).pivot(
            index="key", columns="group", values="n").reindex(columns=["treatment", "control"])
        categorical = (part["kind"] == "categorical").any()
        mask = suppress_small_cells(counts, threshold, column_totals=bool(categorical))
        hidden = [mask.loc[k, g] for k, g in zip(key, part["group"], strict=True)]
        out.loc[part.index, "suppressed"] = hidden
    out.loc[out["suppressed"], "n"] = pd.NA
    return out.drop(columns=["percent", "denominator"])


def apply_labels(
    participants: pd.DataFrame,
    variables: Sequence[Table1Variable],
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """Participants with each categorical Table 1 variable's codes replaced by their labels.

    A labelled variable becomes a categorical column whose levels are the labels in the order
    the mapping gives them (so Table 1 lists them in that order, with a zero row for a labelled
    level nobody has), then any unlabelled value as it is (sorted). Codes are matched as text
    (``1.0`` as ``'1'``); missing values stay missing. Several codes may share a label.

    Parameters
    ----------
    participants
        One row per participant.
    variables
        The Table 1 variables; only categorical ones are relabelled.
    labels
        Variable -> {code: label} (the plan's ``reporting.labels``, possibly completed with a
        file's value labels).

    Returns
    -------
    pandas.DataFrame
        A copy of ``participants``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.plan import Table1Variable
    >>> people = pd.DataFrame({"arm": ["treatment", "control", "control"], "sex": ["M", "F", None]})
    >>> shown = apply_labels(people, [Table1Variable(name="sex", label="Sex", kind="categorical")],
    ...                      {"sex": {"F": "Female", "M": "Male", "U": "Unknown"}})
    >>> shown["sex"].tolist(), list(shown["sex"].cat.categories)
    (['Male', 'Female', nan], ['Female', 'Male', 'Unknown'])
    """
    from analysis.sources.cells import code_text

    out = participants.copy()
    for var in variables:
        mapping = (labels or {}).get(var.name)
        if var.kind != "categorical" or not mapping or var.name not in out.columns:
            continue
        codes = out[var.name].astype(object).map(lambda v: None if pd.isna(v) else str(code_text(v)))
        labelled = codes.map(dict(mapping))
        shown = labelled.where(labelled.notna(), codes)  # a code without a label stays as it is
        declared = list(dict.fromkeys(mapping.values()))
        extra = sorted(set(shown.dropna()) - set(declared))
        out[var.name] = pd.Categorical(shown, categories=declared + extra)
    return out


def file_value_labels(raw_labels: Mapping[str, Mapping[str, str]], column_of: Mapping[str, str],
                      variables: Sequence[Table1Variable], read_as_labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """The value labels an SPSS or Stata file stores for Table 1 variables the reader left as codes.

    ``raw_labels`` is the file's ``{file column: {code: label}}``, ``column_of`` maps a variable
    to its file column, ``read_as_labels`` names the columns the reader already relabelled (their
    values are labels, not codes, so the file's labels are not applied twice).

    Examples
    --------
    >>> from analysis.plan import Table1Variable
    >>> variables = [Table1Variable(name="sex", label="Sex", kind="categorical"),
    ...              Table1Variable(name="grade", label="Grade", kind="categorical")]
    >>> file_value_labels({"SEX": {"1": "Female"}, "GRD": {"1": "Mild", "2": "Severe"}},
    ...                   {"sex": "SEX", "grade": "GRD"}, variables, read_as_labels=["sex"])
    {'grade': {'1': 'Mild', '2': 'Severe'}}
    """
    out: dict[str, dict[str, str]] = {}
    for var in variables:
        mapping = raw_labels.get(column_of.get(var.name, var.name))
        if var.kind == "categorical" and mapping and var.name not in read_as_labels:
            out[var.name] = dict(mapping)
    return out


def _fmt(x: float, digits: int) -> str:
    return "" if pd.isna(x) else f"{x:.{digits}f}"


def table1_display(
    participants: pd.DataFrame,
    variables: Sequence[Table1Variable],
    arm_labels: dict[str, str] | None = None,
    digits: int = 1,
    suppress_below: int | None = None,
) -> pd.DataFrame:
    """The printable Table 1: one text row per line, columns ``Characteristic``, one per arm, Overall, Std. difference.

    Continuous variables get "Mean (SD)" and "Median [Q1, Q3]" lines; categorical variables one
    "n (%)" line per level; every variable a "Missing" line. Rounding happens only here.
    "Std. difference" is the standardised difference between arms, not a p-value (Austin 2009;
    Yang & Dalton 2012): (mean_T - mean_C) / sqrt((s_T^2 + s_C^2) / 2) for a continuous variable,
    the multivariate form over the levels for a categorical one (see the module docstring).

    Parameters
    ----------
    participants, variables
        As in :func:`table1_stats`.
    arm_labels
        ``{"treatment": ..., "control": ...}`` column headings (default Treatment, Control).
    digits
        Decimals of means, SDs, quantiles and percentages.
    suppress_below
        For public release: counts hidden as in :func:`suppress_stats` are shown as ``*``,
        categorical lines show n without percentages, and a categorical variable with a hidden
        cell has no standardised difference (it is a function of the hidden proportions).

    Returns
    -------
    pandas.DataFrame
        Text cells: ``Characteristic``, one column per arm and ``Overall`` (headed with their n),
        ``Std. difference``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.plan import Table1Variable
    >>> participants = pd.DataFrame({
    ...     "arm": ["treatment"] * 3 + ["control"] * 3,
    ...     "age": [40, 50, 60, 45, 55, None],
    ...     "sex": ["F", "F", "M", "F", "M", "M"]})
    >>> variables = [Table1Variable(name="age", label="Age (years)", kind="continuous"),
    ...              Table1Variable(name="sex", label="Sex", kind="categorical")]
    >>> table = table1_display(participants, variables, {"treatment": "Drug", "control": "Placebo"})
    >>> print(table.to_string(index=False))
       Characteristic      Drug (N = 3)   Placebo (N = 3)   Overall (N = 6) Std. difference
          Age (years)                                                                  0.00
            Mean (SD)       50.0 (10.0)        50.0 (7.1)        50.0 (7.9)
      Median [Q1, Q3] 50.0 [45.0, 55.0] 50.0 [47.5, 52.5] 50.0 [45.0, 55.0]
              Missing                 0                 1                 1
           Sex, n (%)                                                                  0.71
                    F         2 (66.7%)         1 (33.3%)         3 (50.0%)
                    M         1 (33.3%)         2 (66.7%)         3 (50.0%)
              Missing                 0                 0                 0

    For sex, (1/3 - 2/3) / sqrt((2/9 + 2/9) / 2) = -0.71; a categorical variable's row shows the
    non-negative multivariate value, which equals its absolute value for two levels.
    """
    stats = table1_stats(participants, variables)
    smd = standardised_differences(participants, variables)
    hidden = suppress_stats(stats, suppress_below) if suppress_below is not None else None
    labels = {"treatment": "Treatment", "control": "Control"} | (arm_labels or {})
    n_rows = stats[stats["row"] == "N"].set_index("group")["n"]
    headers = {
        "treatment": f"{labels['treatment']} (N = {n_rows['treatment']})",
        "control": f"{labels['control']} (N = {n_rows['control']})",
        "overall": f"Overall (N = {n_rows['overall']})",
    }
    out: list[dict[str, str]] = []

    def line(text: str, cells: dict[str, str], std: str = "") -> None:
        out.append({"Characteristic": text} | {headers[g]: cells.get(g, "") for g in GROUPS} | {"Std. difference": std})

    for var in variables:
        part = stats[stats["variable"] == var.name]
        overall_smd = smd[(smd["variable"] == var.name) & smd["level"].isna()]["std_diff"].iloc[0]
        by_group = {g: part[part["group"] == g] for g in GROUPS}
        if var.kind == "continuous":
            line(var.label, {}, _fmt(overall_smd, 2))
            summ = {g: by_group[g][by_group[g]["row"] == "summary"].iloc[0] for g in GROUPS}
            line("  Mean (SD)", {g: f"{_fmt(s['mean'], digits)} ({_fmt(s['sd'], digits)})" for g, s in summ.items()})
            line("  Median [Q1, Q3]", {g: f"{_fmt(s['median'], digits)} [{_fmt(s['q1'], digits)}, {_fmt(s['q3'], digits)}]" for g, s in summ.items()})
        else:
            header_at = len(out)
            line(var.label + (", n (%)" if hidden is None else ", n"), {}, _fmt(overall_smd, 2))
            for level in part[part["row"] == "level"]["level"].drop_duplicates():
                cells = {}
                for g in GROUPS:
                    r = by_group[g][(by_group[g]["row"] == "level") & (by_group[g]["level"] == level)].iloc[0]
                    cells[g] = f"{r['n']} ({_fmt(r['percent'], digits)}%)" if hidden is None else _public(hidden, r.name)
                line(f"  {level}", cells)
        if hidden is None:
            line("  Missing", {g: str(by_group[g][by_group[g]["row"] == "missing"]["n"].iloc[0]) for g in GROUPS})
        else:
            line("  Missing", {g: _public(hidden, by_group[g][by_group[g]["row"] == "missing"].index[0]) for g in GROUPS})
            if var.kind == "categorical" and hidden.loc[part.index, "suppressed"].any():
                out[header_at]["Std. difference"] = ""
    return pd.DataFrame(out)


def _public(hidden: pd.DataFrame, index: object) -> str:
    from analysis.reporting.suppression import SUPPRESSED_MARK

    row = hidden.loc[index]
    return SUPPRESSED_MARK if row["suppressed"] else str(row["n"])
