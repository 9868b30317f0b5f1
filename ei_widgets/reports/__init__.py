"""Reports the magics and the command line share: plain-text tables (``plain_text``).

May import the core (``models``, ``profiling``, ``device``, ``billing``) and ``common``.
"""
