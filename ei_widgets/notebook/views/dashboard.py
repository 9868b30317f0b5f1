"""The notebook dashboard: one view of the kernel's models, accelerator, runs, gauges and bill.

``dashboard()`` (and ``%ei``) returns a :class:`Dashboard`, an ipywidgets container made of
standard ipywidgets and bqplot only, so it shows in JupyterLab, Notebook 7 and VS Code alike.
It holds no state of its own that matters: everything shown comes from the core, and every action
calls the core. Each tab is its own room, registered in ``tabs.TABS`` (``models_tab``,
``accelerator_tab``, ``run_tab``, ``cost``, ``sizing``, ``endpoint_tab``); the dashboard holds
which model is chosen, asks the core once for its judgement on every size
(``device.judgement.judge_all``, at the run's batch on the kernel's instance), shows every tab the
same answer, and runs the one timer (the Endpoint tab polls its endpoint on its own thread, only
while it is shown).

How it stays cheap and in step with the kernel:

- **One state.** It subscribes to the kernel's ``AcceleratorState``: attaching from a magic or the
  JupyterLab picker updates it at once.
- **Models after each cell.** An IPython ``post_run_cell`` callback, registered by the dashboard
  and removed when it closes, reruns ``find_models`` (cheap; profiles are made once per model in
  a background thread).
- **Gauges from one timer.** A single view-side thread wakes about 5 times a second, reads the
  metrics stream's snapshot and per-second series and sends widget messages only for what
  changed: never one message per inference, none when nothing moves.
- **Cost from the meter.** The kernel's cost meter pushes a snapshot every second to the Cost
  tab, which keeps the latest for the header.
- **Runs in the background.** The Run panel drives a :class:`~ei_widgets.device.runs.Run` in worker
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
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal, TypeVar, cast

import ipywidgets as w

from ei_widgets.billing import meters
from ei_widgets.common.html import BAD
from ei_widgets.device import accelerator as _accelerator
from ei_widgets.device import metrics
from ei_widgets.device.accelerator import AcceleratorState, Change
from ei_widgets.device.catalog import Catalog, default_catalog
from ei_widgets.device.fp16 import FP16Check
from ei_widgets.device.judgement import Judgements, judge_all
from ei_widgets.device.recommendation import Recommendation
from ei_widgets.device.runs import RunError, RunState
from ei_widgets.device.sequence import LengthScaling
from ei_widgets.device.sizing import recommend as recommend_options
from ei_widgets.errors import EIError
from ei_widgets.notebook.views.accelerator_tab import PickerPanel
from ei_widgets.notebook.views.common import esc
from ei_widgets.notebook.views.cost import CostPanel
from ei_widgets.notebook.views.header import header_html
from ei_widgets.notebook.views.models_tab import ModelsTab, profile_for_inspector
from ei_widgets.notebook.views.run_tab import RunTab
from ei_widgets.notebook.views.sizing import SizingPanel
from ei_widgets.notebook.views.tab import Chosen, DashboardTab
from ei_widgets.notebook.views.tabs import TABS
from ei_widgets.profiling.result import Profile

__all__ = ["REFRESH_HZ", "Dashboard", "dashboard"]

REFRESH_HZ = 5.0
"""How often the timer redraws the gauges and the run's progress (4 to 10 per second)."""

RUN_TAB = next(i for i, spec in enumerate(TABS) if spec.title == "Run")
_T = TypeVar("_T")

