"""Meta-analysis of per-study effect sizes: fixed effect and random effects (REML, DL, PM, ML).

The model is metafor's ``rma.uni`` without moderators: ``y_i = mu + u_i + e_i`` with
``e_i ~ N(0, v_i)`` (``v_i`` known) and ``u_i ~ N(0, tau^2)`` (``tau^2 = 0`` for the fixed-effect
model). Given ``tau^2``, the pooled estimate is the inverse-variance mean with weights
``w_i = 1 / (v_i + tau^2)``; that step and Cochran's Q come from statsmodels'
:func:`statsmodels.stats.meta_analysis.combine_effects` (its fixed-effect part applied to the
variances ``v_i + tau^2``), as does the DerSimonian-Laird ``tau^2``. REML and ML, which statsmodels
does not offer, Paule-Mandel (statsmodels' iteration can return 0 near convergence, see
:func:`estimate_tau2`) and the Q-profile confidence interval for ``tau^2`` are solved here.

Every number matches metafor 4 (``rma``, ``predict``, ``confint``) as documented in the functions
below; ``tests/test_meta.py`` compares against ``tests/reference/normand1999_ref.json``.

The tidy table (:func:`meta_table`) stacks one row per study (``type = "study"``), one summary row
(``type = "summary"``) and one row of heterogeneity statistics (``type = "heterogeneity"``) in the
fixed columns :data:`META_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from analysis.core.errors import DataError, UsageError, failure
from analysis.core.tidy import check_ci_level

Method = Literal["REML", "DL", "PM", "ML", "FE"]
Test = Literal["z", "knha"]
METHODS: tuple[str, ...] = ("REML", "DL", "PM", "ML", "FE")
TESTS: tuple[str, ...] = ("z", "knha")
METHOD_NAMES = {
    "REML": "random effects, tau^2 by REML",
    "DL": "random effects, tau^2 by DerSimonian-Laird",
    "PM": "random effects, tau^2 by Paule-Mandel",
    "ML": "random effects, tau^2 by ML",
    "FE": "fixed effect (inverse variance)",
}
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


@dataclass(frozen=True)
class MetaResult:
    """A fitted meta-analysis (one outcome, one model), on the analysis scale.

    Attributes
    ----------
    method, test, ci_level
        As requested (``method`` one of REML, DL, PM, ML, FE; ``test`` z or knha).
    studies, yi, vi
        The input, in input order.
    weights
        Per-study weights in percent (sum 100), ``w_i = 1 / (v_i + tau^2)`` normalised.
    k
        Number of studies.
    estimate, std_error, statistic, df, p_value, ci_low, ci_high
        Pooled estimate, its standard error (Knapp-Hartung-adjusted when ``test = "knha"``), z or t
        statistic, t degrees of freedom (``k - 1``; NaN for z), two-sided p-value and CI.
    pi_low, pi_high
        Prediction interval for the true effect in a new study (NaN for the fixed-effect model).
    tau2, tau2_ci_low, tau2_ci_high, tau
        Between-study variance, its Q-profile CI (NaN for FE and for k = 1), its square root.
    i2, h2
        I^2 (percent) and H^2 as metafor defines them for the fitted model.
    q, q_df, q_p_value
        Cochran's Q, its degrees of freedom ``k - 1`` and chi-square p-value.
    """

    method: str
    test: str
    ci_level: float
    studies: tuple[str, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    weights: tuple[float, ...]
    k: int
    estimate: float
    std_error: float
    statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p_value: float


# ----------------------------------------------------------------------------------------------
# Building blocks


def _arrays(yi: Sequence[float] | np.ndarray, vi: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise UsageError(f"yi and vi must have the same length (found {y.size} and {v.size})")
    if y.size == 0:
        raise UsageError("a meta-analysis needs at least one study (found none)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise UsageError("yi and vi must be finite numbers (found a missing or infinite value)")
    if np.any(v <= 0):
        raise UsageError(f"every sampling variance vi must be > 0 (found {v[v <= 0][0]!r})")
    return y, v


def _inverse_variance(y: np.ndarray, v: np.ndarray):
    """statsmodels' inverse-variance pooling of ``y`` with variances ``v`` (its fixed-effect part).

    ``combine_effects`` also computes an untruncated DL random-effects fit and HKSJ scales that
    divide by ``k - 1``; those parts are unused here and may divide by zero or overflow (k = 1, a
    negative raw DL tau^2, Q near 0), so their floating-point warnings are silenced.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return combine_effects(y, v, method_re="dl")


