"""What fp16 does to a model's outputs, measured: convert it for real and compare with fp32.

``fp16_check(model, inputs=None)`` converts the ONNX graph to float16 with onnxruntime's own tool
(``onnxruntime.transformers.float16.convert_float_to_float16``), keeping the graph's inputs and
outputs float32 (``keep_io_types``) and the ops in ``fp32_ops()`` in float32, then runs both
models with onnxruntime on the same inputs and reports, per output:

- ``max_abs`` / ``mean_abs``: the largest and the mean ``|fp16 - fp32|``;
- ``max_rel`` / ``mean_rel``: the same relative to the fp32 output's magnitude
  (``max|diff| / max|fp32|`` and ``mean|diff| / mean|fp32|``), so values near zero do not blow
  the figure up;
- for a classifier-like output (float, 2-D once trailing size-1 dimensions are dropped, more
  than one class): ``top1``, the share of rows whose arg-max class is the same, and ``top5``
  (more than five classes), the share of rows whose five highest classes are the same set. Both
  are taken over the rows where they mean something: a row whose fp32 top class is tied, or
  whose fp32 output holds a NaN, has no top class to agree with, so it is not measured (and an
  fp16 NaN where fp32 had a class is a disagreement). With no such row left, both are None and
  the text says agreement was not measured, with no percentage;
- ``overflow``: elements finite in fp32 but not in fp16 (fp16 stops at 65504).

Inputs are the user's batch when given (a feed ``{name: array}``, or one array for a one-input
model), else seeded random inputs: floats standard normal, integers in the range the model
accepts (below the size of the table a ``Gather`` indexes with them, at most 10; 0 where the
graph does not say), booleans fair coin flips (``ei_widgets.device.runs.make_inputs``); the
result says which. A model whose first input
has a fixed leading dimension runs in calls of that size.

Both outputs are computed on this host's CPU by onnxruntime; ops that have no fp16 CPU kernel
run in float32 on fp16-rounded tensors (onnxruntime inserts the casts), so the figures are those
of the fp16 graph, not of any particular GPU's arithmetic.

The conversion itself, and the fp16 session an accelerated session runs, live in
:mod:`ei_widgets.device.fp16_conversion`. Converted models and results are cached per model (the
SHA-256
of its serialized bytes): a second check, ``recommend()`` and an fp16 session reuse them. The
conversions kept are bounded by the memory they hold (``set_cache_limit``, or
``$EI_WIDGETS_FP16_CACHE_MB``; 1 GiB by default), the oldest forgotten first. A model
that cannot be converted or run in fp16 (no fp16 kernel, no float tensors at all) gives a result
with ``measured=False`` and a one-line ``reason``; it never raises for that.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ei_widgets.common import text
from ei_widgets.common.html import BAD, BOX, GOOD, WARN, esc, note, table
from ei_widgets.common.units import format_ms, format_percent, significant
from ei_widgets.device.fp16_conversion import (
    Conversion,
    ProgressCallback,
    cache_info,
    cache_limit,
    clear,
    convert,
    fp16_session,
    fp32_ops,
    load,
    model_key,
    one_line,
    set_cache_limit,
)
from ei_widgets.device.runs import input_specs, make_inputs
from ei_widgets.errors import EIError, require_positive_int
from ei_widgets.models.types import LoadedModel
from ei_widgets.profiling.result import Profile

DEFAULT_SAMPLES = 8
DEFAULT_SEED = 0
NOT_MEASURED = "not measured"


class FP16Error(EIError):
    """The fp16 check was asked for something it cannot do (inputs that do not match the model)."""


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of the fp16 model differs from the fp32 model's."""

    name: str
    shape: tuple[int, ...]  # of the fp32 output, all calls stacked
    max_abs: float
    mean_abs: float
    max_rel: float  # max|diff| / max|fp32|
    mean_rel: float  # mean|diff| / mean|fp32|
    classifier: bool  # float, 2-D once trailing 1s are dropped, more than one class
    rows: int  # rows compared (the batch, all calls together)
    top1: float | None = None  # share of rows with the same arg-max class
    top5: float | None = None  # share of rows with the same five highest classes (as a set)
    tied_rows: int = 0  # rows whose fp32 top class is tied: agreement there means nothing
    overflow: int = 0  # elements finite in fp32 but not in fp16
    nan_rows: int = 0  # rows whose fp32 output holds a NaN: no top class to agree with

    @property
    def measured_rows(self) -> int:
        """Rows over which ``top1`` and ``top5`` were taken (neither tied nor NaN in fp32)."""
        return self.rows - self.tied_rows - self.nan_rows

    @property
    def text(self) -> str:
        """``"top-1 100% (8 rows), top-5 88%"`` for a classifier, else the relative errors;
        rows left out (tied, NaN) are counted, and with none left no percentage is given."""
        skipped = [
            f"fp32 top class tied in {self.tied_rows} of {self.rows} rows"
            if self.tied_rows
            else "",
            f"fp32 output NaN in {self.nan_rows} of {self.rows} rows" if self.nan_rows else "",
        ]
        skipped = [s for s in skipped if s]
        if self.classifier and self.top1 is None:
            parts = [f"top-1 agreement not measured: {' and '.join(skipped) or 'no rows'}"]
        elif self.classifier and self.top1 is not None:
            of = (
                f"{self.rows} rows"
                if not skipped
                else f"{self.measured_rows} of {self.rows} rows measured"
            )
            parts = [f"top-1 {format_percent(self.top1)} ({of})"]
            if self.top5 is not None:
                parts.append(f"top-5 {format_percent(self.top5)}")
            if skipped:
                parts.append(f"not measured where {' and '.join(skipped)}")
        else:
            parts = [f"max rel. error {format_percent(self.max_rel)}"]
        if self.overflow:
            parts.append(f"{self.overflow:,} overflowed")
        return ", ".join(parts)


