"""The row every benchmark reports: a figure, its unit, its target and whether it is met.

``benchmarks/run.py`` collects these rows from each module's ``main`` into one table.
"""

from __future__ import annotations

from typing import Any


class Rows(list[dict[str, Any]]):
    """Rows of one benchmark module; calling it adds a row and prints it as a line."""

    def __init__(self, name_width: int = 40) -> None:
        super().__init__()
        self.name_width = name_width

    def __call__(
        self, name: str, figure: float, unit: str, target: str, met: bool, detail: str
    ) -> None:
        self.append(
            {"name": name, "figure": figure, "unit": unit, "target": target, "met": met,
             "detail": detail}
        )  # fmt: skip
        flag = "met" if met else "NOT MET"
        print(
            f"{name:{self.name_width}} {figure:10.2f} {unit:6} target {target:12} {flag:8} "
            f"{detail}",
            flush=True,
        )
