"""How much an endpoint of identical instances serves, and its latency under load (modelled).

One request is one call of the latency model (``estimate``): it lasts ``latency_s`` alone, and
holds its instance's busiest shared resource (the accelerator, the link or the host) for
``busy_s``, as the device timeline of a paced session does (``ei_widgets.device.sessions``).
So an instance completes at most ``1 / busy_s`` requests per second, and ``n`` instances
saturate at::

    saturation_rps = n / busy_s

Below saturation, requests wait in one queue that every instance serves (a dispatcher hands a
request to the first free instance): an M/D/c queue with Poisson arrivals (``arrival_cv2=1``) or
evenly spaced ones (``arrival_cv2=0``, a D/D/c queue: nobody waits below saturation). Its wait is
the Allen-Cunneen approximation: the M/M/c wait (Erlang C) scaled by
``(arrival_cv2 + service_cv2) / 2``, deterministic service (``service_cv2=0``), with the M/M/c
wait's exponential tail, so the ``q`` quantile of a request's latency is::

    P(wait > 0) = C (Erlang C at offered load a = rps x busy_s over n servers)
    mean wait   = C x busy_s / (n - a) x (arrival_cv2 + 0) / 2
    wait_q      = mean wait / C x ln(C / (1 - q))   when C > 1 - q, else 0
    latency_q   = latency_s + wait_q

At or past saturation the queue grows without bound: the latency is infinite (a real endpoint
throttles and refuses requests instead). Every figure is modelled, never measured; the server's
own overhead (HTTP, decoding) is not in it.

This is the one capacity model: the endpoint's server, its load-test report and endpoint sizing
(``recommend(..., endpoint=True)``) use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from ei_widgets.errors import EIError, require_positive_int

__all__ = [
    "MAX_INSTANCES",
    "POISSON",
    "Call",
    "Capacity",
    "ModelledCall",
    "capacity",
    "instances_needed",
    "saturation_rps",
]

POISSON = 1.0
"""``arrival_cv2`` of Poisson arrivals (an open-loop load generator's, and most real traffic's)."""

MAX_INSTANCES = 100
"""The largest instance count an endpoint is sized to (SageMaker's per-endpoint quotas are lower
by default; past this, a bigger instance or accelerator is the answer)."""


class Call(Protocol):
    """What capacity needs of one modelled call: an ``Estimate``, a ``ModelledCall``."""

    @property
    def latency_s(self) -> float: ...

    @property
    def busy_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ModelledCall:
    """A call known by its two figures (e.g. a sizing row's)."""

    latency_s: float
    busy_s: float


def _erlang_c(servers: int, offered: float) -> float:
    """The probability that a request waits in an M/M/c queue (Erlang C), ``offered < servers``."""
    blocking = 1.0  # Erlang B, by its stable recursion over the servers
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    rho = offered / servers
    return blocking / (1.0 - rho * (1.0 - blocking))


def _check_quantile(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise EIError(f"The latency quantile must be between 0 and 1 (0.9 for p90), got {q!r}.")
    return float(q)


def _check_rate(rps: float) -> float:
    if isinstance(rps, bool) or not isinstance(rps, int | float) or not rps >= 0:
        raise EIError(f"The request rate must be requests per second (>= 0), not {rps!r}.")
    return float(rps)


@dataclass(frozen=True)
class Capacity:
    """``instances`` identical instances serving one call of an estimate each request."""

    instances: int
    latency_s: float  # one request alone
    busy_s: float  # the time one request holds its instance's busiest resource

    @property
    def saturation_rps(self) -> float:
        """Requests per second past which the queue grows without bound."""
        return self.instances / self.busy_s if self.busy_s > 0 else math.inf

    def utilisation(self, rps: float) -> float:
        """The fraction of the instances' capacity ``rps`` uses (1 or more: saturated)."""
        return _check_rate(rps) / self.saturation_rps

    def wait_quantile_s(self, rps: float, q: float = 0.9, arrival_cv2: float = POISSON) -> float:
        """The ``q`` quantile of a request's wait in the queue at ``rps`` (inf when saturated)."""
        rate, q = _check_rate(rps), _check_quantile(q)
        if rate == 0 or self.busy_s <= 0:
            return 0.0
        offered = rate * self.busy_s
        if offered >= self.instances:
            return math.inf
        waits = _erlang_c(self.instances, offered)
        mean = waits * self.busy_s / (self.instances - offered) * (arrival_cv2 / 2.0)
        if mean <= 0 or waits <= 1.0 - q:
            return 0.0
        return mean / waits * math.log(waits / (1.0 - q))

    def latency_quantile_s(self, rps: float, q: float = 0.9, arrival_cv2: float = POISSON) -> float:
        """The ``q`` quantile of a request's latency at ``rps``: its call plus its wait."""
        return self.latency_s + self.wait_quantile_s(rps, q, arrival_cv2)


def capacity(est: Call, instances: int = 1) -> Capacity:
    """The capacity of ``instances`` instances, each serving calls as ``est`` models them."""
    count = require_positive_int(instances, "Instance count")
    return Capacity(instances=count, latency_s=est.latency_s, busy_s=est.busy_s)


def saturation_rps(est: Call, instances: int = 1) -> float:
    """Requests per second at which ``instances`` instances saturate: ``instances / busy_s``."""
    return capacity(est, instances).saturation_rps


def instances_needed(
    est: Call,
    rps: float,
    latency_target_s: float | None,
    *,
    q: float = 0.9,
    arrival_cv2: float = POISSON,
    max_instances: int = MAX_INSTANCES,
) -> Capacity | None:
    """The fewest instances whose ``q`` latency quantile at ``rps`` is within the target (and
    that are not saturated), or None when no count up to ``max_instances`` is: a call alone
    already takes longer than the target, or the rate needs more instances than that."""
    rate = _check_rate(rps)
    if latency_target_s is not None and est.latency_s > latency_target_s:
        return None
    start = max(1, math.floor(rate * est.busy_s) + 1) if est.busy_s > 0 else 1
    for count in range(start, max_instances + 1):
        cap = Capacity(instances=count, latency_s=est.latency_s, busy_s=est.busy_s)
        if latency_target_s is None or cap.latency_quantile_s(rate, q, arrival_cv2) <= (
            latency_target_s
        ):
            return cap
    return None
