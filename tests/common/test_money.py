"""Money: the one formatter, rounding once then splitting, and the pure bill."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ei_widgets.billing.budgets import Budget
from ei_widgets.billing.charges import Work, bill, units_after
from ei_widgets.common.money import (
    US_PER_HOUR,
    US_PER_S,
    dollars,
    format_money,
    micro_per_hour,
    month_start,
    split,
)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("1234.5", "$1,234.50"),
        ("159.14", "$159.14"),
        ("12.345", "$12.34"),  # half-even
        ("5.232", "$5.232"),
        ("0.218", "$0.218"),
        ("0.218000", "$0.218"),  # the stored precision does not show
        ("0.05", "$0.05"),
        ("0.0500139", "$0.05001"),
        ("0.099996", "$0.10"),
        ("0.000545", "$0.000545"),
        ("0.000000545", "$0.000000545"),
        ("0", "$0.00"),
        ("-0.52", "-$0.52"),
    ],
)
def test_format_money(amount: str, text: str) -> None:
    assert format_money(Decimal(amount)) == text


def test_an_amount_reads_the_same_whatever_its_type() -> None:
    assert format_money(Decimal("0.2180")) == format_money(0.218) == format_money(Decimal("0.218"))
    assert format_money(3) == "$3.00"


def test_a_small_running_cost_visibly_ticks() -> None:
    # The cheapest notebook instance alone, $0.05/h: below a dollar (twenty hours of it), the
    # text changes within ten seconds.
    rate = micro_per_hour("0.05")
    for elapsed_s in (60, 3600, 6 * 3600, 19 * 3600):
        now = format_money(dollars(rate * elapsed_s * US_PER_S))
        later = format_money(dollars(rate * (elapsed_s + 10) * US_PER_S))
        assert now != later, (elapsed_s, now)


def test_split_rounds_once_and_the_parts_add_up() -> None:
    unit = US_PER_HOUR  # one micro-dollar in units
    for a in range(0, 7 * unit, unit // 7):
        for b in (0, unit // 2, unit // 3, 5 * unit + 1, 12_345_678_901):
            parts = split([a, b])
            assert sum(parts) == dollars(a + b)
            assert all(abs(p - Decimal(u) / (unit * 10**6)) < Decimal("0.000001") for p, u in
                       zip(parts, (a, b), strict=True))  # fmt: skip
    assert [str(p) for p in split([0, 0])] == ["0.000000", "0.000000"]
    # Two halves of a micro-dollar each: one micro-dollar in all, given to the first.
    assert split([unit // 2, unit // 2]) == [Decimal("0.000001"), Decimal("0")]


def test_month_start_is_utc() -> None:
    local = datetime.fromisoformat("2026-12-01T00:30:00+02:00")  # still November in UTC
    assert month_start(local) == datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_bill_is_pure_arithmetic() -> None:
    hour = 3_600 * US_PER_S
    inst, acc, gpu = micro_per_hour("0.05"), micro_per_hour("0.168"), micro_per_hour("0.736")
    snap = bill(
        at=datetime(2026, 11, 28, tzinfo=timezone.utc),
        elapsed_us=hour,
        instance="ml.t3.medium",
        instance_rate=inst,
        accelerator="ml.eia2.medium",
        accelerator_rate=acc,
        instance_units=inst * hour,
        accelerator_units=acc * hour,
        inferences=400_000,
        comparison="ml.g4dn.xlarge",
        comparison_rate=gpu,
        budget=Budget(Decimal("0.5")),
        budget_units=(inst + acc) * hour,
    )
    assert (snap.instance_cost, snap.accelerator_cost, snap.total) == (
        Decimal("0.050000"),
        Decimal("0.168000"),
        Decimal("0.218000"),
    )
    assert snap.rate_per_hour == Decimal("0.218")
    assert snap.cost_per_million == Decimal("0.545000")
    assert snap.comparison_cost == Decimal("0.736000")
    assert snap.savings == Decimal("0.518000")
    assert snap.budget_fraction == Decimal("0.4360")
    assert snap.savings_text == "saved $0.518 (70%) against ml.g4dn.xlarge"


def test_units_after_a_cut_and_work_since() -> None:
    spans = [(10, 0.0, 5.0), (20, 4.0, 8.0)]
    assert units_after(spans, 6.0) == 20 * 2 * US_PER_S
    assert units_after(spans, 0.0) == (10 * 5 + 20 * 4) * US_PER_S
    assert Work(10, 2, 1.5).since(Work(4, 3, 0.5)) == Work(6, 0, 1.0)