def generalized_q(yi: Sequence[float], vi: Sequence[float], tau2: float) -> float:
    """Generalised Q statistic ``Q(tau^2) = sum_i w_i (y_i - mu_w)^2``, ``w_i = 1/(v_i + tau^2)``.

    ``Q(0)`` is Cochran's Q. ``Q(tau^2)`` decreases in ``tau^2``; Paule-Mandel solves
    ``Q(tau^2) = k - 1`` and the Q-profile CI solves it at chi-square quantiles (Viechtbauer 2007).

    Examples
    --------
    >>> round(generalized_q([0.0, 1.0], [1.0, 1.0], 0.0), 6)
    0.5
    """
    y, v = _arrays(yi, vi)
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def log_likelihood(yi: Sequence[float], vi: Sequence[float], tau2: float, *, reml: bool = True) -> float:
    """(Restricted) log-likelihood of the random-effects model at ``tau^2``, ``mu`` profiled out.

    ``ll_ML = -1/2 [k log(2 pi) + sum log(v_i + tau^2) + sum w_i (y_i - mu_w)^2]`` and
    ``ll_REML = ll_ML + 1/2 log(2 pi) - 1/2 log(sum w_i)``, as in metafor's ``logLik.rma``
    (which adds the constant ``1/2 log|X'X| = 0`` for the intercept-only model).

    Examples
    --------
    >>> round(log_likelihood([0.0], [1.0], 0.0, reml=False), 6)
    -0.918939
    """
    y, v = _arrays(yi, vi)
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    ll = -0.5 * (y.size * np.log(2 * np.pi) + np.sum(np.log(v + tau2)) + np.sum(w * (y - mu) ** 2))
    if reml:
        ll += 0.5 * np.log(2 * np.pi) - 0.5 * np.log(np.sum(w))
    return float(ll)


def _score(y: np.ndarray, v: np.ndarray, tau2: np.ndarray, reml: bool) -> np.ndarray:
    """d ll / d tau^2 (times 2), vectorised over a grid of tau^2 values."""
    w = 1.0 / (v[None, :] + np.atleast_1d(tau2)[:, None])
    sw = w.sum(axis=1)
    mu = (w * y).sum(axis=1) / sw
    score = (w**2 * (y - mu[:, None]) ** 2).sum(axis=1) - sw
    if reml:
        score += (w**2).sum(axis=1) / sw
    return score


def _tau2_likelihood(y: np.ndarray, v: np.ndarray, reml: bool) -> float:
    """Global maximiser of the (restricted) likelihood over ``tau^2 >= 0``.

    The score is evaluated on a log-spaced grid; every sign change from + to - brackets a local
    maximum that is solved to machine precision with Brent's method, and the best of those and the
    boundary ``tau^2 = 0`` is returned (metafor reaches the same point by Fisher scoring from a
    moment estimate, truncating at 0).
    """
    if y.size == 1:
        return 0.0
    upper = 10.0 * (np.ptp(y) ** 2 + v.max())
    while _score(y, v, np.array([upper]), reml)[0] >= 0:
        upper *= 10.0
    grid = np.concatenate([[0.0], upper * np.logspace(-12, 0, 481)])
    score = _score(y, v, grid, reml)
    candidates = [0.0]
    for j in np.flatnonzero((score[:-1] > 0) & (score[1:] <= 0)):
        if score[j + 1] == 0:
            candidates.append(float(grid[j + 1]))
            continue
        root = optimize.brentq(
            lambda t: _score(y, v, np.array([t]), reml)[0], grid[j], grid[j + 1], xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500
        )
        candidates.append(float(root))
    return max(candidates, key=lambda t: log_likelihood(y, v, t, reml=reml))


