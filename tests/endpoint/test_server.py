"""The endpoint's server over real HTTP: the SageMaker container contract, every refusal, the
token, the queue's 503s, the metrics it reports and the bill it leaves in a real ledger file."""

from __future__ import annotations

import http.client
import io
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import ei_widgets
from ei_widgets.device.catalog import default_catalog
from ei_widgets.endpoint.capacity import saturation_rate, service_seconds
from ei_widgets.endpoint.codec import MAX_PAYLOAD_BYTES, TOKEN_HEADER, npy_bytes
from ei_widgets.endpoint.predictor import Predictor, deploy, endpoints
from ei_widgets.errors import EndpointError, UnknownNameError
from tests import builders


def _save(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # the module's endpoint bills into its own file, never the user's
    path = tmp_path_factory.mktemp("ledger") / "endpoint.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EI_WIDGETS_LEDGER", str(path))
        yield path


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(builders.mlp(batch=1), tmp_path_factory.mktemp("models"), "mlp")


@pytest.fixture(scope="module")
def predictor(ledger_file: Path, mlp_path: Path) -> Iterator[Predictor]:
    with deploy(
        mlp_path,
        instance_type="ml.m5.large",
        accelerator_type="ml.eia2.medium",
        endpoint_name="test-mlp",
    ) as live:
        yield live


def _call(
    predictor: Predictor,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = "own",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", predictor.port, timeout=60)
    sent = dict(headers or {})
    if token == "own":
        sent[TOKEN_HEADER] = predictor.token
    elif token is not None:
        sent[TOKEN_HEADER] = token
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _error(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed) == {"ErrorCode", "Message", "StatusCode"}
    return parsed


def _x(batch: int = 1) -> np.ndarray:
    return np.random.default_rng(batch).standard_normal((batch, 784)).astype(np.float32)


def test_ping_answers_200_once_loaded(predictor: Predictor) -> None:
    status, _, _ = _call(predictor, "GET", "/ping")
    assert status == 200
    assert predictor.status == "InService"
    assert predictor.url == f"http://127.0.0.1:{predictor.port}"


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [(None, 401, "MissingAuthenticationToken"), ("not-the-token", 403, "AccessDenied")],
)
def test_every_path_refuses_a_request_without_the_token(
    predictor: Predictor, token: str | None, status: int, code: str
) -> None:
    for method, path, body in (
        ("GET", "/ping", None),
        ("POST", "/invocations", npy_bytes(_x())),
        ("GET", "/ei/status", None),
        ("GET", "/nowhere", None),
    ):
        got, _, answer = _call(
            predictor, method, path, body, {"Content-Type": "application/x-npy"}, token
        )
        assert got == status, (method, path)
        assert _error(answer)["ErrorCode"] == code


def test_npy_in_npy_out_are_onnxruntime_s_own_outputs(predictor: Predictor, mlp_path: Path) -> None:
    x = _x()
    expected = ort.InferenceSession(str(mlp_path)).run(None, {"x": x})[0]
    status, headers, body = _call(
        predictor,
        "POST",
        "/invocations",
        npy_bytes(x),
        {"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    assert status == 200 and headers["Content-Type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(body)), expected, rtol=1e-5)
    np.testing.assert_allclose(predictor.predict(x), expected, rtol=1e-5)


