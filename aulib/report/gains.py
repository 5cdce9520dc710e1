"""The gains of Tables 1 and 3 (and of notebook 06's strategies) as one long
table and as a forest plot: every gain with its 95 % interval, per estimate.

Which gains: each step of a Table 1 (a row vs the row above) and its whole
system (the last row vs Baseline); each ablation of Table 3 (vs Baseline).
Columns of :func:`table_gains`: ``table, row, comparison, estimate, gain,
lo, hi, paper`` (final-score differences; ``lo``/``hi`` NaN without an
interval, ``paper`` the paper's gain or NaN).

Under other seeds (``seed_gains.csv``, written by ``benchmarks/seed_spread.py
--tables``: the same long table with a ``seed`` column, every run of the
tables retrained under each seed): :func:`seed_verdicts` calls a gain
distinguishable from zero only where its interval excludes 0 under every
seed, and the forest plot draws the other seeds' gains beside the committed ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..select.folds import cluster_ids
from .bootstrap import paired_gains
from .figure1 import save_figure

ESTIMATES = ("B", "B cross-fit", "Held-out")
#: Marker and colour per estimate (the same in every gain figure).
STYLE = {"B": ("o", "tab:red"), "B cross-fit": ("s", "tab:blue"), "Held-out": ("D", "tab:green")}
#: The Table 1 / 3 CSVs a forest plot reads, in order.
TABLES = ("table1_17au", "table1_6au", "table3")
#: notebook 06's estimate names (``ChoiceReport.table``) -> the tables' names.
CHOICE_ESTIMATES = {"optimistic": "B", "cross_fitted": "B cross-fit", "heldout": "Held-out"}
#: The tables' names as the paper names them (panel titles, the results page).
TABLE_TITLES = {"table1_17au": "Table 1 · 17 AUs", "table1_6au": "Table 1 · 6 AUs",
                "table3": "Table 3 · 12 AUs, ablations"}
#: The long gain table's key columns (one gain per key, per seed).
KEY = ["table", "row", "comparison", "estimate"]


def table_title(name: str) -> str:
    """A gain table's name as the paper (or notebook 06) names it: ``table1_17au`` -> ``Table 1 · 17 AUs``,
    ``choice 17au`` -> ``Checkpoint choice · 17au (notebook 06)``; other names unchanged."""
    if name.startswith("choice "):
        return f"Checkpoint choice · {name[len('choice '):]} (notebook 06)"
    return TABLE_TITLES.get(name, name)


def _f(row: pd.Series, col: str) -> float:
    v = row.get(col, np.nan)
    return float(v) if v is not None and v == v else np.nan


def table_gains(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Long table of the gains of one Table 1 / 3 (its CSV as a DataFrame),
    one line per (row, comparison, estimate); empty when it has no gain columns."""
    cols = ["table", "row", "comparison", "estimate", "gain", "lo", "hi", "paper"]
    if "B gain vs Baseline" not in df.columns:
        return pd.DataFrame(columns=cols)
    if "B gain vs previous row" in df.columns:
        picks = [(i, "vs previous row") for i in range(1, len(df))] + [(len(df) - 1, "vs Baseline")]
    else:
        picks = [(i, "vs Baseline") for i in range(len(df)) if df["row"].iloc[i] != "Baseline"]
    out = []
    for i, comp in picks:
        r = df.iloc[i]
        for est in ESTIMATES:
            out.append({"table": name, "row": str(r["row"]), "comparison": comp, "estimate": est,
                        "gain": _f(r, f"{est} gain {comp}"), "lo": _f(r, f"{est} gain {comp} lo"),
                        "hi": _f(r, f"{est} gain {comp} hi"), "paper": _f(r, f"Paper gain {comp}")})
    return pd.DataFrame(out, columns=cols)


