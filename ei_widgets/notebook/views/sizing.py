"""Sizing: the recommender's table, and latency against $/h for every option it weighed.

The table, the pick and its reason all come from the notebook's one sizing call
(``recommend()``, which ``%ei_recommend`` and the CLI ask with the same defaults); this panel
draws them and says what was searched. The chart goes on the page when the tab is first opened
(``show_chart``): a chart drawn in a hidden tab has no width.
"""

from __future__ import annotations

from collections.abc import Callable

import bqplot as bq
import ipywidgets as w
import numpy as np

from ei_widgets.common.html import BAD, GOOD, WARN
from ei_widgets.common.money import OPTION_PER_MILLION, money_or_dash
from ei_widgets.device.recommendation import (
    OPTION_ALIGN,
    OPTION_COLUMNS,
    Recommendation,
    Row,
    option_cells,
    searched_text,
)
from ei_widgets.device.sizing import DEFAULT_LATENCY_TARGET_MS, DEFAULT_REQUESTS_PER_SECOND
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.charts import clear_marks, figure, line, scatter
from ei_widgets.notebook.views.common import (
    NO_MATH,
    SIMULATED,
    bounded,
    error_html,
    esc,
    note,
    table,
)
from ei_widgets.notebook.views.tab import Chosen, DashboardTab, TabSpec
from ei_widgets.profiling.result import Profile

TABLE_ROWS = 8
"""Options shown per group (EI, available today), best first, as %ei_recommend's HTML groups
them."""
TODAY = "Available today"
NOT_MEASURED = (
    "not measured"  # ei_widgets.device.fp16.NOT_MEASURED, without importing the fp16 tools
)
KIND_COLOURS = {
    "accelerator": "var(--jp-brand-color1, #4e79a7)",
    "gpu": "var(--jp-warn-color1, #f28e2b)",
    "cpu": "var(--jp-layout-color4, #9c9c9c)",
}
UNFIT = "var(--jp-layout-color3, #d0d0d0)"
PICK_MARK = "var(--jp-error-color1, #e15759)"
TODAY_MARK = "var(--jp-success-color1, #59a14f)"
OUTLINE = "var(--jp-ui-font-color0, black)"
KIND_LABELS = {
    "accelerator": "EI accelerator (retired 2023)",
    "gpu": "GPU or Inferentia2 (today)",
    "cpu": "CPU only (today)",
}
_TOOLTIP = {
    "fields": ["name", "x", "y"],
    "labels": ["option", "$/h", "ms"],
    "formats": ["", ".4g", ".4g"],
}
_ALIGN = {"l": "left", "r": "right"}

Recommend = Callable[..., Recommendation]


def _agreement(row: Row) -> str:
    """What fp16 did to the model's outputs, on its fp16 rows; blank on fp32 rows."""
    if row.precision != "fp16":
        return ""
    return row.fp16_agreement or NOT_MEASURED


def grouped_listing(result: Recommendation) -> str:
    """The options in two groups, as ``%ei_recommend``'s HTML shows them: the retired EI
    accelerators, then what is available today, each best first with its count, the pick
    highlighted. In a box that scrolls sideways rather than clip its last column."""
    ei = list(result.ei_rows)
    groups = ((ei[0].group if ei else "EI", ei), (TODAY, list(result.today_rows)))
    headers = [*OPTION_COLUMNS, "$/h", OPTION_PER_MILLION, "bound", "meets", "fp16 agreement"]
    parts = []
    for title, rows in groups:
        if not rows:
            continue
        shown = rows[:TABLE_ROWS]
        pick = result.pick
        highlight = shown.index(pick) if pick is not None and pick in shown else None
        parts.append(f'<div style="margin-top:6px"><b>{esc(title)}</b></div>')
        parts.append(note(f"{len(rows):,} options; the best {len(shown)} shown."))
        parts.append(
            table(
                headers,
                [
                    [
                        *option_cells(r),
                        money_or_dash(r.price_per_hour),
                        money_or_dash(r.cost_per_million),
                        r.bound,
                        "yes" if r.meets else ("no (does not fit)" if not r.fits else "no"),
                        _agreement(r),
                    ]
                    for r in shown
                ],
                align=[_ALIGN[a] for a in OPTION_ALIGN + "rrlll"],
                highlight=highlight,
            )
        )
    total = len(result.rows)
    return (
        f'<div class="ei-sizing-listing" style="{SCROLL}">'
        + "".join(parts)
        + "</div>"
        + note(f"{total:,} options weighed.")
    )


