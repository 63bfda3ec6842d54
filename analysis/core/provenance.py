"""Provenance: SHA-256 of files, the versions of the packages that computed a result, the manifest.

Every run writes ``manifest.json`` (input hashes, plan hash, seed, versions, timings, every file
written with its hash) so that ``trialkit verify`` can rerun it and compare byte by byte.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from analysis.core.notices import manifest_notices

PACKAGES = (
    "trialkit", "numpy", "scipy", "pandas", "statsmodels", "pandera", "pydantic",
    "matplotlib", "papermill", "nbconvert", "pyarrow", "pyreadstat",
)


def sha256_file(path: Path) -> str:
    if path.is_dir():  # a directory of Parquet part files: the digest of its parts' names and digests
        parts = sorted(p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_")))
        listing = "".join(f"{part.name}\t{sha256_file(part)}\n" for part in parts)
        return hashlib.sha256(listing.encode("utf-8")).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    trial,
    seed: int,
    started: datetime,
    timings: dict[str, float],
    written: list[Path],
    root: Path,
    command: list[str] | None,
) -> dict:
    """Everything needed to rerun and check a run: inputs, plan, versions, seed, files written."""
    inputs = []
    for raw in (trial.participants_raw, trial.measurements_raw):
        inputs.append(
            {
                "role": raw.label,
                "path": str(raw.path),
                "sha256": sha256_file(raw.path),
                "bytes": raw.path.stat().st_size,
                "rows": raw.n_rows,
            }
        )
        for extra in raw.inputs:
            inputs.append({"role": f"{raw.label} (supporting file)", "path": str(extra),
                           "sha256": sha256_file(extra), "bytes": extra.stat().st_size})
    return manifest_record(trial.loaded, inputs, seed, started, timings, written, root, command)


def manifest_record(
    loaded,
    inputs: list[dict],
    seed: int,
    started: datetime,
    timings: dict[str, float],
    written: list[Path],
    root: Path,
    command: list[str] | None,
    **extra: object,
) -> dict:
    """The manifest of a run of the plan ``loaded`` (a ``LoadedPlan``) that read ``inputs`` and
    wrote ``written`` under ``root``; ``extra`` entries (e.g. the engine) follow the plan's."""
    files = [
        {"path": str(path.relative_to(root)), "sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(set(written))
    ]
    return {
        "trialkit_version": metadata.version("trialkit"),
        "study": {"id": loaded.plan.study.id, "title": loaded.plan.study.title, "simulated": loaded.plan.study.simulated},
        "command": command if command is not None else sys.argv,
        "working_directory": os.getcwd(),  # relative paths in the command are relative to this
        "plan": {"path": str(loaded.path), "sha256": loaded.sha256},
        **extra,
        "inputs": inputs,
        "seed": seed,
        "render_report": any(path.name == "report.html" for path in written),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timings_seconds": timings,
        "files": files,
        # notices of the run (library warnings in trialkit's words), each with how often it came
        "warnings": manifest_notices(),
    }
