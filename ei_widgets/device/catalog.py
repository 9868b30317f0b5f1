"""Accelerators, instances, prices and the latency model's constants, loaded from package data.

The facts live in ``ei_widgets/device/catalog.toml`` (one row per accelerator or instance, each with
its source, as-of date and the names of its derived fields). This module only reads them into
frozen dataclasses and applies the user's price overrides.

Price overrides come from a TOML or JSON file (``load_price_overrides(path)``, or the file named by
the ``EI_WIDGETS_PRICES`` environment variable) or a mapping (``set_price_overrides``)::

    region = "eu-west-1"      # label shown with prices
    discount = "0.15"         # fraction taken off every price, 0 <= discount < 1
    [prices]                  # $/h replacing the catalog's (SageMaker price for accelerators)
    "ml.eia2.medium" = "0.20"
    "ml.t3.medium" = "0.0582"
    [ec2_prices]              # EC2 $/h of accelerators
    "ml.eia2.medium" = "0.14"

A bad value is rejected with a ``CatalogError`` naming the key and, for files, its line.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ei_widgets.errors import CatalogError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

GIB = 2**30
PRICES_ENV = "EI_WIDGETS_PRICES"
MAX_PRICE_PER_HOUR = Decimal(1_000_000)
"""The highest price accepted, in dollars per hour (the dearest real instance costs about $100):
anything above is a typo, and its micro-dollars must fit the ledger's 64-bit integers."""
MAX_PRICES_FILE_BYTES = 1 << 20
"""A price overrides file is a few lines; a larger one is refused before it is read."""


@dataclass(frozen=True)
class Accelerator:
    """One Elastic Inference accelerator type."""

    name: str
    family: str  # "eia1" | "eia2"
    f32_tflops: float
    f16_tflops: float
    memory_bytes: int
    gpu: str  # the whole GPU it was a slice of
    gpu_fraction: float
    memory_bandwidth_gbps: float
    ec2_price_per_hour: Decimal
    price_per_hour: Decimal  # SageMaker
    source: str
    as_of: str
    derived: frozenset[str]
    available_until: str | None = None  # ISO date it closed to new customers (EI: 2023-04-15)

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB

    @property
    def retired(self) -> bool:
        """Closed to new customers (every EI accelerator since 2023-04-15)."""
        return self.available_until is not None


@dataclass(frozen=True)
class Instance:
    """A notebook instance, a whole-GPU instance or a CPU-only instance."""

    name: str
    role: str  # "notebook" | "gpu" | "cpu"
    vcpus: int
    memory_bytes: int
    price_per_hour: Decimal
    gpu: str | None
    network_gbps: float  # the instance's network bandwidth ("up to", Gbit/s)
    source: str
    as_of: str
    derived: frozenset[str]
    gpu_count: int = 0
    gpu_f32_tflops: float | None = None
    gpu_f16_tflops: float | None = None
    gpu_memory_bytes: int | None = None
    gpu_memory_bandwidth_gbps: float | None = None
    # From the accelerator's [gpus.X] entry: whether a tuned (TensorRT-class) runtime exists for
    # it (not on Inferentia2), and what its latency model is when it is not a GPU's.
    tuned_runtime: bool = True
    model_note: str | None = None
    # A reference instance: the CPU or GPU of a published measurement, kept for calibration and
    # never offered (not in notebook_instances, gpu_instances or cpu_instances).
    reference: bool = False

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB

    @property
    def family(self) -> str:
        """The instance family: ``"c5"`` for ``ml.c5.2xlarge``."""
        return self.name.removeprefix("ml.").split(".")[0]


@dataclass(frozen=True)
class GroupError:
    """The validated error of one group of published rows (``ei_widgets.device.accuracy``): each row
    predicted by a fit made without its source (leave-one-source-out)."""

    name: str  # "classifier", "detector", "cpu"
    label: str  # "dense CNN classifiers"
    rows: int
    loso_median_error: float  # median |predicted / published - 1|, each source left out
    loso_worst_error: float  # the largest of them
    noise: float  # the published data's own run-to-run noise: no error is stated below it

    @property
    def band(self) -> float:
        """The error stated to users: the worst left-out row's (never below the noise), so
        every validated row of the group lies inside it."""
        return max(self.loso_worst_error, self.noise)

    @property
    def text(self) -> str:
        """``"±27% for detectors with data-dependent post-processing (7 published EI
        measurements, each predicted without its source; median ±11%)"``."""
        typical = max(self.loso_median_error, self.noise)
        return (
            f"±{self.band:.0%} for {self.label} ({self.rows} published EI measurements, each "
            f"predicted without its source; median ±{typical:.0%})"
        )


