"""The ``%ei_*`` magics and their tab completion, in a real (in-process) IPython shell."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ei_widgets.common.html import PICK_STYLE
from ei_widgets.device import accelerator
from ei_widgets.models.demo import demo_model
from ei_widgets.notebook import magics


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


def shown(ip: Any, line: str) -> tuple[str, str]:
    """What a magic prints or displays: (plain text, HTML)."""
    with capture_output() as captured:
        name, _, rest = line.lstrip("%").partition(" ")
        ip.run_line_magic(name, rest)
    text = captured.stdout + "".join(o.data.get("text/plain", "") for o in captured.outputs)
    return text, "".join(o.data.get("text/html", "") for o in captured.outputs)


def run(ip: Any, line: str) -> str:
    return shown(ip, line)[0]


def usage_error(ip: Any, line: str) -> str:
    with pytest.raises(UsageError) as info:
        run(ip, line)
    text = str(info.value)
    assert "\n" not in text  # one line
    return text


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


def test_attach_unknown_name_is_a_usage_error_with_the_valid_ones(shell: Any) -> None:
    out = usage_error(shell, "%ei_attach ml.eia2.medum")
    assert "Did you mean 'ml.eia2.medium'?" in out
    assert "ml.eia1.xlarge" in out
    assert accelerator.current() is None


def test_attach_without_a_name_lists_the_sizes(shell: Any) -> None:
    out = usage_error(shell, "%ei_attach")
    for size in ("ml.eia1.medium", "ml.eia2.medium", "ml.eia2.xlarge"):
        assert size in out
    assert "ml.eia2.medium (2 GiB, $0.168/h)" in out  # memory and the full catalog price
    assert accelerator.current() is None


def test_a_user_error_fails_the_cell_so_run_all_stops(shell: Any) -> None:
    with capture_output() as captured:
        result = shell.run_cell("%ei_attach ml.eia3.huge")
    assert not result.success
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert "Unknown accelerator 'ml.eia3.huge'" in captured.stderr


def test_inspect_of_a_missing_variable_names_the_models_found(shell: Any) -> None:
    out = usage_error(shell, "%ei_inspect nonexistent")
    assert "no variable 'nonexistent'" in out and "squeeze" in out
    assert "choose from 'fp32', 'fp16'" in usage_error(
        shell, "%ei_attach ml.eia2.medium --precision fp8"
    )


def test_inspect_and_recommend_a_variable(shell: Any) -> None:
    assert "1.24 M parameters" in run(shell, "%ei_inspect squeeze")
    # the inspected model becomes the one the picker and the dashboard judge fits by
    model = accelerator.state().model
    assert model is not None
    assert model[0] == "squeeze"
    out = run(shell, "%ei_recommend squeeze --latency-ms 50 --rps 10")
    assert "meets 50 ms" in out
    assert "Searched 6 EI accelerators on ml.t3.medium" in out


def test_inspect_status_and_recommend_display_rich_html(shell: Any) -> None:
    text, html = shown(shell, "%ei_inspect squeeze")
    assert "1.24 M parameters" in text  # the text fallback, as the command line prints it
    assert html.startswith("<div") and "<b>light_squeezenet</b>" in html
    assert "1.24 M parameters" in html and "<details" in html  # the rest of the op types folded
    shell.run_line_magic("ei_attach", "ml.eia2.medium")
    text, html = shown(shell, "%ei_status")
    assert "<b>ml.eia2.medium</b>" in html and "$0.168/h" in html and "squeeze" in html
    text, html = shown(shell, "%ei_recommend squeeze --latency-ms 50")
    reason = html.index("meets 50 ms")
    assert 0 < reason < html.index("<table")  # the answer and its reason before any table
    assert PICK_STYLE in html  # the pick highlighted, in the theme's colours
    decimals = re.findall(r"(\d[\d,]*\.\d+) ms", html)
    assert decimals  # latencies are shown, each with three significant figures at most
    assert all(len(d.replace(",", "").replace(".", "").lstrip("0")) <= 3 for d in decimals)


def test_recommend_uses_the_dashboard_defaults(shell: Any) -> None:
    from ei_widgets.device.sizing import recommend
    from ei_widgets.reports import plain_text

    text = run(shell, "%ei_recommend squeeze")
    same = plain_text.recommendation_text(recommend(shell.user_ns["squeeze"]))
    assert text.strip() == same.strip()
    assert "meets 50 ms at 10 req/s" in text


def completions(ip: Any, line: str) -> list[str]:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        found = ip.Completer.completions(line, len(line))
        return sorted({c.text for c in found})


def test_recommend_endpoint_sizes_an_instance_count(shell: Any) -> None:
    text, html = shown(shell, "%ei_recommend squeeze --latency-ms 40 --rps 300 --endpoint")
    first = text.splitlines()[0]
    count = re.match(r"(\d+) x ", first)
    assert count is not None and int(count.group(1)) >= 1
    assert "meets p90 40 ms at 300 req/s" in first and "p90 at rate" in text
    assert "p90 at rate" in html and PICK_STYLE in html


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
        assert "give positive sizes" in usage_error(shell, "%ei_inspect net --input-shape 1,zero")
    finally:
        shell.user_ns.pop("net")


def test_inspect_fp16_shows_its_progress_in_place(shell: Any) -> None:
    """The fp16 check takes seconds: one line, updated in place, says how far it is."""
    with capture_output() as captured:
        shell.run_line_magic("ei_inspect", "squeeze --fp16")
    lines = [o for o in captured.outputs if o.data.get("text/plain", "").startswith("fp16 check:")]
    assert len(lines) >= 3
    first, *rest = lines
    assert first.data["text/plain"] == "fp16 check: starting"
    handle = (first.transient or {}).get("display_id")
    assert handle
    assert all(o.update and (o.transient or {}).get("display_id") == handle for o in rest)
    assert any("comparing… " in o.data["text/plain"] for o in rest)
    assert re.fullmatch(r"fp16 check: done in [\d.]+ s", rest[-1].data["text/plain"])
    assert "<progress" in rest[-1].data["text/html"]
    # the answer follows, as before
    assert any("fp16 vs fp32" in o.data.get("text/plain", "") for o in captured.outputs)


def test_seq_len_binds_a_transformers_length_and_bad_values_are_usage_errors(shell: Any) -> None:
    from tests.builders import transformer_block

    shell.user_ns["encoder"] = transformer_block(batch="batch", seq="sequence")
    try:
        text, html = shown(shell, "%ei_inspect encoder --seq-len 256")
        assert "batch 1, 256 tokens:" in text
        assert "Latency by sequence length" in text and "Latency by sequence length" in html
        assert "modelled" in text
        assert accelerator.state().model[1].seq_len == 256  # type: ignore[index]
        text = run(shell, "%ei_recommend encoder --seq-len 64")
        assert "Latency by sequence length" in text and "64 tokens" in text
        assert "at least 1 token, not 0" in usage_error(shell, "%ei_inspect encoder --seq-len 0")
        assert "whole number of tokens" in usage_error(
            shell, "%ei_recommend encoder --seq-len lots"
        )
        assert "no sequence dimension" in usage_error(shell, "%ei_inspect squeeze --seq-len 64")
    finally:
        shell.user_ns.pop("encoder", None)
