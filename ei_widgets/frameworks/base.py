"""The loaded form of a framework model: a :class:`LoadedModel` with what the framework reports."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ei_widgets.frameworks import FrameworkInfo
from ei_widgets.loaders import LoadedModel


@dataclass(frozen=True)
class FrameworkModel(LoadedModel):
    """An ONNX export of a PyTorch or scikit-learn model, and the framework's own counts.

    ``source`` is the framework model itself; ``ort_source()`` serializes the export.
    """

    framework: FrameworkInfo | None = None

    def renamed(self, name: str | None) -> FrameworkModel:
        """The same export under another name (the cache is shared between names)."""
        if name is None or name == self.name:
            return self
        return FrameworkModel(
            model=self.model,
            name=name,
            kind=self.kind,
            path=self.path,
            size_bytes=self.size_bytes,
            complete=self.complete,
            warnings=self.warnings,
            source=self.source,
            framework=self.framework,
        )


class ExportCache:
    """The last few exports of each model, keyed by what was exported (shapes, a state stamp).

    Models are held weakly, so a freed model's entries go with it and an ``id`` is never
    mistaken for another model's. Objects that cannot be weakly referenced are not cached.
    """

    def __init__(self, per_model: int) -> None:
        self.per_model = per_model
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Any, OrderedDict[object, FrameworkModel]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, model: Any, key: object) -> FrameworkModel | None:
        with self._lock:
            try:
                entries = self._entries.get(model)
            except TypeError:
                return None
            if entries is None or key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, model: Any, key: object, loaded: FrameworkModel) -> None:
        with self._lock:
            try:
                entries = self._entries.setdefault(model, OrderedDict())
            except TypeError:
                return
            entries[key] = loaded
            while len(entries) > self.per_model:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, model: object) -> int:
        """How many exports of ``model`` are held."""
        with self._lock:
            try:
                return len(self._entries.get(model) or ())
            except TypeError:
                return 0
