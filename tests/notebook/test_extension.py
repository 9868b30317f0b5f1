"""``%load_ext ei_widgets`` in a real kernel and in a plain IPython shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.kernel import kernel, run

pytestmark = pytest.mark.kernel

MAGICS = [
    "ei",
    "ei_attach",
    "ei_detach",
    "ei_status",
    "ei_inspect",
    "ei_recommend",
    "ei_deploy",
    "ei_endpoints",
]

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
        shown = again.data[-1]  # rich HTML for the notebook, the command line's text besides
        assert "No accelerator attached" in shown["text/plain"]
        assert "<b>No accelerator attached</b>" in shown["text/html"]

        # a user error raised by a cell reads as one line, and the cell fails (Run All stops)
        cell = "%ei_attach ml.eia2.medium\nimport ei_widgets\nei_widgets.session('/etc/passwd')"
        failed = run(client, cell)
        assert failed.error is not None
        assert failed.error.startswith("ModelLoadError: /etc/passwd is not a valid ONNX model")
        assert "Traceback" not in failed.stdout + failed.stderr


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


def test_an_ei_widgets_error_in_a_cell_is_one_line() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from ei_widgets.device import accelerator
    from ei_widgets.errors import ModelLoadError
    from ei_widgets.notebook.extension import load_ipython_extension, unload_ipython_extension

    ip = InteractiveShell.instance()
    with capture_output():
        load_ipython_extension(ip)
    try:
        accelerator.attach("ml.eia2.medium")
        with capture_output() as captured:
            result = ip.run_cell("import ei_widgets\nei_widgets.session('/etc/passwd')")
        assert isinstance(result.error_in_exec, ModelLoadError)  # the cell failed
        lines = (captured.stdout + captured.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert "ModelLoadError" in lines[0] and "/etc/passwd is not a valid ONNX model" in lines[0]
        with capture_output() as captured:
            ip.run_line_magic("tb", "")  # the whole traceback is there when wanted
        assert "Traceback" in captured.stdout and "load_model" in captured.stdout
        with capture_output() as captured:
            other = ip.run_cell("int('x')")  # anything else keeps its traceback
        assert isinstance(other.error_in_exec, ValueError)
        assert "Traceback" in captured.stdout + captured.stderr
    finally:
        accelerator.detach()
        with capture_output():
            unload_ipython_extension(ip)
    assert ip.custom_exceptions == ()
