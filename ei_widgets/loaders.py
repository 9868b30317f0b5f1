"""Turn the model objects a kernel holds into one form the profiler reads: :class:`LoadedModel`.

Built in: ``onnx.ModelProto``, a ``str``/``pathlib.Path`` to an ``.onnx`` file, the serialized
bytes of a model, and an ``onnxruntime.InferenceSession``. More kinds (PyTorch modules,
scikit-learn estimators, ...) plug in through :func:`register_loader` without touching the
profiler.

Loading never reads external weight files (it only checks that they exist and are long enough),
and never materialises a tensor.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import onnx
from google.protobuf.message import DecodeError

from ei_widgets.errors import ModelLoadError

Matcher = Callable[[object], bool]
Loader = Callable[..., "LoadedModel"]
"""``load(obj, name, **options) -> LoadedModel``; options are what the caller of ``load_model``
(or ``profile``) passed for this kind, e.g. ``example_inputs`` for a PyTorch module."""


@dataclass(frozen=True)
class LoadedModel:
    """An ONNX graph ready to profile, and where it came from.

    ``model`` never holds external weight bytes. ``complete`` is False when only the inputs and
    outputs could be recovered (for example from an onnxruntime session that no longer holds its
    model); ``warnings`` then say what is missing.
    """

    model: onnx.ModelProto
    name: str
    kind: str  # "onnx-model", "onnx-file", "onnx-bytes", "ort-session", ...
    path: pathlib.Path | None = None  # the file the model was read from, if any
    size_bytes: int = 0  # on disk or serialized, external data included
    complete: bool = True
    warnings: tuple[str, ...] = ()
    source: object = field(default=None, repr=False, compare=False)  # the object given
    # The serialized model when it was read from a small file or bytes, so that shape
    # inference can take it as is instead of serializing ``model`` once more.
    serialized: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def base_dir(self) -> pathlib.Path | None:
        """Directory external data locations are relative to."""
        return self.path.parent if self.path is not None else None

    def ort_source(self) -> str | bytes:
        """What ``onnxruntime.InferenceSession`` needs to build a session: a path or bytes."""
        if self.path is not None:
            return os.fspath(self.path)
        if isinstance(self.source, bytes):
            return self.source
        if not self.complete:
            raise ModelLoadError(f"{self.name}: the model graph is not available; " + _joined(self))
        if has_external_data(self.model):
            raise ModelLoadError(
                f"{self.name}: the model keeps its weights in external files but no directory is "
                "known for them; save it and pass the path instead."
            )
        return self.model.SerializeToString()


def _joined(loaded: LoadedModel) -> str:
    return " ".join(loaded.warnings)


@dataclass(frozen=True)
class _Registration:
    kind: str
    matches: Matcher
    load: Loader


_REGISTRY: list[_Registration] = []


def register_loader(kind: str, matches: Matcher, load: Loader, *, first: bool = False) -> None:
    """Teach :func:`load_model` a new kind of object.

    ``matches(obj)`` must be cheap and must not import heavy libraries (check
    ``type(obj).__module__`` or ``sys.modules``); ``load(obj, name, **options)`` returns a
    :class:`LoadedModel` or raises :class:`ModelLoadError`. A kind registered again replaces the
    old one; ``first=True`` makes it win over the built-in kinds.
    """
    _REGISTRY[:] = [r for r in _REGISTRY if r.kind != kind]
    entry = _Registration(kind, matches, load)
    if first:
        _REGISTRY.insert(0, entry)
    else:
        _REGISTRY.append(entry)


def unregister_loader(kind: str) -> None:
    """Forget a kind registered with :func:`register_loader` (no error if unknown)."""
    _REGISTRY[:] = [r for r in _REGISTRY if r.kind != kind]


def registered_kinds() -> list[str]:
    """The kinds :func:`load_model` understands, in the order they are tried."""
    _register_framework_loaders()
    return [r.kind for r in _REGISTRY]


def load_model(obj: object, name: str | None = None, **options: object) -> LoadedModel:
    """Read ``obj`` into a :class:`LoadedModel`, or raise :class:`ModelLoadError`.

    ``options`` go to the loader of ``obj``'s kind (``example_inputs=`` for a PyTorch module, for
    instance); the ONNX kinds take none.
    """
    if isinstance(obj, LoadedModel):
        _no_options(options, "an already loaded model")
        return obj
    _register_framework_loaders()
    for entry in _REGISTRY:
        if entry.matches(obj):
            return entry.load(obj, name, **options)
    kinds = ", ".join(registered_kinds())
    raise ModelLoadError(
        f"Cannot read a model from a {type(obj).__name__} object (known: {kinds})."
    )


# ----------------------------------------------------------------------------------------------
# ONNX


def has_external_data(model: onnx.ModelProto) -> bool:
    """Whether any initializer keeps its bytes in an external file."""
    return any(_is_external(t) for t in model.graph.initializer)


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _external_info(tensor: onnx.TensorProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    if not data:
        raise ModelLoadError(f"{what} is empty: there is no model to read.")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"{what} is not a valid ONNX model (truncated or corrupt): {exc}"
        ) from exc
    _validate(model, what)
    return model


def _validate(model: onnx.ModelProto, what: str) -> None:
    """Reject protobuf messages that parsed but are not models (random bytes often parse)."""
    problems = []
    if model.ir_version <= 0:
        problems.append("no IR version")
    if not model.HasField("graph"):
        problems.append("no graph")
    elif not model.graph.node and not model.graph.output:
        problems.append("an empty graph")
    if not model.opset_import and model.graph.node:
        problems.append("no opset import")
    if problems:
        raise ModelLoadError(f"{what} is not a valid ONNX model: it has {', '.join(problems)}.")


def _model_name(model: onnx.ModelProto, fallback: str) -> str:
    return model.graph.name or fallback


def _external_size(model: onnx.ModelProto, base_dir: pathlib.Path | None, what: str) -> int:
    """Bytes of external data, after checking every referenced file exists and is long enough."""
    total = 0
    files: dict[str, int] = {}
    missing: list[str] = []
    external = onnx.TensorProto.EXTERNAL
    for tensor in model.graph.initializer:
        if tensor.data_location != external:  # inline: most models have only internal tensors
            continue
        info = _external_info(tensor)
        location = info.get("location", "")
        length = int(info.get("length", "0") or 0) or _tensor_nbytes(tensor)
        offset = int(info.get("offset", "0") or 0)
        total += length
        if base_dir is None:
            continue
        if location not in files:
            target = base_dir / location
            files[location] = target.stat().st_size if target.is_file() else -1
        if files[location] < 0:
            missing.append(f"{location!r} (for {tensor.name!r})")
        elif files[location] < offset + length:
            missing.append(f"{location!r} is shorter than {tensor.name!r} needs")
    if missing:
        shown = "; ".join(sorted(set(missing))[:5])
        raise ModelLoadError(f"{what}: external data files are missing or short: {shown}.")
    return total


_ITEMSIZE: dict[int, int] = {
    onnx.TensorProto.FLOAT: 4,
    onnx.TensorProto.DOUBLE: 8,
    onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.BFLOAT16: 2,
    onnx.TensorProto.INT8: 1,
    onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.INT16: 2,
    onnx.TensorProto.UINT16: 2,
    onnx.TensorProto.INT32: 4,
    onnx.TensorProto.UINT32: 4,
    onnx.TensorProto.INT64: 8,
    onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BOOL: 1,
    onnx.TensorProto.COMPLEX64: 8,
    onnx.TensorProto.COMPLEX128: 16,
}


def _tensor_nbytes(tensor: onnx.TensorProto) -> int:
    count = 1
    for d in tensor.dims:
        count *= d
    return count * _ITEMSIZE.get(tensor.data_type, 1)


def serialized_size(model: onnx.ModelProto) -> int:
    """The model's serialized size, with weight payloads sized from their shapes.

    ``ModelProto.ByteSize()`` serializes the whole model (seconds and a full copy for a large
    one), and reading ``raw_data`` copies it; tensor payloads are therefore sized from their
    dims, and only the small protos are measured exactly.
    """
    graph = model.graph
    total = 64  # model header: IR version, producer, opset imports (about)
    for tensor in graph.initializer:
        if _is_external(tensor) or math.prod(tensor.dims) <= _SMALL_TENSOR:
            total += tensor.ByteSize()
        else:
            total += _tensor_nbytes(tensor) + len(tensor.name) + 8 * len(tensor.dims) + 16
    total += sum(node.ByteSize() for node in graph.node)
    total += sum(v.ByteSize() for v in (*graph.input, *graph.output, *graph.value_info))
    return total


_SMALL_TENSOR = 1 << 16
MAX_PROTO_BYTES = 2**31 - 1


MAX_KEPT_SERIALIZED = 16 * 2**20
"""Serialized models up to this size are kept next to the parsed one (see ``serialized``);
a larger one would hold its weights twice in memory while the profile runs."""


def _kept(data: bytes) -> bytes | None:
    return data if len(data) <= MAX_KEPT_SERIALIZED else None


def _no_options(options: Mapping[str, object], what: str) -> None:
    if options:
        raise ModelLoadError(
            f"{', '.join(sorted(options))} cannot be used with {what}: an ONNX graph already "
            "says its inputs (use input_shapes= to bind their sizes)."
        )


def _from_proto(obj: object, name: str | None, **options: object) -> LoadedModel:
    assert isinstance(obj, onnx.ModelProto)
    _no_options(options, "an ONNX model")
    what = name or "the model"
    _validate(obj, what)
    external = _external_size(obj, None, what)
    warnings: tuple[str, ...] = ()
    if external:
        warnings = (
            "The model refers to external data files; without its path they cannot be checked "
            "(sizes come from the tensor shapes).",
        )
    return LoadedModel(
        model=obj,
        name=name or _model_name(obj, "model"),
        kind="onnx-model",
        size_bytes=serialized_size(obj) + external,
        warnings=warnings,
        source=obj,
    )


def _from_path(obj: object, name: str | None, **options: object) -> LoadedModel:
    assert isinstance(obj, str | os.PathLike)
    _no_options(options, "an ONNX file")
    path = pathlib.Path(os.fspath(obj)).expanduser()
    what = str(path)
    if not path.exists():
        raise ModelLoadError(f"No such model file: {what}")
    if path.is_dir():
        raise ModelLoadError(f"{what} is a directory, not an .onnx file.")
    size = path.stat().st_size
    if size > MAX_PROTO_BYTES:
        # protobuf cannot hold a message this large; ONNX keeps big weights in external files
        raise ModelLoadError(
            f"{what} is {size:,} bytes, more than an ONNX protobuf can hold (2 GiB): it is not a "
            "valid .onnx file. Large models keep their weights in external data files."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"Cannot read {what}: {exc}") from exc
    model = _parse(data, what)
    external = _external_size(model, path.parent, what)
    return LoadedModel(
        model=model,
        name=name or path.stem,
        kind="onnx-file",
        path=path,
        size_bytes=len(data) + external,
        source=obj,
        serialized=_kept(data),
    )


def _from_bytes(obj: object, name: str | None, **options: object) -> LoadedModel:
    _no_options(options, "ONNX model bytes")
    data = bytes(obj) if isinstance(obj, bytearray | memoryview) else obj
    assert isinstance(data, bytes)
    model = _parse(data, name or "the model bytes")
    external = _external_size(model, None, name or "the model bytes")
    return LoadedModel(
        model=model,
        name=name or _model_name(model, "model"),
        kind="onnx-bytes",
        size_bytes=len(data) + external,
        source=data,
        serialized=_kept(data),
    )


def _is_path(obj: object) -> bool:
    return isinstance(obj, str | pathlib.PurePath)


def _is_bytes(obj: object) -> bool:
    return isinstance(obj, bytes | bytearray | memoryview)


# ----------------------------------------------------------------------------------------------
# onnxruntime


def is_ort_session(obj: object) -> bool:
    """An onnxruntime ``InferenceSession`` (checked by type name: onnxruntime is not imported)."""
    return any(
        cls.__name__ == "InferenceSession" and cls.__module__.startswith("onnxruntime")
        for cls in type(obj).__mro__
    )


def _from_session(obj: object, name: str | None, **options: object) -> LoadedModel:
    _no_options(options, "an onnxruntime session")
    path = getattr(obj, "_model_path", None)
    data = getattr(obj, "_model_bytes", None)
    if path:
        loaded = _from_path(path, name)
    elif isinstance(data, bytes) and data:
        loaded = _from_bytes(data, name)
    else:
        return _session_io_only(obj, name)
    return LoadedModel(
        model=loaded.model,
        name=loaded.name,
        kind="ort-session",
        path=loaded.path,
        size_bytes=loaded.size_bytes,
        warnings=loaded.warnings,
        source=loaded.source,
        serialized=loaded.serialized,
    )


_ORT_TYPES = {
    f"tensor({n})": getattr(onnx.TensorProto, n.upper())
    for n in (
        "float",
        "double",
        "float16",
        "bfloat16",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "bool",
        "string",
    )
}


def _session_io_only(session: object, name: str | None) -> LoadedModel:
    """A graph with the session's inputs and outputs and no nodes: all a bare session tells."""
    graph = onnx.helper.make_graph(
        [],
        name or "session",
        [_ort_value_info(arg) for arg in _call(session, "get_inputs")],
        [_ort_value_info(arg) for arg in _call(session, "get_outputs")],
    )
    model = onnx.helper.make_model(graph)
    del model.opset_import[:]
    meta = _call_or_none(session, "get_modelmeta")
    if meta is not None:
        model.producer_name = str(getattr(meta, "producer_name", "") or "")
        model.graph.name = str(getattr(meta, "graph_name", "") or model.graph.name)
    message = (
        "The onnxruntime session no longer holds the model it was built from (no path or bytes "
        "kept), so only its inputs and outputs are known: parameters, FLOPs, memory and size are "
        "missing. Profile the .onnx file or the ModelProto instead."
    )
    return LoadedModel(
        model=model,
        name=name or model.graph.name or "session",
        kind="ort-session",
        complete=False,
        warnings=(message,),
        source=session,
    )


