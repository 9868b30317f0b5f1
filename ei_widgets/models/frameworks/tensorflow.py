"""TensorFlow and Keras models, converted to ONNX with tf2onnx in a separate process, cached.

Recognised (only once ``tensorflow`` is imported, so a TF object can exist; nothing here imports it
before that):

- Keras models on the TensorFlow backend: functional, sequential, and subclassed ones once called;
- ``tf.Module`` objects with a serving signature (what ``tf.saved_model.load`` returns) or a
  ``__call__`` that is a ``tf.function`` with an input signature;
- ``tf.function``s with a concrete signature (an ``input_signature``, or traced exactly once), and
  concrete functions;
- paths given to ``profile()``/``session()``: a SavedModel folder, a ``.keras`` or ``.h5`` file
  (read in the converting process: the kernel imports no TensorFlow for them).

Input shapes come from the model where it declares them (a Keras model's inputs, the shapes a
subclassed model was built with, a function's signature), else from ``input_shape=`` or
``example_inputs=`` as for a PyTorch module. The first (batch) axis is left free, so one conversion
serves every batch.

Conversion runs in a child Python process, which imports TensorFlow (about ten seconds) and
then waits for its job on stdin. It is started ahead of need by :func:`warm_up` (``%load_ext
ei_widgets`` calls it after each cell once TensorFlow is imported), else when a conversion starts,
so that its import overlaps the kernel's part: the kernel traces the model into a graph (Python
work, which leaves the kernel answering cells) and writes it with the variables' values to a
scratch folder. The child freezes the graph (each read of a variable becomes a constant,
:func:`freeze_graph`; TensorFlow's own freezing, which rebuilds the function twice, only for
graphs that use a variable otherwise), and runs tf2onnx (its graph optimiser without the copy of
the graph before each pass that tf2onnx's own entry points make, which is a third of its time on
ResNet-50; on failure it converts again with the copies). Freezing and converting copy protobuf
messages as large as the weights while holding the interpreter lock, which in the kernel's process
would stall cells for up to a second each time. The child reports its stages on stdout, which the
kernel turns into :class:`~ei_widgets.models.frameworks.base.ExportProgress` events (the CLI and
the notebook draw them).

Conversions are cached in memory per model (keyed by the input signature and a digest of the
weights, so a changed model converts again) and on disk by a digest of the graph and the weights
(``base.DiskCache``: bounded, least recently used first), so a second profile of an unchanged
model, in a new process too, reads the ONNX file back instead of converting. The graph's digest is
a functional or sequential Keras model's config (no tracing needed); for other objects it is the
traced graph with its function names made process-independent.

An op tf2onnx cannot convert raises :class:`~ei_widgets.errors.UnsupportedOpError` naming it.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ei_widgets.errors import ModelLoadError, ProfileError, UnsupportedOpError
from ei_widgets.models.frameworks import torch as torch_plugin  # its shape checks, same messages
from ei_widgets.models.frameworks.base import (
    DiskCache,
    ExportCache,
    Extra,
    ProgressReporter,
    Recognised,
)
from ei_widgets.models.types import FrameworkInfo, LoadedModel, ModelEntry, ModelKind

EXTRA = Extra("tensorflow", "TensorFlow", ("tensorflow", "tf2onnx"))
"""The extra ``ei_widgets[tensorflow]``: what it brings and what to say when it is missing."""

KIND_KERAS = "keras-model"
KIND_MODULE = "tf-module"
KIND_FUNCTION = "tf-function"
KIND_PATH = "tf-saved-model"  # a SavedModel folder, a .keras or an .h5 file
OPSET = 17
BATCH_DIM = "batch"
CACHE_PER_MODEL = 4
MODEL_FILE = "model.onnx"
INFO_FILE = "info.json"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

SHORT_HOW_TO = "input shape unknown: run it once, or give input_shape= or example_inputs="
HOW_TO_GIVE_INPUTS = (
    "Give example inputs: profile(model, input_shape=(1, 224, 224, 3)) or "
    "profile(model, example_inputs=np.zeros((1, 224, 224, 3), np.float32)) (session() takes the "
    "same), or run the model once (model(x)) and Keras remembers the shapes it was built with."
)
WHAT_TO_DO_UNSUPPORTED = (
    "Replace the layer or function that makes it with operations ONNX has (tf2onnx's table: "
    "https://github.com/onnx/tensorflow-onnx/blob/main/support_status.md), or convert the model "
    "to ONNX yourself and profile the .onnx file."
)

# How far through the export each stage starts (ResNet-50's stages, measured, rounded).
STAGES: dict[str, float] = {
    "tracing the model": 0.02,
    "writing the graph and weights": 0.2,
    "rebuilding the function": 0.25,  # a saved model, or a graph TensorFlow must freeze
    "freezing the weights into the graph": 0.3,
    "converting ops to ONNX": 0.45,
    "optimising the ONNX graph": 0.6,
    "writing the ONNX model": 0.9,
    "reading the ONNX model": 0.96,
}


# ----------------------------------------------------------------------------------------------
# recognising (cheap: no import)


def _tf() -> Any:
    """The imported tensorflow module, or None (never imports it)."""
    return sys.modules.get("tensorflow")


def _require_tf() -> Any:
    """tensorflow itself; imported already whenever a TF object exists."""
    import tensorflow

    return tensorflow


def is_keras_model(obj: object) -> bool:
    """A Keras model on the TensorFlow backend (Keras 3 or tf_keras), by its class hierarchy."""
    if isinstance(obj, type) or _tf() is None:
        return False
    return any(
        cls.__name__ == "Model" and cls.__module__.startswith(("keras.", "tf_keras."))
        for cls in type(obj).__mro__
    ) and any(cls.__module__.startswith("tensorflow.") for cls in type(obj).__mro__)


def is_tf_function(obj: object) -> bool:
    """A ``tf.function`` or a concrete function."""
    tf = _tf()
    if tf is None or isinstance(obj, type):
        return False
    kinds = tf.types.experimental
    return isinstance(obj, kinds.PolymorphicFunction | kinds.ConcreteFunction)


def is_tf_module(obj: object) -> bool:
    """A ``tf.Module`` or a loaded SavedModel that has something to call (see module docs)."""
    tf = _tf()
    if tf is None or isinstance(obj, type) or is_keras_model(obj):
        return False
    trackable = tf.__internal__.tracking.AutoTrackable
    if not isinstance(obj, tf.Module | trackable):
        return False
    return _module_function(obj) is not None


def _module_function(obj: Any) -> Any:
    """The function a module is profiled by: its serving signature, else a ``__call__`` with an
    input signature; None if it has neither."""
    signatures = getattr(obj, "signatures", None)
    if isinstance(signatures, Mapping) and len(signatures):
        if "serving_default" in signatures:
            return signatures["serving_default"]
        return next(iter(signatures.values()))
    call = obj.__call__ if callable(obj) else None
    if is_tf_function(call) and getattr(call, "input_signature", None) is not None:
        return call
    return None


def is_model_path(obj: object) -> bool:
    """A path to a SavedModel folder or a ``.keras``/``.h5`` file (a stat; nothing is read)."""
    if not isinstance(obj, str | pathlib.PurePath):
        return False
    text = os.fspath(obj)
    if len(text) > 4096 or "\0" in text:
        return False
    path = pathlib.Path(text).expanduser()
    try:
        if path.suffix.lower() in KERAS_SUFFIXES:
            return path.is_file()
        return path.is_dir() and (path / "saved_model.pb").is_file()
    except OSError:
        return False


def matches(obj: object) -> bool:
    """Whether ``obj`` is a TensorFlow model this plug-in loads."""
    return is_model_path(obj) or is_keras_model(obj) or is_tf_function(obj) or is_tf_module(obj)


def _kind(obj: object) -> str:
    if is_model_path(obj):
        return KIND_PATH
    if is_keras_model(obj):
        return KIND_KERAS
    if is_tf_function(obj):
        return KIND_FUNCTION
    return KIND_MODULE


def recognise(obj: object) -> Recognised | None:
    """Describe a TF object for discovery (no tracing, no conversion). Paths are not listed."""
    if isinstance(obj, str | pathlib.PurePath) or not matches(obj):
        return None
    kind = _kind(obj)
    name = type(obj).__name__
    if kind == KIND_KERAS and not getattr(obj, "built", False):
        return None  # a model never built has no weights yet: nothing to profile
    missing = EXTRA.missing()
    if missing:
        return Recognised("tensorflow", kind, name, ready=False, reason=EXTRA.install_hint(missing))
    try:
        _declared_specs(obj)
    except ProfileError:
        return Recognised("tensorflow", kind, name, ready=False, reason=SHORT_HOW_TO)
    return Recognised("tensorflow", kind, name, ready=True)


def detect(variable: str, obj: object) -> ModelEntry | None:
    """The discovery entry of a TF model (counts weights; never traces)."""
    found = recognise(obj)
    if found is None:
        return None
    what = {KIND_KERAS: "Keras model", KIND_FUNCTION: "tf.function", KIND_MODULE: "tf.Module"}
    summary = f"{what[found.kind]} {found.class_name}"
    params, nbytes = _weight_counts(obj)
    summary += f", {params:,} parameters"
    if found.reason:
        summary += f"; {found.reason}"
    else:
        with contextlib.suppress(ProfileError):
            summary += ", input " + ", ".join(s.describe() for s in _declared_specs(obj))
    return ModelEntry(variable, found.kind, summary, nbytes)


def _variables(obj: Any) -> list[Any]:
    if is_keras_model(obj):
        return list(obj.weights)
    function = obj if is_tf_function(obj) else _module_function(obj)
    concrete = _concrete_if_known(function)
    if concrete is not None:
        return list(concrete.variables)
    return list(getattr(obj, "variables", ()) or ())


def _weight_counts(obj: Any) -> tuple[int, int]:
    """(numbers, bytes) in the model's weights: ``count_params()`` for a Keras model."""
    variables = _variables(obj)
    count = sum(math.prod(int(d) for d in v.shape) for v in variables)
    nbytes = sum(
        math.prod(int(d) for d in v.shape) * np.dtype(_np_dtype(v.dtype)).itemsize
        for v in variables
    )
    if is_keras_model(obj):
        with contextlib.suppress(Exception):
            count = int(obj.count_params())
    return count, nbytes


