"""The ONNX kinds of model: ``onnx.ModelProto``, a path to an ``.onnx`` file, serialized bytes,
and an ``onnxruntime.InferenceSession``; each a :class:`~ei_widgets.models.types.ModelKind`.

Loading never reads external weight files (it only checks that they exist and are long enough)
and never materialises a tensor. What a hostile file or model can do is bounded here: only
regular files are read (a FIFO or ``/dev/zero`` is refused before it is opened), external data
locations must stay inside the model's folder (an absolute path or ``..`` is refused before
anything is looked up), and malformed fields become :class:`~ei_widgets.errors.ModelLoadError`.
"""

from __future__ import annotations

import math
import os
import pathlib
import stat
from collections.abc import Mapping
from operator import attrgetter

import onnx
from google.protobuf.message import DecodeError

from ei_widgets.common import units
from ei_widgets.errors import ModelLoadError
from ei_widgets.models import dtypes
from ei_widgets.models.frameworks import tensorflow
from ei_widgets.models.types import LoadedModel, ModelEntry, ModelKind, has_external_data

MAX_PROTO_BYTES = 2**31 - 1
"""protobuf cannot hold a larger message; ONNX keeps big weights in external files."""
MAX_KEPT_SERIALIZED = 16 * 2**20
"""Serialized models up to this size are kept next to the parsed one (see ``serialized``);
a larger one would hold its weights twice in memory while the profile runs."""
MAX_PATH_LENGTH = 4096
_SMALL_TENSOR = 1 << 16
_OP_TYPE = attrgetter("op_type")


# ----------------------------------------------------------------------------------------------
# reading and checking


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


