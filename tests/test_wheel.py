"""trialkit as a user installs it: the sdist and a wheel built from it (``python -m build``), the
wheel installed by pip into a fresh virtual environment, every command run from a folder outside
the repository. A data contract, notebook, example file or template missing from the package data,
or a dependency the code imports but does not declare, fails here.

The slowest test of the suite (a minute or two: it installs trialkit's dependencies from the
package index or pip's cache); marked ``slow`` and started first (tests/conftest.py), so that the
rest of the suite runs beside it. ``pytest -m "not slow"`` leaves it out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REFERENCE, REPO

pytestmark = pytest.mark.slow
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

BUNDLED = [
    "analysis/_bundled/data/schemas/participants.yaml",
    "analysis/_bundled/data/schemas/measurements.yaml",
    "analysis/_bundled/notebooks/report.ipynb",
    "analysis/_bundled/notebooks/meta_analysis.ipynb",
    "analysis/_bundled/data/studies/example-precision-release.yaml",
    "analysis/_bundled/data/examples/precision-release-sim/participants.csv",
    "analysis/_bundled/data/examples/precision-release-sim/measurements.csv",
    "analysis/_bundled/templates/study/plan.yaml",
    "analysis/_bundled/templates/study/notebooks/analysis.ipynb",
    f"trialkit-{VERSION}.dist-info/licenses/LICENSE",
]

ARMS = """\
study,n1i,m1i,sd1i,n2i,m2i,sd2i
Alpha 2019,30,4.1,2.0,30,5.3,2.2
Beta 2021,45,3.8,1.9,44,4.6,2.1
Gamma 2022,60,4.4,2.3,58,5.5,2.4
"""


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def test_the_built_wheel_installs_and_runs_outside_the_repository(tmp_path):
    # the sdist, then the wheel built from the sdist (not from the work tree)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, REPO], cwd=tmp_path)
    (wheel,) = dist.glob("trialkit-*.whl")
    (_sdist,) = dist.glob("trialkit-*.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in BUNDLED if name not in names] == []

    # a fresh virtual environment: the wheel and the dependencies it declares, nothing else
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}
    try:
        # --no-compile: Python compiles what it imports; compiling every dependency took half the time
        run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-compile", wheel], cwd=tmp_path, env=env)
        use_the_installed_trialkit(tmp_path / "elsewhere", venv, env)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # some 650 MB; pytest keeps the last runs' tmp folders


def use_the_installed_trialkit(home: Path, venv: Path, env: dict[str, str]) -> None:
    """What a user does after `pip install trialkit`, in ``home``, a folder outside the repository."""
    bin_dir = venv / "bin"
    home.mkdir()
    assert run(["trialkit", "--version"], cwd=home, env=env).stdout == f"trialkit {VERSION}\n"
    where = run([bin_dir / "python", "-c", "from analysis.core.resources import RESOURCES_ROOT; print(RESOURCES_ROOT)"],
                cwd=home, env=env).stdout.strip()
    assert Path(where).parts[-2:] == ("analysis", "_bundled") and Path(where).is_relative_to(venv)

    # a new study folder runs at once: validate, run with the report, the Makefile's notebook
    run(["trialkit", "init", "study"], cwd=home, env=env)
    study = home / "study"
    assert "valid: 120 participants" in run(["trialkit", "validate", "plan.yaml"], cwd=study, env=env).stderr
    run(["trialkit", "run", "plan.yaml"], cwd=study, env=env)
    out = study / "reports" / "study"
    for name in ("report.html", "manifest.json", "tables/models.csv", "tables/effect_sizes.csv", "data/analysis_dataset.csv"):
        assert (out / name).is_file(), name
    assert "SIMULATED" in (out / "report.html").read_text(encoding="utf-8")
    assert len(list((out / "figures").glob("*.png"))) >= 3
    models = pd.read_csv(out / "tables" / "models.csv")
    assert models["estimate"].notna().any()
    if shutil.which("make"):
        run(["make", "report"], cwd=study, env=env)
        assert (study / "reports" / "analysis.html").stat().st_size > 10_000

    # effect sizes and a meta-analysis from files of the user's own, with the meta report notebook
    (home / "arms.csv").write_text(ARMS, encoding="utf-8")
    run(["trialkit", "escalc", "--measure", "SMD", "--input", "arms.csv", "--output", "effects.csv"], cwd=home, env=env)
    effects = pd.read_csv(home / "effects.csv")
    assert effects["yi"].notna().all() and (effects["vi"] > 0).all()
    run(["trialkit", "meta", "--input", "effects.csv", "--output", "pooled.csv", "--report", "meta"], cwd=home, env=env)
    pooled = pd.read_csv(home / "pooled.csv")
    assert pooled.loc[pooled["type"] == "summary", "estimate"].notna().all()
    assert (home / "meta" / "meta_report.html").is_file()

    # an MMRM with Kenward-Roger df from a SAS user's transport file
    import pyreadstat

    fev = pd.read_csv(REFERENCE / "fev_data.csv")
    pyreadstat.write_xport(fev.astype({c: object for c in ("USUBJID", "AVISIT", "ARMCD", "RACE", "SEX")}),
                           str(home / "fev.xpt"))
    run(["trialkit", "mmrm", "fev.xpt", "--formula", "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)",
         "--df", "kenward-roger", "--emmeans", "ARMCD | AVISIT", "--reference", "PBO", "--output", "mmrm.csv"],
        cwd=home, env=env)
    mmrm = pd.read_csv(home / "mmrm.csv")
    contrasts = mmrm.loc[mmrm["type"] == "contrast"]
    assert contrasts["contrast"].tolist() == ["TRT - PBO"] * 4
    assert contrasts["df"].between(100, 200).all() and contrasts["std_error"].gt(0).all()
