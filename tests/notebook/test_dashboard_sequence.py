"""The sequence length in the dashboard: the Inspector and the Accelerator tab offer it only for a
model with a variable sequence dimension, choosing one profiles and judges the model at it, and
the Inspector shows the modelled latency at several lengths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sequence import length_table
from ei_widgets.notebook.views.dashboard import Dashboard
from tests.builders import mlp, transformer_block
from tests.notebook.test_dashboard import recording_comm  # noqa: F401  (autouse: no front end)


@pytest.fixture
def board() -> Iterator[Dashboard]:
    namespace: dict[str, Any] = {
        "encoder": transformer_block(batch="batch", seq="sequence"),
        "small": mlp((16, 32, 8)),
    }
    made = Dashboard(
        namespace, state=AcceleratorState(), stream=MetricsStream(), meter=None, timer=False
    )
    made.profiles.wait_idle(60)
    made.refresh_models()
    made.profiles.wait_idle(60)
    yield made
    made.close()


def test_a_transformer_is_inspected_at_128_tokens_with_its_latency_by_length(
    board: Dashboard,
) -> None:
    board.choose("encoder")
    assert board.profile is not None and board.profile.seq_len == 128
    for control in (board.inspector.seq_len, board.picker.seq_len):
        assert control.layout.display == ""
        assert control.value == 128 and list(control.options) == [64, 128, 256, 512]
    table = board.inspector.lengths.value
    expected = length_table(board.namespace["encoder"], seq_len=128)
    assert expected is not None
    for point in expected.points:  # the views show the core's figures, nothing of their own
        assert f">{point.seq_len:,}<" in table
    assert "modelled" in table and "Latency by sequence length" in table
    assert "bound at batch 1, 128 tokens" in board.inspector.io.value


def test_choosing_a_length_profiles_and_judges_the_model_at_it(board: Dashboard) -> None:
    board.choose("encoder")
    before = board.profile
    assert before is not None
    judged_128 = board.picker.judgements
    board.inspector.seq_len.value = 512
    assert board.profile is not None and board.profile.seq_len == 512
    assert board.profile.flops > before.flops * 4  # 4x the tokens, attention's square on top
    assert board.picker.seq_len.value == 512  # both controls show the one length
    assert board.state.model is not None and board.state.model[1] is board.profile
    judged_512 = board.picker.judgements
    assert judged_128 is not None and judged_512 is not None
    at_128, at_512 = (j.of("ml.eia2.medium", "fp32").estimate for j in (judged_128, judged_512))
    assert at_128 is not None and at_512 is not None
    assert at_512.latency_s > at_128.latency_s  # every size judged again at the new length
    board.picker.seq_len.value = 64
    assert board.profile.seq_len == 64 and board.inspector.seq_len.value == 64


def test_a_model_without_a_sequence_shows_no_length(board: Dashboard) -> None:
    board.choose("small")
    assert board.profile is not None and board.profile.seq_len is None
    assert board.inspector.seq_len.layout.display == "none"
    assert board.picker.seq_len.layout.display == "none"
    assert board.inspector.lengths.value == ""