def _np_dtype(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return {"bfloat16": "float16"}.get(name, name)


# ----------------------------------------------------------------------------------------------
# input specifications


@dataclass(frozen=True)
class Spec:
    """One input: its name, shape (None for the free batch axis) and dtype name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def describe(self) -> str:
        dims = ", ".join("batch" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


def _clean(name: str, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.]", "_", name.split(":")[0]).strip("_")
    return name or f"input_{index}"


def _keras_input_specs(model: Any) -> list[Spec] | None:
    """The inputs a Keras model declares, or None."""
    inputs = None
    with contextlib.suppress(Exception):
        inputs = model.inputs
    if inputs:
        names = _keras_input_names(model, len(inputs))
        return [
            Spec(names[i], tuple(_dim(d) for d in t.shape), _np_dtype(t.dtype))
            for i, t in enumerate(inputs)
        ]
    shapes = getattr(model, "_build_shapes_dict", None)  # Keras 3: recorded by the first call
    if isinstance(shapes, Mapping) and shapes:
        dtype = _np_dtype(getattr(model, "input_dtype", None) or "float32")
        specs = []
        for i, (key, shape) in enumerate(shapes.items()):
            if not isinstance(shape, tuple | list) or not all(
                d is None or isinstance(d, int) for d in shape
            ):
                return None
            name = _clean(str(key).removesuffix("_shape"), i)
            # the first call's batch is not the model's: leave it free
            specs.append(Spec(name, (None, *(_dim(d) for d in shape[1:])), dtype))
        return specs
    return None


def _keras_input_names(model: Any, count: int) -> list[str]:
    """The input layers' names (read from the inputs' history: a model's config takes a tenth of
    a second to build for ResNet-50, too slow for discovery after every cell)."""
    names: list[str] = []
    with contextlib.suppress(Exception):
        names = [str(t._keras_history.operation.name) for t in model.inputs]
    if len(names) != count:
        names = ["input"] if count == 1 else [f"input_{i}" for i in range(count)]
    return [_clean(n, i) for i, n in enumerate(names)]


def _dim(d: object) -> int | None:
    return int(d) if isinstance(d, int | np.integer) and int(d) > 0 else None


def _function_specs(function: Any) -> list[Spec] | None:
    concrete = _concrete_if_known(function)
    if concrete is None:
        return None
    specs = []
    for i, t in enumerate(x for x in concrete.inputs if x.dtype.name != "resource"):
        shape = tuple(_dim(d) for d in t.shape) if t.shape.rank is not None else ()
        specs.append(Spec(_clean(t.name, i), shape, _np_dtype(t.dtype)))
    return specs


def _concrete_if_known(function: Any) -> Any:
    """The concrete function of a function with a concrete signature, without tracing anew when
    it was traced already (None when it has no signature and was not traced exactly once)."""
    tf = _tf()
    if function is None or tf is None:
        return None
    if isinstance(function, tf.types.experimental.ConcreteFunction):
        return function
    if getattr(function, "input_signature", None) is not None:
        return function.get_concrete_function()
    traced = []
    with contextlib.suppress(Exception):
        traced = function._list_all_concrete_functions()
    return traced[0] if len(traced) == 1 else None


def _declared_specs(obj: Any) -> list[Spec]:
    """The inputs the model declares, all sizes known but the batch; else a ProfileError."""
    if is_keras_model(obj):
        specs = _keras_input_specs(obj)
    else:
        specs = _function_specs(obj if is_tf_function(obj) else _module_function(obj))
    if not specs:
        raise ProfileError(SHORT_HOW_TO)
    for spec in specs:
        if not spec.shape or any(d is None for d in spec.shape[1:]):
            raise ProfileError(
                f"input {spec.name} has sizes the model leaves free ({spec.describe()})"
            )
    return specs


def _given_specs(
    obj: Any, example_inputs: object, input_shape: object, label: str
) -> list[Spec] | None:
    """Specs from ``input_shape=`` or ``example_inputs=`` (the batch axis left free)."""
    if example_inputs is not None and input_shape is not None:
        raise ProfileError("Give either example_inputs or input_shape, not both.")
    names: list[str] = []
    with contextlib.suppress(Exception):
        declared = _keras_input_specs(obj) if is_keras_model(obj) else None
        names = [s.name for s in declared or ()]
    default_dtype = "float32"
    if is_keras_model(obj):
        default_dtype = _np_dtype(getattr(obj, "input_dtype", None) or "float32")
    if example_inputs is not None:
        values = list(example_inputs) if isinstance(example_inputs, tuple | list) else None
        if isinstance(example_inputs, Mapping):
            names, values = [str(k) for k in example_inputs], list(example_inputs.values())
        arrays = []
        for v in values if values is not None else [example_inputs]:
            try:
                arrays.append(np.asarray(v))
            except Exception:
                raise ProfileError(
                    f"example_inputs holds a {type(v).__name__} object; give arrays or tensors."
                ) from None
        shapes = [tuple(a.shape) for a in arrays]
        dtypes = [str(a.dtype) for a in arrays]
    elif input_shape is not None:
        if isinstance(input_shape, Mapping):
            names = [str(k) for k in input_shape]
            shapes = [torch_plugin._check_shape(v, str(k)) for k, v in input_shape.items()]
        else:
            shapes = torch_plugin._shape_list(input_shape)
        dtypes = [default_dtype] * len(shapes)
    else:
        return None
    if len(names) != len(shapes):
        names = ["input"] if len(shapes) == 1 else [f"input_{i}" for i in range(len(shapes))]
    specs = []
    for i, (shape, dtype) in enumerate(zip(shapes, dtypes, strict=True)):
        if not shape:
            raise ProfileError(f"{label}: input {i} has no batch axis; give shapes with one.")
        specs.append(Spec(_clean(names[i], i), (None, *shape[1:]), dtype))
    return specs


# ----------------------------------------------------------------------------------------------
# tracing (in the kernel, or in the child for a file): the model as one concrete function


def _tensor_specs(specs: Sequence[Spec]) -> list[Any]:
    tf = _require_tf()
    return [tf.TensorSpec(s.shape, tf.as_dtype(s.dtype), name=s.name) for s in specs]


def _keras_function(model: Any, specs: Sequence[Spec]) -> Any:
    """A ``tf.function`` calling the Keras model in inference mode, outputs named."""
    tf = _require_tf()
    output_names: list[str] = []
    with contextlib.suppress(Exception):
        output_names = [str(n) for n in model.output_names]
    structure = None
    with contextlib.suppress(Exception):
        structure = model.input if model.inputs else None

    def pack(xs: tuple[Any, ...]) -> Any:
        if structure is not None and len(xs) > 1 and "keras" in sys.modules:
            with contextlib.suppress(Exception):
                return sys.modules["keras"].tree.pack_sequence_as(structure, list(xs))
        return xs[0] if len(xs) == 1 else list(xs)

    shapes = getattr(model, "_build_shapes_dict", None)
    several_args = not model.inputs if hasattr(model, "inputs") else False
    several_args = several_args and isinstance(shapes, Mapping) and len(shapes) > 1

    def call(*xs: Any) -> Any:
        out = model(*xs, training=False) if several_args else model(pack(xs), training=False)
        flat = tf.nest.flatten(out)
        if len(output_names) == len(flat) and len(set(output_names)) == len(flat):
            return {n: t for n, t in zip(output_names, flat, strict=True)}
        return out

    # no autograph, as Keras's own export: its layers trace as they are, and faster
    return tf.function(call, input_signature=_tensor_specs(specs), autograph=False)


def _concrete(obj: Any, specs: Sequence[Spec] | None) -> Any:
    """The one concrete function the model is converted from."""
    if is_keras_model(obj):
        assert specs is not None
        return _keras_function(obj, specs).get_concrete_function()
    function = obj if is_tf_function(obj) else _module_function(obj)
    known = _concrete_if_known(function)
    if specs is not None and (known is None or _function_specs(function) != list(specs)):
        tf = _require_tf()
        if isinstance(function, tf.types.experimental.ConcreteFunction):
            raise ProfileError("A concrete function's inputs are fixed; call it without shapes.")
        return function.get_concrete_function(*_tensor_specs(specs))
    return known


@dataclass
class Traced:
    """A concrete function taken apart: its graph (function library included) and, for each
    captured input, the value behind it (a variable's, or a captured constant's)."""

    graph: Any  # GraphDef
    inputs: list[str]  # tensor names of the real inputs
    outputs: list[str]  # tensor names of the outputs
    output_names: list[str]  # what to call them in ONNX
    captures: list[tuple[str, np.ndarray]]  # placeholder tensor name, value
    variables: int  # how many captures are variables


def take_apart(concrete: Any) -> Traced:
    """What the converting process needs to rebuild ``concrete`` (see :func:`_rebuild`)."""
    tf = _require_tf()
    by_handle = {id(v.handle): v for v in concrete.variables}
    captures: list[tuple[str, np.ndarray]] = []
    variables = 0
    for external, internal in concrete.graph.captures:
        variable = by_handle.get(id(external))
        if variable is not None:
            captures.append((internal.name, np.asarray(variable.numpy())))
            variables += 1
        elif external.dtype == tf.resource:
            raise ModelLoadError(
                "The function captures a resource that is not a variable (a lookup table or a "
                "dataset?); ei_widgets converts functions whose state is variables only."
            )
        else:
            captures.append((internal.name, np.asarray(external.numpy())))
    inputs = [t.name for t in concrete.inputs[: len(concrete.inputs) - len(captures)]]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    structured = concrete.structured_outputs
    if isinstance(structured, Mapping) and len(structured) == len(outputs):
        flat = tf.nest.flatten(structured)
        by_tensor = {t.name: k for k, t in zip(sorted(structured), flat, strict=True)}
        output_names = [str(by_tensor.get(n, f"output_{i}")) for i, n in enumerate(outputs)]
    else:
        output_names = [f"output_{i}" for i in range(len(outputs))]
        if len(outputs) == 1:
            output_names = ["output"]
    return Traced(concrete.graph.as_graph_def(), inputs, outputs, output_names, captures, variables)


def graph_digest(graph: Any) -> bytes:
    """The graph's bytes with its function names made process-independent (a traced function is
    named with a counter that depends on what the process traced before)."""
    copy = type(graph)()
    copy.CopyFrom(graph)
    names = {f.signature.name: f"f{i}" for i, f in enumerate(copy.library.function)}
    if names:

        def rename_nodes(nodes: Any) -> None:
            for node in nodes:
                if node.op in names:
                    node.op = names[node.op]
                for attr in node.attr.values():
                    if attr.func.name in names:
                        attr.func.name = names[attr.func.name]
                    for func in attr.list.func:
                        if func.name in names:
                            func.name = names[func.name]

        rename_nodes(copy.node)
        for function in copy.library.function:
            function.signature.name = names[function.signature.name]
            rename_nodes(function.node_def)
    return bytes(copy.SerializeToString(deterministic=True))


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
    """Convert a TensorFlow model to ONNX (cached) and return it as a :class:`LoadedModel`."""
    if not matches(obj):
        raise ModelLoadError(f"{type(obj).__name__} is not a TensorFlow model.")
    kind = _kind(obj)
    if kind == KIND_PATH:
        assert isinstance(obj, str | pathlib.PurePath)
        path = pathlib.Path(os.fspath(obj)).expanduser()
        label = name or path.stem or path.name
    else:
        label = name or type(obj).__name__
    EXTRA.check_loadable(label, options)
    if kind == KIND_PATH:
        if example_inputs is not None or input_shape is not None:
            raise ProfileError(f"{label}: a saved model declares its inputs; give no shapes.")
        return _load_path(path, label, name)

    given = _given_specs(obj, example_inputs, input_shape, label)
    if given is None:
        try:
            specs = _declared_specs(obj)
        except ProfileError as error:
            raise ProfileError(
                f"{label}: the input shape of this TensorFlow model is unknown ({error}). "
                f"{HOW_TO_GIVE_INPUTS}"
            ) from None
        source = "declared by the model"
    else:
        specs = given
        source = "given as input_shape" if input_shape is not None else "given as example_inputs"

    variables = _variables(obj)
    weights = _weights_digest(variables)
    key = (tuple(specs), weights)
    cached = _cache.get(obj, key)
    if cached is not None:
        return cached.renamed(name)

    tf = _require_tf()
    params, param_bytes = _weight_counts(obj)
    info = FrameworkInfo(
        framework="tensorflow",
        kind=kind,
        class_name=type(obj).__name__,
        version=str(tf.__version__),
        exporter=_exporter(),
        params=params,
        param_bytes=param_bytes,
        input_source=", ".join(s.describe() for s in specs) + f" ({source})",
    )
    loaded = _convert_object(obj, specs, given is not None, weights, info, label)
    _cache.put(obj, key, loaded)
    return loaded


def _exporter() -> str:
    from importlib.metadata import version

    try:
        return f"tf2onnx {version('tf2onnx')}"
    except Exception:
        return "tf2onnx"


def _weights_digest(variables: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for v in variables:
        value = np.ascontiguousarray(v.numpy())
        digest.update(f"{v.name}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes() if value.dtype == object else value.data.cast("B"))
    return digest.hexdigest()


def _keras_config(model: Any) -> str | None:
    """A functional or sequential model's config: its whole graph, without tracing."""
    if model.__class__.__name__ not in ("Functional", "Sequential"):
        return None
    try:
        return json.dumps(model.get_config(), sort_keys=True, default=str)
    except Exception:
        return None


