"""The kernel half of the picker protocol, with a recording comm and no kernel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ei_widgets import accelerator as acc_mod
from ei_widgets import comm as comm_mod
from ei_widgets.accelerator import AcceleratorState
from ei_widgets.comm import MAX_ID_LENGTH, Handler, ProtocolError, build_state, validate
from tests.models import big_profile


class Recorder:
    """Stands in for a comm: records what is sent, as JSON would carry it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any]) -> None:
        self.sent.append(json.loads(json.dumps(data)))


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
        "instance", "attached", "accelerators", "instances", "comparison", "model", "cost",
    }  # fmt: skip
    assert state["attached"] is None
    assert state["model"] is None
    names = [a["name"] for a in state["accelerators"]]
    assert sorted(names) == [
        "ml.eia1.large", "ml.eia1.medium", "ml.eia1.xlarge",
        "ml.eia2.large", "ml.eia2.medium", "ml.eia2.xlarge",
    ]  # fmt: skip
    large = next(a for a in state["accelerators"] if a["name"] == "ml.eia2.large")
    assert large == {
        "name": "ml.eia2.large", "f32_tflops": 2, "f16_tflops": 16, "memory_gib": 4,
        "price_per_hour": 0.336, "fits": None, "latency_ms": None, "reason": None,
    }  # fmt: skip
    assert state["instance"]["name"] == "ml.t3.medium"
    assert state["instance"]["price_per_hour"] == 0.05
    assert "ml.t3.medium" in [i["name"] for i in state["instances"]]
    assert state["comparison"] == {"name": "ml.g4dn.xlarge", "price_per_hour": 0.736}
    assert state["cost"]["rate_per_hour"] == pytest.approx(0.05)


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
    assert "ml.eia2.medium has 2.00 GiB" in fits["ml.eia2.medium"]["reason"]
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
        with self._lock:
            self.sent.append(json.loads(json.dumps(data)))

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
    manager.targets[comm_mod.TARGET](
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
    assert comm_mod.TARGET not in manager.targets
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
