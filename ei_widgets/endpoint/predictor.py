"""The kernel's side of a hosted endpoint: ``deploy()``, the :class:`Predictor` it returns, and
``endpoints()``, the live endpoints of this process.

The names follow the SageMaker Python SDK, so EI notebook code reads the same::

    predictor = ei_widgets.deploy("model.onnx", instance_type="ml.m5.large",
                                  accelerator_type="ml.eia2.medium", initial_instance_count=1)
    outputs = predictor.predict(batch)          # real HTTP to the server process
    predictor.load_test(rps=50, duration=30)    # open-loop load, latency percentiles over time
    predictor.metrics()                         # CloudWatch names, per minute (or per second)
    predictor.delete_endpoint()                 # stops the server and the bill

The server runs in a child process (never in the kernel), on 127.0.0.1 at a free port, and
refuses any request without the endpoint's token (header ``X-EI-Endpoint-Token``). Latencies are
modelled (``ei_widgets.device.estimate``) and labelled so; outputs are real onnxruntime outputs.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import io
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import numpy as np

from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import Catalog, default_catalog
from ei_widgets.device.estimate import does_not_fit
from ei_widgets.device.pacing import check_pacing
from ei_widgets.endpoint.bill import EndpointBill
from ei_widgets.endpoint.capacity import endpoint_estimate, saturation_rate
from ei_widgets.endpoint.cloudwatch import COUNTS, MetricsTable, Second, Shape, aggregate
from ei_widgets.endpoint.codec import JSON, NPY, TOKEN_HEADER, npy_bytes
from ei_widgets.endpoint.config import ServerConfig, config_line
from ei_widgets.endpoint.load_test import LoadProfile, LoadTestResult, Schedule, run_load_test
from ei_widgets.errors import DoesNotFitError, EIError, EndpointError, require_positive_int
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile as make_profile
from ei_widgets.profiling.result import Profile

__all__ = [
    "TOKEN_HEADER",
    "EndpointStatus",
    "LiveSnapshot",
    "Predictor",
    "deploy",
    "endpoints",
]

START_TIMEOUT_S = 60.0
"""How long the server process may take to listen (its model loads after)."""

EndpointStatus = Literal["Creating", "InService", "Deleting", "Deleted", "Failed"]
"""SageMaker's EndpointStatus values (those a simulated endpoint goes through)."""


@dataclass(frozen=True)
class LiveSnapshot:
    """What a live view shows of one endpoint, read from its server.

    ``series`` holds one dict per second (oldest first, at most the last ``seconds`` asked) with
    ``t`` (seconds since the endpoint was created) and the CloudWatch names ``Invocations``,
    ``InvocationsPerInstance``, ``ModelLatency_p50``/``_p90``/``_p99`` and
    ``OverheadLatency_p50``/``_p90``/``_p99`` (microseconds), ``Invocation4XXErrors``,
    ``Invocation5XXErrors``, ``CPUUtilization``, ``MemoryUtilization`` (percent, the
    /aws/sagemaker/Endpoints names), the accelerator as EI reported it in the AWS/ElasticInference
    namespace: ``AcceleratorMemoryUsage`` (bytes), ``AcceleratorHealthCheckFailed`` and
    ``ConnectivityCheckFailed`` (0 or 1); EI published no utilisation metric, so the modelled busy
    fraction of the accelerators is given under the endpoint GPU name ``GPUUtilization`` (and
    ``GPUMemoryUtilization``), percent summed over instances as SageMaker sums GPUs. Plus
    ``Throttles`` (503s, a subset of the 5XX) and ``QueueDepth`` (requests waiting at the end of
    that second), which are ours, not CloudWatch's.
    """

    endpoint_name: str
    status: EndpointStatus
    instances: int
    queue_depth: int
    queue_size: int
    series: list[dict[str, float]]
    cost_so_far: Decimal  # dollars since the endpoint was created (instances x per-second rate)
    rate_per_hour: Decimal  # (instance + accelerator) x instances
    model_load_seconds: float  # modelled; the endpoint was "Creating" that long
    modelled_latency_ms: float  # one call's modelled latency on one instance
    saturation_rps: float  # modelled: instances / service time (ei_widgets.endpoint.capacity)
    accuracy: str  # the modelled latency's validated error, e.g. "modelled, ±25% (classifiers)"
    uptime_seconds: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)  # whole-life counts, same names


