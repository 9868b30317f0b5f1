"""The IPython extension hook: what ``%load_ext ei_widgets`` sets up and ``%unload_ext`` removes.

Loading registers the magics, starts the cost meter and, inside a Jupyter kernel, the comm target
the JupyterLab picker talks to. Once a cell has imported TensorFlow, it starts TensorFlow's
converting process ahead of the first profile. It also shows an ei_widgets error raised by a cell
(say ``ei_widgets.session('/etc/passwd')``) as its one line, like IPython's own usage errors: the
message says what is wrong and what to do, and our frames add nothing (``%tb`` still shows them).
Everything it sets up is remembered per shell so that unloading
undoes exactly that, and loading again (``%reload_ext``) is harmless.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ei_widgets.billing import meters
from ei_widgets.errors import EIError
from ei_widgets.models.frameworks import tensorflow as tensorflow_models  # imports no TensorFlow

# shell -> what load_ipython_extension set up on it, for unload to undo
_loaded: dict[int, list[str]] = {}

_RED, _RESET = "\x1b[0;31m", "\x1b[0m"


def one_line_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """IPython's custom handler for ei_widgets errors: one red line, the cell fails."""
    shell._get_exc_info((etype, value, tb))  # keeps it for %tb and %debug
    stb = [f"{_RED}{etype.__name__}{_RESET}: {value}"]
    shell._showtraceback(etype, value, stb)  # what IPython and ipykernel send as the error
    return stb


def in_kernel(ipython: Any) -> bool:
    """True inside a Jupyter kernel (a front end can show widgets and open comms)."""
    return getattr(ipython, "kernel", None) is not None


def warm_converters(result: Any = None) -> None:
    """After each cell: once the user has imported TensorFlow, have its converting process import
    it too, ahead of the first profile (``tensorflow.warm_up``; nothing when it waits already)."""
    if "tensorflow" in sys.modules:
        tensorflow_models.warm_up()


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext ei_widgets``."""
    if id(ipython) in _loaded:
        return
    from ei_widgets.notebook import magics  # IPython: only once a shell loads us

    parts = ["magics"]
    magics.register(ipython)
    if not ipython.custom_exceptions:  # never replace a handler someone else set
        ipython.set_custom_exc((EIError,), one_line_error)
        parts.append("errors")
    meters.start_meter()
    parts.append("meter")
    ipython.events.register("post_run_cell", warm_converters)
    parts.append("warm")
    if in_kernel(ipython):
        from ei_widgets.notebook import comm  # the comm package: only inside a kernel

        comm.register(ipython)
        parts.append("comm")
    _loaded[id(ipython)] = parts

    version = importlib.import_module("ei_widgets").__version__
    where = (
        "the JupyterLab accelerator picker is connected"
        if in_kernel(ipython)
        else "no Jupyter front end here, so no picker or dashboard; magics and the API work"
    )
    names = ", ".join(f"%{magic.name}" for magic in magics.MAGICS)
    print(f"ei_widgets {version}: {names} are available; {where}.")


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext ei_widgets``: undo what loading set up."""
    parts = _loaded.pop(id(ipython), [])
    if "errors" in parts:
        ipython.set_custom_exc((), None)
    if "warm" in parts:
        ipython.events.unregister("post_run_cell", warm_converters)
        tensorflow_models.stop_spare()
    if "comm" in parts:
        from ei_widgets.notebook import comm

        comm.unregister(ipython)
    if "meter" in parts:
        meters.stop_meter()
    if "magics" in parts:
        from ei_widgets.notebook import magics

        magics.unregister(ipython)
