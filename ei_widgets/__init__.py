"""ei_widgets: simulated Elastic Inference accelerators for Jupyter.

Inspect the model in your kernel, attach a simulated fraction of a GPU, run real inference with
simulated timing, and watch what it costs. The public API is imported here, from the
packages that hold each concept (``models``, ``profiling``, ``device``, ``billing``; see
docs/architecture.md); the widgets load only when a dashboard is first shown, and onnxruntime
when a first session is made.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ei_widgets.billing.meters import meter
from ei_widgets.billing.usage import usage
from ei_widgets.device.accelerator import attach, current, detach, set_instance
from ei_widgets.device.catalog import default_catalog
from ei_widgets.device.fp16 import fp16_check
from ei_widgets.device.sessions import session
from ei_widgets.device.sizing import recommend
from ei_widgets.endpoint.predictor import deploy, endpoints
from ei_widgets.errors import EIError
from ei_widgets.models.demo import demo_model, demo_models
from ei_widgets.models.discovery import find_models
from ei_widgets.notebook.extension import load_ipython_extension, unload_ipython_extension
from ei_widgets.profiling.profiler import profile

try:
    __version__ = version("ei-widgets")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "EIError",
    "__version__",
    "attach",
    "current",
    "dashboard",
    "default_catalog",
    "demo_model",
    "demo_models",
    "deploy",
    "detach",
    "endpoints",
    "find_models",
    "fp16_check",
    "load_ipython_extension",
    "meter",
    "profile",
    "recommend",
    "session",
    "set_instance",
    "unload_ipython_extension",
    "usage",
]


def dashboard(namespace: dict[str, Any] | None = None) -> Any:
    """The notebook dashboard (models, inspector, picker, run, gauges, cost, sizing)."""
    from ei_widgets.notebook.views.dashboard import dashboard as make_dashboard

    return make_dashboard(namespace=namespace)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt front end (used by ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "ei-widgets"}]
