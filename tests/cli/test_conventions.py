"""Command-line conventions every ``trialkit`` command follows.

``trialkit --help`` lists the commands in the order of the work and loads no scientific library;
``--version`` prints ``trialkit <version>``; shell completion is offered; metavars are capitals
(``PLAN``, ``DIR``, ``FILE``, ``N``, ``LEVEL``), flags show no value, defaults are shown; choice
values are matched in any case and reach the outputs in their canonical spelling; progress is a
rich display on a terminal, plain ``> step`` lines otherwise, and nothing with ``--quiet``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperArgument, TyperOption

from analysis.cli import app, run_cli
from analysis.cli.group import COMMAND_ORDER, TrialkitGroup, TrialkitTyper
from tests.conftest import EXAMPLE_PLAN, REFERENCE
from tests.test_bad_inputs import M, P  # a small trial every model can be fitted to

HEAVY = ("pandas", "numpy", "scipy", "pyarrow", "matplotlib", "statsmodels")
NORMAND = REFERENCE / "normand1999.csv"
# typer's lower-case type markers: <bool>, <path>, <int>, <float>, <str>, <md|smd|...>
TYPE_MARKER = re.compile(r"<[a-z|]+>")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def trialkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def click_app():
    import analysis.cli.commands  # noqa: F401  (every command registered)

    return typer.main.get_command(app)


def commands() -> list[str]:
    group = click_app()
    return group.list_commands(group.make_context("trialkit", ["--help"], resilient_parsing=True))


def help_text(capsys, *argv: str) -> str:
    assert run_cli([*argv, "--help"]) == 0
    return capsys.readouterr().out


def flat(text: str) -> str:
    """Help text with the panels' borders and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def trial(small_trial) -> Path:
    return small_trial(participants=P, measurements=M)


# ------------------------------------------------------------------ order of `trialkit --help`


def test_help_lists_the_commands_in_the_order_of_the_work(capsys):
    text = help_text(capsys)
    panel = text[text.index("Commands"):]
    listed = re.findall(r"^│ ([a-z][a-z-]+) ", panel, flags=re.MULTILINE)
    assert listed == commands()
    known = [name for name in listed if name in COMMAND_ORDER]
    assert known == [name for name in COMMAND_ORDER if name in listed]
    assert [name for name in listed if name in ("validate", "run", "verify")] == ["validate", "run", "verify"]
    assert listed.index("verify") < listed.index("escalc") < listed.index("meta") < listed.index("power")
    assert listed[-2:] == ["plan-from-redcap", "export-adam"]


def test_commands_registered_later_land_in_place_and_unknown_ones_follow():
    later = TrialkitTyper(cls=TrialkitGroup)
    for name in ("zeta-extra", "export-adam", "mmrm", "run", "init", "alpha-extra"):
        later.command(name)(lambda: None)
    group = typer.main.get_command(later)
    assert group.list_commands(None) == ["init", "run", "mmrm", "export-adam", "zeta-extra", "alpha-extra"]


# ------------------------------------------------------------------ metavars, flags, defaults


def test_metavars_are_capitals_and_flags_take_no_value():
    group = click_app()
    ctx = group.make_context("trialkit", ["--help"], resilient_parsing=True)
    for param in group.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag:
            assert param.metavar == "", param.name
    for name in commands():
        command = group.get_command(ctx, name)
        for param in command.get_params(ctx):
            where = f"{name} {param.name}"
            if isinstance(param, TyperOption) and param.is_flag:
                assert param.metavar == "", where
            else:
                assert param.metavar and param.metavar == param.metavar.upper(), where
                assert not re.search(r"[{}<>]", param.metavar), where


def test_named_metavars(capsys):
    text = help_text(capsys, "run")
    assert "Usage: trialkit run [OPTIONS] PLAN" in text
    assert re.search(r"--out\s+DIR\b", text) and re.search(r"--seed\s+N\b", text)
    assert re.search(r"--ci-level\s+LEVEL\b", help_text(capsys, "escalc"))
    assert re.search(r"--failures\s+FILE\b", help_text(capsys, "validate"))
    assert "Usage: trialkit verify [OPTIONS] MANIFEST" in help_text(capsys, "verify")


