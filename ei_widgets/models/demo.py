"""Real architectures to try the extension on, with nothing to download.

The ``onnx`` wheel ships nine classic image models in ``onnx/backend/test/data/light/`` with
their weights replaced by ``ConstantOfShape`` nodes: full graphs, real shapes and parameter
counts, a few kilobytes each. They are found inside the installed package, never copied.
"""

from __future__ import annotations

import importlib.util
import pathlib

from ei_widgets.errors import ModelLoadError, UnknownNameError

DEMO_NAMES: tuple[str, ...] = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)
_PREFIX = "light_"


def light_models_dir() -> pathlib.Path:
    """The directory of the installed onnx package that holds the light models."""
    spec = importlib.util.find_spec("onnx")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("The onnx package is not installed, so its demo models are missing.")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    return root / "backend" / "test" / "data" / "light"


def demo_models() -> dict[str, pathlib.Path]:
    """Short name (``"resnet50"``) -> path of each light model shipped with onnx."""
    folder = light_models_dir()
    found = {name: folder / f"{_PREFIX}{name}.onnx" for name in DEMO_NAMES}
    missing = [name for name, path in found.items() if not path.is_file()]
    if missing:
        raise ModelLoadError(
            f"The installed onnx package lacks demo models {', '.join(missing)} in {folder}."
        )
    return found


def demo_model(name: str) -> pathlib.Path:
    """Path of one demo model, by short name (``"vgg19"``) or file stem (``"light_vgg19"``)."""
    short = name.removeprefix(_PREFIX).removesuffix(".onnx")
    if short not in DEMO_NAMES:
        raise UnknownNameError("demo model", name, DEMO_NAMES)
    return demo_models()[short]
