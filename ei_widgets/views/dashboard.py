"""The notebook dashboard: one view of the kernel's models, accelerator, runs, gauges and bill.

``dashboard()`` (and ``%ei``) returns a :class:`Dashboard`, an ipywidgets container made of
standard ipywidgets and bqplot only, so it shows in JupyterLab, Notebook 7 and VS Code alike.
It holds no state of its own that matters: everything shown comes from the core, and every action
calls the core.

How it stays cheap and in step with the kernel:

- **One state.** It subscribes to the kernel's ``AcceleratorState``: attaching from a magic or the
  JupyterLab picker updates it at once.
- **Models after each cell.** An IPython ``post_run_cell`` callback, registered by the dashboard
  and removed when it closes, reruns ``find_models`` (cheap; profiles are made once per model in
  a background thread).
- **Gauges from one timer.** A single view-side thread wakes about 5 times a second, reads the
  metrics stream's snapshot and per-second series and sends widget messages only for what
  changed: never one message per inference, none when nothing moves.
- **Cost from the meter.** The kernel's cost meter pushes a snapshot every second.
- **Runs in the background.** The Run panel drives a :class:`~ei_widgets.runner.Run` in worker
  threads; the kernel keeps taking cells, and Stop ends the run within half a second.
- **fp16 measured in the background.** The Accelerator tab's "Measure fp16 effect" runs
  ``fp16_check`` on the chosen model in its own thread, its progress drawn as it reports it;
  when it completes the Sizing table is redrawn with the fp16 rows' agreement.

Widget updates may come from the shell thread (clicks, cells, state changes), the timer, the
meter's ticker and the fp16 check's thread; one re-entrant lock serialises them.

A kernel shows one dashboard: making a new one closes the previous one (its timer and hooks).
After a kernel restart the front end marks every widget of the old dashboard as disconnected;
the header then says so and how to get a live one (a CSS rule in the header, since no kernel is
left to tell it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

import ipywidgets as w

from ei_widgets import accelerator as _accelerator
from ei_widgets import billing, metrics
from ei_widgets.accelerator import AcceleratorState, Change
from ei_widgets.catalog import Catalog, default_catalog
from ei_widgets.discovery import find_models
from ei_widgets.errors import EIError
from ei_widgets.estimate import Estimate, estimate
from ei_widgets.money import format_money
from ei_widgets.pacing import Pacing
from ei_widgets.profile import Profile, profile
from ei_widgets.report import recommend_here
from ei_widgets.runner import Run, RunError, RunState
from ei_widgets.sizing import Recommendation
from ei_widgets.views.common import NO_MATH, esc
from ei_widgets.views.cost import CostPanel
from ei_widgets.views.fp16check import FP16Panel
from ei_widgets.views.gauges import SERIES_SECONDS, GaugesPanel
from ei_widgets.views.models import InspectorPanel, ModelsPanel, ProfileCache
from ei_widgets.views.picker import PickerPanel
from ei_widgets.views.run import RunPanel
from ei_widgets.views.sizing import SizingPanel

if TYPE_CHECKING:
    from ei_widgets.fp16 import FP16Check

__all__ = ["REFRESH_HZ", "Dashboard", "dashboard"]

REFRESH_HZ = 5.0
"""How often the timer redraws the gauges and the run's progress (4 to 10 per second)."""

CHART_PERIOD_S = 1.0
"""While a run goes on, the time charts (whole simulated seconds) are redrawn at most this often
(wall seconds), so drawing costs the run little; the progress still moves 5 times a second."""

TAB_TITLES = ("Models", "Accelerator", "Run", "Cost", "Sizing")
RUN_TAB, SIZING_TAB = TAB_TITLES.index("Run"), TAB_TITLES.index("Sizing")

DISCONNECTED = (
    "<style>.ei-disconnected{display:none}"
    ".jupyter-widgets-disconnected .ei-disconnected{display:block}</style>"
    '<div class="ei-disconnected" style="margin:4px 0;padding:4px 8px;border-radius:4px;'
    'background:#fdecea;color:#a4262c;font-size:13px"><b>Disconnected:</b> the kernel behind '
    "this dashboard has restarted or stopped, so what it shows is no longer live. Run "
    "<code>%load_ext ei_widgets</code> and <code>%ei</code> (or <code>ei_widgets.dashboard()"
    "</code>) for a live one.</div>"
)
"""Shown only when the front end marks the widgets disconnected (ipywidgets' own class)."""

