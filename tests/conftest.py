"""Shared fixtures: every test gets its own ledger and price settings, never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests (and the kernels they start) away from the real Jupyter data directory."""
    monkeypatch.setenv("EI_WIDGETS_LEDGER", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.delenv("EI_WIDGETS_PRICES", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("EI_WIDGETS_CACHE_DIR", str(tmp_path / "cache"))  # framework exports
