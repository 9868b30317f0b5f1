"""The dashboard's widgets and messages, with a recording comm instead of a front end.

No kernel and no browser: ``comm.create_comm`` is swapped for a comm that records every message
a widget sends (the pattern of ipywidgets' own tests), and the dashboard's timer is driven by
hand (``tick()``) so that every assertion is about behaviour, never about timing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import comm
import numpy as np
import pytest
from IPython.core.events import EventManager, available_events

from ei_widgets.billing.meters import CostMeter, ManualClock
from ei_widgets.common.units import format_bytes, format_ms, format_percent
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.estimate import estimate
from ei_widgets.device.judgement import judge_all
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.runs import RunState
from ei_widgets.models.demo import demo_model
from ei_widgets.notebook.views import dashboard as dashboard_module
from ei_widgets.notebook.views.dashboard import RUN_TAB, Dashboard, dashboard
from ei_widgets.notebook.views.tabs import TABS
from tests.builders import huge_constant, mlp

# --- a recording comm ----------------------------------------------------------------------------


class RecordingComm:
    """Stands in for a kernel comm: keeps what the widget sends."""

    kernel = "recording"
    log: ClassVar[list[tuple[str, dict[str, Any]]]] = []  # (comm id, data), every comm
    opened: ClassVar[list[RecordingComm]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or f"comm-{len(RecordingComm.opened)}"
        self.open_data = kwargs.get("data", {})
        self.messages: list[dict[str, Any]] = []
        self.closed = False
        RecordingComm.opened.append(self)

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        self.callback = callback

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append(data)
        RecordingComm.log.append((self.comm_id, data))

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.closed = True

    def updates(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m.get("method") == "update"]


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> type[RecordingComm]:
    RecordingComm.log = []
    RecordingComm.opened = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))
    monkeypatch.setattr(comm, "get_comm_manager", lambda **kwargs: {})
    return RecordingComm


def comm_of(widget: Any) -> RecordingComm:
    assert isinstance(widget.comm, RecordingComm)
    return widget.comm


# --- fixtures ------------------------------------------------------------------------------------


class FakeShell:
    """Just enough of an IPython shell: its event manager."""

    def __init__(self) -> None:
        self.events = EventManager(self, available_events)  # type: ignore[arg-type]


@pytest.fixture
def state() -> AcceleratorState:
    return AcceleratorState()


@pytest.fixture
def stream() -> MetricsStream:
    return MetricsStream()


@pytest.fixture
def namespace(tmp_path: Path) -> dict[str, Any]:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a model")
    return {"small": mlp((16, 32, 8)), "broken": str(broken), "unrelated": 42}


@pytest.fixture
def board(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> Iterator[Dashboard]:
    made = Dashboard(namespace, state=state, stream=stream, meter=None, timer=False)
    made.profiles.wait_idle(30)
    made.refresh_models()
    yield made
    made.close()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# --- models and inspector ------------------------------------------------------------------------


def test_models_are_listed_and_the_first_is_chosen(board: Dashboard) -> None:
    options = [value for _, value in board.models.choice.options]
    assert options == ["small", "broken"]
    assert board.models.choice.value == "small"
    assert board.variable == "small"
    assert board.profile is not None
    listing = board.models.listing.value
    assert "small" in listing
    assert "FLOPs" in listing
    assert board.state.model is not None
    assert board.state.model[0] == "small"
    # the inspector shows the chosen model, FLOPs by op type as a sorted share
    share = board.inspector.op_share.value
    ops = [t.op_type for t in board.profile.by_op_type() if t.flops > 0]
    assert "MatMul" in ops
    positions = [share.index(f">{op}<") for op in ops]
    assert positions == sorted(positions)  # largest share first
    assert "%" in share
    assert "ml.eia2.medium" in board.inspector.fits.value
    assert "matmul0" in board.inspector.heaviest.value


def test_a_model_that_fails_to_profile_shows_its_error_and_the_rest_works(
    board: Dashboard,
) -> None:
    assert "ModelLoadError" in board.models.listing.value  # the broken row says why
    board.models.choice.value = "broken"
    assert board.profile is None
    assert "Cannot inspect this model" in board.inspector.title.value
    assert "ModelLoadError" in board.inspector.title.value
    # the rest stays usable: attach, then go back to the good model
    board.picker.select("ml.eia2.medium")
    board.picker.attach()
    assert board.state.attachment is not None
    board.models.choice.value = "small"
    assert board.profile is not None
    assert "Cannot inspect" not in board.inspector.title.value


def test_models_refresh_after_a_cell_and_the_hook_goes_on_close(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    shell = FakeShell()
    board = Dashboard(namespace, state=state, stream=stream, shell=shell, meter=None, timer=False)
    assert board._after_cell in shell.events.callbacks["post_run_cell"]
    namespace["another"] = mlp((4, 4))
    shell.events.trigger("post_run_cell", None)
    assert "another" in [value for _, value in board.models.choice.options]
    del namespace["small"]
    shell.events.trigger("post_run_cell", None)
    options = [value for _, value in board.models.choice.options]
    assert "small" not in options
    assert board.models.choice.value in options
    board.close()
    assert board._after_cell not in shell.events.callbacks["post_run_cell"]


def test_the_kernel_model_set_elsewhere_is_followed(board: Dashboard) -> None:
    other = board.profiles.now("broken", board.namespace["broken"])
    assert other.profile is None
    small = board.profiles.now("small", board.namespace["small"]).profile
    board.models.choice.value = "broken"
    board.state.set_model("small", small)  # e.g. from the JupyterLab picker or a magic
    assert board.models.choice.value == "small"


# --- accelerator picker --------------------------------------------------------------------------


@pytest.fixture
def big_board(state: AcceleratorState, stream: MetricsStream) -> Iterator[Dashboard]:
    made = Dashboard(
        {"big": huge_constant(16384)}, state=state, stream=stream, meter=None, timer=False
    )
    yield made
    made.close()


def test_a_size_that_does_not_fit_is_disabled_with_the_reason(big_board: Dashboard) -> None:
    picker = big_board.picker
    assert big_board.variable == "big"
    small = picker.buttons["ml.eia1.medium"]
    assert small.disabled
    assert "does not fit" in small.tooltip
    assert "ml.eia1.medium" in small.tooltip
    assert not picker.buttons["ml.eia2.medium"].disabled
    assert not picker.buttons["none"].disabled
    assert "does not fit" in picker.fit_cells["ml.eia1.medium"].value
    # the disabled state reached the front end
    sent = [u for u in comm_of(small).updates() if "disabled" in u]
    assert sent
    assert sent[-1]["disabled"] is True
    # choosing it is refused with the reason
    picker.select("ml.eia1.medium")
    assert picker.selected == "none"
    assert "does not fit" in picker.message.value
    # attaching it anyway (as a magic could) is refused by the core with the reason
    picker.selected = "ml.eia1.medium"
    picker.attach()
    assert big_board.state.attachment is None
    assert "Not attached" in picker.message.value
    assert "smallest accelerator that fits" in picker.message.value


def test_attach_detach_and_following_the_one_kernel_state(board: Dashboard) -> None:
    picker = board.picker
    assert picker.attach_button.disabled  # nothing selected that differs from what is attached
    picker.select("ml.eia2.large")
    picker.precision.value = "fp16"
    assert not picker.attach_button.disabled
    picker.attach()
    attachment = board.state.attachment
    assert attachment is not None
    assert attachment.name == "ml.eia2.large"
    assert attachment.precision == "fp16"
    assert picker.buttons["ml.eia2.large"].icon == "check"
    assert "ml.eia2.large" in board.header.value
    # a magic or the JupyterLab picker attaches: the dashboard follows
    board.state.attach("ml.eia1.xlarge")
    assert "ml.eia1.xlarge" in picker.status.value
    assert picker.buttons["ml.eia1.xlarge"].icon == "check"
    assert picker.buttons["ml.eia2.large"].icon == ""
    assert "replaces" in picker.message.value
    assert "ml.eia1.xlarge" in board.header.value
    assert "ml.eia1.xlarge, batch 1, fp32" in board.gauges.breakdown_text.value
    assert board.gauges.breakdown_figure.title == "Latency breakdown"  # short: never cut off
    board.state.set_instance("ml.m5.large")
    assert picker.instance.value == "ml.m5.large"
    board.state.detach()
    assert "Nothing attached" in picker.status.value
    assert "no accelerator" in board.header.value
    # choosing None and Attach asks first, then detaches
    board.state.attach("ml.eia2.medium")
    picker.select("none")
    picker.attach()
    assert board.state.attachment is not None
    assert picker.confirm.layout.display == "flex"
    picker.confirm_detach()
    assert board.state.attachment is None


def test_modelled_figures_carry_the_chosen_models_own_error(board: Dashboard) -> None:
    wait_for(lambda: "ml.eia2.medium" in board.inspector.fits.value)
    assert board.profile is not None
    accuracy = model_accuracy(board.profile, catalog=board.catalog()).text
    assert accuracy.startswith("modelled: ")
    assert accuracy != board.catalog().latency_accuracy  # the model's own, not every model's
    grid = board.picker.grid
    assert any(accuracy in cell.value for cell in grid.children if hasattr(cell, "value"))
    assert accuracy in board.inspector.fits.value  # the Inspector's fit and latency table
    board.state.attach("ml.eia2.medium")
    assert accuracy in board.gauges.heading.value  # the live gauges' heading
    assert f"({accuracy})." in board.gauges.breakdown_text.value


def test_the_instance_dropdown_changes_the_kernel_instance(board: Dashboard) -> None:
    board.picker.instance.value = (
        "ml.c5.xlarge"
        if "ml.c5.xlarge" in [v for _, v in board.picker.instance.options]
        else board.picker.instance.options[-1][1]
    )
    assert board.state.instance.name == board.picker.instance.value


# --- run, gauges ---------------------------------------------------------------------------------


def test_run_controls_follow_the_mode(board: Dashboard) -> None:
    panel = board.run_panel
    panel.mode.value = "duration"
    assert panel.duration.layout.display == ""
    assert panel.requests.layout.display == "none"
    # the other controls keep their own layouts and stay visible
    assert panel.batch.layout.display in (None, "")
    assert panel.concurrency.layout.display in (None, "")
    panel.mode.value = "requests"
    assert panel.requests.layout.display == ""
    assert panel.duration.layout.display == "none"


def test_run_needs_a_model_and_an_accelerator(board: Dashboard) -> None:
    assert board.run_panel.start() is None
    assert "Attach an accelerator first" in board.run_panel.message.value


def test_virtual_run_fills_the_gauges(board: Dashboard, stream: MetricsStream) -> None:
    board.state.attach("ml.eia2.medium")
    board.tabs.selected_index = 2  # the Run tab: its charts are drawn
    panel = board.run_panel
    panel.clock.value = "virtual"
    panel.batch.value = 4
    panel.requests.value = 3000
    panel.concurrency.value = 2
    throughput_comm = comm_of(board.gauges.throughput)
    before = len(throughput_comm.messages)
    run = panel.start()
    assert run is not None
    progress = run.wait(120)
    assert progress.state is RunState.FINISHED
    assert progress.done == 3000
    assert board.tick()
    snap = stream.snapshot()
    assert snap.calls == 3000
    assert snap.inferences == 12000
    # throughput: the stream's per-second inferences against simulated run time, whole seconds
    # only (the first and the last second are partial)
    series = stream.series()
    assert len(series) >= 3
    whole = series[1:-1]
    assert list(board.gauges.throughput.y) == [float(p.inferences) for p in whole]
    assert list(board.gauges.throughput.x) == [float(p.second - series[0].second) for p in whole]
    # latency p50/p95 from the snapshot, mean per second from the series
    assert board.gauges.latency_p50.y[-1] == pytest.approx(snap.p50_ms)
    assert board.gauges.latency_p95.y[-1] == pytest.approx(snap.p95_ms)
    assert len(board.gauges.latency_mean.y) >= 1
    # memory against the accelerator's capacity, utilisation of its peak
    capacity = board.catalog().accelerator("ml.eia2.medium").memory_bytes
    memory = board.gauges.memory_gauge.value
    assert f"{format_bytes(snap.memory_bytes)} / {format_bytes(capacity)}" in memory
    assert f"({format_percent(snap.memory_bytes / capacity)})" in memory
    utilisation = board.gauges.utilisation_gauge.value
    assert f"{format_percent(snap.utilisation)} of peak FLOP/s" in utilisation
    assert snap.memory_bytes > 0
    # the modelled breakdown of one call at the run's batch
    assert board.profile is not None
    expected = estimate(board.profile, "ml.eia2.medium", batch_size=4)
    assert float(np.sum(board.gauges.breakdown.y)) == pytest.approx(expected.latency_ms)
    # progress
    assert panel.progress.value == 1.0
    assert "finished" in panel.progress_text.value
    assert not panel.run_button.disabled
    assert panel.stop_button.disabled
    assert panel.stop_button.button_style == ""  # drawn plain while disabled
    # coalesced: one update of the throughput line for the whole run, not one per inference
    sent = throughput_comm.messages[before:]
    assert len(sent) == 1
    assert {"x", "y"} <= set(sent[0]["state"]) | set(sent[0].get("buffer_paths", [[]])[0])
    # nothing changed: the next pass sends nothing at all
    count = len(RecordingComm.log)
    assert not board.tick()
    assert len(RecordingComm.log) == count
    # a second run starts from clean charts and draws only its own calls
    second = panel.start()
    assert second is not None
    assert len(board.gauges.throughput.x) == 0
    assert len(board.gauges.latency_p50.x) == 0
    assert second.wait(120).state is RunState.FINISHED
    board.tick()
    assert 0 < float(np.sum(board.gauges.throughput.y)) <= 3000 * 4


def test_stop_reaches_the_stopped_state(board: Dashboard) -> None:
    board.state.attach("ml.eia2.medium")
    panel = board.run_panel
    panel.clock.value = "paced"
    panel.mode.value = "duration"
    panel.duration.value = 600.0
    run = panel.start()
    assert run is not None
    assert run.state is RunState.RUNNING
    wait_for(lambda: run.progress().done >= 2)
    assert panel.stop()
    assert run.state is RunState.STOPPED
    board.tick()
    assert "stopped" in panel.progress_text.value
    assert panel.stop_button.disabled
    assert not panel.run_button.disabled


def test_an_exception_in_the_run_is_shown_as_a_short_message(
    state: AcceleratorState, stream: MetricsStream
) -> None:
    board = Dashboard(
        {"fixed": mlp((8, 4), batch=1)}, state=state, stream=stream, meter=None, timer=False
    )
    try:
        state.attach("ml.eia2.medium")
        board.run_panel.batch.value = 4  # the model only takes batch 1
        run = board.run_panel.start()
        assert run is not None
        progress = run.wait(60)
        assert progress.state is RunState.FAILED
        board.tick()
        message = board.run_panel.message.value
        assert "The run failed" in message
        assert "runs only at batch 1" in message
        assert "Traceback" not in message
        assert board.run_panel.progress.bar_style == "danger"
        assert not any(t.is_alive() for t in run._threads)
    finally:
        board.close()


def test_the_timer_thread_draws_a_background_run(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    board = Dashboard(namespace, state=state, stream=stream, meter=None, timer=True)
    try:
        state.attach("ml.eia2.medium")
        board.tabs.selected_index = 2
        board.run_panel.clock.value = "virtual"
        board.run_panel.requests.value = 200
        run = board.run_panel.start()
        assert run is not None
        run.wait(60)
        wait_for(lambda: "finished" in board.run_panel.progress_text.value)
        wait_for(lambda: "200 calls" in board.gauges.summary.value)
        assert board.ticks >= 1
    finally:
        board.close()
    assert board._timer is not None
    assert not board._timer.is_alive()


# --- cost ----------------------------------------------------------------------------------------


def test_cost_ticks_from_the_meter(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    clock = ManualClock()
    meter = CostMeter(state, clock=clock, work=lambda: (0, 0, 0.0)).start(thread=False)
    board = Dashboard(namespace, state=state, stream=stream, meter=meter, timer=False)
    try:
        state.attach("ml.eia2.medium")
        clock.advance(3600)
        meter.tick()
        expected = Decimal("0.05") + Decimal("0.168")
        assert "$0.218" in board.cost.total.value  # one hour of ml.t3.medium + ml.eia2.medium
        for widget in (board.cost.total, board.cost.details, board.cost.savings, board.header):
            assert "mathjax_ignore" in widget.value  # two $ amounts are not a formula
        assert f"${expected.normalize():f}/h" in board.cost.details.value
        assert "ml.g4dn.xlarge" in board.cost.savings.value
        assert "so far" in board.header.value
        updates_before = len(comm_of(board.cost.total).messages)
        clock.advance(1)
        meter.tick()
        assert len(comm_of(board.cost.total).messages) == updates_before + 1
        # a budget: the bar and the events
        board.cost.budget_amount.value = 0.4
        board.cost._set_budget()
        clock.advance(3600)
        meter.tick()
        assert board.cost.budget_bar.value > 0.8
        assert board.cost.budget_bar.bar_style == "danger"
        assert "budget" in board.cost.message.value
    finally:
        board.close()
        meter.stop()
    assert board.cost._on_meter not in meter._subscribers


def test_the_cost_panel_follows_one_meter_at_a_time(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    first, second = (
        CostMeter(state, clock=ManualClock(), work=lambda: (0, 0, 0.0)).start(thread=False)
        for _ in range(2)
    )
    board = Dashboard(namespace, state=state, stream=stream, meter=first, timer=False)
    try:
        board.cost.set_meter(second)
        board.cost.set_meter(second)  # again: still one subscription
        assert board.cost._on_meter not in first._subscribers
        assert board.cost.meter is second
        assert len([c for c in second._subscribers._callbacks if c == board.cost._on_meter]) == 1
    finally:
        board.close()
        first.stop()
        second.stop()
    assert board.cost._on_meter not in second._subscribers


def test_without_a_meter_the_cost_panel_says_how_to_start_one(board: Dashboard) -> None:
    assert "not running" in board.cost.details.value
    assert board.cost.start_button.layout.display == ""


# --- sizing --------------------------------------------------------------------------------------


def test_sizing_shows_the_table_and_the_scatter(board: Dashboard) -> None:
    sizing = board.sizing
    sizing.target.value = 5.0
    sizing.rate.value = 100.0
    result = sizing.update()
    assert result is not None
    assert result.pick is not None
    assert sizing.recommendation is result
    assert result.reason in sizing.reason.value.replace("&#x27;", "'")
    fitting = [r for r in result.rows if r.fits]
    plotted = sum(len(mark.x) for mark in sizing.points.values())
    assert plotted == len(fitting)
    assert list(sizing.pick.x) == [float(result.pick.price_per_hour)]
    assert list(sizing.pick.y) == [pytest.approx(result.pick.latency_ms)]
    assert set(sizing.target_line.y) == {5.0}
    assert result.pick.option in sizing.listing.value
    # every option's instance is the kernel's notebook instance (or a whole instance)
    assert all(
        r.instance == board.state.instance.name for r in result.rows if r.kind == "accelerator"
    )


# --- closing -------------------------------------------------------------------------------------


def test_close_releases_everything(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    shell = FakeShell()
    board = Dashboard(namespace, state=state, stream=stream, shell=shell, meter=None, timer=True)
    state.attach("ml.eia2.medium")
    board.run_panel.mode.value = "duration"
    board.run_panel.duration.value = 600.0
    run = board.run_panel.start()
    assert run is not None
    board.close()
    assert run.state.ended
    assert board._timer is not None
    assert not board._timer.is_alive()
    assert board._on_state not in state._observers
    assert board.comm is None
    assert board.gauges.throughput.comm is None
    state.attach("ml.eia2.large")  # no error from a closed dashboard


def test_a_new_dashboard_replaces_the_previous_one(
    namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_module, "_current", None)
    first = dashboard(namespace)
    second = dashboard(namespace)
    try:
        assert first.closed
        assert not second.closed
    finally:
        second.close()
    assert dashboard_module._current is None


def test_only_standard_ipywidgets_and_bqplot_models_are_used(board: Dashboard) -> None:
    # bqplot 0.13 ships its scales as the bqscales front-end module
    allowed = {"@jupyter-widgets/controls", "@jupyter-widgets/base", "bqplot", "bqscales"}
    modules = {c.open_data["state"]["_model_module"] for c in RecordingComm.opened}
    views = {c.open_data["state"].get("_view_module") for c in RecordingComm.opened} - {None}
    assert modules <= allowed
    assert views <= allowed
    assert "bqplot" in modules


# --- read at a glance, never misled --------------------------------------------------------------


def test_a_new_dashboard_selects_what_is_attached(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    state.attach("ml.eia2.large", precision="fp16")  # before the dashboard, as from a magic
    board = Dashboard(namespace, state=state, stream=stream, meter=None, timer=False)
    try:
        picker = board.picker
        assert picker.selected == "ml.eia2.large"
        assert picker.precision.value == "fp16"
        assert picker.buttons["ml.eia2.large"].button_style == "info"
        assert picker.buttons["none"].button_style == ""
        assert picker.attach_button.disabled  # pressing it would change nothing
        assert picker.attach_button.button_style == ""  # and it does not look pressable
        picker.attach()
        assert state.attachment is not None and state.attachment.name == "ml.eia2.large"
        # an attach from the status bar or a magic moves the selection with it
        state.attach("ml.eia1.xlarge", precision="fp32")
        assert picker.selected == "ml.eia1.xlarge" and picker.precision.value == "fp32"
        assert picker.attach_button.disabled
        # changing only the precision is a change
        picker.precision.value = "fp16"
        assert not picker.attach_button.disabled
        assert "fp16" in picker.attach_button.tooltip
    finally:
        board.close()


def test_detaching_asks_first(board: Dashboard) -> None:
    picker = board.picker
    assert picker.detach_button.disabled  # nothing attached
    board.state.attach("ml.eia2.medium")
    assert not picker.detach_button.disabled
    picker.detach()
    assert board.state.attachment is not None  # only asked
    assert picker.confirm.layout.display == "flex"
    assert "ml.eia2.medium" in picker.confirm_text.value
    picker.cancel_detach()
    assert board.state.attachment is not None
    assert picker.confirm.layout.display == "none"
    assert picker.selected == "ml.eia2.medium"
    # "None" then Attach: the button says it detaches, and asks too
    picker.select("none")
    assert picker.attach_button.description == "Detach…"
    picker.attach()
    assert board.state.attachment is not None
    picker.confirm_detach()
    assert board.state.attachment is None
    assert picker.selected == "none"
    assert picker.attach_button.disabled


def test_detaching_says_what_really_follows(board: Dashboard, namespace: dict[str, Any]) -> None:
    """No view promises the instance's CPUs: after a detach, sessions raise."""
    from ei_widgets.device.sessions import session
    from ei_widgets.errors import NoAcceleratorError

    picker = board.picker
    board.state.attach("ml.eia2.medium")
    picker.detach()
    assert "Sessions then fail until an accelerator is attached again." in (
        picker.confirm_text.value
    )
    picker.confirm_detach()
    texts = [picker.status.value, *(c.value for c in picker.fit_cells.values())]
    assert not any("run on the notebook instance" in t or "runs on the notebook" in t
                   for t in texts)  # fmt: skip
    assert "sessions raise NoAcceleratorError until an accelerator is attached" in (
        picker.status.value
    )
    assert "sessions fail" in picker.fit_cells["none"].value
    with pytest.raises(NoAcceleratorError):
        session(namespace["small"], state=board.state)


