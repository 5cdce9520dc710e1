"""Figure 2 of the paper: per-AU final score on B along the epochs.

Every AU's final score ``(acc + F1) / 2`` at threshold 0.5 on the selection
split, epoch by epoch; a black star marks each line's best epoch; the average
over AUs (the challenge final score) is the bold black line with its own
star. AUs peaking at different epochs is what motivates choosing a
checkpoint per AU (:mod:`aulib.select.choose`). An AU whose score never moves
(``flat``: range over the epochs at most :data:`FLAT`, e.g. a never-learned AU
predicted absent throughout) has no meaningful best epoch: it is never
highlighted as earliest- or latest-peaking and is labelled "flat".

:func:`plot_convergence` draws every AU in one axes (the paper's layout);
:func:`plot_convergence_panels` one panel per AU (small multiples), which a
reader can follow AU by AU.

The scores come from a run's saved predictions (:class:`aulib.runs.RunPreds`)
or from its ``log.csv`` (columns ``<split>_final_AU<n>``, one per AU, as
logged during training).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..io import atomic_path
from ..metrics import batched_scores
from ..runs import RunPreds, load_run_preds, select_runs
from ..select.recipes import load_table_spec

_LOG_COL = re.compile(r"^(?P<split>.+?)_final_AU(?P<au>\d+)$")
#: An AU whose final score spans at most this over the epochs is flat: its "best epoch" is an argmax of a constant.
FLAT = 1e-3


def convergence_scores(source, split: str = "B") -> tuple[np.ndarray, tuple[int, ...], np.ndarray, str]:
    """Per-AU final scores by epoch from a RunPreds or a log DataFrame.

    Returns ``epochs`` (E,), ``aus`` (C,), ``final`` (E, C) and a label
    (run name or "log")."""
    if isinstance(source, RunPreds):
        if len(source.epochs) == 0:
            raise ValueError(f"run {source.run_name} has no complete epoch on {source.split}")
        s = batched_scores(source.labels, source.probs, 0.5)
        return np.asarray(source.epochs), tuple(source.aus), s["final"], source.run_name
    if isinstance(source, (str, Path)):
        return convergence_scores(load_run_preds(source, split), split)
    if isinstance(source, pd.DataFrame):
        cols = [(c, int(m.group("au"))) for c in source.columns
                if (m := _LOG_COL.match(str(c))) and m.group("split") == split]
        if not cols:
            raise ValueError(f"the log has no per-AU {split} final-score columns ({split}_final_AU1, ...); "
                             "draw Figure 2 from the run's predictions instead (load_run_preds)")
        if "epoch" not in source.columns:
            raise ValueError("the log has no 'epoch' column")
        final = source[[c for c, _ in cols]].to_numpy(np.float64)
        return source["epoch"].to_numpy(np.int64), tuple(a for _, a in cols), final, "log"
    raise TypeError(f"expected RunPreds, a run directory or a log DataFrame, got {type(source).__name__}")


def convergence_table(source, split: str = "B") -> pd.DataFrame:
    """Per AU: best epoch and score, the score at the best-average epoch and
    the gain of choosing the AU's own epoch (all at threshold 0.5), and
    ``flat`` (the AU's score spans at most :data:`FLAT` over the epochs: its
    best epoch means nothing). The last row, ``mean``, compares the average
    of the per-AU bests (the "chosen" strategy on this split) with the
    best-average epoch (the baseline). Index: ``AU1`` ... ``mean``."""
    epochs, aus, final, _ = convergence_scores(source, split)
    return _table(epochs, aus, final)


def _table(epochs: np.ndarray, aus, final: np.ndarray) -> pd.DataFrame:
    filled = np.where(np.isnan(final), -np.inf, final)
    mean = np.nanmean(final, axis=1)
    k_avg = int(np.argmax(np.where(np.isnan(mean), -np.inf, mean)))
    k_best = filled.argmax(0)
    cols = np.arange(len(aus))
    df = pd.DataFrame({"best_epoch": epochs[k_best], "best_score": final[k_best, cols],
                       "avg_epoch": int(epochs[k_avg]), "score_at_avg_epoch": final[k_avg]},
                      index=[f"AU{a}" for a in aus])
    df.loc["mean"] = [epochs[k_avg], float(np.nanmean(df["best_score"])), epochs[k_avg], float(mean[k_avg])]
    df["gain"] = df["best_score"] - df["score_at_avg_epoch"]
    df[["best_epoch", "avg_epoch"]] = df[["best_epoch", "avg_epoch"]].astype(int)
    span = np.nanmax(filled, axis=0) - np.nanmin(np.where(np.isnan(final), np.inf, final), axis=0)
    df["flat"] = np.append(span <= FLAT, False)
    return df


def _default_highlight(table: pd.DataFrame, n: int) -> list[str]:
    """Earliest- and latest-peaking AUs, then the largest gains; flat AUs
    (no meaningful best epoch) never."""
    per_au = table.drop(index="mean")
    per_au = per_au[~per_au["flat"].astype(bool)]
    if per_au.empty:
        return []
    picks = [per_au["best_epoch"].idxmin(), per_au["best_epoch"].idxmax()]
    picks += list(per_au["gain"].sort_values(ascending=False).index)
    return list(dict.fromkeys(picks))[:n]


def _au_label(table: pd.DataFrame, lab: str) -> str:
    """How a line is named in the legend: its best epoch, or "flat" (never moves: no best epoch)."""
    if bool(table.loc[lab, "flat"]):
        return f"{lab} (flat: no best epoch)"
    return f"{lab} (best epoch {table.loc[lab, 'best_epoch']})"


def _title(name: str, split: str, gain: float) -> str:
    """Two short lines, so a long run name is never clipped at the figure's edge."""
    return (f"Figure 2 \u2014 {name}\nper-AU convergence on {split} "
            f"(per-AU best epochs: {gain:+.4f} over the best-average epoch)")


