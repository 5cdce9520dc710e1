"""Test helper: a tiny, learnable workspace for training tests (train/, model/, e2e/).

The workspace follows docs/layout.md: a crop store (``crops/box1.5_32``) whose
images show one bright square per present head-pose AU (6au group), and split
files A, B (two variants per image), test and C_6au; :func:`tiny_config` is a
TrainConfig that trains on it in seconds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aulib import aus as aulib_aus
from aulib.io import write_csv, write_npy, write_yaml
from aulib.model.config import TrainConfig
from aulib.workspace import Workspace

GROUP = "6au"
SIZE = 32


def make_workspace(root: Path, n_a: int = 384, n_b: int = 48, n_test: int = 24, seed: int = 0) -> Workspace:
    """A workspace whose 6au crops are easy to learn: AU j present <=> cell j
    of a 2 x 3 grid is bright (plus noise); ~10% unknown labels."""
    rng = np.random.default_rng(seed)
    aus = aulib_aus.group_aus(GROUP)
    n = n_a + n_b + n_test
    images = [f"images/optimization/{i:06d}.jpg" for i in range(n)]
    y = (rng.random((n, len(aus))) < 0.4).astype(np.int8)
    pixels = rng.integers(0, 60, (n, SIZE, SIZE, 3), dtype=np.uint8)
    h, w = SIZE // 2, SIZE // 3
    for j in range(len(aus)):
        r0, c0 = h * (j // 3), w * (j % 3)
        pixels[y[:, j] == 1, r0:r0 + h, c0:c0 + w] += 160
    labels = np.where(rng.random(y.shape) < 0.1, -1, y).astype(np.int8)
    ws = Workspace(root.resolve(), (root / "results").resolve())
    store = ws.crops("box1.5", SIZE)
    store.mkdir(parents=True)
    pixels.tofile(store / "pixels.u8")
    write_csv(store / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": "ok"}))
    write_npy(store / "done.npy", np.ones(n, dtype=bool))
    write_yaml(store / "meta.yaml", {"format": "aulib-crop-store/1", "style": "box1.5", "size": SIZE, "n": n})

    def split(name, rows, variants=1):
        df = pd.DataFrame({"image": np.repeat(np.asarray(images)[rows], variants),
                           "variant": np.tile(np.arange(variants), len(rows))})
        lab = pd.DataFrame(np.repeat(labels[rows], variants, axis=0), columns=aulib_aus.au_columns(aus))
        write_csv(ws.split(name), pd.concat([df, lab], axis=1))

    split("A", np.arange(n_a))
    split("B", np.arange(n_a, n_a + n_b), variants=2)
    split("test", np.arange(n_a + n_b, n))
    split(f"C_{GROUP}", np.arange(n_a + n_b, n))  # stands in for the filtered noisy set
    return ws


def tiny_config(ws: Workspace, **kw) -> TrainConfig:
    base = dict(workspace=str(ws.root), group=GROUP, img_size=SIZE, batch_size=32, epochs=3, lr=3e-3,
                heldout="test", warmup_epochs=0.5, progress=False, seed=1)
    return TrainConfig(**{**base, **kw})
