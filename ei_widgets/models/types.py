"""The types model plug-ins and their users share: a loaded model, a listed one, a plug-in.

:class:`ModelKind` is what a plug-in is: how to recognise an object of its kind, load it into a
:class:`LoadedModel` (an ONNX graph the profiler reads), and list it for discovery as a
:class:`ModelEntry`. The ONNX kinds (``ei_widgets.models.onnx_kinds``) and the PyTorch and
scikit-learn
kinds (``ei_widgets.models.frameworks``) are all plug-ins; ``ei_widgets.models.loading`` keeps the
list.

This module imports nothing of ours but the exception family (``ei_widgets.errors``, a leaf), so
every plug-in and every user of plug-ins can import it without a cycle.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from ei_widgets.errors import ModelLoadError

DEFAULT_SEQ_LEN = 128
"""The sequence length a model with a sequence dimension is bound to unless another is asked."""

TOKEN_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids", "position_ids"})
"""Input names whose second axis is a transformer's sequence (Hugging Face's names)."""

MAX_SEQUENCE_KEY = "ei_widgets.max_sequence_length"
"""The ONNX metadata key under which an exporter notes the longest sequence a model takes (a
transformer's position table), when the framework says it."""


def max_sequence_length(model: onnx.ModelProto) -> int | None:
    """The longest sequence ``model`` takes, when its exporter noted it (else None)."""
    for prop in model.metadata_props:
        if prop.key == MAX_SEQUENCE_KEY and prop.value.isdigit():
            return int(prop.value)
    return None


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
class LoadedModel:
    """An ONNX graph ready to profile, and where it came from.

    ``model`` never holds external weight bytes. ``complete`` is False when only the inputs and
    outputs could be recovered (for example from an onnxruntime session that no longer holds its
    model); ``warnings`` then say what is missing. ``framework`` is set for models exported from
    PyTorch or scikit-learn: what the framework itself counts.
    """

    model: onnx.ModelProto
    name: str
    kind: str  # "onnx-model", "onnx-file", "onnx-bytes", "ort-session", "torch-module", ...
    path: pathlib.Path | None = None  # the file the model was read from, if any
    size_bytes: int = 0  # on disk or serialized, external data included
    complete: bool = True
    warnings: tuple[str, ...] = ()
    source: object = field(default=None, repr=False, compare=False)  # the object given
    # The serialized model when it was read from a small file or bytes, so that shape
    # inference can take it as is instead of serializing ``model`` once more.
    serialized: bytes | None = field(default=None, repr=False, compare=False)
    framework: FrameworkInfo | None = None

    @property
    def base_dir(self) -> pathlib.Path | None:
        """Directory external data locations are relative to."""
        return self.path.parent if self.path is not None else None

    def renamed(self, name: str | None) -> LoadedModel:
        """The same model under another name (a cached export is shared between names)."""
        if name is None or name == self.name:
            return self
        return dataclasses.replace(self, name=name)

    def ort_source(self) -> str | bytes:
        """What ``onnxruntime.InferenceSession`` needs to build a session: a path or bytes."""
        if self.path is not None:
            return os.fspath(self.path)
        if isinstance(self.source, bytes):
            return self.source
        if not self.complete:
            raise ModelLoadError(
                f"{self.name}: the model graph is not available; " + " ".join(self.warnings)
            )
        if has_external_data(self.model):
            raise ModelLoadError(
                f"{self.name}: the model keeps its weights in external files but no directory is "
                "known for them; save it and pass the path instead."
            )
        return self.model.SerializeToString()


def has_external_data(model: onnx.ModelProto) -> bool:
    """Whether any initializer keeps its bytes in an external file."""
    external = onnx.TensorProto.EXTERNAL
    return any(t.data_location == external for t in model.graph.initializer)


@dataclass(frozen=True)
class ModelEntry:
    """One model found in a namespace."""

    variable: str
    kind: str  # "onnx-model", "onnx-file", "ort-session", ...
    summary: str  # one short line for a list or a status bar
    size_bytes: int | None = None  # on disk or serialized, when known without reading


Matcher = Callable[[object], bool]
"""``matches(obj)``: cheap, imports nothing heavy (checks ``type(obj).__module__`` or
``sys.modules``)."""
Loader = Callable[..., LoadedModel]
"""``load(obj, name, **options) -> LoadedModel`` or raises ``ModelLoadError``; options are what
the caller of ``load_model`` (or ``profile``) passed, e.g. ``example_inputs`` for a torch module."""
Detector = Callable[[str, object], "ModelEntry | None"]
"""``detect(variable, obj)``: an entry when ``obj`` is a model of the kind, else None. Cheap
enough to run on a whole namespace after every notebook cell (never loads or exports)."""


@dataclass(frozen=True)
class ModelKind:
    """A plug-in: one kind of model object, how to recognise, load and list it.

    ``detect`` is None for kinds discovery does not list (serialized bytes, say).
    """

    kind: str
    matches: Matcher
    load: Loader
    detect: Detector | None = None