class Predictor:
    """A deployed endpoint: invoke it, load-test it, read its metrics and bill, delete it.

    Made by :func:`deploy`. A context manager: leaving the ``with`` block deletes the endpoint.
    """

    endpoint_name: str
    url: str  # http://127.0.0.1:<port> (POST {url}/invocations, GET {url}/ping)
    token: str  # send it in the X-EI-Endpoint-Token header
    instance_type: str
    accelerator_type: str | None
    instance_count: int

    def __init__(
        self,
        *,
        endpoint_name: str,
        process: subprocess.Popen[bytes],
        lines: queue.Queue[dict[str, Any]],
        port: int,
        token: str,
        instance_type: str,
        accelerator_type: str | None,
        instance_count: int,
        queue_size: int,
        clock: str,
        profile: Profile,
        catalog: Catalog,
        bill: EndpointBill,
        workdir: str,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.token = token
        self.instance_type = instance_type
        self.accelerator_type = accelerator_type
        self.instance_count = instance_count
        self.queue_size = queue_size
        self.clock = clock
        self.profile = profile
        self.bill = bill
        self._process = process
        self._lines = lines
        self._catalog = catalog
        self._workdir = workdir
        self._status: EndpointStatus = "Creating"
        self._model: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        est = endpoint_estimate(profile, instance_type, accelerator_type, catalog=catalog)
        self.modelled_latency_s = est.latency_s
        self.saturation_rps = saturation_rate(
            profile, instance_type, accelerator_type, instance_count, catalog=catalog
        )
        self.accuracy = model_accuracy(profile, catalog=catalog).text
        instance = catalog.instance(instance_type)
        self._shape = Shape(
            instances=instance_count,
            vcpus=instance.vcpus,
            instance_memory_bytes=instance.memory_bytes,
            accelerator_memory_bytes=(
                catalog.accelerator(accelerator_type).memory_bytes
                if accelerator_type is not None
                else None
            ),
            model_memory_bytes=est.memory_needed_bytes,
        )

    def __repr__(self) -> str:
        acc = f" + {self.accelerator_type}" if self.accelerator_type else ""
        return (
            f"<Predictor {self.endpoint_name!r}: {self.instance_count} x {self.instance_type}{acc}"
            f" at {self.url}, {self.status}>"
        )

    @property
    def invocations_url(self) -> str:
        """``{url}/invocations``."""
        return f"{self.url}/invocations"

    @property
    def headers(self) -> dict[str, str]:
        """The headers a client must send (the token), e.g. for ``curl -H``."""
        return {TOKEN_HEADER: self.token}

    @property
    def status(self) -> EndpointStatus:
        """ "Creating" while the model loads, "InService", then "Deleting"/"Deleted"."""
        if self._status in ("Creating", "InService") and self._process.poll() is not None:
            self._status = "Failed"
        return self._status

    @property
    def model_load_seconds(self) -> float:
        """The modelled model load time the endpoint spent "Creating" (0 until known)."""
        return float(self._model.get("load_seconds", 0.0))

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """The model's inputs as the server checks them (name, shape with None free, dtype)."""
        return list(self._model.get("inputs", []))

    def curl_example(self, payload_file: str = "input.npy") -> str:
        """A ``curl`` command that invokes the endpoint with a .npy file."""
        return (
            f"curl -s -X POST {self.invocations_url} -H '{TOKEN_HEADER}: {self.token}'"
            f" -H 'Content-Type: {NPY}' -H 'Accept: {JSON}' --data-binary @{payload_file}"
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, *, progress: bool = False) -> None:
        """Block until the endpoint is InService (the modelled model load), or raise the error
        it failed with."""
        if self._status == "InService":
            return
        if self._status in ("Deleting", "Deleted", "Failed"):
            raise EndpointError(f"{self.endpoint_name} is {self._status}: deploy it again.")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                line = self._lines.get(timeout=min(left, 1.0) if left is not None else 1.0)
            except queue.Empty:
                if self._process.poll() is not None:
                    self._fail(EndpointError(f"the server of {self.endpoint_name} exited"))
                if deadline is not None and time.monotonic() >= deadline:
                    raise EndpointError(
                        f"{self.endpoint_name} is not InService after {timeout} s: the model is"
                        " still loading; call wait() again."
                    ) from None
                if progress:
                    print(".", end="", flush=True)
                continue
            if "error" in line:
                kind = DoesNotFitError if line.get("type") == "DoesNotFitError" else EndpointError
                self._fail(kind(f"{self.endpoint_name} failed to start: {line['error']}"))
            if line.get("ready"):
                self._model = dict(line.get("model") or {})
                self._status = "InService"
                return

    def _fail(self, error: EIError) -> None:
        self.delete_endpoint()
        self._status = "Failed"
        raise error

    def delete_endpoint(self) -> None:
        """Stop the server process and the endpoint's bill (idempotent)."""
        with self._lock:
            if self._status in ("Deleted", "Failed") and self._process.poll() is not None:
                return
            self._status = "Deleting"
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self.bill.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
        with _REGISTRY_LOCK:
            if self in _LIVE:
                _LIVE.remove(self)
        self._status = "Deleted"

    def __enter__(self) -> Predictor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete_endpoint()

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, bytes]:
        if self.status in ("Deleting", "Deleted", "Failed"):
            raise EndpointError(f"{self.endpoint_name} is {self.status}: deploy it again.")
        sent = {**self.headers, **(headers or {})}
        with self._lock:
            for attempt in (0, 1):  # a keep-alive connection the server closed: one retry
                if self._conn is None:
                    self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                try:
                    self._conn.request(method, path, body=body, headers=sent)
                    response = self._conn.getresponse()
                    data = response.read()
                    return response.status, response.getheader("Content-Type") or "", data
                except (ConnectionError, http.client.HTTPException, OSError) as error:
                    self._conn.close()
                    self._conn = None
                    if attempt:
                        raise EndpointError(
                            f"{self.endpoint_name} did not answer: {error}"
                        ) from None
        raise AssertionError("unreachable")

    def predict(
        self,
        data: Any,
        *,
        content_type: str = "application/x-npy",
        accept: str = "application/x-npy",
    ) -> Any:
        """Invoke the endpoint once over HTTP with ``data`` (a numpy array, or a dict of input
        name -> array; nested lists with ``content_type="application/json"``).

        Returns the first output as a numpy array (``accept="application/x-npy"``) or every
        output as ``{"outputs": {name: nested lists}}`` (``accept="application/json"``). A 4xx or
        5xx answer raises :class:`~ei_widgets.errors.EndpointError` with the server's message.
        """
        self.wait()
        if isinstance(data, bytes):
            body = data
        elif content_type == JSON:
            body = json.dumps(_jsonable(data)).encode()
        elif isinstance(data, dict):
            raise EndpointError(
                "a dict of inputs is sent as JSON: predict(..., content_type='application/json')"
            )
        else:
            body = npy_bytes(data)
        status, kind, answer = self._request(
            "POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept}
        )
        if status != 200:
            try:
                message = json.loads(answer).get("Message", "")
            except ValueError:
                message = answer[:200].decode(errors="replace")
            raise EndpointError(f"{self.endpoint_name} answered {status}: {message}", status)
        if kind.startswith(NPY):
            return np.load(io.BytesIO(answer), allow_pickle=False)
        return json.loads(answer)

    def _status_json(self, since: int = 0) -> dict[str, Any]:
        status, _, answer = self._request("GET", f"/ei/status?since={max(int(since), 0)}")
        if status != 200:
            raise EndpointError(f"{self.endpoint_name} status answered {status}", status)
        result: dict[str, Any] = json.loads(answer)
        return result

    # --- metrics, live view, load ----------------------------------------------------------------

    def metrics(self, period: int = 60, *, seconds: int | None = None) -> MetricsTable:
        """The endpoint's CloudWatch metrics: one row per ``period`` seconds (60, as CloudWatch's
        endpoint metrics, or 1 for the live view), columns named as CloudWatch names them. The
        table has ``to_pandas()`` and an HTML repr. ``seconds``: only the last so many seconds."""
        period = require_positive_int(period, "period", EndpointError)
        state = self._status_json()
        secs = [Second.from_json(s) for s in state["seconds"]]
        if seconds is not None:
            first = int(state["uptime"]) - require_positive_int(seconds, "seconds", EndpointError)
            secs = [s for s in secs if s.t > first]
        rows = aggregate(secs, period, self._shape)
        return MetricsTable(self.endpoint_name, period, rows, self.accuracy)

    def live(self, seconds: int = 120) -> LiveSnapshot:
        """A small snapshot for a live view: per-second series of the last ``seconds``, queue
        depth, instances and cost so far. Cheap enough to call every second."""
        seconds = require_positive_int(seconds, "seconds", EndpointError)
        status = self.status
        if status in ("Deleting", "Deleted", "Failed"):
            state: dict[str, Any] = {"seconds": [], "queue_depth": 0, "uptime": 0.0}
        else:
            probe = self._status_json(since=1 << 62)
            state = self._status_json(since=int(probe["uptime"]) - seconds + 1)
            if state["status"] == "InService" and self._status == "Creating":
                self.wait()
        series = aggregate([Second.from_json(s) for s in state["seconds"]], 1, self._shape)
        totals = {k: sum(r[k] for r in series) for k in COUNTS}
        return LiveSnapshot(
            endpoint_name=self.endpoint_name,
            status=self.status,
            instances=self.instance_count,
            queue_depth=int(state["queue_depth"]),
            queue_size=self.queue_size,
            series=series,
            cost_so_far=self.bill.cost_so_far(),
            rate_per_hour=self.bill.rate_per_hour,
            model_load_seconds=self.model_load_seconds,
            modelled_latency_ms=self.modelled_latency_s * 1e3,
            saturation_rps=self.saturation_rps,
            accuracy=self.accuracy,
            uptime_seconds=float(state["uptime"]),
            totals=totals,
        )

    def load_test(
        self,
        rps: float,
        duration: float = 30.0,
        concurrency: int = 64,
        profile: LoadProfile = "constant",
        *,
        start_rps: float | None = None,
        steps: int = 4,
        data: Any = None,
        progress: bool = True,
    ) -> LoadTestResult:
        """Open-loop load at ``rps`` requests per second for ``duration`` seconds.

        Arrivals are scheduled on the clock whatever the server does (a slow answer does not
        slow the arrivals); at most ``concurrency`` requests are in flight (an arrival that
        finds them all busy waits and is counted as late). ``profile``: ``"constant"``;
        ``"step"`` (``steps`` equal steps from ``start_rps``, default ``rps / steps``, up to
        ``rps``); ``"ramp"`` (linear from ``start_rps``, default 0, to ``rps``). ``data``: the
        payload (default: zeros of the model's first input). Reports, per second, the target and
        achieved rate, latency percentiles and 4xx/5xx/throttled counts; ``progress`` prints a
        line per second (a notebook shows it as it runs).
        """
        self.wait()
        if data is None:
            specs = self.inputs
            if len(specs) != 1:
                raise EndpointError(
                    f"{self.endpoint_name}'s model has {len(specs)} inputs: pass data= as .npy"
                    " bytes or a JSON body."
                )
            spec = specs[0]
            dims = [(1 if d is None else d) for d in spec["shape"]]
            data = np.zeros(dims, dtype=spec["dtype"])
        body = data if isinstance(data, bytes) else npy_bytes(data)
        schedule = Schedule.of(profile, rps, duration, start_rps=start_rps, steps=steps)
        return run_load_test(
            "127.0.0.1",
            self.port,
            {TOKEN_HEADER: self.token, "Content-Type": NPY, "Accept": NPY},
            body,
            schedule,
            concurrency=concurrency,
            endpoint_name=self.endpoint_name,
            predicted_saturation_rps=self.saturation_rps,
            progress=progress,
        )