def _save(fig: Figure, out_path, dpi: int) -> None:
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip(".") or "png", dpi=dpi)


def plot_convergence(source, aus_to_show=None, out_path=None, split: str = "B", n_highlight: int = 4,
                     title: str | None = None, dpi: int = 150) -> Figure:
    """The paper's Figure 2 for one run, every AU in one axes.

    ``source``: RunPreds, run directory or log DataFrame. ``aus_to_show``:
    AU numbers drawn in colour (default: the earliest- and latest-peaking
    AUs and the largest gains, ``n_highlight`` in all); every other AU is a
    light grey line. A black star marks each line's best epoch; the bold
    black line is the average over AUs. The legend (outside the axes, so it
    hides no star) names the coloured AUs and their best epochs; the grey
    lines are named in :func:`plot_convergence_panels`, one panel per AU.
    Saved to ``out_path`` (PNG/PDF/SVG by suffix) when given. Returns the
    figure (not attached to pyplot).
    """
    epochs, aus, final, name = convergence_scores(source, split)
    table = _table(epochs, aus, final)
    labels = [f"AU{a}" for a in aus]
    if aus_to_show is None:
        shown = _default_highlight(table, n_highlight)
    else:
        shown = [f"AU{int(a)}" for a in aus_to_show]
        unknown = [s for s in shown if s not in labels]
        if unknown:
            raise ValueError(f"aus_to_show names {unknown}, which the run does not predict ({labels})")
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.add_subplot()
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                    "tab:olive", "tab:cyan"] * 3)
    for j, lab in enumerate(labels):
        best_e, best_s = table.loc[lab, "best_epoch"], table.loc[lab, "best_score"]
        if lab in shown:
            ax.plot(epochs, final[:, j], color=next(colours), lw=1.6, label=_au_label(table, lab), zorder=3)
            ax.plot(best_e, best_s, "k*", ms=12, zorder=5)
        else:
            ax.plot(epochs, final[:, j], color="0.6", lw=0.8, alpha=0.5, zorder=2)
            ax.plot(best_e, best_s, "k*", ms=6, alpha=0.7, zorder=4)
    avg_e, avg_s = table.loc["mean", "avg_epoch"], table.loc["mean", "score_at_avg_epoch"]
    ax.plot(epochs, np.nanmean(final, axis=1), color="black", lw=3,
            label=f"Average (best epoch {avg_e}, {avg_s:.3f})", zorder=6)
    ax.plot(avg_e, avg_s, "k*", ms=18, markeredgecolor="white", zorder=7)
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="0.6", lw=0.8, label=f"the other {len(labels) - len(shown)} AUs"),
        Line2D([], [], color="black", marker="*", ms=8, ls="none", label="best epoch of a line")]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"final score on {split}  (acc + F1) / 2, threshold 0.5")
    ax.set_title(title or _title(name, split, table.loc["mean", "gain"]), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if out_path is not None:
        _save(fig, out_path, dpi)
    return fig


def plot_convergence_panels(source, out_path=None, split: str = "B", ncols: int | None = None,
                            title: str | None = None, dpi: int = 150) -> Figure:
    """Figure 2 as small multiples: one panel per AU (shared axes), the AU's
    curve in colour, the average over AUs in grey in every panel, a star at
    the AU's best epoch (the epoch the *chosen* strategy takes for it) and a
    dotted line at the best-average epoch (the baseline's). Each panel's
    title gives the AU, its best epoch and the gain of that epoch over the
    best-average one. ``ncols`` default: about sqrt(1.5 C). Saved to
    ``out_path`` when given; returns the figure."""
    epochs, aus, final, name = convergence_scores(source, split)
    table = _table(epochs, aus, final)
    c = len(aus)
    ncols = int(ncols or max(1, min(c, round(np.sqrt(1.5 * c)))))
    nrows = -(-c // ncols)
    fig = Figure(figsize=(2.1 * ncols, 1.7 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    mean = np.nanmean(final, axis=1)
    avg_e = table.loc["mean", "avg_epoch"]
    for k, ax in enumerate(axes.flat):
        if k >= c:
            ax.set_visible(False)
            continue
        lab = f"AU{aus[k]}"
        best_e, best_s, gain = (table.loc[lab, x] for x in ("best_epoch", "best_score", "gain"))
        ax.plot(epochs, mean, color="0.55", lw=1.2, label="average")
        ax.plot(epochs, final[:, k], color="tab:blue", lw=1.6, label="this AU")
        ax.plot(best_e, best_s, "k*", ms=9, zorder=5, label="best epoch")
        ax.axvline(avg_e, color="0.4", lw=0.8, ls=":", label="best-average epoch")
        ax.set_title(f"{lab} \u00b7 flat (never moves)" if table.loc[lab, "flat"]
                     else f"{lab} \u00b7 ep {best_e} ({gain:+.3f})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        if k + ncols >= c:                      # the lowest panel of its column: its epochs are labelled
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("epoch", fontsize=8)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.supylabel(f"final score on {split}, threshold 0.5", fontsize=9)
    fig.suptitle(title or _title(name, split, table.loc["mean", "gain"]), fontsize=10)
    if out_path is not None:
        _save(fig, out_path, dpi)
    return fig


def panels_path(ws, name: str) -> Path:
    """Where the small-multiples Figure 2 of a run or group goes."""
    return Path(ws.figures) / f"figure2_panels_{name}.png"


def _spec_baseline(ws, group: str) -> str | None:
    """The Baseline run the workspace's table spec names for ``group``, or None."""
    if not (Path(ws.root) / "table_spec.yaml").exists():
        return None
    base = (load_table_spec(None, ws).get(group) or {}).get("baseline") or []
    return base[0] if base else None


def main_run(summary: pd.DataFrame, baseline: str | None = None) -> str:
    """The run a group's Figure 2 is drawn from: the longest-trained baseline
    run, i.e. among runs trained from scratch (``stage`` plain; every run
    when none is) the one with the most epochs (where per-AU peaks can show:
    a short finetune hides them), ties going to the table spec's Baseline
    ``baseline``, then to the best best-average score. ``summary``: one row
    per run (index run name) with ``epochs``, ``stage``, ``avg_score``."""
    plain = summary[summary["stage"] == "plain"]
    pool = plain if len(plain) else summary
    pool = pool[pool["epochs"] == pool["epochs"].max()]
    if baseline in pool.index:
        return str(baseline)
    return str(pool["avg_score"].idxmax())


def convergence_figures(ws, group: str = "17au", runs=None, split: str = "B") -> pd.DataFrame:
    """Figure 2 for each run of ``group`` in a workspace (``runs``: names;
    None: all), saved as ``<figures>/figure2_convergence_<run>.png``; the
    longest-trained baseline run (:func:`main_run`) is also saved as
    ``figure2_convergence_<group>.png`` and as small multiples,
    ``figure2_panels_<group>.png`` (:func:`plot_convergence_panels`). Returns one row per run (epochs, stage,
    best-average epoch and score, the per-AU-best average, the gain, the figure path);
    ``attrs["main_run"]`` names the run of the group figure."""
    dirs = select_runs(ws, group, runs)
    if not dirs:
        raise FileNotFoundError(f"no runs of group {group!r} under {ws.train}; train one with notebooks/04_train.ipynb")
    rows = {}
    for d in dirs:
        rp = load_run_preds(d, split)
        if len(rp.epochs) == 0:
            continue
        path = Path(ws.figures) / f"figure2_convergence_{rp.run_name}.png"
        plot_convergence(rp, out_path=path, split=split)
        t = convergence_table(rp, split)
        rows[rp.run_name] = {"epochs": len(rp.epochs), "stage": str((rp.config or {}).get("stage", "plain")),
                             "avg_epoch": t.loc["mean", "avg_epoch"],
                             "avg_score": t.loc["mean", "score_at_avg_epoch"],
                             "per_au_best": t.loc["mean", "best_score"], "gain": t.loc["mean", "gain"],
                             "figure": str(path), "dir": str(d)}
    if not rows:
        raise ValueError(f"none of the runs {[d.name for d in dirs]} has a complete epoch on {split}")
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "run"
    main = main_run(summary, _spec_baseline(ws, group))
    main_preds = load_run_preds(summary.loc[main, "dir"], split)
    plot_convergence(main_preds, split=split, out_path=Path(ws.figures) / f"figure2_convergence_{group}.png")
    plot_convergence_panels(main_preds, split=split, out_path=panels_path(ws, group))
    summary.attrs["main_run"] = main
    return summary.drop(columns="dir")
