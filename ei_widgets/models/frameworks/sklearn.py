"""Fitted scikit-learn estimators and pipelines, converted to ONNX in memory with skl2onnx.

- The input is one float32 tensor ``X`` of shape ``(batch, n_features_in_)`` (the batch axis
  symbolic), so the profile binds any batch size and a session runs any batch.
- Classifiers output plain tensors (``label``, ``probabilities``), not skl2onnx's default list of
  dicts, so a session's outputs compare directly with ``predict``/``predict_proba``.
- A model that is not fitted (or a pipeline with a step that is not) is refused with a message
  that names the step; one whose number of input features is unknown says how to give it.
- Conversions are cached per estimator (held weakly), keyed by the number of features and a stamp
  of its state (identities of its attributes, and checksums of its arrays), so a refit converts
  again and nothing else does.
- ``FrameworkInfo.params`` counts the numbers the model carries (coefficients, intercepts,
  scaler statistics, tree thresholds and leaf values, support vectors, ...), as they appear in
  the ONNX export: the weights of ``ai.onnx.ml`` operators live in node attributes, not in
  initializers, which a graph-only profile does not count as parameters.

Cost rules for the ``ai.onnx.ml`` operators skl2onnx emits live in
:mod:`ei_widgets.profiling.op_costs`
with the others, so scikit-learn models have FLOPs rather than unknown ops.

Nothing here imports scikit-learn or skl2onnx until a scikit-learn model is met (each is
imported in one function, :func:`_sklearn` and :func:`_skl2onnx`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import sys
import warnings
import zlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx

from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.models import dtypes
from ei_widgets.models.frameworks.base import (
    ExportCache,
    Extra,
    Recognised,
)
from ei_widgets.models.types import FrameworkInfo, LoadedModel, ModelEntry, ModelKind

EXTRA = Extra("sklearn", "scikit-learn", ("sklearn", "skl2onnx"))
"""The extra ``ei_widgets[sklearn]``: what it brings and what to say when it is missing."""

KIND_ESTIMATOR = "sklearn-estimator"
KIND_PIPELINE = "sklearn-pipeline"
INPUT_NAME = "X"
BATCH_DIM = "batch"
EXPORTER = "skl2onnx"
CACHE_PER_MODEL = 4
CHECKSUM_MAX_BYTES = 16 * 2**20
"""Arrays up to this size are checksummed in the state stamp; larger ones by identity only."""

_PREDICTING = ("predict", "predict_proba", "decision_function")


# ----------------------------------------------------------------------------------------------
# the optional libraries, each imported in one place


@functools.cache
def _sklearn() -> SimpleNamespace:
    """The parts of scikit-learn used here (imported once a scikit-learn model is met, when
    scikit-learn is imported already)."""
    import sklearn
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    return SimpleNamespace(
        version=str(sklearn.__version__),
        is_classifier=is_classifier,
        NotFittedError=NotFittedError,
        check_is_fitted=check_is_fitted,
    )


@functools.cache
def _skl2onnx() -> SimpleNamespace:
    """The parts of skl2onnx used here (imported on the first conversion)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    return SimpleNamespace(to_onnx=to_onnx, FloatTensorType=FloatTensorType)


# ----------------------------------------------------------------------------------------------
# recognising (cheap: no import)


def is_sklearn_model(obj: object) -> bool:
    """An instance of a scikit-learn estimator class (by its class hierarchy; imports nothing)."""
    if isinstance(obj, type) or "sklearn" not in sys.modules:
        return False
    return any(
        cls.__name__ == "BaseEstimator" and cls.__module__ == "sklearn.base"
        for cls in type(obj).__mro__
    )


def _is_pipeline(obj: object) -> bool:
    return any(
        cls.__name__ == "Pipeline" and cls.__module__.startswith("sklearn.pipeline")
        for cls in type(obj).__mro__
    )


def _is_model_like(obj: object) -> bool:
    """A predictor or a pipeline: what a user calls a model (a lone scaler is not)."""
    return _is_pipeline(obj) or any(callable(getattr(obj, m, None)) for m in _PREDICTING)


