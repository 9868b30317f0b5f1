"""The fp16 conversion of a model, cached per model: onnxruntime's own float16 tool.

``convert`` turns an ONNX graph into float16 with
``onnxruntime.transformers.float16.convert_float_to_float16`` (inputs and outputs stay float32,
the ops in :func:`fp32_ops` stay float32) and loads it, and the original, into onnxruntime CPU
sessions. A model that cannot be converted or run in fp16 gets a one-line ``reason`` instead.
Conversions are cached by the SHA-256 of the model's bytes. ``fp16_session`` is what an
accelerated session with fp16 attached runs; ``ei_widgets.device.fp16`` measures the difference.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import onnx

from ei_widgets.models.loading import load_model
from ei_widgets.models.types import LoadedModel

ProgressCallback = Callable[[str, float], None]
"""``on_progress(stage, fraction)``: stage ``"convert"`` or ``"compare"``, fraction 0..1."""


@cache
def fp32_ops() -> tuple[str, ...]:
    """Op types kept in float32: onnxruntime's own block list (the ai.onnx.ml operators, which
    have no fp16 version, and ops such as TopK, Range, CumSum, NonMaxSuppression and RoiAlign,
    whose fp16 results or kernels are unreliable). Read when first needed: onnxruntime is heavy,
    and ``import ei_widgets`` must not load it."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return tuple(DEFAULT_OP_BLOCK_LIST)


@dataclass
class Conversion:
    """A model and its fp16 conversion, loaded; ``model`` is None when it cannot be made."""

    key: str
    model: onnx.ModelProto | None  # the fp16 model, None when it cannot be made
    reason: str
    kept_fp32: tuple[str, ...]
    seconds: float
    sessions: dict[str, Any] = field(default_factory=dict)  # "fp32"/"fp16" -> InferenceSession
    nbytes: int = 0  # the memory it holds, by estimate (MEMORY_FACTOR x the model's size)


_LOCK = threading.Lock()
_CONVERTED: dict[tuple[str, tuple[str, ...]], Conversion] = {}
_CACHE_LIMIT = 8  # converted models kept, at most (each holds an fp16 copy of the weights)

CACHE_BYTES_ENV = "EI_WIDGETS_FP16_CACHE_MB"
DEFAULT_CACHE_BYTES = 1 << 30
"""The memory the cached conversions may hold together, by default (1 GiB): the oldest are
forgotten first; the newest is always kept, whatever its size."""
MEMORY_FACTOR = 4
"""A conversion holds about four times its model's size: the fp32 session (a copy of the weights,
some prepacked), the fp16 model and the fp16 session."""
_limit_bytes: int | None = None  # set_cache_limit's; None: the env var, else the default


def set_cache_limit(nbytes: int | None) -> None:
    """Bound the memory the cached fp16 conversions hold (bytes; ``None``: back to
    ``$EI_WIDGETS_FP16_CACHE_MB`` or the default, 1 GiB). Applies from the next conversion."""
    global _limit_bytes
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)):
        raise TypeError(f"the fp16 cache limit is a number of bytes, not {nbytes!r}")
    _limit_bytes = None if nbytes is None else max(0, nbytes)


