"""ei_widgets: simulated Elastic Inference accelerators for Jupyter.

Inspect the model in your kernel, attach a simulated fraction of a GPU, run real inference with
simulated timing, and watch what it costs.

The public API is imported lazily so that ``import ei_widgets`` and ``%load_ext ei_widgets`` stay
fast: onnxruntime and the widget libraries load only when first used.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ei_widgets.extension import load_ipython_extension, unload_ipython_extension

try:
    __version__ = version("ei-widgets")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# public name -> module that defines it
_EXPORTS = {
    "EIError": "ei_widgets.errors",
    "find_models": "ei_widgets.discovery",
    "profile": "ei_widgets.profile",
    "demo_models": "ei_widgets.demo",
    "demo_model": "ei_widgets.demo",
    "default_catalog": "ei_widgets.catalog",
    "attach": "ei_widgets.accelerator",
    "detach": "ei_widgets.accelerator",
    "current": "ei_widgets.accelerator",
    "set_instance": "ei_widgets.accelerator",
    "estimate": "ei_widgets.estimate",
    "session": "ei_widgets.session",
    "recommend": "ei_widgets.sizing",
    "meter": "ei_widgets.billing",
    "usage": "ei_widgets.ledger",
    "dashboard": "ei_widgets.dashboard",
}

__all__ = [
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
    *_EXPORTS,
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ei_widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt front end (used by ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "ei-widgets"}]
