"""The dashboard in a real kernel: ``%ei`` shows a widget, and cells run while a run goes on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kernel import kernel, run

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

MAKE_MODEL = """
import numpy as np
from onnx import TensorProto, helper, numpy_helper
_w = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
_w = numpy_helper.from_array(_w, "w")
model = helper.make_model(
    helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])],
        [_w],
    ),
    opset_imports=[helper.make_opsetid("", 17)],
)
"""

START_RUN = """
board = _
board.picker.select("ml.eia2.medium")
board.picker.attach()
board.tabs.selected_index = 2  # the Run tab, as a person watching the run opens it
board.run_panel.clock.value = "virtual"
board.run_panel.mode.value = "duration"
board.run_panel.duration.value = 120.0
board.run_panel.concurrency.value = 2
started = board.run_panel.start()
print(started.state.value)
"""

STATUS = """
import json
p = board.run_panel.run.progress()
print(json.dumps({"state": p.state.value, "done": p.done,
                  "drawn": float(board.gauges.throughput.y.sum()), "ticks": board.ticks,
                  "models": [v for _, v in board.models.choice.options]}))
"""


def status(client: Any) -> dict[str, Any]:
    result = run(client, STATUS)
    assert result.error is None, result.error
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_ei_shows_the_dashboard_and_the_kernel_stays_free_during_a_run() -> None:
    with kernel() as (_, client):
        assert run(client, "%load_ext ei_widgets").error is None
        assert run(client, MAKE_MODEL).error is None
        shown = run(client, "%ei")
        assert shown.error is None, shown.error
        views = [d[WIDGET_VIEW] for d in shown.data if WIDGET_VIEW in d]
        assert len(views) == 1
        assert views[0]["model_id"]

        started = run(client, START_RUN)
        assert started.error is None, started.error
        assert started.stdout.strip().endswith("running")

        # trivial cells are answered while the run goes on in the background
        for i in range(5):
            trivial = run(client, f"{i} + 1", timeout=30)
            assert trivial.error is None
            assert trivial.data[-1]["text/plain"] == str(i + 1)
        during = status(client)
        assert during["state"] == "running"
        assert during["done"] > 0

        # a model defined by a cell appears after that cell (post_run_cell)
        assert run(client, "second = model").error is None
        assert "second" in status(client)["models"]

        stopped = run(client, "print(board.run_panel.stop(), board.run_panel.run.state.value)")
        assert stopped.error is None
        assert stopped.stdout.split() == ["True", "stopped"]
        # the timer drew the run's throughput (polled: the timer runs at about 5 Hz)
        drawn = run(
            client,
            "import time\n"
            "for _ in range(100):\n"
            "    if board.ticks and board.gauges.throughput.y.sum() > 0: break\n"
            "    time.sleep(0.05)\n",
        )
        assert drawn.error is None
        after = status(client)
        assert after["ticks"] > 0
        assert after["drawn"] > 0

        closed = run(client, "board.close(); print(board.closed)")
        assert closed.stdout.strip() == "True"
