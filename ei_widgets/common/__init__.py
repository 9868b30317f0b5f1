"""What every room may use: formatting of figures (``units``), exact money and its one formatter
(``money``), callbacks kept under a lock (``callbacks``) and the building blocks of our HTML
(``html``) and plain text (``text``).

May import only ``ei_widgets.errors``.
"""
