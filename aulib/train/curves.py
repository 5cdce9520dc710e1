"""Training curves from a run's ``log.csv``: train losses and the B scores by epoch.

:func:`plot_curves` draws them once; :class:`LiveCurves` is an
``on_epoch_end`` callback for :func:`aulib.train.loop.train` that redraws them in
place in a notebook after every epoch (outside a notebook it does nothing).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..runs import read_log
from ..model.losses import TERMS


def plot_curves(log, title: str | None = None) -> Figure:
    """Figure of a training log (DataFrame or run directory): left, the train
    losses (total, BCE, weighted terms unscaled: L_mv, L_cr) on a log scale;
    right, mean accuracy / F1 / final score of B (and of other evaluated
    splits' final score) by epoch, with the best B final score starred."""
    if not isinstance(log, pd.DataFrame):
        title = title or Path(log).name
        log = read_log(log)
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 3.8))
    plt.close(fig)  # shown by whoever displays it (notebook output), never twice
    ep = log["epoch"]
    for key, label in (("loss", "total"), ("bce", "BCE (both views)"), *((t, f"L_{t}") for t in TERMS)):
        if key in log and (log[key] > 0).any():
            ax_loss.plot(ep, log[key], marker="o", ms=3, label=label)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="train loss (epoch mean)", title="losses")
    ax_loss.legend(fontsize=8)
    for key, style in (("B_acc", ":"), ("B_f1", "--"), ("B_final", "-")):
        if key in log:
            ax_score.plot(ep, log[key], style, color="black", lw=2 if key == "B_final" else 1, label=key)
    for key in [c for c in log.columns if c.endswith("_final") and c != "B_final"]:
        ax_score.plot(ep, log[key], lw=1, label=key)
    if "B_final" in log and log["B_final"].notna().any():
        best = log["B_final"].idxmax()
        ax_score.plot(ep[best], log["B_final"][best], "*", color="black", ms=14)
    ax_score.set(xlabel="epoch", ylabel="score (threshold 0.5)", title="dataset B")
    ax_score.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class LiveCurves:
    """``on_epoch_end`` callback: shows :func:`plot_curves` of the log so far,
    replacing the previous drawing (one output in the notebook)."""

    def __init__(self, title: str | None = None):
        self.title, self.handle = title, None

    def __call__(self, log: pd.DataFrame) -> None:
        try:
            from IPython import get_ipython  # optional: only inside a notebook
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = plot_curves(log, self.title)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