_current: Dashboard | None = None
_current_lock = threading.Lock()


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
        meter: meters.CostMeter | Literal["kernel"] | None = "kernel",
        shell: Any = None,
        catalog: Catalog | None = None,
        refresh_hz: float = REFRESH_HZ,
        timer: bool = True,
    ) -> None:
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.state = state or _accelerator.state()
        self.stream = stream or metrics.default_stream()
        self.shell = shell
        self._catalog_fixed = catalog
        self.refresh_hz = refresh_hz
        self._ui = threading.RLock()
        self._closed = threading.Event()
        self._unsubscribe: list[Callable[[], None]] = []
        self._setting_model = False
        self.ticks = 0  # timer passes that found something to draw
        self.variable: str | None = None  # the chosen model's variable
        self.profile: Profile | None = None  # its profile at batch 1
        self._error: str | None = None  # why it could not be profiled
        self._by_length: LengthScaling | None = None  # a transformer's latency by length
        self._batch = 1  # the run's batch, at which every size is judged
        self._judged: Judgements | None = None
        self._judged_key: tuple[Any, ...] | None = None

        self.tab_list: list[DashboardTab] = [spec.make(self) for spec in TABS]
        # the tabs the dashboard itself coordinates with (the header, the timer, the models)
        self.models_tab = self._tab(ModelsTab)
        self.models, self.inspector = self.models_tab.models, self.models_tab.inspector
        self.profiles = self.models_tab.profiles
        self.picker = self._tab(PickerPanel)
        fp16 = self.picker.fp16_panel
        assert fp16 is not None  # the Accelerator tab makes it
        self.fp16 = fp16
        self.run_tab = self._tab(RunTab)
        self.run_panel, self.gauges = self.run_tab.panel, self.run_tab.gauges
        self.cost = self._tab(CostPanel)
        self.sizing = self._tab(SizingPanel)
        self.header = w.HTML()
        self.tabs = w.Tab(children=[cast(w.Widget, tab) for tab in self.tab_list])
        for index, spec in enumerate(TABS):
            self.tabs.set_title(index, spec.title)
        self.tabs.observe(self._on_tab, names="selected_index")
        super().__init__(
            [self.header, self.tabs],
            layout=w.Layout(
                width="100%", border="1px solid var(--jp-border-color2, #ddd)", padding="6px"
            ),
        )
        self.add_class("ei-dashboard")  # a stable handle for styling and browser tests

        self._unsubscribe.append(self.state.subscribe(self._on_state))
        self.cost.set_meter(meters.meter() if isinstance(meter, str) else meter)
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)
        self.refresh_models()
        self._follow_kernel_model()
        self._show_model()
        self.render_header()
        self._timer: threading.Thread | None = None
        if timer:
            self._timer = threading.Thread(
                target=self._tick_loop, name="ei-widgets-dashboard-timer", daemon=True
            )
            self._timer.start()

    # --- core access -----------------------------------------------------------------------------

    def _tab(self, kind: type[_T]) -> _T:
        """The tab of class ``kind``."""
        return next(tab for tab in self.tab_list if isinstance(tab, kind))

    @property
    def lock(self) -> threading.RLock:
        """The lock that serialises widget updates from every thread."""
        return self._ui

    @property
    def fixed_catalog(self) -> Catalog | None:
        return self._catalog_fixed

    def catalog(self) -> Catalog:
        return self._catalog_fixed or default_catalog()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def meter(self) -> meters.CostMeter | None:
        """The cost meter the Cost tab follows (None: none is running)."""
        return self.cost.meter

    # --- models ----------------------------------------------------------------------------------

    def _after_cell(self, result: Any = None) -> None:
        """IPython's post_run_cell: look for models again (find_models only, cheap)."""
        if not self.closed:
            self.refresh_models()

    def refresh_models(self) -> None:
        """Rerun ``find_models`` on the namespace and show the list."""
        entries = self.models_tab.find()
        with self._ui:
            self.models_tab.show(entries)
            if self.models.choice.value is None:
                self._follow_kernel_model()
            self.fp16.refresh()  # a check run meanwhile by a magic or the API

    def profile_done(self, variable: str) -> None:
        """The background profiler finished one model: fill its row in."""
        if self.closed:
            return
        with self._ui:
            self.models_tab.show()
            if variable == self.variable and self.variable in self.namespace:
                done = self.models_tab.known(variable)
                if done is not None and done.profile is not self.profile:
                    self.choose(variable)  # the chosen variable now holds another model

    def choose(self, variable: str | None) -> None:
        """A model was chosen in the Models panel (None: the list has no model)."""
        with self._ui:
            self.variable = variable
            if variable is None or variable not in self.namespace:
                self.profile, self._error, self._by_length = None, None, None
            else:
                result = self.models_tab.result(variable)
                self.profile, self._error = result.profile, result.error
                self._by_length = result.by_length
                self.models.set_error(variable, result.error)
                current = self.state.model
                if current is None or current[0] != variable or current[1] is None:
                    self._setting_model = True
                    try:
                        self.state.set_model(variable, result.profile)
                    finally:
                        self._setting_model = False
            self._show_model()
            self.render_header()

    def _judge(self) -> Judgements | None:
        """The core's one judgement of the chosen model on every size, at the run's batch on the
        kernel's instance (made again only when one of those changed)."""
        if self.profile is None:
            return None
        key = (id(self.profile), self._batch, self.state.instance.name, id(self.catalog()))
        if key != self._judged_key or self._judged is None:
            self._judged = judge_all(
                self.profile,
                batch_size=self._batch,
                instance=self.state.instance,
                catalog=self.catalog(),
            )
            self._judged_key = key
        return self._judged

    def _show_model(self) -> None:
        """Show every tab the chosen model and the one judgement of it."""
        chosen = Chosen(
            self.variable, self.profile, self._error, self._judge(), by_length=self._by_length
        )
        for tab in self.tab_list:
            tab.show_model(chosen)

    def _follow_kernel_model(self) -> None:
        """Choose the model the kernel state points at, when it is one of ours."""
        self.models_tab.select_kernel_model(self.state.model)

    # --- accelerator, run, sizing ----------------------------------------------------------------

    def _on_state(self, change: Change) -> None:
        """The kernel's accelerator state changed (from any view)."""
        if self.closed:
            return
        with self._ui:
            if change.kind == "model":
                if not self._setting_model:
                    self._follow_kernel_model()
                return
            for tab in self.tab_list:
                tab.follow(change)
            self._show_model()  # a new instance changes every judgement
            self.render_header()

    def seq_len_changed(self, seq_len: int) -> None:
        """A sequence length was chosen (Inspector or Accelerator tab): the chosen transformer
        is profiled at it (its export is cached: a new binding, not a new export) and every tab
        shows it."""
        with self._ui:
            variable = self.variable
            if variable is None or variable not in self.namespace:
                return
            if self.profile is not None and self.profile.seq_len == seq_len:
                return
            try:
                result = profile_for_inspector(self.namespace[variable], variable, seq_len)
            except EIError as error:
                self._error = str(error)
            else:
                self.profile, self._error = result.profile, None
                self._by_length = result.by_length
                self._setting_model = True
                try:
                    self.state.set_model(variable, result.profile)
                finally:
                    self._setting_model = False
            self._show_model()

    def batch_changed(self, batch: int) -> None:
        """The run's batch changed: every size is judged again at it."""
        with self._ui:
            self._batch = batch
            self._show_model()

    def _on_tab(self, change: dict[str, Any]) -> None:
        """A tab was opened: its charts go on the page now, when they can have a width."""
        with self._ui:
            for index, tab in enumerate(self.tab_list):
                if index == change["new"]:
                    tab.opened()
                else:
                    tab.hidden()

    def chosen_model(self) -> tuple[object, Profile | None]:
        """The chosen model and its profile, for a run."""
        variable = self.variable
        if variable is None or variable not in self.namespace:
            raise RunError("Choose a model in the Models tab first.")
        return self.namespace[variable], self.profile

    def model_of(self, variable: str) -> object:
        """The object ``variable`` holds in the kernel now (KeyError when it is gone)."""
        return self.namespace[variable]

    def fp16_done(self, variable: str, check: FP16Check) -> None:
        """An fp16 check completed (its thread, under the UI lock): the Sizing table shown for
        that model gains its fp16 agreement."""
        if variable == self.variable and self.sizing.recommendation is not None:
            self.sizing.update()

    def recommend(self, **options: Any) -> Recommendation:
        """The notebook's one sizing call, as ``%ei_recommend`` makes it."""
        if self.profile is None:
            raise EIError("Choose a model that can be profiled first.")
        result: Recommendation = recommend_options(
            self.profile, instance=self.state.instance.name, catalog=self.catalog(), **options
        )
        return result

    # --- the timer -------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        period = 1.0 / self.refresh_hz
        while not self._closed.wait(period):
            try:
                self.tick()
            except Exception as error:  # keep the gauges alive; say what went wrong
                with self._ui:
                    self.run_panel.message.value = (
                        f'<div style="font-size:12px;color:{BAD}">Gauges: {esc(error)}</div>'
                    )

    def tick(self) -> bool:
        """One timer pass: redraw what changed. True when anything was sent."""
        look = self.run_tab.look(self.tabs.selected_index, self.sizing.target.value)
        if look is None:
            return False
        with self._ui:
            visible = self.tabs.selected_index == RUN_TAB
            target_ms = float(self.sizing.target.value)
            sent = self.run_tab.draw(look, visible=visible, target_ms=target_ms)
            sent += self.render_header()
        self.ticks += 1
        return bool(sent)

    # --- header ----------------------------------------------------------------------------------

    def render_header(self) -> bool:
        value = header_html(
            self.state.attachment,
            self.state.instance.name,
            self.variable,
            self.cost.latest(),  # the meter's push: no meter call per redraw
            self.run_panel.describe(),
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
            for tab in self.tab_list:
                tab.close_tab()
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe.clear()
            if self.shell is not None:
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister("post_run_cell", self._after_cell)
            run = self.run_panel.run
            if run is not None and run.state is RunState.RUNNING:
                run.stop(timeout=0.5)
            timer = self._timer
            if timer is not None and timer is not threading.current_thread():
                timer.join(timeout=2.0)
            with _current_lock:
                if _current is self:
                    _current = None
            with self._ui:
                # the charts of tabs never opened are not in the tree yet: close them too
                charts = [figure for tab in self.tab_list for figure in tab.figures()]
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
