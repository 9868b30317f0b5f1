"""The messages of the JupyterLab picker protocol (``docs/protocol.md``, version 1) and their
check: every message the front end sends is validated here against a small schema, and answered
with an error when it does not fit; nothing in a message is ever executed, only compared
against the catalog's names.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

from ei_widgets.errors import EIError

TARGET = "ei_widgets"
PROTOCOL_VERSION = 1
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 128
MAX_ERROR_LENGTH = 400  # an error text never carries more (a 5 MB field must not come back)
# Longer than any transformer's position table in use; a bigger length is a typo, and profiling
# at it would only take long to say so.
MAX_SEQ_LEN = 65_536

# type -> (required fields besides v/type/id, optional fields)
_SCHEMA: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "get-state": (frozenset(), frozenset()),
    "attach": (frozenset({"accelerator"}), frozenset({"precision"})),
    "detach": (frozenset(), frozenset()),
    "set-instance": (frozenset({"instance"}), frozenset()),
    "set-model": (frozenset({"variable"}), frozenset()),
    "set-seq-len": (frozenset({"seq_len"}), frozenset()),
}
PRECISIONS = ("fp32", "fp16")

# What an error may quote of the input: a short, escaped excerpt.
_ECHO = reprlib.Repr()
_ECHO.maxstring = 60
_ECHO.maxother = 60
_ECHO.maxlist = _ECHO.maxdict = _ECHO.maxtuple = _ECHO.maxset = 4
_ECHO.maxlevel = 2


class ProtocolError(EIError):
    """A comm message that does not follow the protocol."""


def excerpt(value: Any) -> str:
    """A short, escaped excerpt of ``value`` for an error text (never the whole input)."""
    return _ECHO.repr(value)


def _sendable(text: str) -> bool:
    """True when ``text`` can travel in a message (UTF-8 has no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def capped(text: str) -> str:
    """An error text that can travel and is at most :data:`MAX_ERROR_LENGTH` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and _sendable(value)


def request_id(data: Any) -> str | None:
    """The message's id when it is a valid one (to echo it in an error), else None."""
    if isinstance(data, Mapping):
        value = data.get("id")
        if _valid_id(value):
            return str(value)
    return None


def _name(data: Mapping[str, Any], key: str, what: str = "a catalog name") -> str:
    value = data[key]
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_NAME_LENGTH
        or not _sendable(value)
    ):
        raise ProtocolError(
            f"{key!r} must be {what} (a string of 1 to {MAX_NAME_LENGTH} characters)"
        )
    return value


def validate(data: Any) -> dict[str, Any]:
    """Check one front end → kernel message; return it, or raise :class:`ProtocolError`."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"a message must be a JSON object, not {type(data).__name__}")
    version = data.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"unsupported protocol version {excerpt(version)}; "
            f"this kernel speaks version {PROTOCOL_VERSION}"
        )
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _SCHEMA:
        raise ProtocolError(
            f"unknown message type {excerpt(kind)}; expected one of {', '.join(sorted(_SCHEMA))}"
        )
    request_id = data.get("id")
    if not _valid_id(request_id):
        # An id that UTF-8 cannot carry (a lone surrogate) could never come back in the answer.
        raise ProtocolError(
            f"'id' must be a string of 1 to {MAX_ID_LENGTH} characters of valid Unicode text"
        )
    required, optional = _SCHEMA[kind]
    keys = set(data)
    if not all(isinstance(k, str) for k in keys):
        raise ProtocolError("field names must be strings")
    missing = required - keys
    if missing:
        raise ProtocolError(f"{kind!r} needs {', '.join(sorted(missing))}")
    extra = keys - required - optional - {"v", "type", "id"}
    if extra:
        shown = ", ".join(excerpt(k) for k in sorted(extra)[:5])
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise ProtocolError(f"unexpected field(s) in {kind!r}: {shown}{more}")
    message: dict[str, Any] = {"v": version, "type": kind, "id": request_id}
    if kind == "attach":
        message["accelerator"] = _name(data, "accelerator")
        if "precision" in data:
            precision = data["precision"]
            if not isinstance(precision, str) or precision not in PRECISIONS:
                raise ProtocolError(f"'precision' must be one of {', '.join(PRECISIONS)}")
            message["precision"] = precision
    elif kind == "set-instance":
        message["instance"] = _name(data, "instance")
    elif kind == "set-model":
        message["variable"] = _name(data, "variable", "the name of a model variable")
    elif kind == "set-seq-len":
        seq_len = data["seq_len"]
        # bool is an int in Python but not a length; a float such as 128.0 is not sent by the picker
        if type(seq_len) is not int or not 0 < seq_len <= MAX_SEQ_LEN:
            raise ProtocolError(
                f"'seq_len' must be a whole number of tokens from 1 to {MAX_SEQ_LEN:,}, "
                f"not {excerpt(seq_len)}"
            )
        message["seq_len"] = seq_len
    return message
