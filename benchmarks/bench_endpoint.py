"""The hosted endpoint, side by side with a bare server of the same stack (tornado) in one run.

    python benchmarks/bench_endpoint.py            # full (about 3 minutes)
    python benchmarks/bench_endpoint.py --quick    # smoke (seconds)

Rows:

- server overhead: the endpoint's own OverheadLatency p50 (HTTP, decoding, checking, encoding)
  for a 1x3x224x224 float32 .npy payload, and the client's round trip beside a bare tornado
  server that checks the same token and echoes the same bytes;
- a tiny model on the virtual clock: requests per second (closed loop, same client, same
  connections) as a fraction of the bare server's;
- the load generator (``ei_widgets.endpoint.load_test``) holding 500 requests/s for 30 s
  against the bare server;
- the modelled saturation rate (``ei_widgets.endpoint.capacity.saturation_rate``) against the
  rate a paced endpoint serves under 1.3x that load, for two models and two sizes. The models are
  chains of small nodes whose modelled latency (kernel launches) is 15-40 ms while this host
  computes them in about a millisecond, so the measurement is the simulated endpoint's, not this
  host's CPU.

The endpoints bill into a temporary ledger, never the user's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rows import Rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ei_widgets.endpoint.codec import TOKEN_HEADER, npy_bytes  # noqa: E402
from ei_widgets.endpoint.load_test import Schedule, run_load_test  # noqa: E402
from ei_widgets.endpoint.predictor import deploy  # noqa: E402

ECHO = """
import sys, tornado.web, tornado.httpserver, tornado.netutil, tornado.ioloop, asyncio
TOKEN = sys.stdin.readline().strip()
class Echo(tornado.web.RequestHandler):
    def prepare(self):
        if self.request.headers.get("X-EI-Endpoint-Token") != TOKEN:
            self.send_error(403)
    def post(self, *args):
        self.set_header("Content-Type", "application/x-npy")
        self.write(self.request.body)
async def main():
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/(.*)", Echo)]), max_body_size=32 * 2**20)
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
TOKEN = "bench-token"


def _pool_model(folder: Path) -> Path:
    """GlobalAveragePool of a 1x3x224x224 image: the payload matters, the compute does not."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["y"])],
        "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 1])],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder)


def _tiny_model(folder: Path) -> Path:
    """x[1, 16] @ w[16, 8]: the smallest model worth running."""
    w = numpy_helper.from_array(np.ones((16, 8), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [w],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder)


def _chain_model(folder: Path, nodes: int, width: int = 64) -> Path:
    """MatMul, Add, Relu repeated ``nodes`` times on a [1, width] vector."""
    rng = np.random.default_rng(nodes)
    inits = [
        numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32) * 0.1, "w"),
        numpy_helper.from_array(np.zeros(width, np.float32), "b"),
    ]
    made, x = [], "x"
    for i in range(nodes):
        op = ("MatMul", "Add", "Relu")[i % 3]
        inputs = {"MatMul": [x, "w"], "Add": [x, "b"], "Relu": [x]}[op]
        made.append(helper.make_node(op, inputs, [f"t{i}"]))
        x = f"t{i}"
    graph = helper.make_graph(
        made,
        f"chain{nodes}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, width])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return _save(model, folder, f"chain{nodes}")


def _save(model: onnx.ModelProto, folder: Path, name: str | None = None) -> Path:
    path = folder / f"{name or model.graph.name}.onnx"
    onnx.save(model, path)
    return path


def _start_echo() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(TOKEN + "\n")
    proc.stdin.close()
    return proc, int(proc.stdout.readline())


def _round_trips(port: int, token: str, body: bytes, count: int) -> list[float]:
    """Sequential POSTs on one keep-alive connection: each round trip in seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {TOKEN_HEADER: token, "Content-Type": "application/x-npy"}
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append(time.perf_counter() - t0)
    conn.close()
    return times