def _call(obj: object, method: str) -> list[object]:
    try:
        return list(getattr(obj, method)())
    except Exception as exc:  # a closed or broken session must not crash discovery or profile
        raise ModelLoadError(f"Cannot read the session's {method[4:]}: {exc}") from exc


def _call_or_none(obj: object, method: str) -> object | None:
    try:
        return getattr(obj, method)()
    except Exception:  # model metadata is optional
        return None


def _ort_value_info(arg: object) -> onnx.ValueInfoProto:
    elem = _ORT_TYPES.get(str(getattr(arg, "type", "")), onnx.TensorProto.UNDEFINED)
    raw_shape = getattr(arg, "shape", None)
    shape: list[int | str | None] | None = None
    if isinstance(raw_shape, list | tuple):
        shape = [
            d if isinstance(d, int | str) and not isinstance(d, bool) else None for d in raw_shape
        ]
        shape = [d if not (isinstance(d, int) and d < 0) else None for d in shape]
    return onnx.helper.make_tensor_value_info(str(getattr(arg, "name", "")), elem, shape)


register_loader("onnx-model", lambda o: isinstance(o, onnx.ModelProto), _from_proto)
register_loader("onnx-file", _is_path, _from_path)
register_loader("onnx-bytes", _is_bytes, _from_bytes)
register_loader("ort-session", is_ort_session, _from_session)


_frameworks_registered = False


def _register_framework_loaders() -> None:
    """PyTorch and scikit-learn models (``ei_widgets.frameworks``) plug in here, on first use:
    at import time the frameworks package and this module would import each other."""
    global _frameworks_registered
    if _frameworks_registered:
        return
    _frameworks_registered = True
    from ei_widgets import frameworks

    frameworks.register_loaders()  # imports no framework