def snapshot(stream: MetricsStream, host_bound: bool) -> Any:
    for i in range(20):
        stream.record(0.004, 1, at=0.1 + 0.004 * i, host_s=0.01 if host_bound else 0.001,
                      host_bound=host_bound)  # fmt: skip
    return stream.snapshot()


def test_host_bound_shows_only_in_paced_runs_and_blames_this_machine(
    board: Dashboard, stream: MetricsStream
) -> None:
    gauges = board.gauges
    snap = snapshot(stream, host_bound=True)
    gauges.refresh(snap, stream.series(), 2**30, paced=False)
    assert gauges.host_bound.layout.display == "none"  # virtual: the host's speed is irrelevant
    gauges.refresh(snap, stream.series(), 2**30, paced=True)
    assert gauges.host_bound.layout.display == ""
    text = gauges.host_bound.value
    assert "This machine cannot keep up with the simulated device" in text
    assert "the simulated figures are unaffected" in text
    assert "larger accelerator" not in text and "notebook instance" not in text
    fresh = MetricsStream()
    gauges.refresh(snapshot(fresh, host_bound=False), fresh.series(), 2**30, paced=True)
    assert gauges.host_bound.layout.display == "none"


def test_throughput_is_drawn_for_whole_seconds_on_one_time_base(board: Dashboard) -> None:
    stream = MetricsStream()
    for i in range(350):  # from 0.5 s to 4 s of simulated time: 4 seconds, two of them partial
        stream.record(0.01, 2, at=0.5 + 0.01 * i)
    board.gauges.refresh(stream.snapshot(), stream.series(), 2**30)
    series = stream.series()
    assert [p.second for p in series] == [0, 1, 2, 3]
    assert list(board.gauges.throughput.x) == [1.0, 2.0]
    assert list(board.gauges.throughput.y) == [200.0, 200.0]  # no ramp from partial seconds
    assert board.gauges.throughput_figure.title == "Throughput, whole seconds"
    short = MetricsStream()
    short.record(0.01, 1, at=0.5)
    board.gauges.reset()
    board.gauges.refresh(short.snapshot(), short.series(), 2**30)
    # no whole second: the short run's rate over the time it covered (one call of 10 ms)
    assert list(board.gauges.throughput.y) == pytest.approx([100.0])
    assert board.gauges.throughput_figure.title == "Throughput over partial seconds"
    assert list(board.gauges.latency_mean.y) == [10.0]  # one second's mean: a marked point
    assert board.gauges.latency_mean.marker == "circle"
    axes = board.gauges.throughput_figure.axes + board.gauges.latency_figure.axes
    assert [a.label for a in axes if a.side != "left"] == [
        "simulated seconds since the run started"
    ] * 2
    assert all("m" not in a.tick_format for a in axes if a.tick_format)  # never "900m"


