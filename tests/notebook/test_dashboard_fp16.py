"""The dashboard's fp16 check: measured on the chosen model in a background thread, its progress
drawn, its answer shown in the Accelerator tab and in the Sizing table.

Widgets talk to the recording comm of ``tests.notebook.test_dashboard`` (no kernel, no browser);
the check's thread is waited on with a timeout and the state asserted after, never timed. A check
that must still be running when something is asserted is held on an event, so nothing depends on
speed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ei_widgets.device import fp16
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.notebook.views.dashboard import Dashboard
from ei_widgets.notebook.views.sizing import TABLE_ROWS
from tests.builders import integer_only, mlp, tiny_convnet
from tests.notebook.test_dashboard import (  # noqa: F401 (recording_comm: a fixture)
    RecordingComm,
    comm_of,
    recording_comm,
    wait_for,
)

WAIT_S = 120.0  # a bound for a hung thread, not a speed claim


@pytest.fixture(autouse=True)
def fresh_fp16_cache() -> None:
    fp16.clear_cache()


def make_board(namespace: dict[str, Any]) -> Dashboard:
    board = Dashboard(
        namespace, state=AcceleratorState(), stream=MetricsStream(), meter=None, timer=False
    )
    board.profiles.wait_idle(30)
    board.refresh_models()
    return board


@pytest.fixture
def board() -> Iterator[Dashboard]:
    # a small convolutional classifier (10 classes, random weights) and an unconvertible model
    made = make_board({"net": tiny_convnet(size=64), "ints": integer_only(), "mlp": mlp((16, 8))})
    yield made
    made.close()


def updates(widget: Any, name: str) -> list[Any]:
    """Every value of trait ``name`` the widget sent, in order."""
    return [u[name] for u in comm_of(widget).updates() if name in u]


def measure(board: Dashboard) -> None:
    board.fp16.button.click()
    assert board.fp16.wait(WAIT_S), "the fp16 check did not end"


def agreement_cells(html: str) -> list[tuple[str, str]]:
    """(precision, fp16 agreement) of every row of the Sizing table."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html)
    header = re.findall(r"<th[^>]*>(.*?)</th>", rows[0])
    precision, agreement = header.index("precision"), header.index("fp16 agreement")
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    return [(c[precision], c[agreement]) for c in cells if c]  # both groups' rows


