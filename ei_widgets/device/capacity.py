"""How much an endpoint of identical instances serves, and its latency under load (modelled).

Each instance has its own accelerator and serves one request at a time (EI served the calls of
one client in turn), so a request occupies its instance for its call's whole modelled latency
(``estimate``: ``latency_s``), the service time, and ``n`` instances saturate at::

    saturation_rps = n / latency_s

Below saturation, requests wait in one queue that every instance serves (the first free instance
takes the next request): an M/D/c queue with Poisson arrivals (``arrival_cv2=1``) or evenly
spaced ones (``arrival_cv2=0``, a D/D/c queue: nobody waits below saturation). Its wait is the
Allen-Cunneen approximation: the M/M/c wait (Erlang C) scaled by ``(arrival_cv2 + 0) / 2`` for
deterministic service, with the M/M/c wait's exponential tail, so the ``q`` quantile of a
request's latency is::

    P(wait > 0) = C (Erlang C at offered load a = rps x latency_s over n servers)
    mean wait   = C x latency_s / (n - a) x arrival_cv2 / 2
    wait_q      = mean wait / C x ln(C / (1 - q))   when C > 1 - q, else 0
    latency_q   = latency_s + wait_q

At or past saturation the queue grows without bound: the latency is infinite (a real endpoint
throttles and refuses requests instead). Every figure is modelled, never measured; the server's
own overhead (HTTP, decoding) is not in it.

This is the one capacity model of the core: endpoint sizing (``recommend(..., endpoint=True)``)
uses it, and ``ei_widgets.endpoint.capacity`` (service time and saturation of a deployed
endpoint) computes the same ``instances / latency_s``.
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
    """What capacity needs of one modelled call (an ``Estimate`` has it)."""

    @property
    def latency_s(self) -> float: ...


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
    """``instances`` identical instances, each serving one request at a time for ``latency_s``."""

    instances: int
    latency_s: float  # one request alone: its service time

    @property
    def saturation_rps(self) -> float:
        """Requests per second past which the queue grows without bound."""
        return self.instances / self.latency_s if self.latency_s > 0 else math.inf

    def utilisation(self, rps: float) -> float:
        """The fraction of the instances' capacity ``rps`` uses (1 or more: saturated)."""
        return _check_rate(rps) / self.saturation_rps

    def wait_quantile_s(self, rps: float, q: float = 0.9, arrival_cv2: float = POISSON) -> float:
        """The ``q`` quantile of a request's wait in the queue at ``rps`` (inf when saturated)."""
        rate, q = _check_rate(rps), _check_quantile(q)
        if rate == 0 or self.latency_s <= 0:
            return 0.0
        offered = rate * self.latency_s
        if offered >= self.instances:
            return math.inf
        waits = _erlang_c(self.instances, offered)
        mean = waits * self.latency_s / (self.instances - offered) * (arrival_cv2 / 2.0)
        if mean <= 0 or waits <= 1.0 - q:
            return 0.0
        return mean / waits * math.log(waits / (1.0 - q))

    def latency_quantile_s(self, rps: float, q: float = 0.9, arrival_cv2: float = POISSON) -> float:
        """The ``q`` quantile of a request's latency at ``rps``: its call plus its wait."""
        return self.latency_s + self.wait_quantile_s(rps, q, arrival_cv2)


def capacity(est: Call, instances: int = 1) -> Capacity:
    """The capacity of ``instances`` instances, each serving calls as ``est`` models them."""
    count = require_positive_int(instances, "Instance count")
    return Capacity(instances=count, latency_s=est.latency_s)


def saturation_rps(est: Call, instances: int = 1) -> float:
    """Requests per second at which ``instances`` instances saturate: ``instances / latency_s``."""
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
    start = max(1, math.floor(rate * est.latency_s) + 1)
    for count in range(start, max_instances + 1):
        cap = Capacity(instances=count, latency_s=est.latency_s)
        if latency_target_s is None or cap.latency_quantile_s(rate, q, arrival_cv2) <= (
            latency_target_s
        ):
            return cap
    return None
