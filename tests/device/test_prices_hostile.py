"""Hostile price override files: FIFOs, devices, other encodings, deep nesting, huge integers.

Each is refused with one ``CatalogError`` (one line in the CLI and ``%load_ext``), at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ei_widgets.device.catalog import (
    default_catalog,
    load_price_overrides,
    parse_price_overrides,
    reset_default_catalog,
)
from ei_widgets.errors import CatalogError
from tests.threads import unblock, within

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_catalog() -> object:
    reset_default_catalog()
    yield
    reset_default_catalog()


def test_a_prices_variable_pointing_at_a_fifo_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "prices.toml"
    os.mkfifo(fifo)
    monkeypatch.setenv("EI_WIDGETS_PRICES", str(fifo))
    try:
        outcome = within(10, default_catalog)
    finally:
        unblock(fifo)
    assert isinstance(outcome, CatalogError), outcome
    assert "not a regular file" in str(outcome)


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a regression fails, not swaps


def test_dev_zero_as_prices_is_refused_before_it_is_read() -> None:
    code = (
        "from ei_widgets.device.catalog import default_catalog\n"
        "from ei_widgets.errors import CatalogError\n"
        "try:\n    default_catalog()\nexcept CatalogError as e:\n    print('refused', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
        env={**os.environ, "PYTHONPATH": str(REPO), "EI_WIDGETS_PRICES": "/dev/zero"},
    )
    assert out.stdout.startswith("refused"), out.stderr[-500:]


def test_a_huge_prices_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(CatalogError, match="bytes"):
        load_price_overrides(path)


def test_a_prices_file_that_is_not_utf8_is_one_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_bytes('region = "eu-west-1"\n# prix en \xe9t\xe9\n'.encode("latin-1"))
    with pytest.raises(CatalogError, match="UTF-8"):
        load_price_overrides(path)


def test_a_prices_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_bytes(b'\xef\xbb\xbfregion = "eu-west-1"\n')
    assert load_price_overrides(path).region == "eu-west-1"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("prices.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n"),
        ("prices.json", "[" * 100_000 + "]" * 100_000),
        ("prices.json", '{"discount": ' + "9" * 5000 + "}"),
        ("prices.toml", "discount = " + "9" * 5000 + "\n"),
        ("prices.toml", '[prices]\n"ml.eia2.medium" = ' + "9" * 5000 + "\n"),
    ],
)
def test_nested_or_huge_values_are_one_catalog_error(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CatalogError):
        load_price_overrides(path)


def test_a_huge_integer_given_as_a_mapping_is_one_catalog_error() -> None:
    from ei_widgets.device.catalog import set_price_overrides

    with pytest.raises(CatalogError, match="at most"):
        set_price_overrides({"prices": {"ml.eia2.medium": 10**5000}})
    with pytest.raises(CatalogError):
        parse_price_overrides('[prices]\n"ml.eia2.medium" = "' + "9" * 5000 + '"\n')


def test_the_cli_with_a_bad_prices_file_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    out = subprocess.run(
        [sys.executable, "-m", "ei_widgets.cli", "recommend", "squeezenet", "--latency-ms", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "EI_WIDGETS_PRICES": str(path)},
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.startswith("ei-widgets: ")