def estimate_tau2(yi: Sequence[float], vi: Sequence[float], method: Method = "REML") -> float:
    """Between-study variance ``tau^2`` by REML, ML, DerSimonian-Laird or Paule-Mandel (0 for FE).

    * DL: ``max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = 1/v`` (statsmodels'
      ``combine_effects(method_re="dl")``, truncated at 0 as metafor does).
    * PM: root of ``Q(tau^2) = k - 1``, 0 when ``Q(0) <= k - 1``, solved by Brent's method on the
      monotone generalised Q. (statsmodels' PM iteration is not used: once it is close to the root,
      rounding can make ``Q - (k - 1)`` slightly negative and it then returns 0.)
    * ML / REML: maximiser of the (restricted) likelihood over ``tau^2 >= 0``; at an interior
      maximum ``sum w^2 (y - mu)^2 = sum w`` (ML) or ``sum w - sum w^2 / sum w`` (REML).

    Matches metafor's ``rma(yi, vi, method=...)$tau2`` (see tests for the tolerances reached).

    Examples
    --------
    >>> round(estimate_tau2([0.0, 2.0], [1.0, 1.0], "DL"), 6)
    1.0
    """
    y, v = _arrays(yi, vi)
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)} (found {method!r})")
    if method == "FE" or y.size == 1:
        return 0.0
    if method == "DL":
        return max(0.0, float(_inverse_variance(y, v).tau2))
    if method == "PM":
        return _q_root(y, v, float(y.size - 1))
    return _tau2_likelihood(y, v, reml=(method == "REML"))


