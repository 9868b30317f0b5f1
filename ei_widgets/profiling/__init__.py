"""The profile of a graph: parameters, FLOPs and bytes per node, peak activation memory.

``profiler`` is the entry (``Profile``, ``profile()``); its passes are ``graph_order``,
``shape_inference``, ``input_binding``, ``liveness`` and ``op_costs`` (FLOPs and bytes per op
type). Pure Python over onnx's protobuf and shape inference.

May import ``ei_widgets.errors``, ``ei_widgets.common`` and ``ei_widgets.models``.
"""