def test_warm_up_is_out_of_the_latency_scale_and_marked(board: Dashboard) -> None:
    stream = MetricsStream()
    stream.record(0.2, 1, at=0.2, warmup=True)
    for i in range(300):
        stream.record(0.004, 1, at=0.2 + 0.004 * (i + 1))
    board.gauges.set_target(10.0)
    board.gauges.refresh(stream.snapshot(), stream.series(), 2**30)
    assert max(board.gauges.latency_mean.y) == pytest.approx(4.0)
    assert max(board.gauges.latency_p95.y) == pytest.approx(4.0)
    legend = board.gauges.latency_legend.value
    assert "warm-up call 200 ms, left out of the scale" in legend
    for name in ("p50", "p95", "mean per second", "target 10 ms"):
        assert name in legend
    assert list(board.gauges.latency_target.y) == [10.0, 10.0]
    board.gauges.set_target(500.0)  # far above the calls: not drawn, said
    board.gauges.refresh(stream.snapshot(), stream.series(), 2**30)
    assert len(board.gauges.latency_target.y) == 0
    assert "target 500 ms (above this scale)" in board.gauges.latency_legend.value


def test_memory_reads_as_a_gauge_naming_what_is_attached(board: Dashboard) -> None:
    board.state.attach("ml.eia2.large")
    board.tick()
    memory = board.gauges.memory_gauge.value
    assert "ml.eia2.large memory" in memory and "0 B / 4 GiB (0%)" in memory
    assert "no accelerator" not in memory
    board.state.detach()
    board.tick()
    assert "no accelerator attached" in board.gauges.memory_gauge.value