@dataclass(frozen=True)
class Validation:
    """How far the latency model is from published measurements (``benchmarks/calibrate.py``)."""

    rows: int  # published measurements the error was measured on (high and medium confidence)
    median_error: float  # median |estimated / published - 1|
    worst_error: float  # the largest |estimated / published - 1| among them
    loso_median_error: float  # median error when each source is predicted by a fit without it
    fitted_on: str  # the date of the fit
    noise: float = 0.0  # run-to-run noise of the published data (repeat runs of one setting)
    groups: Mapping[str, GroupError] = field(default_factory=dict)  # per kind of model

    @property
    def band(self) -> float:
        """The widest error of any validated group (the worst left-out row), else the worst
        fitted row's; a model's own error is ``ei_widgets.device.accuracy.model_accuracy``."""
        if self.groups:
            return max(g.band for g in self.groups.values())
        return max(self.worst_error, self.noise)

    @property
    def text(self) -> str:
        """What is stated when the model is not known: every group's error, and that other
        models have none."""
        if not self.groups:
            return f"modelled: ±{self.band:.0%} against {self.rows} published EI measurements"
        parts = "; ".join(
            f"±{g.band:.0%} for {g.label}" for g in self.groups.values() if g.name != "cpu"
        )
        return (
            f"modelled: {parts} (against {self.rows} published EI measurements, each predicted "
            "without its source); other models: unknown error"
        )


@dataclass(frozen=True)
class Constant:
    """One named constant of the latency model."""

    name: str
    value: Any  # float, or a list/table for op-type sets and per-op values
    unit: str
    description: str
    source: str

    @property
    def is_assumption(self) -> bool:
        return self.source.startswith("assumption")


@dataclass(frozen=True)
class PriceOverrides:
    """Validated user price overrides."""

    region: str | None = None
    discount: Decimal = Decimal(0)
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    ec2_prices: Mapping[str, Decimal] = field(default_factory=dict)
    origin: str = "API"


NOT_VALIDATED = "modelled; not validated against published measurements"
"""What users are told of modelled latencies when the catalog carries no validation."""


@dataclass(frozen=True)
class Catalog:
    """The packaged facts, possibly with price overrides applied."""

    accelerators: Mapping[str, Accelerator]
    instances: Mapping[str, Instance]
    constants: Mapping[str, Constant]
    region: str
    currency: str
    overrides: PriceOverrides | None = None
    validation: Validation | None = None

    @property
    def latency_accuracy(self) -> str:
        """What users are told next to a modelled latency: its validated error, or that it
        has none."""
        return self.validation.text if self.validation is not None else NOT_VALIDATED

    def accelerator(self, name: str) -> Accelerator:
        try:
            return self.accelerators[name]
        except (KeyError, TypeError):
            raise UnknownNameError("accelerator", str(name), self.accelerators) from None

    def instance(self, name: str) -> Instance:
        try:
            return self.instances[name]
        except (KeyError, TypeError):
            raise UnknownNameError("instance", str(name), self.instances) from None

    def notebook_instance(self, name: str) -> Instance:
        """An instance an accelerator can attach to."""
        notebooks = {i.name: i for i in self.notebook_instances()}
        try:
            return notebooks[name]
        except (KeyError, TypeError):
            raise UnknownNameError("notebook instance", str(name), notebooks) from None

    def notebook_instances(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances.values() if i.role == "notebook" and not i.reference)

    def gpu_instances(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances.values() if i.role == "gpu" and not i.reference)

    def cpu_instances(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances.values() if i.role == "cpu" and not i.reference)

    def value(self, name: str) -> Any:
        """The value of a latency-model constant."""
        try:
            return self.constants[name].value
        except KeyError:
            raise UnknownNameError("constant", name, self.constants) from None


