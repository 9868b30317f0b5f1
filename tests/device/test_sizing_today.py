"""What to buy today: the instances that replace EI, sourced in the catalog and grouped in
recommend() beside the retired EI rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ei_widgets.device.catalog import packaged_catalog, parse_catalog
from ei_widgets.device.estimate import cpu_flops, estimate
from ei_widgets.device.recommendation import TODAY, Recommendation
from ei_widgets.device.sizing import recommend
from ei_widgets.errors import CatalogError
from tests.device.test_sizing import conv_profile

CAT = packaged_catalog()
NEW = ("ml.g6.xlarge", "ml.inf2.xlarge", "ml.c7i.xlarge", "ml.c7g.xlarge")


@pytest.fixture(scope="module")
def rec() -> Recommendation:
    return recommend(conv_profile(), latency_target_ms=50, requests_per_second=100, catalog=CAT)


def test_todays_instances_are_in_the_catalog_sourced_and_dated() -> None:
    for name in (*NEW, "ml.g5.xlarge"):
        inst = CAT.instance(name)
        assert inst.source and inst.as_of and inst.price_per_hour > 0
    # a price that is not read off the pricing page says how it was derived
    for name in ("ml.c7i.xlarge", "ml.c7g.xlarge"):
        assert "price_per_hour" in CAT.instance(name).derived
        assert "derived" in CAT.instance(name).source
    for name in ("ml.g6.xlarge", "ml.inf2.xlarge"):
        assert "assumption" in CAT.instance(name).source
    assert CAT.instance("ml.g6.xlarge").gpu == "L4"
    assert CAT.instance("ml.inf2.xlarge").gpu_f16_tflops == 190.0
    assert CAT.instance("ml.c7g.xlarge").role == CAT.instance("ml.c7i.xlarge").role == "cpu"


def test_new_devices_have_efficiencies_said_to_be_assumptions() -> None:
    for name in ("tensor_efficiency", "tuned_efficiency"):
        const = CAT.constants[name]
        assert {"L4", "Inferentia2"} <= set(const.value)
        assert "assumption, the same as T4" in const.description
    # the fitted entries are untouched by the additions
    for name in ("tensor_efficiency", "tuned_efficiency"):
        table = CAT.value(name)
        assert table["L4"] == table["Inferentia2"] == table["T4"]


def test_cpu_peaks_of_the_new_families() -> None:
    peaks = CAT.value("cpu_peak_gflops_per_vcpu")
    eff = CAT.value("cpu_efficiency")
    # Graviton3: 32 FP32 FLOPs per cycle per core at 2.6 GHz, and a vCPU is a whole core
    assert peaks["c7g"] == pytest.approx(32 * 2.6)
    assert cpu_flops(CAT.instance("ml.c7g.xlarge"), CAT) == pytest.approx(4 * 83.2e9 * eff)
    assert peaks["c7i"] == pytest.approx(32 * 3.2)  # AVX-512, two vCPUs per core
    for name in NEW:  # every new instance's CPUs can be modelled (host work on GPU rows too)
        assert cpu_flops(CAT.instance(name), CAT) > 0


def test_every_ei_accelerator_is_retired() -> None:
    for acc in CAT.accelerators.values():
        assert acc.available_until == "2023-04-15" and acc.retired
    bad = {"gpus": {"T4": {"f32_tflops": 1, "f16_tflops": 1, "memory_gib": 1,
                           "memory_bandwidth_gbps": 1}},
           "accelerators": [{"name": "a", "family": "f", "f32_tflops": 1, "f16_tflops": 1,
                             "memory_gib": 1, "gpu": "T4", "gpu_fraction": 1,
                             "memory_bandwidth_gbps": 1, "ec2_price_per_hour": "1",
                             "price_per_hour": "1", "source": "s", "as_of": "2020-01-01",
                             "available_until": "last spring"}]}  # fmt: skip
    with pytest.raises(CatalogError, match="available_until"):
        parse_catalog(bad)


def test_rows_are_grouped_ei_retired_and_available_today(rec: Recommendation) -> None:
    assert {r.group for r in rec if r.kind == "accelerator"} == {"EI (retired 2023)"}
    assert {r.group for r in rec if r.kind != "accelerator"} == {TODAY}
    assert len(rec.ei_rows) + len(rec.today_rows) == len(rec)
    assert {r.instance for r in rec.today_rows} >= set(NEW)


def test_each_group_has_its_pick_and_the_reason_names_both(rec: Recommendation) -> None:
    ei, today = rec.pick_ei, rec.pick_today
    assert ei is not None and ei.kind == "accelerator" and ei.meets
    assert ei is next(r for r in rec.ei_rows if r.meets)
    assert today is not None and today.group == TODAY and today.meets
    assert all(today.price_per_hour <= r.price_per_hour for r in rec.today_rows if r.meets)
    assert f"With EI (retired 2023): {ei.label} at $" in rec.reason
    assert f"; today: {today.label} at $" in rec.reason
    assert rec.pick is ei  # EI is still the cheapest here, as the simulator's answer


def test_a_group_where_nothing_meets_says_so() -> None:
    rec = recommend(conv_profile(), latency_target_ms=0.001, catalog=CAT)
    assert rec.pick_ei is None and rec.pick_today is None
    assert "With EI (retired 2023): no accelerator meets it; today: nothing available" in rec.reason


def test_inferentia2_is_a_roofline_without_a_tuned_runtime(rec: Recommendation) -> None:
    inf2 = [r for r in rec if r.instance == "ml.inf2.xlarge"]
    assert inf2 and {r.runtime for r in inf2} == {"mxnet"}
    assert all("roofline" in r.basis and "no Neuron compiler" in r.basis for r in inf2)
    l4 = {r.runtime for r in rec if r.instance == "ml.g6.xlarge"}
    assert l4 == {"mxnet", "tensorrt"}
    # the roofline is on the published peaks: fp16 uses the 190 TFLOPS figure
    est = estimate(conv_profile(), "ml.inf2.xlarge", precision="fp16", catalog=CAT)
    assert est.peak_flops == 190e12
    assert CAT.instance("ml.inf2.xlarge").price_per_hour == Decimal("0.99")


def test_rich_html_shows_both_groups_before_the_fold(rec: Recommendation) -> None:

    html = rec._repr_html_()
    fold = html.index("<details")
    ei, today = html.index("<b>EI (retired 2023)</b>"), html.index("<b>Available today</b>")
    assert ei < today < fold
    assert rec.pick_today is not None and rec.pick_today.option in html[today:fold]
    assert "fp16 agreement" not in html


def test_rich_html_adds_the_fp16_agreement_column() -> None:
    from ei_widgets.device.fp16 import FP16Check

    check = FP16Check(model="convnet", measured=False, reason="integer-only model", inputs="",
                      from_user=False, samples=0)  # fmt: skip
    rec = recommend(conv_profile(), latency_target_ms=50, catalog=CAT, fp16=check)
    html = rec._repr_html_()
    assert "fp16 agreement" in html and "not measured" in html


def test_the_sizing_scatter_marks_todays_pick_and_the_groups() -> None:
    from ei_widgets.notebook.views.sizing import SizingPanel

    panel = SizingPanel(lambda **kw: recommend(conv_profile(), catalog=CAT, **kw))
    panel.target.value, panel.rate.value = 50, 100
    result = panel.update()
    assert result is not None and result.pick_today is not None
    assert result.pick is not result.pick_today  # EI is cheapest here; today's pick is apart
    assert list(panel.pick_today.x) == [float(result.pick_today.price_per_hour)]
    assert list(panel.pick_today.y) == [pytest.approx(result.pick_today.latency_ms)]
    labels = {mark.labels[0] for mark in panel.points.values()}
    assert labels == {"EI accelerator (retired 2023)", "GPU or Inferentia2 (today)",
                      "CPU only (today)"}  # fmt: skip
    assert "fp16 vs fp32" not in panel.searched.value


def test_a_tuned_pick_says_it_needs_tensorrt() -> None:
    rec = recommend(conv_profile(), latency_target_ms=10, batch_sizes=[1], catalog=CAT)
    assert rec.pick_today is not None and rec.pick_today.runtime == "tensorrt"
    assert "; today: ml.g4dn.xlarge at $0.74/h (batch 1, fp16, TensorRT)." in rec.reason
    rec = recommend(conv_profile(), latency_target_ms=50, batch_sizes=[1], catalog=CAT)
    assert "; today: ml.c7g.xlarge (CPU only) at $0.17/h (batch 1, fp32)." in rec.reason