def _versions() -> str:
    tf = _tf()
    keras = sys.modules.get("keras")
    return (
        f"tf {getattr(tf, '__version__', '?')} keras {getattr(keras, '__version__', '?')} "
        f"{_exporter()} opset {OPSET}"
    )


def _convert_object(
    obj: Any, specs: list[Spec], given: bool, weights: str, info: FrameworkInfo, label: str
) -> LoadedModel:
    config = _keras_config(obj) if is_keras_model(obj) else None
    traced: Traced | None = None
    if config is not None:
        graph_bytes = config.encode()
    else:
        # a function's own signature unless shapes were given; a Keras model is always traced
        traced = take_apart(_concrete(obj, specs if given or is_keras_model(obj) else None))
        graph_bytes = graph_digest(traced.graph)
    digest = hashlib.sha256(
        b"\0".join([_versions().encode(), repr(specs).encode(), graph_bytes, weights.encode()])
    ).hexdigest()[:40]

    def trace() -> Traced:
        return traced if traced is not None else take_apart(_concrete(obj, specs))

    return _convert(digest, label, info, obj, trace=trace)


def _load_path(path: pathlib.Path, label: str, name: str | None) -> LoadedModel:
    digest = hashlib.sha256(_versions().encode() + b"\0" + _files_digest(path)).hexdigest()[:40]
    loaded = _convert(digest, label, None, os.fspath(path), path=path)
    return loaded.renamed(name) if name else loaded


