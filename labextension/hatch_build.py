"""Build hook: say clearly what is missing when the front end must be built without Node.js.

hatch-jupyter-builder fails deep inside a pip traceback when ``node`` is absent. This hook runs
first and only when the built extension is not there yet: an installed wheel never needs Node.js.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILT = Path("ei_widgets") / "labextension" / "static" / "style.js"
NEEDED = "Node.js 20.19 or newer (or 22.12 or newer) and npm"


def node_problem(node: str | None) -> str | None:
    """Why ``node`` cannot build the front end, or None when it can."""
    if node is None:
        return "Node.js was not found on PATH."
    found = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.(\d+)", found.stdout.strip())
    if match is None:
        return f"{node} --version printed {found.stdout.strip()!r}, not a Node.js version."
    major, minor = int(match[1]), int(match[2])
    if (major, minor) < (20, 19) or (major == 21) or (major == 22 and minor < 12):
        return f"Node.js {found.stdout.strip()} is too old for the front-end build."
    return None


class NodeCheckHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if (Path(self.root) / BUILT).exists():
            return
        problem = node_problem(shutil.which("node"))
        if problem:
            raise RuntimeError(
                f"{problem} Building ei-widgets from source builds its JupyterLab extension, "
                f"which needs {NEEDED} (https://nodejs.org). Installing a built wheel of "
                "ei-widgets needs no Node.js."
            )
