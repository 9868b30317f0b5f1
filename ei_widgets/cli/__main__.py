"""``python -m ei_widgets.cli``: the ``ei-widgets`` command."""

import sys

from ei_widgets.cli import main

sys.exit(main())