def _files_digest(path: pathlib.Path) -> bytes:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.digest()


# ----------------------------------------------------------------------------------------------
# converting: once per digest, in a child process


_cache = ExportCache(CACHE_PER_MODEL, disk=DiskCache("tensorflow"))
_running: dict[str, threading.Event] = {}
_running_lock = threading.Lock()


def clear_cache(disk: bool = False) -> None:
    """Forget every cached TensorFlow conversion (on disk too with ``disk=True``)."""
    _cache.clear()
    if disk and _cache.disk is not None:
        _cache.disk.clear()


def cached_exports(model: object) -> int:
    """How many conversions of ``model`` the in-memory cache holds."""
    return _cache.count(model)


def _convert(
    digest: str,
    label: str,
    info: FrameworkInfo | None,
    source: object,
    *,
    trace: Any = None,
    path: pathlib.Path | None = None,
) -> LoadedModel:
    """The conversion for ``digest``: from the disk cache, else made (one at a time per digest:
    a second caller waits for the first)."""
    disk = _cache.disk
    assert disk is not None
    while True:
        entry = disk.get(digest)
        if entry is not None:
            loaded = _read_entry(entry, label, info, source)
            if loaded is not None:
                return loaded
        with _running_lock:
            event = _running.get(digest)
            mine = event is None
            if mine:
                event = _running[digest] = threading.Event()
        if mine:
            break
        assert event is not None
        event.wait()
    try:
        reporter = ProgressReporter(label, "tensorflow")
        try:
            folder = _run_child(disk, trace, path, reporter)
        except Exception as error:
            reporter.finish(error=str(error))
            raise
        reporter.stage("reading the ONNX model", STAGES["reading the ONNX model"])
        entry = disk.put(digest, folder)
        loaded = _read_entry(entry, label, info, source)
        if loaded is None:
            reporter.finish(error="the converted model cannot be read")
            raise ModelLoadError(f"{label}: the converted ONNX model cannot be read back.")
        reporter.finish()
        return loaded
    finally:
        with _running_lock:
            done = _running.pop(digest, None)
        if done is not None:
            done.set()


