"""What the PyTorch and scikit-learn plug-ins share: the optional extras and the export cache."""

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

TORCH_EXTRA = "ei_widgets[torch]"
SKLEARN_EXTRA = "ei_widgets[sklearn]"

# What each extra brings beyond the framework itself (which the model's existence proves).
_EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "onnxscript"),
    "sklearn": ("sklearn", "skl2onnx"),
}
_EXTRA_NAMES = {"torch": TORCH_EXTRA, "sklearn": SKLEARN_EXTRA}
_TITLES = {"torch": "PyTorch", "sklearn": "scikit-learn"}


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


def missing_requirements(framework: str) -> list[str]:
    """The modules of ``framework``'s extra that cannot be imported (empty when all are there)."""
    return [name for name in _EXTRA_MODULES[framework] if not module_available(name)]


def install_hint(framework: str, missing: list[str]) -> str:
    """One sentence: what is missing and which extra brings it."""
    extra = _EXTRA_NAMES[framework]
    return f"install {extra} to profile and run it (missing: {', '.join(missing)})"


def check_loadable(framework: str, label: str, options: Mapping[str, object]) -> None:
    """Refuse options the plug-in does not know, then a model whose extra is not installed."""
    title = _TITLES[framework]
    if options:
        raise ProfileError(
            f"{label}: unknown option(s) {', '.join(sorted(options))} for a {title} model; "
            "give example_inputs= or input_shape=."
        )
    missing = missing_requirements(framework)
    if missing:
        raise ModelLoadError(f"{label} is a {title} model: {install_hint(framework, missing)}.")


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
