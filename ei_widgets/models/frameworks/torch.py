"""PyTorch modules and TorchScript modules, exported to ONNX in memory.

Exporters (torch 2.13, CPU build, offline):

- A plain ``nn.Module`` goes through ``torch.onnx.export(..., dynamo=True)``, the
  ``torch.export``-based exporter that torch 2.13 uses by default (it needs ``onnxscript``). Its
  graphs are clean: no shape-computing ``Shape``/``Gather``/``Concat`` chains, no ``Constant``
  nodes, the forward's argument names as input names. The first (batch) axis of every tensor input
  is exported as a symbolic dimension ``batch`` so that the profile can bind any batch size and a
  session can run any batch; when the module pins its batch size, the export is static.
- A TorchScript module (``torch.jit.script``/``torch.jit.trace``) cannot go through
  ``torch.export``; it goes through the TorchScript-based exporter (``dynamo=False``), which is
  also the fallback for an ``nn.Module`` that ``torch.export`` cannot capture (data-dependent
  control flow, say). The fallback traces the module, so a warning says so and repeats the tracer's
  own warnings.

Example inputs: the exporters run the module on example inputs. They come, first found first:

1. from this call: ``example_inputs`` (a tensor or array, a tuple of them, or a dict of keyword
   arguments) or ``input_shape`` (a shape, a sequence of shapes, or a dict of shapes; float inputs
   in the module's parameter dtype, or int64 indices -- zeros -- when its first layer is an
   embedding);
2. from an earlier call that gave them for the same module (remembered per module, weakly);
3. for a transformer whose forward's first argument is ``input_ids`` (Hugging Face's models), one
   sequence of token ids: int64 zeros of shape ``(1, 128)``;
4. from the module's own next forward call in the kernel: when ei_widgets meets a module whose
   inputs it does not know (discovery lists it, or profiling fails for want of a shape), it adds one
   forward pre-hook to that module (never to its submodules) that records the shapes and dtypes of
   the next call -- no tensor is kept -- and then removes itself. So: ``model(x)`` once (a
   training or evaluation loop does it anyway), then profile. Nothing stays on the module
   afterwards: no cost per call. A module saved whole (``torch.save(model)``) holds no reference
   to ei_widgets, even while the hook waits (it pickles as a no-op from the standard library).
   :func:`unwatch` removes a hook that has not fired yet. Why a per-module hook: a global
   module hook would slow every module's call in the kernel and be seen by ``torch.compile``.

Token inputs (``input_ids``, ``attention_mask``, ``token_type_ids``, ``position_ids``) also get a
symbolic second axis, ``sequence``, so that one export serves every sequence length the profile or
a session binds (``seq_len``); a module that pins its length is exported at the given one.

Exports are cached per module, keyed by the input shapes and a version stamp of the module's
parameters and buffers (their identities and in-place version counters, which optimiser steps and
``load_state_dict`` bump), so profiling and opening sessions again does not export again. The cache
holds the module weakly and keeps a few exports per module.

Nothing here imports torch until a torch module is loaded (a torch module can only exist once
torch is imported, so recognising one reads ``sys.modules``).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.models.frameworks.base import (
    ExportCache,
    Extra,
    ProgressReporter,
    Recognised,
)
from ei_widgets.models.types import (
    DEFAULT_SEQ_LEN,
    MAX_SEQUENCE_KEY,
    TOKEN_INPUTS,
    FrameworkInfo,
    LoadedModel,
    ModelEntry,
    ModelKind,
)

EXTRA = Extra("torch", "PyTorch", ("torch", "onnxscript"))
"""The extra ``ei_widgets[torch]``: what it brings and what to say when it is missing."""

KIND_MODULE = "torch-module"
KIND_SCRIPT = "torchscript-module"
EXPORTER_DYNAMO = "torch.onnx.export (torch.export)"
EXPORTER_TORCHSCRIPT = "torch.onnx.export (TorchScript)"
BATCH_DIM = "batch"
SEQUENCE_DIM = "sequence"
CACHE_PER_MODULE = 4

SHORT_HOW_TO = "input shape unknown: run it once, or give input_shape= or example_inputs="
HOW_TO_GIVE_INPUTS = (
    "Give example inputs: profile(model, input_shape=(1, 3, 224, 224)) or "
    "profile(model, example_inputs=torch.randn(1, 3, 224, 224)) (session() takes the same), "
    "or run the model once (model(x)) and ei_widgets remembers the shapes of that call."
)


# ----------------------------------------------------------------------------------------------
# recognising (cheap: no import)


def _torch() -> Any:
    """The imported torch module, or None (never imports it)."""
    return sys.modules.get("torch")


def _require_torch() -> Any:
    """torch itself, for exporting and making tensors. The one import of torch in this module:
    a torch module exists, so torch is imported already and this only fetches it."""
    import torch

    return torch


def is_torch_model(obj: object) -> bool:
    """An ``nn.Module`` instance (TorchScript modules included); checks ``sys.modules`` only."""
    torch_mod = _torch()
    if torch_mod is None or isinstance(obj, type):
        return False
    nn = getattr(torch_mod, "nn", None)
    module_cls = getattr(nn, "Module", None)
    return module_cls is not None and isinstance(obj, module_cls)


def is_script_module(obj: object) -> bool:
    """A TorchScript module (``torch.jit.script`` or ``torch.jit.trace``)."""
    torch_mod = _torch()
    jit = getattr(torch_mod, "jit", None)
    script_cls = getattr(jit, "ScriptModule", None)
    return script_cls is not None and isinstance(obj, script_cls)


def _has_state(module: Any) -> bool:
    """Whether the module holds any parameter or buffer (a loss or activation holds none)."""
    return next(iter(module.parameters()), None) is not None or (
        next(iter(module.buffers()), None) is not None
    )


def recognise(obj: object) -> Recognised | None:
    """Describe a torch module for discovery (no export; may add the input-recording hook)."""
    if not is_torch_model(obj):
        return None
    script = is_script_module(obj)
    if not script and not _has_state(obj):
        return None  # losses, activations, containers of nothing: not models
    kind = KIND_SCRIPT if script else KIND_MODULE
    name = type(obj).__name__ if not script else _script_name(obj)
    missing = EXTRA.missing()
    if missing:
        return Recognised("torch", kind, name, ready=False, reason=EXTRA.install_hint(missing))
    if known_inputs(obj) is None:
        watch(obj)
        return Recognised("torch", kind, name, ready=False, reason=SHORT_HOW_TO)
    return Recognised("torch", kind, name, ready=True)


def detect(variable: str, obj: object) -> ModelEntry | None:
    """The discovery entry of a torch module (counts parameters; never exports)."""
    found = recognise(obj)
    if found is None:
        return None
    module: Any = obj
    params = buffers = nbytes = 0
    for p in module.parameters():
        params += p.numel()
        nbytes += p.numel() * p.element_size()
    for b in module.buffers():
        buffers += b.numel()
        nbytes += b.numel() * b.element_size()
    what = "TorchScript module" if found.kind == KIND_SCRIPT else "PyTorch module"
    summary = f"{what} {found.class_name}, {params:,} parameters"
    if buffers:
        summary += f" (+{buffers:,} in buffers)"
    spec = known_inputs(obj)
    if spec is not None:
        summary += f", input {spec.describe()}"
    if found.reason:
        summary += f"; {found.reason}"
    return ModelEntry(variable, found.kind, summary, nbytes)


def _script_name(module: Any) -> str:
    qualified = getattr(module, "original_name", None) or type(module).__name__
    return str(qualified)


# ----------------------------------------------------------------------------------------------
# input specifications


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one tensor input (no values)."""

    shape: tuple[int, ...]
    dtype: str  # torch dtype name without the "torch." prefix: "float32", "int64", ...


