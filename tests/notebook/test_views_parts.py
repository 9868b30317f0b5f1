"""The dashboard's small rooms on their own: the header line, the fit of each size, the gauges'
text, the chart helpers and the sizing options' shared columns (no dashboard, no kernel)."""

from __future__ import annotations

import dataclasses
import html
import re
from decimal import Decimal

import bqplot as bq
import ipywidgets as w
import numpy as np
import pytest

from ei_widgets.common.money import OPTION_PER_MILLION, format_money, money_or_dash
from ei_widgets.common.units import format_bytes, format_percent
from ei_widgets.device import recommendation
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.catalog import default_catalog
from ei_widgets.device.estimate import does_not_fit, estimate
from ei_widgets.device.judgement import judge
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.recommendation import Recommendation
from ei_widgets.device.sizing import recommend
from ei_widgets.models.demo import demo_model
from ei_widgets.notebook.views.charts import (
    TEXT,
    clear_marks,
    figure,
    line,
    round_ticks,
    scatter,
    set_ticks,
    set_xy,
)
from ei_widgets.notebook.views.common import bounded
from ei_widgets.notebook.views.gauges_html import (
    OVER_COLOUR,
    device_gauges_html,
    gauge_html,
    summary_html,
)
from ei_widgets.notebook.views.header import DISCONNECTED, header_html
from ei_widgets.notebook.views.size_table import fit_of
from ei_widgets.notebook.views.sizing import SizingPanel, legend_html
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile
from tests.builders import huge_constant


@pytest.fixture(scope="module")
def big() -> Profile:
    return profile(huge_constant(16384), batch_size=1)  # 1 GiB of weights


@pytest.fixture(scope="module")
def rec() -> Recommendation:
    return recommend(profile(str(demo_model("squeezenet"))), latency_target_ms=20)


# --- the header --------------------------------------------------------------------------------


def test_the_header_names_what_is_attached_and_escapes_the_model() -> None:
    state = AcceleratorState()
    state.attach("ml.eia2.medium", precision="fp16")
    text = header_html(state.attachment, "ml.t3.medium", "<net>", None, "no run yet")
    assert text.startswith(DISCONNECTED)
    assert "<b>ml.eia2.medium</b> (fp16) on ml.t3.medium" in text
    assert "<code>&lt;net&gt;</code>" in text and "<net>" not in text
    assert "so far" not in text and text.endswith("· no run yet</span></div>")
    bare = header_html(None, "ml.t3.medium", None, None, "no run yet")
    assert "· no accelerator on ml.t3.medium · no run yet</span>" in bare  # no model named


# --- the fit of each size ----------------------------------------------------------------------


def test_fit_of_is_the_core_memory_check_in_words(big: Profile) -> None:
    cat = default_catalog()
    instance = cat.notebook_instances()[0].name
    answers = set()
    for acc in cat.accelerators.values():
        judged = judge(big, acc, batch_size=1, precision="fp32", instance=instance, catalog=cat)
        fit = fit_of(judged)
        est = estimate(big, acc, batch_size=1, precision="fp32", instance=instance, catalog=cat)
        answers.add(fit.fits)
        assert fit.fits == est.fits
        if est.fits:
            assert fit.reason is None
            assert f"fits ({format_bytes(est.memory_needed_bytes)} needed)" in fit.html
        else:
            assert fit.reason == str(does_not_fit(big, est, catalog=cat))
            assert f"has {format_bytes(acc.memory_bytes)}" in fit.html
    assert answers == {True, False}  # the model fits some sizes and not others


def test_without_a_model_every_size_fits() -> None:
    fit = fit_of(None)
    assert fit.fits and fit.reason is None
    assert "choose a model" in fit.html


# --- the gauges' text --------------------------------------------------------------------------


def test_the_device_gauges_say_used_over_capacity() -> None:
    empty = MetricsStream().snapshot()
    memory, utilisation = device_gauges_html(empty, None, None)
    assert "no accelerator attached" in memory and "utilisation" in utilisation
    capacity = 2 * 2**30
    used = dataclasses.replace(empty, memory_bytes=3 * 2**30, peak_memory_bytes=3 * 2**30)
    memory, _ = device_gauges_html(used, capacity, "ml.eia2.medium")
    assert "ml.eia2.medium memory" in memory
    assert f"{format_bytes(3 * 2**30)} / {format_bytes(capacity)}" in memory
    assert f"({format_percent(1.5)})" in memory and "over capacity" in memory
    # the bar is full and red, not 150% wide
    assert f"width:100.0%;background:{OVER_COLOUR}" in memory


