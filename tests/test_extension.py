"""``%load_ext ei_widgets`` in a real kernel and in a plain IPython shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.kernel import kernel, run

pytestmark = pytest.mark.kernel

MAGICS = ["ei", "ei_attach", "ei_detach", "ei_status", "ei_inspect", "ei_recommend"]

LIST_STATE = """
import comm, json
print(json.dumps({
    'magics': sorted(m for m in get_ipython().magics_manager.magics['line'] if m.startswith('ei')),
    'comm_target': 'ei_widgets' in comm.get_comm_manager().targets,
}))
"""


def state_of(client: object) -> dict[str, object]:
    return json.loads(run(client, LIST_STATE).stdout.strip().splitlines()[-1])


def test_load_twice_then_unload_in_a_kernel() -> None:
    with kernel() as (_, client):
        first = run(client, "%load_ext ei_widgets")
        assert first.error is None
        lines = first.stdout.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("ei_widgets ")
        assert "%ei_attach" in lines[0]
        assert "picker is connected" in lines[0]

        assert state_of(client) == {"magics": sorted(MAGICS), "comm_target": True}

        second = run(client, "%load_ext ei_widgets")
        assert second.error is None
        assert "ei_widgets 0" not in second.stdout  # IPython says it is already loaded

        assert run(client, "%unload_ext ei_widgets").error is None
        assert state_of(client) == {"magics": [], "comm_target": False}

        again = run(client, "%reload_ext ei_widgets\n%ei_status")
        assert again.error is None
        assert "No accelerator attached" in again.stdout


def test_load_in_plain_ipython_says_what_is_missing() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--quick",
            "--no-banner",
            "-c",
            "%load_ext ei_widgets\n%ei_status\n%unload_ext ei_widgets",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "no Jupyter front end here" in completed.stdout
    assert "No accelerator attached" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
