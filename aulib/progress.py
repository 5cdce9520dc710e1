"""Progress bars that behave in JupyterLab, under papermill and in CI logs.

``progress(iterable, desc=...)`` is tqdm. A notebook kernel (JupyterLab,
nbclient, a plain ``papermill`` call) gets the widget bar when ipywidgets is
installed; a terminal gets tqdm's own bar. A kernel started with
``AULIB_HEADLESS=1`` in its environment (what the pipeline runner does for its
papermill kernels) and every other process writing to a pipe or a file
(scripts, torchrun children, CI logs) get :class:`LineBar`: whole lines, none
at 0 %, at most one every ``AULIB_PROGRESS_INTERVAL`` seconds (default 10), a
closing line only for bars that are left (``leave=True``), and never the
carriage returns and blank-outs a terminal bar writes (which a log keeps as a
frozen "0/75" and an executed notebook as an empty stderr block).
``AULIB_PROGRESS=0`` turns bars off.

Whether papermill is *imported* says nothing: the profile loader imports it
inside JupyterLab kernels to read notebook parameters (that once turned every
bar there into text, a red stderr block).
"""
from __future__ import annotations

import math
import os
import sys

from tqdm import tqdm


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


class LineBar(tqdm):
    """tqdm for pipes and logs: each display is one whole line (no ``\\r``), the
    first after ``delay`` seconds, then at most one per ``mininterval``;
    closing writes a last line when ``leave`` (unless the last line said the
    same) and nothing otherwise."""

    def __init__(self, *args, **kwargs):
        custom = "bar_format" in kwargs
        super().__init__(*args, **kwargs)
        if not custom and not self.disable:  # no bar graph: "desc: 40% 30/75 [00:10<00:15, 3.0batch/s]"
            head = "{desc}: " if self.desc else ""
            self.bar_format = head + ("{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                                      "{rate_fmt}{postfix}]" if self.total else "{n_fmt} [{elapsed}, {rate_fmt}{postfix}]")

    def display(self, msg=None, pos=None):
        if msg == "":                       # tqdm blanking a closed bar: a log has nothing to blank
            return True
        self.fp.write((self.__str__() if msg is None else msg) + "\n")
        self.fp.flush()
        self._shown_n = self.n
        return True

    def close(self):
        if self.disable:
            return
        leave = (abs(self.pos) == 0) if self.leave is None else self.leave     # tqdm's rule
        self.disable = True
        self._decr_instances(self)
        if leave and self.n != getattr(self, "_shown_n", None):
            self._ema_dt = lambda: None     # the closing line gives the overall rate
            self.fp.write(self.__str__() + "\n")
            self.fp.flush()

    def moveto(self, n):                    # no cursor moves in a log
        pass


def _line_kwargs(kwargs: dict) -> dict:
    interval = float(os.environ.get("AULIB_PROGRESS_INTERVAL", "10"))
    out = {"mininterval": interval, "delay": interval, "ascii": True, "dynamic_ncols": False}
    return {**out, **kwargs}


def progress(iterable=None, **kwargs):
    """A tqdm bar suited to where the code runs. Same arguments as ``tqdm``."""
    if os.environ.get("AULIB_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    if _in_interactive_notebook():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(iterable, **kwargs)
    if sys.stderr.isatty():
        return tqdm(iterable, **kwargs)
    return LineBar(iterable, **_line_kwargs(kwargs))


def format_duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
