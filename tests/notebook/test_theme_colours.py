"""Every colour our HTML and charts use follows JupyterLab's theme (its ``--jp-*`` variables), so
that the dashboard, the rich results and the charts read in a dark theme as in a light one.

A fixed colour is allowed only as the fallback of a theme variable (outside JupyterLab), or in a
pair that sets both the background and the text (a badge, an error line), readable in any theme.
"""

from __future__ import annotations

import re
from pathlib import Path

from ei_widgets.common import html
from ei_widgets.common.html import PICK_STYLE, table

ROOT = Path(html.__file__).resolve().parents[1]
HEX = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?\b")
FALLBACK = re.compile(
    r'(?:var\(--jp-[a-z0-9-]+, |_legible\("--jp-[a-z0-9-]+", ")(#[0-9a-fA-F]{3,6})\b'
)
# fixed background-and-text pairs: the badges, the error line, the disconnected notice
PAIRS = {
    "notebook/views/common.py": {"#fff3cd", "#7a5b00", "#e3f2e1", "#25632a", "#a4262c", "#fdecea"},
    "notebook/views/header.py": {"#fdecea", "#a4262c"},
}


def test_every_fixed_colour_is_a_theme_fallback_or_a_readable_pair() -> None:
    stray = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for number, text in enumerate(path.read_text().splitlines(), 1):
            code = text.split("  # ", 1)[0]
            if code.lstrip().startswith("#"):
                continue
            allowed = set(FALLBACK.findall(code)) | PAIRS.get(relative, set())
            stray += [f"{relative}:{number}: {c}" for c in HEX.findall(code) if c not in allowed]
    assert stray == []


def test_the_picked_row_sets_its_text_colour_with_its_background() -> None:
    assert "background:color-mix(in srgb, var(--jp-brand-color1" in PICK_STYLE
    assert "color:var(--jp-ui-font-color0" in PICK_STYLE
    drawn = table(["a", "b"], [("x", 1), ("y", 2)], "lr", highlight=[1])
    assert drawn.count(PICK_STYLE) == 1


def test_status_colours_follow_the_theme_with_the_light_look_outside_it() -> None:
    for colour, fallback in (
        (html.GOOD, "#25632a"),
        (html.BAD, "#a4262c"),
        (html.WARN, "#8a6d00"),
    ):
        assert colour.startswith("color-mix(in srgb, var(--jp-")
        assert fallback in colour and "var(--jp-ui-font-color0, #000)" in colour
