"""recommend(): every option, sorted, with a pick and a one-sentence reason."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import packaged_catalog
from ei_widgets.device.estimate import estimate
from ei_widgets.device.recommendation import Recommendation
from ei_widgets.device.sizing import recommend
from ei_widgets.errors import EIError, ProfileError, UnknownNameError
from ei_widgets.models.demo import demo_model
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import NodeCost, ParamGroup, Profile, TensorInfo
from ei_widgets.reports import plain_text

CAT = packaged_catalog()


def conv_profile(param_bytes: int = 40_000_000, conv_flops: int = 300_000_000) -> Profile:
    nodes = tuple(
        NodeCost(f"c{i}", "Conv", "", conv_flops, conv_flops // 2, 800_000 + param_bytes // 20,
                 800_000, param_bytes // 20, ((1, 64, 56, 56),), True)
        for i in range(20)
    )  # fmt: skip
    return Profile(
        name="convnet", inputs=(TensorInfo("x", "float32", ("N", 3, 224, 224)),),
        outputs=(TensorInfo("y", "float32", ("N", 1000)),), opsets={"": 17}, producer="t",
        node_count=20, op_histogram={"Conv": 20},
        params=(ParamGroup("float32", param_bytes // 4, param_bytes),), nodes=nodes,
        peak_activation_bytes=3_200_000, model_size_bytes=param_bytes, unknown_ops=(),
        batch_size=1, bound_inputs={"x": (1, 3, 224, 224)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def rec() -> Recommendation:
    return recommend(
        conv_profile(),
        latency_target_ms=50,
        requests_per_second=100,
        instance="all",
        catalog=CAT,
    )


def test_every_option_is_evaluated(rec: Recommendation) -> None:
    kinds = {(r.kind, r.accelerator, r.instance) for r in rec.rows}
    for acc in CAT.accelerators:
        for host in CAT.notebook_instances():
            assert ("accelerator", acc, host.name) in kinds
    for gpu in CAT.gpu_instances():
        assert ("gpu", None, gpu.name) in kinds
    for host in (*CAT.notebook_instances(), *CAT.cpu_instances()):
        assert ("cpu", None, host.name) in kinds
    n_ei = len(CAT.accelerators) * len(CAT.notebook_instances()) * 6 * 2
    # framework and tuned runtimes; Inferentia2 has no tuned runtime
    n_gpu = sum(6 * 2 * (2 if g.tuned_runtime else 1) for g in CAT.gpu_instances())
    n_cpu = (len(CAT.notebook_instances()) + len(CAT.cpu_instances())) * 6
    assert len(rec) == n_ei + n_gpu + n_cpu
    assert {r.precision for r in rec if r.kind == "cpu"} == {"fp32"}
    assert all(r.basis.startswith("modelled") for r in rec)
    assert {r.runtime for r in rec if r.kind == "gpu"} == {"mxnet", "tensorrt"}
    assert {r.runtime for r in rec if r.kind != "gpu"} == {"mxnet"}


def test_rows_agree_with_estimate_and_prices(rec: Recommendation) -> None:
    row = next(r for r in rec if r.accelerator == "ml.eia2.medium" and r.instance == "ml.t3.medium"
               and r.batch_size == 4 and r.precision == "fp16")  # fmt: skip
    est = estimate(conv_profile(), "ml.eia2.medium", batch_size=4, precision="fp16", catalog=CAT)
    assert row.latency_ms == pytest.approx(est.latency_ms)
    assert row.throughput_per_s == pytest.approx(4 / est.busy_s)
    assert row.price_per_hour == Decimal("0.05") + Decimal("0.168")
    assert isinstance(row.cost_per_million, Decimal)
    served = min(row.throughput_per_s, 100)
    assert float(row.cost_per_million) == pytest.approx(0.218 / (served * 3600) * 1e6, rel=1e-4)
    assert row.meets == (row.fits and row.latency_ms <= 50 and row.throughput_per_s >= 100)
    gpu = next(r for r in rec if r.instance == "ml.g4dn.xlarge")
    assert gpu.price_per_hour == Decimal("0.736")


def test_sorted_meeting_first_then_cheapest(rec: Recommendation) -> None:
    meets = [r.meets for r in rec]
    assert meets == sorted(meets, reverse=True)
    prices = [r.price_per_hour for r in rec if r.meets]
    assert prices == sorted(prices)


def test_pick_and_reason(rec: Recommendation) -> None:
    pick = rec.pick
    assert pick is not None and pick.meets
    assert pick is rec.rows[0]
    assert all(pick.price_per_hour <= r.price_per_hour for r in rec if r.meets)
    assert pick.kind == "accelerator"
    assert rec.reason.startswith(f"{pick.accelerator} meets 50 ms at 100 req/s for $")
    assert "less than ml.g4dn.xlarge" in rec.reason
    saving = round((1 - pick.price_per_hour / Decimal("0.736")) * 100)
    assert f"{saving}% less" in rec.reason
    assert rec.reason.count(".") >= 1 and "\n" not in rec.reason


def test_to_rows(rec: Recommendation) -> None:
    rows = rec.to_rows()
    assert len(rows) == len(rec)
    assert {"option", "latency_ms", "throughput_per_s", "fits", "price_per_hour",
            "cost_per_million", "meets"} <= set(rows[0])  # fmt: skip
    assert isinstance(rows[0]["price_per_hour"], Decimal)
    assert "meets" in plain_text.recommendation_text(rec)


def test_nothing_meets_an_impossible_target() -> None:
    rec = recommend(conv_profile(), latency_target_ms=0.001, catalog=CAT)
    assert rec.pick is None
    assert rec.reason.startswith("No option meets 0.001 ms at 10 req/s; the fastest that fits is")


def test_model_too_big_for_small_accelerators() -> None:
    rec = recommend(conv_profile(param_bytes=5 * 2**30), latency_target_ms=10_000, catalog=CAT)
    small = [r for r in rec if r.accelerator == "ml.eia2.medium"]
    assert small and not any(r.fits or r.meets for r in small)
    assert all(r.cost_per_million is None for r in small)
    assert rec.pick is not None and rec.pick.fits


def test_without_target_the_pick_is_cheapest_per_inference() -> None:
    rec = recommend(
        conv_profile(),
        latency_target_ms=None,
        requests_per_second=None,
        batch_sizes=[1, 8],
        precisions=["fp16"],
        catalog=CAT,
    )
    assert rec.pick is not None
    best = min(r.cost_per_million for r in rec if r.cost_per_million is not None)
    assert rec.pick.cost_per_million == best
    assert "costs least per inference" in rec.reason


def test_a_whole_gpu_wins_when_only_it_is_fast_enough() -> None:
    prof = conv_profile(conv_flops=3_000_000_000)
    fastest_ei = min(
        estimate(prof, a, precision="fp16", catalog=CAT).latency_ms for a in CAT.accelerators
    )
    gpu = estimate(prof, "ml.g4dn.xlarge", precision="fp16", catalog=CAT).latency_ms
    assert gpu < fastest_ei
    rec = recommend(prof, latency_target_ms=(gpu + fastest_ei) / 2, batch_sizes=[1], catalog=CAT)
    assert rec.pick is not None and rec.pick.kind == "gpu"
    assert "no EI accelerator or CPU-only option meets it" in rec.reason


def test_instance_restricts_the_notebook_instances() -> None:
    rec = recommend(conv_profile(), latency_target_ms=50, instance="ml.m5.large", catalog=CAT)
    assert {r.instance for r in rec if r.kind == "accelerator"} == {"ml.m5.large"}
    with pytest.raises(UnknownNameError, match=r"Did you mean 'ml\.m5\.large'"):
        recommend(conv_profile(), instance="ml.m5.lrge", catalog=CAT)


def test_concurrency_option() -> None:
    one = recommend(conv_profile(), batch_sizes=[1], concurrency=1, catalog=CAT)
    row = next(r for r in one if r.accelerator == "ml.eia2.large" and r.precision == "fp32")
    assert row.throughput_per_s == pytest.approx(1000 / row.latency_ms)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_sizes": [0]}, ProfileError, "Batch size"),
        ({"batch_sizes": [4, -1]}, ProfileError, "Batch size"),
        ({"batch_sizes": []}, EIError, "at least one batch"),
        ({"precisions": ["fp8"]}, UnknownNameError, "precision"),
        ({"precisions": []}, EIError, "precisions"),
        ({"latency_target_ms": 0}, EIError, "latency_target_ms"),
        ({"latency_target_ms": "fast"}, EIError, "latency_target_ms"),
        ({"requests_per_second": -5}, EIError, "requests_per_second"),
        ({"requests_per_second": float("inf")}, EIError, "requests_per_second"),
        ({"concurrency": 0}, ProfileError, "Concurrency"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        recommend(conv_profile(), catalog=CAT, **kwargs)  # type: ignore[arg-type]


def test_accepts_a_model_and_profiles_it() -> None:
    rec = recommend(demo_model("squeezenet"), latency_target_ms=20, batch_sizes=[1], catalog=CAT)
    direct = recommend(profile(demo_model("squeezenet")), latency_target_ms=20, batch_sizes=[1],
                       catalog=CAT)  # fmt: skip
    assert rec.reason == direct.reason


def test_the_models_validated_error_is_stated_and_close_calls_are_flagged() -> None:
    model = model_accuracy(conv_profile(), catalog=CAT)
    assert model.group == "classifier" and model.band is not None
    band = model.band
    assert 0 < band < 0.5
    rec = recommend(conv_profile(), latency_target_ms=10_000, catalog=CAT)
    assert rec.accuracy == model.explained and model.reason in rec.accuracy
    assert f"±{band:.0%} for dense CNN classifiers" in rec.accuracy
    assert not rec.too_close and "Too close" not in rec.reason  # far from the target
    # A target just above the pick's estimate: within the error, so too close to call.
    pick = rec.pick
    assert pick is not None
    tight = recommend(
        conv_profile(), latency_target_ms=pick.latency_ms * (1 + band / 2), catalog=CAT,
        batch_sizes=[pick.batch_size], precisions=[pick.precision],
    )  # fmt: skip
    assert tight.too_close
    assert "Too close to call" in tight.reason and f"±{band:.0%}" in tight.reason
    # Without a validation summary nothing is claimed.
    bare = dataclasses.replace(CAT, validation=None)
    unvalidated = recommend(conv_profile(), latency_target_ms=50, catalog=bare)
    assert unvalidated.accuracy.startswith("modelled; not validated")
    assert not unvalidated.too_close


def test_one_question_one_answer_everywhere() -> None:
    # recommend() with no arguments asks what the Sizing tab, %ei_recommend and the CLI ask:
    # a 50 ms target at 10 req/s, batch 1 to 32, fp32 and fp16, EI on the kernel's instance
    rec = recommend(conv_profile(), catalog=CAT)
    assert (rec.latency_target_ms, rec.requests_per_second) == (50.0, 10.0)
    assert {r.batch_size for r in rec.rows} == {1, 2, 4, 8, 16, 32}
    assert {r.instance for r in rec.rows if r.kind == "accelerator"} == {"ml.t3.medium"}
    assert "50 ms at 10 req/s" in rec.reason
    every = recommend(conv_profile(), instance="all", catalog=CAT)
    hosts = {r.instance for r in every.rows if r.kind == "accelerator"}
    assert hosts == {i.name for i in CAT.notebook_instances()}
