"""Build the weightless ONNX graphs the calibration needs beyond the onnx wheel's light models.

    python benchmarks/calibration/models/build.py      # writes every model below as NAME.onnx

ResNet-18 and ResNet-152 (He et al. 2016, torchvision's layout: 7x7/2 stem, 3x3/2 max pool,
basic or bottleneck blocks with a 1x1 projection where the shape changes, global average pool,
1000-class Gemm) are written the way the wheel's ``light_resnet50.onnx`` is: every weight is a
``ConstantOfShape`` of its shape, so each file is a few kB while shapes, FLOPs and parameter counts
are those of the real network. Batch 1, 3x224x224 input, opset 13.

The TF Object Detection API's Faster R-CNN ResNet-50 (``faster_rcnn_resnet50.onnx``) is rebuilt
the same way from the facts of the published rows' model: TF-Slim's ResNet-50 v1 layout (the
stride on the 3x3 conv of a block's last unit, explicit padding before strided convs, batch norm
folded into biases), the RPN, the proposals' NMS, CropAndResize, block4 once per proposal, the
heads and the per-class NMS. Its multiply-accumulates match the published model's part by part
(tests/device/test_detector_graph.py).
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


# ---------------------------------------------------------------------------------------------
# Faster R-CNN ResNet-50 (TF Object Detection API, faster_rcnn_resnet50_coco_2018_01_28)

FRAME = (1080, 1920)  # the published rows' video frame, height x width
RESIZED = (576, 1024)  # keep_aspect_ratio_resizer(min 600, max 1024) of any 16:9 frame
MEANS = (123.68, 116.779, 103.939)
PROPOSALS = 100  # first_stage_max_proposals of the exported graph that was timed
ANCHORS_PER_CELL = 12  # scales 0.25, 0.5, 1, 2 x aspect ratios 0.5, 1, 2
CLASSES = 90  # COCO; the classifier has one more logit, for the background
DETECTIONS = 100  # max_total_detections, and max_detections_per_class


class _Detector(_Graph):
    """Adds what a detector needs: constants, explicit padding and Slim's ``conv2d_same``."""

    def const(self, values: list[float] | list[int], dtype: int = TensorProto.FLOAT) -> str:
        out = self.name("k")
        self.inits.append(helper.make_tensor(out, dtype, [len(values)], values))
        return out

    def conv(
        self,
        x: str,
        c_in: int,
        c_out: int,
        k: int,
        stride: int,
        relu: str | None,
        pads: tuple[int, int] = (0, 0),
    ) -> str:
        """A conv with its batch norm folded into a bias (as in the frozen graph)."""
        w = self.weight(c_out, c_in, k, k)
        b = self.weight(c_out)
        y = self.op(
            "Conv",
            [x, w, b],
            kernel_shape=[k, k],
            strides=[stride] * 2,
            pads=[pads[0], pads[0], pads[1], pads[1]],
        )
        if relu == "relu":
            y = self.op("Relu", [y])
        elif relu == "relu6":
            y = self.op("Clip", [y, self.const([0.0]), self.const([6.0])])
        return y

    def conv_same(self, x: str, c_in: int, c_out: int, k: int, stride: int) -> str:
        """Slim's ``conv2d_same``: SAME padding at stride 1; explicit pad + VALID when strided."""
        if stride == 1:
            return self.conv(x, c_in, c_out, k, 1, "relu", (k // 2, k // 2))
        total = k - 1
        begin, end = total // 2, total - total // 2
        padded = self.op(
            "Pad", [x, self.const([0, 0, begin, begin, 0, 0, end, end], TensorProto.INT64)]
        )
        return self.conv(padded, c_in, c_out, k, stride, "relu")


def _bottleneck_v1(g: _Detector, x: str, c_in: int, depth: int, stride: int) -> str:
    """Slim ``resnet_v1.bottleneck``: the stride on the 3x3 conv; a 1x1 max pool subsamples an
    identity shortcut."""
    bottleneck = depth // 4
    if depth == c_in:
        shortcut = (
            x
            if stride == 1
            else g.op("MaxPool", [x], kernel_shape=[1, 1], strides=[stride, stride])
        )
    else:
        shortcut = g.conv(x, c_in, depth, 1, stride, None)
    y = g.conv(x, c_in, bottleneck, 1, 1, "relu")
    y = g.conv_same(y, bottleneck, bottleneck, 3, stride)
    y = g.conv(y, bottleneck, depth, 1, 1, None)
    return g.op("Relu", [g.op("Add", [y, shortcut])])


def _block_v1(g: _Detector, x: str, c_in: int, depth: int, units: int, stride: int) -> str:
    """Slim ``resnet_v1_block``: ``units`` bottlenecks, the stride on the last one."""
    for i in range(units):
        x = _bottleneck_v1(g, x, c_in, depth, stride if i == units - 1 else 1)
        c_in = depth
    return x


def faster_rcnn_resnet50(proposals: int = PROPOSALS) -> onnx.ModelProto:
    """The TF Object Detection API's Faster R-CNN ResNet-50 on one 1080x1920 uint8 frame.

    What it computes is in ``docs/validation.md`` (facts in the calibration notes): cast, resize to
    576x1024 and mean subtraction; ResNet-50 v1 conv1..block3 at output stride 16; the RPN (3x3
    conv with ReLU6, 1x1 box and objectness convs, 12 anchors a cell); box decoding, clipping and
    NMS over every anchor, keeping ``proposals``; CropAndResize to 14x14 (RoiAlign, one sample a
    bin) and a 2x2 max pool; block4 once per proposal; the two heads; softmax, per-class decoding
    and per-class NMS (one suppression per class: batch ``CLASSES`` of one class each, as the API
    suppresses each class's own boxes) and the top ``DETECTIONS``. Nodes whose outputs have a
    data-dependent length (NonMaxSuppression) are followed, as in the frozen graph, by a fixed-size
    selection: the kept scores are scattered into a zero vector and TopK picks a fixed number.
    """
    g = _Detector()
    h, w = FRAME
    rh, rw = RESIZED
    fh, fw = rh // 16, rw // 16
    anchors = fh * fw * ANCHORS_PER_CELL
    i64 = TensorProto.INT64
    # Pre-processing (NHWC uint8 in, as image_tensor), then NCHW for the ONNX convolutions.
    x = g.op("Cast", ["image_tensor"], to=TensorProto.FLOAT)
    empty = g.const([])
    x = g.op(
        "Resize",
        [x, empty, g.const([1.0, rh / h, rw / w, 1.0])],
        mode="linear",
        coordinate_transformation_mode="asymmetric",
    )
    x = g.op("Sub", [x, g.const(list(MEANS))])
    x = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    # First stage: resnet_v1_50 conv1 .. block3, output stride 16.
    x = g.conv_same(x, 3, 64, 7, 2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])  # SAME
    x = _block_v1(g, x, 64, 256, 3, 2)
    x = _block_v1(g, x, 256, 512, 4, 2)
    features = _block_v1(g, x, 512, 1024, 6, 1)  # [1, 1024, fh, fw]
    # RPN
    r = g.conv(features, 1024, 512, 3, 1, "relu6", (1, 1))
    box_codes = g.conv(r, 512, ANCHORS_PER_CELL * 4, 1, 1, None)
    objectness = g.conv(r, 512, ANCHORS_PER_CELL * 2, 1, 1, None)
    codes = g.op(
        "Reshape",
        [g.op("Transpose", [box_codes], perm=[0, 2, 3, 1]), g.const([1, anchors, 4], i64)],
    )
    logits = g.op(
        "Reshape",
        [g.op("Transpose", [objectness], perm=[0, 2, 3, 1]), g.const([1, anchors, 2], i64)],
    )
    fg = g.op(
        "Slice",
        [
            g.op("Softmax", [logits], axis=-1),
            g.const([1], i64),
            g.const([2], i64),
            g.const([2], i64),
        ],
    )
    fg = g.op("Reshape", [fg, g.const([1, 1, anchors], i64)])
    # Proposals: decode against the anchors (scales 10, 10, 5, 5), clip, NMS over every anchor.
    anchor_boxes = g.weight(1, anchors, 4)
    boxes = _decode(g, codes, anchor_boxes)
    boxes = g.op("Clip", [boxes, g.const([0.0]), g.const([1.0])])
    kept = g.op(
        "NonMaxSuppression", [boxes, fg, g.const([proposals], i64), g.const([0.7]), g.const([0.0])]
    )
    order = _fixed_size(g, kept, g.op("Reshape", [fg, g.const([anchors], i64)]), anchors, proposals)
    rois = g.op("Gather", [g.op("Reshape", [boxes, g.const([anchors, 4], i64)]), order], axis=0)
    # Crop and resize each proposal to 14x14, then a 2x2 max pool: [P, 1024, 7, 7].
    pixel_rois = g.op("Mul", [rois, g.const([float(fh), float(fw), float(fh), float(fw)])])
    zeros = g.op("Cast", [g.op("Mul", [order, g.const([0], i64)])], to=i64)
    crops = g.op(
        "RoiAlign",
        [features, pixel_rois, zeros],
        output_height=14,
        output_width=14,
        sampling_ratio=1,
        spatial_scale=1.0,
    )
    y = g.op("MaxPool", [crops], kernel_shape=[2, 2], strides=[2, 2])
    # Second stage: block4 (3 units, 2048 out, stride 1) once per proposal, then the heads.
    y = _block_v1(g, y, 1024, 2048, 3, 1)
    y = g.op("Flatten", [g.op("GlobalAveragePool", [y])])
    class_logits = g.op("Gemm", [y, g.weight(CLASSES + 1, 2048), g.weight(CLASSES + 1)], transB=1)
    refined = g.op("Gemm", [y, g.weight(CLASSES * 4, 2048), g.weight(CLASSES * 4)], transB=1)
    # Post-processing: softmax, per-class decoding and NMS, the top DETECTIONS.
    probs = g.op("Softmax", [class_logits], axis=-1)
    scores = g.op(
        "Slice", [probs, g.const([1], i64), g.const([CLASSES + 1], i64), g.const([1], i64)]
    )
    class_scores = g.op(
        "Reshape", [g.op("Transpose", [scores], perm=[1, 0]), g.const([CLASSES, 1, proposals], i64)]
    )
    refined = g.op(
        "Transpose",
        [g.op("Reshape", [refined, g.const([proposals, CLASSES, 4], i64)])],
        perm=[1, 0, 2],
    )
    per_class_rois = g.op(
        "Expand",
        [g.op("Unsqueeze", [rois, g.const([0], i64)]), g.const([CLASSES, proposals, 4], i64)],
    )
    class_boxes = g.op(
        "Clip", [_decode(g, refined, per_class_rois), g.const([0.0]), g.const([1.0])]
    )
    kept = g.op(
        "NonMaxSuppression",
        [class_boxes, class_scores, g.const([DETECTIONS], i64), g.const([0.6]), g.const([0.0])],
    )
    flat = CLASSES * proposals
    best = _fixed_size(
        g,
        kept,
        g.op("Reshape", [class_scores, g.const([flat], i64)]),
        flat,
        DETECTIONS,
        classes=True,
    )
    g.nodes.append(
        helper.make_node(
            "Gather",
            [g.op("Reshape", [class_boxes, g.const([flat, 4], i64)]), best],
            ["detection_boxes"],
            axis=0,
        )
    )
    g.nodes.append(
        helper.make_node(
            "Gather",
            [g.op("Reshape", [class_scores, g.const([flat], i64)]), best],
            ["detection_scores"],
            axis=0,
        )
    )
    graph = helper.make_graph(
        g.nodes,
        "faster_rcnn_resnet50_coco",
        [helper.make_tensor_value_info("image_tensor", TensorProto.UINT8, [1, h, w, 3])],
        [
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [DETECTIONS, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [DETECTIONS]),
        ],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "ei_widgets calibration"
    onnx.checker.check_model(model)
    return model


def _decode(g: _Detector, codes: str, anchors: str) -> str:
    """Faster R-CNN box decoding (centre-size coder, scales 10, 10, 5, 5): elementwise work of the
    right size, [ymin, xmin, ymax, xmax] in and out."""
    scaled = g.op("Div", [codes, g.const([10.0, 10.0, 5.0, 5.0])])
    centre_size = g.op("Sub", [anchors, g.op("Mul", [anchors, g.const([0.5, 0.5, 0.5, 0.5])])])
    grown = g.op("Mul", [g.op("Exp", [scaled]), centre_size])
    return g.op("Add", [grown, g.op("Mul", [scaled, centre_size])])


def _fixed_size(g: _Detector, kept: str, scores: str, n: int, k: int, classes: bool = False) -> str:
    """The ``k`` best of ``n`` scores among those NMS kept, as fixed-size indices."""
    i64 = TensorProto.INT64
    col = g.op(
        "Slice", [kept, g.const([1 if classes else 2], i64), g.const([3], i64), g.const([1], i64)]
    )
    index = g.op("Reshape", [col, g.const([-1], i64)])
    if classes:  # (batch = class, 0, box) -> class * proposals + box
        batch = g.op(
            "Reshape",
            [
                g.op("Slice", [kept, g.const([0], i64), g.const([1], i64), g.const([1], i64)]),
                g.const([-1], i64),
            ],
        )
        box = g.op(
            "Reshape",
            [
                g.op("Slice", [kept, g.const([2], i64), g.const([3], i64), g.const([1], i64)]),
                g.const([-1], i64),
            ],
        )
        index = g.op("Add", [g.op("Mul", [batch, g.const([n // CLASSES], i64)]), box])
    picked = g.op("Gather", [scores, index], axis=0)
    mask = g.op("ScatterElements", [g.op("Mul", [scores, g.const([0.0])]), index, picked], axis=0)
    topk_values = g.name("topk_values")
    topk_indices = g.name("topk_indices")
    g.nodes.append(
        helper.make_node("TopK", [mask, g.const([k], i64)], [topk_values, topk_indices], axis=-1)
    )
    return topk_indices


MODELS = {
    "resnet18": lambda: resnet((2, 2, 2, 2), bottleneck=False, name="resnet18"),
    "resnet152": lambda: resnet((3, 8, 36, 3), bottleneck=True, name="resnet152"),
    "faster_rcnn_resnet50": faster_rcnn_resnet50,
}


def main() -> None:
    for name, build in MODELS.items():
        path = HERE / f"{name}.onnx"
        onnx.save(build(), path)
        print(
            f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
            f"{path.stat().st_size:,} bytes"
        )


if __name__ == "__main__":
    main()
