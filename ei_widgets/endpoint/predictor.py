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

from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

from ei_widgets.endpoint.cloudwatch import MetricsTable
from ei_widgets.endpoint.load_test import LoadProfile, LoadTestResult

__all__ = [
    "TOKEN_HEADER",
    "EndpointStatus",
    "LiveSnapshot",
    "Predictor",
    "deploy",
    "endpoints",
]

TOKEN_HEADER = "X-EI-Endpoint-Token"
"""The header every request must carry, holding :attr:`Predictor.token`."""

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

    @property
    def invocations_url(self) -> str:
        """``{url}/invocations``."""
        raise NotImplementedError

    @property
    def headers(self) -> dict[str, str]:
        """The headers a client must send (the token), e.g. for ``curl -H``."""
        raise NotImplementedError

    @property
    def status(self) -> EndpointStatus:
        """ "Creating" while the model loads, "InService", then "Deleting"/"Deleted"."""
        raise NotImplementedError

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
        raise NotImplementedError

    def metrics(self, period: int = 60, *, seconds: int | None = None) -> MetricsTable:
        """The endpoint's CloudWatch metrics: one row per ``period`` seconds (60, as CloudWatch's
        endpoint metrics, or 1 for the live view), columns named as CloudWatch names them. The
        table has ``to_pandas()`` and an HTML repr. ``seconds``: only the last so many seconds."""
        raise NotImplementedError

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
        raise NotImplementedError

    def live(self, seconds: int = 120) -> LiveSnapshot:
        """A small snapshot for a live view: per-second series of the last ``seconds``, queue
        depth, instances and cost so far. Cheap enough to call every second."""
        raise NotImplementedError

    def delete_endpoint(self) -> None:
        """Stop the server process and the endpoint's bill (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Predictor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete_endpoint()


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
) -> Predictor:
    """Deploy ``model`` (anything :func:`ei_widgets.session` takes) to a simulated SageMaker
    endpoint: ``initial_instance_count`` instances of ``instance_type``, each with its own
    ``accelerator_type`` attached (None: CPU only, or a whole-GPU instance type).

    Starts the server process and waits (``wait``) until ``/ping`` answers 200, i.e. for the
    modelled model load. ``queue_size``: requests that may wait beyond those being served
    before the endpoint throttles (503). ``clock="virtual"``: nothing sleeps; requests are
    answered as fast as the host computes them and their modelled latencies are recorded.
    Bills (instance + accelerator) x instances per second in the ledger until deleted.
    """
    raise NotImplementedError


def endpoints() -> list[Predictor]:
    """The live (not deleted) endpoints deployed by this process, oldest first."""
    raise NotImplementedError
