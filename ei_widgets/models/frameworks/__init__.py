"""PyTorch, TensorFlow/Keras and scikit-learn models as first-class models: recognised, exported to
ONNX, cached.

The rest of ei_widgets reads ONNX graphs. Each submodule exports one plug-in,
a :class:`~ei_widgets.models.types.ModelKind` named ``PLUGIN`` (kind, matches, load, detect), that
turns the framework models a kernel holds into ONNX in memory:

- ``torch.nn.Module`` (exported with ``torch.onnx.export``, the ``torch.export``-based exporter)
  and TorchScript modules (``torch.jit.script``/``torch.jit.trace``: the TorchScript-based
  exporter, the only one that reads them) -- see :mod:`ei_widgets.models.frameworks.torch`;
- fitted scikit-learn estimators and pipelines (through ``skl2onnx``) -- see
  :mod:`ei_widgets.models.frameworks.sklearn`;
- Keras models, ``tf.Module``s, ``tf.function``s and saved TensorFlow models (SavedModel folders,
  ``.keras``/``.h5`` files), converted with ``tf2onnx`` in a child process and cached in memory
  and on disk -- see :mod:`ei_widgets.models.frameworks.tensorflow`.

:data:`PLUGINS` lists them; ``ei_widgets.models.loading`` puts them after the ONNX kinds when it is
imported, and discovery and loading go through that one list.

Importing this package is cheap: it never imports torch, scikit-learn, skl2onnx, onnxscript,
TensorFlow or tf2onnx,
and of ei_widgets it imports only ``models.types``, ``models.dtypes`` and ``errors``. A torch
module can only exist if torch is already imported, so ``sys.modules`` tells what a kernel object
is without importing anything; nothing is exported until a model is profiled or run.

The optional requirements live in the extras ``ei_widgets[torch]``, ``ei_widgets[sklearn]`` and
``ei_widgets[tensorflow]``.
Without them, framework models are still recognised, with a reason that says which extra to
install, and loading them raises :class:`~ei_widgets.errors.ModelLoadError` with that reason.
"""

from __future__ import annotations

from ei_widgets.models.frameworks import sklearn, tensorflow, torch
from ei_widgets.models.types import ModelKind

__all__ = ["PLUGINS", "parse_input_shape"]

PLUGINS: tuple[ModelKind, ...] = (torch.PLUGIN, sklearn.PLUGIN, tensorflow.PLUGIN)
"""The framework kinds, in the order they are tried: a new framework is one module exporting its
``PLUGIN`` and one entry here."""


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
