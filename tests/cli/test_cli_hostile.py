"""One clear line, never a traceback: the CLI and the magics given hostile arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import tiny
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from ei_widgets.device import accelerator
from ei_widgets.errors import ProfileError
from ei_widgets.notebook import magics
from ei_widgets.profiling.profiler import profile

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_batch_above_int64_is_one_profile_error(tmp_path: Path) -> None:
    model = tiny()
    with pytest.raises(ProfileError, match="at most"):
        profile(model, batch_size=2**63)


def test_inspect_with_a_batch_above_int64_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dyn.onnx"
    path.write_bytes(tiny().SerializeToString())
    out = _cli("inspect", str(path), "--batch", str(2**63))
    assert out.returncode == 2
    assert out.stderr.startswith("ei-widgets: ") and out.stderr.count("\n") == 1


def test_output_to_a_full_disk_says_so_in_one_line() -> None:
    with open("/dev/full", "w") as full:
        out = _cli("inspect", "squeezenet", "--json", stdout=full)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
    assert out.stderr == "ei-widgets: cannot write the output: No space left on device\n"


@pytest.fixture
def shell() -> Iterator[Any]:
    ip = InteractiveShell.instance()
    magics.register(ip)
    yield ip
    magics.unregister(ip)
    accelerator.detach()


@pytest.mark.parametrize("line", ['"unterminated', "ml.eia2.medium --instance 'ml.t3", "\\"])
def test_an_unterminated_quote_in_a_magic_is_one_usage_error(shell: Any, line: str) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("ei_attach", line)
    text = str(info.value)
    assert "\n" not in text and "cannot read the arguments" in text
    assert accelerator.state().attachment is None
