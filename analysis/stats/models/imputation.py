"""Multiple imputation draws: :func:`impute_outcome` draws ``m`` proper imputations of one
outcome's missing values within arm by sequential Bayesian linear regression in time order (the
"norm" method of mice; Rubin 1987 p. 167), vectorised over imputations in NumPy, and returns
them as :class:`Imputations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.core.limits import check_memory
from analysis.stats.models.design import ARMS, check_numeric, require_columns

# --------------------------------------------------------------------------------------------
# Imputation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imputations:
    """``m`` completed copies of one outcome in wide form (participants x [baseline, visits...]).

    Attributes
    ----------
    participant_id, arm
        Row labels (arm 'treatment' / 'control').
    columns
        ``["baseline", <follow-up visits in time order>]``.
    observed
        Boolean (participants x columns): True where the value was observed.
    values
        Array (m x participants x columns): observed values, imputed values where missing.
    m, seed
        Number of imputations and the seed of the generator that drew them.
    """

    participant_id: np.ndarray
    arm: np.ndarray
    columns: list[str]
    observed: np.ndarray
    values: np.ndarray
    m: int
    seed: int


def _wide(dataset: pd.DataFrame, outcome: str, visits: Sequence[str]) -> pd.DataFrame:
    part = dataset.loc[dataset["outcome"] == outcome]
    if part.empty:
        raise UsageError(f"outcome '{outcome}' is not in the analysis dataset")
    part = part.assign(
        participant_id=part["participant_id"].astype(str), visit=part["visit"].astype(str)
    )
    ids = pd.unique(part["participant_id"])
    arm = part.groupby("participant_id", sort=False)["arm"].first().astype(str)
    baseline = part.groupby("participant_id", sort=False)["baseline"].first()
    values = part.pivot_table(
        index="participant_id", columns="visit", values="value", aggfunc="first", dropna=False
    )
    wide = pd.DataFrame(
        {"arm": arm.reindex(ids), "baseline": baseline.reindex(ids).astype(float)}, index=ids
    )
    for visit in visits:
        wide[visit] = (
            values[visit].reindex(ids).astype(float) if visit in values.columns else np.nan
        )
    return wide


def _draw_norm(
    x_obs: np.ndarray, y_obs: np.ndarray, x_mis: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One Bayesian linear-regression imputation step, batched over the leading (imputation) axis.

    x_obs (m, n_obs, p), y_obs (n_obs,), x_mis (m, n_mis, p). Draws sigma*^2 = RSS / chi2(n_obs - p),
    beta* ~ N(beta_hat, sigma*^2 (X'X)^-1), then y* = X_mis beta* + N(0, sigma*^2) (Rubin 1987,
    p. 167; mice's ``norm``), so parameter uncertainty enters every imputation ("proper").
    """
    m, n_obs, p = x_obs.shape
    xtx = np.einsum("mij,mik->mjk", x_obs, x_obs)
    xty = np.einsum("mij,i->mj", x_obs, y_obs)
    inv = np.linalg.inv(xtx)
    beta_hat = np.einsum("mjk,mk->mj", inv, xty)
    resid = y_obs[None, :] - np.einsum("mij,mj->mi", x_obs, beta_hat)
    rss = np.einsum("mi,mi->m", resid, resid)
    sigma = np.sqrt(rss / rng.chisquare(n_obs - p, size=m))
    chol = np.linalg.cholesky(inv)
    beta = beta_hat + sigma[:, None] * np.einsum("mjk,mk->mj", chol, rng.standard_normal((m, p)))
    n_mis = x_mis.shape[1]
    return np.einsum("mij,mj->mi", x_mis, beta) + sigma[:, None] * rng.standard_normal((m, n_mis))


def impute_outcome(
    dataset: pd.DataFrame,
    *,
    outcome: str,
    visits: Sequence[str],
    m: int,
    seed: int,
) -> Imputations:
    """Multiply impute one outcome's missing baseline and follow-up values, within arm.

    Within each arm, columns are imputed in time order (baseline, then each follow-up visit),
    each from an intercept and every earlier column (observed or already imputed), by proper
    Bayesian linear regression (:func:`_draw_norm`); all ``m`` imputations are drawn together.
    For monotone dropout this is the exact monotone-pattern sequential regression method (mice with
    a monotone visit sequence and one iteration); an intermittent missing value is imputed from
    the earlier visits only, and a later observed value does not inform it. Imputing within arm
    keeps the treatment-by-everything interaction in the imputation model.

    Parameters
    ----------
    dataset
        Long analysis dataset.
    outcome
        The outcome to impute.
    visits
        Follow-up visit labels in time order.
    m, seed
        Number of imputations and the seed (``numpy.random.default_rng(seed)``; the treatment arm
        is imputed before the control arm, so the same seed gives the same imputations).

    Examples
    --------
    >>> imp = impute_outcome(data, outcome="pain", visits=["week4", "week12"], m=20, seed=1)  # doctest: +SKIP
    >>> imp.values.shape  # doctest: +SKIP
    (20, 120, 3)
    """
    if m < 2:
        raise UsageError(f"multiple imputation needs m >= 2 imputations, found {m}")
    require_columns(
        dataset,
        ["participant_id", "arm", "outcome", "visit", "value", "baseline"],
        "the analysis dataset",
    )
    wide = _wide(dataset, outcome, visits)
    columns = ["baseline", *visits]
    # the m completed copies, the design of the column being imputed and its observed and missing
    # parts: about four arrays of m x participants x columns
    check_memory(
        32.0 * m * len(wide) * len(columns),
        f"{m:,} imputations of {len(wide):,} participants x {len(columns)} visits",
        "use fewer imputations",
    )
    y = wide[columns].to_numpy(float)
    for k, name in enumerate(columns):
        check_numeric(y[:, k], f"{outcome} at {name}")
    observed = ~np.isnan(y)
    values = np.broadcast_to(y, (m, *y.shape)).copy()
    rng = np.random.default_rng(seed)
    arm = wide["arm"].to_numpy(dtype=object)
    for a in ARMS:
        rows = np.flatnonzero(arm == a)
        for k, name in enumerate(columns):
            obs = rows[observed[rows, k]]
            mis = rows[~observed[rows, k]]
            if mis.size == 0:
                continue
            p = k + 1
            if obs.size < p + 2:
                raise UsageError(
                    f"cannot impute '{outcome}' at '{name}' in the {a} arm: {obs.size} observed "
                    f"value(s), at least {p + 2} needed"
                )
            design = np.concatenate([np.ones((m, y.shape[0], 1)), values[:, :, :k]], axis=2)
            try:
                values[:, mis, k] = _draw_norm(design[:, obs, :], y[obs, k], design[:, mis, :], rng)
            except np.linalg.LinAlgError:
                raise ModelError(
                    f"cannot impute '{outcome}' at '{name}' in the {a} arm: the earlier visits used as "
                    "predictors are collinear (for example a visit at which every observed value is the same)"
                ) from None
    return Imputations(
        participant_id=wide.index.to_numpy(dtype=object),
        arm=arm,
        columns=columns,
        observed=observed,
        values=values,
        m=m,
        seed=seed,
    )