def test_charts_go_on_the_page_when_their_tab_opens(board: Dashboard) -> None:
    assert not board.gauges.charts_shown  # a hidden tab's chart has no width
    assert board.sizing.chart.children == ()
    board.state.attach("ml.eia2.medium")
    board.run_panel.clock.value = "virtual"
    board.run_panel.requests.value = 3000
    run = board.run_panel.start()
    assert run is not None and run.wait(120).state is RunState.FINISHED
    lines = comm_of(board.gauges.throughput)
    sent = len(lines.messages)
    assert board.tick()  # the summary and gauges move ...
    assert len(lines.messages) == sent  # ... but the hidden charts send nothing
    board.tabs.selected_index = 2
    assert board.gauges.throughput_figure in board.gauges.grid.children[0].children
    assert board.tick()  # opened: the data kept meanwhile is sent at once
    assert len(lines.messages) == sent + 1
    assert len(board.gauges.latency_p50.x) > 0
    board.tabs.selected_index = 4
    assert board.sizing.chart.children == (board.sizing.figure, board.sizing.legend)


def test_the_header_and_labels_say_what_they_mean(
    namespace: dict[str, Any], state: AcceleratorState, stream: MetricsStream
) -> None:
    """The labels that were cut off or wrong: "model model", "(overrides applied)" without any,
    a disabled Stop drawn active, a breakdown title cut at "network-bou", "$0.(" prices."""
    board = Dashboard(
        {"model": namespace["small"]}, state=state, stream=stream, meter=None, timer=False
    )
    try:
        assert "<code>model</code>" in board.header.value  # not "model model"
        assert "overrides" not in board.cost.children[-1].value  # none are applied
        assert board.run_panel.stop_button.button_style == ""  # disabled: drawn plain
        assert board.gauges.breakdown_figure.title == "Latency breakdown"
        labels = [label for label, _ in board.picker.instance.options]
        assert any(label.endswith("$0.05/h") for label in labels)
        state.attach("ml.eia2.medium")
        board.run_panel.clock.value = "virtual"
        run = board.run_panel.start()
        assert run is not None
        run.wait(60)
        board.tick()
        assert "run: 200/200 requests, finished" in board.header.value
    finally:
        board.close()


