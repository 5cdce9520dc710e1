"""GitHub Markdown tables from data frames (no extra package, no torch)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A GitHub Markdown table of ``df`` (no index), floats as ``floatfmt``
    (but as whole numbers in a float column of counts: every value whole and
    one above 1, e.g. counts made floats by a NaN; scores in [0, 1] keep
    ``floatfmt``), NaN as an empty cell; needs no extra package."""
    def counts(col: pd.Series) -> bool:
        v = col.dropna().to_numpy(np.float64) if pd.api.types.is_float_dtype(col) else np.empty(0)
        return v.size > 0 and bool((v == np.round(v)).all()) and bool(np.abs(v).max() > 1)

    def cell(v, fmt: str) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(float(v), fmt)
        return str(v).replace("|", "\\|").replace("\n", " ")

    fmts = [".0f" if counts(df[c]) else floatfmt for c in df.columns]
    head = [str(c) for c in df.columns]
    body = [[cell(v, f) for v, f in zip(r, fmts)] for r in df.itertuples(index=False, name=None)]
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if n else ":---" for n in num) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"
