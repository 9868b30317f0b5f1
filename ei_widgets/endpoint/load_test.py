"""Open-loop load on an endpoint: arrivals on a schedule, whatever the server does.

A small asyncio client over keep-alive HTTP/1.1 connections (stdlib streams): arrivals are
scheduled at the target rate (``constant``, ``step`` or ``ramp``); at most ``concurrency``
requests are in flight, and an arrival that finds every connection busy waits for one and is
counted as late. Reports, per second, the target and achieved rate, latency percentiles and the
4xx/5xx/503 answers.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from ei_widgets.common.html import BOX, NO_MATH, esc, note, pandas_module, table
from ei_widgets.endpoint.cloudwatch import percentile
from ei_widgets.errors import EndpointError, require_positive_int

if TYPE_CHECKING:
    import pandas

__all__ = [
    "LoadProfile",
    "LoadTestResult",
    "LoadTestSecond",
    "Schedule",
    "run_load_test",
]

PROFILES = ("constant", "step", "ramp")
MAX_RPS = 100_000.0

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
    issue_lag_p99_ms: float = math.nan  # how late the generator itself issued arrivals (p99)

    def to_pandas(self) -> pandas.DataFrame:
        """One row per second (needs pandas, which is optional)."""
        return pandas_module().DataFrame([asdict(s) for s in self.seconds]).set_index("t")

    def _repr_html_(self) -> str:
        def ms(value: float) -> str:
            return "–" if math.isnan(value) else f"{value:.1f}"

        rows = table(
            [
                "t (s)",
                "target/s",
                "sent",
                "answered",
                "ok",
                "4XX",
                "5XX",
                "503",
                "late",
                "p50 ms",
                "p90 ms",
                "p99 ms",
            ],
            [
                (
                    s.t,
                    f"{s.target_rps:.0f}",
                    s.sent,
                    s.completed,
                    s.ok,
                    s.errors_4xx,
                    s.errors_5xx,
                    s.throttled,
                    s.late,
                    ms(s.p50_ms),
                    ms(s.p90_ms),
                    ms(s.p99_ms),
                )
                for s in self.seconds
            ],
            "r" * 12,
        )
        head = (
            f"<b>{esc(self.endpoint_name)}</b>: {self.profile} load to {self.target_rps:g}/s for"
            f" {self.duration_s:g} s: achieved {self.achieved_rps:.1f}/s, p50 {ms(self.p50_ms)}"
            f" ms, p90 {ms(self.p90_ms)} ms, p99 {ms(self.p99_ms)} ms, {self.errors_4xx} 4XX,"
            f" {self.errors_5xx} 5XX ({self.throttled} throttled)"
        )
        saturation = (
            f"Modelled saturation: {self.predicted_saturation_rps:.1f} requests/s"
            " (instances / modelled service time)."
        )
        return (
            f'<div class="{NO_MATH}" style="{BOX}"><div>{head}</div>{rows}{note(saturation)}</div>'
        )

    def summary(self) -> str:
        """One line: achieved rate, percentiles and errors."""
        return (
            f"{self.profile} {self.target_rps:g}/s for {self.duration_s:g} s: achieved"
            f" {self.achieved_rps:.1f}/s, p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms,"
            f" p99 {self.p99_ms:.1f} ms, {self.errors_4xx} 4XX, {self.errors_5xx} 5XX"
            f" ({self.throttled} throttled), {self.late} late"
        )


@dataclass(frozen=True)
class Schedule:
    """When requests arrive: ``rate_at(t)`` requests per second over ``duration`` seconds."""

    profile: LoadProfile
    rps: float
    duration: float
    start_rps: float
    steps: int

    @classmethod
    def of(
        cls,
        profile: str,
        rps: float,
        duration: float,
        *,
        start_rps: float | None = None,
        steps: int = 4,
    ) -> Schedule:
        """A checked schedule (``EndpointError`` saying what is wrong)."""
        if profile not in PROFILES:
            raise EndpointError(f"profile must be one of {PROFILES}, not {profile!r}.")
        for what, value in (("rps", rps), ("duration", duration)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise EndpointError(f"{what} must be a number, got {value!r}.")
            if not 0 < value < math.inf:
                raise EndpointError(f"{what} must be positive and finite, got {value!r}.")
        if rps > MAX_RPS:
            raise EndpointError(f"rps must be at most {MAX_RPS:g}, got {rps!r}.")
        steps = require_positive_int(steps, "steps", EndpointError)
        if start_rps is None:
            start_rps = rps / steps if profile == "step" else 0.0
        if not 0 <= start_rps <= rps:
            raise EndpointError(f"start_rps must be between 0 and rps ({rps}), got {start_rps}.")
        return cls(profile, float(rps), float(duration), float(start_rps), steps)  # type: ignore[arg-type]

    def rate_at(self, t: float) -> float:
        if self.profile == "constant":
            return self.rps
        if self.profile == "ramp":
            return self.start_rps + (self.rps - self.start_rps) * min(t / self.duration, 1.0)
        step = min(int(t / self.duration * self.steps), self.steps - 1)
        fraction = step / (self.steps - 1) if self.steps > 1 else 1.0
        return self.start_rps + (self.rps - self.start_rps) * fraction

    def arrivals(self) -> list[float]:
        """Arrival times (seconds from the start): the k-th when the integral of the rate
        reaches k, so the count in any second is the rate of that second."""
        if self.profile == "constant":
            count = int(self.rps * self.duration)
            return [k / self.rps for k in range(count)]
        times: list[float] = []
        dt = 1e-4
        total, t, nxt = 0.0, 0.0, 0.0
        while t < self.duration:
            total += self.rate_at(t) * dt
            t += dt
            while total >= nxt and nxt < total + 1:
                times.append(t)
                nxt += 1.0
        return times


@dataclass
class _Bucket:
    sent: int = 0
    completed: int = 0
    ok: int = 0
    e4: int = 0
    e5: int = 0
    throttled: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter] | None  # None: not yet opened


class _Client:
    """Keep-alive HTTP/1.1 connections and the open-loop schedule, on one asyncio loop."""

    def __init__(
        self, host: str, port: int, request: bytes, schedule: Schedule, concurrency: int
    ) -> None:
        self.host, self.port, self.request = host, port, request
        self.schedule = schedule
        self.concurrency = concurrency
        self.buckets: dict[int, _Bucket] = {}
        self.all_latencies: list[float] = []
        self.failures: list[str] = []
        self.issue_lags: list[float] = []  # seconds each arrival was issued after its time

    def bucket(self, second: int) -> _Bucket:
        found = self.buckets.get(second)
        if found is None:
            found = self.buckets[second] = _Bucket()
        return found

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> int:
        reader, writer = conn
        writer.write(self.request)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        return status

    async def _fire(self, scheduled: float, start: float, pool: asyncio.Queue[_Conn]) -> None:
        loop = asyncio.get_running_loop()
        second = int(scheduled)
        sent = self.bucket(second)
        sent.sent += 1
        try:
            conn = pool.get_nowait()
        except asyncio.QueueEmpty:
            sent.late += 1
            conn = await pool.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            status = await self._exchange(conn)
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
            if conn is not None:
                conn[1].close()
            conn = None
            status = 599  # no answer: counted as a 5XX of the client's own
            if len(self.failures) < 5:
                self.failures.append(f"{type(e).__name__}: {e}")
        done = loop.time() - start
        pool.put_nowait(conn)
        b = self.bucket(int(done))
        b.completed += 1
        latency_ms = (done - scheduled) * 1e3  # from the scheduled arrival: waits included
        if status == 200:
            b.ok += 1
            b.latencies.append(latency_ms)
            self.all_latencies.append(latency_ms)
        elif 400 <= status < 500:
            b.e4 += 1
        else:
            b.e5 += 1
            if status == 503:
                b.throttled += 1

    async def run(self, progress: bool) -> float:
        loop = asyncio.get_running_loop()
        pool: asyncio.Queue[_Conn] = asyncio.Queue()
        for _ in range(self.concurrency):
            pool.put_nowait(None)  # connections open on first use
        tasks = []
        start = loop.time()
        shown = 0
        for at in self.schedule.arrivals():
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.issue_lags.append(loop.time() - start - at)
            tasks.append(asyncio.ensure_future(self._fire(at, start, pool)))
            if progress and int(at) > shown:
                self._show(shown)
                shown = int(at)
        if tasks:
            await asyncio.gather(*tasks)
        end = loop.time() - start
        if progress:
            for second in range(shown, int(end) + 1):
                self._show(second)
        while not pool.empty():
            conn = pool.get_nowait()
            if conn is not None:
                conn[1].close()
        return end

    def _show(self, second: int) -> None:
        b = self.bucket(second)
        p50 = percentile(b.latencies, 50)
        p99 = percentile(b.latencies, 99)
        print(
            f"t={second:>3d}s target {self.schedule.rate_at(second + 0.5):7.1f}/s sent"
            f" {b.sent:5d} answered {b.completed:5d} p50 {p50:7.1f} ms p99 {p99:7.1f} ms"
            f" 4XX {b.e4} 5XX {b.e5} (503 {b.throttled}) late {b.late}",
            flush=True,
        )


def run_load_test(
    host: str,
    port: int,
    headers: Mapping[str, str],
    body: bytes,
    schedule: Schedule,
    *,
    concurrency: int = 64,
    endpoint_name: str = "",
    predicted_saturation_rps: float = math.nan,
    progress: bool = True,
) -> LoadTestResult:
    """Run ``schedule`` against ``POST /invocations`` at ``host:port``, in a thread of its own
    (a notebook's kernel already runs an event loop in its main thread)."""
    concurrency = require_positive_int(concurrency, "concurrency", EndpointError)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    client = _Client(host, port, request, schedule, concurrency)
    result: dict[str, float] = {}
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result["end"] = asyncio.run(client.run(progress))
        except BaseException as error:  # reported in the caller's thread
            failure.append(error)

    worker = threading.Thread(target=work, name="ei-load-test", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise EndpointError(f"the load test failed: {failure[0]}") from failure[0]
    end = result["end"]
    seconds = []
    for t in range(math.ceil(end)):
        b = client.bucket(t)
        seconds.append(
            LoadTestSecond(
                t=t,
                target_rps=schedule.rate_at(t + 0.5) if t < schedule.duration else 0.0,
                sent=b.sent,
                completed=b.completed,
                ok=b.ok,
                errors_4xx=b.e4,
                errors_5xx=b.e5,
                throttled=b.throttled,
                late=b.late,
                p50_ms=percentile(b.latencies, 50),
                p90_ms=percentile(b.latencies, 90),
                p99_ms=percentile(b.latencies, 99),
            )
        )
    buckets = list(client.buckets.values())
    answered = sum(b.completed for b in buckets)
    lat = client.all_latencies
    return LoadTestResult(
        endpoint_name=endpoint_name,
        profile=schedule.profile,
        target_rps=schedule.rps,
        duration_s=schedule.duration,
        concurrency=concurrency,
        seconds=seconds,
        sent=sum(b.sent for b in buckets),
        ok=sum(b.ok for b in buckets),
        errors_4xx=sum(b.e4 for b in buckets),
        errors_5xx=sum(b.e5 for b in buckets),
        throttled=sum(b.throttled for b in buckets),
        late=sum(b.late for b in buckets),
        achieved_rps=answered / end if end > 0 else 0.0,
        p50_ms=percentile(lat, 50),
        p90_ms=percentile(lat, 90),
        p99_ms=percentile(lat, 99),
        predicted_saturation_rps=predicted_saturation_rps,
        issue_lag_p99_ms=percentile(client.issue_lags, 99) * 1e3,
    )