Value = TensorSpec | bool | int | float | str | None


@dataclass(frozen=True)
class InputSpec:
    """The inputs of one forward call: positional and keyword, tensors as shapes and dtypes."""

    args: tuple[Value, ...]
    kwargs: tuple[tuple[str, Value], ...] = ()
    source: str = ""

    def key(self) -> tuple[object, ...]:
        return (self.args, self.kwargs)

    def describe(self) -> str:
        parts = [_describe_value(v) for v in self.args]
        parts += [f"{k}={_describe_value(v)}" for k, v in self.kwargs]
        return ", ".join(parts)


def _describe_value(value: Value) -> str:
    if isinstance(value, TensorSpec):
        return f"{value.dtype}[{', '.join(str(d) for d in value.shape)}]"
    return repr(value)


_given: weakref.WeakKeyDictionary[Any, InputSpec] = weakref.WeakKeyDictionary()
_observed: weakref.WeakKeyDictionary[Any, InputSpec] = weakref.WeakKeyDictionary()
_hooks: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_state = threading.local()


def known_inputs(module: object) -> InputSpec | None:
    """The inputs ei_widgets knows for ``module``: given earlier, else recorded from a call, else
    one sequence of token ids for a transformer (a forward taking ``input_ids`` first)."""
    try:
        known = _given.get(module) or _observed.get(module)
    except TypeError:  # an unhashable module (a custom __eq__ without __hash__)
        return None
    return known or _token_spec(module)


