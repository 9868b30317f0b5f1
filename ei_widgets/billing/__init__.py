"""The bill: exact ``money``, the pure ``charges`` of a stretch of time, ``budgets``, the running
``meters`` (per-second billing of the notebook instance and the accelerator), the SQLite
``ledger`` with its file, history and writer, and ``usage()`` read back from it.

May import ``ei_widgets.errors``, ``ei_widgets.common`` and ``ei_widgets.device``.
"""
