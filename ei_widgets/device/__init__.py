"""The simulated device: the ``catalog`` of accelerators, instances and prices, the latency and
memory ``estimate``, the kernel's one attached ``accelerator``, ``sessions`` that run for real at
simulated speed, the ``runs`` that load them, their ``metrics``, ``sizing`` (``recommend()``) and
what fp16 does to a model's outputs (``fp16``, ``fp16_conversion``).

May import ``ei_widgets.errors``, ``ei_widgets.common``, ``ei_widgets.models`` and
``ei_widgets.profiling``.
"""
