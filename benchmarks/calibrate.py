"""Fit the latency model's free constants to published EI measurements, and show the fit.

    python benchmarks/calibrate.py            # fit, print every row, the errors and leave-one-out
    python benchmarks/calibrate.py --write    # ... and write the constants, the validation summary
                                              #     (catalog.toml) and docs/images/validation.png

The measurements are ``benchmarks/calibration/measurements.csv``: the published rows (source,
model, framework, batch, precision, device, client, metric, value, confidence) plus how we model
each one (``onnx_model``, ``runtime``, ``target``, ``instance``) and whether it steers the fit
(``use``: ``fit`` for high and medium confidence, ``inform`` for low confidence, ``excluded`` with
the reason in ``why``).

The fit is least squares on log latency (so a row 20% too slow weighs as much as one 20% too fast),
each constant bounded to a physically sensible range and weakly pulled towards its prior (the
judgement it had before any fit): a constant that no row informs keeps its prior instead of
wandering to a bound. Leave-one-source-out refits without each source and predicts its rows.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import math
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx
from scipy.optimize import least_squares

from ei_widgets.device.accuracy import GROUPS, UNKNOWN, classify
from ei_widgets.device.catalog import Catalog, Constant, packaged_catalog, parse_catalog
from ei_widgets.device.estimate import PRECISIONS, RUNTIMES, estimate
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MEASUREMENTS = HERE / "calibration" / "measurements.csv"
MODELS = HERE / "calibration" / "models"
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
CATALOG = ROOT / "ei_widgets" / "device" / "catalog.toml"
DOC = ROOT / "docs" / "validation.md"
DOC_START = "<!-- calibration: written by benchmarks/calibrate.py --write; do not edit by hand -->"
DOC_END = "<!-- end of calibration -->"
PICTURE = ROOT / "docs" / "images" / "validation.png"

PUBLISHED_COLUMNS = ("id", "source", "model", "framework", "input", "batch", "precision", "device",
                     "client", "metric", "value", "unit", "confidence", "note")  # fmt: skip
MODELLING_COLUMNS = ("onnx_model", "runtime", "target", "instance", "use", "why")
COLUMNS = PUBLISHED_COLUMNS + MODELLING_COLUMNS
CONFIDENCES = ("high", "medium", "low")
USES = ("fit", "inform", "noise", "excluded")
TARGET_ERROR = 0.20  # every fitted row within this
TARGET_MEDIAN = 0.10  # median |error| of the fitted rows
TARGET_LOSO = 0.25  # every source's leave-one-source-out median |error|
NOISE_FLOOR = 0.05  # a fitted median below this must be shown not to be overfitting
PRIOR_WEIGHT = 0.1  # how strongly a constant is pulled to its prior, against log-latency residuals


class MeasurementError(ValueError):
    """A row of the measurements file that cannot be used, with its row number and why."""


@dataclasses.dataclass(frozen=True)
class Measurement:
    id: str
    source: str  # resolved: "same as A1" becomes A1's source
    model: str
    onnx_model: str
    runtime: str
    target: str
    instance: str
    batch: int
    precision: str
    value_ms: float
    confidence: str
    use: str
    why: str
    metric: str = ""

    @property
    def device_kind(self) -> str:
        if ".eia" in self.target:
            return "EI accelerator"
        return "whole GPU" if self.target.startswith(("ml.g", "ml.p")) else "CPU only"

    @property
    def group(self) -> str:
        """The row's group (``ei_widgets.device.accuracy``): ``"cpu"`` for CPU-only rows, else
        the group of its model."""
        if self.device_kind == "CPU only":
            return "cpu"
        return classify(_profile(self.onnx_model))[0] if self.onnx_model else UNKNOWN


@dataclasses.dataclass(frozen=True)
class Free:
    """One fitted constant: where it lives in the catalog, its bounds and its prior."""

    path: tuple[str, ...]  # constant name, then keys into its table
    low: float
    high: float
    prior: float
    pinned_by: str = ""  # the fitted rows that inform it (docs/validation.md)

    @property
    def single_row(self) -> bool:
        """Pinned by one row only: the fit tunes it to that row (said beside it)."""
        return bool(self.pinned_by) and "," not in self.pinned_by and "-" not in self.pinned_by

    @property
    def name(self) -> str:
        return ".".join(self.path)


FREE: tuple[Free, ...] = (
    Free(("kernel_launch_seconds",), 2e-6, 1e-4, 1e-5, "A4, D5, G4 (whole GPUs at batch 1 and 8)"),
    Free(("kernel_fill_seconds",), 1e-6, 1e-3, 2e-5, "A2-A5, C1, D2 (small kernels)"),
    Free(("tensor_efficiency", "T4", "fp32"), 0.15, 0.95, 0.5, "D2, D3, D5"),
    Free(("tensor_efficiency", "T4", "fp16"), 0.05, 0.95, 0.3, "D4"),
    Free(("tensor_efficiency", "V100", "fp32"), 0.15, 0.95, 0.7, "A2, A3, G1-G4"),
    Free(("tensor_efficiency", "K80", "fp32"), 0.15, 0.95, 0.6, "A5, G7"),
    Free(("tuned_efficiency", "T4", "fp16"), 0.1, 0.95, 0.6, "D7"),
    Free(("runtime_call_seconds", "keras"), 1e-4, 1e-1, 3e-2, "D1, D5 (one repository)"),
    Free(("suppression_seconds_per_candidate",), 1e-8, 1e-5, 5e-7, "G1-G7 (one source)"),
    Free(("cpu_efficiency",), 0.1, 0.9, 0.4, "A1, D1, G5, G6, P1"),
)


# ---------------------------------------------------------------------------------------------
# The measurements


def _row_error(number: int, row: Mapping[str, str], what: str) -> MeasurementError:
    return MeasurementError(f"measurements row {number} ({row.get('id') or 'no id'}): {what}")


def parse_measurements(
    rows: Iterable[Mapping[str, str]], catalog: Catalog | None = None
) -> list[Measurement]:
    """Validate the rows (numbered from 2, the file's first data line) into measurements."""
    cat = catalog or packaged_catalog()
    out: list[Measurement] = []
    sources: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        missing = [c for c in COLUMNS if c not in row or row[c] is None]
        if missing:
            raise _row_error(number, row, f"missing column(s) {', '.join(missing)}")
        ident = row["id"].strip()
        if not ident or ident in sources:
            raise _row_error(number, row, "id must be present and unique")
        source = row["source"].strip()
        same = re.fullmatch(r"same as (\w+)", source)
        if same:
            if same.group(1) not in sources:
                raise _row_error(number, row, f"'same as {same.group(1)}' names no earlier row")
            source = sources[same.group(1)]
        if not source:
            raise _row_error(number, row, "source is empty: every figure needs its source")
        sources[ident] = source
        use, why = row["use"].strip(), row["why"].strip()
        if use not in USES:
            raise _row_error(number, row, f"use must be one of {', '.join(USES)}, got {use!r}")
        confidence = row["confidence"].strip()
        if confidence not in CONFIDENCES:
            raise _row_error(number, row, f"confidence must be high, medium or low: {confidence!r}")
        if use in ("fit", "noise") and confidence == "low":
            raise _row_error(number, row, "a low-confidence row informs but may not steer the fit")
        if use != "fit" and not why:
            raise _row_error(number, row, f"a row that is {use!r} needs its reason in 'why'")
        try:
            batch = int(row["batch"])
            value = float(row["value"])
        except ValueError:
            raise _row_error(number, row, "batch must be an integer and value a number") from None
        if batch < 1 or not (value > 0 and math.isfinite(value)):
            raise _row_error(number, row, "batch and value must be positive")
        if row["unit"].strip() != "ms":
            raise _row_error(number, row, f"unit must be ms, got {row['unit']!r}")
        precision, runtime = row["precision"].strip(), row["runtime"].strip()
        if precision not in PRECISIONS:
            raise _row_error(number, row, f"precision must be fp32 or fp16, got {precision!r}")
        if runtime not in RUNTIMES:
            raise _row_error(number, row, f"runtime must be one of {', '.join(RUNTIMES)}")
        target, instance, model = row["target"].strip(), row["instance"].strip(), row["onnx_model"]
        if use != "excluded":
            if target not in cat.accelerators and target not in cat.instances:
                raise _row_error(number, row, f"unknown target {target!r}")
            if instance not in cat.instances:
                raise _row_error(number, row, f"unknown instance {instance!r}")
            if use == "fit" and not model:
                raise _row_error(number, row, "a fitted row needs its onnx_model")
            if model and not _model_path(model).is_file():
                raise _row_error(number, row, f"onnx_model {model!r} is not a file here")
        measurement = Measurement(ident, source, row["model"], model, runtime, target, instance,
                                  batch, precision, value, confidence, use, why,
                                  row["metric"].strip())  # fmt: skip
        out.append(measurement)
    return out


def load_measurements(path: Path = MEASUREMENTS) -> list[Measurement]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM
        return parse_measurements(csv.DictReader(f))


def _model_path(spec: str) -> Path:
    where, _, name = spec.partition(":")
    folder = {"onnx": LIGHT, "calibration": MODELS}.get(where)
    inside = name and not Path(name).is_absolute() and ".." not in Path(name).parts
    return folder / name if folder is not None and inside else Path("/nonexistent") / spec


@cache
def _profile(spec: str) -> Profile:
    return profile(str(_model_path(spec)))


# ---------------------------------------------------------------------------------------------
# Predicting with a set of constants


def with_constants(catalog: Catalog, values: Mapping[tuple[str, ...], float]) -> Catalog:
    """``catalog`` with the constants at ``values`` (paths as in :data:`FREE`) replaced."""
    constants = dict(catalog.constants)
    for path, value in values.items():
        const = constants[path[0]]
        if len(path) == 1:
            new: Any = float(value)
        else:
            new = _deep_copy(const.value)
            table = new
            for key in path[1:-1]:
                table = table[key]
            table[path[-1]] = float(value)
        constants[path[0]] = dataclasses.replace(const, value=new)
    for name in ("tensor_efficiency", "tuned_efficiency"):  # "assumption, the same as T4"
        table = _deep_copy(constants[name].value)
        for gpu in SAME_AS_T4:
            table[gpu] = dict(table["T4"])
        constants[name] = dataclasses.replace(constants[name], value=table)
    return dataclasses.replace(catalog, constants=MappingProxyType(constants))


SAME_AS_T4 = ("L4", "Inferentia2")  # no measurement: their efficiencies follow the T4's


def _deep_copy(value: Any) -> Any:
    return {k: _deep_copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def current_values(catalog: Catalog) -> dict[tuple[str, ...], float]:
    out = {}
    for free in FREE:
        value: Any = catalog.constants[free.path[0]].value
        for key in free.path[1:]:
            value = value[key]
        out[free.path] = float(value)
    return out


def predict(m: Measurement, catalog: Catalog) -> tuple[float, str]:
    """Estimated latency (ms) and bounding term of measurement ``m`` under ``catalog``."""
    est = estimate(
        _profile(m.onnx_model),
        m.target,
        batch_size=m.batch,
        precision=m.precision,
        instance=catalog.instance(m.instance),
        runtime=m.runtime,
        catalog=catalog,
    )
    return est.latency_ms, est.bound


# ---------------------------------------------------------------------------------------------
# Fitting


def fit(rows: Sequence[Measurement], base: Catalog) -> Catalog:
    """The catalog whose free constants minimise log-latency error over ``rows`` (use == fit)."""
    rows = [m for m in rows if m.use == "fit"]
    low = np.log([f.low for f in FREE])
    high = np.log([f.high for f in FREE])
    prior = np.log([f.prior for f in FREE])
    published = np.log([m.value_ms for m in rows])

    def catalog_at(x: np.ndarray) -> Catalog:
        return with_constants(base, {f.path: math.exp(v) for f, v in zip(FREE, x, strict=True)})

    def residuals(x: np.ndarray) -> np.ndarray:
        cat = catalog_at(x)
        est = np.log([predict(m, cat)[0] for m in rows])
        return np.concatenate([est - published, math.sqrt(PRIOR_WEIGHT) * (x - prior)])

    start = np.clip(prior, low + 1e-9, high - 1e-9)
    result = least_squares(residuals, start, bounds=(low, high), x_scale=1.0, xtol=1e-10)
    return catalog_at(result.x)


@dataclasses.dataclass(frozen=True)
class Outcome:
    m: Measurement
    estimated_ms: float | None  # None when the row cannot be modelled
    bound: str
    loso_ms: float | None = None

    @property
    def error(self) -> float | None:
        return None if self.estimated_ms is None else self.estimated_ms / self.m.value_ms - 1

    @property
    def loso_error(self) -> float | None:
        return None if self.loso_ms is None else self.loso_ms / self.m.value_ms - 1


def evaluate(rows: Sequence[Measurement], catalog: Catalog, base: Catalog) -> list[Outcome]:
    """Every row's estimate under ``catalog``; for fitted rows, also its left-out-source one."""
    loso: dict[str, float] = {}
    for source in sorted({m.source for m in rows if m.use == "fit"}):
        rest = [m for m in rows if m.source != source]
        without = fit(rest, base)
        for m in rows:
            if m.source == source and m.use == "fit":
                loso[m.id] = predict(m, without)[0]
    out = []
    for m in rows:
        if m.use == "excluded" or not m.onnx_model:
            out.append(Outcome(m, None, ""))
            continue
        ms, bound = predict(m, catalog)
        out.append(Outcome(m, ms, bound, loso.get(m.id)))
    return out


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    name: str
    rows: int
    loso_median_error: float
    loso_worst_error: float


@dataclasses.dataclass(frozen=True)
class Summary:
    rows: int
    median_error: float
    worst_error: float
    high_within: int
    high_rows: int
    loso_median_error: float
    size_ratio: tuple[str, float, float] | None  # (which, published, estimated)
    within: int = 0  # fitted rows within ±TARGET_ERROR
    free: int = len(FREE)
    noise: float = math.nan  # half the spread of repeat runs of one setting, relative to their mean
    size_ratios: tuple[tuple[str, float, float], ...] = ()
    sources: tuple[tuple[str, int, float], ...] = ()  # (source, rows, left-out median |error|)
    groups: tuple[GroupSummary, ...] = ()


SIZE_STEPS = (
    ("ResNet-152 b1, ml.eia1.medium / ml.eia1.large", "A2", "A3"),
    ("Faster R-CNN, ml.eia1.medium / ml.eia1.large", "G1", "G2"),
    ("Faster R-CNN, ml.eia1.large / ml.eia1.xlarge", "G2", "G3"),
)


def noise_band(outcomes: Sequence[Outcome]) -> float:
    """The published data's own run-to-run noise: repeat runs of one setting (rows marked
    ``noise``, with the fitted row of the same setting and metric), half their spread over their
    mean."""
    by_id = {o.m.id: o.m for o in outcomes}
    repeats = [o.m for o in outcomes if o.m.use == "noise"]
    if not repeats:
        return math.nan
    # The p50s: the metric of the fitted row they repeat (C1), and the repeats' own p50s.
    values = [by_id["C1"].value_ms] if "C1" in by_id else []
    values += [m.value_ms for m in repeats if m.metric.endswith("p50")]
    mean = statistics.fmean(values)
    return (max(values) - min(values)) / 2 / mean


def summarise(outcomes: Sequence[Outcome]) -> Summary:
    fitted = [o for o in outcomes if o.m.use == "fit" and o.error is not None]
    errors = [abs(o.error) for o in fitted if o.error is not None]
    high = [o for o in fitted if o.m.confidence == "high"]
    loso = [abs(o.loso_error) for o in fitted if o.loso_error is not None]
    by_id = {o.m.id: o for o in outcomes}
    ratios = []
    for which, big, small in SIZE_STEPS:
        a, b = by_id.get(big), by_id.get(small)
        if a and b and a.estimated_ms and b.estimated_ms:
            ratios.append((which, a.m.value_ms / b.m.value_ms, a.estimated_ms / b.estimated_ms))
    sources: dict[str, list[float]] = {}
    groups: dict[str, list[float]] = {}
    for o in fitted:
        if o.loso_error is not None:
            sources.setdefault(o.m.source, []).append(abs(o.loso_error))
            groups.setdefault(o.m.group, []).append(abs(o.loso_error))
    return Summary(
        rows=len(fitted),
        median_error=statistics.median(errors),
        worst_error=max(errors),
        high_within=sum(1 for o in high if o.error is not None and abs(o.error) <= TARGET_ERROR),
        high_rows=len(high),
        loso_median_error=statistics.median(loso) if loso else math.nan,
        size_ratio=ratios[0] if ratios else None,
        within=sum(1 for e in errors if e <= TARGET_ERROR),
        free=len(FREE),
        noise=noise_band(outcomes),
        size_ratios=tuple(ratios),
        sources=tuple((k, len(v), statistics.median(v)) for k, v in sources.items()),
        groups=tuple(
            GroupSummary(k, len(v), statistics.median(v), max(v))
            for k, v in sorted(groups.items(), key=lambda kv: list(GROUPS).index(kv[0]))
        ),
    )


# ---------------------------------------------------------------------------------------------
# Reporting and writing


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.0%}"


def table(outcomes: Sequence[Outcome]) -> str:
    """The row-by-row table, as Markdown."""
    lines = [
        "| id | model | device | batch | precision | runtime | published ms | estimated ms |"
        " error | left-out error | bound | group | use |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        m = o.m
        est = "" if o.estimated_ms is None else f"{o.estimated_ms:.1f}"
        use = m.use if m.use == "fit" else f"{m.use}: {m.why}"
        lines.append(
            f"| {m.id} | {m.model} | {m.target} | {m.batch} | {m.precision} | {m.runtime} |"
            f" {m.value_ms:g} | {est} | {_pct(o.error)} | {_pct(o.loso_error)} | {o.bound} |"
            f" {m.group if m.onnx_model else ''} | {use} |"
        )
    return "\n".join(lines)


def summary_text(s: Summary) -> str:
    lines = [
        f"rows that steer the fit (high and medium confidence): {s.rows}",
        f"free constants: {s.free}   (target <= {s.rows // 2}, one per two fitted rows)",
        f"median |error|: {s.median_error:.1%}   (target <= {TARGET_MEDIAN:.0%};"
        f" run-to-run noise of the published data: ±{s.noise:.1%})",
        f"worst |error|: {s.worst_error:.1%}",
        f"fitted rows within ±{TARGET_ERROR:.0%}: {s.within} of {s.rows}"
        f"   (high-confidence: {s.high_within} of {s.high_rows})",
        f"leave-one-source-out median |error|: {s.loso_median_error:.1%}",
    ]
    for source, n, median in s.sources:
        short = source if len(source) <= 60 else source[:57] + "..."
        flag = "" if median <= TARGET_LOSO else f"   ABOVE the {TARGET_LOSO:.0%} target"
        lines.append(f"  left out {short} ({n} rows): median |error| {median:.1%}{flag}")
    for g in s.groups:
        lines.append(
            f"group {g.name} ({GROUPS[g.name]}, {g.rows} rows): left-out median |error|"
            f" {g.loso_median_error:.1%}, worst {g.loso_worst_error:.1%}"
        )
    for which, pub, est in s.size_ratios:
        lines.append(
            f"size ratio {which}: published {pub:.3f}, estimated {est:.3f}"
            f" ({est / pub - 1:+.1%}; target within ±10%)"
        )
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, float):
        return f"{value:.4g}" if "e" not in f"{value:.4g}" else f"{value:.3e}"
    return repr(value)


def write_catalog(catalog: Catalog, s: Summary, n_published: int, today: str) -> None:
    """Rewrite the fitted constants' values and sources, and the validation table, in place."""
    text = CATALOG.read_text(encoding="utf-8")
    fitted: dict[str, list[str]] = {}
    for free in FREE:
        fitted.setdefault(free.path[0], []).append(".".join(free.path[1:]))
    note = f"fitted to {n_published} published measurements by benchmarks/calibrate.py on {today}"
    for name, keys in fitted.items():
        const: Constant = catalog.constants[name]
        which = "" if keys == [""] else f" ({', '.join(keys)}; the other entries: assumption)"
        single = [f for f in FREE if f.path[0] == name and f.single_row]
        if single:
            which += "; tuned to one row only: " + ", ".join(
                f"{'.'.join(f.path[1:]) or name} ({f.pinned_by})" for f in single
            )
        block = re.compile(rf"(\[constants\.{name}\]\n)value = .*\n((?:.*\n)*?)source = .*\n")
        text, n = block.subn(
            lambda mt, c=const, w=which: (
                f"{mt.group(1)}value = {_toml_value(c.value)}\n"
                + f'{mt.group(2)}source = "{note}{w}"\n'
            ),
            text,
            count=1,
        )
        if n != 1:
            raise SystemExit(f"catalog.toml has no [constants.{name}] block to write")
    validation = (
        "[validation]\n"
        f"rows = {s.rows}\n"
        f"median_error = {s.median_error:.4f}\n"
        f"worst_error = {s.worst_error:.4f}\n"
        f"loso_median_error = {s.loso_median_error:.4f}\n"
        f"noise = {s.noise:.4f}\n"
        f'fitted_on = "{today}"\n'
    )
    for g in s.groups:
        validation += (
            f"\n[validation.groups.{g.name}]\n"
            f'label = "{GROUPS[g.name]}"\n'
            f"rows = {g.rows}\n"
            f"loso_median_error = {g.loso_median_error:.4f}\n"
            f"loso_worst_error = {g.loso_worst_error:.4f}\n"
        )
    header = (
        "# How far the latency model is from the published EI measurements it was fitted to\n"
        "# (written by benchmarks/calibrate.py --write; see docs/validation.md).\n"
    )
    if "[validation]\n" in text:
        text = re.sub(
            r"\[validation\]\n(?:[^\[\n].*\n)*(?:\n\[validation\.groups\.\w+\]\n(?:[^\[\n].*\n)*)*",
            validation,
            text,
            count=1,
        )
    else:
        text = text.replace("\n[[accelerators]]", f"\n{header}{validation}\n[[accelerators]]", 1)
    CATALOG.write_text(text, encoding="utf-8")


def doc_section(outcomes: Sequence[Outcome], s: Summary, fitted: Catalog) -> str:
    """What docs/validation.md shows between its markers: the summary, the constants, the rows."""
    values = current_values(fitted)
    tuned = " (one row: tuned to it)"
    constants = "\n".join(
        f"| `{free.name}` | {values[free.path]:.4g} | {free.low:g} to {free.high:g} |"
        f" {free.prior:g} | {free.pinned_by}{tuned if free.single_row else ''} |"
        for free in FREE
    )
    return (
        f"{DOC_START}\n\n```\n{summary_text(s)}\n```\n\n"
        "| fitted constant | value | bounds | prior | pinned by |\n|---|---|---|---|---|\n"
        f"{constants}\n\n{table(outcomes)}\n\n{DOC_END}"
    )


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(DOC_START), text.index(DOC_END) + len(DOC_END)
    DOC.write_text(text[:start] + section + text[end:], encoding="utf-8")


def draw(outcomes: Sequence[Outcome], s: Summary, path: Path = PICTURE) -> None:
    """Estimated against published, log-log, one point per modelled row, with the ±20% band."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; imported here so the fit itself needs no plotting
    import matplotlib.pyplot as plt

    colours = {"EI accelerator": "#d9730d", "whole GPU": "#2e7d32", "CPU only": "#1565c0"}
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    lo, hi = 3.0, 3000.0
    grid = np.geomspace(lo, hi, 50)
    ax.fill_between(grid, grid * (1 - TARGET_ERROR), grid * (1 + TARGET_ERROR), color="#eeeeee",
                    label=f"±{TARGET_ERROR:.0%}")  # fmt: skip
    ax.plot(grid, grid, color="#999999", lw=0.8)
    for kind, colour in colours.items():
        for use, marker in (("fit", "o"), ("inform", "x")):
            pts = [o for o in outcomes if o.m.device_kind == kind and o.m.use == use
                   and o.estimated_ms is not None]  # fmt: skip
            if not pts:
                continue
            label = kind if use == "fit" else f"{kind}, low confidence (not fitted)"
            ax.scatter([o.m.value_ms for o in pts], [o.estimated_ms for o in pts], c=colour,
                       marker=marker, s=36, label=label, zorder=3)  # fmt: skip
            for o in pts:
                ax.annotate(o.m.id, (o.m.value_ms, o.estimated_ms), fontsize=7,
                            xytext=(4, -3), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("published latency (ms)")
    ax.set_ylabel("ei_widgets estimate (ms, modelled)")
    ax.set_title(
        f"Estimated vs published: median error {s.median_error:.0%}, worst {s.worst_error:.0%}\n"
        f"({s.rows} rows; leave-one-source-out median {s.loso_median_error:.0%})",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", lw=0.3, color="#dddddd")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None, "Creation Time": None})  # reproducible bytes
    plt.close(fig)


PLACEMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("NonMaxSuppression on the client (the catalog's choice)", ("NonMaxSuppression",)),
    ("everything on the accelerator", ()),
    ("NonMaxSuppression and pre-processing (Cast, Resize) on the client",
     ("NonMaxSuppression", "Cast", "Resize")),
    ("NonMaxSuppression and CropAndResize (RoiAlign) on the client",
     ("NonMaxSuppression", "RoiAlign")),
)  # fmt: skip


def placements(rows: Sequence[Measurement], base: Catalog) -> list[tuple[str, float, str]]:
    """Which ops TensorFlow's EI client ran on the instance is not published: refit with each
    candidate placement (``PLACEMENTS``) and report the fitted rows' median |error| and the
    detector rows' errors, so the data can tell them apart."""
    out = []
    for label, ops in PLACEMENTS:
        table = dict(base.value("cpu_only_ops"))
        table["tensorflow"] = list(ops)
        const = dataclasses.replace(base.constants["cpu_only_ops"], value=table)
        cat = dataclasses.replace(
            base, constants=MappingProxyType({**base.constants, "cpu_only_ops": const})
        )
        fitted = fit(rows, cat)
        errors = {m.id: predict(m, fitted)[0] / m.value_ms - 1 for m in rows if m.use == "fit"}
        detector = " ".join(
            f"{k} {v:+.0%}" for k, v in errors.items() if k in ("G1", "G2", "G3", "G4")
        )
        out.append((label, statistics.median(abs(e) for e in errors.values()), detector))
    return out


def run(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> Summary:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="write catalog.toml and the picture")
    parser.add_argument(
        "--placements", action="store_true", help="compare where TensorFlow's EI client ran ops"
    )
    args = parser.parse_args(argv)
    rows = load_measurements()
    base = packaged_catalog()
    fitted = fit(rows, base)
    outcomes = evaluate(rows, fitted, base)
    s = summarise(outcomes)
    out(table(outcomes))
    out("")
    out("fitted constants:")
    for free in FREE:
        value = current_values(fitted)[free.path]
        bounds = f"bounds {free.low:g}..{free.high:g}, prior {free.prior:g}"
        out(f"  {free.name:32} {value:.4g}   ({bounds})")
    out("")
    out(summary_text(s))
    if args.placements:
        out("\nwhere TensorFlow's EI client ran ops (refitted each time):")
        for label, median, detector in placements(rows, base):
            out(f"  {label}: median |error| {median:.1%}; {detector}")
    if args.write:
        today = dt.date.today().isoformat()
        write_catalog(fitted, s, s.rows, today)
        # The doc and the picture show what the written (rounded) constants achieve.
        written = parse_catalog(tomllib.loads(CATALOG.read_text(encoding="utf-8")))
        outcomes = evaluate(rows, written, written)
        draw(outcomes, s)
        write_doc(doc_section(outcomes, summarise(outcomes), written))
        written = ", ".join(str(p.relative_to(ROOT)) for p in (CATALOG, PICTURE, DOC))
        out(f"\nwrote {written}")
    return s


if __name__ == "__main__":
    run(sys.argv[1:])
