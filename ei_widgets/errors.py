"""One exception family for everything a user can get wrong.

Every error subclasses :class:`EIError`, itself a :class:`ValueError`, so callers can catch the
whole family at once and a bad input never surfaces as a bare crash.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable


class EIError(ValueError):
    """Base class of every error ei_widgets raises on purpose."""


class ModelLoadError(EIError):
    """The object or file given is not a model we can read (missing, empty, corrupt, cyclic...)."""


class UnsupportedOpError(ModelLoadError):
    """A framework model uses ops its ONNX converter cannot convert; ``ops`` names them."""

    def __init__(self, message: str, ops: Iterable[str]) -> None:
        self.ops = tuple(ops)
        super().__init__(message)


class ProfileError(EIError):
    """The model was read but cannot be profiled as asked (absurd shapes, bad batch size...)."""


class UnknownNameError(EIError):
    """An accelerator, instance or other catalog name that does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        close = difflib.get_close_matches(name, self.valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"Unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(self.valid)}.")


class CatalogError(EIError):
    """The catalog data or a price override is invalid."""


class DoesNotFitError(EIError):
    """The model (at this batch and precision) needs more accelerator memory than there is."""


class NoAcceleratorError(EIError):
    """An accelerated call was made while no accelerator is attached."""


class LedgerError(EIError):
    """The usage ledger cannot be used as asked."""


MAX_INT64 = 2**63 - 1
"""The largest size ONNX, numpy and SQLite can hold: a batch or dimension above it is refused."""


def require_positive_int(value: object, what: str, error: type[EIError] = EIError) -> int:
    """``value`` as an int when it is a positive integer (numpy's included, bool not) no larger
    than ``MAX_INT64``; else ``error`` saying so. The one check for batch sizes, concurrency,
    counts and dimensions."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise error(f"{what} must be a positive integer, got {value!r}.")
    number = int(value)
    if number > MAX_INT64:
        raise error(f"{what} must be at most 2**63 - 1 ({MAX_INT64:,}), got {number:.3e}.")
    return number


class EndpointError(EIError):
    """A hosted endpoint cannot do what was asked (it refused a request, it is deleted, its server
    did not start...). ``status`` is the HTTP status when the server answered one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
