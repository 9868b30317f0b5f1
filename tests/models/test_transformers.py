"""A Hugging Face transformer as a model with a sequence length: found, profiled at two lengths
from one export, and its FLOPs checked against PyTorch's own count of the same forward.

The model is a BERT built from a tiny config (no download). ``FlopCounterMode`` counts only the
matrix products (``addmm``, ``bmm``, attention); the profile also counts the elementwise work
around them (LayerNorm, GELU, softmax, adds). Like is compared with like: the profile's FLOPs in
the ONNX nodes with multiply-accumulates (``matrix_flops``) against the counter's total, with
PyTorch's plain kernels so the counter sees every product.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import transformers  # the test extra's; never a runtime dependency

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sequence import latency_by_length
from ei_widgets.device.sessions import session
from ei_widgets.device.sizing import recommend
from ei_widgets.errors import ProfileError
from ei_widgets.models.discovery import find_models
from ei_widgets.models.frameworks import base
from ei_widgets.models.frameworks import torch as torch_models
from ei_widgets.profiling.profiler import profile
from tests.builders import mlp
from tests.kernel import kernel, run
from tests.models.test_torch_models import matrix_flops, reference_flops

LENGTHS = (32, 96)


@pytest.fixture(scope="module")
def bert() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,  # BERT-base's: every length shown fits
    )
    return transformers.BertModel(config).eval()


def one_layer_bert(seed: int, *, hidden: int, positions: int) -> Any:
    """A new one-layer BERT (not the module's: its export is not cached yet)."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=128, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=positions,
    )  # fmt: skip
    return transformers.BertModel(config).eval()


def test_a_bert_is_found_ready_without_being_run(bert: Any) -> None:
    (entry,) = find_models({"bert": bert, "x": 3})
    assert entry.variable == "bert"
    assert "BertModel" in entry.summary
    assert "input_ids=" in entry.summary or "int64[1, 128]" in entry.summary
    assert "input shape unknown" not in entry.summary


@pytest.mark.parametrize("seq_len", LENGTHS)
def test_flops_at_each_length_match_pytorchs_count(bert: Any, seq_len: int) -> None:
    result = profile(bert, seq_len=seq_len)
    assert result.seq_len == seq_len and result.batch_size == 1
    assert result.bound_inputs["input_ids"] == (1, seq_len)
    assert [t.shape for t in result.inputs] == [("batch", "sequence")]
    counted, by_op = reference_flops(bert, torch.zeros((1, seq_len), dtype=torch.int64))
    assert any("mm" in op for op in by_op), by_op  # the counter saw the products
    assert matrix_flops(result) == pytest.approx(counted, rel=0.02)


def test_the_export_reports_its_stages_as_it_goes() -> None:
    events: list[base.ExportProgress] = []
    with base.progress_listener(events.append):
        profile(one_layer_bert(1, hidden=32, positions=512), name="tiny_bert", seq_len=16)
    stages = [e.stage for e in events]
    expected = [stage for stage, _ in torch_models.STAGES.values()]
    assert [s for s in stages if s in expected] == expected, stages  # each, in order
    assert {e.model for e in events} == {"tiny_bert"} and {e.framework for e in events} == {"torch"}
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    assert events[-1].done and not events[-1].error and events[-1].fraction == 1.0
    assert all(not e.done for e in events[:-1])


def test_two_lengths_share_one_export_and_attention_grows_with_the_square(bert: Any) -> None:
    short, long = (profile(bert, seq_len=n) for n in LENGTHS)
    assert short.framework is long.framework  # the cached export, bound twice
    ratio = LENGTHS[1] / LENGTHS[0]
    # linear layers grow with the length, attention's scores with its square: more than linear
    assert ratio < matrix_flops(long) / matrix_flops(short) < ratio**2


