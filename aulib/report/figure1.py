"""The paper's Figure 1: positive and negative label counts per AU.

Unknown labels are left out of both counts. The 17 expression AUs and the 6
head-pose AUs are drawn as two separated blocks (the paper's two models).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import io as aio
from ..aus import BUILTIN_GROUPS
from ..data.labels import label_counts

NEGATIVE_COLOR = "#9db4c8"
POSITIVE_COLOR = "#c0504d"


def plot_label_counts(labels_df: pd.DataFrame, aus: Sequence[int] | None = None, out_path=None,
                      title: str = "Positive and negative labels per AU", log: bool = True,
                      stacked: bool = False, ax=None):
    """Bar chart of positive and negative counts per AU (Figure 1).

    ``labels_df``: a label table (``AU<n>`` columns, 1/0/-1); ``aus`` the AUs
    drawn (None: every AU column of the table, in catalog order). Bars are
    grouped (negative left, positive right) or ``stacked`` (positive on top
    of negative); ``log`` uses a log count axis. AUs of the ``6au`` group
    are set apart from the ``17au`` ones by a gap and a shaded band.
    The bar containers carry labels ``negative`` and ``positive`` in
    ``ax.containers``. Saves a PNG at ``out_path`` (atomically) if given.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    counts = label_counts(labels_df, aus)
    aus = list(counts.index)
    pose = np.array([a in BUILTIN_GROUPS["6au"] for a in aus])
    # x positions: one slot per AU, plus a one-slot gap before the first head-pose AU
    x = np.arange(len(aus), dtype=float)
    if pose.any() and not pose.all():
        x = x + np.cumsum(np.r_[False, pose[1:] & ~pose[:-1]])
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(aus) + 2), 3.8), layout="constrained")
    else:
        fig = ax.figure
    neg, pos = counts["negative"].to_numpy(), counts["positive"].to_numpy()
    if stacked:
        ax.bar(x, neg, 0.75, color=NEGATIVE_COLOR, label="negative")
        ax.bar(x, pos, 0.75, bottom=neg, color=POSITIVE_COLOR, label="positive")
    else:
        ax.bar(x - 0.2, neg, 0.4, color=NEGATIVE_COLOR, label="negative")
        ax.bar(x + 0.2, pos, 0.4, color=POSITIVE_COLOR, label="positive")
    top = max(1, int((neg + pos).max() if stacked else max(neg.max(), pos.max()))) if len(aus) else 1
    if log:  # a count of 1 stays visible; headroom above the bars for the group names
        ax.set_yscale("log")
        ax.set_ylim(0.7, top * 4)
    else:
        ax.set_ylim(0, top * 1.15)
    ax.set_xticks(x, [str(a) for a in aus])
    ax.set_xlabel("AU")
    ax.set_ylabel("images")
    ax.set_title(title)
    if len(x):
        ax.set_xlim(x.min() - 0.7, x.max() + 0.7)
    for group, mask, shade in ((f"{int((~pose).sum())} expression AUs", ~pose, False),
                               (f"{int(pose.sum())} head-pose AUs", pose, True)):
        if not mask.any():
            continue
        lo, hi = x[mask].min() - 0.5, x[mask].max() + 0.5
        if shade:
            ax.axvspan(lo, hi, color="0.93", zorder=0)
        ax.text((lo + hi) / 2, 0.98, group, transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color="0.3")
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncols=2, bbox_to_anchor=(1.0, -0.12))
    ax.grid(axis="y", alpha=0.3)
    if out_path is not None:
        save_figure(fig, out_path)
    return fig


def save_figure(fig, path, dpi: int = 150) -> Path:
    """Atomically save a matplotlib figure as PNG; returns the path."""
    path = Path(path)
    with aio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def bar_heights(fig, label: str) -> np.ndarray:
    """Heights of the bars of container ``label`` (``negative``/``positive``)
    on the figure's first axes (used by tests and for checking a figure)."""
    ax = fig.axes[0]
    for c in ax.containers:
        if c.get_label() == label:
            return np.array([p.get_height() for p in c.patches])
    raise KeyError(f"no bar container labelled {label!r}")
