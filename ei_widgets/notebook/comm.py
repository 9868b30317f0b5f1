"""The kernel half of the JupyterLab picker protocol (``docs/protocol.md``, version 1).

``%load_ext ei_widgets`` calls :func:`register`, which registers the comm target ``ei_widgets``
with the kernel's comm manager. The JupyterLab extension opens one comm per notebook on the
notebook's own kernel connection. Every message it sends is checked against the small schema
below and answered with a ``reply`` or an ``error``; nothing in a message is ever executed, only
compared against the catalog's names. Every change of the kernel's accelerator state (from the
picker, a magic or the dashboard) and a tick each second are pushed to every open comm as a
``state`` message. The state lists the models in the user's variables as ``%ei_status`` finds
them; ``set-model`` profiles one of them (by name among those found) to judge fits by it.

:class:`Handler` holds the protocol logic and works with any ``send`` function, so it is tested
without a kernel.
"""

from __future__ import annotations

import contextlib
import logging
import reprlib
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ei_widgets.billing import meters
from ei_widgets.device import accelerator
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import Catalog
from ei_widgets.device.judgement import judge_all
from ei_widgets.errors import EIError
from ei_widgets.models.discovery import find_models
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

log = logging.getLogger(__name__)

TARGET = "ei_widgets"
PROTOCOL_VERSION = 1
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 128
MAX_ERROR_LENGTH = 400  # an error text never carries more (a 5 MB field must not come back)
PUSH_INTERVAL_SECONDS = 1.0
COMPARISON_GPU = "ml.g4dn.xlarge"

Send = Callable[[dict[str, Any]], None]

# type -> (required fields besides v/type/id, optional fields)
_SCHEMA: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "get-state": (frozenset(), frozenset()),
    "attach": (frozenset({"accelerator"}), frozenset({"precision"})),
    "detach": (frozenset(), frozenset()),
    "set-instance": (frozenset({"instance"}), frozenset()),
    "set-model": (frozenset({"variable"}), frozenset()),
}
_PRECISIONS = ("fp32", "fp16")

# What an error may quote of the input: a short, escaped excerpt.
_ECHO = reprlib.Repr()
_ECHO.maxstring = 60
_ECHO.maxother = 60
_ECHO.maxlist = _ECHO.maxdict = _ECHO.maxtuple = _ECHO.maxset = 4
_ECHO.maxlevel = 2


class ProtocolError(EIError):
    """A comm message that does not follow the protocol."""


def _shown(value: Any) -> str:
    """A short, escaped excerpt of ``value`` for an error text (never the whole input)."""
    return _ECHO.repr(value)


def _sendable(text: str) -> bool:
    """True when ``text`` can travel in a message (UTF-8 has no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _capped(text: str) -> str:
    """An error text that can travel and is at most :data:`MAX_ERROR_LENGTH` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and _sendable(value)