def recognise(obj: object) -> Recognised | None:
    """Describe a scikit-learn model for discovery (no conversion)."""
    if not is_sklearn_model(obj) or not _is_model_like(obj):
        return None
    kind = KIND_PIPELINE if _is_pipeline(obj) else KIND_ESTIMATOR
    name = type(obj).__name__
    missing = EXTRA.missing()
    if missing:
        return Recognised("sklearn", kind, name, ready=False, reason=EXTRA.install_hint(missing))
    problem = not_fitted(obj)
    if problem:
        return Recognised("sklearn", kind, name, ready=False, reason=problem)
    if _n_features(obj) is None:
        return Recognised(
            "sklearn",
            kind,
            name,
            ready=False,
            reason="number of input features unknown. " + _HOW_TO_GIVE_FEATURES,
        )
    return Recognised("sklearn", kind, name, ready=True)


def detect(variable: str, obj: object) -> ModelEntry | None:
    """The discovery entry of a scikit-learn model (never converts)."""
    found = recognise(obj)
    if found is None:
        return None
    if _is_pipeline(obj):
        steps = [type(step).__name__ for _, step in getattr(obj, "steps", ())]
        summary = f"scikit-learn pipeline ({' → '.join(steps)})"
    else:
        summary = f"scikit-learn {found.class_name}"
    features = _n_features(obj) if found.ready else None
    if features is not None:
        summary += f", {features:,} features"
    if found.reason:
        summary += f"; {found.reason}"
    return ModelEntry(variable, found.kind, summary)


_HOW_TO_GIVE_FEATURES = (
    "Give it: profile(model, input_shape=(1, n_features)) (session() takes the same)."
)


def not_fitted(model: object) -> str | None:
    """Why ``model`` cannot be converted for want of fitting (naming the step), or None."""
    sk = _sklearn()

    def problem(est: Any, where: str) -> str | None:
        if est is None or (isinstance(est, str) and est in ("passthrough", "drop")):
            return None
        try:
            sk.check_is_fitted(est)
        except sk.NotFittedError:
            return f"{where}{type(est).__name__} is not fitted: call fit() first."
        except TypeError:  # not an estimator at all
            return f"{where}{type(est).__name__} is not a scikit-learn estimator."
        return None

    if _is_pipeline(model):
        for step_name, step in getattr(model, "steps", ()):
            where = f"step {step_name!r} of the pipeline: "
            found = not_fitted(step) if _is_pipeline(step) else problem(step, where)
            if found:
                return found
        return None
    return problem(model, "")


def _n_features(model: object) -> int | None:
    try:
        value = getattr(model, "n_features_in_", None)
    except AttributeError:
        value = None
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


# ----------------------------------------------------------------------------------------------
# the loader


def load(
    obj: object,
    name: str | None = None,
    *,
    input_shape: object = None,
    example_inputs: object = None,
    **options: object,
) -> LoadedModel:
    """Convert a fitted scikit-learn model to ONNX (cached) as a :class:`LoadedModel`."""
    if not is_sklearn_model(obj):
        raise ModelLoadError(f"{type(obj).__name__} is not a scikit-learn estimator.")
    class_name = type(obj).__name__
    label = name or class_name
    EXTRA.check_loadable(label, options)
    problem = not_fitted(obj)
    if problem:
        raise ModelLoadError(f"{label}: {problem}")
    n_features = _features_from(obj, input_shape, example_inputs, label)

    key = (n_features, _stamp(obj))
    cached = _cache.get(obj, key)
    if cached is not None:
        return cached.renamed(name)

    model = convert(obj, n_features, label=label)
    params, param_bytes = _carried_numbers(model)
    info = FrameworkInfo(
        framework="sklearn",
        kind=KIND_PIPELINE if _is_pipeline(obj) else KIND_ESTIMATOR,
        class_name=class_name,
        version=_sklearn().version,
        exporter=EXPORTER,
        params=params,
        param_bytes=param_bytes,
        input_source=f"float32[batch, {n_features}] (n_features_in_)"
        if _n_features(obj) == n_features
        else f"float32[batch, {n_features}] (given)",
    )
    loaded = LoadedModel(
        model=model,
        name=label,
        kind=info.kind,
        size_bytes=model.ByteSize(),
        source=obj,
        framework=info,
    )
    _cache.put(obj, key, loaded)
    return loaded