def _q_root(y: np.ndarray, v: np.ndarray, target: float) -> float:
    """``tau^2 >= 0`` with ``Q(tau^2) = target``; 0 when ``Q(0) <= target`` (Q decreases in tau^2)."""
    if generalized_q(y, v, 0.0) <= target:
        return 0.0
    upper = 10.0 * (np.ptp(y) ** 2 + v.max())
    while generalized_q(y, v, upper) >= target:
        upper *= 10.0
    return float(
        optimize.brentq(lambda t: generalized_q(y, v, t) - target, 0.0, upper, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    )


def tau2_confint(yi: Sequence[float], vi: Sequence[float], ci_level: float = 0.95) -> tuple[float, float]:
    """Q-profile confidence interval for ``tau^2`` (Viechtbauer 2007; metafor ``confint.rma.uni``).

    The bounds solve ``Q(tau^2) = chi2_{(1+level)/2, k-1}`` (lower) and
    ``Q(tau^2) = chi2_{(1-level)/2, k-1}`` (upper), where ``Q(tau^2)`` is :func:`generalized_q`;
    a bound is 0 when ``Q(0)`` is already below its quantile. Independent of the ``tau^2``
    estimator, as in metafor. NaN for a single study.

    Examples
    --------
    >>> tau2_confint([0.0, 0.0], [1.0, 1.0])
    (0.0, 0.0)
    """
    y, v = _arrays(yi, vi)
    check_ci_level(ci_level)
    k = y.size
    if k < 2:
        return (float("nan"), float("nan"))
    alpha = 1.0 - ci_level
    targets = (stats.chi2.isf(alpha / 2, k - 1), stats.chi2.isf(1 - alpha / 2, k - 1))
    bounds = [_q_root(y, v, float(target)) for target in targets]
    return (bounds[0], bounds[1])


# ----------------------------------------------------------------------------------------------
# The fit


def pool(
    yi: Sequence[float] | np.ndarray,
    vi: Sequence[float] | np.ndarray,
    *,
    studies: Sequence[str] | None = None,
    method: Method = "REML",
    test: Test = "z",
    ci_level: float = 0.95,
    tau2: float | None = None,
) -> MetaResult:
    """Pool effect sizes by a fixed-effect or random-effects model (metafor ``rma.uni``).

    Parameters
    ----------
    yi, vi
        Effect sizes and their sampling variances (``vi > 0``), on the analysis scale (log scale
        for ratio measures).
    studies
        Study labels (default ``"1"``, ``"2"``, ...).
    method
        ``"REML"`` (default), ``"DL"``, ``"PM"``, ``"ML"`` or ``"FE"`` (fixed effect).
    test
        ``"z"`` (normal) or ``"knha"``: Knapp-Hartung / HKSJ, ``Var(mu) = s^2 / sum w`` with
        ``s^2 = sum w (y - mu)^2 / (k - 1)`` (not truncated at 1, as metafor's default) and
        t with ``k - 1`` df.
    ci_level
        Confidence level of the CI, the prediction interval and the ``tau^2`` CI.
    tau2
        Fix ``tau^2`` at this value instead of estimating it (metafor's ``rma(tau2=...)``); a
        random-effects ``method`` is still required.

    Returns
    -------
    MetaResult
        ``estimate = sum w y / sum w``, ``SE = sqrt(1 / sum w)``, ``w = 1/(v + tau^2)``;
        prediction interval ``estimate -/+ crit sqrt(SE^2 + tau^2)`` with crit the normal (z) or
        ``t_{k-1}`` (knha) quantile, as metafor's ``predict.rma``; ``I^2 = 100 tau^2/(tau^2 + s^2)``
        and ``H^2 = (tau^2 + s^2)/s^2`` with ``s^2 = (k-1) sum w / ((sum w)^2 - sum w^2)``,
        ``w = 1/v`` (random effects), or ``I^2 = 100 max(0, (Q - (k-1))/Q)``, ``H^2 = Q/(k-1)``
        (fixed effect), as metafor.

    Examples
    --------
    >>> fit = pool([-0.2, 0.1, -0.4], [0.01, 0.02, 0.015], method="DL")
    >>> round(fit.estimate, 4), fit.k
    (-0.1756, 3)
    """
    y, v = _arrays(yi, vi)
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)} (found {method!r})")
    if test not in TESTS:
        raise UsageError(f"test must be 'z' or 'knha' (found {test!r})")
    check_ci_level(ci_level)
    k = y.size
    if test == "knha" and k < 2:
        raise UsageError("the Knapp-Hartung test needs at least two studies")
    labels = tuple(str(s) for s in studies) if studies is not None else tuple(str(i + 1) for i in range(k))
    if len(labels) != k:
        raise UsageError(f"{len(labels)} study labels for {k} studies")

    if tau2 is None:
        tau2 = estimate_tau2(y, v, method)
    elif method == "FE" or not (np.isfinite(tau2) and tau2 >= 0):
        raise UsageError(f"a fixed tau2 must be a number >= 0 with a random-effects method (found {tau2!r}, {method})")
    fixed = _inverse_variance(y, v)
    fit = _inverse_variance(y, v + tau2)
    estimate = float(fit.mean_effect_fe)
    if test == "knha":
        std_error = float(np.sqrt(fit.var_hksj_fe))
        df = float(k - 1)
        crit = float(stats.t.isf((1 - ci_level) / 2, df))
        statistic = _ratio(estimate, std_error)
        p_value = float(2 * stats.t.sf(abs(statistic), df))
    else:
        std_error = float(np.sqrt(fit.var_eff_w_fe))
        df = float("nan")
        crit = float(stats.norm.isf((1 - ci_level) / 2))
        statistic = _ratio(estimate, std_error)
        p_value = float(2 * stats.norm.sf(abs(statistic)))

    q = float(fixed.q) if k > 1 else 0.0
    q_df = k - 1
    q_p = float(stats.chi2.sf(q, q_df)) if k > 1 else float("nan")
    if method == "FE" or k == 1:
        i2 = 100.0 * max(0.0, (q - q_df) / q) if k > 1 and q > 0 else (0.0 if k > 1 else float("nan"))
        h2 = q / q_df if k > 1 else float("nan")
        pi = (float("nan"), float("nan")) if method == "FE" else (estimate - crit * std_error, estimate + crit * std_error)
        tau_ci = (float("nan"), float("nan"))
    else:
        w = 1.0 / v
        typical = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
        i2 = 100.0 * tau2 / (typical + tau2)
        h2 = (typical + tau2) / typical
        half = crit * np.sqrt(std_error**2 + tau2)
        pi = (estimate - half, estimate + half)
        tau_ci = tau2_confint(y, v, ci_level)

    return MetaResult(
        method=method,
        test=test,
        ci_level=float(ci_level),
        studies=labels,
        yi=tuple(float(x) for x in y),
        vi=tuple(float(x) for x in v),
        weights=tuple(float(x) for x in 100.0 * fit.weights_rel_fe),
        k=k,
        estimate=estimate,
        std_error=std_error,
        statistic=float(statistic),
        df=df,
        p_value=p_value,
        ci_low=estimate - crit * std_error,
        ci_high=estimate + crit * std_error,
        pi_low=float(pi[0]),
        pi_high=float(pi[1]),
        tau2=float(tau2),
        tau2_ci_low=float(tau_ci[0]),
        tau2_ci_high=float(tau_ci[1]),
        tau=float(np.sqrt(tau2)),
        i2=float(i2),
        h2=float(h2),
        q=q,
        q_df=q_df,
        q_p_value=q_p,
    )