_current: Dashboard | None = None
_current_lock = threading.Lock()


def _profile_at_batch_1(obj: object, variable: str) -> Profile:
    return profile(obj, batch_size=1, name=variable)


class Dashboard(w.VBox):
    """The ei_widgets dashboard. Build it with :func:`dashboard`; ``close()`` releases it.

    ``state``, ``stream`` and ``meter`` default to the kernel's own (``meter=None``: no cost
    meter); ``shell`` is the IPython shell whose ``post_run_cell`` refreshes the Models list;
    ``timer=False`` leaves the redraws to explicit :meth:`tick` calls (tests, benchmarks).
    """

    def __init__(
        self,
        namespace: MutableMapping[str, Any] | None = None,
        *,
        state: AcceleratorState | None = None,
        stream: metrics.MetricsStream | None = None,
        meter: billing.CostMeter | Literal["kernel"] | None = "kernel",
        shell: Any = None,
        catalog: Catalog | None = None,
        refresh_hz: float = REFRESH_HZ,
        timer: bool = True,
    ) -> None:
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.state = state or _accelerator.state()
        self.stream = stream or metrics.default_stream()
        self.meter = billing.meter() if isinstance(meter, str) else meter
        self._last_cost: billing.CostSnapshot | None = None
        self.shell = shell
        self._catalog_fixed = catalog
        self.refresh_hz = refresh_hz
        self._ui = threading.RLock()
        self._closed = threading.Event()
        self._unsubscribe: list[Callable[[], None]] = []
        self._setting_model = False
        self._last_key: tuple[Any, ...] | None = None
        self._run_origin: int | None = None  # first stream second of the current run
        self._last_clock: Pacing | None = None
        self.ticks = 0  # timer passes that found something to draw
        self._charts_drawn_at = -CHART_PERIOD_S  # monotonic time the time charts were last sent
        self.variable: str | None = None  # the chosen model's variable
        self.profile: Profile | None = None  # its profile at batch 1

        self.profiles = ProfileCache(_profile_at_batch_1, self._profile_done)
        self.models = ModelsPanel(self._choose)
        self.refresh_button = w.Button(
            description="Refresh",
            icon="refresh",
            tooltip="look for models again",
            layout=w.Layout(width="auto", min_width="100px", flex="0 0 auto"),
        )
        self.refresh_button.on_click(lambda _b: self.refresh_models())
        self.inspector = InspectorPanel(self.catalog)
        self.fp16 = FP16Panel(self._model_of, lock=self._ui, on_done=self._fp16_done)
        self.picker = PickerPanel(self.state, self.catalog, fp16=self.fp16)
        self.run_panel = RunPanel(self._make_run, self._batch_changed)
        self.gauges = GaugesPanel()
        self.cost = CostPanel(self._start_meter, overrides=self.catalog().overrides is not None)
        self.sizing = SizingPanel(self._recommend)
        self.header = w.HTML()
        self.tabs = w.Tab(
            children=[
                w.VBox([w.HBox([self.models, self.refresh_button]), self.inspector]),
                self.picker,
                w.VBox([self.run_panel, self.gauges]),
                self.cost,
                self.sizing,
            ]
        )
        for index, title in enumerate(TAB_TITLES):
            self.tabs.set_title(index, title)
        self.tabs.observe(self._on_tab, names="selected_index")
        super().__init__(
            [self.header, self.tabs],
            layout=w.Layout(width="100%", border="1px solid #ddd", padding="6px"),
        )
        self.add_class("ei-dashboard")  # a stable handle for styling and browser tests

        self._unsubscribe.append(self.state.subscribe(self._on_state))
        self.cost.set_meter(self.meter)
        if self.meter is not None:
            self._unsubscribe.append(self.meter.subscribe(self._on_cost))
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)
        self.refresh_models()
        self._follow_kernel_model()
        self._update_breakdown()
        self._render_header()
        self._timer: threading.Thread | None = None
        if timer:
            self._timer = threading.Thread(
                target=self._tick_loop, name="ei-widgets-dashboard-timer", daemon=True
            )
            self._timer.start()

    # --- core access -----------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        return self._catalog_fixed or default_catalog()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._ui:
            yield

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- models ----------------------------------------------------------------------------------

    def _after_cell(self, result: Any = None) -> None:
        """IPython's post_run_cell: look for models again (find_models only, cheap)."""
        if not self.closed:
            self.refresh_models()

    def refresh_models(self) -> None:
        """Rerun ``find_models`` on the namespace and show the list."""
        entries = find_models(self.namespace)
        live = {e.variable: self.namespace.get(e.variable) for e in entries}
        self.profiles.keep_only(live)
        for entry in entries:
            self.profiles.request(entry.variable, live[entry.variable])
        with self._locked():
            self.models.show(entries, self._results(entries))
            if self.models.choice.value is None:
                self._follow_kernel_model()
            self.fp16.refresh()  # a check run meanwhile by a magic or the API

    def _results(self, entries: list[Any]) -> dict[str, Any]:
        return {
            e.variable: self.profiles.get(e.variable, self.namespace.get(e.variable))
            for e in entries
        }

    def _profile_done(self, variable: str) -> None:
        """The background profiler finished one model: fill its row in."""
        if self.closed:
            return
        with self._locked():
            self.models.show(self.models.entries, self._results(self.models.entries))
            if variable == self.variable and self.variable in self.namespace:
                done = self.profiles.get(variable, self.namespace[variable])
                if done is not None and done.profile is not self.profile:
                    self._choose(variable)  # the chosen variable now holds another model

    def _choose(self, variable: str | None) -> None:
        """A model was chosen in the Models panel (None: the list has no model)."""
        with self._locked():
            self.variable = variable
            if variable is None or variable not in self.namespace:
                self.profile = None
                self.fp16.set_model(None, None)
                self.inspector.show(None)
                self.picker.refresh_fits(None, self.run_panel.batch.value)
                self.sizing.clear("Choose a model, then press Recommend.")
                self._update_breakdown()
                return
            result = self.profiles.now(variable, self.namespace[variable])
            self.profile = result.profile
            self.models.set_error(variable, result.error)
            self.fp16.set_model(variable, result.profile)
            batch = int(self.run_panel.batch.value)
            self.inspector.show(result.profile, batch, error=result.error)
            self.picker.refresh_fits(result.profile, batch)
            current = self.state.model
            if current is None or current[0] != variable or current[1] is None:
                self._setting_model = True
                try:
                    self.state.set_model(variable, result.profile)
                finally:
                    self._setting_model = False
            if result.profile is None:
                self.sizing.clear("This model could not be profiled, so it cannot be sized.")
            else:
                self.sizing.update()
            self._update_breakdown()
            self._render_header()

    def _follow_kernel_model(self) -> None:
        """Choose the model the kernel state points at, when it is one of ours."""
        current = self.state.model
        options = [v for _, v in self.models.choice.options]
        if current is not None and current[0] in options:
            if self.models.choice.value != current[0]:
                self.models.choice.value = current[0]
        elif self.models.choice.value is None and len(options) >= 1 and options[0] is not None:
            self.models.choice.value = options[0]

    # --- accelerator, run, sizing ----------------------------------------------------------------

    def _on_state(self, change: Change) -> None:
        """The kernel's accelerator state changed (from any view)."""
        if self.closed:
            return
        with self._locked():
            if change.kind == "model":
                if not self._setting_model:
                    self._follow_kernel_model()
                return
            self.picker.show_state()
            notice = change.notice
            if notice:
                self.picker.message.value = (
                    f'<div style="font-size:12px;color:#8a6d00">{esc(notice)}</div>'
                )
            if change.kind == "instance" and self.profile is not None:
                self.picker.refresh_fits(self.profile, int(self.run_panel.batch.value))
            self._update_breakdown()
            self._render_header()
            self._last_key = None  # the gauges name what is attached: redraw them

    def _batch_changed(self, batch: int) -> None:
        with self._locked():
            self.picker.refresh_fits(self.profile, batch)
            self.inspector.show_fits(batch)
            self._update_breakdown()

    def _estimate(self) -> Estimate | None:
        """The modelled call of the chosen model on what is attached, at the run's batch."""
        att = self.state.attachment
        if att is None or self.profile is None:
            return None
        try:
            return estimate(
                self.profile,
                att.accelerator,
                batch_size=int(self.run_panel.batch.value),
                precision=att.precision,
                instance=self.state.instance,
                catalog=self.catalog(),
            )
        except EIError:
            return None

    def _update_breakdown(self) -> None:
        self.gauges.set_breakdown(self._estimate())

    def _on_tab(self, change: dict[str, Any]) -> None:
        """A tab was opened: its charts go on the page now, when they can have a width."""
        with self._locked():
            if change["new"] == RUN_TAB:
                self.gauges.show_charts()
                self._last_key = None  # the next pass sends the charts' data
            elif change["new"] == SIZING_TAB:
                self.sizing.show_chart()

    def _make_run(self, **options: Any) -> Run:
        """Build the run the Run panel asked for, on the chosen model."""
        variable = self.variable
        if variable is None or variable not in self.namespace:
            raise RunError("Choose a model in the Models tab first.")
        if self.state.attachment is None:
            raise RunError(
                "Attach an accelerator first (Accelerator tab, %ei_attach, or the "
                "status bar picker)."
            )
        clock: Pacing = options["clock"]
        if self._last_clock is not None and clock != self._last_clock:
            self.stream.reset()  # one stream holds one clock's times
        self._last_clock = clock
        series = self.stream.series(1)
        self._run_origin = series[-1].second + 1 if series else None
        self.gauges.reset()
        self._last_key = None
        model = self.namespace[variable]
        chosen = self.profile
        state, stream, catalog = self.state, self.stream, self._catalog_fixed

        def open_session() -> Any:
            from ei_widgets.session import session

            return session(
                model,
                clock=clock,
                batch_size=options["batch_size"],
                profile=chosen,
                state=state,
                stream=stream,
                catalog=catalog,
            )

        return Run(model, profile=chosen, session_factory=open_session, **options)

    def _model_of(self, variable: str) -> object:
        """The object ``variable`` holds in the kernel now (KeyError when it is gone)."""
        return self.namespace[variable]

    def _fp16_done(self, variable: str, check: FP16Check) -> None:
        """An fp16 check completed (its thread, under the UI lock): the Sizing table shown for
        that model gains its fp16 agreement."""
        if variable == self.variable and self.sizing.recommendation is not None:
            self.sizing.update()

    def _recommend(self, **options: Any) -> Recommendation:
        """The notebook's one sizing call, as ``%ei_recommend`` makes it."""
        if self.profile is None:
            raise EIError("Choose a model that can be profiled first.")
        result: Recommendation = recommend_here(
            self.profile, instance=self.state.instance.name, **options
        )
        return result

    def _start_meter(self) -> billing.CostMeter:
        meter = billing.start_meter()
        with self._locked():
            if self.meter is None:
                self.meter = meter
                self._unsubscribe.append(meter.subscribe(self._on_cost))
                self.cost.set_meter(meter)
        return meter

    # --- cost ------------------------------------------------------------------------------------

    def _on_cost(self, event: billing.CostSnapshot | billing.BudgetEvent) -> None:
        """The meter's subscription (its ticker thread, once a second)."""
        if self.closed:
            return
        with self._locked():
            self.cost.on_event(event)
            if isinstance(event, billing.CostSnapshot):
                self._last_cost = event
                self._render_header()

    # --- the timer -------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        period = 1.0 / self.refresh_hz
        while not self._closed.wait(period):
            try:
                self.tick()
            except Exception as error:  # keep the gauges alive; say what went wrong
                with self._locked():
                    self.run_panel.message.value = (
                        f'<div style="font-size:12px;color:#a4262c">Gauges: {esc(error)}</div>'
                    )

    def tick(self) -> bool:
        """One timer pass: redraw what changed. True when anything was sent."""
        run = self.run_panel.run
        snap = self.stream.snapshot()
        progress = run.progress() if run is not None else None
        key = (
            snap.calls,
            snap.errors,
            snap.memory_bytes,
            snap.accelerator,
            self.state.attachment,
            self.tabs.selected_index,
            self.sizing.target.value,
            progress.state if progress else None,
            progress.done if progress else None,
            round(progress.elapsed_s, 1)
            if progress and progress.state is RunState.RUNNING
            else None,
        )
        if key == self._last_key:
            return False
        self._last_key = key
        with self._locked():
            series = self.stream.series(SERIES_SECONDS)
            if self._run_origin is not None:
                series = [p for p in series if p.second >= self._run_origin]
            capacity = self._capacity(snap.accelerator)
            att = self.state.attachment
            self.gauges.set_target(float(self.sizing.target.value))
            now = time.monotonic()
            running = progress is not None and progress.state is RunState.RUNNING
            # drawn only where seen, and while a run goes on at most once per CHART_PERIOD_S
            charts = self.tabs.selected_index == RUN_TAB and (
                not running or now - self._charts_drawn_at >= CHART_PERIOD_S
            )
            if charts:
                self._charts_drawn_at = now
            sent = self.gauges.refresh(
                snap,
                series,
                capacity,
                paced=self._last_clock == "paced",
                attached=att.name if att is not None else None,
                charts=charts,
            )
            sent += self.run_panel.refresh()
            sent += self._render_header()
        self.ticks += 1
        return bool(sent)

    def _capacity(self, accelerator: str | None) -> int | None:
        name = accelerator
        if name is None:
            att = self.state.attachment
            name = att.name if att is not None else None
        if name is None:
            return None
        try:
            return self.catalog().accelerator(name).memory_bytes
        except EIError:
            return None

    # --- header ----------------------------------------------------------------------------------

    def _render_header(self) -> bool:
        att = self.state.attachment
        attached = (
            f"<b>{esc(att.name)}</b> ({esc(att.precision)})"
            if att is not None
            else "no accelerator"
        )
        cost = self._last_cost  # from the meter's subscription: no meter call per redraw
        if cost is None and self.meter is not None:
            with contextlib.suppress(EIError):
                cost = self._last_cost = self.meter.snapshot()
        money = (
            f" · {format_money(cost.total)} so far at {format_money(cost.rate_per_hour)}/h"
            if cost is not None
            else ""
        )
        model = f" · <code>{esc(self.variable)}</code>" if self.variable else ""
        value = DISCONNECTED + (
            f'<div class="{NO_MATH}" style="display:flex;flex-wrap:wrap;column-gap:8px;'
            'align-items:baseline;font-size:13px">'
            '<span style="font-size:15px;font-weight:600">ei_widgets</span>'
            '<span style="color:#555;white-space:nowrap">simulated Elastic Inference</span>'
            f"<span>· {attached} on {esc(self.state.instance.name)}{model}{money}"
            f" · {self.run_panel.describe()}</span></div>"
        )
        if self.header.value == value:
            return False
        self.header.value = value
        return True

    # --- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the timer and any run, drop every subscription and hook, close the widgets."""
        global _current
        if not self._closed.is_set():
            self._closed.set()
            self.fp16.close_panel()
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe.clear()
            if self.shell is not None:
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister("post_run_cell", self._after_cell)
            run = self.run_panel.run
            if run is not None and run.state is RunState.RUNNING:
                run.stop(timeout=0.5)
            self.profiles.close()
            timer = self._timer
            if timer is not None and timer is not threading.current_thread():
                timer.join(timeout=2.0)
            with _current_lock:
                if _current is self:
                    _current = None
            with self._locked():
                # the charts of tabs never opened are not in the tree yet: close them too
                charts = (*self.gauges.figures, self.sizing.figure)
                for widget in _descendants(self, *charts):
                    if widget is not self:
                        widget.close()
        super().close()


def _descendants(*roots: w.Widget) -> list[w.Widget]:
    """Every widget reachable from ``roots`` through widget-valued traits (bqplot marks too)."""
    seen: dict[int, w.Widget] = {}
    stack: list[Any] = list(roots)
    while stack:
        item = stack.pop()
        if isinstance(item, w.Widget):
            if id(item) in seen:
                continue
            seen[id(item)] = item
            for name in item.keys:
                stack.append(getattr(item, name, None))
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return list(seen.values())


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def dashboard(namespace: MutableMapping[str, Any] | Mapping[str, Any] | None = None) -> Dashboard:
    """Show the dashboard for the models in ``namespace`` (default: the IPython user namespace).

    In IPython the Models list refreshes after every cell; elsewhere press Refresh. A new
    dashboard closes the one shown before.
    """
    global _current
    shell = _shell()
    if namespace is None:
        namespace = shell.user_ns if shell is not None else {}
    board = Dashboard(
        dict(namespace) if not isinstance(namespace, MutableMapping) else namespace, shell=shell
    )
    with _current_lock:
        previous, _current = _current, board
    if previous is not None:
        previous.close()
    return board