def _features_from(model: object, input_shape: object, example: object, label: str) -> int:
    given: int | None = None
    if input_shape is not None:
        shape = input_shape if isinstance(input_shape, tuple | list) else None
        last = shape[-1] if shape else None
        if not isinstance(last, int | np.integer) or isinstance(last, bool) or int(last) <= 0:
            raise ProfileError(
                f"input_shape for a scikit-learn model is (batch, n_features), not {input_shape!r}."
            )
        given = int(last)
    elif example is not None:
        arr = np.asarray(example)
        if arr.ndim != 2 or arr.shape[1] <= 0:
            raise ProfileError(
                f"example_inputs for a scikit-learn model must be 2-D (batch, n_features); got "
                f"shape {arr.shape}."
            )
        given = int(arr.shape[1])
    fitted = _n_features(model)
    if given is not None and fitted is not None and given != fitted:
        raise ProfileError(f"{label} was fitted on {fitted} features; the input given has {given}.")
    n = given or fitted
    if n is None:
        raise ProfileError(
            f"{label}: the number of input features is unknown. {_HOW_TO_GIVE_FEATURES}"
        )
    return n


# ----------------------------------------------------------------------------------------------
# converting


def convert(model: object, n_features: int, *, label: str = "the model") -> onnx.ModelProto:
    """The ONNX graph of a fitted model, input ``X: float32[batch, n_features]``, quietly."""
    converter = _skl2onnx()
    initial = [(INPUT_NAME, converter.FloatTensorType([None, n_features]))]
    attempts: list[dict[str, object] | None] = [{"zipmap": False}, None]
    if not _sklearn().is_classifier(model):
        attempts = [None, {"zipmap": False}]  # a classifier may still sit inside (stacking)
    first_error: Exception | None = None
    for options in attempts:
        try:
            with _quiet():
                onx = converter.to_onnx(model, initial_types=initial, options=options)
        except Exception as exc:
            first_error = first_error or exc
            continue
        assert isinstance(onx, onnx.ModelProto)
        return annotate_shapes(_tidy(onx, label), n_features)
    raise ModelLoadError(f"Cannot convert {label} to ONNX with skl2onnx: {_reason(first_error)}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        warnings.simplefilter("ignore")
        yield


def _tidy(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """One import per domain (skl2onnx may repeat one) and the model's name on the graph."""
    versions: dict[str, int] = {}
    for imp in model.opset_import:
        versions[imp.domain] = max(versions.get(imp.domain, 0), imp.version)
    del model.opset_import[:]
    for domain, version in versions.items():
        model.opset_import.add(domain=domain, version=version)
    model.graph.name = label
    return model


SHAPE_PROBE_ROWS = (3, 5)
"""Two batch sizes the converted graph is run on to learn every tensor's shape (see below)."""


def annotate_shapes(model: onnx.ModelProto, n_features: int) -> onnx.ModelProto:
    """Declare the shape of every tensor, with the batch axis as ``batch``, in ``value_info``.

    onnx's shape inference knows few ``ai.onnx.ml`` operators, so a graph-only profile would lose
    the shapes (and so the costs) after the first of them. The graph is small and already
    converted: run it on two batch sizes with every tensor exposed, and keep what it reports
    (an axis that follows the batch is the batch axis). Left as it is if that fails.
    """
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {v.name for v in probe.graph.output}
    names = [o for node in probe.graph.node for o in node.output if o and o not in declared]
    for name in names:
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    all_names = [o.name for o in probe.graph.output]
    shapes: list[dict[str, tuple[tuple[int, ...], np.dtype[Any]]]] = []
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for rows in SHAPE_PROBE_ROWS:
            feed = {INPUT_NAME: np.zeros((rows, n_features), dtype=np.float32)}
            values = session.run(all_names, feed)
            shapes.append(
                {
                    n: (tuple(np.shape(v)), np.asarray(v).dtype)
                    for n, v in zip(all_names, values, strict=True)
                    if isinstance(v, np.ndarray)
                }
            )
    except Exception:
        return model
    small, large = shapes
    for graph_input in model.graph.input:
        axes = graph_input.type.tensor_type.shape.dim
        if axes and not axes[0].HasField("dim_value"):
            axes[0].dim_param = BATCH_DIM
    known = {v.name for v in model.graph.value_info}
    outputs = {v.name: v for v in model.graph.output}
    for name in all_names:
        if name not in small or name not in large:
            continue
        (shape_a, dtype), (shape_b, _) = small[name], large[name]
        if len(shape_a) != len(shape_b):
            continue
        dims: list[int | str] = [
            a if a == b else BATCH_DIM for a, b in zip(shape_a, shape_b, strict=True)
        ]
        elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
        info = onnx.helper.make_tensor_value_info(name, elem, dims)
        if name in outputs:
            if not outputs[name].type.tensor_type.HasField("shape") or not len(
                outputs[name].type.tensor_type.shape.dim
            ):
                outputs[name].CopyFrom(info)
        elif name not in known:
            model.graph.value_info.append(info)
    return model


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "Unable to find a shape calculator" in text or "Unable to find a converter" in text:
        text = text.split(" You may raise")[0].split(" It usually means")[0]
    return text if len(text) <= 300 else text[:297] + "..."


_T = onnx.TensorProto
_FLOAT_TYPES = frozenset({_T.FLOAT, _T.DOUBLE, _T.FLOAT16})


def _carried_numbers(model: onnx.ModelProto) -> tuple[int, int]:
    """Numbers (count, bytes) in float initializers and float attributes of the graph's nodes."""
    tensors = list(model.graph.initializer)
    count = nbytes = 0
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.FLOATS:
                count += len(attribute.floats)
                nbytes += dtypes.nbytes(onnx.TensorProto.FLOAT, len(attribute.floats))
            elif attribute.type == onnx.AttributeProto.TENSOR:
                tensors.append(attribute.t)
    for tensor in tensors:
        if tensor.data_type in _FLOAT_TYPES:
            n = math.prod(tensor.dims)  # 1 for a scalar
            count += n
            nbytes += dtypes.nbytes(tensor.data_type, n)
    return count, nbytes


# ----------------------------------------------------------------------------------------------
# the conversion cache


_cache = ExportCache(CACHE_PER_MODEL)


def _stamp(obj: object, depth: int = 0) -> object:
    """A cheap fingerprint of an estimator's state: changes when it is refitted or modified."""
    if depth > 6:
        return id(obj)
    if isinstance(obj, np.ndarray):
        checksum = (
            zlib.crc32(np.ascontiguousarray(obj).view(np.uint8).ravel().data)
            if obj.dtype != object and obj.nbytes <= CHECKSUM_MAX_BYTES
            else id(obj)
        )
        return ("array", obj.shape, str(obj.dtype), checksum)
    if obj is None or isinstance(obj, bool | int | float | str | np.generic):
        return obj
    if isinstance(obj, list | tuple):
        return tuple(_stamp(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return tuple((str(k), _stamp(v, depth + 1)) for k, v in sorted(obj.items(), key=str))
    if is_sklearn_model(obj):
        return (type(obj).__name__, _stamp(vars(obj), depth + 1))
    return (type(obj).__name__, id(obj))


def clear_cache() -> None:
    """Forget every cached scikit-learn conversion."""
    _cache.clear()


def cached_exports(model: object) -> int:
    """How many scikit-learn conversions of ``model`` the cache holds."""
    return _cache.count(model)


PLUGIN = ModelKind(KIND_ESTIMATOR, is_sklearn_model, load, detect)
"""Fitted scikit-learn estimators and pipelines (one kind: a pipeline is an estimator)."""
