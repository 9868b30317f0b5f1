"""The picker's table of sizes: None and the EI types with their specs and prices, and for the
chosen model whether each fits and its modelled latency.

Whether a size fits, its latency and the reason are the core's one judgement
(``device.judgement.Judgement``); :func:`fit_of` only puts them in words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import ipywidgets as w

from ei_widgets.common.html import BAD, GOOD, GREY
from ei_widgets.common.money import format_money
from ei_widgets.common.units import format_bytes, format_ms
from ei_widgets.device.catalog import Accelerator
from ei_widgets.device.judgement import Judgement
from ei_widgets.notebook.views.common import esc, modelled_badge

NONE = "none"
_COLUMNS = "minmax(100px, 170px) repeat(4, minmax(52px, 70px)) minmax(0, 1fr)"
_GOOD, _BAD, _GREY = GOOD, BAD, GREY


@dataclass(frozen=True)
class Fit:
    """Whether a size fits the chosen model, why not, and the line its cell shows."""

    fits: bool
    reason: str | None
    html: str


def fit_of(judgement: Judgement | None) -> Fit:
    """A size's fit and modelled latency in words (every size fits when no model is chosen)."""
    if judgement is None:
        return _fit(True, None, "choose a model to see whether it fits", _GREY)
    est = judgement.estimate
    if est is None:
        reason = judgement.reason or "could not be judged"
        return _fit(False, reason, esc(reason), _BAD)
    if not est.fits:
        text = (
            f"does not fit: needs {format_bytes(est.memory_needed_bytes)}, has "
            f"{format_bytes(est.memory_available_bytes)}"
        )
        return _fit(False, judgement.reason, text, _BAD)
    text = (
        f"fits ({format_bytes(est.memory_needed_bytes)} needed);"
        f" {format_ms(est.latency_s)} per call at batch {judgement.batch_size},"
        f" {est.bound}-bound"
    )
    return _fit(True, None, text, _GOOD)


def _fit(fits: bool, reason: str | None, text: str, colour: str) -> Fit:
    html = f'<div style="font-size:12px;color:{colour}" title="{esc(reason or "")}">{text}</div>'
    return Fit(fits, reason, html)


def _cell(text: str, *, align: str = "right", colour: str = "inherit") -> w.HTML:
    return w.HTML(
        f'<div style="text-align:{align};font-size:12px;color:{colour};'
        f'font-variant-numeric:tabular-nums">{text}</div>'
    )


class SizeTable(w.GridBox):
    """One row per size, its button choosing it: ``buttons`` and ``fit_cells`` by name."""

    def __init__(
        self, accelerators: Sequence[Accelerator], select: Callable[[str], None], accuracy: str
    ) -> None:
        self.buttons: dict[str, w.Button] = {}
        self.fit_cells: dict[str, w.HTML] = {}
        self.header = _cell("", align="left")
        self.set_accuracy(accuracy)
        cells: list[w.Widget] = [
            _cell("<b>accelerator</b>", align="left"),
            _cell("<b>F32 TFLOPS</b>"),
            _cell("<b>F16 TFLOPS</b>"),
            _cell("<b>memory</b>"),
            _cell("<b>$/h</b>"),
            self.header,
        ]
        cells.append(self._button(NONE, "None (CPU only)", select))
        self.fit_cells[NONE] = _cell("detached: sessions fail until one is attached", align="left")
        cells += [_cell("—"), _cell("—"), _cell("—"), _cell("$0"), self.fit_cells[NONE]]
        for acc in accelerators:
            self.fit_cells[acc.name] = _cell("", align="left")
            cells += [
                self._button(acc.name, acc.name, select),
                _cell(f"{acc.f32_tflops:g}"),
                _cell(f"{acc.f16_tflops:g}"),
                _cell(format_bytes(acc.memory_bytes)),
                _cell(format_money(acc.price_per_hour)),
                self.fit_cells[acc.name],
            ]
        super().__init__(
            cells,
            layout=w.Layout(
                grid_template_columns=_COLUMNS, grid_gap="2px 8px", align_items="center"
            ),
        )
        self.add_class("ei-sizes")  # narrow, each row's fit goes under it (the labextension's CSS)

    def _button(self, key: str, label: str, select: Callable[[str], None]) -> w.Button:
        button = w.Button(description=label, layout=w.Layout(width="auto", max_width="165px"))
        button.on_click(lambda _b: select(key))
        self.buttons[key] = button
        return button

    def set_accuracy(self, accuracy: str) -> None:
        """State how far the chosen model's modelled latencies can be trusted."""
        html = f"<b>fit and latency for the chosen model</b> {modelled_badge(accuracy)}"
        if self.header.value != html:
            self.header.value = html

    def show_fit(self, name: str, fit: Fit) -> None:
        """Draw a size's fit line (no message when it is the same)."""
        cell = self.fit_cells[name]
        if cell.value != fit.html:
            cell.value = fit.html

    def style(
        self,
        selected: str,
        attached: str,
        fits: Mapping[str, bool],
        reasons: Mapping[str, str | None],
    ) -> None:
        """Mark the selected row, tick the attached one, disable the sizes that do not fit."""
        for key, button in self.buttons.items():
            fit = key == NONE or fits.get(key, True)
            tooltip = (
                ("attached now" if key == attached else "")
                if fit
                else (reasons.get(key) or "does not fit")
            )
            with button.hold_sync():
                button.disabled = not fit
                button.button_style = "info" if key == selected else ""
                button.icon = "check" if key == attached else ""
                button.tooltip = tooltip
