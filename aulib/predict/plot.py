"""Figures of predictions on new pictures: each face (its 5 landmarks
marked) beside a bar chart of its AU probabilities named by AU, with the
chosen threshold of every AU marked, and the predictor's note (models
trained on SynthAU) above them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..aus import AU_NAMES
from ..data.faces.columns import BOX_COLUMNS
from ..data.images import ImageReadError
from ..data.faces.align import box_crop, box_matrix
from .formats import LANDMARK_COLUMNS, au_name, prob_column, table_aus
from .inputs import read_frame


def plot_faces(results: pd.DataFrame, thresholds, max_faces: int = 8, context: float = 1.4, size: int = 160,
               root=None, note: str | None = None):
    """Figure with one row per face (the first ``max_faces`` rows with a face).

    Left: the face, cut from its picture as the square of ``context`` times
    the detector box. Right: horizontal bars of the ``AU01_prob`` … probabilities,
    filled where the AU is decided present (``prob >= threshold``), a black
    tick at each AU's threshold. ``thresholds``: mapping or Series AU ->
    threshold (``Predictor.thresholds``). ``root``: the folder relative
    ``image`` paths are relative to (``relative_to`` of the prediction).
    ``note``: a line over the figure (default: ``results.attrs["note"]``, the
    predictor's note when its models were trained on SynthAU).
    Returns the matplotlib Figure
    (None when no row has a face).
    """
    import matplotlib.pyplot as plt  # heavy optional dependency: only when plotting

    faces = results[results["n_faces"] > 0].head(max_faces)
    if faces.empty:
        return None
    aus = table_aus(results)
    cols = [prob_column(a) for a in aus]
    thr = np.array([float(pd.Series(thresholds)[a]) for a in aus])
    fig, axes = plt.subplots(len(faces), 2, figsize=(9, 0.25 * len(aus) + 1.2 * len(faces) + 0.5),
                             gridspec_kw={"width_ratios": [1, 2.6]}, squeeze=False)
    pictures: dict = {}
    y = np.arange(len(aus))
    for (_, row), (ax_img, ax_bar) in zip(faces.iterrows(), axes):
        source = Path(root) / row["image"] if root is not None and not Path(row["image"]).is_absolute() \
            else row["image"]
        key = (source, None if pd.isna(row["frame"]) else int(row["frame"]))
        if key not in pictures:
            try:
                pictures[key] = read_frame(*key)
            except (ImageReadError, OSError, ValueError):
                pictures[key] = None
        img = pictures[key]
        if img is not None:
            box = [row[c] for c in BOX_COLUMNS]
            ax_img.imshow(box_crop(img, box, size, scale=context))
            lm = np.array([row.get(c, np.nan) for c in LANDMARK_COLUMNS], float).reshape(5, 2)
            if np.isfinite(lm).all():     # the landmarks mapped as the crop's pixels are
                m = box_matrix(box, size, context)
                xy = lm @ m[:, :2].T + m[:, 2]
                ax_img.scatter(xy[:, 0], xy[:, 1], s=12, c="yellow", edgecolors="black", linewidths=0.5)
        else:
            ax_img.text(0.5, 0.5, "picture not on disk", ha="center", va="center", fontsize=8)
        where = str(row["image"]).replace("\\", "/").rsplit("/", 1)[-1]
        if key[1] is not None:
            where += f"\nframe {key[1]}"
        ax_img.set_title(f"{where}\nface {int(row['face'])}", fontsize=8)
        ax_img.axis("off")
        p = row[cols].to_numpy(dtype=float)
        on = p >= thr
        ax_bar.barh(y, p, color=np.where(on, "tab:red", "lightgray"), edgecolor="tab:red", height=0.7)
        ax_bar.vlines(thr, y - 0.4, y + 0.4, color="black", linewidth=1.2)
        ax_bar.set_yticks(y, [f"{au_name(a)} {AU_NAMES.get(a, '')}".strip() for a in aus], fontsize=7)
        for yi in np.flatnonzero(on):
            ax_bar.text(min(p[yi] + 0.01, 0.9), yi, f"{p[yi]:.2f}", va="center", fontsize=6)
        ax_bar.invert_yaxis()
        ax_bar.set_xlim(0, 1)
        ax_bar.set_xlabel("probability (bar) and chosen threshold (tick); red: present", fontsize=8)
    note = results.attrs.get("note") if note is None else note
    if note:
        fig.suptitle(note, color="darkred", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["plot_faces"]