def _token_spec(module: Any) -> InputSpec | None:
    """``input_ids`` of one sequence of :data:`DEFAULT_SEQ_LEN` tokens (fewer if its position
    table is shorter), for a module whose forward takes ``input_ids`` first; None for any other
    module."""
    if is_script_module(module):
        return None
    try:
        first = next(iter(inspect.signature(module.forward).parameters), None)
    except (AttributeError, TypeError, ValueError):
        return None
    if first != "input_ids":
        return None
    longest = _position_table(module)
    length = DEFAULT_SEQ_LEN if longest is None else min(DEFAULT_SEQ_LEN, longest)
    return InputSpec(
        (TensorSpec((1, length), "int64"),),
        source=f"token ids, as its forward takes input_ids; {length} tokens, any length binds",
    )


def remember_inputs(
    module: object,
    example_inputs: object = None,
    *,
    input_shape: object = None,
) -> InputSpec:
    """Remember example inputs for ``module`` (as shapes and dtypes) for later profiles/sessions."""
    if not is_torch_model(module):
        raise ModelLoadError(f"{type(module).__name__} is not a torch.nn.Module.")
    spec = _spec_from_arguments(module, example_inputs, input_shape)
    if spec is None:
        raise ProfileError("Give example_inputs or input_shape. " + HOW_TO_GIVE_INPUTS)
    with contextlib.suppress(TypeError):
        _given[module] = spec
    return spec


def watch(module: object) -> bool:
    """Record the input shapes of ``module``'s next forward call (one pre-hook on it alone).

    The hook removes itself after that call. Returns False when the module does not take
    Python hooks (TorchScript modules do not).
    """
    try:
        if module in _hooks:
            return True
    except TypeError:
        return False
    if is_script_module(module):
        return False
    try:
        handle = module.register_forward_pre_hook(  # type: ignore[attr-defined]
            _RECORDER, with_kwargs=True
        )
        _hooks[module] = handle
    except (AttributeError, RuntimeError, TypeError):
        return False
    return True


def unwatch(module: object) -> None:
    """Remove the recording hook :func:`watch` added, if any."""
    try:
        handle = _hooks.pop(module, None)
    except TypeError:
        return
    if handle is not None:
        handle.remove()


