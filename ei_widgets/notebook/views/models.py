"""Models found in the kernel, and the Inspector of the chosen one.

The Models list comes from ``discovery.find_models`` (cheap: it never profiles) and refreshes
after every cell. Parameters and GFLOPs need a profile: each new model is profiled once, in one
background thread, and the row fills in when it is done; a model that fails to profile shows its
error in its row and the rest of the dashboard stays usable.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets as w

from ei_widgets.common.html import BAD, GOOD, GREY
from ei_widgets.common.units import format_bytes, format_count, format_ms, format_percent
from ei_widgets.device.catalog import Catalog
from ei_widgets.device.judgement import Judgements
from ei_widgets.device.runs import short_message
from ei_widgets.device.sequence import LengthScaling, length_table_html
from ei_widgets.models.discovery import ModelEntry
from ei_widgets.models.frameworks.base import ExportProgress
from ei_widgets.notebook.views.common import (
    Raw,
    SequenceLength,
    error_html,
    esc,
    modelled_badge,
    note,
    table,
)
from ei_widgets.profiling.result import OpTypeTotal, Profile, bound_at, op_label
from ei_widgets.profiling.shape_inference import format_shape, format_shapes

TOP_OP_TYPES = 12
HEAVIEST = 10


def op_share_html(ops: list[OpTypeTotal], total: int) -> str:
    """FLOPs by op type as a sorted share, each with its bar: the small ones stay readable
    beside a dominant Conv (a linear bar chart would press them to the floor)."""
    shown = [t for t in ops if t.flops > 0][:TOP_OP_TYPES]
    rest = sum(t.flops for t in ops if t.flops > 0) - sum(t.flops for t in shown)
    rows = [(t.op_type, t.flops) for t in shown] + ([("other op types", rest)] if rest else [])
    lines = "".join(
        '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:0 8px;font-size:12px;'
        'font-variant-numeric:tabular-nums">'
        '<span style="width:150px;max-width:100%;overflow:hidden;text-overflow:ellipsis">'
        f"{esc(name)}</span>"
        '<span style="flex:0 1 200px;min-width:60px;height:9px;'
        'background:var(--jp-layout-color2, #eee)">'
        f'<span style="display:block;height:100%;width:{100 * flops / total:.2f}%;'
        'background:var(--jp-brand-color1, #4e79a7)"></span></span>'
        f'<span style="width:52px;text-align:right">{format_percent(flops / total)}</span>'
        f'<span style="color:{GREY}">{format_count(flops)}FLOPs</span></div>'
        for name, flops in rows
    )
    return (
        '<div style="margin:6px 0"><b>FLOPs by op type (batch 1), largest share first</b>'
        f"{lines or note('No op with a FLOP count.')}</div>"
    )


@dataclass(frozen=True)
class ProfileResult:
    """A model's profile at batch 1, or why it could not be made."""

    profile: Profile | None
    error: str | None
    by_length: LengthScaling | None = None  # a transformer's latency by sequence length


class ProfileCache:
    """Profiles by (variable, object identity), made in one background thread, one at a time."""

    def __init__(
        self, make: Callable[[object, str], ProfileResult], on_done: Callable[[str], None]
    ) -> None:
        self._make = make
        self._on_done = on_done
        self._results: dict[tuple[str, int], ProfileResult] = {}
        self._queue: queue.Queue[tuple[str, object] | None] = queue.Queue()
        self._pending: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def get(self, variable: str, obj: object) -> ProfileResult | None:
        with self._lock:
            return self._results.get((variable, id(obj)))

    def now(self, variable: str, obj: object) -> ProfileResult:
        """The result, profiling in the caller's thread if it is not known yet."""
        hit = self.get(variable, obj)
        if hit is not None:
            return hit
        result = self._profile(variable, obj)
        with self._lock:
            self._results[(variable, id(obj))] = result
        return result

    def request(self, variable: str, obj: object) -> None:
        """Profile in the background unless known or queued."""
        key = (variable, id(obj))
        with self._lock:
            if key in self._results or key in self._pending:
                return
            self._pending.add(key)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="ei-widgets-profiler", daemon=True
                )
                self._thread.start()
        self._queue.put((variable, obj))

    def keep_only(self, live: Mapping[str, object]) -> None:
        """Forget the profiles of variables that are gone or now hold another object."""
        with self._lock:
            for key in list(self._results):
                if key[0] not in live or id(live[key[0]]) != key[1]:
                    del self._results[key]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every requested profile is done (tests and scripts)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _profile(self, variable: str, obj: object) -> ProfileResult:
        try:
            return self._make(obj, variable)
        except Exception as error:  # shown in the Models panel, never raised into the kernel
            return ProfileResult(None, short_message(error))

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=5.0)
            except queue.Empty:
                with self._lock:
                    if not self._pending:
                        self._thread = None
                        return
                continue
            if item is None:
                return
            variable, obj = item
            key = (variable, id(obj))
            with self._lock:
                known = key in self._results
            if not known:
                result = self._profile(variable, obj)
                with self._lock:
                    self._results[key] = result
            with self._lock:
                self._pending.discard(key)
                if not self._pending:
                    self._idle.set()
            self._on_done(variable)


