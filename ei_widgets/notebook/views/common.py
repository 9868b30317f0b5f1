"""Small display helpers shared by the dashboard's panels: HTML bits and layout.

Figures are formatted by :mod:`ei_widgets.common.units` and :mod:`ei_widgets.common.money` (one
formatter per
kind of figure for every view); every figure shown comes from the core.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import ipywidgets as w

from ei_widgets.common.html import GREY, NO_MATH, PICK_STYLE, RULE


def _badge(text: str, title: str, background: str, colour: str) -> str:
    # A fixed pair of background and text colours: readable in a light and a dark theme alike.
    return (
        f'<span title="{html.escape(title)}" style="font-size:11px;padding:1px 6px;'
        f'border-radius:8px;background:{background};color:{colour}">{html.escape(text)}</span>'
    )


def modelled_badge(accuracy: str = "modelled") -> str:
    """The badge of a modelled figure; for latencies, ``accuracy`` says the model's validated
    error (``Catalog.latency_accuracy``)."""
    return _badge(
        accuracy,
        "From the latency and memory model, not measured on this host",
        "#fff3cd",
        "#7a5b00",
    )


SIMULATED = modelled_badge()
MEASURED = _badge("measured", "Measured on this host", "#e3f2e1", "#25632a")

_TABLE_STYLE = (
    "border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;margin:2px 0 6px 0"
)
_CELL = (
    "padding:2px 8px;border-bottom:1px solid " + RULE + ";text-align:{align};line-height:1.35;"
    "vertical-align:top"
)


def esc(value: object) -> str:
    """HTML-escape anything."""
    return html.escape(str(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    align: Sequence[str] | None = None,
    highlight: int | None = None,
    wrap: Iterable[int] | None = None,
) -> str:
    """A compact HTML table (cells are escaped unless they are ``Raw``).

    Cells stay on one line except in the columns listed in ``wrap`` (long text, errors).
    """
    aligns = list(align) if align else ["left"] * len(headers)
    wraps = set(wrap or ())
    head = "".join(
        f'<th style="{_CELL.format(align=a)};font-weight:600">{esc(h)}</th>'
        for h, a in zip(headers, aligns, strict=True)
    )
    body = []
    for index, row in enumerate(rows):
        style = f' class="ei-picked" style="{PICK_STYLE}"' if index == highlight else ""
        cells = "".join(
            f'<td style="{_CELL.format(align=a)}{_WRAP if i in wraps else _NOWRAP}">'
            f"{c if isinstance(c, Raw) else esc(c)}</td>"
            for i, (c, a) in enumerate(zip(row, aligns, strict=True))
        )
        body.append(f"<tr{style}>{cells}</tr>")
    return f'<table class="{NO_MATH}" style="{_TABLE_STYLE}"><tr>{head}</tr>{"".join(body)}</table>'


_NOWRAP = ";white-space:nowrap"
_WRAP = ";max-width:420px;overflow-wrap:anywhere"


class Raw(str):
    """A table cell that is already HTML."""


def note(text: str, *, colour: str = GREY) -> str:
    """A small grey line of HTML text (``text`` is escaped)."""
    return f'<div class="{NO_MATH}" style="font-size:12px;color:{colour}">{esc(text)}</div>'


def error_html(text: str) -> str:
    """A short error line, red on pink (a fixed pair, readable in any theme), escaped."""
    return (
        f'<div class="{NO_MATH}" style="font-size:12px;color:#a4262c;background:#fdecea;'
        "padding:3px 8px;"
        f'border-radius:4px">{esc(text)}</div>'
    )


def heading(text: str, badge: str = "") -> w.HTML:
    """A panel section heading, optionally with a modelled/measured badge."""
    return w.HTML(f'<div style="font-weight:600;margin:4px 0 2px 0">{esc(text)} {badge}</div>')


_Box = TypeVar("_Box", w.BoundedIntText, w.BoundedFloatText)


def bounded(
    kind: type[_Box],
    value: float,
    low: float,
    high: float,
    description: str,
    width: str,
    **options: Any,
) -> _Box:
    """A bounded number box ``width`` wide (``options``: step, style, tooltip, ...)."""
    return kind(
        value=value,
        min=low,
        max=high,
        description=description,
        layout=w.Layout(width=width),
        **options,
    )


def set_if_changed(widget: w.Widget, **values: Any) -> None:
    """Set traits only where they differ, so that unchanged values send no message."""
    changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
    if not changed:
        return
    if len(changed) == 1:
        key, value = next(iter(changed.items()))
        setattr(widget, key, value)
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


class SequenceLength(w.Dropdown):
    """The sequence length the chosen transformer is profiled and judged at (the Inspector and
    the Accelerator tab); shown only for a model with a variable sequence dimension."""

    def __init__(self, on_change: Callable[[int], None]) -> None:
        super().__init__(
            options=[],
            description="Tokens",
            tooltip="sequence length of the model's inputs",
            layout=w.Layout(display="none", width="190px"),
            style={"description_width": "50px"},
        )
        self._on_change = on_change
        self._showing = False
        self._lengths: list[int] = []
        self.observe(self._changed, names="value")

    def show_for(self, seq_len: int | None, lengths: Sequence[int] | None) -> None:
        """Show ``seq_len`` among ``lengths`` (those the model takes, from the core's length
        table), or hide for a model without a variable sequence (``lengths`` None)."""
        self._showing = True
        try:
            if seq_len is None or lengths is None:
                self.layout.display = "none"
                return
            options = sorted({*lengths, seq_len})
            if self._lengths != options:
                self._lengths = options
                self.options = options
            self.value = seq_len
            self.layout.display = ""
        finally:
            self._showing = False

    def _changed(self, change: dict[str, Any]) -> None:
        if not self._showing and isinstance(change["new"], int):
            self._on_change(change["new"])
