"""The kernel half of the JupyterLab picker protocol (``docs/protocol.md``, version 1).

``%load_ext ei_widgets`` calls :func:`register`, which registers the comm target ``ei_widgets``
with the kernel's comm manager. The JupyterLab extension opens one comm per notebook on the
notebook's own kernel connection. Every message it sends is checked (``protocol``) and answered
with a ``reply`` or an ``error``; nothing in a message is ever executed, only compared against
the catalog's names. Every change of the kernel's accelerator state (from the
picker, a magic or the dashboard) and a tick each second are pushed to every open comm as a
``state`` message (``picker_state``). The state lists the models in the user's variables as
``%ei_status`` finds them; ``set-model`` profiles one of them (by name among those found) to
judge fits by it, and ``set-seq-len`` profiles the judged transformer again at another length.
Both are answered at once: the profile is made in a background thread (``picker_profiling``), so a
Keras model's conversion never blocks the kernel, and its end is pushed.

:class:`Handler` holds the protocol logic and works with any ``send`` function, so it is tested
without a kernel.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ei_widgets.device import accelerator
from ei_widgets.device.sequence import check_length
from ei_widgets.errors import EIError
from ei_widgets.models.discovery import find_models
from ei_widgets.notebook.picker_profiling import ModelProfiler
from ei_widgets.notebook.picker_state import FitCache, build_state
from ei_widgets.notebook.protocol import (
    PROTOCOL_VERSION,
    TARGET,
    ProtocolError,
    capped,
    excerpt,
    request_id,
    validate,
)

log = logging.getLogger(__name__)

PUSH_INTERVAL_SECONDS = 1.0

Send = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------------------------------------
# Handling messages


class Handler:
    """Answers one comm's messages: validate, apply to the state, reply or refuse.

    ``namespace`` is the user's variables: the models listed in the state are found there, and
    ``set-model`` profiles one of them. ``profiler`` makes those profiles in the background; the
    kernel's comms share one (one model is judged per kernel), and by default a handler has its
    own, which pushes to ``send`` as the job goes.
    """

    def __init__(
        self,
        send: Send,
        st: accelerator.AcceleratorState | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
        profiler: ModelProfiler | None = None,
    ) -> None:
        self._send = send
        self._state = st
        self._namespace = namespace
        self._fits = FitCache()
        self.profiler = profiler if profiler is not None else ModelProfiler(self._push_quietly)

    @property
    def state(self) -> accelerator.AcceleratorState:
        return self._state if self._state is not None else accelerator.state()

    def build_state(self) -> dict[str, Any]:
        st = self.state
        return build_state(
            st, fits=self._fits, namespace=self._namespace, profiling=self.profiler.snapshot(st)
        )

    def state_message(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "state", "state": self.build_state()}

    def push(self) -> None:
        """Send the current state (a ``state`` message)."""
        self._send(self.state_message())

    def _push_quietly(self) -> None:
        # From the profiling thread: a failed push must not end it.
        try:
            self.push()
        except Exception:
            log.exception("ei_widgets: could not push the state to a comm")

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
            log.warning("ei_widgets: could not send a comm answer: %s", capped(repr(exc)))
            answer = self._error(data, "internal error: the answer could not be sent")
            with contextlib.suppress(Exception):
                self._send(answer)
        return answer

    def _error(self, data: Any, text: str) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "type": "error",
            "id": request_id(data),
            "error": capped(text),
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
        elif kind == "set-seq-len":
            self._set_seq_len(message["seq_len"])

    def _model_variable(self, variable: str) -> Any:
        """The model ``variable`` holds, when it is one of those found in the user's variables."""
        found = {entry.variable for entry in find_models(self._namespace or {})}
        if variable not in found:
            raise ProtocolError(
                f"no model variable {excerpt(variable)} in this kernel; "
                f"models found: {', '.join(sorted(found)[:10]) or 'none'}"
            )
        assert self._namespace is not None
        return self._namespace[variable]

    def _set_model(self, variable: str) -> None:
        """Start profiling one of the models found in the user's variables, to judge fits by it
        (the reply shows it as being profiled; the end is pushed)."""
        self.profiler.start(self.state, variable, self._model_variable(variable))

    def _set_seq_len(self, seq_len: int) -> None:
        """Start profiling the judged model again at ``seq_len`` tokens (it must have a sequence
        dimension that takes that length; checked at once)."""
        st = self.state
        judged = st.model
        if judged is None:
            raise ProtocolError("no model is judged yet: choose one before its sequence length")
        variable, current = judged
        check_length(current, seq_len)
        self.profiler.start(st, variable, self._model_variable(variable), seq_len)


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
        # One model is judged per kernel: every comm sees (and supersedes) the same job.
        self._profiler = ModelProfiler(self._wake.set)

    # comm target -------------------------------------------------------------------------

    def open(self, comm: Any, open_msg: dict[str, Any]) -> None:
        handler = Handler(
            lambda data: comm.send(data), namespace=self._namespace, profiler=self._profiler
        )
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