@dataclass(frozen=True)
class FP16Check:
    """The measured effect of fp16 on one model's outputs (or why it was not measured)."""

    model: str
    measured: bool
    reason: str  # one line: why not measured ("" when measured)
    inputs: str  # which inputs were used, in words
    from_user: bool  # True when the user's own inputs were used
    samples: int  # rows compared (0 when not measured)
    outputs: tuple[OutputAgreement, ...] = ()
    kept_fp32: tuple[str, ...] = ()  # the model's op types kept in float32 (the block list)
    convert_seconds: float = 0.0
    compare_seconds: float = 0.0
    key: str = field(default="", repr=False)  # SHA-256 of the model's bytes
    size_bytes: int = field(default=0, repr=False)

    @property
    def classifier(self) -> OutputAgreement | None:
        """The first classifier-like output, if any."""
        return next((o for o in self.outputs if o.classifier), None)

    @property
    def top1(self) -> float | None:
        out = self.classifier
        return out.top1 if out is not None else None

    @property
    def agreement(self) -> str:
        """What a table shows for the model's fp16 rows: the classifier's agreement, else the
        largest relative error; ``"not measured"`` when it was not."""
        if not self.measured:
            return NOT_MEASURED
        out = self.classifier
        if out is not None:
            return out.text
        worst = max(self.outputs, key=lambda o: o.max_rel, default=None)
        return worst.text if worst is not None else "no tensor outputs"

    @property
    def summary(self) -> str:
        """One sentence: the answer and what it was measured on."""
        if not self.measured:
            return f"fp16 {NOT_MEASURED} for {self.model}: {self.reason}"
        return f"fp16 vs fp32 on {self.model}: {self.agreement}; {self.inputs}."

    def __repr__(self) -> str:
        if not self.measured:
            return f"<FP16Check {self.model}: {NOT_MEASURED} ({self.reason})>"
        return f"<FP16Check {self.model}: {self.agreement}; {self.samples} samples>"

    def _repr_html_(self) -> str:
        return check_html(self)


def _output_rows(check: FP16Check, times: str, dash: str) -> list[tuple[str, ...]]:
    """One row per output, for both tables; HTML writes ``×`` and ``—`` where text writes
    ``x`` and ``-``."""

    def share(value: float | None) -> str:
        return dash if value is None else format_percent(value)

    return [
        (
            o.name,
            times.join(str(d) for d in o.shape),
            significant(o.max_abs),
            significant(o.mean_abs),
            format_percent(o.max_rel),
            format_percent(o.mean_rel),
            share(o.top1),
            share(o.top5),
        )
        for o in check.outputs
    ]