async def _closed_loop(port: int, token: str, body: bytes, clients: int, seconds: float) -> int:
    """Requests answered in ``seconds`` by ``clients`` connections each sending the next request
    as soon as the last one is answered."""
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n{TOKEN_HEADER}: {token}\r\n"
        f"Content-Type: application/x-npy\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    end = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < end:
            writer.write(request)
            assert (await reader.readline()).split()[1] == b"200"
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def _overhead(rows: Rows, folder: Path, echo_port: int, count: int) -> None:
    image = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    body = npy_bytes(image)
    with deploy(_pool_model(folder), accelerator_type="ml.eia2.medium", clock="virtual") as p:
        _round_trips(p.port, p.token, body, 3)  # warm-up (and the model's warm-up call)
        _round_trips(echo_port, TOKEN, body, 3)
        since = int(p.live().uptime_seconds) + 1
        while p.live().uptime_seconds < since:
            time.sleep(0.05)
        endpoint = _round_trips(p.port, p.token, body, count)
        echo = _round_trips(echo_port, TOKEN, body, count)
        table = p.metrics(3600, seconds=int(p.live().uptime_seconds) - since + 1)
        overhead_ms = sum(r["OverheadLatency_p50"] * r["Invocations"] for r in table) / sum(
            r["Invocations"] for r in table
        )
        overhead_ms /= 1e3
        model_ms = table[-1]["ModelLatency_p50"] / 1e3
    rtt_e, rtt_b = statistics.median(endpoint) * 1e3, statistics.median(echo) * 1e3
    rows(
        "endpoint OverheadLatency p50, 602 KB npy",
        overhead_ms,
        "ms",
        "<= 1 ms",
        overhead_ms <= 1.0,
        f"client round trip p50 {rtt_e:.2f} ms vs bare tornado echo {rtt_b:.2f} ms"
        f" (virtual clock: ModelLatency {model_ms:.2f} ms modelled, not slept); {count} calls",
    )


def _throughput(rows: Rows, folder: Path, echo_port: int, seconds: float) -> None:
    body = npy_bytes(np.ones((1, 16), np.float32))
    with deploy(
        _tiny_model(folder),
        accelerator_type="ml.eia2.medium",
        initial_instance_count=2,
        clock="virtual",
        queue_size=1000,
    ) as p:
        asyncio.run(_closed_loop(p.port, p.token, body, 8, 0.5))
        served = asyncio.run(_closed_loop(p.port, p.token, body, 8, seconds)) / seconds
        bare = asyncio.run(_closed_loop(echo_port, TOKEN, body, 8, seconds)) / seconds
    ratio = served / bare
    rows(
        "tiny model, virtual clock / bare echo",
        ratio * 100,
        "%",
        ">= 50 %",
        ratio >= 0.5,
        f"{served:.0f} vs {bare:.0f} requests/s, 8 keep-alive clients, {seconds:g} s each",
    )


def _generator(rows: Rows, echo_port: int, rps: float, seconds: float) -> None:
    body = npy_bytes(np.ones((1, 16), np.float32))
    result = run_load_test(
        "127.0.0.1",
        echo_port,
        {TOKEN_HEADER: TOKEN, "Content-Type": "application/x-npy"},
        body,
        Schedule.of("constant", rps, seconds),
        concurrency=64,
        progress=False,
    )
    full = [s for s in result.seconds if s.t < seconds]
    worst = min(s.completed for s in full)
    error = abs(result.achieved_rps - rps) / rps
    rows(
        f"load generator at {rps:g}/s for {seconds:g} s",
        result.achieved_rps,
        "req/s",
        f"{rps:g} +-5%",
        error <= 0.05 and result.ok == result.sent,
        f"answered {result.ok} of {result.sent}; slowest second {worst}/s; arrivals issued"
        f" p99 {result.issue_lag_p99_ms:.1f} ms after their time; {result.late} waited for one of"
        f" 64 connections; latency p99 {result.p99_ms:.1f} ms",
    )


def _saturation(rows: Rows, model: Path, accelerator: str, count: int, seconds: float) -> None:
    with deploy(
        model, accelerator_type=accelerator, initial_instance_count=count, queue_size=100_000
    ) as p:
        # every instance's warm-up call (concurrent, so that each instance gets one) before
        # the measurement
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda _: p.predict(np.zeros((1, 64), np.float32)), range(count)))
        time.sleep(1.5)
        predicted = p.saturation_rps
        result = p.load_test(rps=predicted * 1.3, duration=seconds, concurrency=512, progress=False)
        host_bound = p._status_json(since=1 << 62)["host_bound"]
    steady = [s.ok for s in result.seconds[2 : int(seconds)]]  # the queue has filled by then
    measured = sum(steady) / len(steady)
    error = abs(predicted - measured) / measured
    rows(
        f"saturation {model.stem} {count}x{accelerator.removeprefix('ml.')}",
        error * 100,
        "%",
        "<= 10 %",
        error <= 0.10,
        f"modelled {predicted:.1f}/s vs served {measured:.1f}/s under {predicted * 1.3:.0f}/s"
        f" offered ({p.modelled_latency_s * 1e3:.1f} ms modelled per call; host-bound calls"
        f" {host_bound})",
    )