MARK_SYMBOLS = {"circle": "●", "cross": "✚", "diamond": "◆", "square": "■"}
"""How the legend draws each bqplot marker (bqplot's "cross" is an upright plus)."""


def legend_html(marks: list[bq.Mark]) -> str:
    """One legend entry for each mark, in the mark's own colour, marker and label."""
    entries = []
    for mark in marks:
        if isinstance(mark, bq.Scatter):
            symbol = MARK_SYMBOLS[mark.marker]
        else:
            symbol = "- -" if mark.line_style == "dashed" else "—"
        entries.append(
            f'<span><span style="color:{mark.colors[0]}">{symbol}</span> '
            f"{esc(mark.labels[0])}</span>"
        )
    return (
        '<div style="font-size:12px;display:flex;flex-wrap:wrap;gap:12px">'
        + "".join(entries)
        + "</div>"
    )


SCROLL = "overflow-x:auto;max-width:100%"
"""The listing's box: a table wider than the tab scrolls sideways within it, never clipped."""


class SizingPanel(w.VBox, DashboardTab):
    """Latency target and request rate in; the recommender's table and scatter out."""

    def __init__(self, recommend: Recommend) -> None:
        self._recommend = recommend
        self.recommendation: Recommendation | None = None
        self._sized: Profile | None = None  # the profile the table answers for
        self.target = bounded(
            w.BoundedFloatText, DEFAULT_LATENCY_TARGET_MS, 0.01, 1e6, "Target ms", "180px"
        )
        self.rate = bounded(
            w.BoundedFloatText,
            DEFAULT_REQUESTS_PER_SECOND,
            0.0,
            1e9,
            "Req/s",
            "180px",
            tooltip="requests per second to serve (0: any)",
        )
        self.button = w.Button(description="Recommend", button_style="primary", icon="search")
        self.button.on_click(lambda _b: self.update())
        self.reason = w.HTML()
        self.searched = w.HTML()
        # no wider than the tab (a width of 100% would add the widget's margins): its box
        # scrolls (SCROLL) instead of clipping
        self.listing = w.HTML(layout=w.Layout(max_width="100%", min_width="0"))
        self.chart = w.VBox()
        xs, ys = bq.LogScale(), bq.LogScale()
        scales = {"x": xs, "y": ys}
        self.scales = scales
        self.points: dict[str, bq.Scatter] = {
            kind: scatter(
                scales,
                colour,
                KIND_LABELS[kind],
                default_size=40,
                opacities=[0.75],
                tooltip=bq.Tooltip(**_TOOLTIP),
            )
            for kind, colour in KIND_COLOURS.items()
        }
        self.unfit = scatter(
            scales,
            UNFIT,
            "does not fit",
            marker="cross",
            default_size=30,
            tooltip=bq.Tooltip(**_TOOLTIP),
        )
        self.pick = scatter(
            scales, PICK_MARK, "pick", display_names=True, marker="diamond", default_size=220,
            stroke=OUTLINE,
        )  # fmt: skip
        # the pick among what can be bought today (sizing.Recommendation.pick_today)
        self.pick_today = scatter(
            scales, TODAY_MARK, "pick available today", display_names=True, marker="square",
            default_size=160, stroke=OUTLINE,
        )  # fmt: skip
        self.target_line = line(
            scales, PICK_MARK, "latency target", line_style="dashed", display_legend=False
        )
        self.figure = figure(
            [*self.points.values(), self.unfit, self.target_line, self.pick, self.pick_today],
            [
                bq.Axis(scale=xs, label="$ per hour (SageMaker, on demand)", tick_format=".3g"),
                bq.Axis(
                    scale=ys,
                    side="left",
                    label="latency per call (ms)",
                    tick_format=".3g",
                    label_offset="55px",
                ),
            ],
            "Latency against price, every option (modelled)",
            height="360px",
            margin={"top": 30, "bottom": 45, "left": 75, "right": 15},
            min_width=None,
        )
        # An HTML legend under the chart, one entry for each of its marks: bqplot's own is drawn
        # inside the plot area (over the points) and, drawn before the chart has a size, with
        # negative widths.
        self.legend = w.HTML(legend_html(self.figure.marks))
        super().__init__(
            [
                w.HTML(
                    f"<b>Sizing</b> {SIMULATED} "
                    + note(
                        "The cheapest option that meets the latency target at the request rate "
                        "(the same call as %ei_recommend)."
                    )
                ),
                w.HBox([self.target, self.rate, self.button]),
                self.reason,
                self.searched,
                self.chart,
                self.listing,
            ]
        )
        self.clear("Choose a model, then press Recommend.")

    def show_chart(self) -> None:
        """Put the chart on the page (once the tab is visible, so it has a width)."""
        if not self.chart.children:
            self.chart.children = (self.figure, self.legend)

    def clear(self, text: str) -> None:
        self.recommendation = None
        self.reason.value = note(text)
        self.searched.value = ""
        self.listing.value = ""
        clear_marks(*self.points.values(), self.unfit, self.pick, self.pick_today, self.target_line)

    def update(self) -> Recommendation | None:
        """Ask the recommender with the panel's target and rate, and draw its answer."""
        rate = float(self.rate.value) or None
        try:
            result = self._recommend(
                latency_target_ms=float(self.target.value), requests_per_second=rate
            )
        except EIError as error:
            self.clear("")
            self.reason.value = error_html(str(error))
            return None
        self.show(result)
        return result

    def show(self, result: Recommendation) -> None:
        self.recommendation = result
        pick = result.pick
        colour = GOOD if pick is not None else BAD
        close = (
            f'<div style="font-size:12px;color:{WARN}">Too close to call: the options near the'
            " target are within the latency model's error of it.</div>"
            if result.too_close
            else ""
        )
        self.reason.value = (
            f'<div class="{NO_MATH}" style="font-size:13px;color:{colour}">'
            f"{esc(result.reason)}</div>{close}"
        )
        fp16 = f" {result.fp16.summary}" if result.fp16 is not None else ""
        self.searched.value = note(
            f"{searched_text(result)} Latencies are {result.accuracy}.{fp16}"
        )
        rows = list(result.rows)
        for kind, mark in self.points.items():
            self._plot(mark, [r for r in rows if r.kind == kind and r.fits])
        self._plot(self.unfit, [r for r in rows if not r.fits])
        self._plot(self.pick, [pick] if pick is not None else [])
        today = result.pick_today
        self._plot(self.pick_today, [today] if today is not None and today is not pick else [])
        target = result.latency_target_ms
        prices = [float(r.price_per_hour) for r in rows if r.price_per_hour > 0]
        with self.target_line.hold_sync():
            if target is not None and prices:
                self.target_line.x = np.array([min(prices) * 0.8, max(prices) * 1.25])
                self.target_line.y = np.array([target, target])
            else:
                self.target_line.x, self.target_line.y = np.zeros(0), np.zeros(0)
        self.listing.value = grouped_listing(result)

    @staticmethod
    def _plot(mark: bq.Scatter, rows: list[Row]) -> None:
        with mark.hold_sync():
            mark.x = np.array([float(r.price_per_hour) for r in rows], dtype=float)
            mark.y = np.array([r.latency_ms for r in rows], dtype=float)
            mark.names = [f"{r.label}, batch {r.batch_size}, {r.precision}" for r in rows]

    def show_model(self, chosen: Chosen) -> None:
        """A new model is sized at once (every batch size is weighed, so a batch change needs no
        new answer)."""
        if chosen.profile is self._sized and chosen.profile is not None:
            return
        self._sized = chosen.profile
        if chosen.variable is None:
            self.clear("Choose a model, then press Recommend.")
        elif chosen.profile is None:
            self.clear("This model could not be profiled, so it cannot be sized.")
        else:
            self.update()

    def opened(self) -> None:
        self.show_chart()

    def hidden(self) -> None:
        # off the page while hidden: a new (split) view would draw it with no width
        self.chart.children = ()

    def figures(self) -> tuple[w.Widget, ...]:
        return (self.figure,)


TAB = TabSpec("Sizing", lambda board: SizingPanel(board.recommend))
