"""Dump what ei_widgets computes, as JSON, so two versions can be compared byte for byte.

    python benchmarks/dump_results.py > before.json    # on one version
    python benchmarks/dump_results.py > after.json     # on another
    cmp before.json after.json

Profiles of the nine light models (data, repr and HTML), estimates on three devices at both
precisions, three recommendations (rows, repr and HTML) and a bill made on a manual clock. A
restructuring that changes none of these leaves the two files identical.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ei_widgets import demo_model, demo_models, profile, recommend
from ei_widgets.billing.meters import CostMeter, ManualClock
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import packaged_catalog
from ei_widgets.device.estimate import estimate
from ei_widgets.errors import EIError

DEVICES = ("ml.eia1.medium", "ml.eia2.large", "ml.g4dn.xlarge")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses field by field; anything else by its repr)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return repr(value)


def results() -> dict[str, Any]:
    """Everything dumped, by a stable key."""
    out: dict[str, Any] = {}
    for name in demo_models():
        p = profile(demo_model(name), batch_size=2)
        out[f"profile:{name}"] = plain(p)
        out[f"profile_repr:{name}"] = repr(p)
        out[f"profile_html:{name}"] = p._repr_html_()
        for device in DEVICES:
            for precision in ("fp32", "fp16"):
                key = f"estimate:{name}:{device}:{precision}"
                try:
                    out[key] = plain(estimate(p, device, precision=precision, batch_size=4))
                except EIError as error:
                    out[key] = repr(error)
    for name in ("resnet50", "squeezenet", "densenet121"):
        rec = recommend(demo_model(name), latency_target_ms=50, requests_per_second=100)
        out[f"recommend:{name}"] = plain(rec)
        out[f"recommend_repr:{name}"] = repr(rec)
        out[f"recommend_html:{name}"] = rec._repr_html_()
    out.update(bill())
    return out


def bill() -> dict[str, Any]:
    """An hour of the instance, half an hour with an accelerator, half an hour without."""
    clock = ManualClock(datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))
    catalog = packaged_catalog()
    state = AcceleratorState(instance="ml.t3.medium", catalog=catalog)
    inferences = [0]
    meter = CostMeter(
        state,
        ledger=None,
        clock=clock,
        work=lambda: (inferences[0], 0, inferences[0] * 0.001),
        catalog=catalog,
    ).start(thread=False)
    clock.advance(3600)
    state.attach("ml.eia2.medium")
    inferences[0] = 12345
    clock.advance(1800)
    attached = meter.snapshot()
    state.detach()
    clock.advance(1800)
    return {
        "bill": plain(attached),
        "bill_repr": repr(attached),
        "bill_html": attached._repr_html_(),
        "bill_after_detach": plain(meter.snapshot()),
    }


if __name__ == "__main__":
    json.dump(results(), sys.stdout, indent=0, sort_keys=True, default=str)
    sys.stdout.write("\n")
