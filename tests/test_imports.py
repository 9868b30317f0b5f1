"""Imports go one way: each module imports alone, module-level imports form a DAG, and the core
needs no widget library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ei_widgets"

# The modules that live in the notebook and may import ipywidgets, bqplot or IPython; everything
# else (the core, the package itself, the command line) must work from a plain script.
WIDGET_SIDE = (
    "ei_widgets.notebook.views",
    "ei_widgets.notebook.magics",
    "ei_widgets.notebook.extension",
    "ei_widgets.notebook.comm",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(
    tree: ast.Module, in_functions: bool = False
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (and, if ``in_functions``, when its functions
    run); never those under ``if TYPE_CHECKING:``, which only the type checker reads."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not in_functions:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            # class bodies, try/with/if blocks at module level run at import time
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    stack.append(child)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    stack.extend(handler.body)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # `from . import x` in a package's __init__ is relative to the package itself
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, path: Path, every_import: bool = False) -> set[str]:
    """The ei_widgets modules that ``module`` imports (at module level unless ``every_import``)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in _module_level_imports(tree, in_functions=every_import):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            source = _resolve(module, path.name == "__init__.py", node)
            # `from pkg import sub` imports the submodule when there is one, else the package
            names = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                for a in node.names
            ]
        for name in names:
            # importing a.b.c runs a, a.b and a.b.c; the importer's own parent packages have
            # already started running by then, so they are not edges
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in MODULES and target != module and not module.startswith(target + "."):
                    found.add(target)
    return found


def import_graph(every_import: bool = False) -> dict[str, set[str]]:
    return {module: _targets(module, path, every_import) for module, path in MODULES.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles found by removing one edge of each cycle until the graph sorts (each one is new)."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles: list[list[str]] = []
    while True:
        try:
            tuple(TopologicalSorter(graph).static_order())
            return cycles
        except CycleError as error:
            cycle: list[str] = error.args[1]  # [a, b, ..., a], each importing... the previous one
            cycles.append(cycle[::-1])
            # graphlib reports a node's predecessors; our edges point importer -> imported
            graph[cycle[1]].discard(cycle[0])


def test_the_graph_reads_module_level_imports_only(tmp_path: Path) -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import ei_widgets.device.catalog\n"
        "from . import units\n"
        "from .frameworks import base\n"
        "try:\n"
        "    from ei_widgets import estimate\n"
        "except ImportError:\n"
        "    from ei_widgets import errors\n"
        "if TYPE_CHECKING:\n"
        "    from ei_widgets import profile\n"
        "def later():\n"
        "    from ei_widgets import session\n"
    )
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1)
    assert _resolve("ei_widgets.billing.meters", False, node) == "ei_widgets"
    assert _resolve("ei_widgets.notebook.views", True, node) == "ei_widgets.notebook.views"
    path = tmp_path / "sample.py"
    path.write_text(source)
    targets = _targets("ei_widgets.sample", path)
    assert "ei_widgets.profiling.profiler" not in targets
    assert "ei_widgets.device.sessions" not in targets
    deferred_too = _targets("ei_widgets.sample", path, every_import=True)
    assert "ei_widgets.device.sessions" in deferred_too
    assert "ei_widgets.profiling.profiler" not in deferred_too
    assert "ei_widgets" not in targets  # the importer's own package
    assert {
        "ei_widgets.device.catalog",
        "ei_widgets.common.units",
        "ei_widgets.models.frameworks",
        "ei_widgets.models.frameworks.base",
        "ei_widgets.device.estimate",
        "ei_widgets.errors",
    } <= targets


def test_cycles_are_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}}
    cycles = find_cycles(graph)
    assert len(cycles) == 2
    assert {frozenset(c) for c in cycles} == {frozenset("abc"), frozenset("de")}
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        for importer, imported in pairwise(cycle):
            assert imported in graph[importer]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_module_level_imports_form_a_dag() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_cycle_hides_in_deferred_imports() -> None:
    # An import inside a function still makes the two modules depend on each other; deferring it
    # only hides the cycle from the interpreter.
    cycles = find_cycles(import_graph(every_import=True))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# Runs in one interpreter: before each import every ei_widgets module (and every widget library)
# is dropped from sys.modules, so each module is imported first, as `import ei_widgets.x` in a
# fresh interpreter would; one interpreter per module would take minutes.
_IMPORT_EACH = """
import importlib, json, sys, traceback
widgets = ("ipywidgets", "bqplot", "IPython")
result = {}
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("ei_widgets", *widgets)]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        error = None
    except BaseException:
        error = traceback.format_exc(limit=-4)
    result[name] = {"error": error, "widgets": [w for w in widgets if w in sys.modules]}
with open(sys.argv[1], "w") as out:
    json.dump(result, out)
"""


def _widget_side(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in WIDGET_SIDE)


@pytest.fixture(scope="module")
def imported_alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("imports") / "result.json"
    # the core first, so a widget library one of them loads is not blamed on another
    order = sorted(MODULES, key=lambda m: (_widget_side(m), m))
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, str(out), *order],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result: dict[str, dict[str, Any]] = json.loads(out.read_text())
    return result


def test_each_module_imports_alone_in_a_fresh_interpreter(
    imported_alone: dict[str, dict[str, Any]],
) -> None:
    assert set(imported_alone) == set(MODULES)
    failed = {m: r["error"] for m, r in imported_alone.items() if r["error"]}
    assert not failed, "\n".join(f"{m}:\n{e}" for m, e in failed.items())


def test_the_core_imports_no_widget_library(imported_alone: dict[str, dict[str, Any]]) -> None:
    core = [m for m in MODULES if not _widget_side(m)]
    assert {
        "ei_widgets",
        "ei_widgets.device.catalog",
        "ei_widgets.billing.meters",
        "ei_widgets.common.units",
    } <= set(core)
    assert not {m: imported_alone[m]["widgets"] for m in core if imported_alone[m]["widgets"]}
    # and the check sees a widget library when one is loaded
    assert "ipywidgets" in imported_alone["ei_widgets.notebook.views.dashboard"]["widgets"]