# ----------------------------------------------------------------------------------------------
# Tidy tables


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
            "note": METHOD_NAMES[result.method] + ("; Knapp-Hartung (HKSJ) t test" if result.test == "knha" else ""),
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


def leave_one_out(result: MetaResult) -> pd.DataFrame:
    """Refit the model leaving out each study in turn (metafor ``leave1out``).

    Returns one row per omitted study with columns ``study`` (the omitted one), ``k``,
    ``estimate``, ``std_error``, ``statistic``, ``p_value``, ``ci_low``, ``ci_high``, ``tau2``,
    ``i2``, ``h2``, ``q``, ``q_p_value``, on the analysis scale, same method, test and level.

    Examples
    --------
    >>> fit = pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.01], studies=["A", "B", "C"], method="FE")
    >>> leave_one_out(fit)["study"].tolist()
    ['A', 'B', 'C']
    """
    if result.k < 2:
        raise UsageError("leave-one-out needs at least two studies")
    rows = []
    for j, label in enumerate(result.studies):
        keep = [i for i in range(result.k) if i != j]
        fit = pool(
            [result.yi[i] for i in keep],
            [result.vi[i] for i in keep],
            studies=[result.studies[i] for i in keep],
            method=result.method,  # type: ignore[arg-type]
            test=result.test if len(keep) > 1 else "z",  # type: ignore[arg-type]
            ci_level=result.ci_level,
        )
        rows.append(
            {
                "study": label,
                "k": fit.k,
                "estimate": fit.estimate,
                "std_error": fit.std_error,
                "statistic": fit.statistic,
                "p_value": fit.p_value,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "tau2": fit.tau2,
                "i2": fit.i2,
                "h2": fit.h2,
                "q": fit.q,
                "q_p_value": fit.q_p_value,
            }
        )
    return pd.DataFrame(rows)


