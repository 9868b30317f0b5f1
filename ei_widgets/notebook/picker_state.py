"""The STATE object the kernel pushes to the JupyterLab picker: the instance, what is attached,
every accelerator with the chosen model's fit and modelled latency (the core's one judgement),
the sequence length it is judged at, the models found, the profile being made, the bill so far.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ei_widgets.billing import meters
from ei_widgets.common.units import format_bytes
from ei_widgets.device import accelerator
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import Catalog
from ei_widgets.device.judgement import judge_all
from ei_widgets.device.sequence import lengths_offered
from ei_widgets.models.discovery import find_models
from ei_widgets.notebook.protocol import PRECISIONS, capped
from ei_widgets.profiling.result import Profile

log = logging.getLogger(__name__)

COMPARISON_GPU = "ml.g4dn.xlarge"


MAX_MODELS_LISTED = 50
_LISTING_FAILED = threading.Event()

# Per precision: fits, latency in ms, why it does not fit (or cannot be judged), memory needed.
_Judgement = tuple[bool | None, float | None, str | None, int | None]
_UNJUDGED: _Judgement = (None, None, None, None)


def _money(value: Decimal | float | int | None) -> float:
    return round(float(value or 0), 6)


def _gib(n_bytes: int | float | None) -> float | None:
    if n_bytes is None:
        return None
    return round(n_bytes / 2**30, 3)


def _instance_json(instance: Any) -> dict[str, Any]:
    return {
        "name": instance.name,
        "vcpus": instance.vcpus,
        "memory_gib": _gib(instance.memory_bytes),
        "price_per_hour": _money(instance.price_per_hour),
    }


class FitCache:
    """Fit, latency and memory per accelerator and precision for one (model, instance, catalog)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._value: dict[str, dict[str, _Judgement]] = {}

    def get(self, st: accelerator.AcceleratorState) -> dict[str, dict[str, _Judgement]]:
        model = st.model
        catalog = st.catalog
        key = (
            None if model is None else (model[0], id(model[1])),
            st.instance.name,
            id(catalog),
        )
        with self._lock:
            if key == self._key:
                return self._value
        value: dict[str, dict[str, _Judgement]] = {}
        judged = None
        if model is not None:
            judged = judge_all(model[1], instance=st.instance, catalog=catalog).by_accelerator
        for name in catalog.accelerators:
            value[name] = {}
            for precision in PRECISIONS:
                if judged is None:
                    value[name][precision] = _UNJUDGED
                    continue
                one = judged[name][precision]
                est = one.estimate
                if est is None:  # a model the estimate cannot judge: say why
                    value[name][precision] = (None, None, capped(one.reason or ""), None)
                    continue
                # a status-bar row has room for a few words, not the core's whole message
                short = (
                    None
                    if est.fits
                    else f"needs {format_bytes(est.memory_needed_bytes)}, "
                    f"{name} has {format_bytes(est.memory_available_bytes)}"
                )
                value[name][precision] = (
                    bool(est.fits),
                    round(est.latency_ms, 4),
                    short,
                    int(est.memory_needed_bytes),
                )
        with self._lock:
            self._key, self._value = key, value
        return value


def _judgement_json(judged: _Judgement) -> dict[str, Any]:
    fits, latency, reason, memory = judged
    return {"fits": fits, "latency_ms": latency, "reason": reason, "memory_bytes": memory}


def _comparison(catalog: Any, snapshot: meters.CostSnapshot | None) -> dict[str, Any] | None:
    if snapshot is not None and snapshot.comparison in catalog.instances:
        name = snapshot.comparison
        return {"name": name, "price_per_hour": _money(catalog.instances[name].price_per_hour)}
    gpus = list(catalog.gpu_instances())
    if not gpus:
        return None
    preferred = [g for g in gpus if g.name == COMPARISON_GPU]
    gpu = preferred[0] if preferred else min(gpus, key=lambda g: g.price_per_hour)
    return {"name": gpu.name, "price_per_hour": _money(gpu.price_per_hour)}


def _meter_snapshot() -> meters.CostSnapshot | None:
    meter = meters.meter()
    return meter.snapshot() if meter is not None else None


