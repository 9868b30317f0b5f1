"""The notebook: what ``%load_ext`` sets up (``extension``), the ``%ei*`` ``magics``, the kernel
half of the JupyterLab protocol (``comm``) and the widget dashboard (``views``).

The only package that may import IPython, ipywidgets and bqplot. May import everything else of
ours; nothing of ours but the facade's ``dashboard()`` and ``load_ipython_extension`` imports it.
"""
