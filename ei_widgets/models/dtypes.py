"""ONNX element types: their numpy-style names and their sizes, read from onnx's own tables.

The one home for "what is element type 16 called, and how many bits does it take": built at
import from ``onnx.helper.get_all_tensor_dtypes`` and ``onnx.helper.tensor_dtype_to_np_dtype``,
so a type onnx adds is known here too. Sub-byte types (int4, uint4, float4, int2, float6) take
their real width from ``ml_dtypes`` (onnx's own dependency for them): a tensor of 4-bit elements
takes half a byte per element, rounded up once per tensor. This module imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import onnx

_T = onnx.TensorProto


def _bits(dtype: np.dtype[np.generic]) -> int:
    """Bits per element: ml_dtypes' own width for its types (some are narrower than a byte)."""
    if dtype.type.__module__.startswith("ml_dtypes"):
        import ml_dtypes  # installed: the dtype came from it

        try:
            return int(ml_dtypes.finfo(dtype).bits)
        except ValueError:
            return int(ml_dtypes.iinfo(dtype).bits)
    return dtype.itemsize * 8


def _tables() -> tuple[dict[int, str], dict[int, int]]:
    names: dict[int, str] = {_T.UNDEFINED: "undefined", _T.STRING: "string"}  # no fixed size
    bits: dict[int, int] = {}
    for elem in onnx.helper.get_all_tensor_dtypes():
        if elem in names:
            continue
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem))
        names[elem] = dtype.name
        bits[elem] = _bits(dtype)
    return names, bits


_NAMES, _BITS = _tables()
DTYPE_NAMES: Mapping[int, str] = MappingProxyType(_NAMES)
"""Element type -> numpy-style name: ``1 -> "float32"``, ``16 -> "bfloat16"``, ``22 -> "int4"``;
``"string"`` and ``"undefined"`` for the types numpy has no name for."""
ELEMENT_BITS: Mapping[int, int] = MappingProxyType(_BITS)
"""Element type -> bits per element (strings and undefined have no fixed size: absent)."""
_BY_NAME: dict[str, int] = {name: elem for elem, name in _NAMES.items()}


def dtype_name(elem: int) -> str:
    """The numpy-style name of an ONNX element type (``type<N>`` for one onnx does not know)."""
    return _NAMES.get(elem, f"type{elem}")


def element_type(name: str) -> int:
    """The ONNX element type of a numpy-style name (``UNDEFINED``, 0, for an unknown name)."""
    return _BY_NAME.get(name, _T.UNDEFINED)


def element_bits(elem: int) -> int | None:
    """Bits per element of an ONNX element type; None for strings and unknown types."""
    return _BITS.get(elem)


def nbytes(elem: int, count: int, *, unknown_bits: int = 8) -> int:
    """Bytes of ``count`` elements of type ``elem``, rounded up once per tensor (two int4 take
    one byte); a type without a fixed size counts ``unknown_bits`` per element."""
    return (count * _BITS.get(elem, unknown_bits) + 7) // 8


def nbytes_of(name: str, count: int, *, unknown_bits: int = 8) -> int:
    """:func:`nbytes` for a numpy-style dtype name (as
    :class:`~ei_widgets.profiling.profiler.TensorInfo`
    and ``ParamGroup`` hold them): ``nbytes_of("int4", 3) == 2``."""
    return (count * _BITS.get(_BY_NAME.get(name, -1), unknown_bits) + 7) // 8


def ort_element_type(text: str) -> int:
    """The element type of an onnxruntime type string (``"tensor(float16)"`` -> ``FLOAT16``);
    ``UNDEFINED`` for anything else (sequences, maps, unknown names)."""
    if not (text.startswith("tensor(") and text.endswith(")")):
        return _T.UNDEFINED
    try:
        return int(_T.DataType.Value(text[7:-1].upper()))
    except ValueError:
        return _T.UNDEFINED