def _request_id(data: Any) -> str | None:
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
            f"unsupported protocol version {_shown(version)}; "
            f"this kernel speaks version {PROTOCOL_VERSION}"
        )
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _SCHEMA:
        raise ProtocolError(
            f"unknown message type {_shown(kind)}; expected one of {', '.join(sorted(_SCHEMA))}"
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
        shown = ", ".join(_shown(k) for k in sorted(extra)[:5])
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise ProtocolError(f"unexpected field(s) in {kind!r}: {shown}{more}")
    message: dict[str, Any] = {"v": version, "type": kind, "id": request_id}
    if kind == "attach":
        message["accelerator"] = _name(data, "accelerator")
        if "precision" in data:
            precision = data["precision"]
            if not isinstance(precision, str) or precision not in _PRECISIONS:
                raise ProtocolError(f"'precision' must be one of {', '.join(_PRECISIONS)}")
            message["precision"] = precision
    elif kind == "set-instance":
        message["instance"] = _name(data, "instance")
    elif kind == "set-model":
        message["variable"] = _name(data, "variable", "the name of a model variable")
    return message


# ---------------------------------------------------------------------------------------------
# The STATE object

MAX_MODELS_LISTED = 50
_LISTING_FAILED = threading.Event()

# Per precision: fits, latency in ms, why it does not fit (or cannot be judged), memory needed.
_Judgement = tuple[bool | None, float | None, str | None, int | None]
_UNJUDGED: _Judgement = (None, None, None, None)


def _money(value: Decimal | float | int | None) -> float:
    return round(float(value or 0), 6)


def _gib(n_bytes: int | float | None) -> float | None:
    if n_bytes is None:
        return None
    return round(n_bytes / 2**30, 3)


def _instance_json(instance: Any) -> dict[str, Any]:
    return {
        "name": instance.name,
        "vcpus": instance.vcpus,
        "memory_gib": _gib(instance.memory_bytes),
        "price_per_hour": _money(instance.price_per_hour),
    }


class _FitCache:
    """Fit, latency and memory per accelerator and precision for one (model, instance, catalog)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._value: dict[str, dict[str, _Judgement]] = {}

    def get(self, st: accelerator.AcceleratorState) -> dict[str, dict[str, _Judgement]]:
        model = st.model
        catalog = st.catalog
        key = (
            None if model is None else (model[0], id(model[1])),
            st.instance.name,
            id(catalog),
        )
        with self._lock:
            if key == self._key:
                return self._value
        value: dict[str, dict[str, _Judgement]] = {}
        judged = None
        if model is not None:
            judged = judge_all(model[1], instance=st.instance, catalog=catalog).by_accelerator
        for name in catalog.accelerators:
            value[name] = {}
            for precision in _PRECISIONS:
                if judged is None:
                    value[name][precision] = _UNJUDGED
                    continue
                one = judged[name][precision]
                est = one.estimate
                if est is None:  # a model the estimate cannot judge: say why
                    value[name][precision] = (None, None, _capped(one.reason or ""), None)
                    continue
                value[name][precision] = (
                    bool(est.fits),
                    round(est.latency_ms, 4),
                    None if est.fits else _capped(one.reason or ""),
                    int(est.memory_needed_bytes),
                )
        with self._lock:
            self._key, self._value = key, value
        return value


def _judgement_json(judged: _Judgement) -> dict[str, Any]:
    fits, latency, reason, memory = judged
    return {"fits": fits, "latency_ms": latency, "reason": reason, "memory_bytes": memory}


def _comparison(catalog: Any, snapshot: meters.CostSnapshot | None) -> dict[str, Any] | None:
    if snapshot is not None and snapshot.comparison in catalog.instances:
        name = snapshot.comparison
        return {"name": name, "price_per_hour": _money(catalog.instances[name].price_per_hour)}
    gpus = list(catalog.gpu_instances())
    if not gpus:
        return None
    preferred = [g for g in gpus if g.name == COMPARISON_GPU]
    gpu = preferred[0] if preferred else min(gpus, key=lambda g: g.price_per_hour)
    return {"name": gpu.name, "price_per_hour": _money(gpu.price_per_hour)}


def _meter_snapshot() -> meters.CostSnapshot | None:
    meter = meters.meter()
    return meter.snapshot() if meter is not None else None


def _models_found(namespace: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The models in the user's variables, found as ``%ei_status`` does (cheap: no profile)."""
    if namespace is None:
        return []
    try:
        entries = find_models(namespace)
    except Exception:  # a broken listing must not take the rest of the state with it
        # Once only: the state is built every second.
        if not _LISTING_FAILED.is_set():
            _LISTING_FAILED.set()
            log.warning("ei_widgets: could not list the models in this kernel", exc_info=True)
        return []
    return [
        {"variable": entry.variable, "kind": entry.kind, "summary": entry.summary}
        for entry in entries[:MAX_MODELS_LISTED]
    ]


def _latency_accuracy(catalog: Catalog, profile: Profile | None) -> str | None:
    """How far the chosen model's modelled latencies can be trusted (its group's validated
    error, or unknown); without a model, the latency model's stated accuracy in general."""
    if catalog.validation is None:
        return None
    if profile is None:
        return catalog.validation.text
    return model_accuracy(profile, catalog=catalog).text


def build_state(
    st: accelerator.AcceleratorState | None = None,
    *,
    fits: _FitCache | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The STATE object of the protocol, for ``st`` (the kernel's state by default).

    ``namespace`` holds the user's variables: the models found there are listed.
    """
    st = st if st is not None else accelerator.state()
    catalog = st.catalog
    attachment = st.attachment
    table = (fits or _FitCache()).get(st)
    # The top-level fit and latency are at the attached precision (fp32 when none is attached);
    # "estimates" holds both precisions so a view can switch without asking.
    shown = attachment.precision if attachment is not None else "fp32"
    accelerators = []
    for name, acc in catalog.accelerators.items():
        judged = table.get(name, {})
        fit, latency, reason, _memory = judged.get(shown, _UNJUDGED)
        accelerators.append(
            {
                "name": name,
                "f32_tflops": acc.f32_tflops,
                "f16_tflops": acc.f16_tflops,
                "memory_gib": _gib(acc.memory_bytes),
                "price_per_hour": _money(acc.price_per_hour),
                "fits": fit,
                "latency_ms": latency,
                "reason": reason,
                "estimates": {p: _judgement_json(judged.get(p, _UNJUDGED)) for p in _PRECISIONS},
            }
        )
    snapshot = _meter_snapshot()
    if snapshot is not None:
        cost = {
            "rate_per_hour": _money(snapshot.rate_per_hour),
            "total": _money(snapshot.total),
            "instance": _money(snapshot.instance_cost),
            "accelerator": _money(snapshot.accelerator_cost),
            "metered": True,
        }
    else:
        rate = st.instance.price_per_hour + (
            attachment.accelerator.price_per_hour if attachment is not None else Decimal(0)
        )
        cost = {
            "rate_per_hour": _money(rate),
            "total": 0.0,
            "instance": 0.0,
            "accelerator": 0.0,
            "metered": False,
        }
    model = st.model
    return {
        "instance": _instance_json(st.instance),
        "attached": None
        if attachment is None
        else {
            "name": attachment.name,
            "precision": attachment.precision,
            "since": attachment.since.isoformat().replace("+00:00", "Z"),
        },
        "accelerators": accelerators,
        "instances": [_instance_json(i) for i in catalog.notebook_instances()],
        "comparison": _comparison(catalog, snapshot),
        "model": None if model is None else {"variable": model[0], "kind": model[1].kind},
        "models": _models_found(namespace),
        "latency_accuracy": _latency_accuracy(catalog, None if model is None else model[1]),
        "cost": cost,
    }


# ---------------------------------------------------------------------------------------------
# Handling messages


class Handler:
    """Answers one comm's messages: validate, apply to the state, reply or refuse.

    ``namespace`` is the user's variables: the models listed in the state are found there, and
    ``set-model`` profiles one of them.
    """

    def __init__(
        self,
        send: Send,
        st: accelerator.AcceleratorState | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
    ) -> None:
        self._send = send
        self._state = st
        self._namespace = namespace
        self._fits = _FitCache()

    @property
    def state(self) -> accelerator.AcceleratorState:
        return self._state if self._state is not None else accelerator.state()

    def build_state(self) -> dict[str, Any]:
        return build_state(self.state, fits=self._fits, namespace=self._namespace)

    def state_message(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "state", "state": self.build_state()}

    def push(self) -> None:
        """Send the current state (a ``state`` message)."""
        self._send(self.state_message())

    def handle(self, data: Any) -> dict[str, Any]:
        """Answer one message; returns the answer it sent. Never raises, always answers."""
        try:
            message = validate(data)
            self._apply(message)
            answer = {
                "v": PROTOCOL_VERSION,
                "type": "reply",
                "id": message["id"],
                "state": self.build_state(),
            }
        except EIError as exc:
            answer = self._error(data, str(exc))
        except Exception as exc:
            log.exception("ei_widgets: a comm message failed")
            answer = self._error(data, f"internal error: {type(exc).__name__}: {exc}")
        try:
            self._send(answer)
        except Exception as exc:
            # The answer could not travel (for example a text UTF-8 cannot carry): say so, so the
            # front end is not left waiting, and keep the kernel's stderr free of a traceback.
            log.warning("ei_widgets: could not send a comm answer: %s", _capped(repr(exc)))
            answer = self._error(data, "internal error: the answer could not be sent")
            with contextlib.suppress(Exception):
                self._send(answer)
        return answer

    def _error(self, data: Any, text: str) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "type": "error",
            "id": _request_id(data),
            "error": _capped(text),
        }

    def _apply(self, message: dict[str, Any]) -> None:
        st = self.state
        kind = message["type"]
        if kind == "attach":
            st.attach(message["accelerator"], precision=message.get("precision", "fp32"))
        elif kind == "detach":
            st.detach()
        elif kind == "set-instance":
            st.set_instance(message["instance"])
        elif kind == "set-model":
            self._set_model(message["variable"])

    def _set_model(self, variable: str) -> None:
        """Profile one of the models found in the user's variables and judge fits by it."""
        found = {entry.variable for entry in find_models(self._namespace or {})}
        if variable not in found:
            raise ProtocolError(
                f"no model variable {_shown(variable)} in this kernel; "
                f"models found: {', '.join(sorted(found)[:10]) or 'none'}"
            )
        assert self._namespace is not None
        self.state.set_model(variable, profile(self._namespace[variable]))


# ---------------------------------------------------------------------------------------------
# The kernel side: the comm target, pushes on change and each second


class _Connections:
    """The open comms of one kernel, the state subscription and the ticking thread."""

    def __init__(self, namespace: Mapping[str, Any] | None = None) -> None:
        self._namespace = namespace
        self._lock = threading.Lock()
        self._comms: dict[str, tuple[Any, Handler]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # comm target -------------------------------------------------------------------------

    def open(self, comm: Any, open_msg: dict[str, Any]) -> None:
        handler = Handler(lambda data: comm.send(data), namespace=self._namespace)
        comm_id = comm.comm_id

        def on_msg(msg: Mapping[str, Any]) -> None:
            handler.handle(_content_data(msg))  # never raises: every message is answered

        def on_close(msg: Mapping[str, Any]) -> None:
            with self._lock:
                self._comms.pop(comm_id, None)

        comm.on_msg(on_msg)
        comm.on_close(on_close)
        with self._lock:
            self._comms[comm_id] = (comm, handler)
        # The open message carries the first request (get-state with id "open").
        handler.handle(_content_data(open_msg))
        self._ensure_running()

    # pushes ------------------------------------------------------------------------------

    def _on_change(self, change: Any) -> None:
        # Called with the state's lock held: only wake the pusher.
        self._wake.set()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._unsubscribe is None:
                self._unsubscribe = accelerator.subscribe(self._on_change)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="ei_widgets-comm-push", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(PUSH_INTERVAL_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.push_all()

    def push_all(self) -> None:
        with self._lock:
            comms = list(self._comms.values())
        for _comm, handler in comms:
            try:
                handler.push()
            except Exception:
                log.exception("ei_widgets: could not push the state to a comm")

    def close_all(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            comms = list(self._comms.values())
            self._comms.clear()
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            thread, self._thread = self._thread, None
        if unsubscribe is not None:
            unsubscribe()
        for comm, _handler in comms:
            try:
                comm.close()
            except Exception:
                log.exception("ei_widgets: could not close a comm")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * PUSH_INTERVAL_SECONDS)


def _content_data(msg: Any) -> Any:
    """The ``data`` of a comm message's content (anything else becomes None, an error)."""
    if isinstance(msg, Mapping):
        content = msg.get("content")
        if isinstance(content, Mapping):
            return content.get("data")
    return None


_connections: _Connections | None = None


def register(ipython: Any = None) -> None:
    """Register the comm target ``ei_widgets`` with the kernel's comm manager."""
    global _connections
    import comm as comm_package

    if _connections is None:
        namespace = getattr(ipython, "user_ns", None)
        _connections = _Connections(namespace if isinstance(namespace, Mapping) else None)
    comm_package.get_comm_manager().register_target(TARGET, _connections.open)


def unregister(ipython: Any = None) -> None:
    """Remove the comm target and close the open comms (the front ends show "not loaded")."""
    global _connections
    import comm as comm_package

    manager = comm_package.get_comm_manager()
    if _connections is not None:
        with contextlib.suppress(KeyError, ValueError):
            manager.unregister_target(TARGET, _connections.open)
        _connections.close_all()
        _connections = None


def is_registered() -> bool:
    """True when the comm target is registered in this kernel."""
    import comm as comm_package

    return TARGET in getattr(comm_package.get_comm_manager(), "targets", {})
