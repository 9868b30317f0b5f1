"""Run every benchmark and print one table of figures measured side by side in this run.

    python benchmarks/run.py            # the full run (minutes), by hand
    python benchmarks/run.py --quick    # the smoke run (seconds), in the test suite
    python benchmarks/run.py --write BENCHMARKS.md

Each benchmark module has ``main(argv) -> rows``; a row is a dict with ``name``, ``figure``,
``unit``, ``target``, ``met`` and ``detail``. Figures are ratios or per-call costs measured in
the same process run, so they compare like with like on a noisy machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_profile",
    "bench_session",
    "bench_sizing",
    "bench_dashboard",
    "bench_fp16",
    "bench_endpoint",
    "bench_tensorflow",
]


def machine() -> str:
    """One line naming the machine the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def collect(quick: bool) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE))
    rows: list[dict[str, Any]] = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        module = importlib.import_module(name)
        for row in module.main(["--quick"] if quick else []):
            rows.append({"benchmark": name, **row})
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| benchmark | figure | target | met | detail |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['figure']:.3g} {row['unit']} | {row['target']} "
            f"| {'yes' if row['met'] else '**no**'} | {row['detail']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description="Run every ei_widgets benchmark.")
    parser.add_argument("--quick", action="store_true", help="the smoke run (seconds)")
    parser.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)

    rows = collect(args.quick)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run" if args.quick else "full run"
    header = f"Measured {when} ({mode}) on {machine()}."
    text = f"{header}\n\n{table(rows)}\n"
    print("\n" + text)
    if args.write:
        args.write.write_text(
            "# Benchmarks\n\n"
            "Produced by `python benchmarks/run.py --write BENCHMARKS.md`. Every figure is\n"
            "measured side by side in the same run; targets come from the issues.\n\n" + text
        )
    return rows


if __name__ == "__main__":
    main()