class ModelsPanel(w.VBox):
    """The models found in the kernel's namespace; choose one."""

    def __init__(self, on_choose: Callable[[str | None], None]) -> None:
        self._on_choose = on_choose
        self.entries: list[ModelEntry] = []
        self.results: dict[str, ProfileResult | None] = {}
        self.errors: dict[str, str] = {}  # variable -> error shown in its row
        self.converting: dict[str, ExportProgress] = {}  # variable -> its conversion's stage
        self.choice = w.Dropdown(
            options=[("(no model found)", None)],
            value=None,
            description="Model",
            layout=w.Layout(width="340px", max_width="100%"),
        )
        self.choice.observe(self._chosen, names="value")
        self.listing = w.HTML()
        self.message = w.HTML()
        super().__init__(
            [
                w.HTML(
                    "<b>Models</b> "
                    + note(
                        "ONNX models, .onnx paths and onnxruntime sessions held by this kernel; "
                        "the list refreshes after each cell. GFLOPs and parameters at batch 1."
                    )
                ),
                self.choice,
                self.listing,
                self.message,
            ]
        )
        self._render()

    def _chosen(self, change: dict[str, object]) -> None:
        value = change["new"]
        self._on_choose(value if isinstance(value, str) else None)

    def show(self, entries: list[ModelEntry], results: Mapping[str, ProfileResult | None]) -> None:
        """Show ``entries`` (with their profiles where known); keeps the choice if still there."""
        self.entries = list(entries)
        self.results = dict(results)
        options: list[tuple[str, str | None]] = [
            (f"{e.variable} ({e.kind})", e.variable) for e in entries
        ]
        if not options:
            options = [("(no model found)", None)]
        if list(self.choice.options) != options:
            current = self.choice.value
            keep = current if any(v == current for _, v in options) else None
            with self.choice.hold_trait_notifications():
                self.choice.options = options
                self.choice.value = keep
            if keep is None and current is not None:
                self._on_choose(None)
        self._render()

    def set_error(self, variable: str, error: str | None) -> None:
        if error is None:
            self.errors.pop(variable, None)
        else:
            self.errors[variable] = error
        self._render()

    def _render(self) -> None:
        if not self.entries:
            value = note(
                "No model found yet. Put an onnx.ModelProto, a path to a .onnx file or an "
                "onnxruntime.InferenceSession in a variable, e.g. "
                "model = onnx.load(ei_widgets.demo_model('resnet50'))."
            )
        else:
            rows = []
            chosen = None
            for index, entry in enumerate(self.entries):
                result = self.results.get(entry.variable)
                error = self.errors.get(entry.variable) or (result.error if result else None)
                profile = result.profile if result else None
                if entry.variable == self.choice.value:
                    chosen = index
                size = profile.model_size_bytes if profile else entry.size_bytes
                status: str | Raw
                if error:
                    status = Raw(f'<span style="color:{BAD}">{esc(error)}</span>')
                elif result is None and entry.variable in self.converting:
                    event = self.converting[entry.variable]
                    status = f"converting to ONNX: {event.stage}… {format_percent(event.fraction)}"
                elif result is None:
                    status = "profiling…"
                else:
                    status = Raw(f'<span style="color:{GOOD}">ok</span>')
                rows.append(
                    [
                        entry.variable,
                        entry.kind,
                        format_count(profile.param_count) if profile else "—",
                        format_bytes(size) if size is not None else "—",
                        f"{format_count(profile.flops)}FLOPs" if profile else "—",
                        entry.summary,
                        status,
                    ]
                )
            value = table(
                ["variable", "kind", "parameters", "size", "FLOPs (b=1)", "summary", "status"],
                rows,
                align=["left", "left", "right", "right", "right", "left", "left"],
                highlight=chosen,
                wrap=(5, 6),
            )
        if self.listing.value != value:
            self.listing.value = value


