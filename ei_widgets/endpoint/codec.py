"""Request and response bodies of ``/invocations``, as SageMaker's inference containers take them.

Requests: ``application/x-npy`` (one array, for the model's first input; ``numpy.save`` bytes) or
``application/json`` (a nested list for the first input, or an object mapping input names to
nested lists). Responses: ``application/x-npy`` (the first output) or ``application/json``
(``{"outputs": {name: nested list}}``); ``Accept`` picks one, ``*/*`` or none answers in the
request's own type. Every problem is an :class:`InvocationError` carrying the HTTP status and the
SageMaker-like error code the server answers with.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "JSON",
    "MAX_PAYLOAD_BYTES",
    "NPY",
    "TOKEN_HEADER",
    "InputSpec",
    "InvocationError",
    "choose_accept",
    "decode",
    "encode",
    "error_body",
    "npy_bytes",
]

TOKEN_HEADER = "X-EI-Endpoint-Token"
"""The header every request must carry, holding the endpoint's token."""
NPY = "application/x-npy"
JSON = "application/json"
TYPES = (NPY, JSON)
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""SageMaker's limit on an InvokeEndpoint request's payload (6 MB)."""

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


class InvocationError(Exception):
    """A request the server refuses: ``status`` (4xx/5xx), ``code`` and a message that says what
    is wrong and what was expected."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(status: int, code: str, message: str) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps({"ErrorCode": code, "Message": message, "StatusCode": status}).encode()


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (None for a free dimension) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]

    @classmethod
    def from_ort(cls, node: Any) -> InputSpec:
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
        dtype = np.dtype(_ORT_DTYPES.get(node.type, np.float32))
        return cls(node.name, shape, dtype)

    def text(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"

    def example(self, batch: int = 1) -> np.ndarray:
        """Zeros of this input's shape (free dimensions: ``batch`` first, then 1)."""
        dims = [(batch if i == 0 else 1) if d is None else d for i, d in enumerate(self.shape)]
        return np.zeros(dims, dtype=self.dtype)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def choose_accept(accept: str | None, content_type: str) -> str:
    """The response type for an ``Accept`` header (``*/*`` or none: the request's own type)."""
    own = _media_type(content_type)
    if not accept or not accept.strip():
        return own
    for part in accept.split(","):
        wanted = _media_type(part)
        if wanted in TYPES:
            return wanted
        if wanted in ("*/*", "application/*"):
            return own
    raise InvocationError(
        406,
        "NotAcceptable",
        f"Accept {accept[:100]!r} is not supported: ask for {NPY} or {JSON}.",
    )


def _check(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    if array.dtype != spec.dtype:
        # JSON numbers arrive as float64 or int64: cast when the value is the same kind
        if array.dtype.kind == spec.dtype.kind or (
            array.dtype.kind in "iu" and spec.dtype.kind == "f"
        ):
            array = array.astype(spec.dtype)
        else:
            raise InvocationError(
                400,
                "ValidationError",
                f"input {spec.name!r} has dtype {array.dtype.name}; the model expects"
                f" {spec.text()}.",
            )
    if array.ndim != len(spec.shape) or any(
        want is not None and got != want for got, want in zip(array.shape, spec.shape, strict=False)
    ):
        raise InvocationError(
            400,
            "ValidationError",
            f"input {spec.name!r} has shape {list(array.shape)}; the model expects {spec.text()}.",
        )
    if array.ndim and array.shape[0] == 0:
        raise InvocationError(400, "ValidationError", f"input {spec.name!r} is empty.")
    return array


def _from_json(body: bytes, specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvocationError(400, "ValidationError", f"the body is not JSON: {exc}") from None
    if isinstance(data, dict) and set(data) == {"instances"}:  # TF Serving's form
        data = data["instances"]
    values: Mapping[str, Any] = data if isinstance(data, dict) else {specs[0].name: data}
    names = [s.name for s in specs]
    unknown = sorted(set(values) - set(names))
    missing = [n for n in names if n not in values]
    if unknown or missing:
        raise InvocationError(
            400,
            "ValidationError",
            f"the JSON names inputs {unknown} and lacks {missing}; the model expects"
            f" {'; '.join(s.text() for s in specs)}.",
        )
    feed = {}
    for spec in specs:
        try:
            array = np.asarray(values[spec.name])
        except (ValueError, TypeError) as exc:  # ragged lists
            raise InvocationError(
                400, "ValidationError", f"input {spec.name!r} is not a rectangular array: {exc}"
            ) from None
        if array.dtype.kind not in "biuf":
            raise InvocationError(
                400,
                "ValidationError",
                f"input {spec.name!r} holds {array.dtype.name} values; the model expects"
                f" {spec.text()}.",
            )
        feed[spec.name] = _check(array, spec)
    return feed


def decode(body: bytes, content_type: str | None, specs: Sequence[InputSpec]) -> dict[str, Any]:
    """The model's input feed from a request body, or an :class:`InvocationError`."""
    if len(body) > MAX_PAYLOAD_BYTES:
        raise InvocationError(
            413,
            "ValidationError",
            f"the payload is {len(body):,} bytes; SageMaker accepts at most"
            f" {MAX_PAYLOAD_BYTES:,} (6 MB): send a smaller batch.",
        )
    kind = _media_type(content_type)
    if kind == JSON:
        return _from_json(body, specs)
    if kind != NPY:
        raise InvocationError(
            415,
            "UnsupportedMediaType",
            f"Content-Type {str(content_type)[:100]!r} is not supported: send {NPY} or {JSON}.",
        )
    if len(specs) != 1:
        raise InvocationError(
            400,
            "ValidationError",
            f"the model has {len(specs)} inputs; {NPY} carries one array: send {JSON} with"
            f" {{name: values}} for {'; '.join(s.text() for s in specs)}.",
        )
    return {specs[0].name: _check(_npy_array(body), specs[0])}


_Header = tuple[tuple[int, ...], np.dtype[Any], bool]
_HEADERS: dict[bytes, _Header] = {}  # clients send the same shape again and again


def _npy_array(body: bytes) -> np.ndarray:
    """The array of a .npy body. Its header is parsed once per distinct header (numpy parses
    it with ``ast.literal_eval``, which costs more than the rest of a small request)."""
    try:
        if body[:6] != b"\x93NUMPY" or body[6] not in (1, 2, 3):
            raise ValueError("it does not start with the .npy magic bytes")
        size, start = (2, 10) if body[6] == 1 else (4, 12)
        end = start + int.from_bytes(body[8 : 8 + size], "little")
        key = body[:end]
        header = _HEADERS.get(key)
        if header is None:
            stream = io.BytesIO(body)
            fmt = np.lib.format
            version = fmt.read_magic(stream)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read(stream)
            if dtype.hasobject:
                raise ValueError("it holds Python objects")
            header = (tuple(shape), dtype, bool(fortran))
            if len(_HEADERS) < 64:
                _HEADERS[key] = header
        shape, dtype, fortran = header
        count = int(np.prod(shape, dtype=np.int64))
        if len(body) - end != count * dtype.itemsize:
            raise ValueError(f"{len(body) - end} data bytes for {count} x {dtype.name}")
        flat = np.frombuffer(body, dtype=dtype, count=count, offset=end)
        return flat.reshape(shape, order="F" if fortran else "C")
    except (ValueError, TypeError, SyntaxError, IndexError) as exc:
        raise InvocationError(
            400, "ValidationError", f"the body is not a .npy array: {exc}"[:300]
        ) from None


def encode(outputs: Sequence[Any], names: Sequence[str], accept: str) -> bytes:
    """A response body: the first output as .npy, or every output as JSON."""
    if accept == NPY:
        return npy_bytes(outputs[0])
    return json.dumps(
        {"outputs": {n: np.asarray(o).tolist() for n, o in zip(names, outputs, strict=True)}}
    ).encode()


_WRITTEN: dict[tuple[str, tuple[int, ...]], bytes] = {}


def npy_bytes(array: Any) -> bytes:
    """``array`` as .npy bytes, the header made once per dtype and shape."""
    data = np.ascontiguousarray(array)
    key = (data.dtype.str, data.shape)
    header = _WRITTEN.get(key)
    if header is not None:
        return header + data.tobytes()
    out = io.BytesIO()
    np.save(out, data, allow_pickle=False)
    saved = out.getvalue()
    if len(_WRITTEN) < 64:
        _WRITTEN[key] = saved[: len(saved) - data.nbytes]
    return saved