def test_a_gauge_without_a_figure_is_empty() -> None:
    assert "width:0.0%" in gauge_html("utilisation", None, "—", "#82b366")
    assert "width:25.0%;background:#82b366" in gauge_html("u", 0.25, "25%", "#82b366")


def test_the_summary_has_no_errors_part_until_there_are_errors() -> None:
    empty = MetricsStream().snapshot()
    assert "errors" not in summary_html(empty)
    assert "p50 <b>—</b>" in summary_html(empty)  # no call yet: a dash, not "nan ms"
    assert "3 errors" in summary_html(dataclasses.replace(empty, errors=3))


# --- charts ------------------------------------------------------------------------------------


def test_marks_are_sent_only_when_their_data_changes() -> None:
    scales = {"x": bq.LinearScale(), "y": bq.LinearScale()}
    dots, trace = scatter(scales, "#000", "dots"), line(scales, "#000", "trace")
    assert not dots.display_names and dots.labels == ["dots"]
    assert set_xy(dots, np.array([1.0]), np.array([2.0]))
    assert not set_xy(dots, np.array([1.0]), np.array([2.0]))
    dots.names = ["a"]
    assert clear_marks(dots, trace) == 1  # the line was empty already
    assert len(dots.x) == 0 and len(dots.names) == 0
    assert clear_marks(dots, trace) == 0


def test_chart_titles_and_axis_labels_take_the_theme_text_colour() -> None:
    axes = [bq.Axis(scale=bq.LinearScale()), bq.Axis(scale=bq.LinearScale(), side="left")]
    chart = figure([], axes, "a chart")
    assert TEXT.startswith("var(--jp-content-font-color1, ")
    assert chart.title_style["fill"] == TEXT  # bqplot's own is orange in a dark theme
    assert [axis.label_color for axis in chart.axes] == [TEXT, TEXT]
    chart.close()


def test_axes_tick_at_round_values_from_zero() -> None:
    # bqplot's num_ticks alone labelled a 0-1 s run -0.014218, 0.242891, 0.5, ...
    assert round_ticks(1.0).tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert round_ticks(1.0142).tolist() == [0, 0.5, 1]
    assert round_ticks(13.3).tolist() == [0, 5, 10]
    assert round_ticks(19.7).tolist() == [0, 5, 10, 15]
    assert round_ticks(0.3).tolist() == [0, 0.1, 0.2, 0.3]
    assert round_ticks(0.0).tolist() == round_ticks(float("nan")).tolist() == [0]
    axis = bq.Axis(scale=bq.LinearScale(), num_ticks=5)
    assert set_ticks(axis, 120.0) and axis.tick_values.tolist() == [0, 50, 100]
    assert not set_ticks(axis, 121.0)  # the same ticks: nothing sent
    axis.close()


def test_bounded_boxes_keep_their_bounds() -> None:
    box = bounded(w.BoundedIntText, 5, 1, 10, "Batch", "200px", step=1)
    assert isinstance(box, w.BoundedIntText)
    assert (box.value, box.min, box.max, box.layout.width) == (5, 1, 10, "200px")
    box.value = 50
    assert box.value == 10


# --- the sizing options' columns ---------------------------------------------------------------


def headers(html: str) -> list[str]:
    """The first table's column headers."""
    first = html[html.index("<table") :]
    return re.findall(r"<th[^>]*>(.*?)</th>", first[: first.index("</table>")])


def test_every_table_of_options_opens_with_the_same_columns(rec: Recommendation) -> None:
    shared = len(recommendation.OPTION_COLUMNS)
    panel = SizingPanel(lambda **_: rec)
    try:
        panel.update()
        listing = str(panel.listing.value)
    finally:
        panel.close()
    in_rich, in_panel = headers(rec._repr_html_()), headers(listing)
    assert in_rich[:shared] == in_panel[:shared] == list(recommendation.OPTION_COLUMNS)
    per_million = html.escape(OPTION_PER_MILLION)
    assert in_panel[shared:] == ["$/h", per_million, "bound", "meets", "fp16 agreement"]
    assert per_million in in_rich
    first_row = re.findall(r"<td[^>]*>(.*?)</td>", listing)[:shared]
    first = (rec.ei_rows or rec.today_rows)[0]  # the first group's best
    assert first_row == [html.escape(str(c)) for c in recommendation.option_cells(first)]