def check_html(check: FP16Check) -> str:
    """The answer first, then one row per output, timings and the fp32 ops last."""
    parts = [f'<div style="{BOX}">']
    colour = GOOD if check.measured else BAD
    head = check.agreement if check.measured else f"{NOT_MEASURED}: {check.reason}"
    parts.append(
        f'<div style="font-size:15px"><b>fp16 vs fp32</b> on {esc(check.model)}:'
        f' <span style="color:{colour}">{esc(head)}</span></div>'
    )
    if check.measured:
        parts.append(note(f"Measured with onnxruntime on this host: {check.inputs}."))
        rows = _output_rows(check, "×", "—")
        headers = ["output", "shape", "max |err|", "mean |err|", "max rel.", "mean rel.",
                   "top-1", "top-5"]  # fmt: skip
        parts.append(table(headers, rows, "llrrrrrr"))
        notes = [o for o in check.outputs if o.tied_rows or o.nan_rows or o.overflow]
        parts += [note(f"{o.name}: {o.text}", WARN) for o in notes]
        parts.append(
            note(
                f"Converted in {format_ms(check.convert_seconds)}, compared in "
                f"{format_ms(check.compare_seconds)}."
                + (f" Kept in fp32: {', '.join(check.kept_fp32)}." if check.kept_fp32 else "")
            )
        )
    return "".join(parts) + "</div>"


