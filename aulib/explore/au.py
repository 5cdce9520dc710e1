"""One AU at a time: every run's curve on the selection split, the chosen
epoch and threshold, precision / recall / F1 / final score against the
threshold (a slider), and the faces the model gets wrong at that threshold.

Defaults: the chosen model ``chosen/<group>.yaml`` (notebook 06) gives each
AU's run, epoch and threshold; without one, the (run, epoch) with the AU's
best final score at 0.5 and threshold 0.5 (nothing is drawn as "chosen"
then). Faces are the crops the run was trained and scored on
(``crops/<crop_style>_<img_size>/``), one per distinct image (B's degraded
copies of an image count once: its most confident wrong copy, captioned
with the probability, the copy ``v<variant>`` and how many copies are wrong).
Threshold steps (arrow keys) are debounced: one redraw after a burst, of
the two figures that depend on the threshold only.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..data.crops import CropStore
from ..metrics import batched_scores, confusion_counts, scores_from_counts
from ..runs import RunPreds, load_run_preds, select_runs
from ..select.chosen import ChosenModel, load_chosen
from .frontend import shown, widgets
from .widgets_common import Debouncer, Explorer, FigureView, as_workspace, message_figure, one_redraw

#: Thresholds the precision / recall / F1 curves are drawn at.
GRID = np.linspace(0.0, 1.0, 101)
KINDS = {"FP": "false positives (label 0, predicted present)", "FN": "false negatives (label 1, predicted absent)"}


def threshold_curves(labels: np.ndarray, probs: np.ndarray, thresholds=GRID) -> pd.DataFrame:
    """Scores of one AU at every threshold. ``labels`` (N,) 1 / 0 / -1,
    ``probs`` (N,); returns one row per threshold: ``threshold, precision,
    recall, f1, acc, final, tp, fp, fn, tn`` (precision NaN where nothing is
    predicted present; unknown labels left out, as in :mod:`aulib.metrics`)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    dec = np.asarray(probs, dtype=np.float64)[None, :, None] >= thr[:, None, None]      # (T, N, 1)
    c = {k: v[:, 0] for k, v in confusion_counts(np.asarray(labels)[:, None], dec).items()}
    acc, f1, final = scores_from_counts(c["tp"], c["fp"], c["fn"], c["tn"])
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(c["tp"] + c["fp"] > 0, c["tp"] / (c["tp"] + c["fp"]), np.nan)
        recall = np.where(c["tp"] + c["fn"] > 0, c["tp"] / (c["tp"] + c["fn"]), np.nan)
    return pd.DataFrame({"threshold": thr, "precision": precision, "recall": recall, "f1": f1, "acc": acc,
                         "final": final, **c})