def test_every_mark_the_sizing_chart_draws_is_in_its_legend_in_its_colour_and_shape() -> None:
    rec = recommend(demo_model("vgg19"))  # options that do not fit, and a pick today apart
    assert rec.pick_today is not None and rec.pick_today is not rec.pick
    assert any(not r.fits for r in rec.rows)
    panel = SizingPanel(lambda **_: rec)
    try:
        panel.update()
        legend = str(panel.legend.value)
        drawn = [m for m in panel.figure.marks if len(m.x)]
    finally:
        panel.close()
    assert len(drawn) == len(panel.figure.marks)  # every kind of mark has points here
    shapes = {"circle": "●", "cross": "✚", "diamond": "◆", "square": "■"}
    for mark in drawn:
        shape = shapes[mark.marker] if isinstance(mark, bq.Scatter) else "- -"
        entry = f'<span style="color:{mark.colors[0]}">{shape}</span> {html.escape(mark.labels[0])}'
        assert entry in legend, mark.labels[0]
        assert len(mark.colors) == 1 and mark.colors[0].startswith("var(--jp-")
    assert legend.count("<span><span") == len(drawn)
    # a mark the legend cannot draw fails loudly rather than go unexplained
    with pytest.raises(KeyError):
        legend_html([bq.Scatter(marker="triangle-up", colors=["red"], labels=["x"])])


def test_money_or_dash() -> None:
    assert money_or_dash(None) == "—"
    assert money_or_dash(Decimal("0.168")) == format_money(Decimal("0.168"))


def test_the_sizing_table_is_grouped_like_the_rich_html_and_scrolls_rather_than_clips() -> None:
    rec = recommend(demo_model("squeezenet"))
    assert rec.ei_rows and rec.today_rows
    panel = SizingPanel(lambda **_: rec)
    try:
        panel.update()
        listing = str(panel.listing.value)
        rich = rec._repr_html_()
    finally:
        panel.close()
    ei_title = rec.ei_rows[0].group
    for title in (ei_title, "Available today"):
        assert f"<b>{html.escape(title)}</b>" in listing and f"<b>{html.escape(title)}</b>" in rich
    assert listing.index(ei_title) < listing.index("Available today")
    assert listing.count("<table") == 2
    ei_part, today_part = listing.split("Available today", 1)
    assert html.escape(rec.ei_rows[0].option) in ei_part
    assert html.escape(rec.today_rows[0].option) in today_part
    assert "overflow-x:auto" in listing  # a wide table scrolls in its box, never clipped
    assert panel.listing.layout.max_width == "100%"  # no wider than the tab


def test_a_models_row_shows_its_conversion_stage_until_it_is_done() -> None:
    from ei_widgets.models.discovery import ModelEntry
    from ei_widgets.models.frameworks.base import ProgressReporter
    from ei_widgets.notebook.views.models_tab import ModelsTab

    redrawn: list[str] = []
    namespace = {"net": object()}
    tab = ModelsTab(
        namespace,
        default_catalog,
        on_choose=lambda v: None,
        on_profiled=redrawn.append,
        on_refresh=lambda: None,
    )
    try:
        tab.show([ModelEntry("net", "keras-model", "Keras model Functional")])
        reporter = ProgressReporter("net", "tensorflow")  # what a plug-in reports as it converts
        reporter.stage("freezing the weights into the graph", 0.25)
        tab.show()
        assert "converting to ONNX: freezing the weights into the graph… 25%" in (
            tab.models.listing.value
        )
        reporter.finish()
        tab.show()
        assert "converting" not in tab.models.listing.value
        assert redrawn == ["net", "net"]
        ProgressReporter("other", "tensorflow").stage("tracing the model", 0.0)  # not listed here
        assert redrawn == ["net", "net"]
    finally:
        tab.close_tab()
