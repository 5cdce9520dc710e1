"""Runs side by side: pick runs and AUs, their curves overlaid (one panel
per AU, one line per run), by final score, F1 or accuracy at threshold 0.5
on the selection split. Runs of different groups share the AUs they both
predict; ``average`` is each run's mean over its own AUs. At least one run
and one AU stay selected (a control emptied goes back to its last
selection); a workspace with one run shows its name, not a one-row list.
The figure is sized to its panels (one panel: one readable plot)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..metrics import batched_scores
from ..runs import list_runs, load_run_preds, pred_epochs
from .frontend import shown, widgets
from .widgets_common import Explorer, FigureView, as_workspace, message_figure

METRICS = {"final": "final score (acc + F1) / 2", "f1": "F1", "acc": "accuracy"}
AVERAGE = "average"


def panel_size(ncols: int, nrows: int) -> tuple[float, float]:
    """Figure size (inches) of ``ncols`` x ``nrows`` panels: one panel is a
    full plot (7 x 4.2 in, 630 px at 90 dpi), two share 10 in, three 11 in
    (990 px, a JupyterLab output's width); 1.2 in for titles and legend."""
    width = {1: 7.0, 2: 10.0}.get(ncols, 11.0)
    return width, {1: 3.0, 2: 2.8}.get(ncols, 2.6) * nrows + 1.2


class RunsExplorer(Explorer):
    """Controls ``runs`` and ``aus`` (multiple choice), ``metric``; panel
    ``view`` (:class:`FigureView`); :meth:`curves` the lines on screen."""

    def __init__(self, ws, group: str | None = None, split: str = "B", runs=None, aus=None, max_panels: int = 12):
        self.ws, self.split, self.max_panels = as_workspace(ws), split, int(max_panels)
        table = list_runs(self.ws)
        if group is not None:
            table = table[table["group"] == group]
        table = table[[bool(pred_epochs(d, split)) for d in table["dir"]]]
        if table.empty:
            raise FileNotFoundError(f"no run{'' if group is None else ' of group ' + repr(group)} under "
                                    f"{self.ws.train} has {split} predictions; train one with notebooks/04_train.ipynb")
        self.dirs = dict(zip(table["name"], table["dir"]))
        self._scores: dict[str, tuple] = {}
        first = list(self.dirs)[:2] if runs is None else list(runs)
        self.runs = widgets.SelectMultiple(options=list(self.dirs), value=first, description="runs",
                                           rows=min(8, max(3, len(self.dirs))))
        self.aus = widgets.SelectMultiple(description="AUs", rows=8)
        self.metric = widgets.Dropdown(options=[(v, k) for k, v in METRICS.items()], value="final",
                                       description="metric")
        self.view = FigureView()
        self._update_aus(aus)
        self.runs.observe(self._on_runs, "value")
        self.aus.observe(self._on_aus, "value")
        self.metric.observe(lambda _: self._redraw(), "value")
        if len(self.dirs) == 1:                # nothing to pick: the run's name, not a one-row list
            runs_control = widgets.HTML(f"<b>run</b> {next(iter(self.dirs))} <small>(the only run with {split} "
                                        "predictions; train more with 04_train to compare)</small>")
            runs_control.add_class("aulib-one-run")
        else:
            runs_control = self.runs
        self.widget = widgets.VBox([widgets.HBox([runs_control, self.aus, self.metric]), self.view.widget])
        self.widget.add_class("aulib-explore-runs")
        self._redraw()

    def _on_runs(self, change):
        if not change["new"]:                  # keep one run selected: back to the last selection
            self.runs.value = change["old"]
            return
        self._update_aus(None)
        self._redraw()

    def _on_aus(self, change):
        if not change["new"]:                  # keep one AU (or the average) selected
            self.aus.value = change["old"] or (AVERAGE,)
            return
        self._redraw()

    def _run(self, name: str):
        """(epochs, aus, {metric: (E, C)}) of a run at threshold 0.5, loaded once."""
        if name not in self._scores:
            rp = load_run_preds(self.dirs[name], self.split)
            s = batched_scores(rp.labels, rp.probs, 0.5)
            self._scores[name] = (rp.epochs, rp.aus, {k: s[k] for k in METRICS})
        return self._scores[name]

    def _update_aus(self, wanted):
        have = sorted({a for n in self.runs.value for a in self._run(n)[1]})
        options = [AVERAGE] + [f"AU{a}" for a in have]
        keep = [a for a in (self.aus.value if wanted is None else
                            [a if a == AVERAGE else f"AU{int(str(a).removeprefix('AU'))}" for a in wanted])
                if a in options]
        self.aus.options = options
        self.aus.value = tuple(keep or [AVERAGE])

    def curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{AU label: {run: (epochs, values)}} of the selection (a run lacking the AU left out)."""
        out = {}
        for lab in self.aus.value:
            out[lab] = {}
            for name in self.runs.value:
                epochs, aus, s = self._run(name)
                vals = s[self.metric.value]
                if lab == AVERAGE:
                    out[lab][name] = (epochs, np.nanmean(vals, axis=1))
                elif int(lab[2:]) in aus:
                    out[lab][name] = (epochs, vals[:, aus.index(int(lab[2:]))])
        return out

    def figure(self) -> Figure:
        curves = self.curves()
        if not curves or not self.runs.value:
            return message_figure("pick at least one run and one AU")
        labels = list(curves)[: self.max_panels]
        ncols = min(3, len(labels))
        nrows = -(-len(labels) // ncols)
        fig = Figure(figsize=panel_size(ncols, nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        colours = {n: f"C{i % 10}" for i, n in enumerate(self.runs.value)}
        for k, ax in enumerate(axes.flat):
            if k >= len(labels):
                ax.set_visible(False)
                continue
            for name, (epochs, vals) in curves[labels[k]].items():
                ax.plot(epochs, vals, color=colours[name], lw=1.5, marker="o", ms=3, label=name)
                j = int(np.nanargmax(np.nan_to_num(vals, nan=-np.inf)))
                ax.plot(epochs[j], vals[j], "*", color=colours[name], mec="black", ms=11, zorder=5)
            ax.set_title(labels[k], fontsize=9)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if k + ncols >= len(labels):
                ax.xaxis.set_tick_params(labelbottom=True)
                ax.set_xlabel("epoch", fontsize=8)
        handles = [axes.flat[0].plot([], [], color=c, lw=1.5, label=n)[0] for n, c in colours.items()]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8,
                   frameon=False)
        more = f" (first {self.max_panels} of {len(curves)} AUs)" if len(curves) > self.max_panels else ""
        fig.suptitle(f"{METRICS[self.metric.value]} on {self.split} at threshold 0.5{more}\n"
                     "star: each run's best epoch", fontsize=9)
        return fig

    def _redraw(self):
        self.view.show(self.figure())


@shown
def compare_runs(ws, group: str | None = None, split: str = "B", runs=None, aus=None) -> RunsExplorer:
    """Runs of a workspace side by side (:class:`RunsExplorer`); ``group``
    None: every run; ``runs`` / ``aus`` the first selection (default: the
    first two runs, the average)."""
    return RunsExplorer(ws, group, split, runs, aus)