class Held:
    """``fp16_check`` held on an event until released, counting its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold: bool = True) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()
        real = fp16.fp16_check

        def held(*args: Any, **kwargs: Any) -> fp16.FP16Check:
            self.calls += 1
            self.started.set()
            assert self.release.wait(WAIT_S)
            return real(*args, **kwargs)

        monkeypatch.setattr(fp16, "fp16_check", held)


def start_held(board: Dashboard, monkeypatch: pytest.MonkeyPatch) -> Held:
    """Click Measure with ``fp16_check`` held; returns once the check has started."""
    held = Held(monkeypatch)
    board.fp16.button.click()
    assert held.started.wait(WAIT_S)
    return held


# --- the button ----------------------------------------------------------------------------------


def test_the_button_is_disabled_without_a_model() -> None:
    board = make_board({"unrelated": 42})
    try:
        assert board.variable is None
        assert board.fp16.button.disabled
        assert "choose a model" in board.fp16.button.tooltip
        assert board.fp16.start() is None  # a click that slips through does nothing
        assert board.fp16.thread is None
        assert board.fp16 in board.picker.children  # in the Accelerator tab, by the precision
    finally:
        board.close()


def test_measuring_shows_progress_then_the_agreement(board: Dashboard) -> None:
    panel = board.fp16
    assert board.variable == "net"
    assert not panel.button.disabled
    assert "not measured yet" in panel.result.value
    measure(board)
    check = fp16.fp16_check(board.namespace["net"], name="net")  # the cached answer
    assert check.measured and check.classifier is not None and check.classifier.top5 is not None
    # the bar was driven forward by on_progress and ends full
    values = updates(panel.progress, "value")
    assert values == sorted(values) and len(values) >= 2
    assert values[-1] == panel.progress.max == panel.progress.value
    assert panel.progress.bar_style == "success"
    assert "done" in panel.stage.value
    # the answer: agreement (top-1 and top-5) and the largest error, marked as measured
    text = panel.result.value
    assert "top-1 " in text and "top-5 " in text and check.agreement in text
    assert "max |error|" in text and "measured" in text
    # disabled while it ran, enabled again after
    assert updates(panel.button, "disabled")[-2:] == [True, False]
    assert not panel.button.disabled
    # the picker leaves the fp16 answer to the panel, even at fp16
    board.picker.precision.value = "fp16"
    assert board.picker.fp16_note.value == ""


def test_a_second_click_shows_the_known_answer_at_once(
    board: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(monkeypatch, hold=False)
    measure(board)
    first = board.fp16.thread
    shown = board.fp16.result.value
    assert held.calls == 1
    board.fp16.result.value = ""
    assert board.fp16.start() is None  # no second thread, no second check
    assert board.fp16.thread is first and held.calls == 1
    assert board.fp16.result.value == shown
    assert board.fp16.progress.value == board.fp16.progress.max


def test_the_button_is_disabled_while_a_check_runs(
    board: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = start_held(board, monkeypatch)
    assert board.fp16.running and board.fp16.button.disabled
    assert board.fp16.start() is None and held.calls == 1  # a second click is refused
    # another model chosen meanwhile: still disabled, and the answer is not shown for it
    board.models.choice.value = "mlp"
    assert board.fp16.button.disabled
    held.release.set()
    assert board.fp16.wait(WAIT_S)
    assert not board.fp16.button.disabled
    assert "not measured yet" in board.fp16.result.value  # mlp has no check
    board.models.choice.value = "net"  # back: its answer is known
    assert "top-1 " in board.fp16.result.value


# --- bad models and errors -----------------------------------------------------------------------


def test_an_unconvertible_model_shows_the_reason(board: Dashboard) -> None:
    board.models.choice.value = "ints"
    measure(board)
    text = board.fp16.result.value
    assert "fp16 not measured: integer-only model" in text
    assert board.fp16.progress.bar_style == "warning"
    assert board.fp16.progress.value == board.fp16.progress.max
    assert not board.fp16.button.disabled


def test_an_error_in_the_check_is_shown_in_the_panel(
    board: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> fp16.FP16Check:
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(fp16, "fp16_check", broken)
    measure(board)
    assert "RuntimeError: converter exploded" in board.fp16.result.value
    assert "The fp16 check of net failed" in board.fp16.result.value
    assert board.fp16.progress.bar_style == "danger"
    assert not board.fp16.button.disabled  # it can be tried again


def test_a_model_gone_from_the_kernel_says_so(board: Dashboard) -> None:
    del board.namespace["net"]  # the list has not been refreshed yet
    assert board.fp16.start() is None
    assert "net is no longer in the kernel" in board.fp16.result.value


def test_closing_while_a_check_runs_draws_nothing_after(
    board: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = start_held(board, monkeypatch)
    sent = len(RecordingComm.log)
    board.close()
    closing = len(RecordingComm.log)
    held.release.set()
    assert board.fp16.wait(WAIT_S)
    assert closing >= sent and len(RecordingComm.log) == closing  # the thread sent nothing


# --- the Sizing table ----------------------------------------------------------------------------


def test_the_sizing_table_gains_the_agreement_once_measured(board: Dashboard) -> None:
    sizing = board.sizing
    sizing.rate.value = 0.0  # any rate
    everything = sizing.update()
    assert everything is not None
    # a target only the fastest fp16 option meets puts fp16 rows in the rows shown
    fastest = min(r.latency_ms for r in everything.rows if r.precision == "fp16" and r.fits)
    sizing.target.value = fastest * 1.001
    result = sizing.update()
    assert result is not None
    shown = agreement_cells(sizing.listing.value)
    groups = (result.ei_rows, result.today_rows)
    assert len(shown) == sum(min(TABLE_ROWS, len(g)) for g in groups)  # each group's best
    assert any(p == "fp16" for p, _ in shown)
    assert all(a == ("not measured" if p == "fp16" else "") for p, a in shown)
    measure(board)  # the Sizing tab is redrawn when the check completes
    check = fp16.fp16_check(board.namespace["net"], name="net")
    assert sizing.recommendation is not result and sizing.recommendation is not None
    assert sizing.recommendation.fp16 == check
    after = agreement_cells(sizing.listing.value)
    assert any(p == "fp16" for p, _ in after)
    assert all(a == (check.agreement if p == "fp16" else "") for p, a in after)


def test_a_check_run_in_a_cell_is_shown_after_the_cell(board: Dashboard) -> None:
    assert board.sizing.update() is not None
    before = board.sizing.recommendation
    assert "not measured yet" in board.fp16.result.value
    check = fp16.fp16_check(board.namespace["net"], name="net")  # as %ei_inspect net --fp16 does
    board.refresh_models()  # what the dashboard does after every cell
    assert check.agreement in board.fp16.result.value
    assert board.sizing.recommendation is not before
    assert board.sizing.recommendation is not None and board.sizing.recommendation.fp16 == check
    again = board.sizing.recommendation
    board.refresh_models()  # nothing new: nothing redrawn
    assert board.sizing.recommendation is again


def test_a_variable_given_another_model_is_not_measured_yet(board: Dashboard) -> None:
    measure(board)
    assert "top-1 " in board.fp16.result.value
    measured = board.profile
    board.namespace["net"] = mlp((16, 32, 8))  # a cell reassigns the chosen variable
    board.refresh_models()
    wait_for(lambda: board.profile is not measured)  # profiled in the background, then chosen
    assert board.profile is not None and board.profile.model_size_bytes != (
        measured.model_size_bytes if measured else None
    )
    # the panel follows the new profile as it arrives (from the same background thread)
    wait_for(lambda: "not measured yet" in board.fp16.result.value)
    assert board.fp16.results == {}  # the old model is let go
    measure(board)
    check = fp16.fp16_check(board.namespace["net"], name="net")
    assert check.classifier is not None and check.classifier.shape == (8, 8)
    assert check.agreement in board.fp16.result.value