def check_text(check: FP16Check) -> str:
    """The check as plain text (the CLI, ``%ei_inspect --fp16``): the answer, then one row per
    output."""

    lines = [check.summary]
    if check.measured:
        rows = _output_rows(check, "x", "-")
        header = ["output", "shape", "max |err|", "mean |err|", "max rel", "mean rel", "top-1",
                  "top-5"]  # fmt: skip
        lines += ["", text.table(rows, header)]
        if check.kept_fp32:
            lines.append(f"Kept in fp32: {', '.join(check.kept_fp32)}.")
        lines.append("Both models run for real by onnxruntime on this host.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Comparison


_LOCK = threading.Lock()
_RESULTS: dict[tuple[Any, ...], FP16Check] = {}
_BY_NAME: dict[str, FP16Check] = {}  # the latest check of each model name, for recommend()


_PASS_THROUGH = frozenset(
    {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand", "Transpose"}
)


def integer_ranges(model: onnx.ModelProto) -> dict[str, int]:
    """For each integer input of ``model``: the exclusive upper bound of the values it accepts,
    read from the graph where it can be (the smallest table a ``Gather`` indexes with it, through
    casts and reshapes), else 1 (only 0 is safe: a 2-row ``token_type_ids`` table takes 0 and 1,
    and an input we cannot follow may be anything)."""
    graph = model.graph
    integer = {
        onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32,
        onnx.TensorProto.INT64, onnx.TensorProto.UINT8, onnx.TensorProto.UINT16,
        onnx.TensorProto.UINT32, onnx.TensorProto.UINT64,
    }  # fmt: skip
    tables = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tables[node.output[0]] = tuple(node.attribute[0].t.dims)
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    ranges: dict[str, int] = {}
    for value in graph.input:
        if value.name in tables or value.type.tensor_type.elem_type not in integer:
            continue
        bounds: list[int] = []
        seen, todo = {value.name}, [value.name]
        while todo:
            name = todo.pop()
            for node, position in consumers.get(name, ()):
                if node.op_type in _PASS_THROUGH and position == 0:
                    todo.extend(o for o in node.output if o not in seen)
                    seen.update(node.output)
                elif node.op_type == "Gather" and position == 1 and node.input[0] in tables:
                    dims = tables[node.input[0]]
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    if dims and -len(dims) <= axis < len(dims) and dims[axis] > 0:
                        bounds.append(int(dims[axis]))
        ranges[value.name] = min([10, *bounds]) if bounds else 1
    return ranges


def _feeds(
    sess: Any, inputs: Any, samples: int, seed: int, int_high: Mapping[str, int] | None = None
) -> tuple[list[dict[str, np.ndarray]], str, int]:
    """The calls to make (feeds), the inputs in words, and how many rows they hold."""

    specs = input_specs(sess)
    lead = specs[0].shape[0] if specs and specs[0].shape else None
    fixed = lead if isinstance(lead, int) and lead > 0 else None
    if inputs is None:
        per_call = fixed or samples
        calls = max(1, -(-samples // per_call))
        feeds = [
            make_inputs(specs, per_call, seed=seed + i, int_high=int_high) for i in range(calls)
        ]
        what = (
            f"seeded random inputs (seed {seed}, {calls * per_call} rows: floats standard "
            "normal, integers in the range the model accepts)"
        )
        return feeds, what, calls * per_call
    if not isinstance(inputs, Mapping):
        if len(specs) != 1:
            listed = ", ".join(s.name for s in specs)
            raise FP16Error(f"this model has {len(specs)} inputs ({listed}): pass a dict of them")
        inputs = {specs[0].name: inputs}
    names = {s.name for s in specs}
    if set(inputs) != names:
        raise FP16Error(
            f"inputs must name exactly the model's inputs ({', '.join(sorted(names))}), "
            f"got {', '.join(sorted(map(str, inputs)))}"
        )
    try:
        feed = {k: np.asarray(v) for k, v in inputs.items()}
    except (ValueError, TypeError) as exc:  # ragged lists, objects numpy cannot hold
        raise FP16Error(f"inputs must be arrays: {exc}") from None
    for spec in specs:
        arr = feed[spec.name]
        if spec.shape is not None and arr.ndim != len(spec.shape):
            raise FP16Error(
                f"input {spec.name!r} must have {len(spec.shape)} dimensions"
                f" {tuple(spec.shape)}, got shape {arr.shape}"
            )
        wants_float = np.dtype(spec.dtype).kind == "f"
        if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and not wants_float):
            raise FP16Error(
                f"input {spec.name!r} must be {spec.dtype}, got an array of {arr.dtype}"
            )
        feed[spec.name] = arr.astype(spec.dtype, copy=False)
    first = feed[specs[0].name]
    rows = int(first.shape[0]) if first.ndim else 1
    if fixed is None or fixed == rows or first.ndim == 0:
        return [feed], f"your inputs ({rows} rows)", rows
    if rows % fixed:
        raise FP16Error(
            f"input {specs[0].name!r} has a fixed batch of {fixed}: pass a multiple of {fixed} "
            f"rows, not {rows}"
        )
    feeds = [
        {k: v[i : i + fixed] for k, v in feed.items()} for i in range(0, rows, fixed)
    ]  # every input split along its batch alike
    return feeds, f"your inputs ({rows} rows, {len(feeds)} calls of {fixed})", rows


def _rows(a: np.ndarray) -> np.ndarray | None:
    """``a`` as (rows, classes) when it looks like a classifier's output, else None."""
    shape = list(a.shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape.pop()
    if len(shape) != 2 or shape[-1] < 2:
        return None
    return a.reshape(shape)


def _top_sets(a: np.ndarray, k: int) -> np.ndarray:
    return np.sort(np.argpartition(-a, k - 1, axis=1)[:, :k], axis=1)


def compare_outputs(name: str, ref: np.ndarray, got: np.ndarray) -> OutputAgreement:
    """The errors of ``got`` (fp16) against ``ref`` (fp32) for one output (a variable-length
    output whose length fp16 changed differs everywhere: infinite errors)."""
    ref64 = np.asarray(ref, dtype=np.float64)
    got64 = np.asarray(got, dtype=np.float64)
    if ref64.shape != got64.shape:
        rows = int(ref.shape[0]) if ref.ndim else 1
        inf = float("inf")
        shape = tuple(int(d) for d in ref.shape)
        return OutputAgreement(name, shape, inf, inf, inf, inf, classifier=False, rows=rows)
    both = np.isfinite(ref64) & np.isfinite(got64)
    overflow = int((np.isfinite(ref64) & ~np.isfinite(got64)).sum())
    diff = np.abs(got64 - ref64)[both]
    size = np.abs(ref64[both])
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    top_ref = float(size.max()) if size.size else 0.0
    mean_ref = float(size.mean()) if size.size else 0.0
    rows = int(ref.shape[0]) if ref.ndim else 1
    result = OutputAgreement(
        name=name,
        shape=tuple(int(d) for d in ref.shape),
        max_abs=max_abs,
        mean_abs=mean_abs,
        max_rel=max_abs / top_ref if top_ref else (0.0 if max_abs == 0 else float("inf")),
        mean_rel=mean_abs / mean_ref if mean_ref else (0.0 if mean_abs == 0 else float("inf")),
        classifier=False,
        rows=rows,
        overflow=overflow,
    )
    scores = _rows(ref64) if np.issubdtype(np.asarray(ref).dtype, np.floating) else None
    if scores is None:
        return result
    other = got64.reshape(scores.shape)
    classes = scores.shape[1]
    # Rows with no fp32 top class are not measured: a NaN (argmax would pick it), or a tie.
    nan = np.isnan(scores).any(axis=1)
    ordered = np.sort(np.where(nan[:, None], 0.0, scores), axis=1)
    tied = ~nan & (ordered[:, -1] == ordered[:, -2])
    keep = ~(nan | tied)
    ref_rows, got_rows = scores[keep], other[keep]
    broken = np.isnan(got_rows).any(axis=1)  # fp16 NaN where fp32 had a class: disagrees
    top1 = top5 = None
    if keep.any():
        same = ref_rows.argmax(axis=1) == np.nan_to_num(got_rows, nan=-np.inf).argmax(axis=1)
        top1 = float(np.mean(same & ~broken))
        if classes > 5:
            sets = _top_sets(ref_rows, 5) == _top_sets(np.nan_to_num(got_rows, nan=-np.inf), 5)
            top5 = float(np.mean(np.all(sets, axis=1) & ~broken))
    return OutputAgreement(
        **{
            **result.__dict__,
            "classifier": True,
            "rows": scores.shape[0],
            "top1": top1,
            "top5": top5,
            "tied_rows": int(tied.sum()),
            "nan_rows": int(nan.sum()),
        }
    )


def _inputs_key(inputs: Any) -> Any:
    """A cache key for the user's inputs (their bytes' hash), None for random ones."""
    if inputs is None:
        return None
    items = inputs.items() if isinstance(inputs, Mapping) else [("", inputs)]
    digest = hashlib.sha256()
    for name, value in sorted(items, key=lambda kv: str(kv[0])):
        try:
            arr = np.ascontiguousarray(np.asarray(value))
        except (ValueError, TypeError) as exc:  # ragged lists, objects numpy cannot hold
            raise FP16Error(f"input {str(name)!r} must be an array: {exc}") from None
        digest.update(f"{name}|{arr.dtype}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def fp16_check(
    model: Any,
    inputs: Mapping[str, Any] | np.ndarray | None = None,
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    op_block_list: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
    **loader_options: Any,
) -> FP16Check:
    """Convert ``model`` to fp16, run both on the same inputs and report how outputs differ.

    ``model``: anything ``ei_widgets.profile`` accepts (a path, bytes, ``ModelProto``, a PyTorch
    module with ``input_shape=``...). ``inputs``: your batch, ``{input name: array}`` or one
    array for a one-input model; without it, ``samples`` rows of seeded random inputs.
    ``op_block_list``: op types kept in float32 (default ``fp32_ops()``).
    ``on_progress(stage, fraction)`` is called during conversion and comparison.
    Raises :class:`FP16Error` only for inputs that do not match the model.
    """
    require_positive_int(samples, "samples", FP16Error)
    loaded = load(model, **loader_options)
    block = fp32_ops() if op_block_list is None else tuple(op_block_list)
    key, _ = model_key(loaded)
    cache_key = (key, block, _inputs_key(inputs), samples, seed)
    with _LOCK:
        hit = _RESULTS.get(cache_key)
    if hit is not None:
        if on_progress is not None:
            on_progress("convert", 1.0)
            on_progress("compare", 1.0)
        _remember(loaded, hit)
        return hit
    entry = convert(loaded, block, on_progress)
    size = loaded.size_bytes
    if entry.model is None:
        check = FP16Check(
            model=loaded.name,
            measured=False,
            reason=entry.reason,
            inputs="",
            from_user=inputs is not None,
            samples=0,
            kept_fp32=entry.kept_fp32,
            convert_seconds=entry.seconds,
            key=key,
            size_bytes=size,
        )
    else:
        highs = integer_ranges(loaded.model) if inputs is None else None
        check = _compare(loaded.name, entry, inputs, samples, seed, on_progress, size, highs)
    with _LOCK:
        if len(_RESULTS) > 64:
            _RESULTS.pop(next(iter(_RESULTS)))
        _RESULTS[cache_key] = check
    _remember(loaded, check)
    return check


def _compare(
    name: str,
    entry: Conversion,
    inputs: Any,
    samples: int,
    seed: int,
    on_progress: ProgressCallback | None,
    size: int,
    int_high: Mapping[str, int] | None = None,
) -> FP16Check:
    s32, s16 = entry.sessions["fp32"], entry.sessions["fp16"]
    feeds, what, rows = _feeds(s32, inputs, samples, seed, int_high)
    names = [o.name for o in s32.get_outputs()]
    got32: list[list[Any]] = []
    got16: list[list[Any]] = []
    start = time.perf_counter()
    for i, feed in enumerate(feeds):
        if on_progress is not None:
            on_progress("compare", i / len(feeds))
        try:
            got32.append(s32.run(None, feed))
        except Exception as exc:  # onnxruntime refuses the inputs: wrong type, rank or range
            if inputs is not None:
                raise FP16Error(f"onnxruntime refused your inputs: {one_line(exc)}") from None
            return _not_measured(name, entry, f"the fp32 model cannot run: {one_line(exc)}", size)
        try:
            got16.append(s16.run(None, feed))
        except Exception as exc:
            return _not_measured(name, entry, f"the fp16 model cannot run: {one_line(exc)}", size)
    seconds = time.perf_counter() - start
    if on_progress is not None:
        on_progress("compare", 1.0)
    outputs = []
    for j, out in enumerate(names):
        parts32 = [call[j] for call in got32]
        parts16 = [call[j] for call in got16]
        if not all(isinstance(p, np.ndarray) for p in (*parts32, *parts16)):
            continue  # a sequence or map output (ZipMap): not a tensor to compare
        outputs.append(compare_outputs(out, _stack(parts32), _stack(parts16)))
    return FP16Check(
        model=name,
        measured=True,
        reason="",
        inputs=what,
        from_user=inputs is not None,
        samples=rows,
        outputs=tuple(outputs),
        kept_fp32=entry.kept_fp32,
        convert_seconds=entry.seconds,
        compare_seconds=seconds,
        key=entry.key,
        size_bytes=size,
    )


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    """The calls' outputs as one array: stacked along the batch when they agree past it, else
    (variable-length outputs) flattened end to end."""
    if not parts[0].ndim:
        return parts[0]
    if len(parts) == 1 or all(p.shape[1:] == parts[0].shape[1:] for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.ravel() for p in parts])


def _not_measured(name: str, entry: Conversion, reason: str, size: int) -> FP16Check:
    return FP16Check(
        model=name,
        measured=False,
        reason=reason,
        inputs="",
        from_user=False,
        samples=0,
        kept_fp32=entry.kept_fp32,
        convert_seconds=entry.seconds,
        key=entry.key,
        size_bytes=size,
    )


def _remember(loaded: LoadedModel, check: FP16Check) -> None:
    with _LOCK:
        _BY_NAME[loaded.name] = check


def cached_check(profile: Profile) -> FP16Check | None:
    """The latest fp16 check of ``profile``'s model, if one was run in this process.

    Matched by the model's name and size, what a profile knows of its model.
    """
    with _LOCK:
        check = _BY_NAME.get(profile.name)
    if check is None or (check.size_bytes and check.size_bytes != profile.model_size_bytes):
        return None
    return check


def clear_cache() -> None:
    """Forget every converted model and result (tests; or to free the fp16 copies)."""
    clear()
    with _LOCK:
        _RESULTS.clear()
        _BY_NAME.clear()


__all__ = [
    "FP16Check",
    "FP16Error",
    "OutputAgreement",
    "cache_info",
    "cache_limit",
    "cached_check",
    "check_html",
    "check_text",
    "clear_cache",
    "compare_outputs",
    "fp16_check",
    "fp16_session",
    "integer_ranges",
    "set_cache_limit",
]