def _jsonable(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _jsonable(v) for k, v in data.items()}
    return np.asarray(data).tolist() if isinstance(data, np.ndarray) else data


_LIVE: list[Predictor] = []
_REGISTRY_LOCK = threading.Lock()
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's rule for endpoint names


def _model_file(model: Any, workdir: str) -> tuple[str, Profile]:
    """A path the server can load (the model's own file, or the model written into
    ``workdir``) and the model's profile."""
    loaded = load_model(model)
    prof = make_profile(loaded)
    if loaded.path is not None:
        return os.fspath(loaded.path), prof
    target = os.path.join(workdir, "model.onnx")
    source = loaded.source if isinstance(loaded.source, bytes) else loaded.serialized
    with open(target, "wb") as f:
        f.write(source if source is not None else loaded.model.SerializeToString())
    return target, prof


def _default_name(prof: Profile) -> str:
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", prof.name or "model").strip("-")[:30] or "model"
    return f"{stem}-{time.strftime('%Y-%m-%d-%H-%M-%S')}-{secrets.token_hex(2)}"


def _read_lines(stream: Any, lines: queue.Queue[dict[str, Any]]) -> None:
    for raw in stream:
        try:
            lines.put(json.loads(raw))
        except ValueError:
            continue


def deploy(
    model: Any,
    instance_type: str = "ml.m5.large",
    accelerator_type: str | None = None,
    initial_instance_count: int = 1,
    endpoint_name: str | None = None,
    *,
    clock: Literal["paced", "virtual"] = "paced",
    queue_size: int = 100,
    precision: str = "fp32",
    wait: bool = True,
    progress: bool = False,
) -> Predictor:
    """Deploy ``model`` (anything :func:`ei_widgets.session` takes) to a simulated SageMaker
    endpoint: ``initial_instance_count`` instances of ``instance_type``, each with its own
    ``accelerator_type`` attached (None: CPU only, or a whole-GPU instance type).

    Starts the server process and waits (``wait``) until ``/ping`` answers 200, i.e. for the
    modelled model load. ``queue_size``: requests that may wait beyond those being served
    before the endpoint throttles (503). ``clock="virtual"``: nothing sleeps; requests are
    answered as fast as the host computes them and their modelled latencies are recorded.
    Bills (instance + accelerator) x instances per second in the ledger until deleted.
    ``progress`` prints a dot a second while the model loads.
    """
    catalog = default_catalog()
    catalog.instance(instance_type)  # UnknownNameError with the valid names
    if accelerator_type is not None:
        catalog.accelerator(accelerator_type)
    count = require_positive_int(initial_instance_count, "initial_instance_count", EndpointError)
    check_pacing(clock, EndpointError)
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 0:
        raise EndpointError(f"queue_size must be an integer >= 0, got {queue_size!r}.")
    if endpoint_name is not None and not _NAME.match(str(endpoint_name)):
        raise EndpointError(
            f"endpoint_name {str(endpoint_name)[:80]!r} is not valid: up to 63 letters, digits"
            " and hyphens, starting and ending with a letter or digit (SageMaker's rule)."
        )
    with _REGISTRY_LOCK:
        if endpoint_name is not None and any(p.endpoint_name == endpoint_name for p in _LIVE):
            raise EndpointError(
                f"an endpoint named {endpoint_name!r} is live: delete it or pick another name."
            )
    workdir = tempfile.mkdtemp(prefix="ei-endpoint-")
    try:
        path, prof = _model_file(model, workdir)
        est = endpoint_estimate(prof, instance_type, accelerator_type, precision=precision)
        if not est.fits:
            raise does_not_fit(prof, est, catalog=catalog)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    name = endpoint_name or _default_name(prof)
    token = secrets.token_urlsafe(24)
    config = ServerConfig(
        model_path=path,
        endpoint_name=name,
        token=token,
        instance_type=instance_type,
        accelerator_type=accelerator_type,
        instance_count=count,
        queue_size=queue_size,
        clock=clock,
        precision=precision,
        parent_pid=os.getpid(),
    )
    with open(os.path.join(workdir, "server.log"), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ei_widgets.endpoint.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ),
        )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(config_line(config).encode())
    process.stdin.close()
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(
        target=_read_lines, args=(process.stdout, lines), name="ei-endpoint-out", daemon=True
    ).start()
    try:
        first = lines.get(timeout=START_TIMEOUT_S)
    except queue.Empty:
        process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        raise EndpointError(f"the server of {name} did not start in {START_TIMEOUT_S} s") from None
    if "port" not in first:
        process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        raise EndpointError(f"the server of {name} failed: {first.get('error', first)}")
    bill = EndpointBill(name, instance_type, accelerator_type, count, catalog)
    predictor = Predictor(
        endpoint_name=name,
        process=process,
        lines=lines,
        port=int(first["port"]),
        token=token,
        instance_type=instance_type,
        accelerator_type=accelerator_type,
        instance_count=count,
        queue_size=queue_size,
        clock=clock,
        profile=prof,
        catalog=catalog,
        bill=bill,
        workdir=workdir,
    )
    with _REGISTRY_LOCK:
        _LIVE.append(predictor)
    if wait:
        predictor.wait(progress=progress)
    return predictor


def endpoints() -> list[Predictor]:
    """The live (not deleted) endpoints deployed by this process, oldest first."""
    with _REGISTRY_LOCK:
        return list(_LIVE)


@atexit.register
def _delete_all() -> None:
    """A kernel that exits deletes its endpoints (one killed leaves it to the server's watch)."""
    for predictor in endpoints():
        with contextlib.suppress(Exception):
            predictor.delete_endpoint()