def wrong_rows(labels: np.ndarray, probs: np.ndarray, threshold: float, kind: str = "FP",
               n: int | None = None, images=None) -> np.ndarray:
    """Row indices of one AU's errors at ``threshold``, most confident first:
    ``FP`` rows labelled 0 with ``prob >= threshold`` (highest probability
    first), ``FN`` rows labelled 1 below it (lowest first); ``n`` at most.
    ``images`` (N,): each row's image; then one row per distinct image, its
    most confident error (B's degraded copies of an image count once)."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    if kind == "FP":
        rows = np.flatnonzero((labels == 0) & (probs >= threshold))
        rows = rows[np.argsort(-probs[rows], kind="stable")]
    elif kind == "FN":
        rows = np.flatnonzero((labels == 1) & (probs < threshold))
        rows = rows[np.argsort(probs[rows], kind="stable")]
    else:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if images is not None:
        _, first = np.unique(np.asarray(images)[rows], return_index=True)   # first = most confident copy
        rows = rows[np.sort(first)]
    return rows if n is None else rows[:n]


class AUExplorer(Explorer):
    """The per-AU explorer (see the module docstring). Controls: ``au``,
    ``run``, ``epoch`` (dropdowns), ``threshold`` (slider), ``kind`` (FP / FN);
    panels ``curves``, ``scores``, ``faces`` (:class:`FigureView`);
    :meth:`state` gives the numbers on screen."""

    def __init__(self, ws, group: str, runs=None, split: str = "B", chosen=None, n_faces: int = 16,
                 ncols: int = 8):
        self.ws = as_workspace(ws)
        self.group, self.split, self.n_faces, self.ncols = group, split, int(n_faces), int(ncols)
        loaded = [load_run_preds(d, split) for d in select_runs(self.ws, group, runs)]
        self.runs: dict[str, RunPreds] = {r.run_name: r for r in loaded if len(r.epochs)}
        if not self.runs:
            raise FileNotFoundError(f"no run of group {group!r} under {self.ws.train} has a complete epoch on "
                                    f"{split}; train one with notebooks/04_train.ipynb")
        first = next(iter(self.runs.values()))
        self.aus = first.aus
        self.scores = {n: batched_scores(r.labels, r.probs, 0.5)["final"] for n, r in self.runs.items()}  # (E, C)
        self.chosen = self._chosen(chosen)
        self._crops: dict[str, CropStore | str] = {}
        self.au = widgets.Dropdown(options=[(f"AU{a}", a) for a in self.aus], description="AU")
        self.run = widgets.Dropdown(options=list(self.runs), description="run")
        self.epoch = widgets.Dropdown(options=[int(e) for e in first.epochs], description="epoch")
        self.threshold = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="threshold",
                                             continuous_update=False, readout_format=".3f",
                                             layout=widgets.Layout(width="440px"))
        self.reset = widgets.Button(description="reset", tooltip="set the threshold back to the chosen one",
                                    icon="undo", layout=widgets.Layout(width="215px"))
        self.reset.add_class("aulib-reset-threshold")
        self.reset.on_click(lambda _: self.reset_threshold())
        self.kind = widgets.ToggleButtons(options=list(KINDS), description="faces",
                                          style={"button_width": "48px", "description_width": "40px"})
        self.curves, self.scores_view, self.faces = FigureView(), FigureView(), FigureView(dpi=80)
        self.faces_caption = widgets.HTML()            # the names of the images in the grid (folded)
        self.faces_caption.add_class("aulib-faces-caption")
        self._busy = False
        #: threshold / kind changes redraw once after a burst (arrow keys), in a kernel
        self.later = Debouncer(self._redraw)
        self.au.observe(lambda _: self._on_au(), "value")
        self.run.observe(lambda _: self._on_run(), "value")
        self.epoch.observe(lambda _: self._redraw(), "value")
        for w in (self.threshold, self.kind):
            w.observe(lambda _: self.later(), "value")
        self.widget = widgets.VBox([
            widgets.HBox([self.au, self.run, self.epoch]),
            widgets.HBox([self.curves.widget, self.scores_view.widget]),
            widgets.HBox([self.threshold, self.reset, self.kind]),
            self.faces.widget,
            self.faces_caption,
        ])
        self.widget.add_class("aulib-explore-au")
        self._on_au()

    # ----------------------------------------------------------------- data
    def _chosen(self, chosen) -> ChosenModel | None:
        if chosen is False:
            return None
        if chosen is None:
            path = self.ws.chosen(self.group)
            if not path.exists():
                return None
            chosen = path
        model = chosen if isinstance(chosen, ChosenModel) else load_chosen(chosen, self.ws.root, check_files=False)
        return model if model.ensemble is None else None     # an ensemble's AU has no single (run, epoch)

    def chosen_for(self, au: int) -> tuple[str, int, float] | None:
        """(run, epoch, threshold) the chosen model gives ``au``, when there is
        one and its run and epoch are loaded; else None."""
        if self.chosen is None:
            return None
        entry = next((p for p in self.chosen.per_au if p["au"] == au), None)
        run = self.runs.get(entry["run"]) if entry is not None else None
        if run is None or int(entry["epoch"]) not in set(int(e) for e in run.epochs):
            return None
        return entry["run"], int(entry["epoch"]), float(entry["threshold"])

    def defaults(self, au: int) -> tuple[str, int, float]:
        """(run, epoch, threshold) of an AU: the chosen model's (:meth:`chosen_for`),
        else the best (run, epoch) at 0.5 on the split, threshold 0.5."""
        chosen = self.chosen_for(au)
        if chosen is not None:
            return chosen
        c = self.aus.index(au)
        best = max(((n, int(self.runs[n].epochs[k]), s[k, c]) for n, s in self.scores.items()
                    for k in range(len(s))), key=lambda t: -np.inf if np.isnan(t[2]) else t[2])
        return best[0], best[1], 0.5

    def _au_data(self) -> tuple[RunPreds, int, np.ndarray, np.ndarray]:
        run = self.runs[self.run.value]
        c = self.aus.index(self.au.value)
        k = int(np.flatnonzero(run.epochs == self.epoch.value)[0])
        return run, c, run.labels[:, c], np.asarray(run.probs[k, :, c], dtype=np.float64)

    def _store(self, run: RunPreds):
        if run.run_name not in self._crops:
            cfg = run.config
            path = self.ws.crops(cfg.get("crop_style", "aligned"), int(cfg.get("img_size", 0) or 0))
            try:
                self._crops[run.run_name] = CropStore(path)
            except (FileNotFoundError, RuntimeError, ValueError) as err:
                self._crops[run.run_name] = f"no faces to show: {err}"
        return self._crops[run.run_name]

    def state(self) -> dict:
        """The numbers on screen: AU, run, epoch, threshold, precision,
        recall, f1, final at that threshold, the FP / FN counts and the rows
        (of the split's index) of the faces shown."""
        run, c, labels, probs = self._au_data()
        row = threshold_curves(labels, probs, [self.threshold.value]).iloc[0]
        shown = wrong_rows(labels, probs, self.threshold.value, self.kind.value, self.n_faces, self._images(run))
        return {"au": int(self.au.value), "run": run.run_name, "epoch": int(self.epoch.value),
                "threshold": float(self.threshold.value), **{k: float(row[k]) for k in
                                                              ("precision", "recall", "f1", "final")},
                "fp": int(row["fp"]), "fn": int(row["fn"]), "kind": self.kind.value, "rows": shown.tolist()}

    @staticmethod
    def _images(run: RunPreds) -> np.ndarray:
        return run.index["image"].to_numpy()

    # ----------------------------------------------------------------- events
    def reset_threshold(self) -> None:
        """The reset button: the threshold back to the AU's chosen one (0.5 when nothing is chosen)."""
        self.threshold.value = self.defaults(int(self.au.value))[2]

    def _on_au(self):
        au = int(self.au.value)
        run, epoch, thr = self.defaults(au)
        chosen = self.chosen_for(au) is not None
        self.reset.description = f"reset: chosen {thr:.3f}" if chosen else f"reset: {thr:.3f} (none chosen)"
        self.reset.tooltip = ("set the threshold back to the chosen model's" if chosen else
                              "nothing is chosen for this AU (run 06_choose): back to 0.5")
        with one_redraw(self):
            self.run.value = run
            self.epoch.options = [int(e) for e in self.runs[run].epochs]
            self.epoch.value = epoch
            self.threshold.value = thr

    def _on_run(self):
        if self._busy:
            return
        run = self.runs[self.run.value]
        with one_redraw(self):
            c = self.aus.index(self.au.value)
            self.epoch.options = [int(e) for e in run.epochs]
            self.epoch.value = int(run.epochs[int(np.nanargmax(np.nan_to_num(self.scores[run.run_name][:, c],
                                                                               nan=-1)))])

    def _redraw(self):
        """Redraw the figures whose controls changed: the curves follow (AU,
        run, epoch) only, the scores also the threshold, the faces also the kind."""
        if self._busy:
            return
        self.later.cancel()
        key = (int(self.au.value), self.run.value, int(self.epoch.value))
        self.curves.show_for(key, self.curves_figure)     # the selected (run, epoch) marker moves too
        key += (float(self.threshold.value),)
        self.scores_view.show_for(key, self.scores_figure)
        if self.faces.show_for(key + (self.kind.value,), self.faces_figure):
            run = self.runs[self.run.value]
            names = self._images(run)[self.state()["rows"]]
            self.faces_caption.value = (f"<details><summary>the {len(names)} images shown</summary>"
                                        f"<span>{html.escape(', '.join(map(str, names)))}</span></details>")

    # ----------------------------------------------------------------- figures
    def curves_figure(self) -> Figure:
        """Final score at 0.5 of this AU by epoch, one line per run; star: the
        default (chosen) (run, epoch); ring: the one selected."""
        au = int(self.au.value)
        c = self.aus.index(au)
        d_run, d_epoch, _ = self.defaults(au)
        chosen = self.chosen_for(au) is not None
        fig = Figure(figsize=(5.2, 3.4 + 0.17 * ((len(self.scores) + 3) // 2)), layout="constrained")
        ax = fig.add_subplot()
        for name, s in self.scores.items():
            ax.plot(self.runs[name].epochs, s[:, c], lw=1.8 if name == self.run.value else 1.0, label=name)
        k = int(np.flatnonzero(self.runs[d_run].epochs == d_epoch)[0])
        ax.plot(d_epoch, self.scores[d_run][k, c], "k*", ms=13, zorder=5,
                label=("chosen" if chosen else "best at 0.5") + f": {d_run} ep {d_epoch}")
        k = int(np.flatnonzero(self.runs[self.run.value].epochs == self.epoch.value)[0])
        ax.plot(self.epoch.value, self.scores[self.run.value][k, c], "o", mfc="none", mec="tab:red", ms=11,
                mew=2, zorder=6, label="selected")
        _epoch_axis(ax, np.unique(np.concatenate([r.epochs for r in self.runs.values()])))
        ax.set_ylabel(f"AU{au} final score on {self.split}, thr 0.5")
        ax.set_title(f"AU{au}: every run of {self.group}", fontsize=9)
        ax.grid(alpha=0.3)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7, frameon=False)
        return fig

    def scores_figure(self) -> Figure:
        """Precision, recall, F1 and final score of the selected (run, epoch)
        against the threshold; solid line: the slider, dashed: the chosen one."""
        run, c, labels, probs = self._au_data()
        curves = threshold_curves(labels, probs)
        now = self.state()
        fig = Figure(figsize=(5.2, 3.4 + 0.34), layout="constrained")
        ax = fig.add_subplot()
        for col, colour in (("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green"),
                            ("final", "black")):
            ax.plot(curves["threshold"], curves[col], color=colour, lw=1.4, label=col)
        ax.axvline(self.threshold.value, color="tab:red", lw=1.5, label=f"threshold {self.threshold.value:.2f}")
        chosen = self.chosen_for(int(self.au.value))       # nothing chosen: no "chosen" line
        if chosen is not None and chosen[:2] == (run.run_name, int(self.epoch.value)):
            ax.axvline(chosen[2], color="0.3", lw=1, ls="--", label=f"chosen {chosen[2]:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("threshold")
        ax.grid(alpha=0.3)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=7, frameon=False)
        num = lambda v: "–" if v != v else f"{v:.2f}"  # noqa: E731 - precision is undefined with no positive call
        ax.set_title(f"AU{self.au.value} · {run.run_name} ep {self.epoch.value}: P {num(now['precision'])}  "
                     f"R {num(now['recall'])}  F1 {num(now['f1'])}  (FP {now['fp']}, FN {now['fn']})", fontsize=8)
        return fig

    def faces_figure(self) -> Figure:
        """The faces of the current errors (FP or FN), one per distinct image,
        most confident first, each captioned with the probability, the B copy
        and how many of the image's copies are wrong."""
        run, c, labels, probs = self._au_data()
        kind = self.kind.value
        names = self._images(run)
        rows = wrong_rows(labels, probs, self.threshold.value, kind, self.n_faces, names)
        what = f"AU{self.au.value} {KINDS[kind]} at threshold {self.threshold.value:.2f}"
        store = self._store(run)
        if isinstance(store, str):
            return message_figure(f"{what}: {len(rows)} shown of the worst; {store}")
        if not len(rows):
            return message_figure(f"no {what}")
        images = store.images[store.rows(names[rows])]
        every = wrong_rows(labels, probs, self.threshold.value, kind)
        copies = pd.Series(names[every]).value_counts()
        ncols = min(self.ncols, len(rows))
        nrows = -(-len(rows) // ncols)
        fig = Figure(figsize=(1.35 * ncols, 1.55 * nrows + 0.4), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        variants = run.index["variant"].to_numpy() if "variant" in run.index.columns else np.zeros(len(run.index))
        for k, ax in enumerate(axes.flat):
            ax.axis("off")
            if k < len(rows):
                ax.imshow(images[k])
                n_wrong = int(copies[names[rows[k]]])
                ax.set_title(f"p={probs[rows[k]]:.2f} v{int(variants[rows[k]])}"
                             + (f" ({n_wrong} copies)" if n_wrong > 1 else ""), fontsize=7)
        fig.suptitle(f"{what}: the {len(rows)} most confident of {len(copies)} images ({len(every)} rows, "
                     "B's copies of an image counted once)", fontsize=9)
        return fig


def _epoch_axis(ax, epochs: np.ndarray) -> None:
    """Integer epoch ticks (every epoch when there are few), half an epoch of margin."""
    if len(epochs) <= 15:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
    ax.set_xlabel("epoch")


@shown
def explore_au(ws, group: str, runs=None, split: str = "B", chosen=None, n_faces: int = 16) -> AUExplorer:
    """The per-AU explorer of ``group`` in a workspace (a :class:`Workspace`
    or its folder): see :class:`AUExplorer`. ``chosen``: a chosen-model file
    or :class:`ChosenModel` (None: ``chosen/<group>.yaml`` if present; False: none)."""
    return AUExplorer(ws, group, runs, split, chosen, n_faces)
