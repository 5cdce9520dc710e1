"""A run's predictions on a split at chosen epochs, predicted from their
checkpoints where no file holds them (held-out, validation, test splits).

Training scores split B every epoch, because every choice (checkpoint,
threshold, ensemble) is made on B. The held-out split a run's config names
(``heldout``, ``H`` on EmotioNet) only has to be scored at the (run, epoch)
candidates a choice picked: :func:`preds_at_epochs` reads the prediction
files that exist (runs that listed the split in ``eval_splits`` wrote one
every epoch) and predicts the missing epochs from their checkpoints with
:func:`aulib.infer.sharded.predict_split_probs`, the loader and views
training evaluates with, writing ``preds/<split>[_mc]_epoch<NNN>.npy`` as
training would, so the next call only reads. That halves a multi-crop
epoch's evaluation; the price is keeping the checkpoints
(``keep_checkpoints: all``, the default).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runs import RunPreds, load_run_preds, read_config
from ..workspace import RunDir, Workspace
from .sharded import predict_split_probs


def pred_name(split: str, multicrop: bool) -> str:
    """File stem of a split's predictions: ``<split>`` or ``<split>_mc``."""
    return f"{split}_mc" if multicrop else split


def unobtainable_epochs(run_dir, split: str, epochs, multicrop: bool = False) -> list[int]:
    """Epochs of ``epochs`` that have neither ``split`` predictions nor a
    checkpoint to predict them from (sorted; empty when all can be had)."""
    rd = RunDir(run_dir)
    have = set(rd.pred_epochs(pred_name(split, multicrop))) | set(rd.checkpoint_epochs())
    return sorted({int(e) for e in np.atleast_1d(epochs)} - have)


def preds_at_epochs(ws: Workspace, run_dir, split: str, epochs, multicrop: bool = False,
                      device: str = "auto") -> RunPreds:
    """A run's probabilities on ``split`` (of workspace ``ws``) at ``epochs``
    (the distinct epoch numbers, sorted), predicting every epoch without a
    prediction file from its checkpoint first. Raises FileNotFoundError,
    naming the run and epochs, when a checkpoint it needs was pruned."""
    run_dir = Path(run_dir)
    want = sorted({int(e) for e in np.atleast_1d(epochs)})
    gone = unobtainable_epochs(run_dir, split, want, multicrop)
    if gone:
        keep = read_config(run_dir).get("keep_checkpoints")
        raise FileNotFoundError(
            f"run {run_dir.name} has no {pred_name(split, multicrop)} predictions at epochs {gone} and no "
            f"checkpoint to predict them from (keep_checkpoints: {keep!r}); keep every checkpoint "
            f"(keep_checkpoints: all, the default) or score {split} every epoch (eval_splits: [B, {split}])")
    have = set(RunDir(run_dir).pred_epochs(pred_name(split, multicrop)))
    cfg = read_config(run_dir)
    batch = int(cfg.get("eval_batch_size") or 2 * int(cfg.get("batch_size", 32)))   # training's evaluation batch
    for e in want:
        if e not in have:
            predict_split_probs(run_dir, e, ws, split=split, multicrop=multicrop, device=device, batch_size=batch)
    return load_run_preds(run_dir, pred_name(split, multicrop), want)
