"""Progress bars that behave in JupyterLab, under papermill and in CI logs.

``progress(iterable, desc=...)`` is tqdm. Interactive notebooks get the widget
bar when ipywidgets is installed; headless runs (papermill, nbval, CI, pipes)
get a plain text bar that updates at most every ``AULIB_PROGRESS_INTERVAL``
seconds (default 10) so logs stay short. ``AULIB_PROGRESS=0`` turns bars off.
"""
from __future__ import annotations

import os
import sys


def _in_interactive_notebook() -> bool:
    if os.environ.get("PAPERMILL_EXECUTION") or "papermill" in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def progress(iterable=None, **kwargs):
    """A tqdm bar suited to where the code runs. Same arguments as ``tqdm``."""
    if os.environ.get("AULIB_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    if _in_interactive_notebook():
        from tqdm.notebook import tqdm
    else:
        from tqdm import tqdm

        if not sys.stderr.isatty():
            kwargs.setdefault("mininterval", float(os.environ.get("AULIB_PROGRESS_INTERVAL", "10")))
            kwargs.setdefault("ascii", True)
    return tqdm(iterable, **kwargs)
