"""The tidy table of a fit (:func:`meta_table`, columns :data:`META_COLUMNS`) and its heterogeneity
in words (:func:`describe_heterogeneity`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import UsageError
from analysis.stats.meta.pooling import MetaResult
from analysis.stats.meta.tau2 import METHOD_NAMES

# Measures analysed on the log scale (yi = log ratio); they may be back-transformed for display.
RATIO_MEASURES = frozenset({"ROM", "RR", "OR", "HR", "IRR"})

META_COLUMNS: list[str] = [
    "type",
    "study",
    "measure",
    "contrast",
    "method",
    "test",
    "estimate",
    "std_error",
    "statistic",
    "df",
    "p_value",
    "ci_low",
    "ci_high",
    "ci_level",
    "pi_low",
    "pi_high",
    "weight",
    "k",
    "tau2",
    "tau2_ci_low",
    "tau2_ci_high",
    "tau",
    "i2",
    "h2",
    "q",
    "q_df",
    "q_p_value",
    "exponentiated",
    "n_treatment",
    "n_control",
    "note",
]
_TEXT = {"type", "study", "measure", "contrast", "method", "test", "note"}
_INTEGER = {"k", "q_df", "n_treatment", "n_control"}


def meta_table(
    result: MetaResult,
    *,
    measure: str = "",
    contrast: str | None = None,
    exponentiate: bool = False,
    n_treatment: Sequence[float] | None = None,
    n_control: Sequence[float] | None = None,
) -> pd.DataFrame:
    """The fit as one tidy table: study rows, a summary row, a heterogeneity row.

    Columns are :data:`META_COLUMNS`, always all of them, in that order:

    * ``type``: ``study``, ``summary`` or ``heterogeneity``; ``study``: the study label (``pooled``
      on the summary row, ``heterogeneity`` on the heterogeneity row);
    * ``measure``, ``contrast`` (``treatment - control``, or ``treatment / control`` for ratio
      measures), ``method`` (REML, DL, PM, ML, FE), ``test`` (z, knha);
    * study rows: ``estimate = yi``, ``std_error = sqrt(vi)``, ``statistic = yi/sqrt(vi)``, normal
      ``p_value`` and CI, ``weight`` in percent of the fitted model;
    * summary row: pooled ``estimate``, ``std_error``, ``statistic`` (z or t), ``df`` (t only),
      ``p_value``, CI, prediction interval ``pi_low``/``pi_high`` (NaN for FE), ``weight`` 100, ``k``;
    * heterogeneity row: ``tau2`` with its Q-profile CI ``tau2_ci_low``/``tau2_ci_high``, ``tau``,
      ``i2`` (percent), ``h2``, Cochran's ``q`` with ``q_df`` and ``q_p_value``, ``k``;
    * ``exponentiated``: True when ``estimate``, CI and PI were back-transformed with ``exp`` (ratio
      measures, on request); ``std_error`` and ``statistic`` always stay on the log scale.

    Examples
    --------
    >>> from analysis.stats.meta.pooling import pool
    >>> fit = pool([0.1, 0.3], [0.01, 0.02], studies=["A", "B"], method="FE")
    >>> meta_table(fit, measure="MD")["type"].tolist()
    ['study', 'study', 'summary', 'heterogeneity']
    """
    ratio = measure in RATIO_MEASURES
    if exponentiate and not ratio:
        raise UsageError(
            f"exponentiate applies to ratio measures ({', '.join(sorted(RATIO_MEASURES))}), not to {measure or 'an unnamed measure'}"
        )
    if contrast is None:
        contrast = "treatment / control" if ratio else "treatment - control"
    y = np.array(result.yi)
    se = np.sqrt(np.array(result.vi))
    z = float(stats.norm.isf((1 - result.ci_level) / 2))
    common = {"measure": measure, "contrast": contrast, "method": result.method, "test": result.test, "ci_level": result.ci_level}
    rows: list[dict[str, object]] = []
    for j, label in enumerate(result.studies):
        rows.append(
            common
            | {
                "type": "study",
                "study": label,
                "estimate": y[j],
                "std_error": se[j],
                "statistic": y[j] / se[j],
                "p_value": 2 * stats.norm.sf(abs(y[j] / se[j])),
                "ci_low": y[j] - z * se[j],
                "ci_high": y[j] + z * se[j],
                "weight": result.weights[j],
                "n_treatment": None if n_treatment is None else n_treatment[j],
                "n_control": None if n_control is None else n_control[j],
            }
        )
    rows.append(
        common
        | {
            "type": "summary",
            "study": "pooled",
            "estimate": result.estimate,
            "std_error": result.std_error,
            "statistic": result.statistic,
            "df": result.df,
            "p_value": result.p_value,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "pi_low": result.pi_low,
            "pi_high": result.pi_high,
            "weight": 100.0,
            "k": result.k,
            "n_treatment": None if n_treatment is None else np.sum(n_treatment),
            "n_control": None if n_control is None else np.sum(n_control),
            "note": METHOD_NAMES[result.method] + ("; Knapp-Hartung (HKSJ) t test" if result.test == "knha" else "")
            + (f"; {result.note}" if result.note else ""),
        }
    )
    rows.append(
        common
        | {
            "type": "heterogeneity",
            "study": "heterogeneity",
            "k": result.k,
            "tau2": result.tau2,
            "tau2_ci_low": result.tau2_ci_low,
            "tau2_ci_high": result.tau2_ci_high,
            "tau": result.tau,
            "i2": result.i2,
            "h2": result.h2,
            "q": result.q,
            "q_df": result.q_df,
            "q_p_value": result.q_p_value,
            "note": "tau^2 CI by Q-profile" if result.method != "FE" else "fixed-effect model: tau^2 = 0 by assumption",
        }
    )
    table = pd.DataFrame(rows).reindex(columns=META_COLUMNS)
    if exponentiate:
        for column in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
            table[column] = np.exp(pd.to_numeric(table[column]))
    table["exponentiated"] = bool(exponentiate)
    return _typed(table)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    for column in table.columns:
        if column in _TEXT:
            table[column] = table[column].astype(object).where(table[column].notna(), None)
        elif column in _INTEGER:
            table[column] = pd.array(pd.to_numeric(table[column]).round(), dtype="Int64")
        elif column == "exponentiated":
            table[column] = table[column].astype(bool)
        else:
            table[column] = pd.to_numeric(table[column]).astype(float)
    return table.reset_index(drop=True)


def describe_heterogeneity(table: pd.DataFrame) -> str:
    """One paragraph in words from the heterogeneity and summary rows of :func:`meta_table`.

    Examples
    --------
    >>> from analysis.stats.meta.pooling import pool
    >>> fit = pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.01], method="DL")
    >>> describe_heterogeneity(meta_table(fit, measure="MD")).startswith("Across 3 studies")
    True
    """
    het = table.loc[table["type"] == "heterogeneity"].iloc[0]
    summary = table.loc[table["type"] == "summary"].iloc[0]
    level = f"{100 * summary['ci_level']:g}%"
    i2 = het["i2"]
    band = "low" if i2 < 30 else "moderate" if i2 < 60 else "substantial" if i2 < 75 else "considerable"
    text = (
        f"Across {int(het['k'])} studies, Cochran's Q = {het['q']:.2f} on {int(het['q_df'])} df "
        f"(p {_p(het['q_p_value'])}); I\u00b2 = {i2:.1f}% ({band} heterogeneity by the Cochrane "
        f"Handbook's rough guide), H\u00b2 = {het['h2']:.2f}."
    )
    if summary["method"] != "FE":
        text += (
            f" The between-study variance \u03c4\u00b2 = {het['tau2']:.4g} (\u03c4 = {het['tau']:.4g}; "
            f"{level} Q-profile CI {het['tau2_ci_low']:.4g} to {het['tau2_ci_high']:.4g})."
        )
        if np.isfinite(summary["pi_low"]):
            text += (
                f" The {level} prediction interval for the effect in a new study runs from "
                f"{summary['pi_low']:.3g} to {summary['pi_high']:.3g}."
            )
    else:
        text += " The fixed-effect model assumes no between-study variance."
    return text


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