def describe_heterogeneity(table: pd.DataFrame) -> str:
    """One paragraph in words from the heterogeneity and summary rows of :func:`meta_table`.

    Examples
    --------
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


# ----------------------------------------------------------------------------------------------
# From a table of effect sizes (the CLI and the notebook)

EFFECT_COLUMNS = ("study", "yi", "vi")
ARM_COLUMNS = ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i")


def effects_from_table(frame: pd.DataFrame, *, measure: str | None = None, source: str = "<table>") -> pd.DataFrame:
    """Validate an effects table and return ``study, measure, yi, vi`` (plus ``n1i``/``n2i`` if given).

    The input has a ``study`` column and either ``yi`` and ``vi`` (as ``trialkit escalc`` writes
    them; a ``measure`` column, if present, names the measure) or, with ``measure`` (MD, SMD, SMDH
    or ROM), the arm summaries ``n1i, m1i, sd1i, n2i, m2i, sd2i`` (group 1 = treatment), from which
    ``yi, vi`` are computed by the effect-size engine :func:`analysis.stats.effects.escalc`. Row ``j`` of
    ``frame`` is reported as file row ``j + 2`` (a CSV with one header line).

    Raises
    ------
    DataError
        Listing every failure (file, row, column, rule, value): missing columns, missing or
        non-numeric values, ``vi <= 0``, repeated or empty study labels, fewer than two studies,
        effect sizes the engine cannot compute. Nothing is dropped silently.

    Examples
    --------
    >>> frame = pd.DataFrame({"study": ["A", "B"], "yi": [0.1, 0.3], "vi": [0.01, 0.02]})
    >>> effects_from_table(frame, measure="SMD")["measure"].tolist()
    ['SMD', 'SMD']
    """
    from analysis.stats.effects import BETWEEN_MEASURES, escalc  # the one effect-size engine

    failures: list[dict[str, object]] = []
    columns = list(frame.columns)
    use_arms = measure is not None and not {"yi", "vi"} <= set(columns)
    if use_arms and measure not in BETWEEN_MEASURES:
        raise UsageError(f"--measure must be one of {', '.join(BETWEEN_MEASURES)} for arm summaries (found {measure!r})")
    needed = ("study", *ARM_COLUMNS) if use_arms else EFFECT_COLUMNS
    missing = [c for c in needed if c not in columns]
    if missing:
        hint = "" if use_arms else " (or give arm summaries n1i, m1i, sd1i, n2i, m2i, sd2i with --measure)"
        failures = [failure(source, 1, column, "required column" + hint, "") for column in missing]
        raise DataError(_message(source, failures), pd.DataFrame(failures))

    frame = frame.reset_index(drop=True)
    rows = np.arange(len(frame)) + 2
    study = frame["study"]
    labels = study.astype(object).where(study.notna(), "").map(lambda x: str(x).strip())
    for j in np.flatnonzero((labels == "").to_numpy()):
        failures.append(failure(source, int(rows[j]), "study", "study label is required", ""))
    for j in np.flatnonzero((labels.duplicated(keep="first") & (labels != "")).to_numpy()):
        failures.append(failure(source, int(rows[j]), "study", "study labels must be unique", labels.iloc[j]))
    if len(frame) < 2:
        failures.append(failure(source, "", "study", "a meta-analysis needs at least two studies", len(frame)))

    out = pd.DataFrame({"study": labels.to_numpy(dtype=object)})
    if use_arms:
        if failures:
            raise DataError(_message(source, failures), pd.DataFrame(failures))
        computed = escalc(measure, frame[list(ARM_COLUMNS)], source=source)  # raises for impossible values
        for j in np.flatnonzero(computed["yi"].isna().to_numpy()):
            failures.append(failure(source, int(rows[j]), "yi", f"{measure} cannot be computed: {computed['note'].iloc[j]}", ""))
        out["measure"] = measure
        out["yi"] = computed["yi"].to_numpy(dtype=float)
        out["vi"] = computed["vi"].to_numpy(dtype=float)
        out["n1i"] = pd.to_numeric(frame["n1i"], errors="coerce").to_numpy(dtype=float)
        out["n2i"] = pd.to_numeric(frame["n2i"], errors="coerce").to_numpy(dtype=float)
    else:
        numbers = {}
        for column in ("yi", "vi"):
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce").astype(float)
            for j in np.flatnonzero(values.isna().to_numpy()):
                empty = pd.isna(raw.iloc[j]) or str(raw.iloc[j]).strip() == ""
                failures.append(failure(source, int(rows[j]), column, "value is required" if empty else "must be a number", "" if empty else raw.iloc[j]))
            for j in np.flatnonzero((values.notna() & ~np.isfinite(values)).to_numpy()):
                failures.append(failure(source, int(rows[j]), column, "must be finite", raw.iloc[j]))
            numbers[column] = values
        for j in np.flatnonzero((numbers["vi"] <= 0).to_numpy()):
            failures.append(failure(source, int(rows[j]), "vi", "sampling variance must be > 0", frame["vi"].iloc[j]))
        found = sorted(set(frame["measure"].dropna().astype(str))) if "measure" in columns else []
        if len(found) > 1:
            failures.append(failure(source, "", "measure", "one measure per meta-analysis", ", ".join(found)))
        elif found and measure is not None and found[0] != measure:
            failures.append(failure(source, "", "measure", f"must match --measure {measure}", found[0]))
        out["measure"] = found[0] if found else (measure or "")
        out["yi"] = numbers["yi"].to_numpy()
        out["vi"] = numbers["vi"].to_numpy()
        for column in ("n1i", "n2i"):
            if column in columns:
                out[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if failures:
        failures.sort(key=lambda f: (f["row"] if isinstance(f["row"], int) else 10**12, str(f["column"])))
        raise DataError(_message(source, failures), pd.DataFrame(failures))
    return out


def read_effects(path: str | Path, *, measure: str | None = None) -> pd.DataFrame:
    """Read an effects CSV (see :func:`effects_from_table`) and validate it.

    Cells are read as text so that a bad cell is reported as found; the file must exist.

    Examples
    --------
    >>> read_effects("effects.csv", measure="MD")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"effects file '{path}' does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc})", pd.DataFrame([failure(str(path), "", "", "readable CSV", "")])) from None
    return effects_from_table(frame, measure=measure, source=str(path))