class InspectorPanel(w.VBox):
    """Inputs/outputs, totals, FLOPs by op type, heaviest layers, unknown ops, fit per size."""

    def __init__(
        self, catalog: Callable[[], Catalog], on_seq_len: Callable[[int], None] = lambda _n: None
    ) -> None:
        self._catalog = catalog
        self.profile: Profile | None = None
        self.title = w.HTML()
        self.seq_len = SequenceLength(on_seq_len)
        self.lengths = w.HTML()  # a transformer's modelled latency by sequence length
        self.io = w.HTML()
        self.totals = w.HTML()
        self.op_share = w.HTML()
        self.heaviest = w.HTML()
        self.unknown = w.HTML()
        self.fits = w.HTML()
        super().__init__(
            [
                self.title,
                self.seq_len,
                w.HBox([self.io, self.totals]),
                self.lengths,
                self.op_share,
                self.heaviest,
                self.unknown,
                self.fits,
            ]
        )
        self.show(None)

    def show(
        self,
        profile: Profile | None,
        judgements: Judgements | None = None,
        error: str | None = None,
        by_length: LengthScaling | None = None,
    ) -> None:
        """Inspect ``profile`` with the core's judgement of it on every size (None: an empty
        inspector, with ``error`` if profiling failed), and a transformer's ``by_length``."""
        self.profile = profile
        self.seq_len.show_for(
            profile.seq_len if profile else None,
            [p.seq_len for p in by_length.points] if by_length is not None else None,
        )
        self.lengths.value = (
            length_table_html(by_length, marked=profile.seq_len)
            if profile is not None and by_length is not None
            else ""
        )
        if profile is None:
            self.title.value = (
                error_html(f"Cannot inspect this model: {error}")
                if error
                else "<b>Inspector</b> " + note("Choose a model in the Models panel.")
            )
            for widget in (
                self.io,
                self.totals,
                self.op_share,
                self.heaviest,
                self.unknown,
                self.fits,
            ):
                widget.value = ""
            return
        self.title.value = f"<b>Inspector: {esc(profile.name)}</b> " + note(
            f"{profile.kind}, made by {profile.producer or 'unknown'}, opsets "
            + ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(profile.opsets.items()))
        )
        tensors = [("input", t) for t in profile.inputs] + [("output", t) for t in profile.outputs]
        self.io.value = table(
            ["", "name", "dtype", "shape", f"bound{bound_at(profile)}"],
            [
                [
                    role,
                    t.name,
                    t.dtype,
                    format_shape(t.shape),
                    format_shape(profile.bound_inputs[t.name])
                    if t.name in profile.bound_inputs
                    else "",
                ]
                for role, t in tensors
            ],
        )
        params = ", ".join(f"{g.dtype} {format_count(g.count)}" for g in profile.params) or "none"
        self.totals.value = table(
            ["total", "value"],
            [
                ["parameters", f"{format_count(profile.param_count)} ({params})"],
                ["weights", format_bytes(profile.param_bytes)],
                ["model size", format_bytes(profile.model_size_bytes)],
                [
                    f"FLOPs per call ({bound_at(profile).removeprefix(' at ')})",
                    f"{format_count(profile.flops)}FLOPs",
                ],
                ["MACs", format_count(profile.macs)],
                ["peak activations (batch 1)", format_bytes(profile.peak_activation_bytes)],
                ["nodes", f"{profile.node_count:,}"],
            ],
            align=["left", "right"],
        )
        total = profile.flops or 1
        self.op_share.value = op_share_html(profile.by_op_type(), total)
        self.heaviest.value = "<b>Heaviest layers</b>" + table(
            ["node", "op", "FLOPs", "share", "output shape", "reads", "writes"],
            [
                [
                    n.name or "(unnamed)",
                    op_label(n.op_type, n.domain),
                    f"{format_count(n.flops)}FLOPs",
                    format_percent(n.flops / total),
                    format_shapes(n.output_shapes),
                    format_bytes(n.bytes_read),
                    format_bytes(n.bytes_written),
                ]
                for n in profile.heaviest(HEAVIEST)
            ],
            align=["left", "left", "right", "right", "left", "right", "right"],
        )
        unknown = ", ".join(profile.unknown_ops)
        warnings = "".join(f"<li>{esc(text)}</li>" for text in profile.warnings)
        self.unknown.value = (
            f"<b>Unknown ops</b> (counted as 0 FLOPs): {esc(unknown)}"
            if unknown
            else note("Every op has a cost model.")
        ) + (f'<ul style="font-size:12px;margin:2px 0">{warnings}</ul>' if warnings else "")
        self.show_fits(judgements)

    def show_fits(self, judgements: Judgements | None) -> None:
        """Per accelerator: memory needed and whether it fits, at fp32 and fp16, and latency, as
        the core judged them (on the kernel's notebook instance, at the run's batch)."""
        if judgements is None:
            self.fits.value = ""
            return
        rows = []
        by_name = judgements.by_accelerator
        cat = self._catalog()
        for acc in sorted(cat.accelerators.values(), key=lambda a: (a.family, a.f32_tflops)):
            row: list[str | Raw] = [acc.name, format_bytes(acc.memory_bytes)]
            for precision in ("fp32", "fp16"):
                judged = by_name[acc.name][precision]
                est = judged.estimate
                if est is None:
                    row += [Raw(error_html(judged.reason or "could not be judged")), ""]
                    continue
                mark = (
                    f'<span style="color:{GOOD}">fits</span>'
                    if est.fits
                    else f'<span style="color:{BAD}">does not fit</span>'
                )
                row += [
                    Raw(f"{mark} ({format_bytes(est.memory_needed_bytes)})"),
                    format_ms(est.latency_s),
                ]
            rows.append(row)
        accuracy = judgements.accuracy
        self.fits.value = (
            f"<b>Fit on each accelerator at batch {judgements.batch_size}, on"
            f" {esc(judgements.instance)}</b> {modelled_badge(accuracy.text)}"
            + note(f"How far to trust these latencies: {accuracy.reason}.")
            + table(
                ["accelerator", "memory", "fp32", "fp32 latency", "fp16", "fp16 latency"],
                rows,
                align=["left", "right", "left", "right", "left", "right"],
            )
        )
