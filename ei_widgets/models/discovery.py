"""Find the models a namespace holds, cheaply enough to run after every notebook cell.

:func:`find_models` never profiles, exports or reads a model file: it asks each kind of model
(the plug-ins ``ei_widgets.models.loading`` keeps, each with a ``detect``) whether an object is one
of
its kind; they look at the object's type (by module and class name, so nothing heavy is
imported), stat a path, or count the nodes of an in-memory ONNX model. A kind is added with
:func:`ei_widgets.models.loading.register_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ei_widgets.models.loading import model_kinds
from ei_widgets.models.types import ModelEntry


def find_models(namespace: Mapping[str, object]) -> list[ModelEntry]:
    """The models in ``namespace``, in its order. Names starting with ``_`` are skipped."""
    detectors = [k.detect for k in model_kinds() if k.detect is not None]
    found: list[ModelEntry] = []
    for variable, obj in list(namespace.items()):
        if not isinstance(variable, str) or variable.startswith("_") or isinstance(obj, type):
            continue
        for detect in detectors:
            try:
                entry = detect(variable, obj)
            except Exception:  # one odd object must never break the listing after a cell
                entry = None
            if entry is not None:
                found.append(entry)
                break
    return found


__all__ = ["ModelEntry", "find_models"]
