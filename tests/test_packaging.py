"""The wheel ships the prebuilt JupyterLab extension, and JupyterLab sees it enabled and OK."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NPM_NAME = "ei-widgets"
SHARE = f"share/jupyter/labextensions/{NPM_NAME}"

pytestmark = pytest.mark.slow


def _python_m(
    *args: str, timeout: float, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m *args`` in this environment, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=check,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from this checkout (the front end is reused when already built)."""
    out = tmp_path_factory.mktemp("dist")
    _python_m("build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT), timeout=600)
    (built,) = out.glob("ei_widgets-*.whl")
    return built


def test_wheel_contains_the_prebuilt_labextension(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if f"data/data/{SHARE}/" in n]
    assert any(n.endswith(f"{SHARE}/package.json") for n in data)
    assert any(n.endswith(f"{SHARE}/install.json") for n in data)
    assert any("/static/remoteEntry." in n for n in data)
    assert any(n.startswith("ei_widgets/") and n.endswith("__init__.py") for n in names)
    package = json.loads(
        zipfile.ZipFile(wheel).read(next(n for n in data if n.endswith(f"{SHARE}/package.json")))
    )
    assert package["name"] == NPM_NAME
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def _installed_copies() -> list[str]:
    """Where this environment has ei-widgets installed, and which version."""
    importlib.invalidate_caches()
    found = importlib.metadata.distributions(name=NPM_NAME)
    return sorted(f"{d.version} in {d.locate_file('')}" for d in found)


def test_labextension_list_reports_it_enabled_and_ok(wheel: Path, tmp_path: Path) -> None:
    # Into a throw-away folder: `--prefix` would first uninstall the copy this environment has.
    target = tmp_path / "target"
    installed_before = _installed_copies()
    pip_install = ["pip", "install", "--no-deps", "--no-index", "--ignore-installed"]
    _python_m(*pip_install, "--target", str(target), str(wheel), timeout=300)
    assert (target / "ei_widgets" / "__init__.py").is_file()
    assert _installed_copies() == installed_before
    env = {**os.environ, "JUPYTER_PATH": str(target / "share" / "jupyter")}
    listing = _python_m("jupyter", "labextension", "list", env=env, timeout=120)
    output = (listing.stdout + listing.stderr).splitlines()
    # the wheel's copy, listed under the folder it was installed to
    folder = output.index(str(target / "share" / "jupyter" / "labextensions"))
    line = output[folder + 1]
    assert NPM_NAME in line
    assert "enabled" in line
    assert "OK" in line


def test_building_from_source_without_node_says_what_to_install(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", ".yarn", "labextension"),
    )
    # the copy above left out both labextension folders: bring back the front end's sources only
    front_end_sources = shutil.ignore_patterns("node_modules", ".yarn", "lib", "ui-tests")
    shutil.copytree(ROOT / "labextension", source / "labextension", ignore=front_end_sources)
    assert not (source / "ei_widgets" / "labextension").exists()
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python").symlink_to(sys.executable)
    no_node = {**os.environ, "PATH": str(python_only)}
    built = _python_m(
        "build", "--wheel", "--no-isolation", str(source), env=no_node, timeout=300, check=False
    )
    assert built.returncode != 0
    assert "Node.js was not found on PATH" in built.stdout + built.stderr
    assert "needs no Node.js" in built.stdout + built.stderr
