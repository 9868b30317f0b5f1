"""How much an endpoint can serve: the service time of one request on one instance and the rate
at which an endpoint saturates. The one place sizing, the server's queueing and the load test's
prediction take these figures from, all from the latency model of ``ei_widgets.device.estimate``.

Each instance has its own accelerator and serves one request at a time (EI served the calls of one
client in turn), so a request occupies its instance for one call's whole modelled latency, and
``instances / service_seconds`` is the rate above which the queue grows without bound.
"""

from __future__ import annotations

from ei_widgets.device.capacity import saturation_rps
from ei_widgets.device.catalog import Catalog, Instance, default_catalog
from ei_widgets.device.estimate import Estimate, estimate
from ei_widgets.errors import EIError, require_positive_int
from ei_widgets.profiling.result import Profile

__all__ = ["endpoint_estimate", "saturation_rate", "service_seconds"]


def endpoint_estimate(
    profile: Profile,
    instance_type: str,
    accelerator_type: str | None,
    *,
    batch_size: int | None = None,
    precision: str = "fp32",
    catalog: Catalog | None = None,
) -> Estimate:
    """The modelled call of ``profile`` on one endpoint instance: on its accelerator when one is
    attached, else on the instance itself (its CPU, or its GPU for a whole-GPU type)."""
    cat = catalog or default_catalog()
    host: Instance = cat.instance(instance_type)
    if accelerator_type is None:
        return estimate(profile, host, batch_size=batch_size, precision=precision, catalog=cat)
    return estimate(
        profile,
        cat.accelerator(accelerator_type),
        batch_size=batch_size,
        precision=precision,
        instance=host,
        catalog=cat,
    )


def service_seconds(
    profile: Profile,
    instance_type: str,
    accelerator_type: str | None,
    *,
    batch_size: int | None = None,
    precision: str = "fp32",
    catalog: Catalog | None = None,
) -> float:
    """Modelled seconds one request occupies one instance (its call's whole latency)."""
    est = endpoint_estimate(
        profile,
        instance_type,
        accelerator_type,
        batch_size=batch_size,
        precision=precision,
        catalog=catalog,
    )
    return est.latency_s


def saturation_rate(
    profile: Profile,
    instance_type: str,
    accelerator_type: str | None,
    instance_count: int = 1,
    *,
    batch_size: int | None = None,
    precision: str = "fp32",
    catalog: Catalog | None = None,
) -> float:
    """Requests per second at which an endpoint of ``instance_count`` instances saturates
    (modelled): ``instance_count / service_seconds``, by the one capacity model that endpoint
    sizing uses (``ei_widgets.device.capacity``)."""
    count = require_positive_int(instance_count, "initial_instance_count", EIError)
    call = endpoint_estimate(
        profile,
        instance_type,
        accelerator_type,
        batch_size=batch_size,
        precision=precision,
        catalog=catalog,
    )
    return saturation_rps(call, count)
