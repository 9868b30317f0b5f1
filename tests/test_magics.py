"""The ``%ei_*`` magics and their tab completion, in a real (in-process) IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ei_widgets import accelerator, magics
from ei_widgets.demo import demo_model


@pytest.fixture
def shell() -> Iterator[Any]:
    ip = InteractiveShell.instance()
    magics.register(ip)
    ip.user_ns["squeeze"] = str(demo_model("squeezenet"))
    yield ip
    magics.unregister(ip)
    ip.user_ns.pop("squeeze", None)
    accelerator.detach()
    accelerator.set_model("", None)


def run(ip: Any, line: str) -> str:
    with capture_output() as captured:
        ip.run_line_magic(*line.lstrip("%").split(" ", 1))
    return captured.stdout


def test_attach_status_detach(shell: Any) -> None:
    assert "Attached ml.eia2.large (fp16)" in run(
        shell, "%ei_attach ml.eia2.large --precision fp16"
    )
    assert accelerator.current() is not None
    assert accelerator.current().name == "ml.eia2.large"
    status = run(shell, "%ei_status x")
    assert "accelerator: ml.eia2.large (fp16" in status
    assert "squeeze" in status
    assert "Detached ml.eia2.large." in run(shell, "%ei_detach x")
    assert accelerator.current() is None


def test_attach_unknown_name_lists_the_valid_ones(shell: Any) -> None:
    out = run(shell, "%ei_attach ml.eia2.medum")
    assert "Did you mean 'ml.eia2.medium'?" in out
    assert "ml.eia1.xlarge" in out
    assert accelerator.current() is None


def test_inspect_and_recommend_a_variable(shell: Any) -> None:
    assert "1.2 M parameters" in run(shell, "%ei_inspect squeeze")
    # the inspected model becomes the one the picker and the dashboard judge fits by
    model = accelerator.state().model
    assert model is not None
    assert model[0] == "squeeze"
    out = run(shell, "%ei_recommend squeeze --latency-ms 50 --rps 10")
    assert "meets 50 ms" in out
    assert "No variable 'nothing'" in run(shell, "%ei_inspect nothing")


def completions(ip: Any, line: str) -> list[str]:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        found = ip.Completer.completions(line, len(line))
        return sorted({c.text for c in found})


def test_tab_completion_of_accelerators_instances_and_variables(shell: Any) -> None:
    assert completions(shell, "%ei_attach ml.eia2.") == [
        "ml.eia2.large",
        "ml.eia2.medium",
        "ml.eia2.xlarge",
    ]
    assert "ml.t3.medium" in completions(shell, "%ei_attach ml.eia2.large --instance ml.t")
    assert completions(shell, "%ei_inspect squ") == ["squeeze"]


def test_inspect_a_pytorch_module_with_an_input_shape(shell: Any) -> None:
    import torch  # the [torch] extra is part of the test dependencies

    shell.user_ns["net"] = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())
    try:
        out = run(shell, "%ei_inspect net --input-shape 1,8")
        assert "torch" in out
        assert "36 parameters" in out
        assert "give positive sizes" in run(shell, "%ei_inspect net --input-shape 1,zero")
    finally:
        shell.user_ns.pop("net")
