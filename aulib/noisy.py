"""Noisy-label filtering: from the weakly labelled set to dataset C.

The paper (Sec. 2.1): a base model trained on A predicts every noisy image;
"we choose to use the label only if it is the same as the official given
noisy label and the prediction probability is larger than a pre-defined
threshold". Per image and AU, with the model's probability ``p``, the
decision threshold ``thr`` (0.5, or per AU) and the confidence ``t``:

- noisy label 1 is kept   iff ``p >= thr`` (the model agrees) and ``p >= t``;
- noisy label 0 is kept   iff ``p <  thr`` (the model agrees) and ``p <= 1 - t``;
- every other label (disagreement, low confidence, or unknown ``-1`` in the
  noisy list) becomes unknown ``-1``.

Images left with no known label are dropped. The result is written as the
split ``C_<group>`` (``splits/C_<group>.csv``): 17au and 6au get different
base models (different crops, different AUs), so each group has its own C.

Prediction of the noisy set is chunked, resumable and shardable
(:func:`aulib.infer.sharded.predict_split_probs`)::

    torchrun --nproc_per_node 4 -m aulib.noisy --run-dir runs/paper/train/17au_base --epoch 23 \
        --workspace runs/paper --build-c --confidence 0.7

Under torchrun (one machine or several, ``--nnodes``) every rank predicts and
sends its chunks to global rank 0, which alone writes (chunks, predictions,
C, the report); every machine reads the noisy split, the crop store and the
base run's config.yaml and checkpoint from its own ``--workspace``.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .aus import au_columns, aus_of, get_group
from .data.labels import table_au_columns
from .data.splits import read_split
from .infer.sharded import CHUNK_ROWS, predict_in_chunks, predict_split_probs  # noqa: F401 - re-exported
from .io import write_csv
from .runs import load_run_preds, read_config, run_aus
from .select.choose import choose_indices
from .model import distributed
from .model.config import TrainConfig
from .train.loop import train
from .workspace import Workspace

def filter_noisy(noisy: pd.DataFrame, probs: np.ndarray, aus, threshold=0.5, confidence: float = 0.7
                 ) -> pd.DataFrame:
    """Dataset C from a noisy split table and a base model's probabilities.

    ``noisy``: split table (``image``, ``variant``, AU columns incl. ``aus``);
    ``probs`` (N, C) over ``aus``, rows as in ``noisy``; ``threshold`` the
    decision threshold (scalar or per AU (C,)); ``confidence`` ``t`` in
    [0.5, 1]. Rule (module docstring): keep 1 iff ``p >= threshold`` and
    ``p >= t``; keep 0 iff ``p < threshold`` and ``p <= 1 - t``; else -1.
    Returns the split table of C: ``image, variant`` and every AU column of
    ``noisy`` (AUs outside ``aus`` are -1), images without any kept label dropped.
    """
    aus = list(aus_of(aus))
    cols = au_columns(aus)
    missing = [c for c in ["image"] + cols if c not in noisy.columns]
    if missing:
        raise ValueError(f"noisy split table lacks columns {missing}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(noisy), len(aus)):
        raise ValueError(f"probabilities have shape {probs.shape}; expected {(len(noisy), len(aus))} "
                         "(one row per noisy image, one column per AU)")
    if not 0.5 <= confidence <= 1:
        raise ValueError(f"confidence must be in [0.5, 1] (a probability the model must reach), got {confidence}")
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(aus),))
    labels = noisy[cols].to_numpy(np.int8)
    agree_pos = (labels == 1) & (probs >= thr) & (probs >= confidence)
    agree_neg = (labels == 0) & (probs < thr) & (probs <= 1 - confidence)
    kept = np.where(agree_pos, 1, np.where(agree_neg, 0, -1)).astype(np.int8)
    out = pd.DataFrame({"image": noisy["image"].to_numpy(),
                        "variant": noisy["variant"].to_numpy() if "variant" in noisy else 0})
    for c in table_au_columns(noisy, "noisy split"):
        out[c] = np.full(len(noisy), -1, np.int8)
    out[cols] = kept
    return out[(kept >= 0).any(axis=1)].reset_index(drop=True)


def score_filter(before: pd.DataFrame, after: pd.DataFrame, true: pd.DataFrame | None, aus) -> pd.DataFrame:
    """Label accuracy before/after filtering, what survives, and which class.

    ``before`` the noisy split, ``after`` C (split tables; C's rows are a
    subset of the noisy images, matched on ``image`` and ``variant``), ``true``
    the true labels of the noisy images (label table, e.g. SynthAU's
    ``noisy_true``; None when unknown: every column that needs the truth is
    NaN). Rows ``AU<n>``, then ``mean`` and ``images`` (images before/after).

    Columns, per AU:

    - ``labels_before``, ``labels_after``: known labels in the noisy split / in C;
      ``kept`` = labels_after / labels_before;
    - ``pos_before``, ``pos_after``: labels 1 in the noisy split / in C;
    - ``acc_before``, ``acc_after``: share of the known labels equal to the true
      label (rows where the true label is known);
    - ``prev_before`` = pos_before / labels_before, ``prev_after`` =
      pos_after / labels_after (share of positives among the known labels;
      need no truth), ``prev_true``: share of positives among the known true
      labels of the noisy images;
    - of the noisy images whose true label is 1: ``true_pos_kept`` the share
      with C label 1 (a right positive in C), ``true_pos_as_neg`` the share with
      C label 0 (a wrong negative in C); the rest are unknown in C (dropped, or
      unknown in the noisy list). Of those whose true label is 0:
      ``true_neg_kept`` the share with C label 0, ``true_neg_as_pos`` the share
      with C label 1. An image absent from C has C label unknown. NaN for an AU
      with no true positive (negative) and wherever the truth is unknown.

    Row ``mean``: counts (labels_*, pos_*) summed over AUs, ``kept`` the pooled
    share (labels_after summed / labels_before summed); every other rate (acc_*,
    prev_*, true_*) is the unweighted mean of the AU rows, NaN AUs left out
    (each AU counts once, as in the challenge's metrics), so its ``prev_after``
    is not pos_after / labels_after of that row. Row ``images``: images in the
    noisy split / in C and their ratio, the other columns NaN.
    """
    aus = list(aus_of(aus))
    cols = au_columns(aus)
    true_ix = None if true is None else true.set_index("image")

    def truth_of(df: pd.DataFrame) -> np.ndarray:
        t = true_ix.reindex(df["image"])[cols].to_numpy(np.float64)
        if np.isnan(t).any():
            gone = df["image"][np.isnan(t).any(axis=1)].iloc[0]
            raise ValueError(f"true label table has no row for image {gone!r}")
        return t.astype(np.int8)

    def counts_and_acc(df: pd.DataFrame):
        lab = df[cols].to_numpy(np.int8)
        known = lab >= 0
        if true is None:
            acc = np.full(len(cols), np.nan)
        else:
            t = truth_of(df)
            valid = known & (t >= 0)
            with np.errstate(invalid="ignore"):
                acc = ((lab == t) & valid).sum(0) / valid.sum(0)
        return known.sum(0), (lab == 1).sum(0), acc

    def c_on_noisy() -> np.ndarray:
        """C's labels on the noisy split's rows (-1 where the image is not in C)."""
        key = ["image", "variant"] if "variant" in before and "variant" in after else ["image"]
        at = pd.MultiIndex.from_frame(after[key].astype({k: np.int64 for k in key if k == "variant"}))
        bt = pd.MultiIndex.from_frame(before[key].astype({k: np.int64 for k in key if k == "variant"}))
        if not at.is_unique:
            raise ValueError(f"C has duplicate rows for {at[at.duplicated()][0]!r}")
        if not at.isin(bt).all():
            raise ValueError(f"C has rows the noisy split lacks, e.g. {at[~at.isin(bt)][0]!r}")
        row = at.get_indexer(bt)
        c = np.full((len(before), len(cols)), -1, np.int8)
        c[row >= 0] = after[cols].to_numpy(np.int8)[row[row >= 0]]
        return c

    nb, pb, ab = counts_and_acc(before)
    na, pa, aa = counts_and_acc(after)
    nan = np.full(len(cols), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = {"prev_before": pb / nb, "prev_after": pa / na, "prev_true": nan,
                 "true_pos_kept": nan, "true_neg_kept": nan, "true_pos_as_neg": nan, "true_neg_as_pos": nan}
        if true is not None:
            t, c = truth_of(before), c_on_noisy()
            tp, tn = (t == 1).sum(0), (t == 0).sum(0)
            rates.update({"prev_true": tp / (tp + tn),
                          "true_pos_kept": ((t == 1) & (c == 1)).sum(0) / tp,
                          "true_neg_kept": ((t == 0) & (c == 0)).sum(0) / tn,
                          "true_pos_as_neg": ((t == 1) & (c == 0)).sum(0) / tp,
                          "true_neg_as_pos": ((t == 0) & (c == 1)).sum(0) / tn})
        df = pd.DataFrame({"labels_before": nb, "labels_after": na, "kept": na / nb, "pos_before": pb,
                           "pos_after": pa, "acc_before": ab, "acc_after": aa, **rates},
                          index=pd.Index(cols, name="au"))

    def au_mean(v) -> float:
        v = np.asarray(v, dtype=np.float64)
        return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan

    mean = {"labels_before": nb.sum(), "labels_after": na.sum(), "kept": na.sum() / max(nb.sum(), 1),
            "pos_before": pb.sum(), "pos_after": pa.sum(), "acc_before": au_mean(ab), "acc_after": au_mean(aa),
            **{k: au_mean(v) for k, v in rates.items()}}
    images = {"labels_before": len(before), "labels_after": len(after), "kept": len(after) / max(len(before), 1)}
    return pd.concat([df, pd.DataFrame([mean, images], index=pd.Index(["mean", "images"], name="au"))])


def build_dataset_c(ws, run_dir, epoch: int, aus=None, threshold=0.5, confidence: float = 0.7,
                    group: str | None = None, batch_size: int = 256, device: str = "auto",
                    resume: bool = True, shard: tuple[int, int] | None = None,
                    barrier: Callable[[], None] | None = None, collective: bool = False,
                    chunk_rows: int = CHUNK_ROWS) -> Path | None:
    """Predict the noisy split with ``run_dir`` at ``epoch``, filter it and
    write ``splits/C_<group>.csv`` plus the report
    ``<results>/tables/noisy_filter_<group>.csv`` (:func:`score_filter`,
    against ``labels/noisy_true.csv`` when the workspace has it).
    ``group`` and ``aus`` default to the run's; ``shard``, ``barrier``,
    ``collective``: see :func:`aulib.infer.sharded.predict_in_chunks`.
    Returns the split path (None on ranks other than 0)."""
    cfg = read_config(run_dir)
    group = group or cfg.get("group")
    aus = list(aus) if aus is not None else list(run_aus(cfg, run_dir))
    read_split("noisy", ws=ws, aus=aus)     # AUs the noisy labels lack (a tool's) refused by name, before predicting
    probs = predict_split_probs(run_dir, epoch, ws, "noisy", batch_size=batch_size, device=device,
                                shard=shard, resume=resume, barrier=barrier, collective=collective,
                                chunk_rows=chunk_rows)
    if probs is None:
        return None
    run_cols = list(run_aus(cfg, run_dir))
    probs = probs[:, [run_cols.index(a) for a in aus]]
    noisy = read_split("noisy", ws=ws)
    kept = filter_noisy(noisy, probs, aus, threshold, confidence)
    out = ws.split(f"C_{group}")
    write_csv(out, kept)
    true_path = ws.labels("noisy_true")
    true = pd.read_csv(true_path, dtype={"image": str}) if true_path.exists() else None
    write_csv(ws.tables / f"noisy_filter_{group}.csv", score_filter(noisy, kept, true, aus).reset_index())
    return out


def base_model(ws, group, base_run: str | None = None, **train_config) -> Path:
    """Run directory of the base model that filters the noisy set.

    ``group``: a built-in group name or an :class:`aulib.aus.AUGroup` (a
    profile's own, :meth:`aulib.pipeline.StepSettings.group`), whose AUs and crop
    style the trained run's config records.

    ``base_run`` names an existing run of the workspace; None trains (or
    resumes) the run ``<group>_base`` on split A with :func:`aulib.train.loop.train`,
    ``train_config`` giving the :class:`aulib.model.config.TrainConfig` fields
    (epochs, backbones, img_size, batch_size, ...). Its held-out split is
    ``H`` when the workspace has one (the kit's held-out split, degraded x4
    like B, as every 04_train run of the profile scores), else ``test`` (so
    the Baseline of Table 1 gets a held-out estimate too)."""
    if base_run is not None:
        d = ws.run(base_run)
        read_config(d)  # clear error when it is not a run directory
        return d
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in train_config.items() if v is not None}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise ValueError(f"TrainConfig has no fields {unknown}; known: {sorted(fields)}")
    group = get_group(group)
    base = {"run_name": f"{group.name}_base", "group": group.name, "aus": list(group.aus), "crop_style": group.crop,
            "workspace": str(ws.root),
            "heldout": next((h for h in ("H", "test") if ws.split(h).exists()), None)}
    # resume=True: a finished base run is reused as it is, an interrupted one continues.
    return Path(train(TrainConfig(**{**base, **given}), resume=True))


def base_epoch(run_dir, epoch: int | None = None, split: str = "B") -> int:
    """``epoch`` if given, else the run's best-average epoch on ``split``
    (best mean final score at threshold 0.5, :mod:`aulib.select.choose`)."""
    if epoch is not None:
        return int(epoch)
    preds = load_run_preds(run_dir, split)
    if len(preds.epochs) == 0:
        raise FileNotFoundError(f"run {Path(run_dir).name} has no complete epoch with {split} predictions")
    return int(preds.epochs[choose_indices(preds.labels, preds.probs, "baseline")[0][0]])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aulib.noisy", description=__doc__.split("\n\n")[0])
    # not "--run": torchrun would read it as an abbreviation of its own --run-path
    ap.add_argument("--run-dir", dest="run", required=True, help="run directory of the base model")
    ap.add_argument("--epoch", required=True, type=int, help="checkpoint epoch of the base model")
    ap.add_argument("--workspace", required=True, help="workspace folder (runs/<profile>)")
    ap.add_argument("--profile", default=None, help="profile name (default: the workspace folder's name)")
    ap.add_argument("--split", default="noisy")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-resume", action="store_true", help="recompute chunks already on disk")
    ap.add_argument("--build-c", action="store_true", help="after predicting the noisy split, write C_<group>")
    ap.add_argument("--threshold", type=float, default=0.5, help="decision threshold")
    ap.add_argument("--confidence", type=float, default=0.7, help="confidence t of the filtering rule")
    ap.add_argument("--dist-timeout-min", type=float, default=distributed.TIMEOUT_MIN,
                    help="torchrun: minutes a collective waits for a stopped or hung rank")
    a = ap.parse_args(argv)

    ws = Workspace.for_profile(a.profile or Path(a.workspace).resolve().name, root=a.workspace)
    initialised = distributed.setup(distributed.resolve_device(a.device), a.dist_timeout_min)
    # under torchrun: rank 0 gathers every rank's chunks and alone writes (no shared run directory needed)
    shard = (distributed.rank(), distributed.world_size()) if distributed.world_size() > 1 else None
    collective = shard is not None
    try:
        if a.build_c and a.split == "noisy":
            path = build_dataset_c(ws, a.run, a.epoch, threshold=a.threshold, confidence=a.confidence,
                                   batch_size=a.batch_size, device=a.device, resume=not a.no_resume,
                                   shard=shard, collective=collective, chunk_rows=a.chunk_rows)
            if path is not None:
                print(f"dataset C written to {path}")
        else:
            probs = predict_split_probs(a.run, a.epoch, ws, a.split, batch_size=a.batch_size, device=a.device,
                                        shard=shard, resume=not a.no_resume, chunk_rows=a.chunk_rows,
                                        collective=collective)
            if probs is not None:
                print(f"predicted {probs.shape[0]} rows of {a.split}")
    finally:
        distributed.cleanup(initialised)


if __name__ == "__main__":
    main()
