"""Figure text that the fonts can draw.

trialkit's own figure text uses only characters that DejaVu Sans (matplotlib's bundled font) has
(arrows, superscript two, Greek tau). Text that comes from the user (study labels, arm and outcome
labels, units) may hold characters no installed font has, such as CJK ideographs; matplotlib would
draw an empty box and print a "Glyph ... missing from font" warning for each. Before a figure is
written, :func:`make_drawable` replaces each such character with ``?`` (in titles, labels,
legends, annotations and tick labels) and says so once, in trialkit's words
(:func:`analysis.core.notices.notice`).
"""

from __future__ import annotations

import functools
import re

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text
from matplotlib.ticker import Formatter

from analysis.core.notices import notice

REPLACEMENT = "?"
MISSING_GLYPH = re.compile(r"Glyph \d+ .*missing from (?:current )?font|does not have a glyph for")


@functools.lru_cache(maxsize=64)
def _charmap(path: str) -> frozenset[int]:
    return frozenset(FT2Font(path).get_charmap())


def _font_files(properties: font_manager.FontProperties) -> tuple[str, ...]:
    """The font files matplotlib draws with for these properties, fallbacks included."""
    find = getattr(font_manager.fontManager, "_find_fonts_by_props", None)  # matplotlib >= 3.6
    if find is not None:
        try:
            return tuple(str(path) for path in find(properties))
        except Exception:  # a private helper: fall back to the documented lookup
            pass
    return (str(font_manager.findfont(properties)),)


def undrawable(text: str, properties: font_manager.FontProperties) -> list[str]:
    """The distinct characters of ``text`` that none of its fonts has, in order of appearance.

    Examples
    --------
    >>> from matplotlib.font_manager import FontProperties
    >>> undrawable("Tokyo \\u6771\\u4eac, p \\u2265 0.05", FontProperties(family="DejaVu Sans"))
    ['東', '京']
    """
    if not text or text.isascii():
        return []
    have = frozenset().union(*(_charmap(path) for path in _font_files(properties)))
    return list(dict.fromkeys(c for c in text if not c.isspace() and ord(c) >= 32 and ord(c) not in have))


def _replace(text: str, missing: list[str]) -> str:
    return "".join(REPLACEMENT if c in missing else c for c in text)


class _Drawable(Formatter):
    """A tick formatter that replaces, in another formatter's labels, characters the font lacks."""

    def __init__(self, inner: Formatter, missing: list[str]) -> None:
        self.inner = inner
        self.missing = missing

    def set_axis(self, axis) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs) -> None:
        self.inner.set_locs(locs)

    def __call__(self, x, pos=None) -> str:
        return _replace(self.inner(x, pos), self.missing)

    def format_ticks(self, values) -> list[str]:
        return [_replace(label, self.missing) for label in self.inner.format_ticks(values)]

    def get_offset(self) -> str:
        return _replace(self.inner.get_offset(), self.missing)


def make_drawable(figure: Figure) -> list[str]:
    """Replace, everywhere in ``figure``, characters its fonts cannot draw with ``?``; return the
    texts that changed (as they were), after one :func:`notice` naming them.

    Tick labels are made by their axis' formatter at every draw, so an axis whose labels (as last
    drawn) hold such characters gets a formatter that replaces them.
    """
    changed: list[str] = []
    characters: list[str] = []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            for which, labels in (("major", axis.get_majorticklabels()), ("minor", axis.get_minorticklabels())):
                missing = list(dict.fromkeys(c for t in labels for c in undrawable(t.get_text(), t.get_fontproperties())))
                if not missing:
                    continue
                if which == "major":
                    axis.set_major_formatter(_Drawable(axis.get_major_formatter(), missing))
                else:
                    axis.set_minor_formatter(_Drawable(axis.get_minor_formatter(), missing))
    for text in figure.findobj(Text):
        value = text.get_text()
        missing = undrawable(value, text.get_fontproperties())
        if missing:
            text.set_text(_replace(value, missing))
            changed.append(value)
            characters += missing
    changed = list(dict.fromkeys(changed))
    if changed:
        # the same characters give the same sentence, so a run's figures say it once
        notice(
            f"no installed font can draw {' '.join(sorted(set(characters)))}: in figures these characters are "
            f"drawn as '{REPLACEMENT}' (tables and reports keep the text as written)"
        )
    return changed
