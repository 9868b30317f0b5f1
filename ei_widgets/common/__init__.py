"""What every room may use: formatting of figures (``units``), callbacks kept under a lock
(``callbacks``) and the building blocks of our HTML (``html``).

Imports nothing of ours but ``ei_widgets.errors``.
"""