@pytest.mark.parametrize("command", [[], *[[name] for name in commands()]], ids=lambda c: " ".join(c) or "trialkit")
def test_help_shows_no_type_markers_nor_braces(capsys, command):
    text = help_text(capsys, *command)
    assert not TYPE_MARKER.search(text), TYPE_MARKER.search(text).group()
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_defaults_are_shown(capsys):
    escalc = flat(help_text(capsys, "escalc"))
    assert "[default: 0.95]" in escalc and "[default: LS]" in escalc
    assert "[default: (standard output)]" in escalc
    assert "[default: (reports/<study id>)]" in flat(help_text(capsys, "run"))  # depends on the plan
    assert "[default: REML]" in flat(help_text(capsys, "meta"))
    group = click_app()
    ctx = group.make_context("trialkit", ["--help"], resilient_parsing=True)
    for name in commands():
        for param in group.get_command(ctx, name).get_params(ctx):
            if isinstance(param, TyperOption) and not param.is_flag and param.default is not None:
                assert param.show_default, f"{name} {param.name}"
            if isinstance(param, TyperArgument | TyperOption) and param.help:
                assert "[default" not in param.help, f"{name} {param.name}: say it with show_default"


# ------------------------------------------------------------------ choices in any case


def test_choice_vocabularies_equal_the_librarys():
    from analysis.cli import choices
    from analysis.stats.effects import BETWEEN_MEASURES, MEASURES
    from analysis.stats.meta import METHODS, TESTS

    assert choices.MEASURES == tuple(MEASURES)
    assert choices.ARM_MEASURES == tuple(BETWEEN_MEASURES)
    assert choices.META_METHODS == tuple(METHODS)
    assert choices.META_TESTS == tuple(TESTS)


def test_escalc_measure_and_vtype_in_any_case(tmp_path):
    runs = {}
    for measure, vtype in (("SMD", "UB"), ("smd", "ub"), ("Smd", "Ub")):
        out = tmp_path / f"{measure}-{vtype}.csv"
        assert run_cli(["escalc", "--measure", measure, "--vtype", vtype, "--input", str(NORMAND), "--output", str(out)]) == 0
        runs[measure] = out.read_bytes()
    assert runs["SMD"] == runs["smd"] == runs["Smd"]


def test_meta_method_and_test_in_any_case_keep_the_canonical_spelling(tmp_path):
    tables = {}
    for method, test, measure in (("REML", "knha", "SMD"), ("reml", "KNHA", "smd")):
        out = tmp_path / f"{method}.csv"
        argv = ["meta", "--input", str(NORMAND), "--measure", measure, "--method", method, "--test", test, "--output", str(out)]
        assert run_cli(argv) == 0
        tables[method] = out.read_text(encoding="utf-8")
    assert tables["REML"] == tables["reml"]
    assert ",REML," in tables["reml"] and ",knha," in tables["reml"] and ",SMD," in tables["reml"]


def test_an_unknown_choice_is_a_usage_error_naming_the_canonical_values(capsys):
    assert run_cli(["escalc", "--measure", "cohen", "--input", str(NORMAND)]) == 2
    err = capsys.readouterr().err
    assert "MD, SMD, SMDH, ROM, MC, SMCC, SMCR" in err and "Traceback" not in err
    assert run_cli(["meta", "--input", str(NORMAND), "--method", "bayes"]) == 2
    assert "REML, DL, PM, ML, FE" in capsys.readouterr().err


def test_choice_completion_in_the_case_typed():
    from analysis.cli.choices import META_METHODS, completions

    complete = completions(META_METHODS)
    assert complete("re") == ["reml"] and complete("RE") == ["REML"] and complete("") == list(META_METHODS)
    assert complete("m") == ["ml"] and complete("x") == []


# ------------------------------------------------------------------ --version, completion


