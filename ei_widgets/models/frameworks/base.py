"""What every framework plug-in shares: its optional :class:`Extra`, how it is listed
(:class:`Recognised`) and the export cache."""

from __future__ import annotations

import importlib.util
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.models.types import LoadedModel


@dataclass(frozen=True)
class Recognised:
    """A framework model found in a namespace, as discovery lists it.

    ``ready`` is False when the model cannot be profiled yet; ``reason`` then says what to do
    ("install ei_widgets[torch]", how to give an input shape, "not fitted", ...).
    """

    framework: str
    kind: str
    class_name: str
    ready: bool
    reason: str = ""


def module_available(name: str) -> bool:
    """Whether ``import name`` would find a module, without importing it.

    A ``None`` entry in ``sys.modules`` (the standard way to block an import) counts as absent.
    """
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class Extra:
    """A framework's optional extra: what it is called, what a user installs and what it brings
    beyond the framework itself (which the model's existence proves). Each plug-in has one."""

    framework: str  # "torch": the name Recognised and the errors use
    title: str  # "PyTorch": how people call it
    modules: tuple[str, ...]  # what the extra brings: ("torch", "onnxscript")

    @property
    def name(self) -> str:
        """What to install: ``ei_widgets[torch]``."""
        return f"ei_widgets[{self.framework}]"

    def missing(self) -> list[str]:
        """The extra's modules that cannot be imported (empty when all are there)."""
        return [module for module in self.modules if not module_available(module)]

    def install_hint(self, missing: list[str]) -> str:
        """One sentence: what is missing and which extra brings it."""
        return f"install {self.name} to profile and run it (missing: {', '.join(missing)})"

    def check_loadable(self, label: str, options: Mapping[str, object]) -> None:
        """Refuse options the plug-in does not know, then a model whose extra is missing."""
        if options:
            raise ProfileError(
                f"{label}: unknown option(s) {', '.join(sorted(options))} for a {self.title} "
                "model; give example_inputs= or input_shape=."
            )
        missing = self.missing()
        if missing:
            raise ModelLoadError(f"{label} is a {self.title} model: {self.install_hint(missing)}.")


class ExportCache:
    """The last few exports of each model, keyed by what was exported (shapes, a state stamp).

    Models are held weakly, so a freed model's entries go with it and an ``id`` is never
    mistaken for another model's. Objects that cannot be weakly referenced are not cached.
    """

    def __init__(self, per_model: int) -> None:
        self.per_model = per_model
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Any, OrderedDict[object, LoadedModel]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, model: Any, key: object) -> LoadedModel | None:
        with self._lock:
            try:
                entries = self._entries.get(model)
            except TypeError:
                return None
            if entries is None or key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, model: Any, key: object, loaded: LoadedModel) -> None:
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
