"""Turn the model objects a kernel holds into the one form the profiler reads: a
:class:`~ei_widgets.models.types.LoadedModel`.

The kinds of model are plug-ins (:class:`~ei_widgets.models.types.ModelKind`), kept in one list
that :func:`load_model` and ``ei_widgets.models.discovery`` both walk, first match first: the ONNX
kinds
(``ModelProto``, a path to an ``.onnx`` file, serialized bytes, an onnxruntime session; see
``ei_widgets.models.onnx_kinds``), then PyTorch and scikit-learn
(``ei_widgets.models.frameworks``). The list is
complete once this module is imported. More kinds are added with :func:`register_kind`, the one
registration path.
"""

from __future__ import annotations

from ei_widgets.errors import ModelLoadError
from ei_widgets.models import frameworks
from ei_widgets.models.onnx_kinds import ONNX_KINDS, is_ort_session, serialized_size
from ei_widgets.models.types import LoadedModel, ModelKind, has_external_data

_KINDS: list[ModelKind] = [*ONNX_KINDS, *frameworks.PLUGINS]


def register_kind(plugin: ModelKind, *, first: bool = False) -> None:
    """Teach :func:`load_model` (and, when ``plugin.detect`` is set, discovery) a kind of model.

    A kind registered again replaces the old one in place; ``first=True`` puts it before every
    other kind (to win over the built-in ones).
    """
    at = next((i for i, k in enumerate(_KINDS) if k.kind == plugin.kind), None)
    if at is not None and not first:
        _KINDS[at] = plugin
        return
    unregister_kind(plugin.kind)
    if first:
        _KINDS.insert(0, plugin)
    else:
        _KINDS.append(plugin)


def unregister_kind(kind: str) -> None:
    """Forget a kind (no error if unknown)."""
    _KINDS[:] = [k for k in _KINDS if k.kind != kind]


def model_kinds() -> tuple[ModelKind, ...]:
    """Every kind, in the order they are tried."""
    return tuple(_KINDS)


def registered_kinds() -> list[str]:
    """The names of the kinds :func:`load_model` understands, in the order they are tried."""
    return [k.kind for k in _KINDS]


def load_model(obj: object, name: str | None = None, **options: object) -> LoadedModel:
    """Read ``obj`` into a :class:`LoadedModel`, or raise :class:`ModelLoadError`.

    ``options`` go to the loader of ``obj``'s kind (``example_inputs=`` for a PyTorch module, for
    instance); the ONNX kinds take none.
    """
    if isinstance(obj, LoadedModel):
        if options:
            raise ModelLoadError(
                f"{', '.join(sorted(options))} cannot be used with an already loaded model: an "
                "ONNX graph already says its inputs (use input_shapes= to bind their sizes)."
            )
        return obj
    for plugin in _KINDS:
        if plugin.matches(obj):
            return plugin.load(obj, name, **options)
    kinds = ", ".join(registered_kinds())
    raise ModelLoadError(
        f"Cannot read a model from a {type(obj).__name__} object (known: {kinds})."
    )


__all__ = [
    "LoadedModel",
    "ModelKind",
    "has_external_data",
    "is_ort_session",
    "load_model",
    "model_kinds",
    "register_kind",
    "registered_kinds",
    "serialized_size",
    "unregister_kind",
]
