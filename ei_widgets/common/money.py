"""Money: exact cost units, dollars, and the one way an amount reads on screen.

Rates are integer micro-dollars per hour and durations integer microseconds, so a rate times a
duration is an exact integer ("units"); sums of units never drift. Units become ``Decimal``
dollars, rounded half-even to the micro-dollar, only when shown or stored as a result; a sum is
rounded once and then split (:func:`split`), so the parts shown add up to the total shown.

Every view (widgets, magics, reports, the CLI) formats dollars through :func:`format_money`, so one
amount reads the same everywhere. This module imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = [
    "BILL_PER_MILLION",
    "MICRO",
    "OPTION_PER_MILLION",
    "UNITS_PER_DOLLAR",
    "UNITS_PER_MICRO",
    "USAGE_PER_MILLION",
    "US_PER_HOUR",
    "US_PER_S",
    "dollars",
    "format_money",
    "micro_per_hour",
    "money_or_dash",
    "month_start",
    "per_hour",
    "rate_dollars",
    "split",
    "us",
]

US_PER_S = 1_000_000
US_PER_HOUR = 3_600 * US_PER_S
# rate (micro-dollars per hour) x duration (microseconds) = "units"; one dollar is this many units.
UNITS_PER_DOLLAR = US_PER_HOUR * 1_000_000
UNITS_PER_MICRO = US_PER_HOUR  # one micro-dollar
MICRO = Decimal("0.000001")

# Three different "$ per million" figures, each named for what it is, in every view (dashboard,
# rich HTML, command line), so that none reads as another:
BILL_PER_MILLION = "$ per million inferences so far (bill)"
"""The bill so far (instance, accelerator, idle time included) over the inferences so far."""
OPTION_PER_MILLION = "$ per million at this option's rate"
"""A sizing option's price per hour over the inferences it serves in an hour at the asked rate
(or its full throughput)."""
USAGE_PER_MILLION = "$ per million inferences billed (row)"
"""One usage row's cost over that row's inferences."""

MONEY_DIGITS = 4  # significant figures shown: a $0.05/h cost visibly ticks every few seconds


def micro_per_hour(price_per_hour: Decimal | int | str) -> int:
    """A price in dollars per hour as integer micro-dollars per hour (half-even rounding)."""
    value = price_per_hour if isinstance(price_per_hour, Decimal) else Decimal(str(price_per_hour))
    return int((value * 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def dollars(units: int) -> Decimal:
    """Exact cost units (micro-dollars/hour x microseconds) as dollars, to the micro-dollar."""
    return (Decimal(units) / Decimal(UNITS_PER_DOLLAR)).quantize(MICRO, rounding=ROUND_HALF_EVEN)


def rate_dollars(micro: int) -> Decimal:
    """Integer micro-dollars (per hour, per day...) as dollars with six decimals."""
    return (Decimal(micro) / 1_000_000).quantize(MICRO)


def split(parts: Sequence[int]) -> list[Decimal]:
    """Round the sum of ``parts`` (units, none negative) once, then share it out.

    Each part gets its micro-dollars rounded down, and the micro-dollars left over go to the parts
    with the largest remainders (ties to the earlier part), so the parts add up to
    ``dollars(sum(parts))`` exactly and each is within one micro-dollar of its exact value.
    """
    total_micro = int(dollars(sum(parts)) / MICRO)
    floors = [p // UNITS_PER_MICRO for p in parts]
    left = total_micro - sum(floors)
    by_remainder = sorted(range(len(parts)), key=lambda i: -(parts[i] % UNITS_PER_MICRO))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [(Decimal(f) / 1_000_000).quantize(MICRO) for f in floors]


def us(seconds: float) -> int:
    """Seconds as whole microseconds, never negative."""
    return max(0, round(seconds * US_PER_S))


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s month, in UTC."""
    now = now.astimezone(timezone.utc)
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)


def format_money(amount: Decimal | int | float) -> str:
    """Dollars for display: four significant figures, never fewer decimals than cents.

    ``1234.5 -> '$1,234.50'``, ``0.218 -> '$0.218'``, ``0.0500139 -> '$0.05001'``,
    ``0.000000545 -> '$0.000000545'``, ``-0.52 -> '-$0.52'``. Half-even rounding; zeros past the
    cents are dropped, so an amount reads the same whatever its stored precision.
    """
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite():
        return f"${value}"
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = 2
    if value != 0:
        magnitude = value.adjusted()  # the power of ten of the first significant digit
        places = max(2, MONEY_DIGITS - 1 - magnitude)
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,f}"
    whole, _, frac = text.partition(".")
    frac = frac[:2] + frac[2:].rstrip("0")
    return f"{sign}${whole}.{frac}"


def per_hour(rate: Decimal) -> str:
    """An hourly price: ``$0.168/h``, as the money formatter shows any amount."""
    return f"{format_money(rate)}/h"


def money_or_dash(amount: Decimal | None) -> str:
    """An amount, or a dash where there is none (no inference yet, no price)."""
    return "—" if amount is None else format_money(amount)