def _read_entry(
    entry: pathlib.Path, label: str, info: FrameworkInfo | None, source: object
) -> LoadedModel | None:
    try:
        data = (entry / MODEL_FILE).read_bytes()
        meta = json.loads((entry / INFO_FILE).read_text())
        model = onnx.load_from_string(data)
    except Exception:
        return None
    if info is None:  # a file: what the converting process read from it
        info = FrameworkInfo(**meta["framework"])
    model.graph.name = label
    return LoadedModel(
        model=model,
        name=label,
        kind=info.kind,
        # no path: it would be read as the ONNX file (a saved model's path is its source)
        size_bytes=len(data),
        warnings=tuple(meta.get("notes", ())),
        source=source if info.kind != KIND_PATH else None,
        serialized=data if len(data) <= 16 * 2**20 else None,
        framework=info,
    )


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(pathlib.Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def _start_child() -> subprocess.Popen[bytes]:
    """A converting process: it imports TensorFlow, then waits for its job on stdin. Its stderr
    goes to the job's folder once it has one (nothing is left behind if it is never used)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ei_widgets.models.frameworks.tensorflow"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_child_env(),
    )


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait()
    for pipe in (child.stdin, child.stdout):
        with contextlib.suppress(OSError, AttributeError):
            pipe.close()  # type: ignore[union-attr]


_spare: subprocess.Popen[bytes] | None = None
_spare_lock = threading.Lock()


def warm_up() -> None:
    """Start a converting process ahead of need, if none waits yet.

    The converting process spends most of ten seconds importing TensorFlow before it can convert
    anything; started early (``%load_ext ei_widgets`` calls this after each cell once TensorFlow
    is imported), it has done so by the time a model is profiled, and it waits, idle, for it.
    """
    global _spare
    if EXTRA.missing():
        return
    with _spare_lock:
        if _spare is not None and _spare.poll() is None:
            return
        if _spare is not None:
            _stop(_spare)
        _spare = _start_child()


def _take_child() -> subprocess.Popen[bytes]:
    """The waiting process if there is one, else a new one."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        if spare.poll() is None:
            return spare
        _stop(spare)
    return _start_child()


@atexit.register
def stop_spare() -> None:
    """Stop the converting process started ahead (see :func:`warm_up`), if one waits."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        _stop(spare)


def _run_child(
    disk: DiskCache, trace: Any, path: pathlib.Path | None, reporter: ProgressReporter
) -> pathlib.Path:
    """Convert in a child process; the folder holding ``model.onnx`` and ``info.json``."""
    child = _take_child()
    folder = disk.scratch()
    assert child.stdin is not None and child.stdout is not None
    try:
        job: dict[str, Any] = {"folder": os.fspath(folder)}
        if path is not None:
            job["path"] = os.fspath(path)
        else:
            reporter.stage("tracing the model", STAGES["tracing the model"])
            traced: Traced = trace()
            reporter.stage("writing the graph and weights", STAGES["writing the graph and weights"])
            _write_job(folder, traced)
            job |= {
                "inputs": traced.inputs,
                "outputs": traced.outputs,
                "output_names": traced.output_names,
                "captures": [n for n, _ in traced.captures],
            }
        child.stdin.write((json.dumps(job) + "\n").encode())
        child.stdin.close()
        result: dict[str, Any] = {}
        with child.stdout:
            for line in child.stdout:
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if "stage" in message:
                        reporter.stage(message["stage"], STAGES.get(message["stage"], 0.0))
                    else:
                        result = message
        child.wait()
        if result.get("ops"):
            raise UnsupportedOpError(str(result["error"]), result["ops"])
        if result.get("error"):
            raise ModelLoadError(str(result["error"]))
        if child.returncode != 0 or not (folder / MODEL_FILE).is_file():
            tail = (folder / "child.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise ModelLoadError(
                "The TensorFlow conversion process failed"
                + (f": {' / '.join(tail)}" if tail else f" (exit status {child.returncode}).")
            )
    except BaseException:
        _stop(child)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    for scratch in ("graph.pb", "captures.npz", "child.log"):
        with contextlib.suppress(OSError):
            (folder / scratch).unlink()
    return folder


def _write_job(folder: pathlib.Path, traced: Traced) -> None:
    (folder / "graph.pb").write_bytes(traced.graph.SerializeToString())
    np.savez(folder / "captures.npz", *[value for _, value in traced.captures])


# ----------------------------------------------------------------------------------------------
# the converting process (``python -m ei_widgets.models.frameworks.tensorflow``, job on stdin)


def _say(**message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class _OpLog(logging.Handler):
    """tf2onnx's log of the ops it could not convert (it goes on and leaves them in the graph)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.ops: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.msg if isinstance(record.msg, str) else ""
        args = record.args if isinstance(record.args, tuple) else ()
        if message.startswith("Tensorflow op [") and len(args) >= 2:
            self.ops.setdefault(str(args[1]), []).append(str(args[0]))
        elif message.startswith("Failed to convert node") and len(args) >= 1:
            summary = str(args[2]) if len(args) > 2 else ""
            op = re.search(r"OpType: (\w+)", summary)
            self.ops.setdefault(op.group(1) if op else "?", []).append(str(args[0]))


def _rebuild(graph: Any, job: Mapping[str, Any], captures: Sequence[tuple[str, np.ndarray]]) -> Any:
    """The concrete function the kernel took apart, its captures bound to new variables."""
    tf = _require_tf()
    variables = [tf.Variable(value) for _, value in captures]

    def body() -> None:
        g = tf.compat.v1.get_default_graph()
        bound = {n: g.capture(v.handle) for (n, _), v in zip(captures, variables, strict=True)}
        tf.graph_util.import_graph_def(graph, input_map=bound, name="")

    wrapped = tf.compat.v1.wrap_function(body, [])
    wrapped.graph.variables = variables
    g = wrapped.graph
    pruned = wrapped.prune(
        [g.get_tensor_by_name(n) for n in job["inputs"]],
        [g.get_tensor_by_name(n) for n in job["outputs"]],
    )
    return pruned, variables


def _from_file(path: str) -> tuple[Any, FrameworkInfo, Any]:
    """A saved model's concrete function, what the framework says of it, and the loaded object
    (which holds the variables: keep it while the function is used)."""
    tf = _require_tf()
    if pathlib.Path(path).is_dir():
        obj = tf.saved_model.load(path)
        kind, name = KIND_PATH, "SavedModel"
    else:
        import keras

        obj = keras.models.load_model(path, compile=False)
        kind, name = KIND_PATH, type(obj).__name__
    specs = _declared_specs(obj)
    concrete = _concrete(obj, specs)
    params, param_bytes = _weight_counts(obj)
    info = FrameworkInfo(
        framework="tensorflow",
        kind=kind,
        class_name=name,
        version=str(tf.__version__),
        exporter=_exporter(),
        params=params,
        param_bytes=param_bytes,
        input_source=", ".join(s.describe() for s in specs) + " (declared by the saved model)",
    )
    return concrete, info, obj


def _read_captures(folder: pathlib.Path, job: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    with np.load(folder / "captures.npz") as stored:
        return [(n, stored[f"arr_{i}"]) for i, n in enumerate(job["captures"])]


def freeze_graph(graph: Any, captures: Sequence[tuple[str, np.ndarray]]) -> Any:
    """The traced graph with its captured values as constants, or None when that is not simple.

    It is simple when the graph calls no function and each captured variable is only read (a
    ``ReadVariableOp``), as in a Keras model traced for inference: each read becomes a constant of
    the same name. TensorFlow's own freezing rebuilds the function twice to do this (8 of
    ResNet-50's 18 seconds of conversion); otherwise (a function library, a variable used
    another way) the caller freezes with TensorFlow's.
    """
    tf = _require_tf()
    if graph.library.function:
        return None
    values = {name.split(":")[0]: value for name, value in captures}
    placeholders = {n.name: n for n in graph.node if n.name in values}
    resource = tf.resource.as_datatype_enum
    variables = {k for k, n in placeholders.items() if n.attr["dtype"].type == resource}
    frozen = type(graph)()
    frozen.versions.CopyFrom(graph.versions)
    for node in graph.node:
        read = [i.split(":")[0] for i in node.input if i.lstrip("^").split(":")[0] in variables]
        if read and (node.op != "ReadVariableOp" or len(node.input) != 1):
            return None  # a variable used another way than one plain read
        if node.name in variables:
            continue
        if read or node.name in placeholders:
            dtype = tf.as_dtype(node.attr["dtype"].type)
            constant = frozen.node.add(name=node.name, op="Const")
            constant.attr["dtype"].type = dtype.as_datatype_enum
            value = values[read[0] if read else node.name]
            constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype))
        else:
            frozen.node.append(node)
    return frozen


