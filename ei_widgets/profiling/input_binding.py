"""Binding a model's inputs to concrete shapes before it is profiled.

A batch size binds each input's batch dimension: a dimension named like a batch, or else the first
dimension when it is symbolic or unknown. A sequence length binds each input's sequence dimension:
a dimension named like a sequence (``sequence``, ``seq_len``, ``sequence_length``, ...), or else
the second dimension of a transformer's token inputs (``input_ids``, ``attention_mask``,
``token_type_ids``, ``position_ids``) when it is symbolic or unknown. ``input_shapes`` names an
input's full shape or a symbolic dimension's size and wins over both. What each symbolic dimension
was bound to is kept, so the same name can be bound wherever else it appears in the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

from ei_widgets.errors import ProfileError, require_positive_int
from ei_widgets.models.types import DEFAULT_SEQ_LEN, TOKEN_INPUTS
from ei_widgets.profiling.shape_inference import Dim, TypeInfo, concrete, format_shape, type_of

_SEQUENCE_NAMES = frozenset({"seq", "seqlen", "seq_len", "seq_length", "tokens", "num_tokens"})

InputShapes = Mapping[str, "Sequence[int] | int"]
"""An input name to its full shape, or a symbolic dimension name to a size."""


@dataclass
class InputBinding:
    """The inputs as declared and as bound, the batch applied, and the symbolic sizes used."""

    declared: dict[str, TypeInfo]
    bound: dict[str, TypeInfo]
    batch_size: int | None  # the batch the shapes were bound to, None if no batch dimension
    seq_len: int | None  # the sequence length bound (or fixed), None if no sequence dimension
    dim_values: dict[str, int]  # symbolic dimension name -> the size bound to it
    warnings: list[str] = field(default_factory=list)

    @property
    def all_concrete(self) -> bool:
        """Whether every input has a fully known shape."""
        return all(concrete(shape) is not None for _, shape in self.bound.values())


def bind_inputs(
    inputs: Iterable[onnx.ValueInfoProto],
    batch_size: int,
    requested: InputShapes,
    seq_len: int | None = None,
    default_seq_len: int = DEFAULT_SEQ_LEN,
) -> InputBinding:
    """Bind ``inputs`` (the real ones: no initializers) to ``batch_size``, ``seq_len`` and
    ``requested``. ``seq_len`` None binds a sequence dimension to ``default_seq_len``.

    Raises :class:`ProfileError` for a batch size, sequence length or requested shape that is not
    positive integers, that contradicts the model's fixed dimensions, or for a ``seq_len`` given
    for a model with no sequence dimension.
    """
    require_positive_int(batch_size, "batch_size", ProfileError)
    if seq_len is not None:
        require_positive_int(seq_len, "seq_len", ProfileError)
    declared = {v.name: type_of(v.type) for v in inputs}
    full, dims = _split_requested(declared, requested)
    batch_names = {
        d
        for _, shape in declared.values()
        for d in (shape or ())
        if isinstance(d, str) and _looks_like_batch(d)
    }
    seq_axes = sequence_axes(declared)
    seq_names = {d for d in seq_axes.values() if isinstance(d, str) and d}
    fixed_seq = {d for d in seq_axes.values() if isinstance(d, int) and d > 0}
    if not seq_axes:
        if seq_len is not None:
            raise ProfileError(
                f"seq_len={seq_len} was given, but this model has no sequence dimension (no "
                f"input named like {', '.join(sorted(TOKEN_INPUTS))}, no dimension named like "
                "'sequence'). Leave seq_len out; to bind another dimension give "
                "input_shapes={name: size}."
            )
    elif seq_len is not None and fixed_seq and not seq_names and seq_len not in fixed_seq:
        raise ProfileError(
            f"This model's sequence length is fixed at {min(fixed_seq)} tokens; seq_len={seq_len} "
            "cannot be applied. Profile it at its own length (leave seq_len out), or export it "
            "with a variable sequence axis."
        )
    length = default_seq_len if seq_len is None else seq_len
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
        seq_axis = 1 if name in seq_axes and not seq_names & set(_names(shape)) else None
        new, used = _bind_dims(shape, dims, batch_names, batch_size, seq_names, seq_axis, length)
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
    values = _dim_values(declared, bound)
    return InputBinding(
        declared, bound, batch, _seq_used(seq_axes, bound, values), values, warnings
    )


def sequence_axes(declared: Mapping[str, TypeInfo]) -> dict[str, Dim]:
    """The inputs that have a sequence dimension, each with that dimension as declared (a name,
    a fixed size, or "" / None when unknown).

    An input's sequence dimension is one named like a sequence, or else the second axis of a token
    input (:data:`TOKEN_INPUTS`).
    """
    found: dict[str, Dim] = {}
    for name, (_, shape) in declared.items():
        named = next(
            (d for d in shape or () if isinstance(d, str) and _looks_like_sequence(d)), None
        )
        if named is not None:
            found[name] = named
        elif name.lower() in TOKEN_INPUTS and shape is not None and len(shape) >= 2:
            found[name] = shape[1]
    return found


def sequence_is_variable(inputs: Iterable[onnx.ValueInfoProto]) -> bool:
    """Whether ``inputs`` have a sequence dimension that can be bound to any length."""
    axes = sequence_axes({v.name: type_of(v.type) for v in inputs})
    return any(not (isinstance(d, int) and d > 0) for d in axes.values())


def _names(shape: tuple[Dim, ...]) -> Iterable[str]:
    return (d for d in shape if isinstance(d, str))


def _seq_used(
    seq_axes: dict[str, Dim], bound: dict[str, TypeInfo], values: dict[str, int]
) -> int | None:
    """The sequence length the inputs were bound to (or fixed at), None without one."""
    for name, declared in seq_axes.items():
        if isinstance(declared, int) and declared > 0:
            return declared
        if isinstance(declared, str) and declared in values:
            return values[declared]
        shape = bound[name][1]
        if shape is not None and len(shape) >= 2 and isinstance(shape[1], int):
            return shape[1]
    return None


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
    shape: tuple[Dim, ...],
    dims: dict[str, int],
    batch_names: set[str],
    batch_size: int,
    seq_names: set[str],
    seq_axis: int | None,
    seq_len: int,
) -> tuple[tuple[Dim, ...], bool]:
    """The shape with requested, batch and sequence dimensions bound, and whether the batch was
    used. ``seq_axis`` is the axis of an unnamed sequence dimension (a token input's second)."""
    new: list[Dim] = []
    batched = False
    for axis, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            value: Dim = d
        elif isinstance(d, str) and d in dims:
            value = dims[d]
        elif (isinstance(d, str) and d in seq_names) or axis == seq_axis:
            value = seq_len
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


def _looks_like_sequence(dim: str) -> bool:
    low = dim.lower()
    return "sequence" in low or low in _SEQUENCE_NAMES


def _looks_like_batch(dim: str) -> bool:
    low = dim.lower()
    return "batch" in low or low in {"n", "b", "bs"}
