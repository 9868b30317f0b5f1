"""Sizing a hosted endpoint: instance type, accelerator and instance count at a p90 latency target
and a request rate, as SageMaker Inference Recommender answers it (``recommend(...,
endpoint=True)``).

It extends the sizing answer, it does not make its own: every option and its one-call latency
are the rows of :func:`ei_widgets.device.sizing.recommend` (the same estimates every view shows).
For each option that fits, the capacity model (:mod:`ei_widgets.device.capacity`) gives the
fewest instances whose p90 latency under the rate's Poisson load is within the target, the rate
they saturate at, and so the endpoint's price: instances x (instance + accelerator) per hour,
and per million requests at the rate. Each request is one call at its batch (batch 1 unless
others are asked for). Options are sorted by the endpoint's price, then its p90; the pick is
the cheapest, with the pick among the retired EI accelerators and among what can be bought today.

Every latency, p90 and saturation rate is modelled and carries the model's validated error
(``accuracy``); a pick whose p90 is within that error of the target is too close to call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ei_widgets.common.html import (
    BAD,
    BOX,
    FOLDED_LIMIT,
    GOOD,
    NO_MATH,
    WARN,
    esc,
    fold,
    note,
    pandas_module,
    table,
)
from ei_widgets.common.money import format_money, per_hour
from ei_widgets.common.units import format_ms, significant
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.capacity import MAX_INSTANCES, instances_needed
from ei_widgets.device.catalog import Catalog, default_catalog
from ei_widgets.device.recommendation import TODAY, Recommendation, Row
from ei_widgets.errors import EIError
from ei_widgets.profiling.result import Profile

if TYPE_CHECKING:
    import pandas

ENDPOINT_BATCH_SIZES: tuple[int, ...] = (1,)
"""The batch each request carries unless others are asked for."""

P90 = 0.9
"""The latency quantile endpoints are sized at (as Inference Recommender's p90 threshold)."""

PER_MILLION_REQUESTS = "$ per million requests"


@dataclass(frozen=True, slots=True)
class EndpointOption:
    """One option as an endpoint: ``row`` (its one-call judgement) on ``instance_count``
    instances, with its modelled p90 at the rate and the rate it saturates at."""

    row: Row
    instance_count: int
    p90_ms: float
    saturation_rps: float
    utilisation: float  # of the instances' capacity, at the rate
    price_per_hour: Decimal  # the whole endpoint: every instance with its accelerator
    cost_per_million: Decimal  # per million requests at the rate

    @property
    def option(self) -> str:
        """``"2 x ml.m5.large + ml.eia2.medium"``, ``"3 x ml.g4dn.xlarge"``."""
        row = self.row
        what = f"{row.instance} + {row.accelerator}" if row.accelerator else row.option
        return f"{self.instance_count} x {what}"

    @property
    def group(self) -> str:
        return self.row.group

    def to_dict(self) -> dict[str, Any]:
        """The option as a plain dict (money as Decimal), its one-call row's fields included."""
        out = asdict(self.row)
        out.update(
            option=self.option,
            instance_type=self.row.instance,
            instance_count=self.instance_count,
            latency_ms=self.row.latency_ms,
            p90_ms=self.p90_ms,
            saturation_rps=self.saturation_rps,
            utilisation=self.utilisation,
            price_per_hour=self.price_per_hour,
            instance_price_per_hour=self.row.price_per_hour,
            cost_per_million=self.cost_per_million,
        )
        return out


@dataclass(frozen=True)
class EndpointRecommendation:
    """The endpoint sizing answer: ``options`` that meet, cheapest first, ``pick`` and ``reason``;
    ``sizing`` is the one-call answer it extends."""

    options: tuple[EndpointOption, ...]
    pick: EndpointOption | None
    pick_ei: EndpointOption | None
    pick_today: EndpointOption | None
    reason: str
    latency_target_ms: float | None
    requests_per_second: float
    accuracy: str
    too_close: bool
    sizing: Recommendation

    def __iter__(self) -> Iterator[EndpointOption]:
        return iter(self.options)

    def __len__(self) -> int:
        return len(self.options)

    @property
    def ei_options(self) -> tuple[EndpointOption, ...]:
        return tuple(o for o in self.options if o.group != TODAY)

    @property
    def today_options(self) -> tuple[EndpointOption, ...]:
        return tuple(o for o in self.options if o.group == TODAY)

    def to_rows(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.options]

    def to_pandas(self) -> pandas.DataFrame:
        """Every option that meets, cheapest first; ``pick`` marks the recommended one."""
        frame = pandas_module().DataFrame(self.to_rows())
        frame["pick"] = [o is self.pick for o in self.options]
        return frame

    def _repr_html_(self) -> str:
        return endpoint_recommendation_html(self)

    def __repr__(self) -> str:
        pick = self.pick
        if pick is None:
            return "<EndpointRecommendation: no endpoint meets the target>"
        return (
            f"<EndpointRecommendation: {pick.option}: p90 {format_ms(pick.p90_ms / 1e3)} at"
            f" {self.requests_per_second:g} req/s, {per_hour(pick.price_per_hour)}"
            f" (of {len(self.options):,} that meet)>"
        )


def _option(row: Row, rps: float, target_s: float | None) -> EndpointOption | None:
    cap = instances_needed(_RowCall(row.latency_ms / 1e3), rps, target_s, q=P90)
    if cap is None:
        return None
    price = row.price_per_hour * cap.instances
    per_million = Decimal(f"{float(price) * 1e6 / (3600.0 * rps):.6f}")
    return EndpointOption(
        row=row,
        instance_count=cap.instances,
        p90_ms=cap.latency_quantile_s(rps, P90) * 1e3,
        saturation_rps=cap.saturation_rps,
        utilisation=cap.utilisation(rps),
        price_per_hour=price,
        cost_per_million=per_million,
    )


@dataclass(frozen=True, slots=True)
class _RowCall:
    """A sizing row's one call, as the capacity model reads it."""

    latency_s: float


def size_endpoint(
    sizing: Recommendation,
    profile: Profile,
    *,
    requests_per_second: float,
    catalog: Catalog | None = None,
) -> EndpointRecommendation:
    """The cheapest endpoint (instance type, accelerator, instance count) whose p90 latency at
    ``requests_per_second`` is within the target of ``sizing`` (the one-call answer for
    ``profile``, asked with no rate and no concurrency); every option that can meet it."""
    if not requests_per_second > 0:
        raise EIError("Endpoint sizing needs a request rate: pass requests_per_second= (e.g. 100).")
    cat = catalog or default_catalog()
    rps = float(requests_per_second)
    target = sizing.latency_target_ms
    target_s = None if target is None else target / 1e3
    options = [
        option
        for row in sizing.rows
        if row.fits and (option := _option(row, rps, target_s)) is not None
    ]
    options.sort(key=lambda o: (o.price_per_hour, o.p90_ms, o.instance_count))
    pick = options[0] if options else None
    pick_ei = next((o for o in options if o.group != TODAY), None)
    pick_today = next((o for o in options if o.group == TODAY), None)
    accuracy = model_accuracy(profile, catalog=cat)
    reason = _reason(sizing, pick, pick_ei, pick_today, target, rps)
    too_close = False
    if accuracy.band is None:
        reason += " The latency is an estimate of unknown error."
    elif pick is not None and target is not None and pick.p90_ms * (1 + accuracy.band) > target:
        too_close = True
        reason += (
            f" Too close to call: its p90 of {pick.p90_ms:.3g} ms is within this model's"
            f" ±{accuracy.band:.0%} of the {target:g} ms target; load-test it before you decide."
        )
    return EndpointRecommendation(
        options=tuple(options),
        pick=pick,
        pick_ei=pick_ei,
        pick_today=pick_today,
        reason=reason,
        latency_target_ms=target,
        requests_per_second=rps,
        accuracy=sizing.accuracy,
        too_close=too_close,
        sizing=sizing,
    )


def _describe(option: EndpointOption) -> str:
    row = option.row
    return (
        f"{option.option}, {row.precision}, batch {row.batch_size}, at"
        f" {per_hour(option.price_per_hour)}"
    )


def _reason(
    sizing: Recommendation,
    pick: EndpointOption | None,
    pick_ei: EndpointOption | None,
    pick_today: EndpointOption | None,
    target: float | None,
    rps: float,
) -> str:
    cond = f"p90 {target:g} ms at {rps:g} req/s" if target is not None else f"{rps:g} req/s"
    if pick is None:
        fitting = [r for r in sizing.rows if r.fits]
        if not fitting:
            return "No option fits the model in memory at these batch sizes and precisions."
        fastest = min(fitting, key=lambda r: r.latency_ms)
        return (
            f"No endpoint of up to {MAX_INSTANCES} instances meets {cond}; the fastest call is"
            f" {fastest.label} at {fastest.latency_ms:.1f} ms."
        )
    head = (
        f"{_describe(pick)} meets {cond}: p90 {pick.p90_ms:.3g} ms, saturating at"
        f" {significant(pick.saturation_rps)} req/s, {format_money(pick.cost_per_million)} per"
        " million requests."
    )
    parts = []
    if pick_ei is not None:
        parts.append(f"With EI: {_describe(pick_ei)}")
    else:
        parts.append("With EI: no accelerator meets it")
    parts.append(
        f"today: {_describe(pick_today)}" if pick_today is not None else "today: nothing meets it"
    )
    return f"{head} {'; '.join(parts)}."


# --- how it reads ----------------------------------------------------------------------------

COLUMNS = ("endpoint", "precision", "latency alone", "p90 at rate", "saturates at",
           "busy", "price", PER_MILLION_REQUESTS)  # fmt: skip
ALIGN = "llrrrrrr"
SHOWN = 4
"""Options shown open per group; the rest are folded."""


def option_cells(o: EndpointOption) -> tuple[object, ...]:
    """One option's cells under :data:`COLUMNS`."""
    return (
        o.option,
        o.row.precision,
        format_ms(o.row.latency_ms / 1e3),
        format_ms(o.p90_ms / 1e3),
        f"{significant(o.saturation_rps)} req/s",
        f"{o.utilisation:.0%}",
        per_hour(o.price_per_hour),
        format_money(o.cost_per_million),
    )


def endpoint_recommendation_html(rec: EndpointRecommendation) -> str:
    """The pick and its reason, then each group's cheapest options; the rest folded."""
    pick = rec.pick
    parts = [f'<div class="{NO_MATH}" style="{BOX}">']
    if pick is not None:
        parts.append(
            f'<div style="font-size:15px"><b>{esc(pick.option)}</b>, {esc(pick.row.precision)}:'
            f" p90 {esc(format_ms(pick.p90_ms / 1e3))} at {rec.requests_per_second:g} req/s,"
            f" {esc(per_hour(pick.price_per_hour))}</div>"
        )
    parts.append(f'<div style="color:{GOOD if pick else BAD}">{esc(rec.reason)}</div>')
    if rec.too_close:
        parts.append(note("Too close to call: load-test the pick before you decide.", WARN))
    parts.append(
        note(
            f"Latencies, p90s and saturation rates are {rec.accuracy}. The p90 under load is"
            " modelled from a queue of Poisson arrivals over the instances"
            " (ei_widgets.device.capacity); the server's own overhead is not in it."
        )
    )
    for title, options, group_pick in (
        (next((o.group for o in rec.ei_options), "EI"), rec.ei_options, rec.pick_ei),
        ("Available today", rec.today_options, rec.pick_today),
    ):
        if not options:
            continue
        shown = list(options[:SHOWN])
        parts.append(f'<div style="margin-top:6px"><b>{esc(title)}</b></div>')
        parts.append(
            table(
                COLUMNS,
                [option_cells(o) for o in shown],
                ALIGN,
                [i for i, o in enumerate(shown) if o is rec.pick or o is group_pick],
            )
        )
    if len(rec.options) > 2 * SHOWN:
        every = rec.options[:FOLDED_LIMIT]
        parts.append(
            fold(
                f"all {len(rec.options):,} endpoints that meet, cheapest first",
                table(COLUMNS, [option_cells(o) for o in every], ALIGN,
                      [i for i, o in enumerate(every) if o is pick]),
            )
        )  # fmt: skip
    return "".join(parts) + "</div>"
