"""The light demo models with seeded random weights, for checks that need a real classifier.

The light models shipped with onnx make every weight with ``ConstantOfShape`` (one value per
tensor), so every class scores the same; the fp16 tests and benchmark need outputs that differ.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ei_widgets.models.demo import demo_model


def with_weights(name: str, seed: int = 0) -> onnx.ModelProto:
    """A light model with seeded random weights in place of its ConstantOfShape ones.

    The light models' weights are constants (every class scores the same), which would make any
    top-1 agreement a tie; random weights of variance 1/fan-in give a real classifier's spread
    without saturating a deep network's softmax. Batch norms get the identity (unit scale and
    variance, zero bias and mean). The shape vectors the ConstantOfShape nodes read are dropped.
    """
    model = onnx.load(demo_model(name))
    graph = model.graph
    shapes = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    ones = set()
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            ones.update({node.input[1], node.input[4]})
    rng = np.random.default_rng(seed)
    kept, weights, used = [], [], set()
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            used.update(node.input)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        out = node.output[0]
        if out in ones:
            value = np.ones(shape, np.float32)
        elif len(shape) == 1:
            value = np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        weights.append(numpy_helper.from_array(value, out))
    del graph.node[:]
    graph.node.extend(kept)
    inits = [t for t in graph.initializer if t.name in used]
    dropped = {t.name for t in graph.initializer} - used
    inputs = [i for i in graph.input if i.name not in dropped]  # old graphs list them as inputs
    del graph.initializer[:], graph.input[:]
    graph.initializer.extend(inits + weights)
    graph.input.extend(inputs)
    return model