def test_json_in_and_accept_picks_the_answer_s_type(predictor: Predictor, mlp_path: Path) -> None:
    x = _x()
    expected = ort.InferenceSession(str(mlp_path)).run(None, {"x": x})[0]
    for accept, kind in (
        ("application/json", "application/json"),
        ("*/*", "application/json"),  # the request's own type
        ("text/csv, application/x-npy;q=0.9", "application/x-npy"),
        ("", "application/json"),
    ):
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if accept:
            headers["Accept"] = accept
        status, got, body = _call(
            predictor, "POST", "/invocations", json.dumps(x.tolist()).encode(), headers
        )
        assert status == 200, body
        assert got["Content-Type"] == kind
        value = (
            np.load(io.BytesIO(body)) if kind.endswith("npy") else json.loads(body)["outputs"]["y"]
        )
        np.testing.assert_allclose(np.asarray(value, dtype=np.float32), expected, rtol=1e-5)
    named = predictor.predict({"x": x}, content_type="application/json", accept="application/json")
    np.testing.assert_allclose(np.asarray(named["outputs"]["y"], np.float32), expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"{}", {"Content-Type": "text/csv"}, 415, "application/x-npy or application/json"),
        (b"", {}, 415, "not supported"),
        (
            npy_bytes(np.zeros((1, 3), np.float32)),
            {"Content-Type": "application/x-npy"},
            400,
            "float32[1, 784]",
        ),
        (
            npy_bytes(np.zeros((1, 784), np.complex64)),
            {"Content-Type": "application/x-npy"},
            400,
            "expects x: float32",
        ),
        (
            npy_bytes(np.zeros((784,), np.float32)),
            {"Content-Type": "application/x-npy"},
            400,
            "shape [784]",
        ),
        (b"not an array", {"Content-Type": "application/x-npy"}, 400, "not a .npy array"),
        (b"[[1, 2", {"Content-Type": "application/json"}, 400, "not JSON"),
        (b'{"z": [1]}', {"Content-Type": "application/json"}, 400, "lacks ['x']"),
        (b"[[1], [1, 2]]", {"Content-Type": "application/json"}, 400, "x"),
        (b'[["a"]]', {"Content-Type": "application/json"}, 400, "expects x: float32"),
        (
            npy_bytes(_x()),
            {"Content-Type": "application/x-npy", "Accept": "text/csv"},
            406,
            "Accept",
        ),
        (b"0" * (MAX_PAYLOAD_BYTES + 1), {"Content-Type": "application/x-npy"}, 413, "6 MB"),
    ],
)
def test_bad_requests_get_a_json_4xx_and_the_server_lives_on(
    predictor: Predictor, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    got, answer_headers, answer = _call(predictor, "POST", "/invocations", body, headers)
    assert got == status, answer
    assert answer_headers["Content-Type"] == "application/json"
    error = _error(answer)
    assert error["StatusCode"] == status and says in error["Message"], error
    assert _call(predictor, "GET", "/ping")[0] == 200


def test_predict_raises_the_server_s_message(predictor: Predictor) -> None:
    with pytest.raises(EndpointError, match=r"answered 400: .*float32\[1, 784\]") as caught:
        predictor.predict(np.zeros((1, 3), np.float32))
    assert caught.value.status == 400


def test_unknown_paths_are_json_404s(predictor: Predictor) -> None:
    status, _, body = _call(predictor, "GET", "/models")
    assert status == 404 and _error(body)["ErrorCode"] == "NotFound"


def test_metrics_carry_cloudwatch_names_and_count_what_happened(predictor: Predictor) -> None:
    before = predictor.live(seconds=3600).totals
    for _ in range(5):
        predictor.predict(_x())
    _call(predictor, "POST", "/invocations", b"x", {"Content-Type": "text/csv"})
    after = predictor.live(seconds=3600).totals
    assert after["Invocations"] - before["Invocations"] == 6
    assert after["Invocation4XXErrors"] - before["Invocation4XXErrors"] == 1
    table = predictor.metrics(60)
    row = table[-1]
    for name in (
        "Invocations",
        "InvocationsPerInstance",
        "ModelLatency_p50",
        "ModelLatency_p90",
        "ModelLatency_p99",
        "OverheadLatency_p50",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "CPUUtilization",
        "MemoryUtilization",
        "GPUUtilization",
        "AcceleratorMemoryUsage",
    ):
        assert name in row, name
    # ModelLatency (microseconds) of an idle endpoint is the modelled call
    modelled_us = predictor.modelled_latency_s * 1e6
    per_second = predictor.metrics(1)
    p50s = [
        r["ModelLatency_p50"]
        for r in per_second
        if r["Invocations"] and r["ModelLatency_p50"] == r["ModelLatency_p50"]
    ]
    # (plus the microseconds between arrival and the free instance)
    assert p50s and modelled_us <= min(p50s) < modelled_us * 1.05
    assert 0 < row["MemoryUtilization"] < 100
    frame = table.to_pandas()
    assert "ModelLatency_p99" in frame.columns and len(frame) == len(table)
    assert "ModelLatency" in table._repr_html_()


def test_live_snapshot_has_series_queue_instances_and_cost(predictor: Predictor) -> None:
    predictor.predict(_x())
    snap = predictor.live(seconds=30)
    assert snap.status == "InService" and snap.instances == 1 and snap.queue_depth == 0
    assert 0 < len(snap.series) <= 30
    assert {"t", "Invocations", "ModelLatency_p90", "QueueDepth"} <= set(snap.series[-1])
    cat = default_catalog()
    rate = (
        cat.instance("ml.m5.large").price_per_hour
        + cat.accelerator("ml.eia2.medium").price_per_hour
    )
    assert snap.rate_per_hour == rate
    assert Decimal(0) < snap.cost_so_far < rate  # less than an hour
    assert snap.saturation_rps == pytest.approx(1 / predictor.modelled_latency_s)


def test_the_queue_throttles_with_503_past_its_bound(ledger_file: Path, mlp_path: Path) -> None:
    with deploy(
        mlp_path, instance_type="ml.m5.large", accelerator_type="ml.eia2.medium", queue_size=2
    ) as small:
        small.predict(_x())  # the warm-up call
        result = small.load_test(
            rps=small.saturation_rps * 4, duration=2, concurrency=32, progress=False
        )
        assert result.throttled > 0
        assert result.errors_5xx == result.throttled  # every 5XX here is a throttle
        assert result.ok > 0
        totals = small.live(seconds=3600).totals
        assert totals["Throttles"] == result.throttled
        assert totals["Invocation5XXErrors"] == result.throttled


def test_several_instances_serve_in_parallel_and_saturate_later(
    mlp_path: Path, ledger_file: Path
) -> None:
    one = saturation_rate(ei_widgets.profile(mlp_path), "ml.m5.large", "ml.eia2.medium", 1)
    three = saturation_rate(ei_widgets.profile(mlp_path), "ml.m5.large", "ml.eia2.medium", 3)
    assert three == pytest.approx(3 * one)
    assert one == pytest.approx(
        1 / service_seconds(ei_widgets.profile(mlp_path), "ml.m5.large", "ml.eia2.medium")
    )


def test_model_load_shows_in_the_timeline(mlp_path: Path, ledger_file: Path) -> None:
    p = deploy(mlp_path, instance_type="ml.m5.large", accelerator_type="ml.eia2.large", wait=False)
    try:
        assert p.status == "Creating"
        assert _call(p, "GET", "/ping")[0] == 503
        p.wait(timeout=120)
        assert p.status == "InService" and p.model_load_seconds > 0
        state = p._status_json()
        assert state["ready_at"] >= p.model_load_seconds
        p.predict(_x())
        first = min(
            s["t"] for s in state["seconds"] + p._status_json()["seconds"] if s["Invocations"]
        )
        assert first >= int(p.model_load_seconds)
    finally:
        p.delete_endpoint()


def test_delete_stops_the_server_and_the_bill_in_a_real_ledger(mlp_path: Path) -> None:
    ledger_file = Path(os.environ["EI_WIDGETS_LEDGER"])  # this test's own (tests/conftest.py)
    p = deploy(
        mlp_path,
        instance_type="ml.m5.large",
        accelerator_type="ml.eia2.medium",
        initial_instance_count=2,
        endpoint_name="billed",
    )
    assert p in endpoints()
    pid = p._process.pid
    time.sleep(1.0)
    p.delete_endpoint()
    p.delete_endpoint()  # idempotent
    assert p.status == "Deleted" and p not in endpoints()
    assert p._process.poll() is not None
    with pytest.raises(EndpointError, match="Deleted"):
        p.predict(_x())
    conn = sqlite3.connect(ledger_file)
    sid, ended, reason = conn.execute(
        "SELECT id, ended_at, end_reason FROM sessions WHERE endpoint = 'billed'"
    ).fetchone()
    assert ended is not None and reason == "delete"
    rows = conn.execute(
        "SELECT kind, name, rate_micro, duration_us, closed FROM intervals WHERE session_id = ?",
        (sid,),
    ).fetchall()
    cat = default_catalog()
    assert sorted(r[:3] for r in rows) == [
        (
            "accelerator",
            "ml.eia2.medium",
            int(cat.accelerator("ml.eia2.medium").price_per_hour * 2_000_000),
        ),
        ("instance", "ml.m5.large", int(cat.instance("ml.m5.large").price_per_hour * 2_000_000)),
    ]
    assert all(r[4] == 1 and r[3] >= 1_000_000 for r in rows)
    usage = {row.key: row for row in ei_widgets.usage(by="endpoint", path=ledger_file)}
    assert usage["billed"].total == p.bill.cost_so_far()
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"instance_type": "ml.m5.huge"}, UnknownNameError, "ml.m5.large"),
        ({"accelerator_type": "ml.eia9.medium"}, UnknownNameError, "ml.eia2.medium"),
        ({"initial_instance_count": 0}, EndpointError, "positive integer"),
        ({"endpoint_name": "has space"}, EndpointError, "SageMaker's rule"),
        ({"queue_size": -1}, EndpointError, "queue_size"),
        ({"clock": "fast"}, EndpointError, "paced"),
    ],
)
def test_bad_deploy_arguments_are_typed_errors(
    mlp_path: Path, kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        deploy(mlp_path, **kwargs)
    assert all(p.endpoint_name != "has space" for p in endpoints())


def test_a_name_in_use_is_refused(predictor: Predictor, mlp_path: Path) -> None:
    with pytest.raises(EndpointError, match="is live"):
        deploy(mlp_path, endpoint_name="test-mlp")


def test_a_request_that_fails_in_the_model_is_a_500_and_the_server_lives_on(
    ledger_file: Path, tmp_path: Path
) -> None:
    # Reshape to a fixed size: a batch of 2 passes the input checks but fails inside the model
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array([1, 4], np.int64), "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with deploy(_save(model, tmp_path, "fixed"), accelerator_type="ml.eia2.medium") as p:
        np.testing.assert_array_equal(p.predict(np.ones((1, 4), np.float32)), np.ones((1, 4)))
        with pytest.raises(EndpointError, match="answered 500") as caught:
            p.predict(np.ones((2, 4), np.float32))
        assert caught.value.status == 500
        assert _call(p, "GET", "/ping")[0] == 200
        assert p.live(seconds=3600).totals["Invocation5XXErrors"] == 1


def test_concurrent_clients_all_get_their_own_answers(predictor: Predictor, mlp_path: Path) -> None:
    session = ort.InferenceSession(str(mlp_path))
    results: dict[int, bool] = {}

    def client(k: int) -> None:
        x = _x(1) + k
        conn = http.client.HTTPConnection("127.0.0.1", predictor.port, timeout=60)
        conn.request(
            "POST",
            "/invocations",
            npy_bytes(x),
            {TOKEN_HEADER: predictor.token, "Content-Type": "application/x-npy"},
        )
        got = np.load(io.BytesIO(conn.getresponse().read()))
        results[k] = bool(np.allclose(got, session.run(None, {"x": x})[0], rtol=1e-5))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == dict.fromkeys(range(8), True)
