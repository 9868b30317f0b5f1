"""The capacity model: saturation, and latency quantiles under load against a simulated queue."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from ei_widgets.device.capacity import Capacity, capacity, instances_needed, saturation_rps
from ei_widgets.device.catalog import packaged_catalog
from ei_widgets.device.estimate import estimate
from ei_widgets.errors import EIError
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile

CAT = packaged_catalog()
EST = estimate(profile(demo_model("resnet50")), "ml.eia2.medium", catalog=CAT)


def simulated_quantile(cap: Capacity, rps: float, q: float, n: int = 40_000) -> float:
    """The ``q`` latency quantile of a discrete-event M/D/c queue: Poisson arrivals, the first
    free instance serves each, for ``latency_s``."""
    rng = np.random.default_rng(7)
    arrivals = np.cumsum(rng.exponential(1.0 / rps, n))
    free = [0.0] * cap.instances
    latencies = np.empty(n)
    for i, at in enumerate(arrivals):
        start = max(at, heapq.heappop(free))
        heapq.heappush(free, start + cap.latency_s)
        latencies[i] = start - at + cap.latency_s
    return float(np.quantile(latencies[n // 10 :], q))  # past the empty start


@pytest.mark.parametrize(
    ("instances", "utilisation"), [(1, 0.5), (1, 0.8), (2, 0.7), (4, 0.85), (8, 0.9)]
)
def test_p90_matches_a_simulated_queue(instances: int, utilisation: float) -> None:
    cap = Capacity(instances=instances, latency_s=0.012)
    rps = utilisation * cap.saturation_rps
    modelled = cap.latency_quantile_s(rps, 0.9)
    simulated = simulated_quantile(cap, rps, 0.9)
    assert modelled == pytest.approx(simulated, rel=0.15)


def test_saturation_is_instances_over_the_call_latency() -> None:
    est = EST
    assert saturation_rps(est, 3) == pytest.approx(3 / est.latency_s)
    assert capacity(est, 3).latency_quantile_s(0) == pytest.approx(est.latency_s)
    assert math.isinf(capacity(est, 1).latency_quantile_s(1.01 / est.latency_s))


def test_evenly_spaced_arrivals_never_wait_below_saturation() -> None:
    cap = Capacity(instances=2, latency_s=0.01)
    assert cap.latency_quantile_s(190, 0.99, arrival_cv2=0.0) == pytest.approx(0.01)


def test_latency_grows_with_load() -> None:
    cap = Capacity(instances=2, latency_s=0.01)
    quantiles = [cap.latency_quantile_s(r) for r in (20, 100, 150, 190, 199)]
    assert quantiles == sorted(quantiles) and quantiles[-1] > 2 * quantiles[0]


def test_instances_needed_is_the_fewest_that_meet() -> None:
    est = EST
    target = est.latency_s * 1.5
    rps = 5.5 / est.latency_s
    cap = instances_needed(est, rps, target)
    assert cap is not None and cap.instances >= 6
    assert cap.latency_quantile_s(rps) <= target
    fewer = capacity(est, cap.instances - 1)
    assert fewer.latency_quantile_s(rps) > target
    assert instances_needed(est, rps, est.latency_s * 0.9) is None  # alone it is already late
    assert instances_needed(est, 1e9, target) is None  # more than MAX_INSTANCES


@pytest.mark.parametrize("bad", [-1, math.nan, "10", True])
def test_bad_rates_and_quantiles_are_refused(bad: object) -> None:
    cap = Capacity(instances=1, latency_s=0.01)
    with pytest.raises(EIError, match="request rate"):
        cap.latency_quantile_s(bad)  # type: ignore[arg-type]
    with pytest.raises(EIError, match="quantile"):
        cap.latency_quantile_s(10, bad)  # type: ignore[arg-type]
    with pytest.raises(EIError, match="Instance count"):
        capacity(EST, 0)
