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

from ..runs import RunPreds, load_run_preds, missing_pred_epochs
from ..workspace import Workspace
from .checkpoints import load_run_config
from .sharded import predict_split_probs


def preds_at_epochs(ws: Workspace, run_dir, split: str, epochs, multicrop: bool = False,
                    device: str = "auto") -> RunPreds:
    """A run's probabilities on ``split`` (of workspace ``ws``) at ``epochs``
    (the distinct epoch numbers, sorted), predicting every epoch without a
    prediction file from its checkpoint first, in training's evaluation batch.
    Raises FileNotFoundError, naming the run and epochs, when a checkpoint it
    needs was pruned."""
    name, want, missing = missing_pred_epochs(run_dir, split, epochs, multicrop)
    if not missing:
        return load_run_preds(run_dir, name, want)
    batch = load_run_config(run_dir).resolved().eval_batch_size
    for e in missing:
        predict_split_probs(run_dir, e, ws, split=split, multicrop=multicrop, device=device, batch_size=batch)
    return load_run_preds(run_dir, name, want)


def predict_needed(ws: Workspace, needed, device: str = "auto") -> list[str]:
    """The inference step before choice and tables (notebooks 06 and 07):
    every request of ``needed`` (``(run_dir, split, epochs, multicrop)``
    tuples, :class:`aulib.select.stored.PredRequest`) predicted where no file
    holds it (:func:`preds_at_epochs`). A request that cannot be met (a pruned
    checkpoint, a split without crops) is skipped: its message is printed and
    returned, and the reading step reports it as before (a held-out estimate
    or Table 2 row left out, with the reason)."""
    notes = []
    for run_dir, split, epochs, multicrop in needed:
        try:
            preds_at_epochs(ws, run_dir, split, epochs, multicrop=multicrop, device=device)
        except FileNotFoundError as err:
            notes.append(str(err))
            print(f"note: {err}", flush=True)
    return notes
