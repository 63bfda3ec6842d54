"""Reading plan-like YAML documents: safe loading (:func:`yaml_mapping`), validation with one-sentence
key errors ("did you mean", :func:`validate_document`), and :func:`parse_plan` / :func:`load_plan`
for the study plan (:func:`read_yaml_document` reads the file).
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from analysis.core.errors import PlanError
from analysis.plan.study import LoadedPlan, Plan

ModelT = TypeVar("ModelT", bound=BaseModel)


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(root: type[BaseModel], error: dict[str, object]) -> str:
    where = _location(tuple(error["loc"]))  # type: ignore[arg-type]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = tuple(error["loc"])[:-1]  # type: ignore[index]
        allowed = _allowed_keys(root, parent)
        close = difflib.get_close_matches(str(tuple(error["loc"])[-1]), allowed, n=1)  # type: ignore[index]
        hint = f"did you mean '{close[0]}'? " if close else ""
        listing = "allowed keys here: " + ", ".join(allowed) if allowed else "see the format's documentation for the allowed keys"
        return f"unknown key '{where}' (found {error['input']!r}); {hint}{listing}"
    if kind == "missing":
        return f"missing required key '{where}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"key '{where}': {message} (found {error['input']!r})"


def _allowed_keys(root: type[BaseModel], parent: tuple[object, ...]) -> list[str]:
    """Keys allowed in the mapping at ``parent`` (dict keys such as outcome names are skipped)."""
    model: type[BaseModel] | None = root
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:  # a dict key (e.g. an outcome name) or a union tag
            continue
        model = _model_in(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def yaml_mapping(text: str, source: str, what: str) -> dict:
    """Safe-load YAML text that must be a mapping; anything else is a one-sentence PlanError."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: {what} must be a YAML mapping of keys to values, found {type(raw).__name__}")
    return raw


def validate_document(model: type[ModelT], raw: dict, source: str) -> ModelT:
    """``model.model_validate(raw)``, with the first problem as one sentence naming the key, what
    was found and what is allowed (a typo'd key is reported before the key it made "missing")."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        more = f" ({len(errors) - 1} more problem(s) after fixing this one)" if len(errors) > 1 else ""
        raise PlanError(f"{source}: {_describe(model, errors[0])}{more}") from None


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse plan YAML text into a validated :class:`Plan`.

    Raises
    ------
    PlanError
        One sentence naming the key, what was found and what is allowed.
    """
    return validate_document(Plan, yaml_mapping(text, source, "a plan"), source)


def load_plan(path: str | Path) -> LoadedPlan:
    """Read and validate a study plan file.

    Examples
    --------
    >>> loaded = load_plan("data/studies/example-precision-release.yaml")  # doctest: +SKIP
    >>> loaded.plan.visits.primary  # doctest: +SKIP
    'week12'
    """
    plan_path, text, sha256 = read_yaml_document(path, "plan file")
    return LoadedPlan(plan=parse_plan(text, str(plan_path)), path=plan_path, sha256=sha256)


def read_yaml_document(path: str | Path, what: str) -> tuple[Path, str, str]:
    """A plan-like YAML file's resolved path, its UTF-8 text (a BOM is accepted) and the SHA-256 of
    its bytes; a missing or non-UTF-8 file is a :class:`PlanError` naming ``what`` it should be."""
    plan_path = Path(path)
    if not plan_path.is_file():
        raise PlanError(f"{what} '{plan_path}' does not exist")
    data = plan_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{plan_path}: not UTF-8 text (byte {exc.start})") from None
    return plan_path.resolve(), text, hashlib.sha256(data).hexdigest()
