"""Transcribe R mmrm's SAS PROC MIXED reference output for fev_data into sas_kr_fev.json.

The SAS listings (``design/ddfm_covtype/kr*_*.txt``), the ``ods output diffs`` CSVs beside them
and the LS-mean predictions of ``design/predict_interval/*.csv`` are read from an export of
github.com/openpharma/mmrm (Apache-2.0) at the commit named in sas_kr_fev.md::

    git -C <mmrm clone> archive <commit> design | tar -x -C /tmp/mmrm
    python tests/reference/sas_kr_fev_extract.py /tmp/mmrm <commit> tests/reference/sas_kr_fev.json

Printed numbers are kept as the strings SAS printed (their last digit sets the test tolerance);
CSV numbers as the values written there. The df method of a listing is read from its own
"Fixed Effects SE Method" line, not from the file name: mmrm's script swapped the names of the
two SP(EXP) runs (kr_spexp.txt is the KR(LINEAR) run).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

SE_METHOD = {"Kenward-Roger": "kenward-roger", "Prasad-Rao-Jeske-": "kenward-roger-linear"}
SAS_DDFM = {"kenward-roger": "DDFM=KR", "kenward-roger-linear": "DDFM=KR(LINEAR)"}
STRUCTURE = {"us": "UN", "toep": "TOEP", "toeph": "TOEPH", "ar1": "AR(1)", "arh1": "ARH(1)",
             "adh": "ANTE(1)", "cs": "CS", "csh": "CSH", "spexp": "SP(EXP)(VISITN VISITN2)"}
TRIALKIT = {"us": "us", "toep": "toep", "toeph": "toeph", "ar1": "ar1", "arh1": "ar1h",
            "adh": "adh", "cs": "cs", "csh": "csh", "spexp": None}
PREDICT = {"un": "us", "cs": "cs", "ar(1)": "ar1", "toep": "toep",
           "sp(exp)(VISITN VISITN2)": "spexp"}
NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|<\.0001|\."


def _section(text: str, title: str) -> list[str]:
    """Lines of the table titled ``title`` up to the next blank-line-separated title."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    out: list[str] = []
    blank = 0
    for line in lines[start + 1:]:
        if not line.strip():
            blank += 1
            if blank >= 2 and out:
                break
            continue
        blank = 0
        out.append(line)
    return out


def _numbers(line: str) -> list[str]:
    return re.findall(rf"(?<![\w(])(?:{NUMBER})(?![\w)])", line)


def _info(text: str, label: str) -> str:
    match = re.search(rf"{label}\s+(.+?)\s*$", text, flags=re.M)
    return match.group(1) if match else ""


def parse_listing(path: Path) -> dict:
    text = path.read_text()
    se_method = _info(text, "Fixed Effects SE Method")
    method = next(v for k, v in SE_METHOD.items() if se_method.startswith(k))
    history = [line for line in _section(text, "Iteration History") if _numbers(line)]
    final = _numbers(history[-1])
    covparms = {}
    for line in _section(text, "Covariance Parameter Estimates"):
        match = re.match(r"\s*(\S+)\s+(?:USUBJID\s+)?(" + NUMBER + r")\s+0\.05", line)
        if match:
            covparms[match.group(1)] = match.group(2)
    solution = {}
    for line in _section(text, "Solution for Fixed Effects"):
        nums = _numbers(line)
        if line.strip().startswith("Intercept"):
            solution["(Intercept)"] = dict(zip(["estimate", "se", "df", "t", "p"], nums,
                                               strict=True))
        elif re.match(r"\s*ARMCD\s+TRT\s", line):
            solution["ARMCDTRT"] = dict(zip(["estimate", "se", "df", "t", "p"], nums, strict=True))
    type3 = {}
    for line in _section(text, "Type 3 Tests of Fixed Effects"):
        if line.strip().startswith("ARMCD"):
            type3 = dict(zip(["num_df", "den_df", "chisq", "f", "p_chisq", "p_f"],
                             _numbers(line), strict=True))
    keys = ["estimate", "se", "df", "t", "p", "alpha", "lower", "upper"]
    lsmeans = {}
    for line in _section(text, "Least Squares Means"):
        match = re.match(r"\s*ARMCD\s+(TRT|PBO)\s", line)
        if match:
            lsmeans[match.group(1)] = dict(zip(keys, _numbers(line), strict=True))
    diff = {}
    for line in _section(text, "Differences of Least Squares Means"):
        if re.match(r"\s*ARMCD\s+TRT\s+PBO\s", line):
            diff = dict(zip(keys, _numbers(line), strict=True))
    return {
        "method": method,
        "sas_ddfm": SAS_DDFM[method],
        "covariance_structure_printed": _info(text, "Covariance Structure"),
        "fixed_effects_se_method_printed": se_method,
        "residual_variance_method": _info(text, "Residual Variance Method"),
        "n_obs_used": _info(text, "Number of Observations Used"),
        "final_iteration": {"iteration": final[0], "m2_res_log_like": final[2],
                            "criterion": final[3] if len(final) > 3 else None},
        "covariance_parameters": covparms,
        "solution": solution,
        "type3_armcd": type3,
        "lsmeans": lsmeans,
        "diff_trt_minus_pbo": diff,
    }