def all_gains(tables_dir) -> pd.DataFrame:
    """:func:`table_gains` of every Table 1 / 3 CSV in ``tables_dir`` (:data:`TABLES`), stacked."""
    parts = [table_gains(pd.read_csv(p), n) for n in TABLES if (p := Path(tables_dir) / f"{n}.csv").exists()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else table_gains(pd.DataFrame(), "")


def choice_gains(table: pd.DataFrame, group: str = "") -> pd.DataFrame:
    """Notebook 06's ``ChoiceReport.table`` (one row per strategy, columns
    ``gain_<estimate>`` and, where the report has them, ``gain_<estimate>_lo``
    / ``_hi``, its 95 % interval) in the long form of :func:`table_gains`, the
    baseline strategy left out."""
    table = table.set_index("strategy") if "strategy" in table.columns else table
    out = []
    for strategy in [s for s in table.index if s != "baseline"]:
        row = table.loc[strategy]
        for key, est in CHOICE_ESTIMATES.items():
            g, lo, hi = (float(row.get(f"gain_{key}{x}", np.nan)) for x in ("", "_lo", "_hi"))
            out.append({"table": f"choice {group}".strip(), "row": str(strategy), "comparison": "vs baseline",
                        "estimate": est, "gain": g, "lo": lo, "hi": hi, "paper": np.nan})
    return pd.DataFrame(out, columns=["table", "row", "comparison", "estimate", "gain", "lo", "hi", "paper"])


def choice_table(report, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Notebook 06's table (``ChoiceReport.table``: one row per strategy, its
    final score and gain over ``baseline`` per estimate) with each gain's 95 %
    paired cluster-bootstrap interval (:mod:`.bootstrap`, ``n_boot`` resamples
    of the rows' clusters: a subject, else an image with its degraded copies)
    as ``gain_<estimate>_lo`` / ``_hi``, from the decisions the report kept.
    Like the tables' intervals they hold the trained models and the choice
    fixed (the cross-fitted one: the folds' choices as made)."""
    table = report.table.copy()
    names = list(table.index)
    base = names.index("baseline")
    for est, (labels, index, decs) in (report.decisions or {}).items():
        if not all(s in decs for s in names) or n_boot <= 0:
            continue
        got = paired_gains(labels, np.stack([decs[s] for s in names]), cluster_ids(index),
                           [(i, base) for i in range(len(names)) if i != base], n_boot, seed)
        lo, hi = np.full(len(names), np.nan), np.full(len(names), np.nan)
        lo[got["a"].to_numpy(int)], hi[got["a"].to_numpy(int)] = got["lo"], got["hi"]
        at = table.columns.get_loc(f"gain_{est}") + 1
        table.insert(at, f"gain_{est}_lo", lo)
        table.insert(at + 1, f"gain_{est}_hi", hi)
    return table


def excludes_zero(lo, hi) -> np.ndarray:
    """Whether each interval [lo, hi] lies entirely on one side of 0 (False where either bound is NaN)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return (lo > 0) | (hi < 0)


def seed_verdicts(gains: pd.DataFrame, seed_gains: pd.DataFrame | None) -> pd.DataFrame:
    """Per gain of ``gains`` (:func:`all_gains`, the committed tables: seed 0)
    with the other seeds' of ``seed_gains`` (the long table with ``seed``):
    ``seeds`` (how many seeds have it, the committed one included),
    ``per_seed`` (the other seeds' gains, text), ``excludes 0`` (its interval
    excludes 0 in the committed table), ``every seed`` (it does under every
    seed, each on the same side of 0; False with one seed only) and
    ``flips`` (some seed's interval excludes 0 and another's does not).
    Keyed like ``gains`` (same row order)."""
    out = gains[KEY].copy()
    ex0 = excludes_zero(gains["lo"], gains["hi"])
    sign0 = np.sign(gains["gain"].to_numpy(np.float64))
    out["excludes 0"] = ex0
    if seed_gains is None or seed_gains.empty:
        out["seeds"], out["per_seed"], out["every seed"], out["flips"] = 1, "", False, False
        return out
    other = seed_gains[seed_gains["seed"] != 0].copy()
    other["ex"] = excludes_zero(other["lo"], other["hi"])
    grouped = {k: g.sort_values("seed") for k, g in other.groupby(KEY, sort=False)}
    seeds, per_seed, every, flips = [], [], [], []
    for i, key in enumerate(gains[KEY].itertuples(index=False, name=None)):
        g = grouped.get(tuple(key))
        if g is None or g.empty:
            seeds.append(1), per_seed.append(""), every.append(False), flips.append(False)
            continue
        same_side = bool((np.sign(g["gain"].to_numpy(np.float64)) == sign0[i]).all())
        seeds.append(1 + len(g))
        per_seed.append(", ".join(f"{v:+.4f}" for v in g["gain"]))
        every.append(bool(ex0[i] and g["ex"].all() and same_side))
        flips.append(bool(ex0[i] or g["ex"].any()) and not every[-1])
    out["seeds"], out["per_seed"], out["every seed"], out["flips"] = seeds, per_seed, every, flips
    return out


def plot_forest(gains: pd.DataFrame, out_path=None, title: str | None = None, dpi: int = 150,
                seeds: pd.DataFrame | None = None) -> Figure:
    """Forest plot of a long gain table (:func:`table_gains`, :func:`all_gains`
    or :func:`choice_gains`): one panel per table (titled as the paper names
    it, :func:`table_title`), one line per gain (a row's step or its
    comparison), each estimate a marker (:data:`STYLE`) with its 95 % interval
    as a bar, the paper's gain an open black diamond, zero a vertical line. A
    gain whose bar crosses the line is not distinguishable from noise. A
    Table 1's "whole system vs Baseline" line is its last row against the
    Baseline. ``seeds``: the same gains under other seeds (long table with a
    ``seed`` column; seed 0, the drawn one, is skipped), drawn as small open
    markers of the estimate's colour on its line. Saved to ``out_path`` when
    given; returns the figure."""
    if gains.empty:
        raise ValueError("no gains to plot: the tables have no gain columns (regenerate them with notebook 07)")
    names = list(dict.fromkeys(gains["table"]))
    sizes = [gains.loc[gains["table"] == n, ["row", "comparison"]].drop_duplicates().shape[0] for n in names]
    fig = Figure(figsize=(9, 1.2 + 0.42 * sum(sizes) + 0.5 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True, height_ratios=[max(s, 1) for s in sizes])[:, 0]
    offsets = dict(zip(ESTIMATES, (-0.22, 0.0, 0.22)))
    other = seeds[seeds["seed"] != 0] if seeds is not None and len(seeds) else None
    for ax, name in zip(axes, names):
        sub = gains[gains["table"] == name]
        lines = list(dict.fromkeys(zip(sub["row"], sub["comparison"])))
        steps = {r for r, c in lines if c == "vs previous row"}
        labels = ["whole system vs Baseline" if (c == "vs Baseline" and steps) else r for r, c in lines]
        for y, (r, c) in enumerate(lines):
            line = sub[(sub["row"] == r) & (sub["comparison"] == c)]
            for _, g in line.iterrows():
                if not np.isfinite(g["gain"]):
                    continue
                marker, colour = STYLE[g["estimate"]]
                yy = y + offsets[g["estimate"]]
                if np.isfinite(g["lo"]) and np.isfinite(g["hi"]):
                    ax.plot([g["lo"], g["hi"]], [yy, yy], color=colour, lw=1.6, alpha=0.8)
                ax.plot(g["gain"], yy, marker, color=colour, ms=5)
                if other is not None:
                    at = other[(other["table"] == name) & (other["row"] == r) & (other["comparison"] == c)
                               & (other["estimate"] == g["estimate"])]["gain"].dropna()
                    ax.plot(at, np.full(len(at), yy), marker, mfc="none", mec=colour, ms=4, alpha=0.9)
            paper = line["paper"].dropna()
            if len(paper):
                ax.plot(paper.iloc[0], y, "D", mfc="none", mec="black", ms=7)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks(range(len(lines)), labels, fontsize=8)
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(table_title(name), fontsize=9, loc="left")
    intervals = bool((gains["lo"].notna() & gains["hi"].notna()).any())
    axes[-1].set_xlabel("gain in final score (acc + F1) / 2" + (", 95 % interval" if intervals else ""))
    handles = [Line2D([], [], marker=STYLE[e][0], color=STYLE[e][1], label=e) for e in ESTIMATES]
    if gains["paper"].notna().any():
        handles.append(Line2D([], [], marker="D", mfc="none", mec="black", ls="none", label="paper"))
    if other is not None and len(other):
        n = other["seed"].nunique()
        handles.append(Line2D([], [], marker="o", mfc="none", mec="0.3", ls="none",
                              label=f"retrained under {n} other seed{'s' if n > 1 else ''}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "Gains per step, per estimate (bars: 95 % paired bootstrap intervals)", fontsize=10)
    if out_path is not None:
        save_figure(fig, out_path, dpi)
    return fig


def read_seed_gains(tables_dir) -> pd.DataFrame | None:
    """``seed_gains.csv`` of a tables folder (``benchmarks/seed_spread.py --tables``), or None."""
    path = Path(tables_dir) / "seed_gains.csv"
    return pd.read_csv(path) if path.exists() else None


def forest_figure(ws, out_name: str = "gains_forest.png") -> Path:
    """The forest plot of every Table 1 / 3 gain in ``ws.tables`` (with the
    other seeds' gains of ``seed_gains.csv`` where it exists), written to
    ``<ws.figures>/<out_name>``; returns its path."""
    path = Path(ws.figures) / out_name
    seeds = read_seed_gains(ws.tables)
    title = None
    if seeds is not None:
        title = ("Gains per step, per estimate (bars: 95 % paired bootstrap intervals; open markers: "
                 "the same gain with every run retrained under another seed)")
    plot_forest(all_gains(ws.tables), out_path=path, seeds=seeds, title=title)
    return path


def choice_figure(ws, table: pd.DataFrame, group: str) -> Path:
    """Notebook 06's figure: each strategy's gain over the baseline under the
    three estimates, with its 95 % interval where the report has one,
    written to ``<ws.figures>/choice_<group>.png``."""
    path = Path(ws.figures) / f"choice_{group}.png"
    plot_forest(choice_gains(table, group), out_path=path,
                title=f"{group}: gain of each strategy over the baseline (final score), per estimate"
                      " (bars: 95 % paired bootstrap intervals)")
    return path
