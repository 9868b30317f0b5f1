"""Binding a model's inputs to concrete shapes before it is profiled.

A batch size binds each input's batch dimension: a dimension named like a batch, or else the first
dimension when it is symbolic or unknown. ``input_shapes`` names an input's full shape or a
symbolic dimension's size and wins over the batch size. What each symbolic dimension was bound to
is kept, so the same name can be bound wherever else it appears in the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

from ei_widgets.errors import ProfileError, require_positive_int
from ei_widgets.profiling.shape_inference import Dim, TypeInfo, concrete, format_shape, type_of

InputShapes = Mapping[str, "Sequence[int] | int"]
"""An input name to its full shape, or a symbolic dimension name to a size."""


@dataclass
class InputBinding:
    """The inputs as declared and as bound, the batch applied, and the symbolic sizes used."""

    declared: dict[str, TypeInfo]
    bound: dict[str, TypeInfo]
    batch_size: int | None  # the batch the shapes were bound to, None if no batch dimension
    dim_values: dict[str, int]  # symbolic dimension name -> the size bound to it
    warnings: list[str] = field(default_factory=list)

    @property
    def all_concrete(self) -> bool:
        """Whether every input has a fully known shape."""
        return all(concrete(shape) is not None for _, shape in self.bound.values())


def bind_inputs(
    inputs: Iterable[onnx.ValueInfoProto], batch_size: int, requested: InputShapes
) -> InputBinding:
    """Bind ``inputs`` (the real ones: no initializers) to ``batch_size`` and ``requested``.

    Raises :class:`ProfileError` for a batch size or requested shape that is not positive
    integers, or that contradicts the model's fixed dimensions.
    """
    require_positive_int(batch_size, "batch_size", ProfileError)
    declared = {v.name: type_of(v.type) for v in inputs}
    full, dims = _split_requested(declared, requested)
    batch_names = {
        d
        for _, shape in declared.values()
        for d in (shape or ())
        if isinstance(d, str) and _looks_like_batch(d)
    }
    bound: dict[str, TypeInfo] = {}
    batched = False  # whether any input took the batch size
    unbound: set[str] = set()
    for name, (elem, shape) in declared.items():
        if name in full:
            bound[name] = (elem, _explicit(name, shape, full[name]))
            continue
        if shape is None:
            bound[name] = (elem, None)
            unbound.add(f"the rank of {name!r}")
            continue
        new, used = _bind_dims(shape, dims, batch_names, batch_size)
        batched = batched or used
        unbound.update(
            f"{d!r} of {name!r}" if d else f"axis {i} of {name!r}"
            for i, d in enumerate(new)
            if not isinstance(d, int)
        )
        bound[name] = (elem, new)
    warnings: list[str] = []
    if unbound:
        warnings.append(
            "Unbound input dimensions: " + ", ".join(sorted(unbound)) + ". Costs that depend "
            "on them are unknown; pass input_shapes={name: size} to bind them."
        )
    batch = _batch_used(bound, batched, batch_size, warnings)
    return InputBinding(declared, bound, batch, _dim_values(declared, bound), warnings)


def _dim_values(declared: dict[str, TypeInfo], bound: dict[str, TypeInfo]) -> dict[str, int]:
    """What each symbolic input dimension was bound to, to bind it elsewhere too (in value_info
    an exporter wrote, or in what onnxruntime's inference returns)."""
    values: dict[str, int] = {}
    for name, (_, shape) in declared.items():
        new = bound[name][1]
        if shape is None or new is None or len(shape) != len(new):
            continue
        for old_dim, new_dim in zip(shape, new, strict=True):
            if isinstance(old_dim, str) and isinstance(new_dim, int):
                values[old_dim] = new_dim
    return values


def _split_requested(
    declared: dict[str, TypeInfo], requested: InputShapes
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    names = {d for _, s in declared.values() for d in (s or ()) if isinstance(d, str)}
    full: dict[str, tuple[int, ...]] = {}
    dims: dict[str, int] = {}
    for key, value in requested.items():
        if isinstance(value, int) and not isinstance(value, bool):
            if key not in names:
                raise ProfileError(
                    f"input_shapes names {key!r}, which is neither an input nor a symbolic "
                    f"dimension. Inputs: {sorted(declared)}; dimensions: {sorted(names)}."
                )
            dims[key] = require_positive_int(value, f"Dimension {key!r}", ProfileError)
        elif key in declared and isinstance(value, Sequence) and not isinstance(value, str):
            full[key] = tuple(
                require_positive_int(d, f"Each dimension of {key!r}", ProfileError) for d in value
            )
        else:
            raise ProfileError(
                f"input_shapes[{key!r}] must be a shape for an input or a size for a symbolic "
                f"dimension. Inputs: {sorted(declared)}; dimensions: {sorted(names)}."
            )
    return full, dims


def _explicit(
    name: str, declared: tuple[Dim, ...] | None, given: tuple[int, ...]
) -> tuple[Dim, ...]:
    if declared is not None and len(declared) != len(given):
        raise ProfileError(
            f"Input {name!r} has rank {len(declared)} ({format_shape(declared)}); the shape "
            f"given, {given}, has rank {len(given)}."
        )
    for want, got in zip(declared or (), given, strict=False):
        if isinstance(want, int) and want > 0 and want != got:
            raise ProfileError(
                f"Input {name!r} has a fixed shape {format_shape(declared)}; {given} does "
                "not match it."
            )
    return given


def _bind_dims(
    shape: tuple[Dim, ...], dims: dict[str, int], batch_names: set[str], batch_size: int
) -> tuple[tuple[Dim, ...], bool]:
    """The shape with requested and batch dimensions bound, and whether the batch was used."""
    new: list[Dim] = []
    batched = False
    for axis, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            value: Dim = d
        elif isinstance(d, str) and d in dims:
            value = dims[d]
        elif (isinstance(d, str) and d in batch_names) or (axis == 0 and not batch_names):
            value = batch_size
            batched = True
        else:
            value = d
        new.append(value)
    return tuple(new), batched


def _batch_used(
    bound: dict[str, TypeInfo], batched: bool, batch_size: int, warnings: list[str]
) -> int | None:
    """The batch size the profile reports: the one applied, or else the inputs' one fixed
    first dimension (with a warning when it differs from the one asked for)."""
    if batched:
        return batch_size
    firsts = {s[0] for _, s in bound.values() if s and isinstance(s[0], int)}
    if len(firsts) == 1:
        fixed = next(iter(firsts))
        if fixed != batch_size:
            warnings.append(
                f"The model's inputs have a fixed batch of {fixed}; batch_size={batch_size} was "
                "not applied."
            )
        return fixed
    return None


def _looks_like_batch(dim: str) -> bool:
    low = dim.lower()
    return "batch" in low or low in {"n", "b", "bs"}
