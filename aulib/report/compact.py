"""Tables in their reading form: what a notebook shows and results/README.md
prints, while the full columns stay in the CSVs.

- :func:`compact_frame`: a Table 1 / 3 as per row the paper's final score,
  then per estimate our final score and the row's gain (vs the row above in
  Table 1, vs Baseline in Table 3) with its 95 % interval, and the seed
  spread where the table has one; every cell already text.
- :func:`style_compact`: that frame as a notebook Styler (one line per cell).
- :func:`style_per_au`: the per-AU baseline table (``per_au_baselines``)
  with F1 to 3 decimals, counts as whole numbers and a dash where a group
  has no such AU (never ``nan`` or ``88.000``), an F1 at or below the AU's
  trivial F1 (the all-present predictor's, ``2p/(1+p)``) in red.
"""
from __future__ import annotations

import pandas as pd

ESTIMATES = ("B", "B cross-fit", "Held-out")


def interval_cell(g: float, lo: float = float("nan"), hi: float = float("nan")) -> str:
    """``+0.0102 [-0.0030, +0.0210]`` (no brackets without an interval; empty for NaN)."""
    if g != g:
        return ""
    return f"{g:+.4f}" + (f" [{lo:+.4f}, {hi:+.4f}]" if lo == lo and hi == hi else "")


def gain_cell(row: pd.Series, col: str) -> str:
    """:func:`interval_cell` of column ``col`` of a table row and its ``lo`` / ``hi``."""
    return interval_cell(*(float(row.get(c, float("nan"))) for c in (col, f"{col} lo", f"{col} hi")))


def _num(v, fmt: str = ".4f") -> str:
    return "" if v is None or v != v else format(float(v), fmt)


def compact_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The reading form of a Table 1 or 3 (its full DataFrame or CSV):
    ``row``, ``paper`` (the paper's final score), then per estimate ``<est>``
    (final score) and ``<est> gain`` (with its interval), plus the table's
    seed-spread columns. Every cell is text ('' where there is no number)."""
    comp = "vs previous row" if "B gain vs previous row" in df.columns else "vs Baseline"
    out = pd.DataFrame({"row": df["row"].astype(str), "paper": df["Paper Final"].map(_num)})
    for est in ESTIMATES:
        out[est] = df[f"{est} Final"].map(_num)
        if f"{est} gain {comp}" in df.columns:
            out[f"{est} gain"] = [gain_cell(r, f"{est} gain {comp}") for _, r in df.iterrows()]
        for col in [c for c in df.columns if c.startswith(f"{est} ") and "seed" in c]:
            out[col] = df[col].map(_num)
    out.attrs["comparison"] = comp
    return out


def style_compact(df: pd.DataFrame, caption: str | None = None):
    """:func:`compact_frame` of a table as a notebook Styler: no index, no
    wrapping inside a cell, numbers right-aligned, the paper's column shaded;
    ``caption`` above it (default: which comparison the gains make)."""
    frame = compact_frame(df)
    cap = caption or (f"final score per estimate; gain {frame.attrs['comparison']} with its 95 % interval "
                      "(all columns: the CSV)")
    return (frame.style.hide(axis="index").set_caption(cap)
            .set_properties(**{"white-space": "nowrap", "text-align": "right", "font-size": "12px"})
            .set_properties(subset=["row"], **{"text-align": "left"})
            .set_properties(subset=["paper"], **{"background-color": "#eef2f7"}))


def at_trivial(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell of every ``F1 <run>`` column of the per-AU baseline table
    (``per_au_baselines``): whether the F1 is at or below the same run's
    ``trivial F1 <run>`` of that AU (no better than calling the AU present
    everywhere). False where either is missing."""
    out = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col in [c for c in df.columns if str(c).startswith("F1 ")]:
        triv = f"trivial {col}"
        if triv in df.columns:
            f1, t = pd.to_numeric(df[col], errors="coerce"), pd.to_numeric(df[triv], errors="coerce")
            out[col] = (f1 <= t).fillna(False).astype(bool)
    return out


def style_per_au(df: pd.DataFrame):
    """The per-AU baseline table (``au``, ``F1 <run>``, ``trivial F1 <run>``,
    ``positives <run>``) for a notebook: F1 to 3 decimals (red at or below the
    AU's trivial F1, :func:`at_trivial`), positives as whole numbers, '–'
    where the run has no such AU."""
    f1 = [c for c in df.columns if str(c).startswith(("F1", "trivial F1"))]
    counts = [c for c in df.columns if str(c).startswith("positives")]
    fmt = {**{c: "{:.3f}" for c in f1}, **{c: (lambda v: "–" if v != v or v is pd.NA else f"{int(v):d}")
                                           for c in counts}}
    st = df.style.format(fmt, na_rep="–").hide(axis="index")
    low = at_trivial(df)
    return st.apply(lambda _: low.map(lambda v: "background-color: #f4c7c3" if v else ""), axis=None)


__all__ = ["compact_frame", "style_compact", "style_per_au", "at_trivial", "interval_cell", "gain_cell"]
