"""demo: the light models shipped inside the onnx wheel, found in place."""

from __future__ import annotations

import onnx
import pytest

from ei_widgets.errors import UnknownNameError
from ei_widgets.models.demo import DEMO_NAMES, demo_model, demo_models, light_models_dir


def test_nine_models_inside_the_onnx_package() -> None:
    found = demo_models()
    assert sorted(found) == sorted(DEMO_NAMES) and len(found) == 9
    package = onnx.__file__.rsplit("/", 1)[0]
    for path in found.values():
        assert str(path).startswith(package)
        assert path.is_file() and path.name.startswith("light_")
    assert light_models_dir().name == "light"


def test_demo_model_by_either_name() -> None:
    assert demo_model("vgg19") == demo_model("light_vgg19") == demo_models()["vgg19"]


def test_unknown_demo_model() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet50'"):
        demo_model("resnet5")