def test_after_a_restart_the_old_dashboard_says_it_is_disconnected(board: Dashboard) -> None:
    header = board.header.value
    # the note is hidden until ipywidgets marks the views disconnected (a kernel restart)
    assert ".jupyter-widgets-disconnected .ei-disconnected{display:block}" in header
    assert ".ei-disconnected{display:none}" in header
    assert "Disconnected:" in header and "%ei" in header


def test_sizing_makes_the_same_call_as_the_magic(board: Dashboard) -> None:
    from ei_widgets.device import sizing

    result = board.sizing.update()
    assert result is not None
    same = sizing.recommend(board.profile)  # the defaults, on the kernel's instance
    assert [r.option for r in result.rows] == [r.option for r in same.rows]
    assert result.pick is not None and same.pick is not None
    assert result.pick.option == same.pick.option
    assert (board.sizing.target.value, board.sizing.rate.value) == (
        sizing.DEFAULT_LATENCY_TARGET_MS,
        sizing.DEFAULT_REQUESTS_PER_SECOND,
    )
    assert "Searched 6 EI accelerators on ml.t3.medium" in board.sizing.searched.value


def test_the_inspector_and_the_accelerator_tab_show_one_judgement(
    state: AcceleratorState, stream: MetricsStream
) -> None:
    # AlexNet at batch 8 on ml.eia2.medium hosted by ml.t2.medium: both tabs show the core's
    # one judgement (the Inspector once left out the notebook instance)
    state.set_instance("ml.t2.medium")
    made = Dashboard(
        {"net": demo_model("bvlc_alexnet")}, state=state, stream=stream, meter=None, timer=False
    )
    try:
        made.profiles.wait_idle(60)
        made.refresh_models()
        wait_for(lambda: made.profile is not None)
        made.batch_changed(8)
        assert made.profile is not None
        judged = judge_all(made.profile, batch_size=8, instance="ml.t2.medium")
        one = judged.of("ml.eia2.medium", "fp32")
        assert one.estimate is not None and one.instance == "ml.t2.medium"
        latency = format_ms(one.estimate.latency_s)
        assert latency in made.picker.fit_cells["ml.eia2.medium"].value
        assert latency in made.inspector.fits.value
        assert "on ml.t2.medium" in made.inspector.fits.value
    finally:
        made.close()


