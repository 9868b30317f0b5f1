"""The building blocks of our notebook-native HTML: escaping, tables, folds, notes and colours.

Each result type renders itself (``Profile``, ``Recommendation``, ``CostSnapshot``, usage rows,
the fp16 check) with these, so every table and note looks the same. The HTML is plain, inline-styled
and escaped, imports no widgets and no IPython. Colours are JupyterLab's theme variables
(``--jp-*``) with a light fallback, so the output is readable in a dark theme and outside
JupyterLab alike. pandas is optional and imported only when a ``to_pandas`` asks for it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "BAD",
    "BOX",
    "FOLDED_LIMIT",
    "GOOD",
    "GREY",
    "INFO",
    "NO_MATH",
    "PICK",
    "PICK_STYLE",
    "RULE",
    "TEXT",
    "WARN",
    "esc",
    "fold",
    "note",
    "pandas_module",
    "table",
]

FOLDED_LIMIT = 100
"""Rows drawn inside a fold at most (``to_pandas()`` has them all)."""

NO_MATH = "tex2jax_ignore mathjax_ignore"
"""Classes that keep MathJax off: notebooks typeset HTML output, and two amounts in dollars
would read as the bounds of a formula."""


def _legible(theme_colour: str, light_fallback: str) -> str:
    """A text colour from the theme: its ``theme_colour`` pulled a quarter of the way towards the
    theme's text colour, so that it keeps a 4.5:1 contrast on the page in a light theme (towards
    black) and a dark one (towards white) alike; ``light_fallback`` outside JupyterLab."""
    return (
        f"color-mix(in srgb, var({theme_colour}, {light_fallback}) 75%, "
        "var(--jp-ui-font-color0, #000))"
    )


GOOD = _legible("--jp-success-color0", "#25632a")
BAD = _legible("--jp-error-color0", "#a4262c")
WARN = _legible("--jp-warn-color0", "#8a6d00")
INFO = _legible("--jp-brand-color0", "#1f5fa8")
GREY = "var(--jp-ui-font-color2, #666)"
TEXT = "var(--jp-ui-font-color0, #000)"
"""Body text: the theme's own strongest colour (black in a light theme, white in a dark one)."""
RULE = "var(--jp-border-color2, #e4e4e4)"
"""The thin line under a table row."""
PICK = "color-mix(in srgb, var(--jp-brand-color1, #1976d2) 12%, var(--jp-layout-color0, #fff))"
"""The picked row's background: a tint of the theme's brand colour over its page colour (light
blue in a light theme, dark blue in a dark one), so the theme's text colour (set with it,
:data:`PICK_STYLE`) and the status colours read on it in both."""
PICK_STYLE = f"background:{PICK};color:{TEXT};font-weight:600"
"""The picked row's style, background and text colour together."""
BOX = "font-size:13px;line-height:1.45;max-width:980px"
_TABLE = (
    "border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;margin:4px 0;"
    "white-space:nowrap"
)
_TR = f"border-bottom:1px solid {RULE}"
_PAD = "padding:1px 6px"


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped."""
    return html.escape(str(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    align: str,
    highlight: Iterable[int] = (),
) -> str:
    """An HTML table; ``align`` holds one ``l``/``r`` per column; cells are escaped; the rows at
    ``highlight`` are marked as picked.

    Styles stay on the table and the rows (cells carry only padding and alignment), so a long
    folded table stays small.
    """
    opens = [f'<td style="{_PAD}{"" if a == "l" else ";text-align:right"}">' for a in align]
    marked = set(highlight)
    head = "".join(
        f'<th style="{_PAD};text-align:{"left" if a == "l" else "right"}">{esc(h)}</th>'
        for h, a in zip(headers, align, strict=True)
    )
    plain = f'<tr style="{_TR}">'
    picked = f'<tr class="ei-picked" style="{_TR};{PICK_STYLE}">'
    body = "".join(
        (picked if i in marked else plain)
        + "".join(f"{td}{esc(cell)}</td>" for cell, td in zip(row, opens, strict=True))
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f'<table class="ei-table" style="{_TABLE}"><tr style="{_TR}">{head}</tr>{body}</table>'


def fold(summary: str, body: str) -> str:
    """``body`` folded under a one-line ``summary``."""
    return (
        f'<details style="margin:2px 0"><summary style="cursor:pointer;color:{GREY}">'
        f"{esc(summary)}</summary>{body}</details>"
    )


def note(text: str, colour: str = GREY) -> str:
    """A small line of text in ``colour``."""
    return f'<div style="font-size:12px;color:{colour}">{esc(text)}</div>'


def pandas_module() -> Any:
    """pandas, or an ``ImportError`` that says how to get it (only ``to_pandas`` needs it)."""
    try:
        import pandas
    except ImportError as error:  # optional: only to_pandas needs it
        raise ImportError("to_pandas() needs pandas: pip install pandas") from error
    return pandas
