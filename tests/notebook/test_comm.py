"""The kernel half of the picker protocol, with a recording comm and no kernel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx
import pytest
from jupyter_client.session import json_packer

from ei_widgets.device import accelerator as acc_mod
from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.judgement import judge_all
from ei_widgets.errors import EIError, ModelLoadError
from ei_widgets.models.frameworks.base import ProgressReporter
from ei_widgets.models.loading import register_kind, unregister_kind
from ei_widgets.models.types import MAX_SEQUENCE_KEY, LoadedModel, ModelEntry, ModelKind
from ei_widgets.notebook import comm as comm_mod
from ei_widgets.notebook import protocol
from ei_widgets.notebook.comm import Handler
from ei_widgets.notebook.picker_state import build_state
from ei_widgets.notebook.protocol import MAX_ID_LENGTH, ProtocolError, validate
from ei_widgets.profiling.profiler import profile
from tests.builders import big_profile, mlp, tiny, transformer_block


def wire(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the kernel's session packs it (raises for what the wire cannot carry)."""
    return json.loads(json_packer(data))


class Recorder:
    """Stands in for a comm: records what is sent, as the kernel's session would carry it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any]) -> None:
        self.sent.append(wire(data))


@pytest.fixture
def st() -> AcceleratorState:
    return AcceleratorState()


@pytest.fixture
def handler(st: AcceleratorState) -> tuple[Handler, Recorder]:
    recorder = Recorder()
    return Handler(recorder, st), recorder


def request(kind: str, request_id: str = "r1", **fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": kind, "id": request_id, **fields}


# --- validation --------------------------------------------------------------------------


def test_validate_accepts_each_documented_request() -> None:
    assert validate(request("get-state", "open")) == request("get-state", "open")
    assert validate(request("detach")) == request("detach")
    assert validate(request("attach", accelerator="ml.eia2.large")) == request(
        "attach", accelerator="ml.eia2.large"
    )
    assert (
        validate(request("attach", accelerator="ml.eia2.large", precision="fp16"))["precision"]
        == "fp16"
    )
    assert validate(request("set-instance", instance="ml.m5.large"))["instance"] == "ml.m5.large"
    assert validate(request("set-seq-len", seq_len=512))["seq_len"] == 512


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ("get-state", "JSON object"),
        ({"type": "get-state", "id": "a"}, "version"),
        ({**request("get-state"), "v": 2}, "version"),
        ({**request("get-state"), "v": "1"}, "version"),
        ({**request("get-state"), "v": 1.0}, "version"),
        ({**request("get-state"), "v": True}, "version"),
        (request("execute"), "unknown message type"),
        ({**request("get-state"), "type": None}, "unknown message type"),
        ({**request("get-state"), "id": ""}, "'id'"),
        ({**request("get-state"), "id": "x" * (MAX_ID_LENGTH + 1)}, "'id'"),
        ({**request("get-state"), "id": 7}, "'id'"),
        ({"v": 1, "type": "get-state"}, "'id'"),
        (request("attach"), "needs accelerator"),
        (request("set-instance"), "needs instance"),
        (request("attach", accelerator=""), "catalog name"),
        (request("attach", accelerator=["ml.eia2.large"]), "catalog name"),
        (request("attach", accelerator="x" * 500), "catalog name"),
        (request("attach", accelerator="ml.eia2.large", precision="int8"), "precision"),
        (request("attach", accelerator="ml.eia2.large", precision=None), "precision"),
        (request("detach", code="import os"), "unexpected field"),
        (request("get-state", accelerator="ml.eia2.large"), "unexpected field"),
        (request("set-seq-len"), "needs seq_len"),
        (request("set-seq-len", seq_len=0), "whole number of tokens from 1 to 65,536"),
        (request("set-seq-len", seq_len=-128), "whole number of tokens"),
        (request("set-seq-len", seq_len=protocol.MAX_SEQ_LEN + 1), "whole number of tokens"),
        (request("set-seq-len", seq_len=True), "whole number of tokens"),
        (request("set-seq-len", seq_len=128.0), "whole number of tokens"),
        (request("set-seq-len", seq_len="128"), "whole number of tokens"),
        (request("set-seq-len", seq_len=128, variable="net"), "unexpected field"),
    ],
)
def test_validate_refuses_what_the_schema_does_not_allow(message: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        validate(message)


# --- answers -----------------------------------------------------------------------------


def test_get_state_replies_with_the_documented_state(
    handler: tuple[Handler, Recorder],
) -> None:
    h, recorder = handler
    answer = h.handle(request("get-state", "open"))
    assert recorder.sent == [answer]
    assert answer["type"] == "reply"
    assert answer["id"] == "open"
    state = answer["state"]
    assert set(state) == {
        "instance", "attached", "accelerators", "instances", "comparison", "model", "sequence",
        "models", "profiling", "latency_accuracy", "cost",
    }  # fmt: skip
    assert state["attached"] is None
    assert state["model"] is None
    assert state["sequence"] is None
    assert state["profiling"] is None
    assert state["models"] == []
    names = [a["name"] for a in state["accelerators"]]
    assert sorted(names) == [
        "ml.eia1.large", "ml.eia1.medium", "ml.eia1.xlarge",
        "ml.eia2.large", "ml.eia2.medium", "ml.eia2.xlarge",
    ]  # fmt: skip
    large = next(a for a in state["accelerators"] if a["name"] == "ml.eia2.large")
    unjudged = {"fits": None, "latency_ms": None, "reason": None, "memory_bytes": None}
    assert large == {
        "name": "ml.eia2.large", "f32_tflops": 2, "f16_tflops": 16, "memory_gib": 4,
        "price_per_hour": 0.336, "fits": None, "latency_ms": None, "reason": None,
        "estimates": {"fp32": unjudged, "fp16": unjudged},
    }  # fmt: skip
    assert state["instance"]["name"] == "ml.t3.medium"
    assert state["instance"]["price_per_hour"] == 0.05
    assert "ml.t3.medium" in [i["name"] for i in state["instances"]]
    assert state["comparison"] == {"name": "ml.g4dn.xlarge", "price_per_hour": 0.736}
    assert state["cost"]["rate_per_hour"] == pytest.approx(0.05)
    assert state["cost"]["metered"] is False  # no running meter here: the total does not tick


def test_attach_detach_and_set_instance_change_the_one_state(
    st: AcceleratorState, handler: tuple[Handler, Recorder]
) -> None:
    h, _ = handler
    answer = h.handle(request("attach", "a1", accelerator="ml.eia2.large"))
    assert answer["type"] == "reply"
    assert answer["id"] == "a1"
    assert st.attachment is not None
    assert st.attachment.name == "ml.eia2.large"
    attached = answer["state"]["attached"]
    assert attached["name"] == "ml.eia2.large"
    assert attached["precision"] == "fp32"
    assert attached["since"].endswith("Z")

    answer = h.handle(request("attach", "a2", accelerator="ml.eia1.medium", precision="fp16"))
    assert st.attachment is not None
    assert (st.attachment.name, st.attachment.precision) == ("ml.eia1.medium", "fp16")

    answer = h.handle(request("set-instance", "i1", instance="ml.m5.large"))
    assert answer["state"]["instance"]["name"] == "ml.m5.large"
    assert st.instance.name == "ml.m5.large"

    answer = h.handle(request("detach", "d1"))
    assert answer["state"]["attached"] is None
    assert st.attachment is None


def test_refusals_are_errors_that_leave_the_state_alone(
    st: AcceleratorState, handler: tuple[Handler, Recorder]
) -> None:
    h, recorder = handler
    st.attach("ml.eia2.large")
    before = st.attachment

    answer = h.handle(request("attach", "x1", accelerator="ml.eia9.huge"))
    assert answer == {
        "v": 1, "type": "error", "id": "x1", "error": answer["error"],
    }  # fmt: skip
    assert "Unknown accelerator 'ml.eia9.huge'" in answer["error"]

    answer = h.handle(request("set-instance", "x2", instance="ml.p3.2xlarge"))
    assert answer["type"] == "error"
    assert "notebook instance" in answer["error"]

    answer = h.handle({"v": 1, "type": "attach", "id": "x3"})
    assert answer["type"] == "error"
    assert answer["id"] == "x3"

    answer = h.handle({"nonsense": True, "id": 12})
    assert answer["id"] is None

    assert st.attachment is before
    assert st.instance.name == "ml.t3.medium"
    assert [m["type"] for m in recorder.sent] == ["error"] * 4


def test_a_model_that_does_not_fit_is_refused_with_the_size_that_would(
    st: AcceleratorState, handler: tuple[Handler, Recorder]
) -> None:
    h, _ = handler
    st.set_model("big", big_profile(3 * 2**30))
    state = h.handle(request("get-state"))["state"]
    assert state["model"] == {"variable": "big", "kind": "onnx-model"}
    fits = {a["name"]: a for a in state["accelerators"]}
    assert fits["ml.eia2.medium"]["fits"] is False
    assert "ml.eia2.medium has 2 GiB" in fits["ml.eia2.medium"]["reason"]
    assert fits["ml.eia2.xlarge"]["fits"] is True
    assert fits["ml.eia2.xlarge"]["latency_ms"] > 0
    assert fits["ml.eia2.xlarge"]["reason"] is None

    answer = h.handle(request("attach", "f1", accelerator="ml.eia2.medium"))
    assert answer["type"] == "error"
    assert "does not fit" in answer["error"]
    assert "ml.eia2.large" in answer["error"]
    assert st.attachment is None


def test_an_unexpected_failure_is_answered_not_raised(
    st: AcceleratorState, handler: tuple[Handler, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, _ = handler

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(st, "detach", boom)
    answer = h.handle(request("detach", "b1"))
    assert answer["type"] == "error"
    assert answer["id"] == "b1"
    assert "disk on fire" in answer["error"]


def test_the_state_is_plain_json(st: AcceleratorState) -> None:
    st.attach("ml.eia2.xlarge")
    state = build_state(st)
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_push_sends_a_state_message(handler: tuple[Handler, Recorder]) -> None:
    h, recorder = handler
    h.push()
    assert recorder.sent[0]["type"] == "state"
    assert recorder.sent[0]["v"] == 1
    assert "accelerators" in recorder.sent[0]["state"]


# --- the comm target, with fake comms -------------------------------------------------------


class FakeComm:
    """The parts of a ``comm.base_comm.BaseComm`` the target uses."""

    _ids = 0

    def __init__(self) -> None:
        FakeComm._ids += 1
        self.comm_id = f"c{FakeComm._ids}"
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self._on_msg: Any = None
        self._on_close: Any = None
        self._lock = threading.Lock()

    def send(self, data: dict[str, Any]) -> None:
        packed = wire(data)
        with self._lock:
            self.sent.append(packed)

    def on_msg(self, callback: Any) -> None:
        self._on_msg = callback

    def on_close(self, callback: Any) -> None:
        self._on_close = callback

    def close(self) -> None:
        self.closed = True

    def receive(self, data: Any) -> None:
        self._on_msg({"content": {"comm_id": self.comm_id, "data": data}})

    def types(self) -> list[str]:
        with self._lock:
            return [m["type"] for m in self.sent]


class FakeManager:
    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}

    def register_target(self, name: str, callback: Any) -> None:
        self.targets[name] = callback

    def unregister_target(self, name: str, callback: Any) -> Any:
        return self.targets.pop(name)


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManager]:
    import comm

    fake = FakeManager()
    monkeypatch.setattr(comm, "get_comm_manager", lambda: fake)
    monkeypatch.setattr(comm_mod, "PUSH_INTERVAL_SECONDS", 0.05)
    acc_mod.detach()
    yield fake
    comm_mod.unregister()
    acc_mod.detach()


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def open_comm(manager: FakeManager) -> FakeComm:
    fake = FakeComm()
    manager.targets[protocol.TARGET](
        fake, {"content": {"comm_id": fake.comm_id, "data": request("get-state", "open")}}
    )
    return fake


def test_register_answers_the_open_message_and_pushes_changes(manager: FakeManager) -> None:
    comm_mod.register(None)
    assert comm_mod.is_registered()
    first, second = open_comm(manager), open_comm(manager)
    assert first.sent[0]["type"] == "reply"
    assert first.sent[0]["id"] == "open"

    # A change from elsewhere (a magic, the dashboard) reaches every open comm.
    acc_mod.attach("ml.eia2.large")
    for fake in (first, second):
        wait_for(
            lambda fake=fake: any(
                m["type"] == "state"
                and (m["state"]["attached"] or {}).get("name") == "ml.eia2.large"
                for m in list(fake.sent)
            )
        )

    # A request on one comm answers that comm; the other sees the change pushed.
    first.receive(request("detach", "d"))
    assert [m["type"] for m in first.sent if m.get("id") == "d"] == ["reply"]
    assert acc_mod.current() is None

    # The ticker keeps pushing the cost.
    count = second.types().count("state")
    wait_for(lambda: second.types().count("state") >= count + 2)


def test_unregister_closes_the_comms_and_stops_pushing(manager: FakeManager) -> None:
    comm_mod.register(None)
    fake = open_comm(manager)
    comm_mod.unregister(None)
    assert fake.closed
    assert protocol.TARGET not in manager.targets
    count = len(fake.sent)
    time.sleep(0.2)
    assert len(fake.sent) == count
    # Unregistering twice is harmless.
    comm_mod.unregister(None)


def test_a_closed_comm_gets_no_more_pushes(manager: FakeManager) -> None:
    comm_mod.register(None)
    fake = open_comm(manager)
    fake._on_close({"content": {"comm_id": fake.comm_id, "data": {}}})
    count = len(fake.sent)
    time.sleep(0.2)
    assert len(fake.sent) == count


# --- models found as %ei_status finds them; both precisions; the model's stated accuracy ------


def test_models_are_listed_without_inspecting_them_first(st: AcceleratorState) -> None:
    namespace = {"net": mlp(), "small": tiny(), "numbers": [1, 2, 3], "_hidden": tiny()}
    recorder = Recorder()
    h = Handler(recorder, st, namespace=namespace)
    state = h.handle(request("get-state", "open"))["state"]
    assert [(m["variable"], m["kind"]) for m in state["models"]] == [
        ("net", "onnx-model"),
        ("small", "onnx-model"),
    ]
    assert all(m["summary"] for m in state["models"])
    assert state["model"] is None  # listed, not yet judged by: that takes a profile


def test_set_model_profiles_the_chosen_variable_and_judges_fits_by_it(
    st: AcceleratorState,
) -> None:
    namespace = {"net": mlp(), "small": tiny(), "numbers": [1, 2, 3]}
    recorder = Recorder()
    h = Handler(recorder, st, namespace=namespace)
    answer = h.handle(request("set-model", "m1", variable="small"))
    assert answer["type"] == "reply", answer
    # a model this small may be profiled before the reply is built (the gated model's test
    # shows the reply coming first); if not, the reply shows it being profiled
    profiling = answer["state"]["profiling"]
    assert profiling is None or profiling["variable"] == "small"
    assert h.profiler.wait(10)
    # the push at the end (a small model's may even come before the reply is sent)
    pushed = next(m for m in reversed(recorder.sent) if m["type"] == "state")
    assert pushed["state"]["model"] == {"variable": "small", "kind": "onnx-model"}
    assert pushed["state"]["profiling"] is None
    assert st.model is not None and st.model[0] == "small"
    large = next(a for a in pushed["state"]["accelerators"] if a["name"] == "ml.eia2.large")
    assert large["fits"] is True
    assert large["latency_ms"] > 0

    h.handle(request("set-model", "m2", variable="net"))
    assert h.profiler.wait(10)
    pushed = next(m for m in reversed(recorder.sent) if m["type"] == "state")
    assert pushed["state"]["model"]["variable"] == "net"

    # Only the models found can be chosen: never an arbitrary name, never evaluated.
    for variable in ("numbers", "missing", "__import__('os')"):
        answer = h.handle(request("set-model", "m3", variable=variable))
        assert answer["type"] == "error"
        assert "no model variable" in answer["error"]
        assert "net, small" in answer["error"]
    assert st.model is not None and st.model[0] == "net"


def test_estimates_carry_both_precisions_and_the_top_level_follows_the_attached_one(
    st: AcceleratorState,
) -> None:
    st.set_model("big", big_profile(3 * 2**30))
    state = build_state(st)
    medium = next(a for a in state["accelerators"] if a["name"] == "ml.eia2.medium")
    fp32, fp16 = medium["estimates"]["fp32"], medium["estimates"]["fp16"]
    assert fp32["latency_ms"] > fp16["latency_ms"] > 0
    assert fp32["memory_bytes"] > fp16["memory_bytes"] > 0
    assert (fp32["fits"], fp16["fits"]) == (False, True)  # half the bytes per weight at fp16
    assert medium["latency_ms"] == fp32["latency_ms"]  # nothing attached: fp32

    st.attach("ml.eia2.medium", precision="fp16")
    medium = next(a for a in build_state(st)["accelerators"] if a["name"] == "ml.eia2.medium")
    assert medium["latency_ms"] == medium["estimates"]["fp16"]["latency_ms"]
    assert medium["fits"] is True


def test_the_state_carries_the_latency_model_stated_accuracy() -> None:
    from dataclasses import replace

    from ei_widgets.device.catalog import Validation, default_catalog

    validation = Validation(
        rows=14, median_error=0.07, worst_error=0.18, loso_median_error=0.09, fitted_on="x"
    )
    stated = AcceleratorState(catalog=replace(default_catalog(), validation=validation))
    assert build_state(stated)["latency_accuracy"] == (
        "modelled: ±18% against 14 published EI measurements"
    )
    unstated = AcceleratorState(catalog=replace(default_catalog(), validation=None))
    assert build_state(unstated)["latency_accuracy"] is None


def test_the_comm_target_lists_the_kernels_models(manager: FakeManager) -> None:
    from types import SimpleNamespace

    comm_mod.register(SimpleNamespace(user_ns={"net": tiny(), "x": 1}))
    fake = open_comm(manager)
    assert [m["variable"] for m in fake.sent[0]["state"]["models"]] == ["net"]


# --- set-model in the background; set-seq-len -----------------------------------------------


class Gated:
    """A framework model whose export to ONNX waits for ``release`` (a Keras model's conversion
    takes seconds): loaded through a registered kind that reports its stages as the TensorFlow
    plug-in does, and fails with ``fail`` when that is set."""

    def __init__(self, model: onnx.ModelProto, fail: str = "") -> None:
        self.model = model
        self.fail = fail
        self.release = threading.Event()


def _load_gated(obj: Gated, name: str | None) -> LoadedModel:
    label = name or "gated"
    reporter = ProgressReporter(label, "gated")
    reporter.stage("converting", 0.4)
    if not obj.release.wait(10):
        raise AssertionError("never released")
    if obj.fail:
        reporter.finish(error=obj.fail)
        raise ModelLoadError(obj.fail)
    reporter.finish()
    return LoadedModel(model=obj.model, name=label, kind="gated")


def _detect_gated(variable: str, obj: object) -> ModelEntry | None:
    return ModelEntry(variable, "gated", "a slow export") if isinstance(obj, Gated) else None


@pytest.fixture
def gated_kind() -> Iterator[None]:
    register_kind(
        ModelKind("gated", lambda o: isinstance(o, Gated), _load_gated, _detect_gated), first=True
    )
    yield
    unregister_kind("gated")


def profiling_of(message: dict[str, Any]) -> dict[str, Any] | None:
    profiling: dict[str, Any] | None = message["state"]["profiling"]
    return profiling


def test_set_model_is_answered_before_the_profile_is_made_and_pushed_when_it_is(
    st: AcceleratorState, gated_kind: None
) -> None:
    slow = Gated(mlp())
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"slow": slow})
    answer = h.handle(request("set-model", "m1", variable="slow"))
    try:
        assert answer["type"] == "reply"
        assert answer["state"]["model"] is None  # not profiled yet: the export waits
        pending = profiling_of(answer)
        assert pending is not None
        assert (pending["variable"], pending["seq_len"], pending["error"]) == ("slow", None, None)
        # The export's stage reaches the picker while it runs.
        wait_for(
            lambda: any(
                (profiling_of(m) or {}).get("stage") == "converting"
                and (profiling_of(m) or {}).get("progress") == 0.4
                for m in list(recorder.sent)
            )
        )
        assert st.model is None
    finally:
        slow.release.set()
    assert h.profiler.wait(10)
    last = recorder.sent[-1]
    assert last["type"] == "state"
    assert last["state"]["model"] == {"variable": "slow", "kind": "gated"}
    assert profiling_of(last) is None
    assert st.model is not None and st.model[0] == "slow"


def test_the_latest_choice_wins_over_an_older_profile_that_ends_later(
    st: AcceleratorState, gated_kind: None
) -> None:
    first, second = Gated(mlp()), Gated(tiny())
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"first": first, "second": second})
    h.handle(request("set-model", "m1", variable="first"))
    answer = h.handle(request("set-model", "m2", variable="second"))
    assert (profiling_of(answer) or {}).get("variable") == "second"
    second.release.set()
    wait_for(lambda: st.model is not None)
    first.release.set()
    assert h.profiler.wait(10)
    assert st.model is not None and st.model[0] == "second"
    assert recorder.sent[-1]["state"]["model"]["variable"] == "second"

    # A model chosen elsewhere meanwhile (a magic, the dashboard) wins too.
    third = Gated(mlp())
    h = Handler(recorder, st, namespace={"third": third})
    h.handle(request("set-model", "m3", variable="third"))
    st.set_model("big", big_profile(2**30))
    third.release.set()
    assert h.profiler.wait(10)
    assert st.model is not None and st.model[0] == "big"
    assert profiling_of(recorder.sent[-1]) is None


def test_a_failed_profile_is_pushed_with_what_to_do_until_the_next_choice(
    st: AcceleratorState, gated_kind: None
) -> None:
    fix = "converting it needs tf2onnx: pip install tf2onnx"
    broken, good = Gated(mlp(), fail=fix), Gated(tiny())
    broken.release.set()
    good.release.set()
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"broken": broken, "good": good})
    assert h.handle(request("set-model", "m1", variable="broken"))["type"] == "reply"
    assert h.profiler.wait(10)
    failed = profiling_of(recorder.sent[-1])
    assert failed is not None
    assert failed["variable"] == "broken"
    assert failed["stage"] == "failed"
    assert failed["error"] == f"Could not profile broken: {fix}"
    assert recorder.sent[-1]["state"]["model"] is None
    assert profiling_of(h.handle(request("get-state", "g1"))) == failed  # it stays

    h.handle(request("set-model", "m2", variable="good"))
    assert h.profiler.wait(10)
    assert profiling_of(recorder.sent[-1]) is None
    assert recorder.sent[-1]["state"]["model"]["variable"] == "good"


def latency(state: dict[str, Any], name: str = "ml.eia2.large") -> float:
    value: float = next(a for a in state["accelerators"] if a["name"] == name)["latency_ms"]
    return value


def test_set_seq_len_judges_the_transformer_again_at_that_length(st: AcceleratorState) -> None:
    encoder = transformer_block(batch="batch", seq="sequence")
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"encoder": encoder, "net": mlp()})
    answer = h.handle(request("set-seq-len", "s0", seq_len=256))
    assert answer["type"] == "error"
    assert "no model is judged yet" in answer["error"]

    h.handle(request("set-model", "m1", variable="encoder"))
    assert h.profiler.wait(10)
    state = recorder.sent[-1]["state"]
    assert state["sequence"] == {"seq_len": 128, "lengths": [64, 128, 256, 512]}
    at_128 = latency(state)

    answer = h.handle(request("set-seq-len", "s1", seq_len=512))
    assert answer["type"] == "reply"
    # Shown as being profiled, unless this small graph's profile was made before the answer.
    assert profiling_of(answer) in (
        None,
        {"variable": "encoder", "seq_len": 512, "stage": None, "progress": None, "error": None},
    )
    assert h.profiler.wait(10)
    state = recorder.sent[-1]["state"]
    assert state["sequence"] == {"seq_len": 512, "lengths": [64, 128, 256, 512]}
    # The core's one judgement at that length: what the dashboard's Tokens dropdown shows.
    core = judge_all(profile(encoder, seq_len=512), instance=st.instance, catalog=st.catalog)
    assert latency(state) == round(core.of("ml.eia2.large", "fp32").latency_ms or 0, 4)
    assert latency(state) > at_128  # attention grows with the square of the length

    h.handle(request("set-model", "m2", variable="net"))
    assert h.profiler.wait(10)
    assert recorder.sent[-1]["state"]["sequence"] is None
    answer = h.handle(request("set-seq-len", "s2", seq_len=256))
    assert answer["type"] == "error"
    assert "has no sequence dimension" in answer["error"]


def test_set_seq_len_stays_within_the_position_table(st: AcceleratorState) -> None:
    encoder = transformer_block(batch="batch", seq="sequence")
    encoder.metadata_props.add(key=MAX_SEQUENCE_KEY, value="256")
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"encoder": encoder})
    h.handle(request("set-model", "m1", variable="encoder"))
    assert h.profiler.wait(10)
    assert recorder.sent[-1]["state"]["sequence"]["lengths"] == [64, 128, 256]
    answer = h.handle(request("set-seq-len", "s1", seq_len=512))
    assert answer["type"] == "error"
    assert "takes at most 256 tokens (its position table); choose 256 or fewer" in answer["error"]
    assert st.model is not None and st.model[1].seq_len == 128


def test_a_length_fixed_by_the_export_is_the_only_one_offered(st: AcceleratorState) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    embedding = numpy_helper.from_array(np.ones((100, 8), np.float32), "emb")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 16])
    out = helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", 16, 8])
    node = helper.make_node("Gather", ["emb", "input_ids"], ["h"])
    fixed = helper.make_model(
        helper.make_graph([node], "fixed", [ids], [out], [embedding]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    recorder = Recorder()
    h = Handler(recorder, st, namespace={"fixed": fixed})
    h.handle(request("set-model", "m1", variable="fixed"))
    assert h.profiler.wait(10)
    assert recorder.sent[-1]["state"]["sequence"] == {"seq_len": 16, "lengths": [16]}
    answer = h.handle(request("set-seq-len", "s1", seq_len=32))
    assert answer["type"] == "error"
    assert "sequence length is fixed at 16 tokens" in answer["error"]


def test_every_comm_of_the_kernel_sees_the_profile_made_for_one(manager: FakeManager) -> None:
    from types import SimpleNamespace

    comm_mod.register(SimpleNamespace(user_ns={"net": tiny()}))
    first, second = open_comm(manager), open_comm(manager)
    first.receive(request("set-model", "m1", variable="net"))
    assert [m["type"] for m in first.sent if m.get("id") == "m1"] == ["reply"]
    wait_for(
        lambda: any(
            m["type"] == "state" and (m["state"]["model"] or {}).get("variable") == "net"
            for m in list(second.sent)
        )
    )


# --- always answer, never echo much (issue 14, item 14) -------------------------------------

LONE_SURROGATE = "\ud800"
FIVE_MB = "x" * (5 * 2**20)


def test_a_request_whose_id_is_a_lone_surrogate_is_answered(
    st: AcceleratorState,
    handler: tuple[Handler, Recorder],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h, recorder = handler
    # Legal JSON, but UTF-8 cannot carry the id back: refused with an error that can travel.
    answer = h.handle(request("attach", LONE_SURROGATE, accelerator="ml.eia2.large"))
    assert recorder.sent == [answer]
    assert answer["type"] == "error"
    assert answer["id"] is None
    assert "valid Unicode" in answer["error"]
    assert st.attachment is None
    # Lone surrogates elsewhere are answered too, escaped where the error quotes them.
    for message in (
        request("attach", "s1", accelerator="ml.eia2" + LONE_SURROGATE),
        request("detach", "s2", **{LONE_SURROGATE: 1}),
        {**request("get-state", "s3"), "type": LONE_SURROGATE},
    ):
        answer = h.handle(message)
        assert answer["type"] == "error"
        assert answer == recorder.sent[-1]
    assert "\\ud800" in recorder.sent[-1]["error"]
    assert len(recorder.sent) == 4
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert "Traceback" not in capsys.readouterr().err


def test_an_answer_that_cannot_travel_becomes_an_error_that_can(
    st: AcceleratorState, handler: tuple[Handler, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, recorder = handler

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise EIError("cannot attach " + LONE_SURROGATE)

    monkeypatch.setattr(st, "attach", refuse)
    answer = h.handle(request("attach", "t1", accelerator="ml.eia2.large"))
    assert recorder.sent == [answer]
    assert answer["id"] == "t1"
    assert answer["error"] == "cannot attach \\ud800"


@pytest.mark.parametrize(
    "message",
    [
        {**request("get-state"), "type": FIVE_MB},
        {**request("get-state"), "v": FIVE_MB},
        {**request("get-state"), "v": [FIVE_MB] * 3},
        {**request("get-state"), "id": FIVE_MB},
        request("detach", **{FIVE_MB: 1}),
        request("detach", **{f"k{i}": 1 for i in range(10_000)}),
        request("attach", accelerator=FIVE_MB),
        request("set-model", variable=FIVE_MB),
    ],
    ids=["type", "version", "version-list", "id", "field-name", "many-fields", "name", "model"],
)
def test_error_texts_cap_what_they_echo(
    handler: tuple[Handler, Recorder], message: dict[str, Any]
) -> None:
    h, recorder = handler
    answer = h.handle(message)
    assert answer["type"] == "error"
    assert len(answer["error"]) <= protocol.MAX_ERROR_LENGTH
    assert len(json.dumps(recorder.sent[-1])) < 1000


def test_an_unexpected_failure_echoes_a_capped_text(
    st: AcceleratorState, handler: tuple[Handler, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, _ = handler

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(FIVE_MB)

    monkeypatch.setattr(st, "detach", boom)
    answer = h.handle(request("detach", "b2"))
    assert answer["id"] == "b2"
    assert answer["error"].startswith("internal error: RuntimeError: xxx")
    assert len(answer["error"]) <= protocol.MAX_ERROR_LENGTH


def test_the_comm_target_answers_a_lone_surrogate_id(manager: FakeManager) -> None:
    comm_mod.register(None)
    fake = open_comm(manager)
    fake.receive(request("get-state", LONE_SURROGATE))
    assert fake.sent[-1]["type"] == "error"
    assert fake.sent[-1]["id"] is None


# --- the front end's fixture: one source for both halves of docs/protocol.md ----------------

FIXTURE = Path(__file__).resolve().parents[2] / "labextension/src/__tests__/fixtures/protocol.json"
REGENERATE = "python -m tests.notebook.test_comm"

# Sample figures the front end's format.ts must show as the kernel's formatters do: ties,
# unit and magnitude boundaries, signs.
FORMAT_SAMPLES: dict[str, list[float]] = {
    "money": [
        0,
        0.336,
        0.05,
        0.168,
        0.736,
        0.00125,
        0.00135,
        0.005,
        0.0099999,
        0.01,
        0.015,
        0.025,
        0.125,
        1.005,
        2.675,
        12.5,
        1234.565,
        1234567.891,
        0.000021,
        0.00004,
        -0.5,
        -0.0012,
        0.0500139,
        0.0500125,
        0.000000545,
        0.00001235,
        99.995,
        999.95,
        -0.52,
    ],
    "bytes": [
        0,
        1,
        2.5,
        3.5,
        512.5,
        1023,
        1024,
        1536,
        10_000,
        1023.99 * 2**10,
        2**31,
        2**32,
        3 * 2**30 + 12_345,
        3.43 * 2**30,
        1.5 * 2**40,
        2**50,
        -1536,
    ],
    "count": [
        0,
        1,
        0.5,
        0.001234,
        12.5,
        999,
        999.5,
        1000,
        1234,
        99_950,
        25_610_153,
        1e9,
        1.2345e12,
        1e15,
        -2500,
    ],
    "ms": [0, 1e-7, 0.00012345, 0.0109, 0.0135, 0.125, 0.5, 1, 9.999, 10, 12.345, 1234.5],
    "rate": [0, 0.5, 0.0625, 91.743, 213.4, 999.95, 12_345.6],
    "percent": [0, 0.00001, 0.034, 0.0995, 0.12345, 0.5, 0.999, 1, 1.5],
}


def fixture_data() -> dict[str, Any]:
    """What the jest tests load: states built by :func:`build_state` and formatted samples."""
    from ei_widgets.common import money, units

    empty = AcceleratorState()
    judged = AcceleratorState()
    judged.set_model("big", big_profile(3 * 2**30))
    attachment = judged.attach("ml.eia2.medium", precision="fp16")
    # A fixed time, so the fixture changes only when the state's form or figures do.
    object.__setattr__(attachment, "since", datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))
    namespace = {"big_net": mlp(), "small": tiny()}
    encoder = transformer_block(batch="batch", seq="sequence")
    transformer = AcceleratorState()
    transformer.set_model("encoder", profile(encoder, name="encoder", seq_len=256))
    formatters: dict[str, Callable[[float], str]] = {
        # The kernel formats exact decimals; the comm carries them as floats of the same digits.
        "money": money.format_money,
        "bytes": units.format_bytes,
        "count": units.format_count,
        "ms": units.format_ms,
        "rate": units.format_rate,
        "percent": units.format_percent,
    }
    return {
        "about": (
            f"Written by `{REGENERATE}` from "
            "ei_widgets.notebook.picker_state.build_state; do not edit."
        ),
        "states": {
            "empty": build_state(empty),
            "judged": build_state(judged, namespace=namespace),
            "profiling": build_state(
                judged,
                namespace=namespace,
                profiling={
                    "variable": "big_net",
                    "seq_len": None,
                    "stage": "converting",
                    "progress": 0.4,
                    "error": None,
                },
            ),
            "failed": build_state(
                judged,
                namespace=namespace,
                profiling={
                    "variable": "big_net",
                    "seq_len": None,
                    "stage": "failed",
                    "progress": 0.4,
                    "error": "Could not profile big_net: converting it needs tf2onnx: "
                    "pip install tf2onnx",
                },
            ),
            "transformer": build_state(transformer, namespace={"encoder": encoder}),
        },
        "formats": {
            kind: [[value, formatters[kind](value)] for value in values]
            for kind, values in FORMAT_SAMPLES.items()
        },
    }


def write_fixture() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture_data(), indent=1, ensure_ascii=False) + "\n")


def test_the_front_end_fixture_is_current() -> None:
    assert FIXTURE.exists(), f"missing {FIXTURE}: run {REGENERATE}"
    committed = json.loads(FIXTURE.read_text())
    assert committed == wire(fixture_data()), (
        f"{FIXTURE.name} is stale (the state or a formatter changed): run {REGENERATE}, "
        "then jlpm run test in labextension"
    )


if __name__ == "__main__":
    write_fixture()
    print(f"wrote {FIXTURE}")
