"""The house: packages by concept in layers, imports one way (annotations and deferred imports
included), each module importable alone, the core free of widget libraries, and the picture of the
packages in docs/architecture.md drawn from the real imports.

    python -m tests.test_house     # redraws the picture in docs/architecture.md
"""

from __future__ import annotations

import ast
import importlib
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

# The package that lives in the notebook and may import ipywidgets, bqplot or IPython; everything
# else (the core, the package itself, the command line) must work from a plain script.
WIDGET_SIDE = ("ei_widgets.notebook",)

# The packages from the bottom up: each may import only those before it (and itself). The facade
# (ei_widgets/__init__.py) stands on top of them all; the notebook and the command line are two
# surfaces side by side, neither importing the other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("common",),
    ("models",),
    ("profiling",),
    ("device",),
    ("billing",),
    ("endpoint",),
    ("reports",),
    ("notebook", "cli"),
)
LAYER_OF = {package: i for i, layer in enumerate(LAYERS) for package in layer}
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PICTURE_START = "<!-- packages: drawn by `python -m tests.test_house`; do not edit -->"
PICTURE_END = "<!-- end of packages -->"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()
# a package's __main__ is a script (it runs the command line), not a module to import
IMPORTABLE = [m for m in MODULES if not m.endswith(".__main__")]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(
    tree: ast.Module, in_functions: bool = False
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported; with ``in_functions``, every import: those
    its functions run and those under ``if TYPE_CHECKING:``, which only the type checker reads
    but which tie the two modules together all the same."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not in_functions:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend([*node.body, *node.orelse] if in_functions else node.orelse)
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
        "from . import estimate\n"
        "from ..common import units\n"
        "try:\n"
        "    from ei_widgets.models import frameworks\n"
        "except ImportError:\n"
        "    from ei_widgets import errors\n"
        "if TYPE_CHECKING:\n"
        "    from ei_widgets.profiling.result import Profile\n"
        "def later():\n"
        "    from ei_widgets.device import sessions\n"
    )
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 2)
    assert _resolve("ei_widgets.device.sample", False, node) == "ei_widgets.common"
    assert _resolve("ei_widgets.notebook.views", True, node) == "ei_widgets.notebook.common"
    path = tmp_path / "sample.py"
    path.write_text(source)
    targets = _targets("ei_widgets.device.sample", path)
    assert "ei_widgets.profiling.result" not in targets
    assert "ei_widgets.device.sessions" not in targets
    every = _targets("ei_widgets.device.sample", path, every_import=True)
    assert {"ei_widgets.device.sessions", "ei_widgets.profiling.result"} <= every
    assert "ei_widgets.device" not in targets  # the importer's own package
    assert {
        "ei_widgets.device.catalog",
        "ei_widgets.device.estimate",
        "ei_widgets.common",
        "ei_widgets.common.units",
        "ei_widgets.models",
        "ei_widgets.models.frameworks",
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


def test_imports_form_a_dag_annotations_and_deferred_imports_included() -> None:
    # An import under TYPE_CHECKING or inside a function still makes the two modules depend on
    # each other; deferring it only hides the cycle from the interpreter.
    cycles = find_cycles(import_graph(every_import=True))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _package(module: str) -> str | None:
    """The top-level package (or module) of ours that ``module`` belongs to; None for the facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph() -> dict[str, set[str]]:
    """Which of our packages imports which (every import), the facade left out."""
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph(every_import=True).items():
        source = _package(module)
        if source is None:
            continue
        imported = {_package(t) for t in targets} - {source, None}
        graph.setdefault(source, set()).update(p for p in imported if p is not None)
    return graph


def test_every_package_has_a_layer_and_says_what_it_owns() -> None:
    graph = package_graph()
    assert set(graph) == set(LAYER_OF), "put each package in LAYERS (bottom up)"
    for package in graph:
        init = PACKAGE / package / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
            assert "May import" in doc or "may import" in doc, f"{init}: say what it may import"


def test_packages_import_only_the_layers_below() -> None:
    upward = {
        (source, target)
        for source, targets in package_graph().items()
        for target in targets
        if LAYER_OF[target] >= LAYER_OF[source]
    }
    assert not upward, f"imports that go up or sideways between packages: {sorted(upward)}"


def test_deferred_imports_only_keep_widget_libraries_out() -> None:
    # The one reason to import inside a function: the facade and %load_ext must not pull in
    # IPython or ipywidgets before a notebook asks for them.
    needless = {
        (module, target)
        for module, path in MODULES.items()
        for target in _targets(module, path, every_import=True) - _targets(module, path)
        if not _widget_side(target)
    }
    assert not needless, f"imports deferred for no reason: {sorted(needless)}"


def package_picture() -> str:
    """The packages bottom up, each with the packages it imports (every arrow points down)."""
    graph = package_graph()
    width = max(len(p) for p in LAYER_OF)
    lines = []
    for layer in reversed(LAYERS):
        for package in layer:
            below = sorted(graph.get(package, ()), key=lambda p: (-LAYER_OF[p], p))
            arrow = " ──► " + ", ".join(below) if below else ""
            lines.append(f"{package.ljust(width)}{arrow}".rstrip())
    return "\n".join(["```", "ei_widgets (the facade) ──► every package below", *lines, "```"])


def _architecture_with(picture: str) -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start, end = text.index(PICTURE_START), text.index(PICTURE_END)
    return text[: start + len(PICTURE_START)] + "\n" + picture + "\n" + text[end:]


def test_the_architecture_picture_is_drawn_from_the_imports() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert PICTURE_START in text and PICTURE_END in text
    assert text == _architecture_with(package_picture()), (
        "docs/architecture.md's picture of the packages is stale: run python -m tests.test_house"
    )


# A room is one module plus one line in its registry: (package, registry, what each module exports)
ROOMS = (
    ("ei_widgets.models.frameworks", "PLUGINS", "PLUGIN"),
    ("ei_widgets.notebook.magics", "MAGICS", "MAGIC"),
    ("ei_widgets.cli", "COMMANDS", "COMMAND"),
)
NOT_ROOMS = {"__init__", "__main__", "base"}


@pytest.mark.parametrize(("package", "registry", "export"), ROOMS)
def test_every_room_is_one_module_and_one_registration(
    package: str, registry: str, export: str
) -> None:
    folder = PACKAGE.joinpath(*package.split(".")[1:])
    rooms = sorted(p.stem for p in folder.glob("*.py") if p.stem not in NOT_ROOMS)
    assert rooms, f"no rooms found in {folder}"
    registered = getattr(importlib.import_module(package), registry)
    exported = [getattr(importlib.import_module(f"{package}.{room}"), export) for room in rooms]
    missing = [room for room, item in zip(rooms, exported, strict=True) if item not in registered]
    assert not missing, f"{package}: modules whose {export} is not in {registry}: {missing}"
    assert len(registered) == len(rooms), f"{package}.{registry} lists something that is no room"


def test_every_dashboard_tab_is_registered_once() -> None:
    views = PACKAGE / "notebook" / "views"
    tabs = importlib.import_module("ei_widgets.notebook.views.tabs").TABS
    exported = [
        module.TAB
        for path in sorted(views.glob("*.py"))
        if hasattr(
            module := importlib.import_module(f"ei_widgets.notebook.views.{path.stem}"), "TAB"
        )
    ]
    assert exported and sorted(t.title for t in exported) == sorted(t.title for t in tabs)
    assert all(tab in tabs for tab in exported)


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
    order = sorted(IMPORTABLE, key=lambda m: (_widget_side(m), m))
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
    assert set(imported_alone) == set(IMPORTABLE)
    failed = {m: r["error"] for m, r in imported_alone.items() if r["error"]}
    assert not failed, "\n".join(f"{m}:\n{e}" for m, e in failed.items())


def test_the_core_imports_no_widget_library(imported_alone: dict[str, dict[str, Any]]) -> None:
    core = [m for m in IMPORTABLE if not _widget_side(m)]
    assert {
        "ei_widgets",
        "ei_widgets.device.catalog",
        "ei_widgets.billing.meters",
        "ei_widgets.common.units",
    } <= set(core)
    assert not {m: imported_alone[m]["widgets"] for m in core if imported_alone[m]["widgets"]}
    # and the check sees a widget library when one is loaded
    assert "ipywidgets" in imported_alone["ei_widgets.notebook.views.dashboard"]["widgets"]


if __name__ == "__main__":
    ARCHITECTURE.write_text(_architecture_with(package_picture()), encoding="utf-8")
    print(f"wrote the picture of the packages in {ARCHITECTURE}")