PUBLISHED = ROOT.parent / "shared" / "calibration" / "ei_published_2.csv"


def densenet(calls: int, warmup: int) -> None:
    """DenseNet-121 on ml.c5.large + ml.eia2.medium, as in rows G8-G13: ``warmup`` calls, then
    ``calls`` sequential calls; the endpoint's ModelLatency mean/p50/p90 beside the published."""
    import csv

    from ei_widgets.models.demo import demo_model

    image = np.zeros((1, 3, 224, 224), np.float32)
    with deploy(
        demo_model("densenet121"), instance_type="ml.c5.large", accelerator_type="ml.eia2.medium"
    ) as p:
        for _ in range(warmup):
            p.predict(image)
        start = int(p.live().uptime_seconds) + 1
        while p.live().uptime_seconds < start:
            time.sleep(0.05)
        for k in range(calls):
            p.predict(image)
            if (k + 1) % 20 == 0:
                print(f"  {k + 1}/{calls} calls", flush=True)
        seconds = int(p.live().uptime_seconds) - start + 1
        (row,) = p.metrics(100_000, seconds=seconds).rows
        accuracy = p.accuracy
    ours = {
        "mean": row["ModelLatency_Average"] / 1e3,
        "p50": row["ModelLatency_p50"] / 1e3,
        "p90": row["ModelLatency_p90"] / 1e3,
    }
    print(f"simulated: {row['Invocations']:.0f} calls, ModelLatency ({accuracy})")
    print("| row | published statistic | published ms | simulated ms | simulated / published |")
    print("|---|---|---|---|---|")
    with open(PUBLISHED, newline="") as f:
        for rec in csv.DictReader(f):
            if rec["id"] in {f"G{i}" for i in range(8, 14)}:
                stat = rec["metric"].rsplit(" ", 1)[-1]
                value = float(rec["value"])
                print(
                    f"| {rec['id']} | {rec['metric']} | {value:.2f} | {ours[stat]:.2f}"
                    f" | {ours[stat] / value:.2f} |"
                )


def main(argv: Sequence[str] | None = None) -> Rows:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--densenet",
        type=int,
        metavar="CALLS",
        help="only compare DenseNet-121's ModelLatency with rows G8-G13 over CALLS calls",
    )
    args = parser.parse_args(argv)
    rows = Rows(name_width=44)
    if args.densenet:
        with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
            os.environ["EI_WIDGETS_LEDGER"] = str(Path(tmp) / "ledger.sqlite3")
            densenet(args.densenet, 10)
        return rows
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        folder = Path(tmp)
        previous = os.environ.get("EI_WIDGETS_LEDGER")
        os.environ["EI_WIDGETS_LEDGER"] = str(folder / "ledger.sqlite3")
        echo, echo_port = _start_echo()
        try:
            _overhead(rows, folder, echo_port, 20 if args.quick else 300)
            _throughput(rows, folder, echo_port, 1.0 if args.quick else 5.0)
            _generator(rows, echo_port, 500.0, 2.0 if args.quick else 30.0)
            chains = [_chain_model(folder, 500), _chain_model(folder, 1500)]
            sizes = [("ml.eia2.medium", 1), ("ml.eia1.medium", 2)]
            if args.quick:
                chains, sizes = chains[:1], sizes[:1]
            for chain in chains:
                for accelerator, count in sizes:
                    _saturation(rows, chain, accelerator, count, 4.0 if args.quick else 12.0)
        finally:
            echo.kill()
            echo.wait()
            if previous is None:
                os.environ.pop("EI_WIDGETS_LEDGER", None)
            else:
                os.environ["EI_WIDGETS_LEDGER"] = previous
    return rows


if __name__ == "__main__":
    main()