def _models_found(namespace: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The models in the user's variables, found as ``%ei_status`` does (cheap: no profile)."""
    if namespace is None:
        return []
    try:
        entries = find_models(namespace)
    except Exception:  # a broken listing must not take the rest of the state with it
        # Once only: the state is built every second.
        if not _LISTING_FAILED.is_set():
            _LISTING_FAILED.set()
            log.warning("ei_widgets: could not list the models in this kernel", exc_info=True)
        return []
    return [
        {"variable": entry.variable, "kind": entry.kind, "summary": entry.summary}
        for entry in entries[:MAX_MODELS_LISTED]
    ]


def _latency_accuracy(catalog: Catalog, profile: Profile | None) -> str | None:
    """How far the chosen model's modelled latencies can be trusted (its group's validated
    error, or unknown); without a model, the latency model's stated accuracy in general."""
    if catalog.validation is None:
        return None
    if profile is None:
        return catalog.validation.text
    return model_accuracy(profile, catalog=catalog).explained


def _sequence(profile: Profile | None) -> dict[str, Any] | None:
    """The length the model is judged at and those it can be judged at, or None without a
    sequence dimension."""
    lengths = None if profile is None else lengths_offered(profile)
    if profile is None or lengths is None:
        return None
    return {"seq_len": profile.seq_len, "lengths": list(lengths)}


def build_state(
    st: accelerator.AcceleratorState | None = None,
    *,
    fits: FitCache | None = None,
    namespace: Mapping[str, Any] | None = None,
    profiling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The STATE object of the protocol, for ``st`` (the kernel's state by default).

    ``namespace`` holds the user's variables: the models found there are listed. ``profiling``
    is the profile being made for the picker, or the last one's failure
    (``ModelProfiler.snapshot``).
    """
    st = st if st is not None else accelerator.state()
    catalog = st.catalog
    attachment = st.attachment
    table = (fits or FitCache()).get(st)
    # The top-level fit and latency are at the attached precision (fp32 when none is attached);
    # "estimates" holds both precisions so a view can switch without asking.
    shown = attachment.precision if attachment is not None else "fp32"
    accelerators = []
    for name, acc in catalog.accelerators.items():
        judged = table.get(name, {})
        fit, latency, reason, _memory = judged.get(shown, _UNJUDGED)
        accelerators.append(
            {
                "name": name,
                "f32_tflops": acc.f32_tflops,
                "f16_tflops": acc.f16_tflops,
                "memory_gib": _gib(acc.memory_bytes),
                "price_per_hour": _money(acc.price_per_hour),
                "fits": fit,
                "latency_ms": latency,
                "reason": reason,
                "estimates": {p: _judgement_json(judged.get(p, _UNJUDGED)) for p in PRECISIONS},
            }
        )
    snapshot = _meter_snapshot()
    if snapshot is not None:
        cost = {
            "rate_per_hour": _money(snapshot.rate_per_hour),
            "total": _money(snapshot.total),
            "instance": _money(snapshot.instance_cost),
            "accelerator": _money(snapshot.accelerator_cost),
            "metered": True,
        }
    else:
        rate = st.instance.price_per_hour + (
            attachment.accelerator.price_per_hour if attachment is not None else Decimal(0)
        )
        cost = {
            "rate_per_hour": _money(rate),
            "total": 0.0,
            "instance": 0.0,
            "accelerator": 0.0,
            "metered": False,
        }
    model = st.model
    return {
        "instance": _instance_json(st.instance),
        "attached": None
        if attachment is None
        else {
            "name": attachment.name,
            "precision": attachment.precision,
            "since": attachment.since.isoformat().replace("+00:00", "Z"),
        },
        "accelerators": accelerators,
        "instances": [_instance_json(i) for i in catalog.notebook_instances()],
        "comparison": _comparison(catalog, snapshot),
        "model": None if model is None else {"variable": model[0], "kind": model[1].kind},
        "sequence": _sequence(None if model is None else model[1]),
        "models": _models_found(namespace),
        "profiling": profiling,
        "latency_accuracy": _latency_accuracy(catalog, None if model is None else model[1]),
        "cost": cost,
    }
