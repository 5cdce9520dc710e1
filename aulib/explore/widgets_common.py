"""Shared pieces of the explorers: a matplotlib figure shown as a PNG in an
``ipywidgets.Image`` at its own pixel size, a debouncer for controls that
fire in bursts (arrow keys), the workspace argument, and the ipywidgets
display hook."""
from __future__ import annotations

import asyncio
import contextlib
from io import BytesIO
from pathlib import Path

from matplotlib.figure import Figure

from ..workspace import Workspace
from .frontend import display, widgets


@contextlib.contextmanager
def one_redraw(explorer):
    """Set several of ``explorer``'s controls with one redraw at the end, not one
    per change: its ``_redraw`` returns at once while ``explorer._busy`` is set."""
    explorer._busy = True
    try:
        yield
    finally:
        explorer._busy = False
    explorer._redraw()


class FigureView:
    """An ``ipywidgets.Image`` (``widget``) showing the last figure given to
    :meth:`show` at its own pixel size (figure inches x ``dpi``; narrower
    only when the output is), never stretched; ``figure`` is that figure,
    ``renders`` counts the draws."""

    def __init__(self, dpi: int = 90):
        self.dpi = dpi
        self.widget = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.figure: Figure | None = None
        self.renders = 0
        self._key = None

    def show(self, fig: Figure, key=None) -> None:
        """Draw ``fig``; ``key``: what it shows (:meth:`show_for` skips a redraw of the same key)."""
        buf = BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        self.figure, self.renders, self._key = fig, self.renders + 1, key
        self.widget.layout.width = f"{round(fig.get_figwidth() * self.dpi)}px"
        self.widget.value = buf.getvalue()

    def show_for(self, key, make) -> bool:
        """Draw ``make()`` unless the figure on screen was drawn for the same
        ``key`` (hashable: the controls it depends on); returns whether it drew."""
        if key is not None and key == self._key and self.figure is not None:
            return False
        self.show(make(), key)
        return True


class Debouncer:
    """Call ``fn`` once, ``delay`` seconds after the last of a burst of
    :meth:`__call__` (arrow-key steps of a slider: one redraw, not one per
    key). In a kernel the call is scheduled on its event loop, which handles
    the burst's messages first; without a running loop (a script, a test) or
    with ``delay`` 0 it calls ``fn`` at once. ``calls`` counts ``fn``'s runs."""

    def __init__(self, fn, delay: float = 0.35):
        self.fn, self.delay, self.calls = fn, float(delay), 0
        self._handle = None

    def __call__(self) -> None:
        self.cancel()
        try:
            loop = asyncio.get_running_loop() if self.delay > 0 else None
        except RuntimeError:
            loop = None
        if loop is None:
            self._run()
        else:
            self._handle = loop.call_later(self.delay, self._run)

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        self.calls += 1
        self.fn()


def message_figure(text: str, size=(6, 1.2)) -> Figure:
    """A figure holding only ``text`` (what a panel shows when it has nothing to draw)."""
    fig = Figure(figsize=size)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True)
    return fig


def as_workspace(ws) -> Workspace:
    """A :class:`Workspace`, or a workspace folder (results inside it)."""
    if isinstance(ws, Workspace):
        return ws
    root = Path(ws).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"workspace {root} not found; give a Workspace or the folder runs/<profile>")
    return Workspace(root, root / "results")


class Explorer:
    """Base of the explorers: displays its ``widget`` in a notebook."""

    widget: widgets.Widget

    def _ipython_display_(self):
        display(self.widget)
