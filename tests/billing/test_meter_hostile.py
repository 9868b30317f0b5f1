"""Nothing breaks the meter: a writer error it did not expect, a damaged session row, a budget
that would break the bill later. Each test is the regression test of one reported defect."""

from __future__ import annotations

import sqlite3
import warnings
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from ei_widgets.billing.ledger import Ledger, LedgerWarning
from ei_widgets.billing.meters import CostMeter, ManualClock, start_meter, stop_meter
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import (
    packaged_catalog,
    parse_price_overrides,
    reset_default_catalog,
)
from ei_widgets.errors import CatalogError, EIError

HOUR = 3600.0


class _Work:
    def __call__(self) -> tuple[int, int, float]:
        return (0, 0, 0.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))


@pytest.fixture
def state() -> AcceleratorState:
    return AcceleratorState(instance="ml.t3.medium", catalog=packaged_catalog())


@pytest.fixture(autouse=True)
def _no_meter() -> object:
    yield
    stop_meter()
    reset_default_catalog()


# --- 1. an exception the ledger writer does not expect --------------------------------------


@pytest.mark.parametrize("price", ["9.2e12", "1e13", "1000001", "1e999999"])
def test_a_price_too_large_for_the_ledger_is_refused_at_the_override(price: str) -> None:
    with pytest.raises(CatalogError, match="at most"):
        parse_price_overrides(f'[prices]\n"ml.eia2.medium" = "{price}"\n')


def test_a_write_the_ledger_refuses_is_skipped_and_metering_goes_on(
    state: AcceleratorState, clock: ManualClock, tmp_path: Path
) -> None:
    # A rate SQLite cannot store (a catalog built past the override check) must not stop the
    # meter: the later accelerators are billed and recorded, and the session closes.
    catalog = packaged_catalog()
    acc = catalog.accelerators["ml.eia2.medium"]
    huge = replace(
        catalog,
        accelerators={
            **catalog.accelerators,
            acc.name: replace(acc, price_per_hour=Decimal("1e13")),
        },
    )
    current = [huge]
    led = Ledger(tmp_path / "usage.sqlite3")
    m = CostMeter(state, ledger=led, clock=clock, work=_Work(), catalog=lambda: current[0])
    m.start(thread=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state.attach("ml.eia2.medium")
        clock.advance(60)
        current[0] = catalog
        state.attach("ml.eia2.large")
        clock.advance(60)
        m.tick()
        assert m.snapshot().accelerator == "ml.eia2.large"
        state.detach()
        m.stop()
    relevant = [w for w in caught if issubclass(w.category, LedgerWarning)]
    assert len(relevant) == 1 and "skipped" in str(relevant[0].message)
    sessions = led.sessions()
    assert len(sessions) == 1 and sessions[0]["ended_at"] is not None
    assert [i["name"] for i in led.intervals() if i["kind"] == "accelerator"] == ["ml.eia2.large"]
    led.close()


def test_a_notebook_name_that_is_not_utf8_is_stored_in_a_safe_form(
    state: AcceleratorState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # JPY_SESSION_NAME in Latin-1: Python hands it over with surrogate escapes.
    monkeypatch.setenv("JPY_SESSION_NAME", b"caf\xe9.ipynb".decode("utf-8", "surrogateescape"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = start_meter(state, tmp_path / "usage.sqlite3", thread=False)
    assert m.session_id is not None
    stop_meter()
    with Ledger(tmp_path / "usage.sqlite3", read_only=True) as led:
        assert led.sessions()[0]["notebook"] == "caf\\xe9.ipynb"


def test_safe_text_keeps_good_names_and_cuts_long_ones() -> None:
    from ei_widgets.billing.ledger import safe_text

    assert safe_text("naïve.ipynb") == "naïve.ipynb"
    assert safe_text("\ud800x") == "\\ud800x"
    assert len(safe_text("x" * 5000) or "") == 1024


def test_an_unexpected_error_in_a_write_never_reaches_the_meter(
    state: AcceleratorState, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = Ledger(tmp_path / "usage.sqlite3")
    m = CostMeter(state, ledger=led, clock=clock, work=_Work(), catalog=packaged_catalog())
    m.start(thread=False)
    real = Ledger.open_interval

    def broken(self: Ledger, *a: object, **kw: object) -> int:
        raise TypeError("something nobody expected")

    monkeypatch.setattr(Ledger, "open_interval", broken)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        state.attach("ml.eia2.medium")  # would raise through the state's observer
        monkeypatch.setattr(Ledger, "open_interval", real)
        clock.advance(HOUR)
        state.attach("ml.eia2.large")
        clock.advance(HOUR)
        snap = m.stop()
    assert snap.accelerator_cost > 0
    assert [i["name"] for i in led.intervals() if i["kind"] == "accelerator"] == ["ml.eia2.large"]
    led.close()


# --- 2. one damaged open-session row ---------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"), [("pid", "not a pid"), ("heartbeat_at", "yesterday"), ("pid", -5)]
)
def test_a_damaged_open_session_row_is_skipped_and_reported(
    column: str, value: object, state: AcceleratorState, tmp_path: Path
) -> None:
    path = tmp_path / "usage.sqlite3"
    with Ledger(path) as led:
        sid = led.open_session(
            instance="ml.t3.medium", rate_micro=50_000, started_at=1.7e9, heartbeat_period=10
        )
    conn = sqlite3.connect(path)
    host = "another-host" if column == "heartbeat_at" else None
    if host:
        conn.execute("UPDATE sessions SET host = ? WHERE id = ?", (host, sid))
    conn.execute(f"UPDATE sessions SET {column} = ? WHERE id = ?", (value, sid))
    conn.commit()
    conn.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = start_meter(state, path, thread=False)
    assert m.session_id is not None and m.session_id != sid
    assert any("cannot be read" in str(w.message) for w in caught)
    stop_meter()


# --- 3. budgets that would break the meter later ---------------------------------------------


@pytest.mark.parametrize(
    "amount", [1e26, "1E+999999", 1e-30, 5e-324, "1e-7", "NaN", "inf", "-1", 0, True, [1]]
)
def test_a_budget_outside_the_valid_range_is_refused_with_the_range(
    amount: object, state: AcceleratorState, clock: ManualClock
) -> None:
    m = CostMeter(state, clock=clock, work=_Work(), catalog=packaged_catalog()).start(thread=False)
    with pytest.raises(EIError, match="budget") as info:
        m.set_budget(amount)  # type: ignore[arg-type]
    if not isinstance(amount, bool | list):
        assert "0.000001" in str(info.value) and "1,000,000,000" in str(info.value)
    assert m.budget is None
    clock.advance(60)
    assert m.tick().total >= 0  # the bill still works


@pytest.mark.parametrize("amount", ["0.000001", "1000000000", "0.05", 12])
def test_budgets_at_the_ends_of_the_range_keep_the_meter_working(
    amount: object, state: AcceleratorState, clock: ManualClock
) -> None:
    m = CostMeter(state, clock=clock, work=_Work(), catalog=packaged_catalog()).start(thread=False)
    m.set_budget(amount, period="session")  # type: ignore[arg-type]
    events: list[object] = []
    m.subscribe(events.append)
    clock.advance(HOUR)
    snap = m.tick()
    assert repr(snap) and snap._repr_html_()  # the cost text renders
    assert m.snapshot().budget_spent is not None
    assert events
