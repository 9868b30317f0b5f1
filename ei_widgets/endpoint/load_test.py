"""Open-loop load on an endpoint: arrivals on a schedule, whatever the server does.

A small asyncio client over keep-alive HTTP/1.1 connections (stdlib streams): arrivals are
scheduled at the target rate (``constant``, ``step`` or ``ramp``); at most ``concurrency``
requests are in flight, and an arrival that finds every connection busy waits for one and is
counted as late. Reports, per second, the target and achieved rate, latency percentiles and the
4xx/5xx/503 answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas

__all__ = ["LoadProfile", "LoadTestResult", "LoadTestSecond"]

LoadProfile = Literal["constant", "step", "ramp"]


@dataclass(frozen=True)
class LoadTestSecond:
    """One second of a load test (``t`` from its start); latencies in milliseconds as the client
    measured them (NaN when no request completed that second)."""

    t: int
    target_rps: float
    sent: int
    completed: int
    ok: int
    errors_4xx: int
    errors_5xx: int
    throttled: int  # 503s, counted in errors_5xx too
    late: int  # arrivals that waited for a free connection
    p50_ms: float
    p90_ms: float
    p99_ms: float


@dataclass(frozen=True)
class LoadTestResult:
    """A finished load test: the seconds, and totals over the whole run."""

    endpoint_name: str
    profile: LoadProfile
    target_rps: float
    duration_s: float
    concurrency: int
    seconds: list[LoadTestSecond]
    sent: int
    ok: int
    errors_4xx: int
    errors_5xx: int
    throttled: int
    late: int
    achieved_rps: float  # requests answered (any status) per second of the run
    p50_ms: float
    p90_ms: float
    p99_ms: float
    predicted_saturation_rps: float  # modelled (ei_widgets.endpoint.capacity)

    def to_pandas(self) -> pandas.DataFrame:
        """One row per second (needs pandas, which is optional)."""
        raise NotImplementedError