# ---------------------------------------------------------------------------------------------
# Loading the packaged data


def _require(row: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise CatalogError(f"{where}: missing {key!r}")
    return row[key]


def _positive(row: Mapping[str, Any], key: str, where: str) -> float:
    value = _require(row, key, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise CatalogError(f"{where}: {key!r} must be a positive number, got {value!r}")
    return float(value)


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise CatalogError(f"{where}: price must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CatalogError(f"{where}: price must be finite, got {value!r}")
    if (isinstance(value, int) and abs(value) > 10**18) or (
        isinstance(value, str) and len(value) > 100
    ):  # str() of an int of 4,300+ digits raises; neither can be a price
        raise CatalogError(
            f"{where}: price must be at most ${MAX_PRICE_PER_HOUR:,} per hour, got {_short(value)}"
        )
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise CatalogError(f"{where}: price must be a number, got {_short(value)}") from None
    if not price.is_finite() or price < 0:
        raise CatalogError(f"{where}: price must be a finite number >= 0, got {_short(value)}")
    if price > MAX_PRICE_PER_HOUR:
        raise CatalogError(
            f"{where}: price must be at most ${MAX_PRICE_PER_HOUR:,} per hour, got {_short(value)}"
        )
    return price


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


def _derived(row: Mapping[str, Any], where: str, fields: set[str]) -> frozenset[str]:
    names = row.get("derived", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CatalogError(f"{where}: 'derived' must be a list of field names")
    unknown = set(names) - fields
    if unknown:
        raise CatalogError(f"{where}: 'derived' names unknown fields {sorted(unknown)}")
    return frozenset(names)


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = _require(row, key, where)
    if not isinstance(value, str) or not value:
        raise CatalogError(f"{where}: {key!r} must be a non-empty string")
    return value


def _date(row: Mapping[str, Any], key: str, where: str) -> str | None:
    """An optional ISO date (``"2023-04-15"``), kept as text."""
    value = row.get(key)
    if value is None:
        return None
    if hasattr(value, "isoformat"):  # TOML reads a bare date as a date
        return str(value.isoformat())
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise CatalogError(
            f"{where}: {key!r} must be a date like 2023-04-15, got {value!r}"
        ) from None


def _named_rows(
    data: Mapping[str, Any], table: str, kind: str
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Each row of ``table`` with its name and the ``where`` its errors start with; a name
    given twice is refused."""
    seen: set[str] = set()
    for i, row in enumerate(data.get(table, [])):
        name = _text(row, "name", f"{table}[{i}]")
        where = f"{kind} {name!r}"
        if name in seen:
            raise CatalogError(f"{where}: duplicate name")
        seen.add(name)
        yield name, where, row


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build a :class:`Catalog` from the parsed data file (validating every row)."""
    meta = data.get("meta", {})
    gpus = data.get("gpus", {})
    accelerators: dict[str, Accelerator] = {}
    acc_fields = set(Accelerator.__dataclass_fields__)
    for name, where, row in _named_rows(data, "accelerators", "accelerator"):
        gpu = _text(row, "gpu", where)
        if gpu not in gpus:
            raise CatalogError(f"{where}: unknown gpu {gpu!r}")
        accelerators[name] = Accelerator(
            name=name,
            family=_text(row, "family", where),
            f32_tflops=_positive(row, "f32_tflops", where),
            f16_tflops=_positive(row, "f16_tflops", where),
            memory_bytes=int(_positive(row, "memory_gib", where) * GIB),
            gpu=gpu,
            gpu_fraction=_positive(row, "gpu_fraction", where),
            memory_bandwidth_gbps=_positive(row, "memory_bandwidth_gbps", where),
            ec2_price_per_hour=_price(_require(row, "ec2_price_per_hour", where), where),
            price_per_hour=_price(_require(row, "price_per_hour", where), where),
            source=_text(row, "source", where),
            as_of=_text(row, "as_of", where),
            derived=_derived(row, where, acc_fields),
            available_until=_date(row, "available_until", where),
        )
    instances: dict[str, Instance] = {}
    inst_fields = set(Instance.__dataclass_fields__)
    for name, where, row in _named_rows(data, "instances", "instance"):
        role = _text(row, "role", where)
        if role not in ("notebook", "gpu", "cpu"):
            raise CatalogError(f"{where}: role must be notebook, gpu or cpu, got {role!r}")
        gpu_name = row.get("gpu")
        gpu_specs: dict[str, Any] = {}
        if role == "gpu":
            if gpu_name not in gpus:
                raise CatalogError(f"{where}: unknown gpu {gpu_name!r}")
            spec = gpus[gpu_name]
            count = int(row.get("gpu_count", 1))
            gpu_specs = {
                "gpu_count": count,
                "gpu_f32_tflops": float(spec["f32_tflops"]) * count,
                "gpu_f16_tflops": float(spec["f16_tflops"]) * count,
                "gpu_memory_bytes": int(spec["memory_gib"] * GIB) * count,
                "gpu_memory_bandwidth_gbps": float(spec["memory_bandwidth_gbps"]) * count,
                "tuned_runtime": bool(spec.get("tuned_runtime", True)),
                "model_note": spec.get("model"),
            }
        instances[name] = Instance(
            name=name,
            role=role,
            vcpus=int(_positive(row, "vcpus", where)),
            memory_bytes=int(_positive(row, "memory_gib", where) * GIB),
            price_per_hour=_price(_require(row, "price_per_hour", where), where),
            gpu=gpu_name if role == "gpu" else None,
            network_gbps=_positive(row, "network_gbps", where),
            source=_text(row, "source", where),
            as_of=_text(row, "as_of", where),
            derived=_derived(row, where, inst_fields),
            reference=bool(row.get("reference", False)),
            **gpu_specs,
        )
    constants: dict[str, Constant] = {}
    for name, row in data.get("constants", {}).items():
        where = f"constant {name!r}"
        constants[name] = Constant(
            name=name,
            value=_require(row, "value", where),
            unit=_text(row, "unit", where),
            description=_text(row, "description", where),
            source=_text(row, "source", where),
        )
    return Catalog(
        accelerators=MappingProxyType(accelerators),
        instances=MappingProxyType(instances),
        constants=MappingProxyType(constants),
        region=str(meta.get("region", "us-east-1")),
        currency=str(meta.get("currency", "USD")),
        validation=_validation(data.get("validation")),
    )


def _validation(row: Mapping[str, Any] | None) -> Validation | None:
    if row is None:
        return None
    where = "validation"
    noise = float(row.get("noise", 0.0))
    groups: dict[str, GroupError] = {}
    for name, g in row.get("groups", {}).items():
        at = f"validation group {name!r}"
        groups[name] = GroupError(
            name=name,
            label=_text(g, "label", at),
            rows=int(_positive(g, "rows", at)),
            loso_median_error=_positive(g, "loso_median_error", at),
            loso_worst_error=_positive(g, "loso_worst_error", at),
            noise=noise,
        )
    return Validation(
        rows=int(_positive(row, "rows", where)),
        median_error=_positive(row, "median_error", where),
        worst_error=_positive(row, "worst_error", where),
        loso_median_error=_positive(row, "loso_median_error", where),
        fitted_on=_text(row, "fitted_on", where),
        noise=noise,
        groups=MappingProxyType(groups),
    )


def packaged_catalog() -> Catalog:
    """The catalog exactly as shipped, without overrides."""
    global _PACKAGED
    if _PACKAGED is None:
        text = resources.files("ei_widgets").joinpath("device/catalog.toml").read_text("utf-8")
        _PACKAGED = parse_catalog(tomllib.loads(text))
    return _PACKAGED


# ---------------------------------------------------------------------------------------------
# Price overrides

_OVERRIDE_KEYS = ("region", "discount", "prices", "ec2_prices")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def _line_of(text: str | None, key: str, table: str | None = None) -> str:
    """' (line N: ...)' for the line of ``text`` that assigns ``key`` ('' if not found).

    With ``table``, the search starts at the table's header (TOML ``[table]`` or JSON
    ``"table": {``) so a name that appears in two tables is found in the right one.
    """
    if not text:
        return ""
    lines = text.splitlines()
    start = 0
    if table is not None:
        header = re.compile(
            r"^\s*(\[\s*"
            + re.escape(table)
            + r"\s*\]|[\"']?"
            + re.escape(table)
            + r"[\"']?\s*[=:])"
        )
        start = next((i for i, line in enumerate(lines) if header.search(line)), 0)
    pattern = re.compile(r"^\s*[{,]?\s*[\"']?" + re.escape(key) + r"[\"']?\s*[=:]")
    for number in range(start, len(lines)):
        if pattern.search(lines[number]):
            return f" (line {number + 1}: {lines[number].strip()})"
    return ""


def _validate_overrides(
    data: Mapping[str, Any], base: Catalog, origin: str, text: str | None = None
) -> PriceOverrides:
    if not isinstance(data, Mapping):
        raise CatalogError(f"{origin}: price overrides must be a table/object")
    for key in data:
        if key not in _OVERRIDE_KEYS:
            raise CatalogError(
                f"{origin}{_line_of(text, key)}: unknown key {key!r}; "
                f"expected one of {', '.join(_OVERRIDE_KEYS)}"
            )
    region = data.get("region")
    if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
        raise CatalogError(
            f"{origin}{_line_of(text, 'region')}: region must look like 'eu-west-1', got {region!r}"
        )
    discount = Decimal(0)
    if "discount" in data:
        where = f"{origin}{_line_of(text, 'discount')}: discount"
        discount = _price(data["discount"], where)
        if not discount < 1:
            raise CatalogError(f"{where} must be a fraction 0 <= d < 1, got {data['discount']!r}")
    tables: dict[str, dict[str, Decimal]] = {}
    for table, valid in (
        ("prices", {**base.accelerators, **base.instances}),
        ("ec2_prices", base.accelerators),
    ):
        raw = data.get(table, {})
        if not isinstance(raw, Mapping):
            raise CatalogError(f"{origin}{_line_of(text, table)}: {table!r} must be a table")
        parsed: dict[str, Decimal] = {}
        for name, value in raw.items():
            line = _line_of(text, name, table)
            if isinstance(value, Mapping):
                # TOML reads a bare ml.t3.medium = 1 as nested tables
                raise CatalogError(
                    f"{origin}: in {table!r}: {name!r} is not a price; quote names that "
                    f'contain dots, e.g. "ml.t3.medium" = "0.05"'
                )
            if name not in valid:
                err = UnknownNameError("name", name, valid)
                raise CatalogError(f"{origin}{line}: in {table!r}: {err}")
            parsed[name] = _price(value, f"{origin}{line}: {table}[{name!r}]")
        tables[table] = parsed
    return PriceOverrides(
        region=region,
        discount=discount,
        prices=MappingProxyType(tables["prices"]),
        ec2_prices=MappingProxyType(tables["ec2_prices"]),
        origin=origin,
    )


def parse_price_overrides(
    text: str, *, fmt: str = "toml", origin: str = "<text>"
) -> PriceOverrides:
    """Parse and validate override text (``fmt`` is "toml" or "json")."""
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{origin} (line {exc.lineno}): invalid JSON: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: invalid TOML: {exc}") from None
    except RecursionError:
        raise CatalogError(f"{origin}: nested too deeply to be a prices file") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise CatalogError(f"{origin}: cannot be read as {fmt.upper()}: {exc}") from None
    return _validate_overrides(data, packaged_catalog(), origin, text)


def apply_overrides(base: Catalog, overrides: PriceOverrides | None) -> Catalog:
    """A copy of ``base`` with ``overrides`` applied (discount after per-name prices)."""
    if overrides is None:
        return base
    keep = Decimal(1) - overrides.discount
    note = f"; price: user override ({overrides.origin})"

    def fix(row: Any, price: Decimal | None, ec2: Decimal | None) -> Any:
        changes: dict[str, Any] = {}
        derived = set(row.derived)
        if price is not None:
            changes["price_per_hour"] = price
            derived.discard("price_per_hour")
        if ec2 is not None:
            changes["ec2_price_per_hour"] = ec2
            derived.discard("ec2_price_per_hour")
        if overrides.discount:
            changes["price_per_hour"] = changes.get("price_per_hour", row.price_per_hour) * keep
            if isinstance(row, Accelerator):
                base_ec2 = changes.get("ec2_price_per_hour", row.ec2_price_per_hour)
                changes["ec2_price_per_hour"] = base_ec2 * keep
        if not changes:
            return row
        return replace(row, source=row.source + note, derived=frozenset(derived), **changes)

    accelerators = {
        name: fix(a, overrides.prices.get(name), overrides.ec2_prices.get(name))
        for name, a in base.accelerators.items()
    }
    instances = {
        name: fix(i, overrides.prices.get(name), None) for name, i in base.instances.items()
    }
    return replace(
        base,
        accelerators=MappingProxyType(accelerators),
        instances=MappingProxyType(instances),
        region=overrides.region or base.region,
        overrides=overrides,
    )


_PACKAGED: Catalog | None = None
_LOCK = threading.Lock()
_OVERRIDES: PriceOverrides | None = None
_OVERRIDES_SET = False  # True once the API chose overrides (the env var is then ignored)
_DEFAULT: Catalog | None = None


def _read_override_file(path: str | os.PathLike[str]) -> PriceOverrides:
    """Read a price overrides file: only a regular file of at most ``MAX_PRICES_FILE_BYTES``
    (a FIFO or ``/dev/zero`` is refused from a ``stat``, before it is opened), in UTF-8."""
    try:
        p = Path(path).expanduser()
        info = os.stat(p)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise CatalogError(f"cannot read price overrides {str(path)[:200]!r}: {why}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CatalogError(
            f"price overrides {str(p)!r} is not a regular file (a directory, pipe or device)"
        )
    if info.st_size > MAX_PRICES_FILE_BYTES:
        raise CatalogError(
            f"price overrides {str(p)!r} is {info.st_size:,} bytes; a prices file is at most"
            f" {MAX_PRICES_FILE_BYTES:,}"
        )
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_PRICES_FILE_BYTES + 1)
    except OSError as exc:
        raise CatalogError(f"cannot read price overrides {str(p)!r}: {exc.strerror}") from None
    if len(data) > MAX_PRICES_FILE_BYTES:
        raise CatalogError(f"price overrides {str(p)!r} grew past {MAX_PRICES_FILE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"price overrides {str(p)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    fmt = "json" if p.suffix.lower() == ".json" else "toml"
    return parse_price_overrides(text, fmt=fmt, origin=str(p))


def load_price_overrides(path: str | os.PathLike[str]) -> Catalog:
    """Validate the TOML/JSON file at ``path`` and make it the current overrides."""
    overrides = _read_override_file(path)
    return _set(overrides)


def set_price_overrides(mapping: Mapping[str, Any] | None) -> Catalog:
    """Validate ``mapping`` (same keys as the file) and make it the current overrides.

    ``None`` removes every override (the environment variable included).
    """
    overrides = None
    if mapping is not None:
        overrides = _validate_overrides(mapping, packaged_catalog(), "price overrides")
    return _set(overrides)


def _set(overrides: PriceOverrides | None) -> Catalog:
    global _OVERRIDES, _OVERRIDES_SET, _DEFAULT
    catalog = apply_overrides(packaged_catalog(), overrides)
    with _LOCK:
        _OVERRIDES, _OVERRIDES_SET, _DEFAULT = overrides, True, catalog
    return catalog


def default_catalog() -> Catalog:
    """The packaged catalog with the current price overrides (or ``$EI_WIDGETS_PRICES``)."""
    global _DEFAULT
    catalog = _DEFAULT
    if catalog is not None:
        return catalog
    with _LOCK:
        if _DEFAULT is None:
            overrides = _OVERRIDES
            env = os.environ.get(PRICES_ENV)
            if not _OVERRIDES_SET and env:
                try:
                    overrides = _read_override_file(env)
                except CatalogError as exc:
                    raise CatalogError(f"${PRICES_ENV}: {exc}") from None
            _DEFAULT = apply_overrides(packaged_catalog(), overrides)
        return _DEFAULT


def reset_default_catalog() -> None:
    """Forget the cached default catalog and API overrides (the env var is read again)."""
    global _OVERRIDES, _OVERRIDES_SET, _DEFAULT
    with _LOCK:
        _OVERRIDES, _OVERRIDES_SET, _DEFAULT = None, False, None
