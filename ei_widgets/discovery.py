"""Find the models a namespace holds, cheaply enough to run after every notebook cell.

:func:`find_models` never profiles, exports or reads a model file: it looks at each object's
type (by module and class name, so it imports nothing heavy), stats a path, and for an in-memory
ONNX model counts nodes and initializers. More kinds (PyTorch, scikit-learn, ...) plug in with
:func:`register_detector`.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from stat import S_ISREG

from ei_widgets.loaders import is_ort_session


@dataclass(frozen=True)
class ModelEntry:
    """One model found in a namespace."""

    variable: str
    kind: str  # "onnx-model", "onnx-file", "ort-session", ...
    summary: str  # one short line for a list or a status bar
    size_bytes: int | None = None  # on disk or serialized, when known without reading


Detector = Callable[[str, object], "ModelEntry | None"]
"""``detector(variable, obj)`` returns an entry when ``obj`` is a model of its kind, else None.
It must be cheap and must not import heavy libraries (check ``type(obj).__module__``)."""

_DETECTORS: list[tuple[str, Detector]] = []

MAX_PATH_LENGTH = 4096


def register_detector(kind: str, detector: Detector) -> None:
    """Add (or replace) the detector of a kind of model."""
    _DETECTORS[:] = [(k, d) for k, d in _DETECTORS if k != kind]
    _DETECTORS.append((kind, detector))


def unregister_detector(kind: str) -> None:
    """Forget a detector added with :func:`register_detector` (no error if unknown)."""
    _DETECTORS[:] = [(k, d) for k, d in _DETECTORS if k != kind]


def find_models(namespace: Mapping[str, object]) -> list[ModelEntry]:
    """The models in ``namespace``, in its order. Names starting with ``_`` are skipped."""
    _register_framework_detectors()
    found: list[ModelEntry] = []
    for variable, obj in list(namespace.items()):
        if not isinstance(variable, str) or variable.startswith("_") or isinstance(obj, type):
            continue
        entry = _detect(variable, obj)
        if entry is not None:
            found.append(entry)
    return found


def _detect(variable: str, obj: object) -> ModelEntry | None:
    for _, detector in _DETECTORS:
        try:
            entry = detector(variable, obj)
        except Exception:  # one odd object must never break the listing after a cell
            entry = None
        if entry is not None:
            return entry
    return None


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def format_bytes(size: int) -> str:
    """``97.5 MB`` style (decimal units, as file managers show)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # unreachable; keeps type checkers content


def _is_type(obj: object, module_prefix: str, name: str) -> bool:
    cls = type(obj)
    return cls.__name__ == name and cls.__module__.startswith(module_prefix)


def _onnx_model(variable: str, obj: object) -> ModelEntry | None:
    if not _is_type(obj, "onnx", "ModelProto"):
        return None
    graph = obj.graph  # type: ignore[attr-defined]
    opsets = {imp.domain: imp.version for imp in obj.opset_import}  # type: ignore[attr-defined]
    opset = opsets.get("", opsets.get("ai.onnx"))
    parts = [
        "ONNX model",
        _plural(len(graph.node), "node"),
        _plural(len(graph.initializer), "initializer"),
    ]
    if opset is not None:
        parts.append(f"opset {opset}")
    return ModelEntry(variable, "onnx-model", ", ".join(parts))


def _onnx_path(variable: str, obj: object) -> ModelEntry | None:
    if isinstance(obj, str):
        if len(obj) > MAX_PATH_LENGTH or not obj.lower().endswith(".onnx"):
            return None
    elif not isinstance(obj, pathlib.PurePath) or obj.suffix.lower() != ".onnx":
        return None
    try:
        stat = os.stat(os.path.expanduser(os.fspath(obj)))
    except (OSError, ValueError):
        return None
    if not S_ISREG(stat.st_mode):
        return None
    return ModelEntry(
        variable,
        "onnx-file",
        f"ONNX file {os.fspath(obj)} ({format_bytes(stat.st_size)})",
        stat.st_size,
    )


def _ort_session(variable: str, obj: object) -> ModelEntry | None:
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


register_detector("onnx-model", _onnx_model)
register_detector("onnx-file", _onnx_path)
register_detector("ort-session", _ort_session)


_frameworks_registered = False


def _register_framework_detectors() -> None:
    """PyTorch and scikit-learn models (``ei_widgets.frameworks``) are listed through the same
    plug-in point, registered on first use (at import time the two would import each other)."""
    global _frameworks_registered
    if _frameworks_registered:
        return
    _frameworks_registered = True
    from ei_widgets import frameworks

    frameworks.register_detectors()  # imports no framework