def test_the_first_run_reports_its_own_calls_only(board: Dashboard, stream: MetricsStream) -> None:
    """Calls made before the run (other sessions, another model: 9.81 ms each) and 24 s of
    simulated gap stay out of the run's summary, quantiles and time axis."""
    from ei_widgets.device.sessions import virtual_clock

    clock = virtual_clock()
    for _ in range(320):
        stream.record(0.00981, 1, at=clock.advance(0.00981), accelerator="ml.eia2.medium")
    clock.advance(24.0)
    board.state.attach("ml.eia2.medium")
    board.tabs.selected_index = 2
    panel = board.run_panel
    panel.clock.value = "virtual"
    panel.requests.value = 100
    run = panel.start()
    assert run is not None and run.wait(60).state is RunState.FINISHED
    board.tick()
    summary = board.gauges.summary.value
    assert "This run:" in summary
    assert "100 calls, 100 inferences" in summary
    assert stream.snapshot().calls == 420  # the stream (and the meter) still hold everything
    assert board.profile is not None
    expected = estimate(board.profile, "ml.eia2.medium", batch_size=1).latency_ms
    assert board.gauges.latency_p50.y[-1] == pytest.approx(expected, rel=1e-6)
    assert "9.81" not in summary
    # the run is under a second of simulated time: its rate is still drawn, from x = 0
    assert len(board.gauges.throughput.y) >= 1
    own = stream.snapshot(since=board.run_tab._mark)
    assert own.calls == 100
    # one or two seconds touched: each drawn as its inferences over the part the run covered
    points = [p for p in stream.series(since=board.run_tab._mark) if p.inferences]
    assert len(points) == len(board.gauges.throughput.y) <= 2
    drawn = [y * p.span_s for y, p in zip(board.gauges.throughput.y, points, strict=True)]
    assert sum(drawn) == pytest.approx(100)
    assert own.throughput_per_s == pytest.approx(100 / own.simulated_seconds)
    assert 0.0 <= min(board.gauges.throughput.x) <= max(board.gauges.throughput.x) <= 1.0
    assert max(board.gauges.latency_p50.x) <= 1.0
    for scale in board.gauges.time_scales:
        assert scale.min == 0.0 and scale.max == 1.0


