"""The Endpoint tab: its empty state, what it draws of ``Predictor.live()``, and its poller's life.

The endpoints here are stand-ins that return ``LiveSnapshot``s (the tab reads nothing else of a
Predictor but its name, ``live()`` and ``delete_endpoint()``); a real endpoint is drawn by the
kernel test in test_endpoint_magics.py and the browser test endpoint.spec.ts.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from ei_widgets.endpoint.predictor import LiveSnapshot
from ei_widgets.errors import EndpointError
from ei_widgets.notebook.views import endpoint_tab
from ei_widgets.notebook.views.endpoint_tab import EMPTY_TEXT, EndpointTab
from ei_widgets.notebook.views.tabs import TABS


class FakeEndpoint:
    """Answers ``live()`` with a growing per-second series; ``delete_endpoint()`` ends it."""

    def __init__(self, name: str, registry: list[FakeEndpoint]) -> None:
        self.endpoint_name = name
        self.registry = registry
        self.seconds = 0
        self.calls = 0
        registry.append(self)

    def live(self, seconds: int = 120) -> LiveSnapshot:
        if self not in self.registry:
            raise EndpointError(f"endpoint {self.endpoint_name!r} was deleted")
        self.calls += 1
        self.seconds += 1
        series = [
            {
                "t": float(t),
                "Invocations": 10.0 * t,
                "Invocation4XXErrors": 1.0 if t == 2 else 0.0,
                "Invocation5XXErrors": 2.0 if t == 3 else 0.0,
                "Throttles": 2.0 if t == 3 else 0.0,
                "ModelLatency_p50": 20_000.0 + t,
                "ModelLatency_p90": 30_000.0 * t,
                "ModelLatency_p99": 40_000.0 * t,
                "QueueDepth": float(t),
            }
            for t in range(self.seconds)
        ][-seconds:]
        return LiveSnapshot(
            endpoint_name=self.endpoint_name,
            status="InService",
            instances=2,
            queue_depth=self.seconds - 1,
            queue_size=100,
            series=series,
            cost_so_far=Decimal("0.000567") * self.seconds,
            rate_per_hour=Decimal("0.566"),
            model_load_seconds=3.2,
            modelled_latency_ms=21.5,
            saturation_rps=93.0,
            accuracy="modelled: ±33% for dense CNN classifiers",
            uptime_seconds=float(self.seconds),
        )

    def delete_endpoint(self) -> None:
        if self in self.registry:
            self.registry.remove(self)


@pytest.fixture
def registry() -> list[FakeEndpoint]:
    return []


@pytest.fixture
def tab(registry: list[FakeEndpoint]) -> Any:
    made = EndpointTab(threading.RLock(), lambda: list(registry))
    yield made
    made.close_tab()
    made.close()


def test_the_tab_is_registered_last() -> None:
    assert TABS[-1].title == "Endpoint" and TABS[-1] is endpoint_tab.TAB


def test_without_an_endpoint_it_says_how_to_deploy_one(tab: EndpointTab) -> None:
    tab.poll()
    assert EMPTY_TEXT in tab.empty.value and "%ei_deploy" in tab.empty.value
    assert tab.empty.layout.display != "none" and tab.live_box.layout.display == "none"


def test_it_draws_the_live_series_against_the_target(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    endpoint = FakeEndpoint("densenet-1", registry)
    for _ in range(5):
        tab.poll()
    assert tab.live_box.layout.display == "" and tab.empty.layout.display == "none"
    assert list(tab.choice.options) == ["densenet-1"]
    np.testing.assert_array_equal(tab.throughput.x, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tab.throughput.y, [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(tab.errors.y, [0, 0, 1, 2, 0])
    np.testing.assert_allclose(tab.p90.y, [0, 30, 60, 90, 120])  # microseconds drawn as ms
    np.testing.assert_allclose(tab.p99.y, [0, 40, 80, 120, 160])
    np.testing.assert_array_equal(tab.queue.y, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tab.target_line.y, [50, 50])  # the default p90 target
    for scale in tab.time_scales:  # every chart spans the seconds shown
        assert (scale.min, scale.max) == (0.0, 4.0)
    # the value axes tick at round numbers from 0 up to the highest value drawn
    ticks = [list(f.axes[1].tick_values) for f in tab.figures()]
    assert ticks == [[0, 10, 20, 30, 40], [0, 50, 100, 150], [0, 1, 2, 3, 4]]
    summary = tab.summary.value
    assert "densenet-1" in summary and "InService" in summary and "2 instances" in summary
    assert "$0.002835" in summary  # cost so far after 5 seconds
    assert "p90 120 ms" in summary and "over the 50 ms target" in summary
    assert "3 errors (2 throttled)" in summary and "queue 4 of 100" in summary
    assert "modelled" in summary and "saturates at 93" in summary
    tab.target.value = 200
    np.testing.assert_array_equal(tab.target_line.y, [200, 200])
    assert "within the 200 ms target" in tab.summary.value
    assert endpoint.calls == 5


def test_the_cost_ticks_with_each_poll(tab: EndpointTab, registry: list[FakeEndpoint]) -> None:
    FakeEndpoint("a", registry)
    tab.poll()
    first = tab.summary.value
    tab.poll()
    assert tab.summary.value != first and "$0.001134" in tab.summary.value


def test_it_shows_the_newest_until_another_is_picked(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    FakeEndpoint("old", registry)
    tab.poll()
    FakeEndpoint("new", registry)
    tab.poll()
    assert tab.choice.value == "old"  # the one picked stays picked
    tab.choice.value = "new"
    tab.poll()
    assert tab.snapshot is not None and tab.snapshot.endpoint_name == "new"


def test_delete_ends_the_endpoint_and_returns_to_the_empty_state(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    FakeEndpoint("gone-soon", registry)
    tab.poll()
    tab.delete_chosen()
    assert registry == []
    assert tab.live_box.layout.display == "none" and EMPTY_TEXT in tab.empty.value
    assert len(tab.throughput.x) == 0  # the old endpoint's lines are cleared


def test_an_endpoint_gone_mid_poll_is_a_message_not_a_crash(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    endpoint = FakeEndpoint("flaky", registry)
    tab.poll()

    def vanished(seconds: int = 120) -> LiveSnapshot:
        raise EndpointError("the server did not answer")

    endpoint.live = vanished  # type: ignore[method-assign]
    tab.poll()
    assert "the server did not answer" in tab.message.value


def test_the_poller_runs_only_while_the_tab_is_shown(
    tab: EndpointTab, registry: list[FakeEndpoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint_tab, "POLL_S", 0.02)
    FakeEndpoint("e", registry)
    tab.opened()
    assert len(tab.grid.children) == 3
    deadline = time.monotonic() + 5
    while tab.polls < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tab.polls >= 4
    tab.hidden()
    assert tab.grid.children == ()
    stopped = tab.polls
    time.sleep(0.1)
    assert tab.polls == stopped
    assert not any(t.name == "ei-widgets-endpoint-poller" for t in threading.enumerate())


def test_charts_go_on_the_page_only_with_an_endpoint_shown(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    tab.opened()
    assert tab.grid.children == ()  # the empty state: a chart there would have no size
    FakeEndpoint("e", registry)
    tab.poll()
    assert len(tab.grid.children) == 3
    registry.clear()
    tab.poll()
    assert tab.grid.children == () and tab.live_box.layout.display == "none"
    tab.hidden()
    FakeEndpoint("again", registry)
    tab.poll()  # drawn while hidden: the data is kept, the charts stay off the page
    assert tab.grid.children == () and tab.snapshot is not None


def test_seconds_without_a_latency_are_left_out_never_sent_as_nan(
    tab: EndpointTab, registry: list[FakeEndpoint]
) -> None:
    endpoint = FakeEndpoint("gaps", registry)
    real = endpoint.live

    def with_gaps(seconds: int = 120) -> LiveSnapshot:
        snap = real(seconds)
        for row in snap.series:
            if row["t"] in (1.0, 3.0):
                for q in ("p50", "p90", "p99"):
                    row[f"ModelLatency_{q}"] = float("nan")
        return snap

    endpoint.live = with_gaps  # type: ignore[method-assign]
    for _ in range(5):
        tab.poll()
    np.testing.assert_array_equal(tab.p90.x, [0, 2, 4])
    np.testing.assert_allclose(tab.p90.y, [0, 60, 120])
    assert len(tab.throughput.x) == 5
