"""Shared pieces of the explorers: a matplotlib figure shown as a PNG in an
``ipywidgets.Image``, the workspace argument, and the ipywidgets display hook."""
from __future__ import annotations

import contextlib
from io import BytesIO
from pathlib import Path

import ipywidgets as widgets
from IPython.display import display
from matplotlib.figure import Figure

from ..workspace import Workspace


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
    :meth:`show`; ``figure`` is that figure, ``renders`` counts the draws."""

    def __init__(self, dpi: int = 90):
        self.dpi = dpi
        self.widget = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.figure: Figure | None = None
        self.renders = 0

    def show(self, fig: Figure) -> None:
        buf = BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        self.figure, self.renders = fig, self.renders + 1
        self.widget.value = buf.getvalue()


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