def test_before_any_run_the_gauges_say_they_show_the_kernels_calls(
    board: Dashboard, stream: MetricsStream
) -> None:
    stream.record(0.005, 1, at=1.0)
    board.tick()
    assert "No run yet. All metered calls in this kernel:" in board.gauges.summary.value


def test_time_axes_never_label_two_ticks_alike(board: Dashboard) -> None:
    axes = board.gauges.throughput_figure.axes + board.gauges.latency_figure.axes
    (x1, x2) = [a for a in axes if a.side != "left"]
    assert x1.tick_format == x2.tick_format == ",~r"  # 119.2, not "119" twice
    assert all(a.num_ticks for a in axes)
    marks = board.gauges.latency_figure.marks
    assert marks.index(board.gauges.latency_p50) > marks.index(board.gauges.latency_p95)
    assert board.gauges.latency_p95.stroke_width > board.gauges.latency_p50.stroke_width


def test_after_a_restart_the_layout_holds(board: Dashboard) -> None:
    """ipywidgets' per-view disconnected icon (a ::before box) would be one more grid cell in
    every table: the header's rule removes it inside the dashboard."""
    assert "ei-dashboard" in board._dom_classes
    header = board.header.value
    assert ".ei-dashboard .jupyter-widgets-disconnected::before" in header
    assert "{content:none;display:none}" in header


