"""The endpoint's server: a child process speaking the SageMaker inference container contract.

    python -m ei_widgets.endpoint.server      # reads one JSON line of ServerConfig on stdin

- ``GET /ping``: 200 once the model is loaded (after its modelled load time), 503 before;
- ``POST /invocations``: real onnxruntime outputs, answered after the modelled latency of the
  instance (+ accelerator) that served them (:mod:`ei_widgets.endpoint.queueing`);
- ``GET /ei/status?since=T``: the per-second metrics from second ``T`` on and the endpoint's state,
  for the kernel that owns it (not part of SageMaker's contract).

Tornado (installed with Jupyter) on 127.0.0.1 at a free port. Every request must carry the
endpoint's token in ``X-EI-Endpoint-Token`` (401 without it, 403 with a wrong one): the token comes
on stdin, never on the command line, where any user of the machine could read it. Errors are JSON
(``ErrorCode``, ``Message``); an exception in a request is answered with a 500 and the server goes
on. The server watches the process that started it and exits within a second when it is gone.

On stdout, one JSON line when listening (``{"port": ..}``), then one when the model is loaded
(``{"ready": true, ..}``) or failed (``{"error": .., "type": ..}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
import time
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from ei_widgets.endpoint.cloudwatch import Recorder
from ei_widgets.endpoint.codec import (
    MAX_PAYLOAD_BYTES,
    TOKEN_HEADER,
    InvocationError,
    choose_accept,
    decode,
    encode,
    error_body,
)
from ei_widgets.endpoint.config import ServerConfig
from ei_widgets.endpoint.queueing import HostedModel, Scheduler

__all__ = ["main", "serve"]

# Bodies up to this size are read and answered with a JSON 413; beyond it tornado drops the
# connection without reading (a client sending 100 MB gets no answer, and the server lives on).
READ_LIMIT_BYTES = 4 * MAX_PAYLOAD_BYTES
WATCH_PERIOD_MS = 500
SAMPLE_PERIOD_MS = 250

log = logging.getLogger("ei_widgets.endpoint.server")


class _State:
    def __init__(self, config: ServerConfig, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder
        self.model: HostedModel | None = None
        self.scheduler: Scheduler | None = None
        self.status = "Creating"
        self.load_seconds = 0.0
        self.ready_at: float | None = None
        self.stop = asyncio.Event()


class _Base(tornado.web.RequestHandler):
    state: _State

    def initialize(self, state: _State) -> None:
        self.state = state

    def prepare(self) -> None:
        given = self.request.headers.get(TOKEN_HEADER)
        if given is None:
            self._refuse(401, "MissingAuthenticationToken", f"send the {TOKEN_HEADER} header.")
        elif not hmac.compare_digest(given.encode(), self.state.config.token.encode()):
            self._refuse(403, "AccessDenied", f"the {TOKEN_HEADER} header is not this endpoint's.")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._json(status, error_body(status, code, message))
        self.finish()

    def _json(self, status: int, body: bytes) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.write(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason or "error"
        self._json(status_code, error_body(status_code, "InternalFailure", reason))

    def compute_etag(self) -> None:  # answers are never cached
        return None


class _Ping(_Base):
    def get(self) -> None:
        ready = self.state.status == "InService"
        self.set_status(200 if ready else 503)
        self.finish(b"" if ready else b"model loading")


class _Invocations(_Base):
    async def post(self) -> None:
        state = self.state
        # from the whole request in hand (its body read off the socket, as the bare stack does
        # too) to the answer written
        start = time.perf_counter()
        model_s: float | None = None
        held_s = 0.0
        try:
            model, scheduler = state.model, state.scheduler
            if model is None or scheduler is None or state.status != "InService":
                raise InvocationError(
                    503, "ModelNotReadyException", "the model is still loading: retry shortly."
                )
            content_type = self.request.headers.get("Content-Type")
            accept = choose_accept(self.request.headers.get("Accept"), content_type or "")
            feed = decode(self.request.body, content_type, model.inputs)
            entry = model.entry(feed)
            outputs, model_s, held_s = await scheduler.submit(feed, entry)
            body, status = encode(outputs, model.output_names, accept), 200
            self.set_header("Content-Type", accept)
        except InvocationError as error:
            status, body = error.status, error_body(error.status, error.code, error.message)
            self.set_header("Content-Type", "application/json")
        except Exception as error:  # a failure in one request must not take the server down
            log.exception("request failed")
            status = 500
            body = error_body(500, "ModelError", f"{type(error).__name__}: {error}"[:500])
            self.set_header("Content-Type", "application/json")
        self.set_status(status)
        self.write(body)
        total = time.perf_counter() - start
        if model_s is not None:  # the overhead is the server's time outside the instance
            state.recorder.answered(
                time.monotonic(), status, model_s * 1e6, max(total - held_s, 0.0) * 1e6
            )
        else:
            state.recorder.answered(time.monotonic(), status, None, None)
        self.finish()


class _Status(_Base):
    def get(self) -> None:
        state = self.state
        try:
            since = int(self.get_argument("since", "0"))
        except ValueError:
            since = 0
        model, scheduler = state.model, state.scheduler
        body = {
            "status": state.status,
            "uptime": time.monotonic() - state.recorder.start,
            "load_seconds": state.load_seconds,
            "ready_at": state.ready_at,
            "queue_depth": scheduler.queue_depth if scheduler else 0,
            "in_service": scheduler.busy_instances if scheduler else 0,
            "host_bound": scheduler.host_bound if scheduler else 0,
            "model": model.describe() if model else None,
            "seconds": [s.to_json() for s in state.recorder.since(since)],
        }
        self._json(200, json.dumps(body).encode())


class _NotFound(_Base):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self._refuse(404, "NotFound", f"{self.request.path[:100]} is not served here")


def _app(state: _State) -> tornado.web.Application:
    args = {"state": state}
    return tornado.web.Application(
        [
            (r"/ping", _Ping, args),
            (r"/invocations", _Invocations, args),
            (r"/ei/status", _Status, args),
        ],
        default_handler_class=_NotFound,
        default_handler_args=args,
        compress_response=False,
    )


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def _load(state: _State) -> None:
    """Load the model (real onnxruntime session, modelled load time), then go InService."""
    config = state.config
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    try:
        model = await loop.run_in_executor(None, HostedModel.load, config)
    except Exception as error:
        state.status = "Failed"
        _say(error=str(error), type=type(error).__name__)
        state.stop.set()
        return
    state.load_seconds = model.load_seconds
    if config.clock == "paced":  # the modelled load lasts in wall time too
        await asyncio.sleep(max(model.load_seconds - (time.monotonic() - t0), 0.0))
    state.model = model
    state.scheduler = Scheduler(model, config, state.recorder)
    state.status = "InService"
    state.ready_at = time.monotonic() - state.recorder.start
    _say(ready=True, load_seconds=model.load_seconds, model=model.describe())


async def serve(config: ServerConfig) -> None:
    """Listen, load, answer until SIGTERM or until the parent process is gone."""
    recorder = Recorder(time.monotonic())
    state = _State(config, recorder)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        _app(state), max_body_size=READ_LIMIT_BYTES, idle_connection_timeout=300
    )
    server.add_sockets(sockets)
    _say(port=sockets[0].getsockname()[1], pid=os.getpid())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, state.stop.set)

    def watch() -> None:
        if config.parent_pid and os.getppid() != config.parent_pid:
            state.stop.set()  # the kernel is gone: so is its endpoint

    last_cpu = [sum(os.times()[:2])]

    def sample() -> None:
        cpu = sum(os.times()[:2])
        depth = state.scheduler.queue_depth if state.scheduler else 0
        recorder.sample(time.monotonic(), cpu - last_cpu[0], _rss_bytes(), depth)
        last_cpu[0] = cpu

    watcher = tornado.ioloop.PeriodicCallback(watch, WATCH_PERIOD_MS)
    sampler = tornado.ioloop.PeriodicCallback(sample, SAMPLE_PERIOD_MS)
    watcher.start()
    sampler.start()
    loading = asyncio.ensure_future(_load(state))
    await state.stop.wait()
    state.status = "Deleting"
    watcher.stop()
    sampler.stop()
    loading.cancel()
    server.stop()
    if state.scheduler is not None:
        state.scheduler.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    line = sys.stdin.readline()
    try:
        config = ServerConfig(**json.loads(line))
    except (ValueError, TypeError) as error:
        _say(error=f"bad server configuration: {error}", type="EndpointError")
        sys.exit(2)
    asyncio.run(serve(config))
    sys.stdout.flush()
    # onnxruntime's threads may still be running a call: do not wait for them
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
