"""Whether an explorer can be shown here, and the one line printed when not.

The explorers need ipywidgets (the ``notebooks`` extra) and a live front end
(JupyterLab). A headless run (``AULIB_HEADLESS`` set, as the pipeline runner sets
it for its kernels) or an environment without ipywidgets gets one printed line
from :func:`explorer`'s entry points, which then return ``None``: the notebook goes on.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

from ..progress import HEADLESS_ENV


def unavailable() -> str | None:
    """Why no explorer can be shown here (a short text), or ``None``."""
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return f"a headless run ({HEADLESS_ENV} is set), no live front end"
    if importlib.util.find_spec("ipywidgets") is None:
        return "ipywidgets is not installed (the notebooks extra: pip install -e '.[notebooks]')"
    return None


def explorer(module: str, name: str):
    """The entry point ``name`` of ``aulib.explore.<module>``, imported when
    called; where :func:`unavailable` gives a reason it prints one line and returns ``None``."""

    def call(*args, **kwargs):
        reason = unavailable()
        if reason:
            print(f"{name}: interactive explorer skipped: {reason}; open this notebook in JupyterLab to use it",
                  flush=True)
            return None
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"aulib.explore.{module}.{name} (its docstring), or one line where it cannot be shown."
    return call
