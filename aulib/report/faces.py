"""A grid of faces captioned with the AUs labelled present."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..aus import CATALOG, au_column
from ..data.images import load_rgb, resolve_image
from .figure1 import save_figure


def load_images(data_root, image_paths: Sequence[str]) -> list[np.ndarray]:
    """Images (paths relative to ``data_root``) as RGB ``uint8 (H, W, 3)`` arrays."""
    return [load_rgb(resolve_image(data_root, p)) for p in image_paths]


def au_caption(row, aus: Sequence[int] | None = None, per_line: int = 6) -> str:
    """Caption of one label row: the AU numbers labelled 1 (``?n`` for an
    unknown label), ``per_line`` to a line; ``no AU`` when none is present.
    ``aus`` None: every AU column the row has, in catalog order."""
    if aus is None:
        aus = [a for a in CATALOG if au_column(a) in row.index]
    items = [str(a) if row[au_column(a)] == 1 else f"?{a}" for a in aus if row[au_column(a)] != 0]
    if not any(not s.startswith("?") for s in items):
        items = ["no AU"] + items
    lines = [" ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "\n".join(lines)


def face_grid(images: Sequence[np.ndarray], labels: pd.DataFrame, aus: Sequence[int] | None = None,
              ncols: int = 8, out_path=None, title: str | None = None, size: float = 1.6):
    """Grid of images, each captioned with its AUs present (see :func:`au_caption`).

    ``images``: RGB arrays; ``labels``: label rows (``AU<n>`` columns), one
    per image, in the same order. Saves a PNG at ``out_path`` if given.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if len(images) != len(labels):
        raise ValueError(f"face_grid: {len(images)} images but {len(labels)} label rows; give one row per image")
    if len(images) == 0:
        raise ValueError("face_grid: no images to show")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.45) * nrows), squeeze=False,
                             layout="constrained")
    rows = labels.reset_index(drop=True)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k])
            ax.set_title(au_caption(rows.iloc[k], aus), fontsize=7)
    if title:
        fig.suptitle(title)
    if out_path is not None:
        save_figure(fig, out_path)
    return fig


def example_grid(data_root, labels: pd.DataFrame, n: int = 16, seed: int = 0, aus: Sequence[int] | None = None,
                 ncols: int = 8, out_path=None, title: str | None = None):
    """:func:`face_grid` of ``n`` rows of a label table drawn at random
    (``seed``), images read from ``data_root``."""
    rows = labels.sample(min(n, len(labels)), random_state=seed) if len(labels) else labels
    return face_grid(load_images(data_root, rows["image"].tolist()), rows, aus, ncols=ncols, out_path=out_path,
                     title=title)
