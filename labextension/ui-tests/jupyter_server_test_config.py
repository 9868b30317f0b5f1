"""Jupyter Server configuration for the browser tests (started by Playwright's webServer).

Galata's helper turns off authentication and roots the server in a fresh temporary folder; never
use this configuration for a real server. ``run.sh`` sets the port (``EI_UI_PORT``), the folder of
the freshly built front end (``EI_UI_LABEXTENSIONS``) and ``TMPDIR``.
"""

import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (provided by the config loader)
configure_jupyter_server(c)

c.ServerApp.port = int(os.environ.get("EI_UI_PORT", "8888"))
c.ServerApp.ip = "127.0.0.1"
if hasattr(os, "geteuid") and os.geteuid() == 0:
    c.ServerApp.allow_root = True

extra = os.environ.get("EI_UI_LABEXTENSIONS")
if extra:
    # The freshly built front end first, then Galata's test helpers.
    c.LabServerApp.extra_labextensions_path = [extra, c.LabServerApp.extra_labextensions_path]

# No news or update checks: the tests run offline.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
