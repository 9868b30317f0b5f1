"""A thousand random or malformed comm messages: each is answered with an error, nothing changes.

The in-process part drives :class:`ei_widgets.notebook.comm.Handler` directly; the kernel part
sends a
batch of them over a real kernel's shell channel after ``%load_ext ei_widgets``.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from typing import Any

import pytest
from jupyter_client.session import json_packer

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.notebook.comm import Handler
from ei_widgets.notebook.protocol import MAX_ID_LENGTH, TARGET, ProtocolError, validate
from tests.kernel import kernel, run

N_MESSAGES = 1000

ACCELERATORS = ["ml.eia2.large", "ml.eia1.medium", "ml.eia2.xlarge"]
INSTANCES = ["ml.t3.medium", "ml.m5.large"]
TYPES = ["get-state", "attach", "detach", "set-instance", "set-model"]
VARIABLES = ["model", "resnet"]  # no such variables: a set-model is refused, never obeyed
KEYS = ["v", "type", "id", "accelerator", "x", "code", ""]
OPEN = {"v": 1, "type": "get-state", "id": "open"}


def random_scalar(rng: random.Random) -> Any:
    choices: list[Any] = [
        None, True, False, 0, 1, -1, 2, 1.0, 1.5, float("nan"), float("inf"), 10**30, "", "1",
        "x" * rng.randint(1, 300), "ml.eia2.large ", "ML.EIA2.LARGE", "__import__('os')",
        "%load_ext ei_widgets", "ml.eia2.large; import os", "\x00", "ñ" * 70, [], {},
        [1, 2], {"v": 1}, b"bytes".decode(),
    ]  # fmt: skip
    return rng.choice(choices)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.6:
        return random_scalar(rng)
    if roll < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def valid_message(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(TYPES)
    message: dict[str, Any] = {"v": 1, "type": kind, "id": f"f{rng.randint(0, 10**6)}"}
    if kind == "attach":
        message["accelerator"] = rng.choice(ACCELERATORS)
        if rng.random() < 0.5:
            message["precision"] = rng.choice(["fp32", "fp16"])
    elif kind == "set-instance":
        message["instance"] = rng.choice(INSTANCES)
    elif kind == "set-model":
        message["variable"] = rng.choice(VARIABLES)
    return message


def mutate(rng: random.Random, message: dict[str, Any]) -> Any:
    """Break one valid message in one of many ways."""
    message = dict(message)
    kind = message["type"]
    how = rng.randrange(12)
    if how == 0:
        message["v"] = rng.choice([0, 2, "1", 1.0, True, None, [1], -1])
    elif how == 1:
        del message["v"]
    elif how == 2:
        message["type"] = rng.choice(["execute", "ATTACH", "", None, 1, "attach ", "eval"])
    elif how == 3:
        message["id"] = rng.choice(["", "x" * (MAX_ID_LENGTH + 1), 5, None, ["a"], {"a": 1}])
    elif how == 4:
        del message["id"]
    elif how == 5:
        message[rng.choice(["code", "exec", "x", "callback", "__class__"])] = random_value(rng)
    elif how == 6 and kind == "attach":
        message["accelerator"] = rng.choice(
            ["", "ml.eia3.large", "ml.p3.2xlarge", 2, None, ["ml.eia2.large"], "x" * 200,
             "__import__('os').system('true')"]
        )  # fmt: skip
    elif how == 7 and kind == "attach":
        message["precision"] = rng.choice(["fp64", "int8", "", None, 16, "FP16"])
    elif how == 8 and kind == "set-instance":
        message["instance"] = rng.choice(["ml.g4dn.xlarge", "", "t3.medium", None, 3])
    elif how == 9 and kind in ("attach", "set-instance"):
        del message["accelerator" if kind == "attach" else "instance"]
    elif how == 11 and kind == "set-model":
        message["variable"] = rng.choice(
            ["", None, 3, ["model"], "x" * 200, "__import__('os')", "os.system"]
        )
    elif how == 10:
        return random_value(rng)
    else:
        return rng.choice([None, [], "get-state", 1, json.dumps(message), [message]])
    return message


def is_valid(message: Any) -> bool:
    """True when ``message`` would be obeyed (a generated one that happens to be correct)."""
    try:
        checked = validate(message)
    except ProtocolError:
        return False
    return (
        checked["type"] != "set-model"  # refused: no model variable of that name here
        and checked.get("accelerator", ACCELERATORS[0]) in ACCELERATORS
        and checked.get("instance", INSTANCES[0]) in INSTANCES
    )


def malformed_messages(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    while len(out) < n:
        candidate = mutate(rng, valid_message(rng)) if rng.random() < 0.8 else random_value(rng)
        if not is_valid(candidate):
            out.append(candidate)
    return out


def snapshot(st: AcceleratorState) -> tuple[Any, ...]:
    return (st.instance, st.attachment, st.model)


def test_a_thousand_malformed_messages_are_each_answered_with_an_error() -> None:
    st = AcceleratorState()
    st.attach("ml.eia2.large")
    before = snapshot(st)
    sent: list[dict[str, Any]] = []
    handler = Handler(sent.append, st)
    messages = malformed_messages(seed=20261128, n=N_MESSAGES)
    for message in messages:
        answer = handler.handle(message)
        assert answer["type"] == "error", message
        assert answer["v"] == 1
        assert isinstance(answer["error"], str)
        assert answer["error"]
        assert not answer["error"].startswith("internal error"), (message, answer)
        expected_id = message.get("id") if isinstance(message, dict) else None
        if not (isinstance(expected_id, str) and 0 < len(expected_id) <= MAX_ID_LENGTH):
            expected_id = None
        assert answer["id"] == expected_id
        # Every answer can travel as the kernel's session packs it.
        json_packer(answer)
    assert len(sent) == N_MESSAGES
    assert snapshot(st) == before
    # Still obeys a good request afterwards.
    assert handler.handle({"v": 1, "type": "detach", "id": "ok"})["type"] == "reply"


# --- a real kernel ---------------------------------------------------------------------------


def comm_messages(client: Any, comm_id: str, wanted: int, timeout: float) -> list[dict[str, Any]]:
    """Read iopub until ``wanted`` answers (reply/error) arrived on ``comm_id``."""
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(answers) < wanted:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {len(answers)} of {wanted} answers"
        try:
            msg = client.get_iopub_msg(timeout=remaining)
        except Exception:
            continue
        if msg["msg_type"] == "comm_close" and msg["content"]["comm_id"] == comm_id:
            answers.append({"type": "closed"})
        elif msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
            data = msg["content"]["data"]
            if data.get("type") in ("reply", "error"):
                answers.append(data)
    return answers


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


def send(client: Any, msg_type: str, content: dict[str, Any]) -> None:
    client.shell_channel.send(client.session.msg(msg_type, content))


@pytest.mark.kernel
def test_a_real_kernel_survives_malformed_comm_messages() -> None:
    with kernel() as (manager, client):
        # Before %load_ext the target is missing: the kernel closes the comm (the front end's
        # "not loaded" state relies on this).
        early = uuid.uuid4().hex
        send(client, "comm_open", {"comm_id": early, "target_name": TARGET, "data": OPEN})
        assert comm_messages(client, early, 1, timeout=30) == [{"type": "closed"}]

        loaded = run(
            client, "%load_ext ei_widgets\nimport ei_widgets\nei_widgets.attach('ml.eia2.large')"
        )
        assert loaded.error is None

        comm_id = uuid.uuid4().hex
        send(client, "comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": OPEN})
        [opened] = comm_messages(client, comm_id, 1, timeout=30)
        assert opened["type"] == "reply"
        assert opened["state"]["attached"]["name"] == "ml.eia2.large"

        messages = malformed_messages(seed=7, n=200)
        # JSON cannot carry NaN or infinity over the wire: send them as strings.
        wire = [finite(message) for message in messages]
        for message in wire:
            send(client, "comm_msg", {"comm_id": comm_id, "data": message})
        answers = comm_messages(client, comm_id, len(wire), timeout=120)
        assert [a["type"] for a in answers] == ["error"] * len(wire)

        check = run(
            client, "print(ei_widgets.current().name, ei_widgets.notebook.comm.is_registered())"
        )
        assert check.error is None
        assert check.stdout.split() == ["ml.eia2.large", "True"]
        assert manager.is_alive()