def test_version_prints_the_installed_version():
    result = trialkit("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"trialkit {metadata.version('trialkit')}\n"
    assert result.stderr == ""


def test_shell_completion_is_offered(capsys):
    text = help_text(capsys)
    assert "--install-completion" in text and "--show-completion" in text
    env = {**os.environ, "_TRIALKIT_COMPLETE": "complete_bash", "COMP_WORDS": "trialkit gra", "COMP_CWORD": "1"}
    result = subprocess.run([sys.executable, "-m", "analysis"], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.split() == ["grant-report"]


# ------------------------------------------------------------------ nothing heavy for help


LOADED = """
import json, sys
from analysis.cli import run_cli
codes = [run_cli(argv) for argv in {argvs!r}]
print(json.dumps({{"codes": codes, "loaded": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def loaded_after(*argvs: list[str]) -> dict:
    code = LOADED.format(argvs=list(argvs), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_help_and_version_load_no_scientific_library():
    assert loaded_after(["--help"]) == {"codes": [0], "loaded": []}
    assert loaded_after(["--version"]) == {"codes": [0], "loaded": []}


def test_help_of_every_command_loads_no_scientific_library():
    names = commands()
    assert loaded_after(*[[name, "--help"] for name in names]) == {"codes": [0] * len(names), "loaded": []}


# ------------------------------------------------------------------ progress


def test_steps_are_plain_lines_when_stderr_is_not_a_terminal(trial, tmp_path):
    plan = trial
    result = trialkit("run", str(plan), "--out", str(tmp_path / "out"), "--no-report")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:4] == ["> read, validate and derive", "> analyse", "> write tables", "> draw figures"]
    assert "\x1b" not in result.stderr  # no escape codes: no colours, no progress bar
    assert lines[-1].startswith("done: outputs in")


def test_forced_colours_in_a_log_still_get_no_live_display(tmp_path):
    env = {**os.environ, "FORCE_COLOR": "1"}  # as CI systems set it: rich would treat the log as a terminal
    result = subprocess.run([sys.executable, "-m", "analysis", "validate", str(EXAMPLE_PLAN), "--failures",
                             str(tmp_path / "f.csv")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("> read and validate")
    for code in ("\x1b[?25l", "\x1b[1A", "\x1b[2K"):  # hiding the cursor, moving up, erasing a line
        assert code not in result.stderr


def test_quiet_shows_no_progress_but_the_result(trial, tmp_path, capsys):
    plan = trial
    assert run_cli(["-q", "run", str(plan), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "> " not in err and "analyse" not in err
    assert err.startswith("done: outputs in")
    assert run_cli(["--quiet", "validate", str(EXAMPLE_PLAN), "--failures", str(tmp_path / "f.csv")]) == 0
    assert capsys.readouterr().err.startswith("valid: 120 participants")
    # the next command is not quiet again unless asked
    assert run_cli(["validate", str(EXAMPLE_PLAN), "--failures", str(tmp_path / "f.csv")]) == 0
    assert capsys.readouterr().err.startswith("> read and validate")


def _on_a_terminal(argv: list[str], cwd: Path) -> str:
    """Run ``python -m analysis ARGV`` with stdin, stdout and stderr on a pseudo-terminal."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    child = subprocess.Popen([sys.executable, "-m", "analysis", *argv], stdin=slave, stdout=slave, stderr=slave,
                             cwd=cwd, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert child.wait(timeout=300) == 0, out.decode(errors="replace")
    return out.decode("utf-8", errors="replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal")
def test_a_terminal_gets_a_rich_display_and_quiet_turns_it_off(trial, tmp_path):
    plan = trial
    shown = _on_a_terminal(["run", str(plan), "--out", str(tmp_path / "a"), "--no-report"], tmp_path)
    assert "\x1b[" in shown and "✓" in shown  # a live display: each step ticked off with its time
    text = ANSI.sub("", shown)
    for step in ("read, validate and derive", "analyse", "write tables", "draw figures"):
        assert step in text
    assert "> analyse" not in text
    assert text.rindex("draw figures") < text.index("done: outputs in")  # the result follows the display
    quiet = ANSI.sub("", _on_a_terminal(["-q", "run", str(plan), "--out", str(tmp_path / "b"), "--no-report"], tmp_path))
    assert "analyse" not in quiet and "✓" not in quiet
    assert "done: outputs in" in quiet


def test_loop_progress_reaches_the_display_and_does_not_change_results():
    from analysis.cli import progress
    from analysis.core.progress import reporting_progress
    from analysis.stats.power import simulate_power_ancova

    seen: list[tuple[str, int, int]] = []

    def factory(what: str, total: int):
        return lambda done, total: seen.append((what, done, total))

    with reporting_progress(factory):
        reported = simulate_power_ancova(0.5, 20, r=0.5, n_sims=300, seed=3)
    assert seen[-1] == ("simulated trials", 300, 300)
    assert reported == simulate_power_ancova(0.5, 20, r=0.5, n_sims=300, seed=3)
    # off a terminal the command line's display shows nothing for loops
    display = progress.start()
    assert not display.interactive
    display.loop("simulated trials", 300)(150, 300)
    display.close()
