"""The gains of Tables 1 and 3 (and of notebook 06's strategies) as one long
table and as a forest plot: every gain with its 95 % interval, per estimate.

Which gains: each step of a Table 1 (a row vs the row above) and its whole
system (the last row vs Baseline); each ablation of Table 3 (vs Baseline).
Columns of :func:`table_gains`: ``table, row, comparison, estimate, gain,
lo, hi, paper`` (final-score differences; ``lo``/``hi`` NaN without an
interval, ``paper`` the paper's gain or NaN).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figure1 import save_figure

ESTIMATES = ("B", "B cross-fit", "Held-out")
#: Marker and colour per estimate (the same in every gain figure).
STYLE = {"B": ("o", "tab:red"), "B cross-fit": ("s", "tab:blue"), "Held-out": ("D", "tab:green")}
#: The Table 1 / 3 CSVs a forest plot reads, in order.
TABLES = ("table1_17au", "table1_6au", "table3")
#: notebook 06's estimate names (``ChoiceReport.table``) -> the tables' names.
CHOICE_ESTIMATES = {"optimistic": "B", "cross_fitted": "B cross-fit", "heldout": "Held-out"}


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
    ``gain_<estimate>``) in the long form of :func:`table_gains` (no intervals:
    the choice report has none), the baseline strategy left out."""
    out = []
    for strategy in [s for s in table.index if s != "baseline"]:
        for key, est in CHOICE_ESTIMATES.items():
            g = table.loc[strategy].get(f"gain_{key}", np.nan)
            out.append({"table": f"choice {group}".strip(), "row": str(strategy), "comparison": "vs baseline",
                        "estimate": est, "gain": float(g), "lo": np.nan, "hi": np.nan, "paper": np.nan})
    return pd.DataFrame(out, columns=["table", "row", "comparison", "estimate", "gain", "lo", "hi", "paper"])


def plot_forest(gains: pd.DataFrame, out_path=None, title: str | None = None, dpi: int = 150) -> Figure:
    """Forest plot of a long gain table (:func:`table_gains`, :func:`all_gains`
    or :func:`choice_gains`): one panel per table, one line per gain (a row's
    step or its comparison), each estimate a marker (:data:`STYLE`) with its
    95 % interval as a bar, the paper's gain an open black diamond, zero a
    vertical line. A gain whose bar crosses the line is not distinguishable
    from noise. A Table 1's "whole system vs Baseline" line is its last row
    against the Baseline. Saved to ``out_path`` when given; returns the figure."""
    if gains.empty:
        raise ValueError("no gains to plot: the tables have no gain columns (regenerate them with notebook 07)")
    names = list(dict.fromkeys(gains["table"]))
    sizes = [gains.loc[gains["table"] == n, ["row", "comparison"]].drop_duplicates().shape[0] for n in names]
    fig = Figure(figsize=(9, 1.2 + 0.42 * sum(sizes) + 0.5 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True, height_ratios=[max(s, 1) for s in sizes])[:, 0]
    offsets = dict(zip(ESTIMATES, (-0.22, 0.0, 0.22)))
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
            paper = line["paper"].dropna()
            if len(paper):
                ax.plot(paper.iloc[0], y, "D", mfc="none", mec="black", ms=7)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks(range(len(lines)), labels, fontsize=8)
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(name, fontsize=9, loc="left")
    intervals = bool((gains["lo"].notna() & gains["hi"].notna()).any())
    axes[-1].set_xlabel("gain in final score (acc + F1) / 2" + (", 95 % interval" if intervals else ""))
    handles = [Line2D([], [], marker=STYLE[e][0], color=STYLE[e][1], label=e) for e in ESTIMATES]
    if gains["paper"].notna().any():
        handles.append(Line2D([], [], marker="D", mfc="none", mec="black", ls="none", label="paper"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "Gains per step, per estimate (bars: 95 % paired bootstrap intervals)", fontsize=10)
    if out_path is not None:
        save_figure(fig, out_path, dpi)
    return fig


def forest_figure(ws, out_name: str = "gains_forest.png") -> Path:
    """The forest plot of every Table 1 / 3 gain in ``ws.tables``, written to
    ``<ws.figures>/<out_name>``; returns its path."""
    path = Path(ws.figures) / out_name
    plot_forest(all_gains(ws.tables), out_path=path)
    return path


def choice_figure(ws, table: pd.DataFrame, group: str) -> Path:
    """Notebook 06's figure: each strategy's gain over the baseline under the
    three estimates, written to ``<ws.figures>/choice_<group>.png``."""
    path = Path(ws.figures) / f"choice_{group}.png"
    plot_forest(choice_gains(table, group), out_path=path,
                title=f"{group}: gain of each strategy over the baseline (final score), per estimate")
    return path
