"""Test helper: run directories with known convergence, written without training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aulib.aus import au_columns, group_aus
from aulib.io import write_csv, write_npy, write_yaml
from aulib.pred_index import write_index
from aulib.metrics import batched_scores
from aulib.workspace import RunDir


def write_synthetic_run(run_dir, group: str = "17au", peaks=None, epochs: int = 12, n_images: int = 150,
                        variants: int = 4, heldout: str | None = "test", n_heldout: int = 300,
                        split: str = "B", seed: int = 0, data_seed: int = 0,
                        run_name: str | None = None) -> Path:
    """Write a run directory with known convergence, without training.

    For trying Figure 2 and the choice (and testing them): AU ``j`` has a
    separability that rises to a peak at epoch ``peaks[j]`` and decays after
    it, so its best epoch is known. Rows of ``split`` are ``n_images`` images
    × ``variants`` (like B's ×4 expansion, variants of one image share labels
    and most of their noise); ``heldout`` gets ``n_heldout`` images with the
    same model. About 10 % of labels are unknown (-1). Runs with the same
    ``data_seed`` (and sizes) share their rows and labels; ``seed`` sets the
    model noise. Writes
    ``config.yaml``, ``log.csv`` (epoch and the B scores at 0.5) and
    ``preds/`` in the run-directory format; no checkpoints.
    ``peaks`` defaults to epochs spread over the run.
    """
    run_dir = Path(run_dir)
    aus = group_aus(group)
    c = len(aus)
    if peaks is None:
        peaks = np.linspace(1, epochs, c).round().astype(int)
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.shape != (c,) or peaks.min() < 1 or peaks.max() > epochs:
        raise ValueError(f"peaks must give one epoch in 1..{epochs} per AU ({c}); got {peaks.tolist()}")
    data = np.random.default_rng(data_seed)  # labels: shared by every run with the same data_seed
    model = np.random.default_rng(seed)  # model noise: differs between runs
    prevalence = data.uniform(0.08, 0.45, c)
    ep = np.arange(1, epochs + 1)[:, None]
    # separability per epoch and AU: highest (1.4) at peaks[j], falling off on both sides
    strength = 0.4 + 1.0 * (1 - np.abs(ep - peaks[None, :]) / epochs) ** 2
    bias = model.normal(-0.6, 0.3, c)

    def make(split_name, n_img, n_var):
        y = (data.random((n_img, c)) < prevalence).astype(np.int8)
        y = np.repeat(y, n_var, axis=0)
        labels = np.where(data.random(y.shape) < 0.1, -1, y).astype(np.int8)
        z = np.repeat(model.normal(size=(n_img, c)), n_var, axis=0) + 0.3 * model.normal(size=y.shape)
        logits = strength[:, None, :] * (2 * y[None] - 1) + z[None] + bias \
            + 0.02 * model.normal(size=(epochs,) + y.shape)
        probs = (1 / (1 + np.exp(-logits))).astype(np.float16)
        folder = {"B": "optimization", "test": "test"}.get(split_name, split_name)
        index = pd.DataFrame({"image": np.repeat([f"images/{folder}/{i:06d}.jpg" for i in range(n_img)], n_var),
                              "variant": np.tile(np.arange(n_var), n_img)})
        index = pd.concat([index, pd.DataFrame(labels, columns=au_columns(aus))], axis=1)
        write_index(RunDir(run_dir).index(split_name), index)
        for e in range(epochs):
            write_npy(RunDir(run_dir).preds(split_name, e + 1), probs[e])
        return labels, probs

    labels, probs = make(split, n_images, variants)
    if heldout:
        make(heldout, n_heldout, 1)
    s = batched_scores(labels, probs.astype(np.float32), 0.5)
    log = pd.DataFrame({"epoch": np.arange(1, epochs + 1), f"{split}_acc": s["acc"].mean(1),
                        f"{split}_f1": s["f1"].mean(1), f"{split}_final": s["mean_final"]})
    for j, a in enumerate(aus):
        log[f"{split}_final_AU{a}"] = s["final"][:, j]
    write_csv(RunDir(run_dir).log, log)
    write_yaml(RunDir(run_dir).config, {
        "run_name": run_name or run_dir.name, "group": group, "backbones": ["synthetic", "synthetic"],
        "img_size": 64, "crop_style": "aligned" if group != "6au" else "box1.5", "stage": "finetune",
        "epochs": int(epochs), "heldout": heldout, "seed": int(seed), "synthetic_peaks": peaks.tolist()})
    return run_dir
