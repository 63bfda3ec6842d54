"""Why five of mmrm's SAS Kenward-Roger references differ from trialkit (sas_kr_fev.md).

For each structure: trialkit at its REML optimum against SAS's unrounded TRT - PBO contrast, and
the independent dense Kenward-Roger of tests/stats/models/test_mmrm_sas_kr.py evaluated at the
covariance parameters SAS printed (and at 12 draws within their rounding), i.e. at SAS's own
stopping point rather than at the optimum. TOEP is also evaluated with the observed information
taken in SAS's profiled parameters (residual variance and ratios to it), as SAS fits it
("Residual Variance Method: Profile"); off the optimum the observed information depends on the
parameterisation. Run from the repository root (about a minute):

    .venv/bin/python tests/reference/sas_kr_fev_diagnose.py
"""

from __future__ import annotations

import numpy as np

from tests.stats.models.test_mmrm_sas_kr import (
    SAS_PARAMETERS,
    STRUCTURES,
    fit,
    half_unit,
    independent_kr,
)

# SAS prints AR(1) before Residual and TOEP(2..4) before Residual; SAS_PARAMETERS takes the
# variance first
PRINTED_ORDER = {"ar1": [1, 0], "toep": [3, 0, 1, 2]}


def printed_parameters(sas_name: str) -> tuple[np.ndarray, np.ndarray]:
    printed = list(STRUCTURES[sas_name]["runs"]["kenward-roger"]["covariance_parameters"].values())
    order = PRINTED_ORDER.get(sas_name, range(len(printed)))
    strings = [printed[i] for i in order]
    return np.array([float(v) for v in strings]), np.array([half_unit(v) for v in strings])


def _triple(result: dict) -> list[float]:
    return [result["estimate"], result["se"], result["df"]]


def _toep_profiled(q):
    """TOEP from SAS's profiled parameters: residual variance, lag covariances over it."""
    return SAS_PARAMETERS["toep"][0](np.concatenate([q[:1], q[0] * q[1:]]))


def relative(values, reference) -> str:
    return " ".join(f"{v / r - 1:+.1e}" for v, r in zip(values, reference, strict=True))


def main() -> None:
    rng = np.random.default_rng(1)
    for sas_name in sorted(STRUCTURES):
        sas = STRUCTURES[sas_name]["runs"]["kenward-roger"]["diff_unrounded"]
        reference = [sas["estimate"], sas["se"], sas["df"]]
        row = fit(sas_name, "kenward-roger").rows("contrast").iloc[0]
        values, half = printed_parameters(sas_name)
        at_sas = _triple(independent_kr(sas_name, values))
        draws = np.array([_triple(independent_kr(
            sas_name, values + rng.uniform(-1, 1, values.size) * half)) for _ in range(12)])
        low, high = draws.min(axis=0), draws.max(axis=0)
        print(f"{sas_name}: relative to SAS (estimate, KR SE, df)\n"
              f"  trialkit at the REML optimum: "
              f"{relative([row['estimate'], row['std_error'], row['df']], reference)}\n"
              f"  independent KR at SAS's printed parameters: {relative(at_sas, reference)}\n"
              f"  over their rounding: [{relative(low, reference)}] to "
              f"[{relative(high, reference)}]")
        if sas_name == "toep":
            profiled = np.r_[values[0], values[1:] / values[0]]
            df = independent_kr("toep", profiled, build=_toep_profiled)["df"]
            print(f"  df with the information in SAS's profiled parameters: "
                  f"{df / sas['df'] - 1:+.1e}")


if __name__ == "__main__":
    main()
