"""MMRM Kenward-Roger (``DDFM=KR`` and ``DDFM=KR(LINEAR)``) and model-based inference on R
mmrm's ``fev_data`` against SAS PROC MIXED output published in github.com/openpharma/mmrm
(tests/reference/sas_kr_fev.json, provenance in tests/reference/sas_kr_fev.md).

SAS model: ``MODEL FEV1 = ARMCD`` (no visit term; ARMCD ref='PBO'), ``REPEATED AVISIT /
SUBJECT=USUBJID TYPE=<type>``, REML, ``LSMEANS ARMCD / PDIFF CL``. Tolerances: half a unit of the
last printed digit against the listings (plus 1e-6 relative, for values on a rounding boundary),
1e-6 relative against the unrounded CSV values (p-values: the change 1e-6 on t and df makes).

Five of the eight SAS fits (UN, TOEP, ARH(1), ANTE(1), CSH) stopped at SAS's default convergence
criterion (relative Hessian g'H^-1g/|f| < 1e-8) short of the REML optimum: SAS's final -2 Res Log
Like exceeds the minimum by 7e-7 to 1.3e-5 (checked below with a REML likelihood written out
here). Their numbers belong to that point, not to the optimum trialkit reaches; the comparisons
with them are strict xfails carrying the measured differences. An independent dense
Kenward-Roger written here (SAS's parameters, observed REML information) evaluated at SAS's
printed covariance parameters reproduces SAS's unrounded values for these five within the
rounding of those parameters (tests/reference/sas_kr_fev_diagnose.py; numbers in sas_kr_fev.md).
SAS's SP(EXP)(VISITN VISITN2) runs use two coordinates per row (VISITN2 varies by row), which
trialkit's ``sp_exp`` (one time common to all participants) cannot express: not compared. TOEPH's
unrounded df differs by 4.0e-6 relative, cause not established: compared only as printed.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stats.models.mmrm import fit_mmrm
from tests.conftest import REFERENCE

VISITS = ["VIS1", "VIS2", "VIS3", "VIS4"]
SAS = json.loads((REFERENCE / "sas_kr_fev.json").read_text())
STRUCTURES = {name: block for name, block in SAS["structures"].items() if block["trialkit"]}
METHODS = ("kenward-roger", "kenward-roger-linear")
# -2 Res Log Like at SAS's last iterate minus the REML minimum (independent likelihood below)
UNCONVERGED = {"us": 7.6e-6, "toep": 6.9e-7, "arh1": 1.6e-6, "adh": 1.3e-5, "csh": 1.0e-5}


@functools.cache
def data() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "fev_data.csv")


@functools.cache
def fit(sas_name: str, df: str):
    structure = SAS["structures"][sas_name]["trialkit"]
    return fit_mmrm(f"FEV1 ~ ARMCD + {structure}(AVISIT | USUBJID)", data(), df=df,
                    emmeans="ARMCD", reference="PBO", visit_order=VISITS)


def rel(actual, expected) -> float:
    return abs(float(actual) / float(expected) - 1.0)


def half_unit(printed: str) -> float:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0 ** -decimals


def assert_printed(actual: float, printed: str, what: str, relative: float = 1e-6) -> None:
    """``actual``, to the 1e-6 relative tolerance of the unrounded comparisons, rounds to what SAS
    printed: within half a unit of the last printed digit plus 1e-6 |actual|. Without the second
    term a value that agrees with SAS's to 2e-8 relative fails when the two straddle a rounding
    boundary (ar1 KR upper limit of the TRT LS-mean: 45.8759495 here, 45.8760 printed; the SE it
    comes from agrees with SAS's unrounded one to 8e-7)."""
    if printed == "<.0001":
        assert actual < 1e-4, what
        return
    slack = half_unit(printed) * (1 + 1e-9) + relative * abs(actual)
    assert abs(actual - float(printed)) <= slack, f"{what}: {actual!r} vs printed {printed}"


def trialkit_rows(sas_name: str, method: str) -> dict[str, pd.Series]:
    result = fit(sas_name, method)
    lsmeans = result.rows("lsmean").set_index("term")
    coefficients = result.rows("coefficient").set_index("term")
    return {"diff": result.rows("contrast").iloc[0], "TRT": lsmeans.loc["TRT"],
            "PBO": lsmeans.loc["PBO"], "(Intercept)": coefficients.loc["(Intercept)"],
            "ARMCDTRT": coefficients.loc["ARMCDTRT"]}


# --- the data ---------------------------------------------------------------------------------

def test_fev_data_is_the_data_sas_used():
    frame = data()
    assert frame.shape == (800, 10)
    # SAS: Number of Observations Read 800, Used 537; 200 subjects
    for block in STRUCTURES.values():
        for run in block["runs"].values():
            assert int(run["n_obs_used"]) == frame["FEV1"].notna().sum() == 537
    assert frame["USUBJID"].nunique() == 200
    assert fit("ar1", "kenward-roger").n_obs == 537


# --- the REML fit -------------------------------------------------------------------------------

def reml_m2ll(sigma: np.ndarray) -> float:
    """-2 REML log-likelihood of FEV1 ~ ARMCD with visit covariance ``sigma``, written out:
    sum_i log|V_i| + log|X'V^-1X| + r'V^-1 r + (N - p) log(2 pi)."""
    frame = data().dropna(subset=["FEV1"])
    xtx, xty, yty, logdet = np.zeros((2, 2)), np.zeros(2), 0.0, 0.0
    for _, rows in frame.groupby("USUBJID"):
        index = [VISITS.index(v) for v in rows["AVISIT"]]
        v = sigma[np.ix_(index, index)]
        x = np.column_stack([np.ones(len(rows)), (rows["ARMCD"] == "TRT").to_numpy(float)])
        y = rows["FEV1"].to_numpy()
        v_inv = np.linalg.inv(v)
        logdet += np.linalg.slogdet(v)[1]
        xtx += x.T @ v_inv @ x
        xty += x.T @ v_inv @ y
        yty += y @ v_inv @ y
    beta = np.linalg.solve(xtx, xty)
    return float(logdet + np.linalg.slogdet(xtx)[1] + yty - xty @ beta
                 + (len(frame) - 2) * np.log(2 * np.pi))


@pytest.mark.parametrize("sas_name", sorted(STRUCTURES))
def test_reml_criterion_against_sas_iteration_history(sas_name):
    result = fit(sas_name, "kenward-roger")
    independent = reml_m2ll(result.covariance.to_numpy())
    assert rel(result.m2ll, independent) < 1e-11
    printed = STRUCTURES[sas_name]["runs"]["kenward-roger"]["final_iteration"]["m2_res_log_like"]
    if sas_name in UNCONVERGED:
        # SAS stopped short of the minimum; trialkit's criterion is lower by the amount recorded
        gap = float(printed) - independent
        assert gap == pytest.approx(UNCONVERGED[sas_name], rel=0.1)
    else:
        assert_printed(independent, printed, f"{sas_name} -2 Res Log Like", relative=0.0)


# --- an independent Kenward-Roger -------------------------------------------------------------

def _lag() -> np.ndarray:
    return np.abs(np.subtract.outer(np.arange(4), np.arange(4)))


def _het(p, corr):
    sd = np.sqrt(p[:4])
    return np.outer(sd, sd) * corr


# SAS's covariance parameters (Kenward-Roger's second derivatives depend on them) and the map
# from a covariance matrix back to them
SAS_PARAMETERS = {
    "us": (lambda p: _tril(p) + _tril(p).T - np.diag(np.diag(_tril(p))),
           lambda s: s[np.tril_indices(4)]),
    "toep": (lambda p: p[_lag()], lambda s: s[0]),
    "toeph": (lambda p: _het(p, np.concatenate([np.ones(1, dtype=p.dtype), p[4:]])[_lag()]),
              lambda s: np.r_[np.diag(s), s[0, 1:] / np.sqrt(s[0, 0] * np.diag(s)[1:])]),
    "ar1": (lambda p: p[0] * p[1] ** _lag(), lambda s: np.r_[s[0, 0], s[0, 1] / s[0, 0]]),
    "arh1": (lambda p: _het(p, p[4] ** _lag()),
             lambda s: np.r_[np.diag(s), s[0, 1] / np.sqrt(s[0, 0] * s[1, 1])]),
    "adh": (lambda p: _het(p, _ante(p[4:])),
            lambda s: np.r_[np.diag(s), [s[k, k + 1] / np.sqrt(s[k, k] * s[k + 1, k + 1])
                                         for k in range(3)]]),
    "cs": (lambda p: p[0] + p[1] * np.eye(4), lambda s: np.r_[s[0, 1], s[0, 0] - s[0, 1]]),
    "csh": (lambda p: _het(p, np.where(np.eye(4) == 1, 1.0, p[4])),
            lambda s: np.r_[np.diag(s), s[0, 1] / np.sqrt(s[0, 0] * s[1, 1])]),
}


def _tril(p):
    low = np.zeros((4, 4), dtype=p.dtype)
    low[np.tril_indices(4)] = p
    return low


def _ante(rho):
    corr = np.ones((4, 4), dtype=rho.dtype)
    for j in range(4):
        for k in range(4):
            for m in range(min(j, k), max(j, k)):
                corr[j, k] = corr[j, k] * rho[m]
    return corr


def independent_kr(sas_name: str, phi: np.ndarray, build=None) -> dict:
    """Estimate, df and KR standard errors (``se``: full; ``se_linear``: without second
    derivatives) of TRT - PBO at SAS parameters ``phi``: Kenward & Roger (1997) with dense N x N
    matrices and W the inverse observed REML information, its Hessian -tr(P V_i P V_j) +
    tr(P V_ij) + 2 y'P V_i P V_j P y - y'P V_ij P y (of -2 log L_R) over 2. ``build``
    (parameters -> 4 x 4 covariance) replaces SAS's parameterisation."""
    build = build or SAS_PARAMETERS[sas_name][0]
    frame = data().dropna(subset=["FEV1"])
    visit = np.array([VISITS.index(v) for v in frame["AVISIT"]])
    subject = frame["USUBJID"].to_numpy()
    same = subject[:, None] == subject[None, :]
    x = np.column_stack([np.ones(len(frame)), (frame["ARMCD"] == "TRT").to_numpy(float)])
    y = frame["FEV1"].to_numpy()
    k, step = phi.size, 1e-30

    def full(s):
        return np.where(same, s[visit][:, visit], 0.0)

    def jacobian(p):  # complex step: exact to rounding
        out = []
        for i in range(k):
            shifted = p.astype(complex)
            shifted[i] += 1j * step
            out.append(build(shifted).imag / step)
        return np.array(out)

    second = np.zeros((k, k, 4, 4))
    for i in range(k):
        h = 1e-5 * max(abs(phi[i]), 1e-3)
        up, down = phi.copy(), phi.copy()
        up[i] += h
        down[i] -= h
        second[i] = (jacobian(up) - jacobian(down)) / (2 * h)
    second = 0.5 * (second + second.transpose(1, 0, 2, 3))
    v_inv = np.linalg.inv(full(build(phi)))
    xv = x.T @ v_inv
    phi_beta = np.linalg.inv(xv @ x)
    proj = v_inv - xv.T @ phi_beta @ xv
    py = proj @ y
    dv = [full(j) for j in jacobian(phi)]
    p_dv = [proj @ d for d in dv]
    xv_dv = [xv @ d for d in dv]  # X'V^-1 V_i
    dv_py = [d @ py for d in dv]
    hessian = np.zeros((k, k))
    big_r = np.zeros((k, k, 2, 2))
    big_q = np.zeros((k, k, 2, 2))
    for i in range(k):
        for j in range(i, k):
            dvv = full(second[i, j])
            hessian[i, j] = hessian[j, i] = (
                -np.sum(p_dv[i] * p_dv[j].T) + np.sum(proj * dvv)
                + 2 * dv_py[i] @ proj @ dv_py[j] - py @ dvv @ py)
            big_r[i, j] = big_r[j, i] = xv @ dvv @ xv.T
        for j in range(k):
            big_q[i, j] = xv_dv[i] @ v_inv @ xv_dv[j].T
    w = 2 * np.linalg.inv(hessian)
    big_p = [-a @ xv.T for a in xv_dv]
    contrast = np.array([0.0, 1.0])
    variance = contrast @ phi_beta @ contrast
    gradient = np.array([-(contrast @ phi_beta @ p @ phi_beta @ contrast) for p in big_p])
    # q = 1: the KR df is 2 v^2 / (g'Wg), v the unadjusted variance (Kenward & Roger 1997)
    df = 2 * variance**2 / (gradient @ w @ gradient)
    estimate = (phi_beta @ xv @ y) @ contrast
    ses = []
    for r_weight in (0.25, 0.0):  # full, then linear (no second derivatives)
        u = sum(w[i, j] * (big_q[i, j] - big_p[i] @ phi_beta @ big_p[j] - r_weight * big_r[i, j])
                for i in range(k) for j in range(k))
        ses.append(np.sqrt(contrast @ (phi_beta + 2 * phi_beta @ u @ phi_beta) @ contrast))
    return {"estimate": estimate, "df": df, "se": ses[0], "se_linear": ses[1]}


@functools.cache
def independent_at_trialkit_fit(sas_name: str) -> dict:
    phi = SAS_PARAMETERS[sas_name][1](fit(sas_name, "kenward-roger").covariance.to_numpy())
    return independent_kr(sas_name, phi)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sas_name", sorted(STRUCTURES))
def test_kenward_roger_matches_an_independent_computation(sas_name, method):
    expected = independent_at_trialkit_fit(sas_name)
    row = trialkit_rows(sas_name, method)["diff"]
    assert rel(row["estimate"], expected["estimate"]) < 1e-9
    assert rel(row["std_error"], expected["se_linear" if method.endswith("linear") else "se"]) < 1e-6
    assert rel(row["df"], expected["df"]) < 1e-6


# --- against SAS's printed listings -----------------------------------------------------------

def _printed_cases():
    for sas_name, block in sorted(STRUCTURES.items()):
        for method in METHODS:
            marks = ([pytest.mark.xfail(strict=True, reason=PRINTED_XFAIL[sas_name])]
                     if sas_name in UNCONVERGED else [])
            yield pytest.param(sas_name, method, block["runs"][method], marks=marks,
                               id=f"{sas_name}-{method}")


# the first printed number each unconverged SAS fit (see the module docstring) rounds differently
PRINTED_XFAIL = {
    "us": "SAS's UN fit stopped 7.6e-6 above the REML minimum: KR SE of TRT - PBO 0.661300 "
          "here (prints 0.6613), SAS 0.661244 (0.6612)",
    "adh": "SAS's ANTE(1) fit stopped 1.3e-5 above the REML minimum: KR SE of TRT - PBO "
           "0.661793 here (prints 0.6618), SAS 0.661720 (0.6617)",
    "csh": "SAS's CSH fit stopped 1.0e-5 above the REML minimum: KR SE of TRT - PBO 0.674227 "
           "here (prints 0.6742), SAS 0.674148 (0.6741)",
    "arh1": "SAS's ARH(1) fit stopped 1.6e-6 above the REML minimum: TRT LS-mean 43.653516 "
            "here, SAS prints 43.6532 (intercept 39.926795 here, SAS 39.9265)",
    "toep": "SAS's TOEP fit stopped 6.9e-7 above the REML minimum: lower CI limit of TRT - PBO "
            "2.735692 here (prints 2.7357), SAS 2.735771 (2.7358)",
}


@pytest.mark.parametrize(("sas_name", "method", "run"), list(_printed_cases()))
def test_against_the_sas_listing(sas_name, method, run):
    rows = trialkit_rows(sas_name, method)
    columns = {"estimate": "estimate", "se": "std_error", "df": "df", "t": "statistic",
               "p": "p_value", "lower": "ci_low", "upper": "ci_high"}
    for label, printed in [("diff", run["diff_trt_minus_pbo"]), ("TRT", run["lsmeans"]["TRT"]),
                           ("PBO", run["lsmeans"]["PBO"])]:
        for key, column in columns.items():
            actual = rows[label][column]
            if label != "diff" and key in ("t", "p"):  # LS-mean t tests estimate = 0
                actual = rows[label]["estimate"] / rows[label]["std_error"]
                if key == "p":
                    actual = 2 * stats.t.sf(abs(actual), rows[label]["df"])
            assert_printed(actual, printed[key], f"{sas_name} {method} {label} {key}")
    for term, printed in run["solution"].items():
        for key in ("estimate", "se", "df", "t", "p"):
            assert_printed(rows[term][columns[key]], printed[key], f"{term} {key}")
    # one numerator df: F and chi-square are t^2 (KR's scale lambda is 1 when q = 1)
    t = rows["diff"]["statistic"]
    assert_printed(t**2, run["type3_armcd"]["f"], "F")
    assert_printed(t**2, run["type3_armcd"]["chisq"], "chi-square")
    assert_printed(rows["diff"]["df"], run["type3_armcd"]["den_df"], "den df")


# --- against SAS's unrounded output -----------------------------------------------------------

def p_tolerance(t: float, df: float, p: float) -> float:
    """The p-value change from moving SAS's t and df by 1e-6 relative (|d log p / d log t| is
    about t^2, so p carries a 1e-6 tolerance on t amplified ~30-fold here)."""
    corners = [2 * stats.t.sf(abs(t) * (1 + a), df * (1 + b))
               for a in (-1e-6, 1e-6) for b in (-1e-6, 1e-6)]
    return max(abs(c - p) for c in corners)


UNROUNDED_XFAIL = {
    "us": "SAS's UN fit stopped 7.6e-6 above the REML minimum: trialkit at the optimum differs "
          "by estimate +6.4e-6, SE +8.6e-5, df -2.65e-4 (relative); at SAS's printed covariance "
          "an independent KR gives +3e-7, -3e-7, -2e-6",
    "toep": "SAS's TOEP fit stopped 6.9e-7 above the REML minimum: estimate -3.6e-6, SE +3.6e-5, "
            "df -8.5e-5; at SAS's printed covariance (Hessian in SAS's profiled parameters) an "
            "independent KR gives +1e-7, -2e-7, +1e-6",
    "arh1": "SAS's ARH(1) fit stopped 1.6e-6 above the REML minimum: estimate -5.9e-6, "
            "SE +8.6e-6, df -7.5e-5; at SAS's printed covariance an independent KR is within the "
            "parameters' rounding",
    "adh": "SAS's ANTE(1) fit stopped 1.3e-5 above the REML minimum: estimate +3.6e-6, "
           "SE +1.1e-4, df -4.0e-4; at SAS's printed covariance an independent KR gives -5e-6, "
           "+5e-6, -7e-6 (within the parameters' rounding)",
    "csh": "SAS's CSH fit stopped 1.0e-5 above the REML minimum: estimate +2.8e-5, SE +1.2e-4, "
           "df -3.7e-4; at SAS's printed covariance an independent KR gives +3e-7, -1e-6, +5e-6",
}


def _unrounded_cases():
    # toeph is left out: estimate and SE agree to 7e-7 and 3e-7 but the df differs by 4.0e-6
    # relative (SAS's -2 Res Log Like equals the minimum to 4e-9); cause not established
    for sas_name in ("ar1", "cs", *UNCONVERGED):
        for method in METHODS:
            marks = ([pytest.mark.xfail(strict=True, reason=UNROUNDED_XFAIL[sas_name])]
                     if sas_name in UNCONVERGED else [])
            yield pytest.param(sas_name, method, marks=marks, id=f"{sas_name}-{method}")


@pytest.mark.parametrize(("sas_name", "method"), list(_unrounded_cases()))
def test_contrast_against_sas_unrounded(sas_name, method):
    expected = STRUCTURES[sas_name]["runs"][method]["diff_unrounded"]
    row = trialkit_rows(sas_name, method)["diff"]
    for key, column in (("estimate", "estimate"), ("se", "std_error"), ("df", "df"),
                        ("t", "statistic"), ("lower", "ci_low"), ("upper", "ci_high")):
        assert rel(row[column], expected[key]) < 1e-6, key
    assert abs(row["p_value"] - expected["p"]) <= p_tolerance(expected["t"], expected["df"],
                                                              expected["p"])


PREDICTION_XFAIL = {
    "us": "SAS's UN fit stopped 7.6e-6 above the REML minimum: LS-means differ by -1.5e-5 (TRT) "
          "and -1.6e-5 (PBO), model-based SEs by +7.0e-5 and +7.5e-5 relative; at SAS's printed "
          "covariance the PBO LS-mean is 41.005762 against SAS's 41.005773 (3e-7)",
    "toep": "SAS's TOEP fit stopped 6.9e-7 above the REML minimum: LS-mean SEs differ by +3.8e-5 "
            "(model-based) and +3.7e-5 (KR) relative",
}


def _prediction_cases():
    ddfm = {"kenwardroger": "kenward-roger", "satterthwaite": "satterthwaite"}
    for sas_name, runs in sorted(SAS["lsmean_predictions"].items()):
        if sas_name == "spexp":  # two coordinates per row: not a trialkit structure
            continue
        for sas_ddfm, entry in sorted(runs.items()):
            if "not_used" in entry:
                continue
            marks = ([pytest.mark.xfail(strict=True, reason=PREDICTION_XFAIL[sas_name])]
                     if sas_name in UNCONVERGED else [])
            yield pytest.param(sas_name, ddfm[sas_ddfm], entry, marks=marks,
                               id=f"{sas_name}-{sas_ddfm}")


@pytest.mark.parametrize(("sas_name", "method", "entry"), list(_prediction_cases()))
def test_lsmeans_against_sas_predictions(sas_name, method, entry):
    """OUTPM= predictions x'beta with their standard errors: the LS-mean of the row's arm, with
    the model-based SE (DDFM=SATTERTHWAITE) or the KR-adjusted one (DDFM=KR)."""
    rows = trialkit_rows(sas_name, method)
    for arm in ("TRT", "PBO"):
        expected = entry[f"lsmean_{arm}"]
        assert rel(rows[arm]["estimate"], expected["estimate"]) < 1e-6
        assert rel(rows[arm]["std_error"], expected["se"]) < 1e-6
