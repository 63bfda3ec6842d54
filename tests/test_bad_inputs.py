"""The bad-input corpus: every malformed plan or data file gives a clear error and writes nothing.

Each case runs the real command line in a subprocess (``python -m analysis run PLAN --out DIR
--no-report``, or ``trialkit meta`` for effect-size tables) on a small trial with one thing broken,
and asserts

* the documented exit code (1 invalid data, 2 bad plan or usage);
* that stderr names the file and the rule, and -- where they exist -- the row (as numbered in the
  file, header = row 1) and the column, in the same line of the failure table;
* that there is no traceback and no "internal error";
* that the output directory was not created and no staging directory (``*.partial``) is left.

The corpus is data: add a :class:`Case` to :data:`CASES` to add a bad input.
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bad_inputs.cli_child import TrialkitForkServer
from tests.conftest import REPO, SMALL_MEASUREMENTS, SMALL_PARTICIPANTS, SMALL_PLAN

# The conftest's small trial plus eight participants, so that the unbroken trial runs end to end
# (the models need at least five observed values per arm at the primary visit). Rows of the first
# four participants and eleven measurements are as in the conftest.
EXTRA = {5: "T", 6: "C", 7: "T", 8: "C", 9: "T", 10: "C", 11: "T", 12: "C"}
P = SMALL_PARTICIPANTS + "".join(f"P{i},{arm},{30 + 2 * i},completed\n" for i, arm in EXTRA.items())
M = SMALL_MEASUREMENTS + "".join(
    f"P{i},{visit},pain,{value}\n"
    for i, arm in EXTRA.items()
    for visit, value in zip(("base", "w4", "w8"), (6 + i % 3, 4 + i % 3 + i % 2, (2 if arm == "T" else 5) + i % 3), strict=True)
)
APPENDED = 37  # file row of a line appended to M


def _xlsx_with_merged_title() -> bytes:
    """A participants sheet as people make them: a merged title row above the real header."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet["A1"] = "Participants (study small)"
    sheet.merge_cells("A1:D1")
    rows = [line.split(",") for line in P.strip().splitlines()]
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            sheet.cell(row=r, column=c, value=float(value) if value.isdigit() else value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx(rows: list[list[str]]) -> bytes:
    """A one-sheet workbook; cells that look like whole numbers are stored as numbers."""
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append([float(v) if v.isdigit() else v for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    """One bad input and what the user must be told.

    ``file`` is the file the message must name, ``rule`` a fragment of the rule; ``row`` and
    ``column`` (when the failure has them) must appear in the same failure-table line as the file
    and rule. ``where`` is an extra fragment a plan error's one sentence must contain (the key, or
    the line and column of a YAML error).
    """

    id: str
    exit_code: int
    file: str
    rule: str
    row: int | None = None
    column: str | None = None
    where: str | None = None
    plan: Callable[[str], str] = lambda text: text
    participants: str | bytes | None = P  # None: the file is not there
    measurements: str | bytes | None = M
    extra: dict[str, bytes] = field(default_factory=dict)
    meta: str | None = None  # an effects table for `trialkit meta` instead of a run
    meta_args: tuple[str, ...] = ()
    published: Callable[[str], str] | None = None  # an edit of a published-results plan for `trialkit replicate`
    source: str = "native"  # or "redcap" / "adam": the small trial as a REDCap project or ADaM files
    edits: tuple[tuple[str, Callable[[str], str]], ...] = ()  # (file, edit) on the source's files


def _plan(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        if old not in text:
            raise ValueError(f"corpus bug: {old!r} is not in the plan")
        return text.replace(old, new)

    return edit


def _p(old: str, new: str) -> str:
    if old not in P:
        raise ValueError(f"corpus bug: {old!r} is not in the participants file")
    return P.replace(old, new)


def _m(old: str, new: str) -> str:
    if old not in M:
        raise ValueError(f"corpus bug: {old!r} is not in the measurements file")
    return M.replace(old, new)


def _with_dates(odd: dict[int, str]) -> str:
    """P with an ``enrolled_on`` column: ISO dates, except the given file rows."""
    lines = P.strip().splitlines()
    dated = [lines[0] + ",enrolled_on"]
    dated += [f"{line},{odd.get(row, f'2023-01-{row:02d}')}" for row, line in enumerate(lines[1:], start=2)]
    return "\n".join(dated) + "\n"


NATIVE_DATA = "data:\n  participants:\n    path: participants.csv\n  measurements:\n    path: measurements.csv\n"
SOURCE_DATA = {
    "redcap": "data:\n  redcap:\n    export: export.csv\n    dictionary: dictionary.csv\n"
              "    events: {base_arm_1: base, w4_arm_1: w4, w8_arm_1: w8}\n    outcomes: {pain: pain}\n"
              "    missing_data_codes: [UNK]\n",
    "adam": "data:\n  adam:\n    adsl: adsl.csv\n    bds: adbds.csv\n    paramcd: {PAIN: pain}\n",
}


@functools.cache
def source_files(source: str) -> dict[str, str]:
    """The valid trial (P, M) as the files of a REDCap project or of ADaM datasets (CSV), written by
    trialkit's own exporters, so each case breaks one thing in an otherwise valid source."""
    from analysis.pipeline import load_trial
    from analysis.reporting.adam import adam_adsl, adam_bds
    from analysis.reporting.redcap import to_redcap

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
        (root / "participants.csv").write_text(P, encoding="utf-8")
        (root / "measurements.csv").write_text(M, encoding="utf-8")
        trial = load_trial(root / "plan.yaml")
    if source == "redcap":
        project = to_redcap(trial.participants, trial.measurements, trial.plan)
        frames = {"export.csv": project.export, "dictionary.csv": project.dictionary}
    else:
        frames = {"adsl.csv": adam_adsl(trial.participants, trial.plan),
                  "adbds.csv": adam_bds(trial.dataset, trial.participants, trial.plan)}
    return {name: frame.to_csv(index=False, lineterminator="\n") for name, frame in frames.items()}


def _edit(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        if old not in text:
            raise ValueError(f"corpus bug: {old!r} is not in the file")
        return text.replace(old, new, count)

    return edit


PUBLISHED_PLAN = REPO / "data" / "studies" / "precision-release-2023.yaml"

PARTICIPANTS_TO_XLSX = _plan("path: participants.csv", "path: participants.xlsx")
BAD_ID = "P3,T,35,completed"

CASES: list[Case] = [
    # ---------------------------------------------------------------- the plan (exit 2)
    Case("plan-typo-key", 2, "plan.yaml", "unknown key 'visits.primry'", where="did you mean 'primary'",
         plan=_plan("  primary: w8", "  primry: w8")),
    Case("plan-typo-top-level-key", 2, "plan.yaml", "unknown key 'outcome'", where="did you mean 'outcomes'",
         plan=_plan("outcomes:", "outcome:")),
    Case("plan-missing-key", 2, "plan.yaml", "missing required key 'arms.control'",
         plan=_plan("  control: {label: Stretching, codes: [C]}\n", "")),
    Case("plan-wrong-type", 2, "plan.yaml", "key 'seed'", where="'seven'", plan=_plan("seed: 7", "seed: seven")),
    Case("plan-out-of-range-ci-level", 2, "plan.yaml", "key 'analysis.ci_level'", where="1.5",
         plan=lambda t: t + "analysis: {ci_level: 1.5}\n"),
    Case("plan-primary-visit-not-followup", 2, "plan.yaml", "primary visit 'w12' is not one of the follow-up labels",
         plan=_plan("  primary: w8", "  primary: w12")),
    Case("plan-range-reversed", 2, "plan.yaml", "low < high", plan=_plan("range: [0, 10]", "range: [10, 0]")),
    Case("plan-same-code-both-arms", 2, "plan.yaml", "codes ['T'] are given for both arms",
         plan=_plan("codes: [C]", "codes: [C, T]")),
    Case("plan-not-yaml", 2, "plan.yaml", "not valid YAML", where="line 6, column 5",
         plan=_plan("seed: 7\n", "seed: 7\ndata: [unclosed\n")),
    Case("plan-not-a-mapping", 2, "plan.yaml", "must be a YAML mapping", plan=lambda t: "- just\n- a list\n"),
    Case("plan-empty", 2, "plan.yaml", "must be a YAML mapping", plan=lambda t: ""),
    Case("plan-not-utf8", 2, "plan.yaml", "not UTF-8", plan=lambda t: t.replace("Pain NRS", "Douleur \udce9")),
    Case("plan-python-tag", 2, "plan.yaml", "not valid YAML", where="python/object",
         plan=lambda t: t.replace("seed: 7", "seed: !!python/object/apply:os.system ['touch PWNED']")),
    Case("plan-outcome-name-path", 2, "plan.yaml", "key 'outcomes.0.name'", where="../../escape",
         plan=_plan("name: pain", "name: ../../escape")),
    Case("plan-outcome-name-with-console-markup", 2, "plan.yaml", "key 'outcomes.0.name'", where="'[/x]pain'",
         plan=_plan("name: pain", 'name: "[/x]pain"')),
    Case("plan-missing-data-file", 1, "measurements.csv", "file exists",
         measurements=None),
    Case("plan-unknown-format", 1, "measurements.dat", "known format",
         plan=_plan("path: measurements.csv", "path: measurements.dat"), extra={"measurements.dat": M.encode()}),
    # ---------------------------------------------------------------- participants file (exit 1)
    Case("participants-unknown-arm", 1, "participants.csv", "must be one of ['T', 'C']", 4, "arm",
         participants=_p(BAD_ID, "P3,X,35,completed")),
    Case("participants-arm-with-console-markup", 1, "participants.csv", "must be one of ['T', 'C']", 4, "arm",
         participants=_p(BAD_ID, "P3,[/oops]x,35,completed")),
    Case("participants-age-not-number", 1, "participants.csv", "must be a number", 4, "age",
         participants=_p(BAD_ID, "P3,T,thirty-five,completed")),
    Case("participants-age-out-of-range", 1, "participants.csv", "must be within 0 to 120", 4, "age",
         participants=_p(BAD_ID, "P3,T,350,completed")),
    Case("participants-duplicated-id", 1, "participants.csv", "must be unique", 4, "participant_id",
         participants=_p(BAD_ID, "P1,T,35,completed")),
    Case("participants-unknown-disposition", 1, "participants.csv", "must be one of", 4, "disposition",
         participants=_p(BAD_ID, "P3,T,35,finished")),
    Case("participants-empty-id", 1, "participants.csv", "required: must not be empty", 4, "participant_id",
         participants=_p(BAD_ID, ",T,35,completed")),
    Case("participants-missing-column", 1, "participants.csv", "required column", 1, "arm",
         participants="participant_id,age,disposition\nP1,40,completed\nP2,50,completed\n"),
    Case("participants-dates-mixed-formats", 1, "participants.csv", "must be a date written YYYY-MM-DD", 3,
         "enrolled_on", participants=_with_dates({3: "09/01/2023", 4: "2023-1-9", 5: "Jan 16 2023"})),
    Case("participants-empty-file", 1, "participants.csv", "file is empty", participants=b""),
    Case("participants-header-only", 1, "participants.csv", "file is empty",
         participants="participant_id,arm,age,disposition\n"),
    Case("participants-truncated", 1, "participants.csv", "has 4 fields like the header", 5,
         participants=P[: P.index("P4,C,") + 5]),
    Case("participants-semicolons", 1, "participants.csv", "delimiter is ','", 1,
         participants=P.replace(",", ";")),
    Case("participants-latin1", 1, "participants.csv", "text encoding is utf-8", 3,
         participants=_p("P2,C,50,completed", "P2,C,50,completed\u00e9").encode("latin-1")),
    Case("participants-utf16-bom", 1, "participants.csv", "text encoding is utf-8", 1, where="UTF-16 byte-order mark",
         participants=codecs.BOM_UTF16_LE + P.encode("utf-16-le")),
    Case("participants-utf8-bom-and-bad-arm", 1, "participants.csv", "must be one of ['T', 'C']", 4, "arm",
         participants=codecs.BOM_UTF8 + _p(BAD_ID, "P3,X,35,completed").encode()),
    Case("participants-xlsx-merged-title-row", 1, "participants.xlsx", "required column", 1, "participant_id",
         where="row 1 has empty or merged cells, so it is not the header",
         plan=PARTICIPANTS_TO_XLSX, extra={"participants.xlsx": _xlsx_with_merged_title()}),
    Case("participants-xlsx-text-age", 1, "participants.xlsx", "must be a number", 3, "age",
         plan=PARTICIPANTS_TO_XLSX,
         extra={"participants.xlsx": _xlsx([line.split(",") for line in _p("P2,C,50", "P2,C,fifty").splitlines()])}),
    # ---------------------------------------------------------------- measurements file (exit 1)
    Case("measurements-not-a-number", 1, "measurements.csv", "must be a number", 5, "value",
         measurements=_m("P2,base,pain,5", "P2,base,pain,five")),
    Case("measurements-thousands-separator", 1, "measurements.csv", "must be a number", 5, "value",
         measurements=_m("P2,base,pain,5", 'P2,base,pain,"1,005"')),
    Case("measurements-decimal-comma", 1, "measurements.csv", "must be a number", 5, "value",
         measurements=_m("P2,base,pain,5", 'P2,base,pain,"5,5"')),
    Case("measurements-out-of-range", 1, "measurements.csv", "pain must be within its valid range 0 to 10", 6,
         "value", measurements=_m("P2,w4,pain,5", "P2,w4,pain,12")),
    Case("measurements-negative", 1, "measurements.csv", "pain must be within its valid range 0 to 10", 6,
         "value", measurements=_m("P2,w4,pain,5", "P2,w4,pain,-1")),
    Case("measurements-infinite", 1, "measurements.csv", "pain must be within its valid range 0 to 10", 6,
         "value", measurements=_m("P2,w4,pain,5", "P2,w4,pain,inf")),
    Case("measurements-visit-not-in-plan", 1, "measurements.csv", "must be one of the plan's visits", 6, "visit",
         measurements=_m("P2,w4,pain,5", "P2,w6,pain,5")),
    Case("measurements-outcome-not-in-plan", 1, "measurements.csv", "must be one of the plan's outcomes", 6,
         "outcome", measurements=_m("P2,w4,pain,5", "P2,w4,pian,5")),
    Case("measurements-duplicated-visit-row", 1, "measurements.csv", "one row per participant x outcome x visit",
         7, "participant_id", measurements=_m("P2,w8,pain,4", "P2,w4,pain,4")),
    Case("measurements-duplicated-baseline", 1, "measurements.csv", "one row per participant x outcome x visit",
         APPENDED, "participant_id", measurements=M + "P4,base,pain,7\n"),
    Case("measurements-missing-baseline", 1, "participants.csv", "must have a baseline ('base') row for pain", 4,
         "participant_id", measurements=_m("P3,base,pain,7\n", "")),
    Case("measurements-unknown-participant", 1, "measurements.csv",
         "participant must be listed in the participants file", APPENDED, "participant_id",
         measurements=M + "P99,w4,pain,5\n"),
    Case("measurements-empty-participant-id", 1, "measurements.csv", "required: must not be empty", APPENDED,
         "participant_id", measurements=M + ",w4,pain,5\n"),
    Case("measurements-missing-value-column", 1, "measurements.csv", "required column", 1, "value",
         measurements="participant_id,visit,outcome,score\nP1,base,pain,6\n"),
    Case("measurements-empty-file", 1, "measurements.csv", "file is empty", measurements=b"\n\n"),
    Case("measurements-header-only", 1, "measurements.csv", "file is empty",
         measurements="participant_id,visit,outcome,value\n"),
    Case("measurements-truncated", 1, "measurements.csv", "has 4 fields like the header", 12,
         measurements=M[: M.index("P4,w4,") + 5]),
    Case("measurements-tabs", 1, "measurements.csv", "delimiter is ','", 1, measurements=M.replace(",", "\t")),
    Case("measurements-cp1252", 1, "measurements.csv", "text encoding is utf-8", 4,
         measurements=_m("P1,w8,pain,3", "P1,w8,pain,3\u20ac").encode("cp1252")),
    Case("measurements-utf16", 1, "measurements.csv", "text encoding is utf-8", 1, where="UTF-16 byte-order mark",
         measurements=M.encode("utf-16")),
    # ---------------------------------------------------------------- REDCap export + data dictionary (exit 1)
    Case("redcap-above-validation-max", 1, "export.csv", "must be within 0 to 10 (dictionary validation min/max)", 6, "pain", source="redcap",
         edits=(("export.csv", _edit("P2,w4_arm_1,,,,5,", "P2,w4_arm_1,,,,15,")),)),
    Case("redcap-not-an-integer", 1, "export.csv", "must be an integer or one of the declared missing-data codes ['UNK']", 6, "pain", source="redcap",
         edits=(("export.csv", _edit("P2,w4_arm_1,,,,5,", "P2,w4_arm_1,,,,5.5,")),)),
    Case("redcap-undeclared-missing-code", 1, "export.csv", "must be within 0 to 10 (dictionary validation min/max)", 6, "pain", source="redcap",
         edits=(("export.csv", _edit("P2,w4_arm_1,,,,5,", "P2,w4_arm_1,,,,-999,")),)),
    Case("redcap-unknown-event", 1, "export.csv", "event must be mapped to a visit in data.redcap.events", 6, "redcap_event_name", source="redcap",
         edits=(("export.csv", _edit("P2,w4_arm_1,", "P2,w6_arm_1,")),)),
    Case("redcap-unknown-arm-code", 1, "export.csv", "must be one of the dictionary's choices ['C', 'T']", 8, "arm", source="redcap",
         edits=(("export.csv", _edit("P3,base_arm_1,35,T,", "P3,base_arm_1,35,X,")),)),
    Case("redcap-duplicated-record-event", 1, "export.csv", "one row per participant x outcome x visit", 38, "record_id", source="redcap",
         edits=(("export.csv", lambda t: t + "P2,w4_arm_1,,,,5,2,,\n"),)),
    Case("redcap-field-missing-from-dictionary", 1, "export.csv", "column must be a field of the data dictionary dictionary.csv", 1, "pain", source="redcap",
         edits=(("dictionary.csv", lambda t: "\n".join(row for row in t.splitlines() if not row.startswith("pain,")) + "\n"),)),
    Case("redcap-export-header-only", 1, "export.csv", "file is empty", source="redcap",
         edits=(("export.csv", lambda t: t.splitlines()[0] + "\n"),)),
    Case("redcap-export-semicolons", 1, "export.csv", "delimiter is ','", 1, source="redcap",
         edits=(("export.csv", lambda t: t.replace(",", ";")),)),
    # ---------------------------------------------------------------- ADaM ADSL + BDS (exit 1)
    Case("adam-aval-not-a-number", 1, "adbds.csv", "must be a number", 3, "AVAL", source="adam",
         edits=(("adbds.csv", _edit("w4,4.0,4.0,6.0,", "w4,4.0,four,6.0,")),)),
    Case("adam-chg-disagrees", 1, "adbds.csv", "CHG must equal trialkit's derivation (AVAL - BASE)", 3, "CHG", source="adam",
         edits=(("adbds.csv", _edit("w4,4.0,4.0,6.0,-2.0,", "w4,4.0,4.0,6.0,-1.0,")),)),
    Case("adam-unknown-arm", 1, "adsl.csv", "must be one of ['T', 'C']", 2, "TRT01P", source="adam",
         edits=(("adsl.csv", _edit("small,P1,40.0,YEARS,Release,", "small,P1,40.0,YEARS,Placebo,")),)),
    Case("adam-unknown-subject", 1, "adbds.csv", "participant must be listed in the participants file", 38, "USUBJID", source="adam",
         edits=(("adbds.csv", lambda t: t + t.splitlines()[1].replace(",P1,", ",P99,") + "\n"),)),
    Case("adam-missing-aval-column", 1, "adbds.csv", "required ADaM variable", 1, "AVAL", source="adam",
         edits=(("adbds.csv", lambda t: t.replace(",AVAL,", ",AVALX,", 1)),)),
    Case("adam-adsl-empty", 1, "adsl.csv", "file is empty", source="adam", edits=(("adsl.csv", lambda t: ""),)),
    # ---------------------------------------------------------------- published-results plans (`trialkit replicate`)
    Case("published-typo-key", 2, "published.yaml", "unknown key 'follow_up'", where="followup", published=_edit("followup:", "follow_up:")),
    Case("published-wrong-type", 2, "published.yaml", "key 'outcomes.0.decimals'", where="valid integer", published=_edit("decimals: 1", "decimals: one")),
    Case("published-range-reversed", 2, "published.yaml", "key 'outcomes.0.range'", where="low < high", published=_edit("range: [0, 180]", "range: [180, 0]")),
    Case("published-not-yaml", 2, "published.yaml", "not valid YAML", where="line 7", published=_edit("design: parallel_trial", "design: [parallel")),
    # ---------------------------------------------------------------- effect-size tables for `trialkit meta`
    Case("meta-missing-vi-column", 1, "effects.csv", "required column", 1, "vi",
         meta="study,yi\nA,0.1\nB,0.3\n"),
    Case("meta-yi-not-a-number", 1, "effects.csv", "must be a number", 3, "yi",
         meta="study,yi,vi\nA,0.1,0.01\nB,abc,0.02\n"),
    Case("meta-negative-variance", 1, "effects.csv", "sampling variance must be > 0", 2, "vi",
         meta="study,yi,vi\nA,0.1,-0.01\nB,0.3,0.02\n"),
    Case("meta-duplicated-study", 1, "effects.csv", "study labels must be unique", 3, "study",
         meta="study,yi,vi\nA,0.1,0.01\nA,0.3,0.02\n"),
    Case("meta-one-study", 1, "effects.csv", "at least two studies", column="study",
         meta="study,yi,vi\nA,0.1,0.01\n"),
    Case("meta-arm-summaries-missing-sd", 1, "effects.csv", "required column", 1, "sd2i",
         meta="study,n1i,m1i,sd1i,n2i,m2i\nA,20,1,1,20,2\nB,30,1,1,30,2\n", meta_args=("--measure", "SMD")),
]


def _write_inputs(case: Case, folder: Path) -> Path:
    folder.mkdir()
    plan_text = case.plan(SMALL_PLAN)
    if case.source != "native":
        plan_text = plan_text.replace(NATIVE_DATA, SOURCE_DATA[case.source])
        edits = dict(case.edits)
        for name, text in source_files(case.source).items():
            (folder / name).write_text(edits.pop(name, lambda t: t)(text), encoding="utf-8")
        if edits:
            raise ValueError(f"corpus bug: {sorted(edits)} are not files of the {case.source} source")
    plan_path = folder / "plan.yaml"
    if case.id == "plan-not-utf8":
        plan_path.write_bytes(plan_text.encode("utf-8", errors="surrogateescape"))
    else:
        plan_path.write_text(plan_text, encoding="utf-8")
    native = case.source == "native"
    for name, content in (("participants.csv", case.participants), ("measurements.csv", case.measurements)):
        if not native:
            break
        if content is None:
            continue
        data = content if isinstance(content, bytes) else textwrap.dedent(content).encode("utf-8")
        (folder / name).write_bytes(data)
    for name, data in case.extra.items():
        (folder / name).write_bytes(data)
    return plan_path


def _failure_lines(stderr: str) -> list[list[str]]:
    """Cells of every line of the printed failure tables."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in stderr.splitlines() if line.count("│") >= 4]


@pytest.fixture(scope="module")
def trialkit():
    server = TrialkitForkServer()
    yield server
    server.close()


def _run(case: Case, tmp_path: Path, server: TrialkitForkServer | None = None):
    """Write the case's inputs and run the command; return (result, inputs folder, results folder)."""
    inputs = tmp_path / "inputs"
    plan_path = _write_inputs(case, inputs)
    results = tmp_path / "results"
    out = results / "out"
    if case.published is not None:
        published = inputs / "published.yaml"
        published.write_text(case.published(PUBLISHED_PLAN.read_text(encoding="utf-8")), encoding="utf-8")
        argv = ["replicate", str(published), "--out", str(out), "--no-report"]
    elif case.meta is None:
        argv = ["run", str(plan_path), "--out", str(out), "--no-report"]
    else:
        effects = inputs / "effects.csv"
        effects.write_text(case.meta, encoding="utf-8")
        argv = ["meta", "--input", str(effects), *case.meta_args,
                "--output", str(out / "meta.csv"), "--forest", str(out / "forest.png")]
    if server is None:
        result = subprocess.run(
            [sys.executable, "-m", "analysis", *argv], capture_output=True, text=True, cwd=inputs, timeout=120,
            env={k: v for k, v in os.environ.items() if k != "TRIALKIT_DEBUG"} | {"PYTHONPATH": str(REPO)},
        )
    else:
        result = server.run(argv, inputs)
    return result, inputs, results


def _assert_clear_error_and_no_output(case: Case, result, inputs: Path, results: Path) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == case.exit_code, text
    assert "Traceback" not in text and "internal error" not in text, text
    flat = " ".join(result.stderr.split())  # a long message may be wrapped at the console width
    assert case.file in flat, text
    assert case.rule in flat, text
    if case.where is not None:
        assert case.where in flat, text
    if case.row is not None or case.column is not None:
        # the file, row, column and rule are reported together, in one line of the failure table
        matching = [
            cells for cells in _failure_lines(result.stderr)
            if len(cells) == 5 and cells[0] == case.file and case.rule in cells[3]
            and (case.row is None or cells[1] == str(case.row))
            and (case.column is None or cells[2] == case.column)
        ]
        # ... or in one sentence of a plain message ("FILE: row R, column 'C': RULE")
        matching += [
            line for line in result.stderr.splitlines()
            if case.file in line and case.rule in line
            and (case.row is None or f"row {case.row}," in line)
            and (case.column is None or f"column '{case.column}'" in line)
        ]
        assert matching, text
    # nothing was written where outputs go: no output directory, no staging directory
    assert not (results / "out").exists(), text
    leftovers = sorted(p.name for p in results.iterdir()) if results.exists() else []
    assert all(name == "out.validation_failures.csv" for name in leftovers), leftovers
    # and nothing beside the inputs (a plan's YAML tag did not run a command)
    assert sorted(p.name for p in inputs.iterdir() if p.suffix not in {".csv", ".yaml", ".xlsx", ".dat"}) == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_a_clear_error_and_no_output(case: Case, tmp_path: Path, trialkit):
    result, inputs, results = _run(case, tmp_path, trialkit)
    _assert_clear_error_and_no_output(case, result, inputs, results)


SAMPLE = ["plan-typo-key", "participants-truncated", "measurements-thousands-separator", "meta-duplicated-study"]


@pytest.mark.parametrize("case_id", SAMPLE)
def test_the_same_through_python_dash_m(case_id: str, tmp_path: Path):
    """A sample of the corpus through ``python -m analysis`` itself (interpreter start-up included)."""
    case = next(c for c in CASES if c.id == case_id)
    result, inputs, results = _run(case, tmp_path)
    _assert_clear_error_and_no_output(case, result, inputs, results)


@pytest.mark.parametrize("source", ["native", "redcap", "adam"])
def test_a_valid_trial_passes_the_same_harness(source: str, tmp_path: Path, trialkit):
    """The harness itself can tell success from failure: the unbroken small trial runs (exit 0)."""
    valid = Case("valid", 0, "", "", source=source)
    result, _inputs, results = _run(valid, tmp_path, trialkit)
    assert result.returncode == 0, result.stderr
    assert (results / "out" / "manifest.json").is_file()


def test_corpus_is_large_and_covers_every_input_kind():
    assert len(CASES) >= 40
    kinds = {case.id.split("-")[0] for case in CASES}
    assert {"plan", "participants", "measurements", "redcap", "adam", "published", "meta"} <= kinds
    assert len({case.id for case in CASES}) == len(CASES)