def _read_regular_file(path: pathlib.Path, what: str) -> bytes:
    """The bytes of a regular file; anything else (missing, a directory, a FIFO, a device, a
    link to one) is refused from its type and size, before it is opened."""
    try:
        info = os.stat(path)  # follows links: a .onnx link to /dev/urandom is a device
    except FileNotFoundError:
        raise ModelLoadError(f"No such model file: {what}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Cannot read {what}: {exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ModelLoadError(f"{what} is a directory, not an .onnx file.")
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(
            f"{what} is not a regular file (a pipe, socket or device): it cannot be an .onnx "
            "model file."
        )
    if info.st_size > MAX_PROTO_BYTES:
        raise ModelLoadError(
            f"{what} is {info.st_size:,} bytes, more than an ONNX protobuf can hold (2 GiB): it "
            "is not a valid .onnx file. Large models keep their weights in external data files."
        )
    try:
        with open(path, "rb") as f:
            # no more than the size just checked (one byte more tells that it grew meanwhile)
            data = f.read(info.st_size + 1)
    except OSError as exc:
        raise ModelLoadError(f"Cannot read {what}: {exc}") from exc
    if len(data) > info.st_size:
        raise ModelLoadError(f"{what} changed while it was read; try again.")
    return data


def _check_location(location: str, tensor: str, what: str) -> None:
    """External data must live in the model's folder, as onnxruntime requires: an absolute
    location or one that climbs out (``..``) is refused before anything is looked up."""
    parts = location.replace("\\", "/").split("/")
    if (
        not location
        or "\0" in location
        or os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or (len(location) > 1 and location[1] == ":")  # a Windows drive
        or ".." in parts
    ):
        raise ModelLoadError(
            f"{what}: tensor {tensor!r} has external data location {location!r}; a location "
            "must be a relative path inside the model's folder."
        )


def _external_int(info: Mapping[str, str], key: str, tensor: str, what: str) -> int | None:
    text = info.get(key, "")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ModelLoadError(
            f"{what}: tensor {tensor!r} has external data {key} {text[:40]!r}; it must be a "
            "whole number of bytes, 0 or more."
        )
    return value


MAX_SUBGRAPH_DEPTH = 30
"""Deeper nesting of control flow (If in If in ...) is refused: protobuf cannot copy or parse
such a message (its limit is 100 levels, three per subgraph), and no real model nests so."""

_GRAPH, _GRAPHS = onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS
_TENSOR, _TENSORS = onnx.AttributeProto.TENSOR, onnx.AttributeProto.TENSORS


def _walk(model: onnx.ModelProto, what: str) -> list[onnx.TensorProto]:
    """Every tensor stored in the model outside the main graph's initializers (Constant
    values and other tensor attributes, subgraphs' initializers), found without recursion, after
    refusing a nesting of subgraphs deeper than ``MAX_SUBGRAPH_DEPTH``.

    It runs before anything measures the model: protobuf's own size computation recurses, and a
    ModelProto built in memory with thousands of nested If subgraphs overflows the C stack."""
    found: list[onnx.TensorProto] = []
    stack: list[tuple[onnx.GraphProto, int]] = [(model.graph, 0)]
    while stack:
        graph, depth = stack.pop()
        if depth:
            found.extend(graph.initializer)
        for node in graph.node:
            attributes = node.attribute
            if not attributes:
                continue
            for a in attributes:
                kind = a.type
                if kind == _TENSOR:
                    found.append(a.t)
                elif kind == _TENSORS:
                    found.extend(a.tensors)
                elif kind in (_GRAPH, _GRAPHS) or (not kind and _has_graph(a)):
                    if depth + 1 > MAX_SUBGRAPH_DEPTH:
                        raise ModelLoadError(
                            f"{what} nests subgraphs (If, Loop, Scan) more than"
                            f" {MAX_SUBGRAPH_DEPTH} deep; it cannot be profiled or run."
                        )
                    if a.HasField("g"):
                        stack.append((a.g, depth + 1))
                    stack.extend((g, depth + 1) for g in a.graphs)
    return found


def _has_graph(attribute: onnx.AttributeProto) -> bool:
    """A graph in an attribute whose type was left unset (a hand-built model)."""
    return attribute.HasField("g") or len(attribute.graphs) > 0


def _external_size(
    model: onnx.ModelProto,
    base_dir: pathlib.Path | None,
    what: str,
    stored: list[onnx.TensorProto] | None = None,
) -> int:
    """Bytes of external data, after checking every referenced file exists and is long enough
    (initializers, and tensors in Constant nodes and subgraphs alike: ``stored``, when the
    model was walked already)."""
    if stored is None:
        stored = _walk(model, what)
    total = 0
    files: dict[str, int] = {}
    missing: list[str] = []
    external = onnx.TensorProto.EXTERNAL
    for tensor in (*model.graph.initializer, *stored):
        if tensor.data_location != external:  # inline: most models have only internal tensors
            continue
        name = tensor.name
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        _check_location(location, name, what)
        length = _external_int(info, "length", name, what) or _tensor_nbytes(tensor)
        offset = _external_int(info, "offset", name, what) or 0
        total += length
        if base_dir is None:
            continue
        if location not in files:
            try:
                target = os.stat(base_dir / location)
                files[location] = target.st_size if stat.S_ISREG(target.st_mode) else -1
            except (OSError, ValueError):
                files[location] = -1
        if files[location] < 0:
            missing.append(f"{location!r} (for {name!r})")
        elif files[location] < offset + length:
            missing.append(f"{location!r} is shorter than {name!r} needs")
    if missing:
        shown = "; ".join(sorted(set(missing))[:5])
        raise ModelLoadError(f"{what}: external data files are missing or short: {shown}.")
    return total


def _tensor_nbytes(tensor: onnx.TensorProto) -> int:
    return dtypes.nbytes(tensor.data_type, math.prod(tensor.dims))


def serialized_size(model: onnx.ModelProto, stored: list[onnx.TensorProto] | None = None) -> int:
    """The model's serialized size, with weight payloads sized from their shapes.

    ``ModelProto.ByteSize()`` serializes the whole model (seconds and a full copy for a large
    one), and reading ``raw_data`` copies it; tensor payloads are therefore sized from their
    dims, and only the small protos are measured exactly. A model without a large tensor is
    measured whole, which is exact and, in C, faster than summing its nodes. ``stored`` are the
    tensors outside the main initializers (from :func:`_walk`, which runs first either way).
    """
    if stored is None:
        stored = _walk(model, "the model")  # before any size: too deep a nesting crashes
    graph = model.graph
    if not any(map(_is_large, graph.initializer)) and not any(map(_is_large, stored)):
        return model.ByteSize()
    total = 64  # model header: IR version, producer, opset imports (about)
    total += sum(_tensor_size(tensor) for tensor in graph.initializer)
    nodes = graph.node[:]
    if "Constant" not in set(map(_OP_TYPE, nodes)):
        total += sum(map(onnx.NodeProto.ByteSize, nodes))  # one C call per node
    else:
        for node in nodes:
            if node.op_type == "Constant":  # weights can hide here too: sized from shapes
                total += 16 + sum(map(len, node.output))
                total += sum(map(_attribute_size, node.attribute))
            else:
                total += node.ByteSize()
    total += sum(v.ByteSize() for v in (*graph.input, *graph.output, *graph.value_info))
    return total


def _is_large(tensor: onnx.TensorProto) -> bool:
    """Whether the tensor holds a payload that ``ByteSize`` would copy to measure."""
    return (
        tensor.data_location != onnx.TensorProto.EXTERNAL and math.prod(tensor.dims) > _SMALL_TENSOR
    )


def _tensor_size(tensor: onnx.TensorProto) -> int:
    """Serialized size of a tensor; a large one's from its dims (``ByteSize`` would copy it)."""
    if not _is_large(tensor):
        return tensor.ByteSize()
    return _tensor_nbytes(tensor) + len(tensor.name) + 8 * len(tensor.dims) + 16


def _attribute_size(attribute: onnx.AttributeProto) -> int:
    if attribute.type == onnx.AttributeProto.TENSOR:
        return 16 + _tensor_size(attribute.t)
    return attribute.ByteSize()


def _kept(data: bytes) -> bytes | None:
    return data if len(data) <= MAX_KEPT_SERIALIZED else None


def _no_options(options: Mapping[str, object], what: str) -> None:
    if options:
        raise ModelLoadError(
            f"{', '.join(sorted(options))} cannot be used with {what}: an ONNX graph already "
            "says its inputs (use input_shapes= to bind their sizes)."
        )


# ----------------------------------------------------------------------------------------------
# the loaders


def _from_proto(obj: object, name: str | None, **options: object) -> LoadedModel:
    assert isinstance(obj, onnx.ModelProto)
    _no_options(options, "an ONNX model")
    what = name or "the model"
    _validate(obj, what)
    stored = _walk(obj, what)  # the nesting first: sizing a too deeply nested model crashes
    size = serialized_size(obj, stored)
    return _in_memory(obj, name, what, "onnx-model", size, source=obj, stored=stored)


def _from_path(obj: object, name: str | None, **options: object) -> LoadedModel:
    assert isinstance(obj, str | os.PathLike)
    _no_options(options, "an ONNX file")
    path = pathlib.Path(os.fspath(obj)).expanduser()
    what = str(path)
    data = _read_regular_file(path, what)
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
    what = name or "the model bytes"
    model = _parse(data, what)
    return _in_memory(
        model, name, what, "onnx-bytes", len(data), source=data, serialized=_kept(data)
    )


def _in_memory(
    model: onnx.ModelProto,
    name: str | None,
    what: str,
    kind: str,
    size_bytes: int,
    *,
    source: object,
    serialized: bytes | None = None,
    stored: list[onnx.TensorProto] | None = None,
) -> LoadedModel:
    """A model given without a path: external data it names cannot be found, so it is sized
    from the tensor shapes, and the user is told."""
    external = _external_size(model, None, what, stored)
    warnings: tuple[str, ...] = ()
    if external:
        warnings = (
            "The model refers to external data files; without its path they cannot be checked "
            "(sizes come from the tensor shapes).",
        )
    return LoadedModel(
        model=model,
        name=name or _model_name(model, "model"),
        kind=kind,
        size_bytes=size_bytes + external,
        warnings=warnings,
        source=source,
        serialized=serialized,
    )


def _is_proto(obj: object) -> bool:
    return isinstance(obj, onnx.ModelProto)


def _is_path(obj: object) -> bool:
    # A saved TensorFlow model (a SavedModel folder, a .keras or .h5 file) is left to its plug-in.
    return isinstance(obj, str | pathlib.PurePath) and not tensorflow.is_model_path(obj)


def _is_bytes(obj: object) -> bool:
    return isinstance(obj, bytes | bytearray | memoryview)


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
    elem = dtypes.ort_element_type(str(getattr(arg, "type", "")))
    raw_shape = getattr(arg, "shape", None)
    shape: list[int | str | None] | None = None
    if isinstance(raw_shape, list | tuple):
        shape = [
            d if isinstance(d, int | str) and not isinstance(d, bool) else None for d in raw_shape
        ]
        shape = [d if not (isinstance(d, int) and d < 0) else None for d in shape]
    return onnx.helper.make_tensor_value_info(str(getattr(arg, "name", "")), elem, shape)


# ----------------------------------------------------------------------------------------------
# discovery entries (cheap: a path is stat'ed, never read)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _proto_entry(variable: str, obj: object) -> ModelEntry | None:
    if not isinstance(obj, onnx.ModelProto):
        return None
    graph = obj.graph
    opsets = {imp.domain: imp.version for imp in obj.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    parts = [
        "ONNX model",
        _plural(len(graph.node), "node"),
        _plural(len(graph.initializer), "initializer"),
    ]
    if opset is not None:
        parts.append(f"opset {opset}")
    return ModelEntry(variable, "onnx-model", ", ".join(parts))


def _path_entry(variable: str, obj: object) -> ModelEntry | None:
    if isinstance(obj, str):
        if len(obj) > MAX_PATH_LENGTH or not obj.lower().endswith(".onnx"):
            return None
    elif not isinstance(obj, pathlib.PurePath) or obj.suffix.lower() != ".onnx":
        return None
    try:
        info = os.stat(os.path.expanduser(os.fspath(obj)))
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return ModelEntry(
        variable,
        "onnx-file",
        f"ONNX file {os.fspath(obj)} ({units.format_bytes(info.st_size)})",
        info.st_size,
    )


def _session_entry(variable: str, obj: object) -> ModelEntry | None:
    if not is_ort_session(obj):
        return None
    inputs = len(obj.get_inputs())  # type: ignore[attr-defined]
    outputs = len(obj.get_outputs())  # type: ignore[attr-defined]
    source = getattr(obj, "_model_path", None)
    where = f" from {source}" if source else ""
    summary = (
        f"onnxruntime session{where}, {_plural(inputs, 'input')}, {_plural(outputs, 'output')}"
    )
    return ModelEntry(variable, "ort-session", summary)


ONNX_KINDS: tuple[ModelKind, ...] = (
    ModelKind("onnx-model", _is_proto, _from_proto, _proto_entry),
    ModelKind("onnx-file", _is_path, _from_path, _path_entry),
    ModelKind("onnx-bytes", _is_bytes, _from_bytes),
    ModelKind("ort-session", is_ort_session, _from_session, _session_entry),
)
"""The ONNX kinds, in the order they are tried."""

__all__ = ["ONNX_KINDS", "has_external_data", "is_ort_session", "serialized_size"]
