"""Sizing sweep speed for DenseNet-121, once its profile exists.

Figures (each printed next to its target, with met / not met):

1. The sweep of the issue: every accelerator × batch 1..32 × fp32/fp16 (384 estimates), with the
   per-profile arrays already built. Target: under 100 ms.
2. The full ``recommend()`` over batch 1..32 (every accelerator on every notebook instance, the
   whole-GPU instances with both runtimes and CPU-only; about 2,900 rows). Target: under 100 ms.
3. One ``estimate()`` of DenseNet-121 on one accelerator, arrays built. Target: under 1 ms.

The first sweep (which builds the profile's arrays) is reported too, for information.
Each figure is the median of several repeats. ``--quick`` does fewer repeats (CI smoke).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import median_seconds

from ei_widgets.device.catalog import default_catalog
from ei_widgets.device.estimate import PRECISIONS, estimate, estimate_batches
from ei_widgets.device.sizing import recommend
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

BATCHES = range(1, 33)


def sweep(prof: Profile) -> int:
    cat = default_catalog()
    n = 0
    for acc in cat.accelerators.values():
        for precision in PRECISIONS:
            n += len(estimate_batches(prof, acc, BATCHES, precision=precision, catalog=cat))
    return n


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (CI smoke)")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 15
    rows: list[dict[str, Any]] = []

    def report(name: str, ms: float, target_ms: float | None, detail: str) -> None:
        met = None if target_ms is None else ms < target_ms
        target = "-" if target_ms is None else f"< {target_ms:g} ms"
        flag = "" if met is None else ("met" if met else "NOT MET")
        if met is not None:  # figures for information are printed, not returned as rows
            rows.append({"name": name, "figure": ms, "unit": "ms", "target": target, "met": met,
                         "detail": detail})  # fmt: skip
        print(f"{name:44} {ms:9.2f} ms   target {target:10} {flag:8} {detail}")

    start = time.perf_counter()
    prof = profile(demo_model("densenet121"))
    report("profile DenseNet-121 (for information)", (time.perf_counter() - start) * 1e3, None,
           f"{len(prof.nodes)} nodes")  # fmt: skip
    start = time.perf_counter()
    n = sweep(prof)
    report("first sweep, arrays built (for information)", (time.perf_counter() - start) * 1e3,
           None, f"{n} estimates")  # fmt: skip
    ms = median_seconds(lambda: sweep(prof), repeats) * 1e3
    report("sweep: 6 accelerators x b1-32 x fp32/fp16", ms, 100, f"{n} estimates")
    rec = recommend(prof, latency_target_ms=50, requests_per_second=100, batch_sizes=BATCHES)
    ms = (
        median_seconds(
            lambda: recommend(
                prof, latency_target_ms=50, requests_per_second=100, batch_sizes=BATCHES
            ),
            repeats,
        )
        * 1e3
    )
    report("recommend(): every option x b1-32", ms, 100, f"{len(rec)} rows")
    print(rec.reason)
    calls = 200
    ms = (
        median_seconds(lambda: [estimate(prof, "ml.eia2.medium") for _ in range(calls)], repeats)
        * 1e3
    )
    report("one estimate(), DenseNet-121 on ml.eia2.medium", ms / calls, 1, "arrays built")
    return rows


if __name__ == "__main__":
    main()
