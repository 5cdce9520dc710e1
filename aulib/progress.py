"""Progress bars that behave in JupyterLab, under papermill and in CI logs.

``progress(iterable, desc=...)`` is tqdm. A notebook kernel (JupyterLab,
nbclient, a plain ``papermill`` call) gets the widget bar when ipywidgets is
installed; a kernel started with ``AULIB_HEADLESS=1`` in its environment (what
the pipeline runner does for its papermill kernels) and every other process
(scripts, torchrun children, CI, pipes) get a plain text bar that updates at
most every ``AULIB_PROGRESS_INTERVAL`` seconds (default 10) so logs stay short.
``AULIB_PROGRESS=0`` turns bars off.

Whether papermill is *imported* says nothing: the profile loader imports it
inside JupyterLab kernels to read notebook parameters (that once turned every
bar there into text, a red stderr block).
"""
from __future__ import annotations

import os
import sys


#: Environment variable marking a headless notebook kernel (text bars).
HEADLESS_ENV = "AULIB_HEADLESS"


def _in_interactive_notebook() -> bool:
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
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
