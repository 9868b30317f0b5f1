"""The pacing literal: one name, one default, one check, wherever a clock is chosen."""

from __future__ import annotations

import inspect

import pytest

from ei_widgets.device.pacing import DEFAULT_PACING, PACINGS, check_pacing
from ei_widgets.device.runs import Run, RunError
from ei_widgets.device.sessions import session
from ei_widgets.errors import EIError


def test_session_and_run_share_the_default() -> None:
    assert inspect.signature(session).parameters["clock"].default == DEFAULT_PACING
    assert inspect.signature(Run).parameters["clock"].default == DEFAULT_PACING
    assert DEFAULT_PACING in PACINGS


def test_the_dashboard_run_panel_starts_on_the_default() -> None:
    from ei_widgets.notebook.views.run import RunPanel

    panel = RunPanel(lambda **kw: None, lambda batch: None)  # type: ignore[arg-type,return-value]
    assert panel.clock.value == DEFAULT_PACING
    assert [value for _, value in panel.clock.options] == list(PACINGS)
    panel.close()


@pytest.mark.parametrize("value", ["wall", "", None, "Paced"])
def test_anything_else_is_refused_with_the_valid_values(value: object) -> None:
    with pytest.raises(EIError, match="'paced' or 'virtual'"):
        check_pacing(value)
    with pytest.raises(RunError, match="'paced' or 'virtual'"):
        check_pacing(value, RunError)
