"""Reading plan-like YAML documents: safe loading (:func:`yaml_mapping`), validation that lists every
key error at once, one sentence each with "did you mean" (:func:`validate_document`), and :func:`parse_plan` / :func:`load_plan`
for the study plan (:func:`read_yaml_document` reads the file).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import reprlib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from analysis.core.errors import PlanError
from analysis.core.filesystem import check_readable, read_input
from analysis.plan.study import LoadedPlan, Plan

ModelT = TypeVar("ModelT", bound=BaseModel)


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(root: type[BaseModel], error: dict[str, object], listed: set[tuple[object, ...]] | None = None) -> str:
    """One problem as a sentence. ``listed`` collects the mappings whose allowed keys were already
    given (a second unknown key in the same mapping does not repeat them)."""
    where = _location(tuple(error["loc"]))  # type: ignore[arg-type]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = tuple(error["loc"])[:-1]  # type: ignore[index]
        allowed = _allowed_keys(root, parent)
        close = difflib.get_close_matches(str(tuple(error["loc"])[-1]), allowed, n=1)  # type: ignore[index]
        hint = f"did you mean '{close[0]}'? " if close else ""
        listing = "allowed keys here: " + ", ".join(allowed) if allowed else "see the format's documentation for the allowed keys"
        if listed is not None:
            if parent in listed and allowed:
                listing = "allowed keys as above"
            listed.add(parent)
        return f"unknown key '{where}' (found {_shown(error['input'])}); {hint}{listing}"
    if kind == "missing":
        return f"missing required key '{where}'"
    if kind == "finite_number":
        return f"key '{where}' must be a finite number (found {_shown(error['input'])})"
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = ""
    expected = (error.get("ctx") or {}).get("expected") if kind == "literal_error" else None  # type: ignore[union-attr]
    if expected and isinstance(error["input"], str):
        choices = [part.strip(" '\"") for part in str(expected).replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(error["input"], [c for c in choices if c], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"key '{where}': {message} (found {_shown(error['input'])}){hint}"


def _misspelt(errors: list[dict[str, object]]) -> list[dict[str, object]]:
    """Drop a 'missing required key' whose sibling unknown key is its misspelling (``sede`` for
    ``seed``): the unknown key's line already says "did you mean 'seed'?"."""
    unknown = {tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"}  # type: ignore[arg-type]
    kept = []
    for error in errors:
        loc = tuple(error["loc"])  # type: ignore[arg-type]
        if error["type"] == "missing" and loc:
            siblings = [str(u[-1]) for u in unknown if u[:-1] == loc[:-1]]
            if difflib.get_close_matches(str(loc[-1]), siblings, n=1):
                continue
        kept.append(error)
    return kept


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 5, 5, 5, 80, 80


def _shown(value: object) -> str:
    """A value as found in the YAML, cut short (anchors can make a small file hold a huge value)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = _REPR.repr(value)
    return text if len(text) <= 100 else text[:96] + " ..."


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


class RepeatedKeyError(yaml.YAMLError):
    """A mapping of a plan gives the same key twice."""

    def __init__(self, path: str, first: int, second: int) -> None:
        super().__init__(f"key '{path}' is given twice (lines {first} and {second})")
        self.path, self.first, self.second = path, first, second


class PlanLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags, no code) that refuses a key given twice in one mapping:
    ``yaml.safe_load`` keeps the last value and drops the first without a word.

    Keys are compared as written, before merge keys (``<<: *anchor``) are applied, so a key that
    overrides a merged one is allowed, as YAML intends. The check walks the composed node graph
    once (each node once, so anchors and aliases, even recursive ones, cost no more than the text).
    """

    def construct_document(self, node: yaml.Node):
        _refuse_repeated_keys(node)
        return super().construct_document(node)


def _refuse_repeated_keys(root: yaml.Node) -> None:
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in seen:
                        where = ".".join((*path, str(key.value)))
                        raise RepeatedKeyError(where, seen[(key.tag, key.value)], line)
                    seen[(key.tag, key.value)] = line
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((value, path if key.tag == "tag:yaml.org,2002:merge" else (*path, name)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(node.value))


def yaml_mapping(text: str, source: str, what: str) -> dict:
    """Safe-load YAML text that must be a mapping; anything else is a one-sentence PlanError.

    Examples
    --------
    >>> yaml_mapping("seed: 1\\nseed: 2\\n", "plan.yaml", "a plan")
    Traceback (most recent call last):
    ...
    analysis.core.errors.PlanError: plan.yaml: key 'seed' is given twice (lines 1 and 2); give each key once (YAML would silently keep only the last)
    """
    try:
        loader = PlanLoader(text)  # a SafeLoader: what yaml.safe_load does, plus the repeated-key check
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except RepeatedKeyError as exc:
        raise PlanError(f"{source}: {exc}; give each key once (YAML would silently keep only the last)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: {what} must be a YAML mapping of keys to values, found {type(raw).__name__}")
    return raw


MAX_LISTED = 25  # problems listed one per line; beyond that, a count (a generated plan can hold thousands)


def validate_document(model: type[ModelT], raw: dict, source: str) -> ModelT:
    """``model.model_validate(raw)``, with every problem found reported at once: one sentence per
    problem naming the key path, what was found and what is allowed, with a "did you mean" where a
    close key or value exists. One problem is one line (``source: sentence``); several are a count
    and one ``  - sentence`` line each, unknown keys first (a typo'd key is not also reported as
    the required key it made "missing").

    Checks that relate keys to each other (a primary visit among the visit labels, say) run once
    every key is well-formed, so fixing the listed problems can reveal such a problem.

    Examples
    --------
    >>> from analysis.plan.study import Plan
    >>> raw = {"study": {"id": "x", "titel": "X"}, "sede": 1, "data": {}, "arms": {},
    ...        "visits": {"baseline": "b", "time_unit": "month", "followup": [{"label": "m1", "time": 1}],
    ...                   "primary": "m1"}, "outcomes": []}
    >>> try:
    ...     validate_document(Plan, raw, "plan.yaml")
    ... except PlanError as error:
    ...     print(error)  # doctest: +ELLIPSIS
    plan.yaml: 7 problems:
      - unknown key 'study.titel' (found 'X'); did you mean 'title'? allowed keys here: id, title, ...
      - unknown key 'sede' (found 1); did you mean 'seed'? allowed keys here: study, seed, data, ...
      - key 'data': give exactly one data source: participants + measurements, redcap, or adam (found {})
      - missing required key 'arms.treatment'
      - missing required key 'arms.control'
      - key 'visits.time_unit': Input should be 'days', 'weeks' or 'months' (found 'month'); did you mean 'months'?
      - key 'outcomes': List should have at least 1 item after validation, not 0 (found [])
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(_misspelt(exc.errors()), key=lambda e: e["type"] != "extra_forbidden")
        listed: set[tuple[object, ...]] = set()
        lines = [_describe(model, error, listed) for error in errors[:MAX_LISTED]]
        if len(errors) == 1:
            raise PlanError(f"{source}: {lines[0]}") from None
        if len(errors) > MAX_LISTED:
            lines.append(f"... and {len(errors) - MAX_LISTED} more")
        listing = "\n".join(f"  - {line}" for line in lines)
        raise PlanError(f"{source}: {len(errors)} problems:\n{listing}") from None


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

    The file is read as UTF-8 (a BOM is accepted), parsed with a safe YAML loader and validated
    into a :class:`Plan` (:func:`parse_plan`); the format is ``docs/plan.md``.

    Parameters
    ----------
    path
        The plan's YAML file. Data paths inside it are relative to its folder.

    Returns
    -------
    LoadedPlan
        The validated ``plan``, the resolved ``path`` and the ``sha256`` of the file's bytes
        (recorded in the run manifest).

    Raises
    ------
    PlanError
        The file is missing, not UTF-8, not YAML, or breaks the format: one sentence naming the
        key, what was found and what is allowed (exit code 2).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from analysis.core.errors import PlanError
    >>> path = Path(tempfile.mkdtemp()) / "plan.yaml"
    >>> _ = path.write_text('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... ''')
    >>> loaded = load_plan(path)
    >>> loaded.path.name, len(loaded.sha256)
    ('plan.yaml', 64)
    >>> loaded.plan.visits.labels, loaded.plan.visits.weeks
    (['baseline', 'week4', 'week8'], {'baseline': 0.0, 'week4': 4.0, 'week8': 8.0})
    >>> loaded.plan.primary_outcome.name, loaded.plan.analysis.ci_level
    ('pain', 0.95)
    >>> loaded.resolve("participants.csv") == path.parent.resolve() / "participants.csv"
    True

    A typo is an error that names the key and suggests the right one:

    >>> _ = path.write_text(path.read_text().replace("seed: 1", "sede: 1"))
    >>> try:
    ...     load_plan(path)
    ... except PlanError as error:
    ...     print(str(error).split(": ", 1)[1])
    unknown key 'sede' (found 1); did you mean 'seed'? allowed keys here: study, seed, ...
    >>> import shutil
    >>> shutil.rmtree(path.parent)
    """
    plan_path, text, sha256 = read_yaml_document(path, "plan file")
    return LoadedPlan(plan=parse_plan(text, str(plan_path)), path=plan_path, sha256=sha256)


def read_yaml_document(path: str | Path, what: str) -> tuple[Path, str, str]:
    """A plan-like YAML file's resolved path, its UTF-8 text (a BOM is accepted) and the SHA-256 of
    its bytes; a missing or non-UTF-8 file is a :class:`PlanError` naming ``what`` it should be."""
    plan_path = Path(path)
    check_readable(plan_path, f"the {what}")  # a folder or an unreadable file: exit 2 naming it
    if not plan_path.is_file():
        raise PlanError(f"{what} '{plan_path}' does not exist")
    data = read_input(plan_path, f"the {what}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{plan_path}: not UTF-8 text (byte {exc.start})") from None
    return plan_path.resolve(), text, hashlib.sha256(data).hexdigest()
