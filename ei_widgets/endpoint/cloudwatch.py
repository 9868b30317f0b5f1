"""An endpoint's metrics under the names CloudWatch gives them, per second and per minute.

The server counts each second in a :class:`Recorder` (raw latencies, counts, busy time); the kernel
reads those seconds and :func:`aggregate` folds them into rows of any period with p50/p90/p99, the
statistics CloudWatch offers. Names and units:

- namespace ``AWS/SageMaker`` (invocation metrics): ``Invocations``, ``InvocationsPerInstance``,
  ``Invocation4XXErrors``, ``Invocation5XXErrors`` (counts), ``ModelLatency`` and
  ``OverheadLatency`` (microseconds);
- namespace ``/aws/sagemaker/Endpoints`` (instance metrics): ``CPUUtilization`` (percent summed over
  the instance's cores, as SageMaker sums them), ``MemoryUtilization`` (percent), and for the
  accelerator's modelled busy fraction ``GPUUtilization`` / ``GPUMemoryUtilization`` (the names
  an endpoint's GPU gets; EI published no utilisation metric of its own);
- namespace ``AWS/ElasticInference`` (what EI itself reported): ``AcceleratorMemoryUsage``
  (bytes), ``AcceleratorHealthCheckFailed`` and ``ConnectivityCheckFailed`` (0 or 1).

``Throttles`` (the 503s among the 5XX) and ``QueueDepth`` are ours. ``ModelLatency`` is the time
a request spent in the container's queue plus its modelled call on the instance (modelled, see
``ei_widgets.device.estimate``); ``OverheadLatency`` is measured on this host: the server's time
on the request, from the whole request in hand to the answer written, outside the instance
(checking, decoding, encoding, HTTP framing).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ei_widgets.common.html import BOX, NO_MATH, esc, note, pandas_module, table

if TYPE_CHECKING:
    import pandas

__all__ = [
    "COUNTS",
    "LATENCIES",
    "PERCENTILES",
    "MetricsTable",
    "Recorder",
    "Second",
    "aggregate",
    "percentile",
]

LATENCIES = ("ModelLatency", "OverheadLatency")
PERCENTILES = (50, 90, 99)
COUNTS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "Throttles")
NAMESPACES = {
    "Invocations": "AWS/SageMaker",
    "InvocationsPerInstance": "AWS/SageMaker",
    "Invocation4XXErrors": "AWS/SageMaker",
    "Invocation5XXErrors": "AWS/SageMaker",
    "ModelLatency": "AWS/SageMaker",
    "OverheadLatency": "AWS/SageMaker",
    "CPUUtilization": "/aws/sagemaker/Endpoints",
    "MemoryUtilization": "/aws/sagemaker/Endpoints",
    "GPUUtilization": "/aws/sagemaker/Endpoints",
    "GPUMemoryUtilization": "/aws/sagemaker/Endpoints",
    "AcceleratorMemoryUsage": "AWS/ElasticInference",
    "AcceleratorHealthCheckFailed": "AWS/ElasticInference",
    "ConnectivityCheckFailed": "AWS/ElasticInference",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation, numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Second:
    """What happened in one second of an endpoint's life (``t`` seconds after it was created)."""

    t: int
    Invocations: int = 0
    Invocation4XXErrors: int = 0
    Invocation5XXErrors: int = 0
    Throttles: int = 0
    ModelLatency: list[float] = field(default_factory=list)  # microseconds, one per success
    OverheadLatency: list[float] = field(default_factory=list)
    busy_s: float = 0.0  # modelled accelerator (or instance) seconds of work, all instances
    cpu_s: float = 0.0  # the server process's CPU seconds in this second (measured)
    rss_bytes: int = 0  # the server process's resident memory at the end of the second
    QueueDepth: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Second:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Recorder:
    """The server's per-second counts (thread-safe; kept for ``keep`` seconds)."""

    def __init__(self, start: float, keep: int = 3600) -> None:
        self.start = start
        self._keep = keep
        self._seconds: dict[int, Second] = {}
        self._lock = threading.Lock()

    def _at(self, now: float) -> Second:
        t = max(int(now - self.start), 0)
        sec = self._seconds.get(t)
        if sec is None:
            sec = self._seconds[t] = Second(t)
            if len(self._seconds) > self._keep:
                del self._seconds[min(self._seconds)]
        return sec

    def answered(
        self, now: float, status: int, model_us: float | None, overhead_us: float | None
    ) -> None:
        """One request to /invocations answered with ``status``."""
        with self._lock:
            sec = self._at(now)
            sec.Invocations += 1
            if 400 <= status < 500:
                sec.Invocation4XXErrors += 1
            elif status >= 500:
                sec.Invocation5XXErrors += 1
                if status == 503:
                    sec.Throttles += 1
            if model_us is not None and overhead_us is not None:
                sec.ModelLatency.append(model_us)
                sec.OverheadLatency.append(overhead_us)

    def busy(self, now: float, seconds: float) -> None:
        """``seconds`` of modelled device work finished at ``now``."""
        with self._lock:
            self._at(now).busy_s += seconds

    def sample(self, now: float, cpu_s: float, rss_bytes: int, queue_depth: int) -> None:
        """The process's CPU time spent since the last sample, its memory and the queue."""
        with self._lock:
            sec = self._at(now)
            sec.cpu_s += cpu_s
            sec.rss_bytes = rss_bytes
            sec.QueueDepth = queue_depth

    def since(self, t: int) -> list[Second]:
        """The seconds from ``t`` on, oldest first (copies)."""
        with self._lock:
            return [
                Second(**{**s.__dict__, "ModelLatency": list(s.ModelLatency)})
                for k, s in sorted(self._seconds.items())
                if k >= t
            ]


