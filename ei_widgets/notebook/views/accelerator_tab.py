"""The accelerator picker: None and the six EI types, precision, notebook instance, attach/detach.

Every figure comes from the catalog and the core's one judgement of the chosen model
(``device.judgement``, given by the dashboard): whether a size fits, its modelled latency and the
core's own message when it does not. The panel follows
the kernel's one accelerator state: whoever attaches (this panel, a magic, the JupyterLab
picker), ``show_state()`` is called and the panel shows it.

The selection always mirrors what is attached (size, precision, instance) until the user picks
something else; Attach is disabled while it would change nothing, and detaching (the Detach
button, or Attach with "None" selected) asks first.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from ei_widgets.common.html import WARN
from ei_widgets.common.money import format_money
from ei_widgets.common.units import format_bytes
from ei_widgets.device.accelerator import AcceleratorState, Change
from ei_widgets.device.catalog import Accelerator, Catalog
from ei_widgets.device.fp16 import cached_check
from ei_widgets.device.judgement import Judgements
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.common import SequenceLength, error_html, esc, note
from ei_widgets.notebook.views.fp16check import FP16Panel
from ei_widgets.notebook.views.size_table import NONE, SizeTable, fit_of
from ei_widgets.notebook.views.tab import Board, Chosen, DashboardTab, TabSpec

DETACH_FOLLOWS = "Sessions then fail until an accelerator is attached again."
"""What follows a detach, as the JupyterLab picker and the palette also say it."""

NOTHING_ATTACHED = (
    "sessions raise NoAcceleratorError until an accelerator is attached (as Elastic Inference "
    "did); nothing falls back to the notebook instance's CPUs."
)


class PickerPanel(w.VBox, DashboardTab):
    """Choose an accelerator (or none), a precision and a notebook instance; attach or detach."""

    def __init__(
        self,
        state: AcceleratorState,
        catalog: Callable[[], Catalog],
        *,
        fp16: FP16Panel | None = None,
        on_seq_len: Callable[[int], None] = lambda _n: None,
    ) -> None:
        """``on_seq_len``: a sequence length chosen for a transformer (every size is judged at
        it). ``fp16``: the dashboard's fp16 check panel (measure, progress, answer), shown under the
        precision; it then says what fp16 does to the model, in place of the one-line note."""
        self._state = state
        self._fp16_panel = fp16
        self._catalog = catalog
        self.selected: str = NONE
        self.fits: dict[str, bool] = {}
        self.reasons: dict[str, str | None] = {}
        cat = catalog()
        self.accelerators: list[Accelerator] = sorted(
            cat.accelerators.values(), key=lambda a: (a.family, a.f32_tflops, a.memory_bytes)
        )
        self.grid = SizeTable(self.accelerators, self.select, cat.latency_accuracy)
        self.buttons, self.fit_cells = self.grid.buttons, self.grid.fit_cells
        self.precision = w.ToggleButtons(
            options=[("FP32", "fp32"), ("FP16", "fp16")],
            value="fp32",
            description="Precision",
            style={"button_width": "70px"},
        )
        self.instance = w.Dropdown(
            options=self._instance_options(cat),
            value=state.instance.name,
            description="Notebook",
            layout=w.Layout(width="420px", max_width="100%"),
            style={"description_width": "70px"},
        )
        self.attach_button = w.Button(description="Attach", icon="plug")
        self.detach_button = w.Button(description="Detach", icon="times")
        self.confirm_text = w.HTML()
        self.confirm_button = w.Button(description="Detach", button_style="warning")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm = w.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button],
            layout=w.Layout(display="none", align_items="center"),
        )
        self.status = w.HTML()
        self.message = w.HTML()
        self.fp16_note = w.HTML()  # at fp16: what it does to the chosen model's outputs
        self.attach_button.on_click(lambda _b: self.attach())
        self.detach_button.on_click(lambda _b: self.detach())
        self.confirm_button.on_click(lambda _b: self.confirm_detach())
        self.cancel_button.on_click(lambda _b: self.cancel_detach())
        self.seq_len = SequenceLength(on_seq_len)
        self.instance.observe(self._on_instance, names="value")
        self.precision.observe(lambda _c: self._after_precision(), names="value")
        self.judgements: Judgements | None = None  # the chosen model's, from the dashboard
        self._keep_pending = False  # an instance change keeps the size and precision chosen
        super().__init__(
            [
                w.HTML(
                    "<b>Accelerator</b> "
                    + note(
                        "Simulated Elastic Inference accelerators: outputs are computed on this "
                        "host, time, memory and cost come from the latency model."
                    )
                ),
                self.status,
                self.grid,
                w.HBox([self.precision, self.instance, self.seq_len]),
                self.fp16_note,
                *([fp16] if fp16 is not None else []),
                w.HBox([self.attach_button, self.detach_button]),
                self.confirm,
                self.message,
            ]
        )
        self.show_state()
        self.show_judgements(None)

    @staticmethod
    def _instance_options(cat: Catalog) -> list[tuple[str, str]]:
        return [
            (
                f"{i.name} — {i.vcpus} vCPU, {format_bytes(i.memory_bytes)},"
                f" {format_money(i.price_per_hour)}/h",
                i.name,
            )
            for i in cat.notebook_instances()
        ]

    # --- user actions --------------------------------------------------------------------------

    def select(self, key: str) -> None:
        """Choose a row (``"none"`` or an accelerator name) for the next Attach."""
        if key != NONE and not self.fits.get(key, True):
            self.message.value = error_html(self.reasons.get(key) or f"{key} does not fit.")
            return
        self.selected = key
        self.message.value = ""
        self._style_buttons()

    def pending_change(self) -> str | None:
        """What Attach would do now, in words; None when it would change nothing."""
        att = self._state.attachment
        if self.selected == NONE:
            return f"detach {att.name}" if att is not None else None
        precision = self.precision.value
        if att is None:
            return f"attach {self.selected} ({precision})"
        if att.name == self.selected and att.precision == precision:
            return None
        return f"replace {att.name} ({att.precision}) with {self.selected} ({precision})"

    def attach(self) -> None:
        """Attach the selected accelerator; with "None" selected, ask before detaching.

        A refusal is shown with its reason; nothing happens when nothing would change.
        """
        if self.pending_change() is None:
            return
        if self.selected == NONE:
            self.detach()
            return
        name = self.selected
        try:
            self._check_fit(name)
            attachment = self._state.attach(
                name, instance=self.instance.value, precision=self.precision.value
            )
        except EIError as error:
            self.message.value = error_html(f"Not attached: {error}")
            return
        self.message.value = note(f"Attached {attachment.name} ({attachment.precision}).")

    def detach(self) -> None:
        """Ask before detaching (sessions then fail until an accelerator is attached)."""
        att = self._state.attachment
        if att is None:
            self.message.value = note("No accelerator is attached.")
            return
        self.confirm_text.value = (
            f'<span style="font-size:13px">Detach <b>{esc(att.name)}</b>? {esc(DETACH_FOLLOWS)}'
            "</span>"
        )
        self.confirm.layout.display = "flex"

    def confirm_detach(self) -> None:
        self.confirm.layout.display = "none"
        previous = self._state.detach()
        self.message.value = note(
            f"Detached {previous.name}." if previous else "No accelerator was attached."
        )

    def cancel_detach(self) -> None:
        self.confirm.layout.display = "none"
        self.show_state()

    def _check_fit(self, name: str) -> None:
        """Refuse a size that does not fit the chosen model at the run's batch and precision."""
        if self.judgements is None:
            return
        fit = fit_of(self.judgements.of(name, self.precision.value))
        if not fit.fits:
            raise EIError(fit.reason or f"{name} does not fit.")

    def _on_instance(self, change: dict[str, object]) -> None:
        """The instance applies at once (the attachment stays); a size or precision chosen but
        not attached yet stays chosen, and the message says both."""
        name = str(change["new"])
        if name == self._state.instance.name:
            return
        pending = self.pending_change()
        selected, precision = self.selected, self.precision.value
        self._keep_pending = True
        try:
            self._state.set_instance(name)
        except EIError as error:
            self.message.value = error_html(str(error))
            return
        finally:
            self._keep_pending = False
        if self.selected != selected and (selected == NONE or self.fits.get(selected, True)):
            self.selected = selected
        if self.precision.value != precision:
            self.precision.value = precision
        self._style_buttons()
        kept = (
            f" Not applied yet: {pending} (press {self.attach_button.description})."
            if (pending)
            else ""
        )
        self.message.value = note(f"Notebook instance now {name}, applied at once.{kept}")

    def _after_precision(self) -> None:
        self.show_judgements(self.judgements)  # restyles the buttons too

    # --- following the core --------------------------------------------------------------------

    def show_state(self) -> None:
        """Show what the kernel's state holds now (called on every state change): the status
        line, and a selection, precision and instance that mirror what is attached."""
        att = self._state.attachment
        if att is None:
            text = f"Nothing attached: {NOTHING_ATTACHED}"
        else:
            text = (
                f"Attached: <b>{esc(att.name)}</b> ({esc(att.precision)}) since "
                f"{att.since:%H:%M:%S} UTC, on {esc(self._state.instance.name)}."
            )
        self.status.value = f'<div style="font-size:13px">{text}</div>'
        if not self._keep_pending:  # mirror what is attached, unless only the instance moved
            self.selected = att.name if att is not None else NONE
            if att is not None and self.precision.value != att.precision:
                self.precision.value = att.precision
        if self.instance.value != self._state.instance.name:
            self.instance.value = self._state.instance.name
        if att is None:
            self.confirm.layout.display = "none"
        self._style_buttons()

    def follow(self, change: Change) -> None:
        """The kernel's accelerator or instance changed (from any view): show it, say its
        notice, and refit the sizes on a new instance."""
        self.show_state()
        if change.notice:
            self.message.value = (
                f'<div style="font-size:12px;color:{WARN}">{esc(change.notice)}</div>'
            )

    def show_model(self, chosen: Chosen) -> None:
        """The chosen model: the fp16 check follows it, and every size shows its fit."""
        if self._fp16_panel is not None:
            self._fp16_panel.set_model(chosen.variable, chosen.profile)
        profile = chosen.profile
        by_length = chosen.by_length
        self.seq_len.show_for(
            profile.seq_len if profile else None,
            [p.seq_len for p in by_length.points] if by_length is not None else None,
        )
        self.show_judgements(chosen.judgements)

    def close_tab(self) -> None:
        if self._fp16_panel is not None:
            self._fp16_panel.close_panel()

    @property
    def fp16_panel(self) -> FP16Panel | None:
        """The fp16 check panel shown under the precision (in the dashboard)."""
        return self._fp16_panel

    def show_judgements(self, judgements: Judgements | None) -> None:
        """Show the chosen model's fit and modelled latency on every size (the core's
        judgement, at the run's batch on the kernel's instance), at the chosen precision."""
        self.judgements = judgements
        cat = self._catalog()
        self.grid.set_accuracy(
            judgements.accuracy.text if judgements is not None else cat.latency_accuracy
        )
        for acc in self.accelerators:
            judged = judgements.of(acc.name, self.precision.value) if judgements else None
            fit = fit_of(judged)
            self.fits[acc.name], self.reasons[acc.name] = fit.fits, fit.reason
            self.grid.show_fit(acc.name, fit)
        if self.selected != NONE and not self.fits.get(self.selected, True):
            att = self._state.attachment  # back to what is attached, never to a silent detach
            self.selected = att.name if att is not None else NONE
        self._show_fp16()
        self._style_buttons()

    def _show_fp16(self) -> None:
        """At fp16, the measured effect on the chosen model's outputs, or how to measure it
        (nothing when the fp16 check panel is shown: it says so itself)."""
        text = ""
        if (
            self.precision.value == "fp16"
            and self.judgements is not None
            and self._fp16_panel is None
        ):
            check = cached_check(self.judgements.profile)
            text = (
                check.summary
                if check is not None
                else "fp16's effect on this model's outputs is not measured yet: "
                "%ei_inspect MODEL --fp16, or ei_widgets.device.fp16.fp16_check(model)."
            )
        self.fp16_note.value = note(text) if text else ""

    def _style_buttons(self) -> None:
        att = self._state.attachment
        attached = att.name if att is not None else NONE
        self.grid.style(self.selected, attached, self.fits, self.reasons)
        change = self.pending_change()
        detaching = self.selected == NONE
        with self.attach_button.hold_sync():
            self.attach_button.disabled = change is None
            # a disabled button is drawn plain, so it never looks pressable
            self.attach_button.button_style = (
                "" if change is None else "warning" if detaching else "primary"
            )
            self.attach_button.description = "Detach…" if detaching and change else "Attach"
            self.attach_button.tooltip = (
                "this is what is attached now" if change is None else change[0].upper() + change[1:]
            )
        with self.detach_button.hold_sync():
            # with None selected, Attach is the one "Detach…": never two Detach buttons
            self.detach_button.layout.display = "none" if detaching else ""
            self.detach_button.disabled = att is None
            self.detach_button.tooltip = (
                "nothing is attached" if att is None else f"detach {att.name}"
            )


def _make(board: Board) -> PickerPanel:
    fp16 = FP16Panel(board.model_of, lock=board.lock, on_done=board.fp16_done)
    return PickerPanel(board.state, board.catalog, fp16=fp16, on_seq_len=board.seq_len_changed)


TAB = TabSpec("Accelerator", _make)
