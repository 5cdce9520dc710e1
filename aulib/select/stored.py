"""Predictions at chosen epochs, read from the files inference wrote.

Choice (notebook 06) and tables (07) read prediction files only. Training
scores B every epoch; the held-out, validation and test splits are scored
only at the (run, epoch) candidates a choice picks. Those are listed by
:func:`aulib.select.choose.predictions_needed` and
:func:`aulib.select.recipes.predictions_needed` (one :class:`PredRequest`
per run and split) and written by the explicit inference step
:func:`aulib.infer.at_epochs.predict_needed`, which notebooks 06 and 07 call
before choosing; :func:`stored_preds` then reads them, and says which call
to make when a file is missing.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..runs import RunPreds, load_run_preds, missing_pred_epochs
from ..workspace import RunDir

#: The inference call that writes missing predictions (named in :class:`MissingPredictions`).
PREDICT_CALL = "aulib.infer.at_epochs.predict_needed(ws, needed)"


class MissingPredictions(LookupError):
    """A prediction file a choice or table reads was never written (its
    checkpoint exists): the inference step was not run first."""


class PredRequest(NamedTuple):
    """Prediction files one run must have: ``preds/<split>[_mc]_epoch<NNN>.npy``
    for each of ``epochs`` (sorted, distinct)."""

    run_dir: Path
    split: str
    epochs: tuple[int, ...]
    multicrop: bool = False


def request(run_dir, split: str, epochs, multicrop: bool = False) -> PredRequest:
    """A :class:`PredRequest` of the distinct ``epochs`` (any int array)."""
    return PredRequest(Path(run_dir), split, tuple(sorted({int(e) for e in np.atleast_1d(epochs)})), bool(multicrop))


def merge_requests(requests) -> list[PredRequest]:
    """One request per (run, split, multicrop), its epochs the union, in first-seen order."""
    out: dict = {}
    for r in requests:
        key = (Path(r.run_dir), r.split, bool(r.multicrop))
        out[key] = out.get(key, set()) | {int(e) for e in r.epochs}
    return [PredRequest(d, s, tuple(sorted(eps)), mc) for (d, s, mc), eps in out.items()]


def stored_preds(run_dir, split: str, epochs, multicrop: bool = False) -> RunPreds:
    """A run's probabilities on ``split`` at ``epochs`` (the distinct epoch
    numbers, sorted), read from its prediction files. Raises
    FileNotFoundError, naming the run and epochs, when a file is missing and
    its checkpoint was pruned (nothing can make it), and
    :class:`MissingPredictions`, naming the file and the inference call,
    when the checkpoint is there but the inference step was not run."""
    name, want, missing = missing_pred_epochs(run_dir, split, epochs, multicrop)
    if not missing:
        return load_run_preds(run_dir, name, want)
    rd = RunDir(run_dir)
    raise MissingPredictions(
        f"{rd.preds(name, missing[0])} not found (run {rd.path.name}, {name} epochs {missing}): predict them "
        f"first with {PREDICT_CALL}, where needed = aulib.select.choose.predictions_needed(...) (notebook 06) or "
        "aulib.select.recipes.predictions_needed(ws, spec) (notebook 07)")
