"""PyTorch and scikit-learn models as first-class models: recognised, exported to ONNX, cached.

The rest of ei_widgets reads ONNX graphs. This package turns the framework models a kernel holds
into ONNX in memory, through the plug-in points of :mod:`ei_widgets.loaders`:

- ``torch.nn.Module`` (exported with ``torch.onnx.export``, the ``torch.export``-based exporter)
  and TorchScript modules (``torch.jit.script``/``torch.jit.trace``: the TorchScript-based
  exporter, the only one that reads them) -- see :mod:`ei_widgets.frameworks.torch`;
- fitted scikit-learn estimators and pipelines (through ``skl2onnx``) -- see
  :mod:`ei_widgets.frameworks.sklearn`.

Importing this package is cheap and imports no other ei_widgets module; it never imports torch,
scikit-learn, skl2onnx or onnxscript.
:func:`recognise` tells what a kernel object is from its type alone (a torch module can only
exist if torch is already imported, so ``sys.modules`` answers without importing anything), which
keeps discovery cheap; nothing is exported until a model is profiled or run.

The optional requirements live in the extras ``ei_widgets[torch]`` and ``ei_widgets[sklearn]``.
Without them, framework models are still recognised, with a reason that says which extra to
install, and loading them raises :class:`~ei_widgets.errors.ModelLoadError` with that reason.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

TORCH_EXTRA = "ei_widgets[torch]"
SKLEARN_EXTRA = "ei_widgets[sklearn]"

# What each extra brings beyond the framework itself (which the model's existence proves).
_EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "onnxscript"),
    "sklearn": ("sklearn", "skl2onnx"),
}
_EXTRA_NAMES = {"torch": TORCH_EXTRA, "sklearn": SKLEARN_EXTRA}


@dataclass(frozen=True)
class FrameworkInfo:
    """What the framework itself says about a model, besides its ONNX export.

    ``params`` is ``sum(p.numel() for p in module.parameters())`` for PyTorch (buffers such as
    BatchNorm running statistics are counted apart in ``buffers``); for scikit-learn it is the
    number of numbers in the fitted attributes (coefficients, tree thresholds, ...), and
    ``buffers`` is 0. The ONNX graph's own initializers can differ from both: the exporter folds
    constants (BatchNorm into Conv, for example) and adds small shape constants.
    """

    framework: str  # "torch" | "sklearn"
    kind: str  # "torch-module" | "torchscript-module" | "sklearn-estimator" | "sklearn-pipeline"
    class_name: str
    version: str  # the framework's version
    exporter: str  # which exporter produced the ONNX graph
    params: int
    param_bytes: int
    buffers: int = 0
    buffer_bytes: int = 0
    input_source: str = ""  # where the input shapes came from, in words


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


def parse_input_shape(text: str) -> tuple[int, ...] | list[tuple[int, ...]]:
    """An ``input_shape`` from a command line: ``1,3,224,224`` (or ``1x3x224x224``) for one input,
    shapes separated by ``;`` for several (``2,8;2,6``). Raises ``ValueError`` with the rule."""
    shapes: list[tuple[int, ...]] = []
    for part in text.replace(" ", "").split(";"):
        dims = [d for d in part.replace("x", ",").replace("(", "").replace(")", "").split(",") if d]
        try:
            shape = tuple(int(d) for d in dims)
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise ValueError(
                f"input shape {text!r}: give positive sizes such as 1,3,224,224 "
                "(several inputs separated by ';')."
            )
        shapes.append(shape)
    return shapes[0] if len(shapes) == 1 else shapes


def framework_of(obj: object) -> str | None:
    """``"torch"``, ``"sklearn"`` or None, from the object's type alone (imports nothing)."""
    # Imported here so that this package's own import stays free of both submodules' helpers.
    from ei_widgets.frameworks import sklearn as sk
    from ei_widgets.frameworks import torch as tm

    if tm.is_torch_model(obj):
        return "torch"
    if sk.is_sklearn_model(obj):
        return "sklearn"
    return None


def recognise(obj: object) -> Recognised | None:
    """Describe ``obj`` if it is a PyTorch or scikit-learn model, else None.

    Cheap: no export, no import of a framework that is not already imported. Unfitted
    scikit-learn estimators, classes (rather than instances) and scikit-learn objects that are
    neither predictors nor pipelines (a lone ``StandardScaler``, say) are not models: None.
    """
    from ei_widgets.frameworks import sklearn as sk
    from ei_widgets.frameworks import torch as tm

    if tm.is_torch_model(obj):
        return tm.recognise(obj)
    if sk.is_sklearn_model(obj):
        return sk.recognise(obj)
    return None


def register_loaders() -> None:
    """Teach :func:`ei_widgets.loaders.load_model` the PyTorch and scikit-learn kinds.

    Imports no framework; safe to call more than once (a kind registered again replaces itself).
    ``ei_widgets.loaders`` calls it at the end of its own import.
    """
    from ei_widgets.frameworks import sklearn as sk
    from ei_widgets.frameworks import torch as tm

    tm.register()
    sk.register()


def register_detectors() -> None:
    """Teach :func:`ei_widgets.discovery.find_models` to list PyTorch and scikit-learn models.

    Imports no framework; safe to call more than once. ``ei_widgets.discovery`` calls it at the
    end of its own import.
    """
    from ei_widgets.discovery import register_detector
    from ei_widgets.frameworks import sklearn as sk
    from ei_widgets.frameworks import torch as tm

    register_detector(tm.KIND_MODULE, tm.detect)
    register_detector(sk.KIND_ESTIMATOR, sk.detect)


def register() -> None:
    """Both :func:`register_loaders` and :func:`register_detectors`."""
    register_loaders()
    register_detectors()


def clear_cache() -> None:
    """Forget every cached export (they are also dropped when their model is garbage collected)."""
    from ei_widgets.frameworks import sklearn as sk
    from ei_widgets.frameworks import torch as tm

    tm.clear_cache()
    sk.clear_cache()


__all__ = [
    "SKLEARN_EXTRA",
    "TORCH_EXTRA",
    "FrameworkInfo",
    "Recognised",
    "clear_cache",
    "framework_of",
    "install_hint",
    "missing_requirements",
    "module_available",
    "parse_input_shape",
    "recognise",
    "register",
    "register_detectors",
    "register_loaders",
]
