"""Notebook-native results: the answer first, sensible figures, the rest folded, short reprs."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

import pytest

from ei_widgets.billing.ledger_history import UsageRow
from ei_widgets.billing.meters import CostMeter, ManualClock
from ei_widgets.billing.usage import Usage, usage_html
from ei_widgets.common.html import PICK_STYLE
from ei_widgets.common.money import format_money
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.recommendation import (
    SHOWN_OPTIONS,
    Recommendation,
    searched_text,
    shown_rows,
)
from ei_widgets.device.sizing import recommend
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import SHOWN_OP_TYPES, Profile


@pytest.fixture(scope="module")
def squeeze() -> Profile:
    return profile(str(demo_model("squeezenet")))


@pytest.fixture(scope="module")
def rec(squeeze: Profile) -> Recommendation:
    return recommend(squeeze, latency_target_ms=20, requests_per_second=10)


def figures(html: str, unit: str) -> list[str]:
    return re.findall(rf"(\d[\d,]*(?:\.\d+)?) {unit}\b", html)


def at_most_three_figures(number: str) -> bool:
    if "." not in number:
        return True  # whole numbers keep their digits: 1,235
    return len(number.replace(",", "").replace(".", "").lstrip("0")) <= 3


def test_profile_html_puts_the_size_first_and_folds_the_rest(squeeze: Profile) -> None:
    html = squeeze._repr_html_()
    summary = html.index("FLOPs per call")
    assert summary < html.index("<table")  # the answer before any table
    assert "1.24 M parameters" in html
    ops = squeeze.by_op_type()
    assert len(ops) > SHOWN_OP_TYPES
    folded = html.index("<details")
    assert html.index(ops[0].op_type) < folded  # the heaviest op type open
    assert f"{len(ops) - SHOWN_OP_TYPES} more op types" in html
    assert "Conv" in html and "%" in html  # a sorted share, so more than Conv is readable


def test_profile_repr_is_one_short_line(squeeze: Profile) -> None:
    text = repr(squeeze)
    assert text.startswith("<Profile light_squeezenet: ") and "\n" not in text
    assert "1.24 M parameters" in text and len(text) < 120


def test_profile_to_pandas_has_a_row_per_node(squeeze: Profile) -> None:
    frame = squeeze.to_pandas()
    assert len(frame) == len(squeeze.nodes)
    assert frame["flops"].sum() == squeeze.flops


def test_recommendation_html_answer_first_pick_highlighted_rest_folded(
    rec: Recommendation,
) -> None:
    html = rec._repr_html_()
    assert rec.pick is not None
    assert html.index(rec.pick.option) < html.index(rec.reason[:30]) < html.index("<table")
    open_part = html[: html.index("<details")]
    assert open_part.count("<tr") - 1 <= SHOWN_OPTIONS
    assert open_part.count(PICK_STYLE) == 1  # the pick, once, in the theme's colours
    assert f"all {len(rec.rows):,} options" in html
    assert searched_text(rec) in html
    assert len(html) < 100_000  # not the whole dataclass dump of every option
    for number in figures(html, "ms"):
        assert at_most_three_figures(number), number


def test_the_options_that_matter_include_the_pick_and_the_fastest(rec: Recommendation) -> None:
    shown = shown_rows(rec)
    assert rec.pick in shown
    fastest = min((r for r in rec.rows if r.fits), key=lambda r: r.latency_ms)
    assert fastest in shown
    order = list(rec.rows)
    assert [order.index(r) for r in shown] == sorted(order.index(r) for r in shown)


def test_recommendation_repr_is_short(rec: Recommendation) -> None:
    text = repr(rec)
    assert text.startswith("<Recommendation: ") and len(text) < 200
    assert rec.pick is not None and rec.pick.option in text


def test_recommendation_to_pandas_marks_the_pick(rec: Recommendation) -> None:
    frame = rec.to_pandas()
    assert len(frame) == len(rec.rows)
    assert frame["pick"].sum() == 1
    assert frame.loc[frame["pick"], "option"].item() == rec.pick.option  # type: ignore[union-attr]


def test_the_models_validated_error_and_a_close_call_are_shown(rec: Recommendation) -> None:
    close = dataclasses.replace(
        rec, accuracy="modelled; ±18% against 14 published measurements", too_close=True
    )
    html = close._repr_html_()
    assert "Latencies are modelled; ±18% against 14 published measurements." in html
    note = "within the model&#x27;s error of each other"
    assert note in html
    assert note not in dataclasses.replace(rec, too_close=False)._repr_html_()


def test_searched_text_says_what_was_weighed(rec: Recommendation) -> None:
    text = searched_text(rec)
    assert text.startswith("Searched 6 EI accelerators on ")
    assert "batch sizes 1, 2, 4, 8, 16, 32" in text
    assert f"{len(rec.rows):,} options" in text


def bill() -> Any:
    state = AcceleratorState()
    clock = ManualClock()
    meter = CostMeter(state, clock=clock, work=lambda: (0, 0, 0.0)).start(thread=False)
    state.attach("ml.eia2.medium")
    clock.advance(3600)
    meter.tick()
    snap = meter.snapshot()
    meter.stop()
    return snap


def test_cost_snapshot_html_and_repr() -> None:
    snap = bill()
    html = snap._repr_html_()
    total = format_money(snap.total)
    assert html.index(total) < html.index("now")  # the total first
    assert "$0.218/h" in html  # the rate as the catalog prices it, not rounded to $0.22
    assert "ml.eia2.medium $0.168/h" in html
    assert "<details" in html
    assert repr(snap) == f"<CostSnapshot {total} after 1 h 00 min, $0.218/h now>"
    assert snap._repr_html_() == html


def test_usage_html_and_frame() -> None:
    rows = [
        UsageRow("2026-11-30", 2, 7200.0, 3600.0, Decimal("0.1"), Decimal("0.168"),
                 Decimal("0.268"), 12_345, 0, Decimal("21.71")),
        UsageRow("2026-12-01", 1, 600.0, 0.0, Decimal("0.008333"), Decimal("0"),
                 Decimal("0.008333"), 0, 0, None),
    ]  # fmt: skip
    html = Usage(rows)._repr_html_()
    assert html.index("$0.2763") < html.index("<table")  # the total first
    assert "12.3 k" in html and "2 h" in html and "10 min 00 s" in html
    frame = Usage(rows).to_pandas()
    assert list(frame["key"]) == ["2026-11-30", "2026-12-01"]
    assert "No usage recorded" in usage_html([])


def test_usage_returns_rows_that_show_as_a_table(tmp_path: Any) -> None:
    from ei_widgets.billing.usage import usage

    rows = usage(path=tmp_path / "none.sqlite")  # nothing recorded: nothing created either
    assert isinstance(rows, list) and isinstance(rows, Usage) and rows == []
    assert "No usage recorded" in rows._repr_html_()


def test_dollar_amounts_are_never_typeset_as_math(rec: Recommendation, squeeze: Profile) -> None:
    """Notebooks run MathJax over HTML output: "$0.22/h ... $0.74/h" would read as a formula."""
    for html in (rec._repr_html_(), squeeze._repr_html_(), bill()._repr_html_()):
        assert html.startswith('<div class="tex2jax_ignore mathjax_ignore"')


def test_each_dollars_per_million_is_named_for_what_it_is() -> None:
    """The bill's, a sizing option's and a usage row's $ per million are three figures: each
    view names them alike, and none just "$ per million"."""
    import html as html_module

    from ei_widgets.common import money
    from ei_widgets.reports.plain_text import recommendation_text

    labels = (money.BILL_PER_MILLION, money.OPTION_PER_MILLION, money.USAGE_PER_MILLION)
    assert len(set(labels)) == 3
    meter = CostMeter(AcceleratorState(), clock=ManualClock(), work=lambda: (5, 0, 0.1))
    meter.start(thread=False)
    meter.tick()
    snap = meter.snapshot()
    meter.stop()
    assert f"{money.BILL_PER_MILLION}: " in snap._repr_html_()
    rec = recommend(demo_model("squeezenet"))
    option = html_module.escape(money.OPTION_PER_MILLION)
    assert option in rec._repr_html_()
    assert money.OPTION_PER_MILLION in recommendation_text(rec)
    row = UsageRow("2026-11-30", 1, 60.0, 60.0, Decimal("0.1"), Decimal("0.1"), Decimal("0.2"),
                   10, 0, Decimal("20000"))  # fmt: skip
    assert html_module.escape(money.USAGE_PER_MILLION) in usage_html([row])
    for shown in (snap._repr_html_(), rec._repr_html_(), recommendation_text(rec)):
        assert not re.search(r"\$ per million(?! (inferences|at))", html_module.unescape(shown))