def parse_diffs_csv(path: Path) -> dict:
    with path.open(newline="") as handle:
        row = next(csv.DictReader(handle))
    names = {"Estimate": "estimate", "StdErr": "se", "DF": "df", "tValue": "t", "Probt": "p",
             "Lower": "lower", "Upper": "upper"}
    return {new: float(row[old]) for old, new in names.items()}


def main(root: str, commit: str, out: str) -> None:
    base = Path(root) / "design"
    structures: dict[str, dict] = {}
    for listing in sorted((base / "ddfm_covtype").glob("kr*_*.txt")):
        name = listing.stem.split("_", 1)[1]
        entry = parse_listing(listing)
        entry["listing_file"] = f"design/ddfm_covtype/{listing.name}"
        entry["diffs_csv_file"] = f"design/ddfm_covtype/{listing.stem}.csv"
        entry["diff_unrounded"] = parse_diffs_csv(listing.with_suffix(".csv"))
        block = structures.setdefault(name, {"sas_type": STRUCTURE[name],
                                             "trialkit": TRIALKIT[name], "runs": {}})
        block["runs"][entry["method"]] = entry
    predictions: dict[str, dict] = {}
    with (Path(__file__).parent / "fev_data.csv").open(newline="") as handle:
        arms = [row["ARMCD"] for row in csv.DictReader(handle)]
    for path in sorted((base / "predict_interval").glob("*.csv")):
        cov, ddfm = path.stem.rsplit("_", 1) if "linear" not in path.stem else (
            path.stem.split("_kenwardroger")[0], "kenwardroger_linear")
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        # rows are fev_data's rows in order; PM (x'beta) is the LS-mean of the row's arm
        by_arm = {arm: {(float(r["PM"]), float(r["PMSD"])) for r, a in zip(rows, arms, strict=True)
                        if a == arm} for arm in ("PBO", "TRT")}
        assert all(len(pairs) == 1 for pairs in by_arm.values()), path
        (pbo,), (trt,) = by_arm["PBO"], by_arm["TRT"]
        predictions.setdefault(PREDICT[cov], {})[ddfm] = {
            "file": f"design/predict_interval/{path.name}",
            "lsmean_PBO": {"estimate": pbo[0], "se": pbo[1]},
            "lsmean_TRT": {"estimate": trt[0], "se": trt[1]},
        }
        if ddfm == "kenwardroger_linear":
            predictions[PREDICT[cov]][ddfm]["not_used"] = (
                "'kenwardroger_linear' is no SAS DDFM= value and the file equals "
                "un_satterthwaite.csv in every digit: not a Kenward-Roger run")
    document = {
        "source": {
            "repository": "https://github.com/openpharma/mmrm",
            "commit": commit,
            "license": "Apache-2.0",
            "data": "data/fev_data.rda -> tests/reference/fev_data.csv (fev_data_to_csv.R)",
            "sas_program": (
                "PROC MIXED DATA=fev cl method=reml; CLASS RACE(ref='Asian') AVISIT(ref='VIS4') "
                "SEX(ref='Male') ARMCD(ref='PBO') USUBJID; MODEL FEV1 = ARMCD / ddfm=<ddfm> "
                "solution chisq; REPEATED AVISIT / subject=USUBJID type=<type> r rcorr; "
                "LSMEANS ARMCD / pdiff=all cl alpha=0.05 slice=AVISIT; "
                "(design/ddfm_covtype/ddfm_covtype.R; predictions: "
                "design/predict_interval/predict_interval.Rmd, same model with outpm=)"),
        },
        "structures": structures,
        "lsmean_predictions": predictions,
    }
    Path(out).write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