def _child_main() -> int:
    # TensorFlow's import (seconds) is done before the job comes: while the kernel traces the
    # model, or ahead of need (warm_up)
    try:
        tf = _require_tf()
        from tf2onnx import optimizer, tf_loader
        from tf2onnx.tfonnx import process_tf_graph
    except Exception as error:
        failed: Exception | None = error
    else:
        failed = None
    line = sys.stdin.readline()
    if not line.strip():  # the kernel went away, or never needed this process
        return 0
    job = json.loads(line)
    folder = pathlib.Path(job["folder"])
    stderr = os.open(folder / "child.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(stderr, 2)  # TensorFlow's C++ messages, for the error of a process that fails
    if failed is not None:
        _say(error=f"TensorFlow or tf2onnx cannot be imported: {_reason(failed)}")
        return 0
    info: FrameworkInfo | None = None
    try:
        if "path" in job:
            _say(stage="rebuilding the function")
            concrete, info, _loaded = _from_file(job["path"])
            traced = take_apart(concrete)
            inputs, outputs = traced.inputs, traced.outputs
            output_names = traced.output_names
            graph, captures = traced.graph, traced.captures
        else:
            inputs, outputs = list(job["inputs"]), list(job["outputs"])
            output_names = list(job["output_names"])
            graph = tf.compat.v1.GraphDef.FromString((folder / "graph.pb").read_bytes())
            captures = _read_captures(folder, job)
        _say(stage="freezing the weights into the graph")
        frozen = freeze_graph(graph, captures)
        if frozen is not None:
            with tf.Graph().as_default():  # grappler's entry point wants graph mode
                frozen = tf_loader.tf_optimize(inputs, outputs, frozen)
        else:
            if "path" not in job:
                _say(stage="rebuilding the function")
                concrete, _variables_kept = _rebuild(graph, job, captures)
                inputs = [t.name for t in concrete.inputs if t.dtype != tf.resource]
                outputs = [t.name for t in concrete.outputs]
            with tf.device("/cpu:0"):
                frozen = tf_loader.from_function(concrete, inputs, outputs)
    except Exception as error:
        _say(error=f"Cannot convert the model: {_reason(error)}")
        return 0

    renames = {t: _clean(t, i) for i, t in enumerate(inputs)}
    renames.update({t: n for t, n in zip(outputs, output_names, strict=False)})
    log = _OpLog()
    logging.getLogger("tf2onnx").addHandler(log)
    _say(stage="converting ops to ONNX")

    def convert(careful: bool) -> onnx.ModelProto:
        with tf.Graph().as_default() as graph:
            tf.import_graph_def(frozen, name="")
            g = process_tf_graph(
                graph,
                continue_on_error=True,
                opset=OPSET,
                input_names=inputs,
                output_names=outputs,
                tensors_to_rename=renames,
            )
            if log.ops:
                return None  # type: ignore[return-value]
            _say(stage="optimising the ONNX graph")
            g = optimizer.optimize_graph(g, catch_errors=careful)
            return g.make_model("converted by tf2onnx")

    try:
        try:
            model = convert(careful=False)
        except Exception:
            if log.ops:
                raise
            model = convert(careful=True)  # an optimiser pass failed: with tf2onnx's own copies
    except Exception as error:
        if not log.ops:
            _say(error=f"tf2onnx cannot convert the model: {_reason(error)}")
            return 0
    if log.ops:
        ops = sorted(log.ops)
        where = ", ".join(f"{op} (at {log.ops[op][0]})" for op in ops)
        _say(
            error=f"tf2onnx cannot convert the TensorFlow op{'s' if len(ops) > 1 else ''} "
            f"{where}. {WHAT_TO_DO_UNSUPPORTED}",
            ops=ops,
        )
        return 0
    _say(stage="writing the ONNX model")
    _name_batch_axes(model)
    model.producer_name = "tf2onnx"
    (folder / MODEL_FILE).write_bytes(model.SerializeToString())
    meta: dict[str, Any] = {"notes": []}
    if info is not None:
        meta["framework"] = info.__dict__
    (folder / INFO_FILE).write_text(json.dumps(meta))
    _say(done=True)
    return 0


def _name_batch_axes(model: onnx.ModelProto) -> None:
    """The free first axis of the inputs and outputs is called ``batch`` (tf2onnx says unk__N)."""
    renamed: set[str] = set()
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_param"):
            renamed.add(dims[0].dim_param)
            dims[0].dim_param = BATCH_DIM
    if not renamed:
        return
    for value in model.graph.value_info:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in renamed:
                dim.dim_param = BATCH_DIM


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    yield


PLUGIN = ModelKind(KIND_KERAS, matches, load, detect)
"""Keras models, tf.Modules, tf.functions and saved TensorFlow models (one kind)."""


if __name__ == "__main__":
    with _quiet_logs():
        status = _child_main()
    sys.stdout.flush()
    os._exit(status)  # TensorFlow's teardown takes seconds and nothing is left to do
