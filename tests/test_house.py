"""Rooms of one concept: no class in the package grows past what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CLASS_LINES = 300


def _class_lengths() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for path in sorted((ROOT / "ei_widgets").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                lengths[where] = (node.end_lineno or node.lineno) - node.lineno + 1
    return lengths


def test_the_package_has_classes_to_measure() -> None:
    lengths = _class_lengths()
    assert any("_Profiler" in where for where in lengths)
    assert any("Dashboard" in where for where in lengths)


def test_no_class_is_longer_than_300_lines() -> None:
    too_long = {w: n for w, n in _class_lengths().items() if n > MAX_CLASS_LINES}
    assert not too_long, f"classes over {MAX_CLASS_LINES} lines (split them): {too_long}"
