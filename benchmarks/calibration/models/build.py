"""Build the weightless ONNX graphs the calibration needs beyond the onnx wheel's light models.

    python benchmarks/calibration/models/build.py      # writes resnet18.onnx and resnet152.onnx

ResNet-18 and ResNet-152 (He et al. 2016, torchvision's layout: 7x7/2 stem, 3x3/2 max pool,
basic or bottleneck blocks with a 1x1 projection where the shape changes, global average pool,
1000-class Gemm) are written the way the wheel's ``light_resnet50.onnx`` is: every weight is a
``ConstantOfShape`` of its shape, so each file is a few kB while shapes, FLOPs and parameter counts
are those of the real network. Batch 1, 3x224x224 input, opset 13.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).resolve().parent
OPSET = 13


class _Graph:
    """Collects nodes and shape initializers while a network is written layer by layer."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def weight(self, *shape: int) -> str:
        out = self.name("w")
        dims = helper.make_tensor(f"{out}__shape", TensorProto.INT64, [len(shape)], list(shape))
        self.inits.append(dims)
        value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.02])
        self.nodes.append(helper.make_node("ConstantOfShape", [dims.name], [out], value=value))
        return out

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv_bn(self, x: str, c_in: int, c_out: int, k: int, stride: int, relu: bool) -> str:
        w = self.weight(c_out, c_in, k, k)
        pad = k // 2
        y = self.op("Conv", [x, w], kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4)
        bn = [self.weight(c_out) for _ in range(4)]  # scale, bias, mean, var
        y = self.op("BatchNormalization", [y, *bn], epsilon=1e-5)
        return self.op("Relu", [y]) if relu else y


def _block(g: _Graph, x: str, c_in: int, width: int, stride: int, bottleneck: bool) -> str:
    c_out = width * 4 if bottleneck else width
    if bottleneck:
        y = g.conv_bn(x, c_in, width, 1, 1, relu=True)
        y = g.conv_bn(y, width, width, 3, stride, relu=True)
        y = g.conv_bn(y, width, c_out, 1, 1, relu=False)
    else:
        y = g.conv_bn(x, c_in, width, 3, stride, relu=True)
        y = g.conv_bn(y, width, width, 3, 1, relu=False)
    shortcut = x if (stride == 1 and c_in == c_out) else g.conv_bn(x, c_in, c_out, 1, stride, False)
    return g.op("Relu", [g.op("Add", [y, shortcut])])


def resnet(layers: tuple[int, int, int, int], bottleneck: bool, name: str) -> onnx.ModelProto:
    """A torchvision-layout ResNet with ``layers`` blocks per stage."""
    g = _Graph()
    x = g.op("MaxPool", [g.conv_bn("data", 3, 64, 7, 2, relu=True)], kernel_shape=[3, 3],
             strides=[2, 2], pads=[1, 1, 1, 1])  # fmt: skip
    c_in = 64
    for stage, blocks in enumerate(layers):
        width = 64 * 2**stage
        for i in range(blocks):
            x = _block(g, x, c_in, width, 2 if (i == 0 and stage > 0) else 1, bottleneck)
            c_in = width * 4 if bottleneck else width
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    logits = g.op("Gemm", [x, g.weight(1000, c_in), g.weight(1000)], transB=1)
    g.nodes.append(helper.make_node("Softmax", [logits], ["prob"], axis=1))
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1000])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "ei_widgets calibration"
    onnx.checker.check_model(model)
    return model


MODELS = {
    "resnet18": lambda: resnet((2, 2, 2, 2), bottleneck=False, name="resnet18"),
    "resnet152": lambda: resnet((3, 8, 36, 3), bottleneck=True, name="resnet152"),
}


def main() -> None:
    for name, build in MODELS.items():
        path = HERE / f"{name}.onnx"
        onnx.save(build(), path)
        print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
              f"{path.stat().st_size:,} bytes")  # fmt: skip


if __name__ == "__main__":
    main()