def test_none_selected_shows_one_detach_button(board: Dashboard) -> None:
    picker = board.picker
    board.state.attach("ml.eia2.medium")
    assert picker.detach_button.layout.display == ""
    picker.select("none")
    assert picker.attach_button.description == "Detach…"
    assert picker.detach_button.layout.display == "none"  # not two Detach buttons
    picker.select("ml.eia2.large")
    assert picker.detach_button.layout.display == ""


def test_the_instance_keeps_a_pending_precision_and_says_it_applied(board: Dashboard) -> None:
    picker = board.picker
    board.state.attach("ml.eia2.medium", precision="fp32")
    picker.precision.value = "fp16"  # chosen, not attached yet
    assert picker.pending_change() is not None
    other = next(v for _, v in picker.instance.options if v != board.state.instance.name)
    picker.instance.value = other
    assert board.state.instance.name == other
    assert picker.precision.value == "fp16"  # not dropped
    assert board.state.attachment is not None and board.state.attachment.precision == "fp32"
    message = picker.message.value
    assert f"Notebook instance now {other}, applied at once." in message
    assert "Not applied yet: replace ml.eia2.medium (fp32) with ml.eia2.medium (fp16)" in message


def test_charts_leave_the_page_while_their_tab_is_hidden(board: Dashboard) -> None:
    # a new view of the dashboard (a split view) draws what is on the page: a chart in a hidden
    # tab would be drawn with no width (bqplot's negative <rect> sizes)
    board.tabs.selected_index = RUN_TAB
    assert board.gauges.charts_shown
    board.tabs.selected_index = [spec.title for spec in TABS].index("Sizing")
    assert not board.gauges.charts_shown
    assert board.sizing.chart.children != ()
    board.tabs.selected_index = RUN_TAB
    assert board.gauges.charts_shown and board.sizing.chart.children == ()
    board.close()  # the boxes that hold the charts are closed with the rest
    assert all(box.comm is None for box in board.gauges.chart_boxes)
