"""A clean terminal: no library warning reaches the user's terminal from any command.

What a library warns about is said in trialkit's own words (``note: ...``), once, when it concerns
the results, or only recorded when it concerns trialkit's own code (deprecations, pandas hints);
a run's manifest lists every notice (``warnings``). Characters no installed font can draw are
replaced in figures (PNG, and SVG drawn as paths) instead of being drawn as empty boxes with a
"Glyph ... missing" warning each.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from analysis.cli import run_cli  # noqa: E402
from analysis.core.notices import (  # noqa: E402
    TrialkitNotice,
    describe_warning,
    notice,
    recording_warnings,
    replay_warnings,
)
from tests.bad_inputs.cli_child import TrialkitForkServer  # noqa: E402
from tests.conftest import EXAMPLE_PLAN, REPO, SMALL_PLAN  # noqa: E402
from tests.test_bad_inputs import M, P  # noqa: E402

STUDIES = REPO / "data" / "studies"
REDCAP_PLAN = STUDIES / "example-precision-release-redcap.yaml"
ADAM_PLAN = STUDIES / "example-precision-release-adam.yaml"
# what a library warning looks like on a terminal: "file.py:12: SomeWarning: message", or the
# 'warn(' source line Python echoes under it
LIBRARY_WARNING = re.compile(r"\w+Warning\b|warnings\.warn|\bwarn\(|Glyph \d+")
CJK_STUDIES = "study,yi,vi\n\u6771\u4eac 2019,0.5,0.04\nS\u00e3o Paulo,0.3,0.05\n\u03b1\u2265\u03b2\u2212\u03b3,0.1,0.03\n"


def assert_clean(stderr: str, stdout: str = "") -> None:
    text = stderr + stdout
    assert not LIBRARY_WARNING.search(text), text
    assert "Traceback" not in text and "internal error" not in text, text


# ------------------------------------------------------------------ the notices machinery


def test_library_warnings_are_said_in_trialkits_words():
    numpy_file = "/venv/lib/python3.11/site-packages/numpy/lib/function_base.py"
    text, shown = describe_warning(RuntimeWarning("invalid value encountered in divide"), RuntimeWarning, numpy_file)
    assert shown and text.startswith("numerical problem in a calculation (numpy: invalid value") and "Warning" not in text
    convergence = type("ConvergenceWarning", (UserWarning,), {})
    text, shown = describe_warning("Maximum Likelihood optimization failed to converge.", convergence,
                                   "/venv/lib/python3.11/site-packages/statsmodels/base/model.py")
    assert shown and text.startswith("a model fit reported a convergence problem (statsmodels:")
    for category in (FutureWarning, DeprecationWarning):
        text, shown = describe_warning("use .loc", category, "/venv/lib/python3.11/site-packages/pandas/core/frame.py")
        assert not shown and text == "pandas notice (not about the data): use .loc"
    performance = type("PerformanceWarning", (Warning,), {})
    assert describe_warning("fragmented frame", performance, "x.py")[1] is False
    assert describe_warning("2 participants lack a date", TrialkitNotice) == ("2 participants lack a date", True)


def test_recording_prints_each_notice_once_and_keeps_the_counts():
    shown: list[str] = []
    with recording_warnings(forward=shown.append) as log:
        for _ in range(3):
            warnings.warn_explicit("invalid value encountered in divide", RuntimeWarning, "numpy/core/x.py", 1)
        warnings.warn("use .loc", FutureWarning, stacklevel=1)
        notice("a trialkit notice")
        logging.getLogger("papermill").warning("Input notebook has no parameters cell")
    assert shown == ["numerical problem in a calculation (python: invalid value encountered in divide); results "
                     "that depend on it may be missing", "a trialkit notice"]
    records = {r["note"]: r for r in log.records()}
    assert [r["count"] for r in log.records()][0] == 3
    assert any(not r["shown"] and "use .loc" in note for note, r in records.items())
    assert "papermill log: Input notebook has no parameters cell" in records


def test_recorders_nest_and_pass_notices_outwards():
    shown: list[str] = []
    with recording_warnings(forward=shown.append) as outer:
        with recording_warnings(forward=lambda text: pytest.fail(f"an inner recorder printed {text}")) as inner:
            notice("inside a run")
        notice("after the run")
    assert inner.messages() == ["inside a run"]
    assert outer.messages() == ["inside a run", "after the run"] == shown


def test_warnings_a_notebook_kernel_printed_are_replayed_as_notices():
    with recording_warnings(forward=lambda _t: None) as log:
        replay_warnings(
            "/x/figures.py:120: UserWarning: Glyph 26481 (\\N{CJK UNIFIED IDEOGRAPH-6771}) missing from font(s) DejaVu Sans.\n"
            "  figure.savefig(buffer)\n"
            "/x/site-packages/pandas/core/frame.py:1: FutureWarning: use .loc\n", "the report.ipynb notebook")
    records = log.records()
    assert [r["shown"] for r in records] == [True, False]
    assert records[0]["note"].startswith("a figure label has a character its font cannot draw")


def test_a_command_prints_notes_not_library_warnings(monkeypatch, capsys):
    import analysis.stats.power as power

    original = power.ttest_power

    def noisy(*args, **kwargs):
        warnings.warn("invalid value encountered in sqrt", RuntimeWarning, stacklevel=1)
        warnings.warn("the default of observed will change", FutureWarning, stacklevel=1)
        warnings.warn(type("ConvergenceWarning", (UserWarning,), {})("failed to converge"), stacklevel=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(power, "ttest_power", noisy)
    assert run_cli(["power", "--d", "0.5", "--n", "30"]) == 0
    captured = capsys.readouterr()
    assert_clean(captured.err, captured.out)
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, captured.err  # the numerical problem and the convergence problem; not the FutureWarning
    assert "numerical problem" in notes[0] and "convergence problem" in notes[1]


def test_a_runs_manifest_lists_its_notices(tmp_path, monkeypatch, capsys):
    import analysis.pipeline as pipeline

    original = pipeline.describe

    def noisy(*args, **kwargs):
        warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "describe", noisy)
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
    (folder / "participants.csv").write_text(P, encoding="utf-8")
    (folder / "measurements.csv").write_text(M, encoding="utf-8")
    assert run_cli(["run", str(folder / "plan.yaml"), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert_clean(err)
    assert err.count("note: numerical problem in a calculation") == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    notes = [w["note"] for w in manifest["warnings"] if w["shown"]]
    assert len(notes) == 1 and notes[0].startswith("numerical problem in a calculation (") and "Mean of empty slice" in notes[0]


# ------------------------------------------------------------------ glyphs


def _figure_with(title: str, categories: list[str]):
    fig, ax = plt.subplots()
    ax.bar(categories, [1, 2])
    ax.set_title(title)
    ax.legend(["\u6cbb\u7597"], loc="upper left")
    return fig


def test_figures_replace_what_no_font_can_draw_and_say_it_once():
    from analysis.reporting.figures import figure_bytes

    fig = _figure_with("\u75bc\u75db NRS \u2265 3 \u2212 1", ["\u6cbb\u7597\u7ec4", "\u5bf9\u7167\u7ec4"])
    shown: list[str] = []
    with recording_warnings(forward=shown.append) as log:
        png = figure_bytes(fig, "png")
        svg = figure_bytes(fig, "svg")
    assert png.startswith(b"\x89PNG") and b"<svg" in svg
    assert fig.axes[0].get_title() == "?? NRS \u2265 3 \u2212 1"  # the font has >= and the minus sign
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["???", "???"]  # tick labels, drawn at draw time
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["??"]
    assert len(shown) == 1 and shown[0].startswith("no installed font can draw") and "Glyph" not in shown[0]
    assert all(r["source"] == "trialkit" for r in log.records())
    plt.close(fig)


def test_svg_text_keeps_the_characters_for_the_viewers_fonts():
    from analysis.reporting.figures import figure_bytes

    fig = _figure_with("\u75bc\u75db", ["a", "b"])
    with recording_warnings(forward=lambda text: pytest.fail(text)) as log:
        svg = figure_bytes(fig, "svg", svg_text=True)
    assert "\u75bc\u75db" in svg.decode("utf-8") and log.records() == []
    plt.close(fig)


def test_drawable_figures_are_untouched():
    from analysis.reporting.figures import figure_bytes

    fig = _figure_with("Pain \u2265 3 (\u00b5g, \u03c4\u00b2, \u2190 \u2192)", ["Release", "Stretching"])
    fig.axes[0].get_legend().get_texts()[0].set_text("Release")
    with recording_warnings(forward=lambda text: pytest.fail(text)):
        figure_bytes(fig, "png")
    assert fig.axes[0].get_title() == "Pain \u2265 3 (\u00b5g, \u03c4\u00b2, \u2190 \u2192)"
    plt.close(fig)


def test_meta_forest_with_study_labels_no_font_has(tmp_path, capsys):
    effects = tmp_path / "effects.csv"
    effects.write_text(CJK_STUDIES, encoding="utf-8")
    for forest in ("forest.png", "forest.svg"):
        assert run_cli(["meta", "--input", str(effects), "--output", str(tmp_path / "m.csv"), "--forest", str(tmp_path / forest)]) == 0
        err = capsys.readouterr().err
        assert_clean(err)
        assert err.count("note: no installed font can draw") == (1 if forest.endswith("png") else 0), err
    assert "\u6771\u4eac 2019" in (tmp_path / "forest.svg").read_text(encoding="utf-8")
    assert "\u6771\u4eac 2019" in (tmp_path / "m.csv").read_text(encoding="utf-8")  # tables keep the text


# ------------------------------------------------------------------ every command, as a user runs it


@pytest.fixture(scope="module")
def trialkit():
    server = TrialkitForkServer()
    yield server
    server.close()


def _small_trial(folder: Path, plan: str = SMALL_PLAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.yaml").write_text(plan, encoding="utf-8")
    (folder / "participants.csv").write_text(P, encoding="utf-8")
    (folder / "measurements.csv").write_text(M, encoding="utf-8")
    return folder / "plan.yaml"


def _commands(tmp: Path) -> list[tuple[list[str], int | None]]:
    """(argv, exit code) for every command on the example data and on edge data."""
    small = _small_trial(tmp / "small")
    cjk = _small_trial(tmp / "cjk", SMALL_PLAN.replace("label: Release", "label: \u6cbb\u7597\u7ec4")
                       .replace("label: Stretching", "label: \u5bf9\u7167\u7ec4").replace("label: Pain NRS", "label: \u75bc\u75db NRS"))
    tiny = tmp / "tiny"
    tiny.mkdir()
    (tiny / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
    from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS

    (tiny / "participants.csv").write_text(SMALL_PARTICIPANTS, encoding="utf-8")
    (tiny / "measurements.csv").write_text(SMALL_MEASUREMENTS, encoding="utf-8")
    (tmp / "cjk.csv").write_text(CJK_STUDIES, encoding="utf-8")
    (tmp / "two.csv").write_text("study,yi,vi\nA,0.5,0.04\nB,0.5,0.04\n", encoding="utf-8")  # tau^2 = 0, I^2 = 0
    (tmp / "arms.csv").write_text("study,n1i,m1i,sd1i,n2i,m2i,sd2i\nA,20,5,1,20,4,1\nB,20,5,0,20,5,0\nC,20,,1,20,4,1\n",
                                  encoding="utf-8")
    return [
        (["validate", str(EXAMPLE_PLAN), "--failures", str(tmp / "f.csv")], 0),
        (["run", str(EXAMPLE_PLAN), "--out", str(tmp / "example"), "--no-report"], 0),
        (["verify", str(tmp / "example" / "manifest.json")], 0),
        (["run", str(ADAM_PLAN), "--out", str(tmp / "adam-run"), "--no-report"], 0),
        (["export-adam", str(REDCAP_PLAN), "--out", str(tmp / "adam")], 0),
        (["grant-report", str(EXAMPLE_PLAN), "--period-end", "2023-06-30", "--out", str(tmp / "grant"), "--no-report"], 0),
        (["simulate", str(EXAMPLE_PLAN), "--seed", "3", "--out", str(tmp / "sim")], 0),
        (["replicate", str(STUDIES / "case-43m.yaml"), "--out", str(tmp / "case"), "--no-report"], 0),
        (["plan-from-redcap", str(REPO / "data/examples/precision-release-sim/redcap/dictionary.csv")], 0),
        (["power", "--d", "0.5", "--power", "0.8", "--r", "0.5", "--attrition", "0.1"], 0),
        (["power", "--d", "0.4", "--n", "40", "--simulate", "40", "--mmrm", "--dropout", "0.1,0.2"], 0),
        (["escalc", "--measure", "SMD", "--input", str(REPO / "tests/reference/normand1999.csv")], 0),
        (["escalc", "--measure", "SMD", "--input", str(tmp / "arms.csv")], 0),  # SD 0 and a missing mean: notes, not warnings
        (["meta", "--input", str(REPO / "tests/reference/normand1999.csv"), "--measure", "SMD", "--forest", str(tmp / "f.png")], 0),
        (["meta", "--input", str(tmp / "two.csv"), "--method", "DL", "--test", "knha", "--forest", str(tmp / "two.svg")], 0),
        (["meta", "--input", str(tmp / "cjk.csv"), "--forest", str(tmp / "cjk.png")], 0),
        (["run", str(small), "--out", str(tmp / "small-out"), "--no-report"], 0),
        (["run", str(cjk), "--out", str(tmp / "cjk-out"), "--no-report"], 0),
        # edge data a command refuses (a user error, exit 1 or 2): refused cleanly, in one sentence
        (["grant-report", str(small), "--period-end", "2023-06-30", "--out", str(tmp / "small-grant"), "--no-report"], None),
        (["run", str(tiny / "plan.yaml"), "--out", str(tmp / "tiny-out"), "--no-report"], None),
    ]


def test_no_command_lets_a_library_warning_reach_the_terminal(trialkit, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for argv, code in _commands(tmp_path):
        result = trialkit.run(argv, cwd, timeout=300)
        assert result.returncode == code if code is not None else result.returncode in (1, 2), (argv, result.stderr)
        assert_clean(result.stderr, result.stdout), argv


def test_the_console_script_itself_starts_clean(tmp_path):
    """Imports happen before any command runs: the real entry point, deprecations shown."""
    result = subprocess.run(
        [sys.executable, "-W", "default", "-m", "analysis", "validate", str(EXAMPLE_PLAN), "--failures", str(tmp_path / "f.csv")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr, result.stdout)