def _message(source: str, failures: list[dict[str, object]]) -> str:
    lines = []
    for f in failures[:20]:
        where = f"row {f['row']}, " if f["row"] != "" else ""
        value = f" (found {f['value']!r})" if f["value"] != "" else ""
        lines.append(f"  {source}: {where}column '{f['column']}': {f['rule']}{value}")
    more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
    return f"{source}: {len(failures)} problem(s) in the effects table:\n" + "\n".join(lines) + more


def meta_analyse(
    effects: pd.DataFrame,
    *,
    method: Method = "REML",
    test: Test = "z",
    ci_level: float = 0.95,
    exponentiate: bool = False,
) -> tuple[MetaResult, pd.DataFrame]:
    """Pool a validated effects table (from :func:`effects_from_table`); returns the fit and its tidy table.

    Examples
    --------
    >>> effects = pd.DataFrame({"study": ["A", "B"], "measure": "MD", "yi": [1.0, 2.0], "vi": [1.0, 1.0]})
    >>> fit, table = meta_analyse(effects, method="FE")
    >>> round(fit.estimate, 6)
    1.5
    """
    measure = str(effects["measure"].iloc[0]) if "measure" in effects.columns and len(effects) else ""
    fit = pool(effects["yi"], effects["vi"], studies=effects["study"].tolist(), method=method, test=test, ci_level=ci_level)
    n1 = effects["n1i"].to_numpy() if "n1i" in effects.columns else None
    n2 = effects["n2i"].to_numpy() if "n2i" in effects.columns else None
    return fit, meta_table(fit, measure=measure, exponentiate=exponentiate, n_treatment=n1, n_control=n2)


def _ratio(estimate: float, std_error: float) -> float:
    """``estimate / std_error``; NaN or inf (not an exception) when a Knapp-Hartung SE is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(estimate) / std_error)
