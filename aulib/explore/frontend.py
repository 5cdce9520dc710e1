"""Whether an explorer can be shown here, and the one line printed when not.

The explorers need ipywidgets (the ``notebooks`` extra) and a live front end
(JupyterLab). A headless run (``AULIB_HEADLESS`` set, as the pipeline runner sets
it for its kernels) or an environment without ipywidgets gets one printed line
from the entry points :func:`shown` wraps, which then return ``None``: the notebook goes on.

ipywidgets and IPython are imported here once, ``None`` where they are missing, so
every explorer module imports without them.
"""
from __future__ import annotations

import functools
import os

from ..progress import HEADLESS_ENV

try:                                            # the notebooks extra
    import ipywidgets as widgets
    from IPython.display import display
except ImportError:
    widgets = display = None


def unavailable() -> str | None:
    """Why no explorer can be shown here (a short text), or ``None``."""
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return f"a headless run ({HEADLESS_ENV} is set), no live front end"
    if widgets is None:
        return "ipywidgets is not installed (the notebooks extra: pip install -e '.[notebooks]')"
    return None


def shown(entry):
    """An explorer's entry point: ``entry`` where an explorer can be shown; where
    :func:`unavailable` gives a reason, one printed line and ``None``."""

    @functools.wraps(entry)
    def call(*args, **kwargs):
        reason = unavailable()
        if reason:
            print(f"{entry.__name__}: interactive explorer skipped: {reason}; open this notebook in JupyterLab "
                  "to use it", flush=True)
            return None
        return entry(*args, **kwargs)

    return call
