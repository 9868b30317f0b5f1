"""The kernel's one attached accelerator, its notebook instance and its model, with observers.

As on EI, a notebook instance has at most one accelerator. Attaching another replaces it; the
notice is the :class:`Change` every observer receives (``kind="attach"`` with ``previous`` set, and
``Change.notice`` saying what replaced what, which the views show), and the returned
:class:`Attachment` records what it replaced in ``replaced``.

Observers are called in the thread that made the change, in order, while the state's lock is held
(so they see changes in the order they happened and may read the state; they must not block). An
observer that raises is logged and skipped: a broken view cannot break the state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ei_widgets.common.callbacks import add_callback
from ei_widgets.device.catalog import Accelerator, Catalog, Instance, default_catalog
from ei_widgets.device.estimate import DEFAULT_HOST, check_fits, check_precision, estimate
from ei_widgets.profiling.result import Profile

log = logging.getLogger(__name__)

Observer = Callable[["Change"], None]
Guard = Callable[[Accelerator], None]  # raises EIError to refuse an attach


@dataclass(frozen=True)
class Attachment:
    """One attachment of an accelerator; a context manager that detaches on exit."""

    accelerator: Accelerator
    precision: str  # "fp32" | "fp16"
    since: datetime  # UTC
    since_monotonic: float
    replaced: Attachment | None = field(default=None, repr=False, compare=False)
    _state: AcceleratorState | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.accelerator.name

    def __enter__(self) -> Attachment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only undo our own attachment: if something replaced it meanwhile, leave that alone.
        if self._state is not None:
            self._state._detach_if(self)


@dataclass(frozen=True)
class Change:
    """What changed: ``kind`` is "attach", "detach", "instance" or "model"."""

    kind: str
    previous: Any
    current: Any

    @property
    def notice(self) -> str | None:
        """A sentence for the user when an attachment replaced another, else None."""
        if self.kind == "attach" and self.previous is not None and self.current is not None:
            return (
                f"{self.current.name} replaces {self.previous.name} "
                "(on Elastic Inference this took a stop and start of the notebook instance)."
            )
        return None


class AcceleratorState:
    """The attached accelerator, the notebook instance and the model in focus. Thread-safe."""

    def __init__(self, *, instance: str = DEFAULT_HOST, catalog: Catalog | None = None) -> None:
        self._catalog = catalog
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._guards: list[Guard] = []
        self.instance: Instance = self.catalog.notebook_instance(instance)
        self.attachment: Attachment | None = None
        self.model: tuple[str, Profile] | None = None

    @property
    def catalog(self) -> Catalog:
        return self._catalog or default_catalog()

    # --- changes -----------------------------------------------------------------------------

    def attach(
        self, name: str, *, instance: str | None = None, precision: str = "fp32"
    ) -> Attachment:
        """Attach accelerator ``name`` (replacing any other) and optionally change the instance.

        When a model is set, it must fit at its profiled batch, else ``DoesNotFitError``.
        """
        cat = self.catalog
        acc = cat.accelerator(name)
        precision = check_precision(precision)
        host = cat.notebook_instance(instance) if instance is not None else None
        with self._lock:
            for guard in list(self._guards):  # e.g. a spent budget that detaches
                guard(acc)
            if self.model is not None:
                profile = self.model[1]
                check_fits(
                    profile, estimate(profile, acc, precision=precision, catalog=cat), catalog=cat
                )
            if host is not None and host != self.instance:
                previous_instance, self.instance = self.instance, host
                self._emit(Change("instance", previous_instance, host))
            previous = self.attachment
            if previous is not None:
                # Keep one level of history: a chain of every attachment ever made would grow.
                object.__setattr__(previous, "replaced", None)
            self.attachment = Attachment(
                accelerator=acc,
                precision=precision,
                since=datetime.now(timezone.utc),
                since_monotonic=time.monotonic(),
                replaced=previous,
                _state=self,
            )
            change = Change("attach", previous, self.attachment)
            if change.notice:
                log.info(change.notice)
            self._emit(change)
            return self.attachment

    def detach(self) -> Attachment | None:
        """Detach the accelerator; returns what was attached (None if nothing was)."""
        with self._lock:
            previous = self.attachment
            if previous is None:
                return None
            self.attachment = None
            self._emit(Change("detach", previous, None))
            return previous

    def _detach_if(self, attachment: Attachment) -> None:
        with self._lock:
            if self.attachment is attachment:
                self.detach()

    def set_instance(self, name: str) -> Instance:
        """Change the notebook instance (the attachment, if any, stays)."""
        host = self.catalog.notebook_instance(name)
        with self._lock:
            previous = self.instance
            if host != previous:
                self.instance = host
                self._emit(Change("instance", previous, host))
            return host

    def set_model(self, label: str, profile: Profile | None) -> None:
        """Set (or clear, with ``profile=None``) the model the kernel works with."""
        with self._lock:
            previous = self.model
            self.model = (label, profile) if profile is not None else None
            self._emit(Change("model", previous, self.model))

    # --- observers ---------------------------------------------------------------------------

    def subscribe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback(change)`` on every change; returns a function that unsubscribes."""
        return add_callback(self._observers, callback, self._lock)

    def add_guard(self, guard: Guard) -> Callable[[], None]:
        """Call ``guard(accelerator)`` before every attach; an ``EIError`` it raises refuses the
        attach. Returns a function that removes the guard."""
        return add_callback(self._guards, guard, self._lock)

    def _emit(self, change: Change) -> None:
        for callback in list(self._observers):
            try:
                callback(change)
            except Exception:
                log.exception("an observer of the accelerator state failed")


_STATE: AcceleratorState | None = None
_STATE_LOCK = threading.Lock()


def state() -> AcceleratorState:
    """The kernel's one :class:`AcceleratorState`."""
    global _STATE
    if _STATE is None:
        with _STATE_LOCK:
            if _STATE is None:
                _STATE = AcceleratorState()
    return _STATE


def attach(name: str, *, instance: str | None = None, precision: str = "fp32") -> Attachment:
    """Attach accelerator ``name`` to the kernel, e.g. ``attach("ml.eia2.medium")``.

    Usable as a context manager: ``with attach("ml.eia2.large"): ...`` detaches on exit.
    """
    return state().attach(name, instance=instance, precision=precision)


def detach() -> Attachment | None:
    """Detach the kernel's accelerator."""
    return state().detach()


def current() -> Attachment | None:
    """What is attached now, or None."""
    return state().attachment


def set_instance(name: str) -> Instance:
    """Change the kernel's notebook instance type."""
    return state().set_instance(name)


def set_model(label: str, profile: Profile | None) -> None:
    """Set the model the kernel works with (views and fit checks use it)."""
    state().set_model(label, profile)


def subscribe(callback: Observer) -> Callable[[], None]:
    """Observe the kernel's accelerator state."""
    return state().subscribe(callback)