def cache_limit() -> int:
    """The bound, in bytes, on the memory the cached conversions hold."""
    if _limit_bytes is not None:
        return _limit_bytes
    raw = os.environ.get(CACHE_BYTES_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else None
    except ValueError:
        megabytes = None
    if megabytes is None or not megabytes >= 0 or megabytes == float("inf"):
        return DEFAULT_CACHE_BYTES
    return int(megabytes * 2**20)


def cache_info() -> tuple[int, int]:
    """(conversions cached, the memory they hold by estimate, bytes)."""
    with _LOCK:
        return len(_CONVERTED), sum(c.nbytes for c in _CONVERTED.values())


def model_key(loaded: LoadedModel) -> tuple[str, bytes | str]:
    """The model's identity (SHA-256 of its bytes) and what onnx/onnxruntime can read."""
    source = loaded.ort_source()
    if isinstance(source, str):
        with open(source, "rb") as f:
            data = f.read()
        return hashlib.sha256(data).hexdigest(), source
    return hashlib.sha256(source).hexdigest(), source


_FLOAT = onnx.TensorProto.FLOAT


def _has_float(model: onnx.ModelProto) -> bool:
    """Whether any tensor of the graph is float32 (else fp16 has nothing to change)."""
    g = model.graph
    if any(t.data_type == _FLOAT for t in g.initializer):
        return True
    for info in (*g.input, *g.output, *g.value_info):
        if info.type.tensor_type.elem_type == _FLOAT:
            return True
    for node in g.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == _FLOAT:
                return True
            if attr.name == "to" and attr.i == _FLOAT:
                return True
            if attr.type == onnx.AttributeProto.GRAPH:
                return True  # a subgraph: let the converter decide
    return False


def one_line(error: BaseException) -> str:
    """An onnxruntime or converter error in one line, from its telling part."""
    text = " ".join(str(error).split())
    for marker in ("Could not find an implementation for ", "Type Error: ", "NOT_IMPLEMENTED : "):
        if marker in text:
            text = text[text.index(marker) :]
            break
    return text if len(text) <= 200 else text[:199] + "…"


def _session(source: bytes | str | onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the casts onnxruntime inserts are expected, not news
    data = source.SerializeToString() if isinstance(source, onnx.ModelProto) else source
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def convert(
    loaded: LoadedModel, block: tuple[str, ...], on_progress: ProgressCallback | None = None
) -> Conversion:
    """The fp16 conversion of ``loaded`` keeping ``block`` in float32, with both sessions."""
    key, source = model_key(loaded)
    with _LOCK:
        hit = _CONVERTED.get((key, block))
    if hit is not None:
        if on_progress is not None:
            on_progress("convert", 1.0)
        return hit
    if on_progress is not None:
        on_progress("convert", 0.0)
    start = time.perf_counter()
    model = onnx.load(source) if isinstance(source, str) else onnx.load_from_string(source)
    kept = tuple(sorted({n.op_type for n in model.graph.node if n.op_type in block}))
    fp16: onnx.ModelProto | None = None
    reason = ""
    if not _has_float(model):
        reason = "integer-only model: it has no float32 tensor, so fp16 has nothing to change"
    else:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        try:
            fp16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(block))
        except Exception as exc:  # the converter's own failures, reported in one line
            reason = f"conversion to fp16 failed: {one_line(exc)}"
    entry = Conversion(key, fp16, reason, kept, time.perf_counter() - start)
    if fp16 is not None:
        try:
            entry.sessions["fp16"] = _session(fp16)
        except Exception as exc:  # onnxruntime refuses the fp16 graph (no fp16 kernel, type)
            entry.model, entry.reason = None, f"onnxruntime cannot run it in fp16: {one_line(exc)}"
        entry.seconds = time.perf_counter() - start
    if entry.model is not None:
        entry.sessions["fp32"] = _session(source)
        entry.nbytes = MEMORY_FACTOR * _model_bytes(loaded, source)
    limit = cache_limit()
    with _LOCK:
        while _CONVERTED and (
            len(_CONVERTED) >= _CACHE_LIMIT
            or sum(c.nbytes for c in _CONVERTED.values()) + entry.nbytes > limit
        ):
            _CONVERTED.pop(next(iter(_CONVERTED)))  # the oldest first
        _CONVERTED[(key, block)] = entry
    if on_progress is not None:
        on_progress("convert", 1.0)
    return entry


def _model_bytes(loaded: LoadedModel, source: bytes | str) -> int:
    if loaded.size_bytes:
        return int(loaded.size_bytes)
    if isinstance(source, bytes):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError:
        return 0


def load(model: Any, **loader_options: Any) -> LoadedModel:
    return load_model(model, **loader_options)


def fp16_session(model: Any, **loader_options: Any) -> Any | None:
    """An onnxruntime session of ``model`` converted to fp16 (inputs and outputs float32), or
    None when it cannot be converted or run (``ei_widgets.device.fp16.fp16_check`` says why). Cached
    per model."""
    entry = convert(load(model, **loader_options), fp32_ops(), None)
    return entry.sessions.get("fp16") if entry.model is not None else None


def clear() -> None:
    """Forget every conversion (and the fp16 copies of the weights they hold)."""
    with _LOCK:
        _CONVERTED.clear()
