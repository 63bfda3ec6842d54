"""Forest plot (analysis.reporting.forest): drawn from the tidy table, direction labels, formats, stable bytes."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from analysis.core.errors import UsageError  # noqa: E402
from analysis.reporting.forest import forest_plot, render_forest, save_forest  # noqa: E402
from analysis.stats.meta import meta_table, pool  # noqa: E402
from tests.conftest import REFERENCE

REF = json.loads((REFERENCE / "normand1999_ref.json").read_text())
NAMES = ["Edinburgh", "Orpington-Mild", "Orpington-Moderate", "Orpington-Severe", "Montreal-Home",
         "Montreal-Transfer", "Newcastle", "Umea", "Uppsala"]


def table(measure: str = "MD", method: str = "REML", exponentiate: bool = False):
    fit = pool(REF[measure]["yi"], REF[measure]["vi"], studies=NAMES, method=method)
    return meta_table(fit, measure=measure, exponentiate=exponentiate)


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_draws_into_given_axes_and_returns_it() -> None:
    fig, ax = plt.subplots()
    try:
        assert forest_plot(table(), ax=ax) is ax
        squares = ax.collections[1]  # hlines first, then the scatter of squares
        assert len(squares.get_offsets()) == 9
        sizes = squares.get_sizes()
        weights = table().query("type == 'study'")["weight"].to_numpy()
        assert np.argmax(sizes) == np.argmax(weights) and np.argmin(sizes) == np.argmin(weights)
        diamond = [p for p in ax.patches if isinstance(p, Polygon)][0].get_xy()[:4]
        ref = REF["MD"]["REML"]
        assert sorted(diamond[:, 0]) == pytest.approx(sorted([ref["ci_low"], ref["estimate"], ref["ci_high"], ref["estimate"]]), rel=1e-6)
        labels = texts(ax)
        assert "Edinburgh" in labels and "Random effects (REML)" in labels
        assert "-20.00 [-32.47, -7.53]" in labels and "PI [-69.30, 39.09]" in labels
        assert any(line.get_xdata()[0] == 0 for line in ax.get_lines())  # null line
    finally:
        plt.close(fig)


@pytest.mark.parametrize("lower_is_better,left,right", [(True, "treatment", "control"), (False, "control", "treatment")])
def test_favours_labels_follow_direction(lower_is_better: bool, left: str, right: str) -> None:
    ax = forest_plot(table(), lower_is_better=lower_is_better)
    try:
        labels = texts(ax)
        assert f"\u2190 favours {left}" in labels and f"favours {right} \u2192" in labels
    finally:
        plt.close(ax.figure)


def test_ratio_scale_is_logarithmic_with_null_at_one() -> None:
    ax = forest_plot(table("ROM", exponentiate=True))
    try:
        assert ax.get_xscale() == "log"
        assert any(line.get_xdata()[0] == 1 for line in ax.get_lines())
    finally:
        plt.close(ax.figure)


def test_fixed_effect_has_no_prediction_interval() -> None:
    ax = forest_plot(table(method="FE"))
    try:
        assert "Fixed effect" in texts(ax) and not any(t.startswith("PI [") for t in texts(ax))
    finally:
        plt.close(ax.figure)


def test_png_and_svg_written_and_stable(tmp_path: Path) -> None:
    png, svg = tmp_path / "f.png", tmp_path / "f.svg"
    save_forest(table(), png, lower_is_better=True)
    save_forest(table(), svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:500] and b"Edinburgh" in svg.read_bytes()
    assert render_forest(table(), "svg") == svg.read_bytes()
    assert render_forest(table(), "png", lower_is_better=True) == png.read_bytes()


def test_bad_requests_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="PNG or SVG"):
        save_forest(table(), tmp_path / "f.pdf")
    with pytest.raises(UsageError, match="columns missing"):
        forest_plot(table().drop(columns=["weight"]))
    assert not list(tmp_path.iterdir())