def _record_call(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Forward pre-hook: note the shapes and dtypes of this call, then remove itself.

    It never raises and keeps no tensor. Removing itself leaves the module as it was, so a module
    saved whole later (``torch.save(model)``) holds no reference to ei_widgets.
    """
    if getattr(_state, "exporting", False):
        return None
    try:
        values = tuple(_spec_of_value(a) for a in args)
        named = tuple((k, _spec_of_value(v)) for k, v in kwargs.items())
        _observed[module] = InputSpec(values, named, source="recorded from a forward call")
    except _Unrepresentable:
        pass  # inputs ei_widgets cannot describe: the user gives example_inputs instead
    except Exception:
        pass
    with contextlib.suppress(Exception):
        unwatch(module)
    return None


class _Recorder:
    """The recording hook. Pickled (``torch.save(model)`` while it waits), it becomes a no-op from
    the standard library, so the saved module loads where ei_widgets is not installed."""

    def __call__(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        return _record_call(module, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (getattr, (contextlib.nullcontext(), "__exit__"))


_RECORDER = _Recorder()


class _Unrepresentable(Exception):
    """An input that is neither a tensor nor a plain Python scalar."""


def _spec_of_value(value: object) -> Value:
    torch_mod = _torch()
    if torch_mod is not None and isinstance(value, torch_mod.Tensor):
        return TensorSpec(tuple(int(d) for d in value.shape), _dtype_name(value.dtype))
    if isinstance(value, np.ndarray):
        return TensorSpec(tuple(int(d) for d in value.shape), str(value.dtype))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise _Unrepresentable(type(value).__name__)


def _dtype_name(dtype: object) -> str:
    return str(dtype).removeprefix("torch.")


def _spec_from_arguments(
    module: Any, example_inputs: object, input_shape: object
) -> InputSpec | None:
    if example_inputs is not None and input_shape is not None:
        raise ProfileError("Give either example_inputs or input_shape, not both.")
    if example_inputs is not None:
        args, kwargs = _split_example(example_inputs)
        try:
            values = tuple(_spec_of_value(a) for a in args)
            named = tuple((k, _spec_of_value(v)) for k, v in kwargs.items())
        except _Unrepresentable as exc:
            raise ProfileError(
                f"example_inputs holds a {exc} object; give tensors, arrays or plain numbers."
            ) from None
        return InputSpec(values, named, source="given as example_inputs")
    if input_shape is not None:
        dtype = _shape_dtype_name(module)
        if isinstance(input_shape, Mapping):
            named = tuple(
                (str(k), TensorSpec(_check_shape(v, str(k)), dtype)) for k, v in input_shape.items()
            )
            return InputSpec((), named, source="given as input_shape")
        shapes = _shape_list(input_shape)
        return InputSpec(
            tuple(TensorSpec(s, dtype) for s in shapes), (), source="given as input_shape"
        )
    return None


def _split_example(example: object) -> tuple[tuple[object, ...], dict[str, object]]:
    if isinstance(example, Mapping):
        return (), {str(k): v for k, v in example.items()}
    if isinstance(example, tuple | list):
        return tuple(example), {}
    return (example,), {}


def _is_dim(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_shape(shape: object, what: str = "input_shape") -> tuple[int, ...]:
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise ProfileError(
            f"{what} must be a sequence of sizes such as (1, 3, 224, 224), not {shape!r}."
        )
    dims = tuple(shape)
    if not dims or not all(_is_dim(d) for d in dims) or any(int(d) <= 0 for d in dims):
        raise ProfileError(
            f"{what} must hold positive whole numbers such as (1, 3, 224, 224), not {shape!r}."
        )
    return tuple(int(d) for d in dims)


def _shape_list(input_shape: object) -> list[tuple[int, ...]]:
    """One shape, or a sequence of shapes (one per positional input)."""
    if (
        isinstance(input_shape, Sequence)
        and input_shape
        and all(isinstance(s, Sequence) and not isinstance(s, str) for s in input_shape)
    ):
        return [_check_shape(s, f"input_shape[{i}]") for i, s in enumerate(input_shape)]
    return [_check_shape(input_shape)]


_INDEX_LAYERS = frozenset({"Embedding", "EmbeddingBag"})


def _shape_dtype_name(module: Any) -> str:
    """The dtype of inputs given as shapes.

    int64 (token indices) when the module's first layer is an embedding; else the dtype of its
    first floating-point parameter or buffer, else float32.
    """
    first = next((m for m in module.modules() if not any(True for _ in m.children())), None)
    if first is not None and type(first).__name__ in _INDEX_LAYERS:
        return "int64"
    for tensor in _state_tensors(module):
        if tensor.is_floating_point():
            return _dtype_name(tensor.dtype)
    return "float32"


def _state_tensors(module: Any) -> Iterator[Any]:
    yield from module.parameters()
    yield from module.buffers()


def _materialise(module: Any, spec: InputSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Example tensors for ``spec``: seeded normal floats, zeros for integers and booleans."""
    torch = _require_torch()

    device = next((t.device for t in _state_tensors(module)), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)

    def make(value: Value) -> Any:
        if not isinstance(value, TensorSpec):
            return value
        dtype = getattr(torch, value.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ProfileError(f"Unknown tensor dtype {value.dtype!r} in the example inputs.")
        if dtype.is_floating_point:
            tensor = torch.randn(value.shape, generator=generator, dtype=torch.float32).to(dtype)
        else:
            tensor = torch.zeros(value.shape, dtype=dtype)
        return tensor.to(device)

    return tuple(make(v) for v in spec.args), {k: make(v) for k, v in spec.kwargs}


def _as_tensors(module: Any, example_inputs: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The user's own example inputs as tensors (arrays converted), on the module's device."""
    torch = _require_torch()

    device = next((t.device for t in _state_tensors(module)), torch.device("cpu"))

    def convert(value: object) -> object:
        if isinstance(value, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(value)).to(device)
        if isinstance(value, torch.Tensor):
            return value.detach()
        return value

    args, kwargs = _split_example(example_inputs)
    return tuple(convert(a) for a in args), {k: convert(v) for k, v in kwargs.items()}


# ----------------------------------------------------------------------------------------------
# the loader


def load(
    obj: object,
    name: str | None = None,
    *,
    example_inputs: object = None,
    input_shape: object = None,
    **options: object,
) -> LoadedModel:
    """Export a torch module to ONNX (cached) and return it as a :class:`LoadedModel`."""
    if not is_torch_model(obj):
        raise ModelLoadError(f"{type(obj).__name__} is not a torch.nn.Module.")
    module: Any = obj
    script = is_script_module(module)
    class_name = _script_name(module) if script else type(module).__name__
    label = name or class_name
    EXTRA.check_loadable(label, options)

    spec = _spec_from_arguments(module, example_inputs, input_shape)
    if spec is not None:
        with contextlib.suppress(TypeError):
            _given[module] = spec
    else:
        spec = known_inputs(module)
    if spec is None:
        watch(module)
        raise ProfileError(
            f"{label}: the input shape of this PyTorch model is unknown. {HOW_TO_GIVE_INPUTS}"
        )

    torch = _require_torch()

    stamp = _version_stamp(module)
    key = (spec.key(), stamp)
    cached = _cache.get(module, key)
    if cached is not None:
        return cached.renamed(name)

    if example_inputs is not None:
        args, kwargs = _as_tensors(module, example_inputs)
    else:
        args, kwargs = _materialise(module, spec)
    model, exporter, notes = export(module, args, kwargs, label=label)
    model.graph.name = model.graph.name or class_name
    _note_max_sequence(module, model)
    params = list(module.parameters())
    buffers = list(module.buffers())
    info = FrameworkInfo(
        framework="torch",
        kind=KIND_SCRIPT if script else KIND_MODULE,
        class_name=class_name,
        version=str(torch.__version__),
        exporter=exporter,
        params=sum(p.numel() for p in params),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffers=sum(b.numel() for b in buffers),
        buffer_bytes=sum(b.numel() * b.element_size() for b in buffers),
        input_source=f"{spec.describe()} ({spec.source})",
    )
    loaded = LoadedModel(
        model=model,
        name=label,
        kind=info.kind,
        size_bytes=model.ByteSize(),
        warnings=tuple(notes),
        source=module,
        framework=info,
    )
    _cache.put(module, key, loaded)
    return loaded


def _position_table(module: Any) -> int | None:
    """The longest sequence a Hugging Face transformer takes (its config's position table)."""
    longest = getattr(getattr(module, "config", None), "max_position_embeddings", None)
    if isinstance(longest, int) and not isinstance(longest, bool) and longest > 0:
        return longest
    return None


def _note_max_sequence(module: Any, model: onnx.ModelProto) -> None:
    """Note the longest sequence a Hugging Face transformer takes (its position table): beyond
    it the graph still binds but the model cannot run, and torch.export does not bound it."""
    longest = _position_table(module)
    if longest is not None:
        onnx.helper.set_model_props(
            model,
            {**{p.key: p.value for p in model.metadata_props}, MAX_SEQUENCE_KEY: str(longest)},
        )


# ----------------------------------------------------------------------------------------------
# the export cache


_cache = ExportCache(CACHE_PER_MODULE)


def _version_stamp(module: Any) -> tuple[object, ...]:
    """Identity and in-place version of every parameter and buffer: cheap, changes on any update."""
    return tuple((id(t), t._version, t.dtype, t.device.type) for t in _state_tensors(module))


def clear_cache() -> None:
    """Forget every cached torch export."""
    _cache.clear()


def cached_exports(module: object) -> int:
    """How many torch exports of ``module`` the cache holds."""
    return _cache.count(module)


# ----------------------------------------------------------------------------------------------
# exporting


# What the exporter says it starts (its verbose lines, "[torch.onnx] <what>...") and how far
# through an export that is (a small BERT's stages, measured, rounded); the others are ours.
STAGES: dict[str, tuple[str, float]] = {
    "Obtain model graph": ("capturing the module with torch.export", 0.25),
    "Run decompositions": ("decomposing operators", 0.55),
    "Translate the graph into ONNX": ("translating to ONNX", 0.9),
    "Optimize the ONNX graph": ("optimising the ONNX graph", 0.93),
}
STAGE_START = ("starting the ONNX exporter", 0.02)
STAGE_TORCHSCRIPT = ("tracing with the TorchScript exporter", 0.5)


class _StageWatcher(io.StringIO):
    """The export's captured output, which reports the exporter's stages as they start."""

    def __init__(self, reporter: ProgressReporter) -> None:
        super().__init__()
        self.reporter = reporter
        self.line = ""  # print() writes a line in pieces

    def write(self, text: str) -> int:
        self.line += text
        while "\n" in self.line:
            said, self.line = self.line.split("\n", 1)
            said = said.removeprefix("[torch.onnx]").strip()
            for start, (stage, fraction) in STAGES.items():
                if said.startswith(start) and not said.endswith(("✅", "❌")):
                    self.reporter.stage(stage, fraction)
        return super().write(text)


def export(
    module: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None = None,
    *,
    label: str = "the module",
) -> tuple[onnx.ModelProto, str, list[str]]:
    """Export ``module`` on ``args``/``kwargs``: the ONNX model, the exporter used, and notes.

    Quiet: exporter output, log records and warnings are captured; on failure the exporter's
    reason becomes one :class:`ModelLoadError` message. Its stages are reported as
    :class:`~ei_widgets.models.frameworks.base.ExportProgress` events (a transformer's export
    takes seconds).
    """
    kwargs = kwargs or {}
    attempts: list[tuple[str, bool]] = []  # (exporter, dynamic batch)
    if not is_script_module(module) and "onnxscript" not in EXTRA.missing():
        attempts += [(EXPORTER_DYNAMO, True), (EXPORTER_DYNAMO, False)]
    attempts += [(EXPORTER_TORCHSCRIPT, True), (EXPORTER_TORCHSCRIPT, False)]
    if not _batched(args, kwargs):
        attempts = [(exporter, False) for exporter, dynamic in attempts if dynamic]

    reporter = ProgressReporter(label, "torch")
    try:
        model, exporter, notes = _first_export(module, args, kwargs, attempts, reporter, label)
    except BaseException as error:
        reporter.finish(error=_reason(error))
        raise
    reporter.finish()
    return model, exporter, notes


def _first_export(
    module: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    attempts: list[tuple[str, bool]],
    reporter: ProgressReporter,
    label: str,
) -> tuple[onnx.ModelProto, str, list[str]]:
    """The first of ``attempts`` (exporter, dynamic batch) that exports ``module``."""
    script = is_script_module(module)
    failures: dict[str, str] = {}
    with _exporting(module, _StageWatcher(reporter)):
        for exporter, dynamic in attempts:
            # The static retry only helps when the dynamic batch axis was the problem.
            if exporter in failures and not dynamic and not _batch_related(failures[exporter]):
                continue
            # A batch of 1 invites the exporter to fix the axis at 1: show it a batch of 2.
            a, k = (_widened(args), _widened(kwargs)) if dynamic else (args, kwargs)
            try:
                if exporter == EXPORTER_DYNAMO:
                    reporter.stage(*STAGE_START)
                    model, caught = _export_dynamo(module, a, k, dynamic)
                else:
                    reporter.stage(*STAGE_TORCHSCRIPT)
                    model, caught = _export_torchscript(module, a, k, dynamic)
            except Exception as exc:
                failures.setdefault(exporter, _reason(exc))
                continue
            if dynamic and not _symbolic_batch(model):
                continue  # the module pins its batch: export it at the caller's own batch
            notes: list[str] = []
            if not dynamic and _batched(args, kwargs):
                notes.append(
                    f"{label} was exported with a fixed batch size (it does not export with a "
                    "variable one): profile other batch sizes by giving inputs of that batch."
                )
            if exporter == EXPORTER_TORCHSCRIPT and not script:
                reason = failures.get(EXPORTER_DYNAMO, "")
                notes.append(
                    f"torch.export could not capture {label} ({reason}); "
                    "it was traced with the TorchScript exporter instead, which records the path "
                    "taken by the example inputs only."
                )
                notes += _tracer_notes(caught)
            return _tidy(model), exporter, notes
    reasons = list(dict.fromkeys(failures.values()))
    raise ModelLoadError(f"Cannot export {label} to ONNX: {' / '.join(reasons)}")


def _widened(values: Any) -> Any:
    """Tensors with a batch of 1 repeated to a batch of 2 (tuples and dicts kept as they are)."""
    torch = _require_torch()

    def widen(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == 1:
            return torch.cat([value, value])
        return value

    if isinstance(values, dict):
        return {k: widen(v) for k, v in values.items()}
    return tuple(widen(v) for v in values)


def _symbolic_batch(model: onnx.ModelProto) -> bool:
    """Whether some graph input has a symbolic first axis (the export kept the batch variable)."""
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_param"):
            return True
    return False


def _batched(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether some tensor input has a first axis that could be a batch."""
    return any(getattr(t, "dim", lambda: 0)() >= 1 for t in _tensors(args, kwargs))


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    torch = _require_torch()

    return [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]


def _batch_related(reason: str) -> bool:
    text = reason.lower()
    return any(
        word in text for word in ("batch", "dynamic", "constraint", "specializ", "guard", "symbol")
    )


@contextlib.contextmanager
def _exporting(module: Any, sink: io.StringIO) -> Iterator[None]:
    """Eval mode, no grad, the RNG untouched, no recording hook, and no exporter chatter."""
    torch = _require_torch()

    modes = [(m, m.training) for m in module.modules()]
    previous_exporting = getattr(_state, "exporting", False)
    _state.exporting = True
    previous_disable = logging.root.manager.disable
    try:
        logging.disable(logging.WARNING)
        with (
            torch.random.fork_rng(devices=[]),
            torch.no_grad(),
            _quiet_fds(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            module.eval()
            yield
    finally:
        logging.disable(previous_disable)
        _state.exporting = previous_exporting
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Send what C++ code prints to file descriptors 1 and 2 to a scratch file meanwhile."""
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile(mode="w+b") as scratch:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(scratch.fileno(), fd)
            except OSError:
                continue
        try:
            yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def _input_names(module: Any, args: tuple[Any, ...]) -> list[str]:
    """Names for the positional inputs: the forward's argument names where they can be read."""
    names: list[str] = []
    try:
        if is_script_module(module):
            names = [a.name for a in module.forward.schema.arguments[1:]]
        else:
            names = [
                p.name
                for p in inspect.signature(module.forward).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
    except (AttributeError, RuntimeError, TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"input_{i}" for i in range(len(args))]


def _export_dynamo(
    module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], dynamic: bool
) -> tuple[onnx.ModelProto, list[warnings.WarningMessage]]:
    torch = _require_torch()

    dynamic_shapes: object = None
    if dynamic:
        batch = torch.export.Dim(BATCH_DIM)

        def axes(name: str, value: object) -> dict[int, object] | None:
            if not isinstance(value, torch.Tensor) or value.dim() < 1:
                return None
            if _is_token_input(name, value):
                # DYNAMIC, not a named Dim: a transformer bounds its length (its position
                # table), which torch.export infers instead of refusing; renamed below.
                return {0: batch, 1: torch.export.Dim.DYNAMIC}
            return {0: batch}

        names = _input_names(module, args)
        arg_shapes = tuple(axes(n, a) for n, a in zip(names, args, strict=True))
        kw_shapes = {k: axes(k, v) for k, v in kwargs.items()}
        if kw_shapes:
            dynamic_shapes = _dynamic_shapes_by_name(module, args, arg_shapes, kw_shapes)
        else:
            dynamic_shapes = arg_shapes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        program = torch.onnx.export(
            module,
            args,
            kwargs=kwargs or None,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            verbose=True,  # its stages, read by _StageWatcher (captured, never shown)
            optimize=True,
            external_data=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    return _named_sequence(program.model_proto), list(caught)


def _is_token_input(name: str, value: Any) -> bool:
    """A transformer's token input: named so, integer, at least (batch, sequence)."""
    return name.lower() in TOKEN_INPUTS and value.dim() >= 2 and not value.dtype.is_floating_point


def _named_sequence(model: onnx.ModelProto) -> onnx.ModelProto:
    """The symbolic sequence axis of the token inputs renamed ``sequence`` wherever it appears
    (torch.export names it ``s<number>``), so the profile and the Inspector show what it is."""
    graph = model.graph
    old = {
        dims[1].dim_param
        for value in graph.input
        if value.name.lower() in TOKEN_INPUTS
        and len(dims := value.type.tensor_type.shape.dim) >= 2
        and dims[1].dim_param
    }
    if len(old) != 1 or old == {SEQUENCE_DIM}:
        return model
    (name,) = old
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == name:
                dim.dim_param = SEQUENCE_DIM
    return model


def _dynamic_shapes_by_name(
    module: Any,
    args: tuple[Any, ...],
    arg_shapes: tuple[object, ...],
    kw_shapes: Mapping[str, object],
) -> dict[str, object]:
    names = _input_names(module, args)
    return {**dict(zip(names, arg_shapes, strict=True)), **kw_shapes}


def _export_torchscript(
    module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], dynamic: bool
) -> tuple[onnx.ModelProto, list[warnings.WarningMessage]]:
    torch = _require_torch()

    names = _input_names(module, args) + list(kwargs)
    tensors = [*args, *kwargs.values()]
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            n: {0: BATCH_DIM, 1: SEQUENCE_DIM} if _is_token_input(n, t) else {0: BATCH_DIM}
            for n, t in zip(names, tensors, strict=True)
            if isinstance(t, torch.Tensor) and t.dim() >= 1
        }
    export_args: tuple[Any, ...] = (*args, kwargs) if kwargs else args
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(
            module,
            export_args,
            buffer,
            dynamo=False,
            input_names=names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue()), list(caught)


def _tidy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deterministic producer string (the exporters stamp their own versions)."""
    if not model.producer_name:
        model.producer_name = "pytorch"
    return model


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_USER_CALL = re.compile(
    r"The following call raised this error:\s*\n\s*File \"([^\"]+)\", line (\d+)[^\n]*\n"
    r"\s*([^\n]+)"
)


def _reason(exc: BaseException) -> str:
    """The exporter's reason for failing, as one short line (and the user code it points at)."""
    text = _ANSI.sub("", str(exc))
    where = ""
    call = _USER_CALL.search(text)
    if call:
        where = (
            f" (at {call.group(3).strip()!r}, {call.group(1).rsplit('/', 1)[-1]}:{call.group(2)})"
        )
    if "## Exception summary" in text:
        summary = text.split("## Exception summary", 1)[1]
        chunks = [c.strip() for c in summary.split("⬆️") if c.strip()]
        text = chunks[0] if chunks else summary
        text = text.split("(Refer to the full stack trace", 1)[0]
    else:
        # Other errors can carry long guides after their first paragraph.
        text = text.strip().split("\n\n", 1)[0]
    text = re.sub(r"^<class '([\w.]+)'>:\s*", lambda m: m.group(1).rsplit(".", 1)[-1] + ": ", text)
    text = " ".join(text.split())
    first = re.match(r"(.+?[.!?])(\s|$)", text)
    if first and len(first.group(1)) >= 40:
        text = first.group(1)
    if len(text) > 300:
        text = text[:297] + "..."
    return (text or type(exc).__name__) + where


def _tracer_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """The tracer's own warnings that say the trace may not generalise (deduplicated, short)."""
    notes: list[str] = []
    for w in caught:
        if w.category.__name__ != "TracerWarning":
            continue
        first = " ".join(str(w.message).split(".")[0].split())
        note = f"Tracer: {first}."
        if note not in notes:
            notes.append(note)
    return notes[:5]


PLUGIN = ModelKind(KIND_MODULE, is_torch_model, load, detect)
"""PyTorch modules and TorchScript modules (one kind: a TorchScript module is a module)."""
