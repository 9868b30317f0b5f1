"""The models in the kernel: what a kernel object is (``types``), how each kind becomes an ONNX
graph (``onnx_kinds`` and the framework plug-ins in ``frameworks``), ``loading`` one, the cheap
``discovery`` of a namespace's models, ONNX element types (``dtypes``) and the wheel's ``demo``
models.

May import ``ei_widgets.errors`` and ``ei_widgets.common``.
"""
