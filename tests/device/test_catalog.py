"""The catalog: packaged facts, their provenance, and validated price overrides."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ei_widgets.device import catalog as cat_mod
from ei_widgets.device.catalog import (
    default_catalog,
    load_price_overrides,
    packaged_catalog,
    parse_price_overrides,
    reset_default_catalog,
    set_price_overrides,
)
from ei_widgets.errors import CatalogError, EIError, UnknownNameError


@pytest.fixture(autouse=True)
def fresh_catalog() -> Iterator[None]:
    reset_default_catalog()
    yield
    reset_default_catalog()


def test_six_accelerators_with_the_documented_specs() -> None:
    cat = packaged_catalog()
    assert sorted(cat.accelerators) == [
        "ml.eia1.large", "ml.eia1.medium", "ml.eia1.xlarge",
        "ml.eia2.large", "ml.eia2.medium", "ml.eia2.xlarge",
    ]  # fmt: skip
    medium = cat.accelerator("ml.eia2.medium")
    assert (medium.f32_tflops, medium.f16_tflops) == (1.0, 8.0)
    assert medium.memory_bytes == 2 * 2**30
    assert medium.gpu == "T4"
    assert medium.ec2_price_per_hour == Decimal("0.12")
    assert medium.price_per_hour == Decimal("0.168")
    assert isinstance(medium.price_per_hour, Decimal)
    assert {"memory_bandwidth_gbps", "price_per_hour"} <= medium.derived
    assert cat.accelerator("ml.eia1.xlarge").gpu == "V100"
    assert cat.accelerator("ml.eia1.xlarge").memory_bandwidth_gbps == pytest.approx(225.0)


def test_derived_sagemaker_price_is_ec2_times_1_4() -> None:
    for acc in packaged_catalog().accelerators.values():
        assert acc.price_per_hour == acc.ec2_price_per_hour * Decimal("1.4")


def test_every_row_has_source_and_as_of_date() -> None:
    cat = packaged_catalog()
    for row in [*cat.accelerators.values(), *cat.instances.values()]:
        assert row.source
        assert len(row.as_of) == 10 and row.as_of[4] == "-"


def test_instances_by_role() -> None:
    cat = packaged_catalog()
    notebooks = {i.name for i in cat.notebook_instances()}
    assert {"ml.t2.medium", "ml.t3.medium", "ml.t3.large", "ml.m5.large", "ml.m5.xlarge",
            "ml.c5.xlarge"} <= notebooks  # fmt: skip
    gpus = {i.name: i for i in cat.gpu_instances()}
    assert set(gpus) >= {"ml.g4dn.xlarge", "ml.g5.xlarge", "ml.p3.2xlarge"}
    g4 = gpus["ml.g4dn.xlarge"]
    assert g4.gpu == "T4" and g4.gpu_f32_tflops == pytest.approx(8.1)
    assert g4.gpu_memory_bytes == 16 * 2**30
    assert g4.price_per_hour == Decimal("0.736")
    assert cat.cpu_instances()
    assert cat.instance("ml.t3.medium").vcpus == 2


def test_every_constant_is_documented_and_sourced() -> None:
    cat = packaged_catalog()
    for const in cat.constants.values():
        assert const.description and const.unit and const.source, const.name
    # Fitted constants say so, with the script and the date; the rest say where they come from.
    assert cat.constants["kernel_launch_seconds"].source.startswith("fitted to ")
    assert cat.constants["rpc_seconds"].is_assumption
    assert "benchmarks/calibrate.py" in cat.constants["tensor_efficiency"].source
    assert cat.constants["fp16_bytes_factor"].is_assumption
    assert cat.constants["model_load_factor"].value == pytest.approx(21.4 / 8.4, rel=0.01)


def test_unknown_names_list_valid_ones_and_closest_match() -> None:
    cat = packaged_catalog()
    with pytest.raises(UnknownNameError) as info:
        cat.accelerator("ml.eia2.medum")
    message = str(info.value)
    assert "Did you mean 'ml.eia2.medium'" in message
    assert "ml.eia1.large" in message
    with pytest.raises(UnknownNameError, match=r"Did you mean 'ml.t3.medium'"):
        cat.instance("ml.t3.meduim")
    with pytest.raises(UnknownNameError, match="notebook instance"):
        cat.notebook_instance("ml.g4dn.xlarge")
    assert isinstance(info.value, EIError)


def test_api_overrides_apply_prices_and_discount() -> None:
    cat = set_price_overrides(
        {"region": "eu-west-1", "discount": "0.1", "prices": {"ml.eia2.medium": "0.20"}}
    )
    assert cat.region == "eu-west-1"
    assert cat.accelerator("ml.eia2.medium").price_per_hour == Decimal("0.180")
    assert "price_per_hour" not in cat.accelerator("ml.eia2.medium").derived
    assert cat.instance("ml.t3.medium").price_per_hour == Decimal("0.045")
    assert default_catalog() is cat
    assert set_price_overrides(None).accelerator("ml.eia2.medium").price_per_hour == Decimal(
        "0.168"
    )


def test_file_overrides_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text('[prices]\n"ml.t3.medium" = "0.06"\n[ec2_prices]\n"ml.eia2.large" = 0.3\n')
    cat = load_price_overrides(toml)
    assert cat.instance("ml.t3.medium").price_per_hour == Decimal("0.06")
    assert cat.accelerator("ml.eia2.large").ec2_price_per_hour == Decimal("0.3")
    js = tmp_path / "prices.json"
    js.write_text(json.dumps({"prices": {"ml.g4dn.xlarge": 0.5}}))
    assert load_price_overrides(js).instance("ml.g4dn.xlarge").price_per_hour == Decimal("0.5")


def test_env_var_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.toml"
    path.write_text("discount = 0.5\n")
    monkeypatch.setenv(cat_mod.PRICES_ENV, str(path))
    reset_default_catalog()
    assert default_catalog().instance("ml.t3.medium").price_per_hour == Decimal("0.025")


def test_bad_env_var_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.toml"
    path.write_text('discount = "lots"\n')
    monkeypatch.setenv(cat_mod.PRICES_ENV, str(path))
    reset_default_catalog()
    with pytest.raises(CatalogError, match=r"EI_WIDGETS_PRICES.*line 1"):
        default_catalog()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("discount = 1.5\n", r"line 1: discount = 1\.5.*0 <= d < 1"),
        ("discount = -0.1\n", r"line 1.*>= 0"),
        ('region = "mars"\n', r"line 1.*region"),
        ('colour = "blue"\n', r"line 1.*unknown key 'colour'"),
        ('[prices]\n"ml.t3.medium" = "cheap"\n', r"line 2: \"ml.t3.medium\" = \"cheap\""),
        ('[prices]\n"ml.t3.medium" = "0.05"\n"ml.eia2.medium" = -2\n', r"line 3.*-2"),
        ('[prices]\n"ml.eia9.medium" = "0.1"\n', r"line 2.*Did you mean 'ml.eia2.medium'"),
        ('[prices]\nml.t3.medium = "0.1"\n', r"quote names"),
        ('[prices]\n"ml.t3.medium" = true\n', r"line 2.*must be a number"),
        ('[prices]\n"ml.t3.medium" = nan\n', r"line 2.*finite"),
        ('[ec2_prices]\n"ml.t3.medium" = 1\n', r"line 2.*ec2_prices"),
        ("discount = 0.1 0.2\n", r"invalid TOML.*line 1"),
        ("prices = 3\n", r"line 1.*must be a table"),
    ],
)
def test_bad_override_files_are_rejected_with_the_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=expected):
        load_price_overrides(path)
    # A rejected file changes nothing.
    assert default_catalog().instance("ml.t3.medium").price_per_hour == Decimal("0.05")


def test_bad_json_override_names_the_line() -> None:
    text = '{\n  "prices": {\n    "ml.t3.medium": "x"\n  }\n}\n'
    with pytest.raises(CatalogError, match=r"line 3"):
        parse_price_overrides(text, fmt="json", origin="p.json")
    with pytest.raises(CatalogError, match=r"line 2.*invalid JSON"):
        parse_price_overrides('{\n "prices": ,\n}', fmt="json", origin="p.json")


def test_same_name_in_two_tables_reports_the_right_line() -> None:
    text = '[prices]\n"ml.eia2.medium" = "0.2"\n[ec2_prices]\n"ml.eia2.medium" = "oops"\n'
    with pytest.raises(CatalogError, match=r"line 4"):
        parse_price_overrides(text)


def test_missing_override_file() -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_price_overrides("/nonexistent/prices.toml")


def test_bad_mapping_via_api() -> None:
    with pytest.raises(CatalogError, match="must be a number"):
        set_price_overrides({"prices": {"ml.t3.medium": [1]}})
    with pytest.raises(CatalogError, match="unknown key"):
        set_price_overrides({"price": {}})