@dataclass(frozen=True)
class Shape:
    """What the rows need to know of the endpoint to turn seconds into percentages."""

    instances: int
    vcpus: int
    instance_memory_bytes: int
    accelerator_memory_bytes: int | None  # None: no accelerator attached
    model_memory_bytes: int  # modelled memory the model holds on each accelerator


def aggregate(seconds: Iterable[Second], period: int, shape: Shape) -> list[dict[str, float]]:
    """Rows of ``period`` seconds (``t`` = the first second of each), CloudWatch names as keys.

    Latency rows carry ``<name>_p50``/``_p90``/``_p99`` and ``<name>_Average`` in microseconds
    (NaN when no request succeeded in that period); utilisations are averages over the period.
    """
    groups: dict[int, list[Second]] = {}
    for sec in seconds:
        groups.setdefault(sec.t - sec.t % period, []).append(sec)
    rows: list[dict[str, float]] = []
    for start in sorted(groups):
        secs = groups[start]
        row: dict[str, float] = {"t": float(start)}
        for name in COUNTS:
            row[name] = float(sum(getattr(s, name) for s in secs))
        row["InvocationsPerInstance"] = row["Invocations"] / shape.instances
        for name in LATENCIES:
            values = [v for s in secs for v in getattr(s, name)]
            row[f"{name}_Average"] = sum(values) / len(values) if values else math.nan
            for q in PERCENTILES:
                row[f"{name}_p{q}"] = percentile(values, q)
        span = float(period)
        row["CPUUtilization"] = 100.0 * sum(s.cpu_s for s in secs) / span
        rss = max((s.rss_bytes for s in secs), default=0)
        row["MemoryUtilization"] = 100.0 * rss / shape.instance_memory_bytes
        row["QueueDepth"] = float(secs[-1].QueueDepth)
        if shape.accelerator_memory_bytes is not None:
            busy = sum(s.busy_s for s in secs)
            row["GPUUtilization"] = 100.0 * busy / span  # summed over instances, as for GPUs
            mem = shape.model_memory_bytes / shape.accelerator_memory_bytes
            row["GPUMemoryUtilization"] = 100.0 * mem * shape.instances
            row["AcceleratorMemoryUsage"] = float(shape.model_memory_bytes)
            row["AcceleratorHealthCheckFailed"] = 0.0
            row["ConnectivityCheckFailed"] = 0.0
        rows.append(row)
    return rows


_SHOWN = (
    ("Invocations", "Invocations", "{:.0f}"),
    ("Invocation4XXErrors", "4XX", "{:.0f}"),
    ("Invocation5XXErrors", "5XX", "{:.0f}"),
    ("Throttles", "of which 503", "{:.0f}"),
    ("ModelLatency_p50", "ModelLatency p50 (µs)", "{:,.0f}"),
    ("ModelLatency_p90", "p90", "{:,.0f}"),
    ("ModelLatency_p99", "p99", "{:,.0f}"),
    ("OverheadLatency_p50", "OverheadLatency p50 (µs)", "{:,.0f}"),
    ("OverheadLatency_p99", "p99", "{:,.0f}"),
    ("CPUUtilization", "CPU %", "{:.0f}"),
    ("GPUUtilization", "GPU % (modelled)", "{:.0f}"),
    ("QueueDepth", "queue", "{:.0f}"),
)


class MetricsTable:
    """An endpoint's metrics, one row per period: a list of dicts keyed by CloudWatch names, with
    ``to_pandas()`` and an HTML table in a notebook."""

    def __init__(
        self, endpoint_name: str, period: int, rows: list[dict[str, float]], accuracy: str
    ) -> None:
        self.endpoint_name = endpoint_name
        self.period = period
        self.rows = rows
        self.accuracy = accuracy

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, float]:
        return self.rows[index]

    def column(self, name: str) -> list[float]:
        """One metric over time (NaN where a row lacks it)."""
        return [row.get(name, math.nan) for row in self.rows]

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a DataFrame indexed by ``t`` (needs pandas, which is optional)."""
        return pandas_module().DataFrame(self.rows).set_index("t")

    def _repr_html_(self) -> str:
        every = "minute" if self.period == 60 else f"{self.period} s"
        if not self.rows:
            return f'<div class="{NO_MATH}" style="{BOX}">No requests yet.</div>'
        shown = [(k, h, f) for k, h, f in _SHOWN if k in self.rows[0]]

        def cell(value: float, fmt: str) -> str:
            return "–" if math.isnan(value) else fmt.format(value)

        body = table(
            ["t (s)", *(h for _, h, _ in shown)],
            [
                (f"{row['t']:.0f}", *(cell(row.get(k, math.nan), f) for k, _, f in shown))
                for row in self.rows
            ],
            "r" * (len(shown) + 1),
        )
        return (
            f'<div class="{NO_MATH}" style="{BOX}"><div><b>{esc(self.endpoint_name)}</b>: '
            f"CloudWatch metrics per {every}</div>{body}"
            f"{note('ModelLatency is modelled (' + self.accuracy + '); OverheadLatency measured.')}"
            "</div>"
        )

    def __repr__(self) -> str:
        return f"<MetricsTable {self.endpoint_name!r}: {len(self.rows)} rows of {self.period} s>"