def test_latency_by_length_is_modelled_and_grows(bert: Any) -> None:
    scaling = latency_by_length(bert, "ml.eia2.medium", lengths=(64, 128, 256, 512))
    assert [p.seq_len for p in scaling.points] == [64, 128, 256, 512]
    latencies = [p.latency_ms for p in scaling.points]
    assert latencies == sorted(latencies) and latencies[0] < latencies[-1]
    assert scaling.accuracy.startswith("modelled")
    assert "modelled" in scaling.heading and "512 tokens" in scaling.row


def test_recommend_shows_the_pick_at_several_lengths(bert: Any) -> None:
    rec = recommend(bert, seq_len=256, batch_sizes=[1])
    assert rec.by_length is not None
    assert 256 in {p.seq_len for p in rec.by_length.points}
    shown = rec.pick or rec.pick_ei or rec.rows[0]
    at_256 = next(p for p in rec.by_length.points if p.seq_len == 256)
    assert at_256.latency_ms == pytest.approx(shown.latency_ms)  # the same model, one answer
    assert rec.by_length.text.startswith("Latency by sequence length")


def test_a_model_without_a_sequence_is_told_so(bert: Any) -> None:
    with pytest.raises(ProfileError, match="no sequence dimension"):
        profile(mlp(), seq_len=64)
    assert profile(mlp()).seq_len is None
    for bad in (0, -3, 2.5):
        with pytest.raises(ProfileError, match="seq_len must be a positive integer"):
            profile(bert, seq_len=bad)


def test_a_session_runs_at_the_length_asked_and_matches_pytorch(bert: Any) -> None:
    state = AcceleratorState()
    state.attach("ml.eia2.medium")
    sess = session(bert, seq_len=48, clock="virtual", state=state, stream=MetricsStream())
    assert sess.profile.seq_len == 48
    ids = np.random.default_rng(0).integers(0, 128, size=(2, 48), dtype=np.int64)
    (hidden, *_rest) = sess.run(None, {"input_ids": ids})
    with torch.no_grad():
        expected = bert(torch.from_numpy(ids)).last_hidden_state.numpy()
    np.testing.assert_allclose(hidden, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ProfileError, match="no sequence dimension"):
        session(mlp(), seq_len=48, clock="virtual", state=state, stream=MetricsStream())


def test_lengths_beyond_the_position_table_are_refused_and_not_tabled(bert: Any) -> None:
    with pytest.raises(ProfileError, match="at most 512 tokens"):
        profile(bert, seq_len=513)
    scaling = latency_by_length(bert, "ml.eia2.medium", lengths=(64, 512, 1024))
    assert [p.seq_len for p in scaling.points] == [64, 512]


KERNEL_CELL = """
%load_ext ei_widgets
import transformers
from ei_widgets.models.discovery import find_models

bert = transformers.BertModel(transformers.BertConfig(
    vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=64,
)).eval()
print("found:", [(e.variable, e.kind) for e in find_models(globals())])
"""


@pytest.mark.kernel
@pytest.mark.slow
def test_found_in_a_real_kernel_and_inspected_at_a_length() -> None:
    with kernel() as (_manager, client):
        found = run(client, KERNEL_CELL, timeout=120)
        inspected = run(client, "%ei_inspect bert --seq-len 64", timeout=300)
    assert found.error is None and inspected.error is None, (found.error, inspected.error)
    assert "found: [('bert', 'torch-module')]" in found.stdout
    text = "".join(d.get("text/plain", "") for d in inspected.data)
    assert "batch 1, 64 tokens:" in text
    assert "Latency by sequence length" in text and "512 tokens" in text


def test_a_position_table_shorter_than_the_default_is_exported_and_shown_within_it() -> None:
    short = one_layer_bert(2, hidden=16, positions=64)
    result = profile(short)  # the default length, 128, is beyond its table: it is shown at 64
    assert result.seq_len == 64 and result.max_seq_len == 64
    assert profile(short, seq_len=16).bound_inputs["input_ids"] == (1, 16)
    with pytest.raises(ProfileError, match="at most 64 tokens"):
        profile(short, seq_len=65)
