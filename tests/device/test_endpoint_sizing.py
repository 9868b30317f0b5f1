"""recommend(..., endpoint=True): instance type, accelerator and instance count at a p90 target."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ei_widgets.device.capacity import capacity
from ei_widgets.device.catalog import packaged_catalog
from ei_widgets.device.endpoint_sizing import EndpointRecommendation
from ei_widgets.device.estimate import estimate
from ei_widgets.device.recommendation import TODAY
from ei_widgets.device.sizing import recommend
from ei_widgets.errors import EIError
from ei_widgets.reports import plain_text
from tests.device.test_sizing import conv_profile

CAT = packaged_catalog()
PROFILE = conv_profile()


@pytest.fixture(scope="module")
def rec() -> EndpointRecommendation:
    return recommend(
        PROFILE, latency_target_ms=60, requests_per_second=200, endpoint=True, catalog=CAT
    )


def test_every_option_meets_at_its_count_and_one_fewer_would_not(
    rec: EndpointRecommendation,
) -> None:
    assert rec.options and rec.pick is rec.options[0]
    for o in rec.options:
        assert o.p90_ms <= 60 and o.saturation_rps > 200 and o.utilisation < 1
        assert o.price_per_hour == o.row.price_per_hour * o.instance_count
        if o.instance_count > 1:
            est = _estimate(o.row)
            fewer = capacity(est, o.instance_count - 1)
            assert fewer.latency_quantile_s(200, 0.9) * 1e3 > 60


def _estimate(row):  # type: ignore[no-untyped-def]
    return estimate(
        PROFILE,
        row.accelerator or row.instance,
        batch_size=row.batch_size,
        precision=row.precision,
        instance=row.instance if row.accelerator else None,
        runtime=row.runtime,
        catalog=CAT,
    )


def test_the_latency_is_the_one_call_judgement_not_its_own(rec: EndpointRecommendation) -> None:
    one_call = {(r.option, r.precision, r.batch_size): r for r in rec.sizing.rows}
    for o in rec.options:
        assert one_call[(o.row.option, o.row.precision, o.row.batch_size)] is o.row
        est = _estimate(o.row)
        assert o.row.latency_ms == pytest.approx(est.latency_ms)
        assert o.saturation_rps == pytest.approx(o.instance_count / est.latency_s)


def test_options_are_cheapest_first_with_a_pick_per_group(rec: EndpointRecommendation) -> None:
    prices = [o.price_per_hour for o in rec.options]
    assert prices == sorted(prices)
    assert rec.pick_ei is rec.ei_options[0] and rec.pick_today is rec.today_options[0]
    assert rec.pick_ei.group != TODAY and rec.pick_today.group == TODAY
    per_million = rec.pick.price_per_hour * Decimal(1_000_000) / Decimal(3600 * 200)
    assert rec.pick.cost_per_million == pytest.approx(per_million, rel=Decimal("1e-5"))


def test_a_higher_rate_needs_more_instances_of_the_same_option() -> None:
    def count(rps: float) -> int:
        r = recommend(
            PROFILE, latency_target_ms=60, requests_per_second=rps, endpoint=True,
            instance="ml.m5.large", precisions=["fp32"], catalog=CAT,
        )  # fmt: skip
        return next(o.instance_count for o in r.options if o.row.accelerator == "ml.eia2.medium")

    low, high = count(20), count(400)
    assert high > low >= 1


def test_it_reads_as_html_and_text_with_the_modelled_label(rec: EndpointRecommendation) -> None:
    html = rec._repr_html_()
    assert rec.pick is not None and rec.pick.option in html
    assert "modelled" in html and "p90 at rate" in html
    text = plain_text.endpoint_recommendation_text(rec, limit=3)
    assert f"* {rec.pick.option}" in text and "modelled" in text
    assert repr(rec).startswith(f"<EndpointRecommendation: {rec.pick.option}")
    frame = rec.to_pandas()
    assert list(frame["instance_count"]) == [o.instance_count for o in rec.options]
    assert frame["pick"].sum() == 1


def test_an_impossible_target_says_so() -> None:
    r = recommend(
        PROFILE, latency_target_ms=0.01, requests_per_second=10, endpoint=True, catalog=CAT
    )
    assert r.pick is None and not r.options
    assert "No endpoint" in r.reason and "<EndpointRecommendation: no endpoint" in repr(r)


@pytest.mark.parametrize("rps", [None, 0, -3])
def test_endpoint_sizing_needs_a_rate(rps: float | None) -> None:
    with pytest.raises(EIError, match="requests_per_second"):
        recommend(PROFILE, requests_per_second=rps, endpoint=True, catalog=CAT)


def test_options_that_do_not_apply_are_refused() -> None:
    with pytest.raises(EIError, match="concurrency"):
        recommend(PROFILE, requests_per_second=10, endpoint=True, concurrency=4, catalog=CAT)


def test_saturation_agrees_with_the_deployed_endpoints_own(rec: EndpointRecommendation) -> None:
    from ei_widgets.endpoint.capacity import saturation_rate

    checked = 0
    for o in rec.options:
        if o.row.runtime == "tensorrt":
            continue  # deploy() runs the default runtime only
        expected = saturation_rate(
            PROFILE, o.row.instance, o.row.accelerator, o.instance_count,
            precision=o.row.precision, catalog=CAT,
        )  # fmt: skip
        assert o.saturation_rps == pytest.approx(expected, rel=1e-9)
        checked += 1
    assert checked >= 10
