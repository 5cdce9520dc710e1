"""Predicting with a model: every view (plain and multi-crop) over a loader
(:func:`predict_views`, also what the training loop evaluates with, so saved
and later predictions come from the same code), and a run's checkpoint over a
whole split in resumable, shardable chunks (:func:`predict_split_probs`).

Chunks of rows are written atomically to ``preds/<split>_epoch<NNN>.chunks/``;
an interrupted job skips finished chunks. Under ``torchrun`` every rank
predicts chunks ``rank::world`` and rank 0 assembles them in row order;
``collective=True`` (``python -m aulib.noisy`` under torchrun) sends the
chunks to rank 0, which alone reads and writes them (several machines need no
shared run directory: each reads only the split, crop store and checkpoint).
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data.dataset import make_loader
from ..data.splits import read_split
from ..io import read_npy, read_yaml, write_npy, write_yaml
from ..pred_index import write_index
from ..progress import progress as _progress
from ..runs import read_config, run_aus, run_group
from ..model import distributed
from ..model.distributed import resolve_device
from ..workspace import RunDir
from .checkpoints import load_model
from .multicrop import run_views, view_probs


def autocast(device: torch.device):
    """Mixed-precision context on CUDA (bf16 where supported, else fp16); a no-op elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def predict_views(model, loader, device, multicrop: bool = False, aus=None,
                  progress: bool = True, desc: str = "predict", views=("image", "flip")
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities of the plain view and (``multicrop``) the multi-crop
    average over the named ``views`` (:mod:`aulib.infer.multicrop`; a run's are
    :func:`aulib.infer.multicrop.run_views`) over ``loader`` (batches ``(x, labels)`` or ``x``).

    Returns ``(single, mc)``: float32 (N, C) each (``mc`` None without
    multicrop), rows in the loader's order. Batched, no grad, AMP on CUDA;
    the model is put in eval mode. ``aus`` (the model's AUs) are needed for
    the flipped view of multi-crop.
    """
    if multicrop and aus is None:
        raise ValueError("multicrop needs the model's AUs (aus=...) to map the flipped view back")
    device = torch.device(device)
    core = getattr(model, "module", model)
    core.eval()
    single, mc = [], []
    with autocast(device):
        for batch in _progress(loader, desc=desc, unit="batch", disable=not progress, leave=False):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = x.to(device, non_blocking=True)
            if not multicrop:
                single.append(core.probs(x).float().cpu())
                continue
            probs = view_probs(core, x, aus, views)
            single.append(probs[0].cpu())
            mc.append(probs.mean(0).cpu())
    c = core.num_aus
    cat = lambda parts: torch.cat(parts).numpy() if parts else np.zeros((0, c), np.float32)  # noqa: E731
    return cat(single), (cat(mc) if multicrop else None)


def predict_probs(model, loader, device, multicrop: bool = False, aus=None, progress: bool = True,
                  views=("image", "flip")) -> np.ndarray:
    """Probabilities float32 (N, C) of ``model`` over ``loader``: p = (p1 + p2) / 2
    of the plain view, or with ``multicrop`` the average over the named
    ``views`` (:func:`aulib.infer.multicrop.multicrop_views`). Rows in the loader's order."""
    single, mc = predict_views(model, loader, device, multicrop, aus, progress, views=views)
    return mc if multicrop else single


CHUNK_ROWS = 8192


def _predict_chunk(predict_rows, s: int, e: int, n_cols: int) -> np.ndarray:
    out = np.asarray(predict_rows(np.arange(s, e)))
    if out.shape != (e - s, n_cols):
        raise ValueError(f"prediction of rows {s}:{e} has shape {out.shape}, expected {(e - s, n_cols)}")
    return out.astype(np.float16)


def _predict_rounds(todo, predict_rows, n_cols: int, chunk_dir: Path, rank: int, world: int, desc: str) -> None:
    """Round ``i``: rank ``r`` predicts ``todo[i * world + r]``; rank 0 gathers and writes the round's chunks."""
    for i in _progress(range(0, len(todo), world), desc=f"{desc} [{rank}/{world}]", unit="round", disable=rank != 0):
        mine = todo[i + rank] if i + rank < len(todo) else None
        parts = distributed.gather_objects(None if mine is None else _predict_chunk(predict_rows, *mine, n_cols))
        if parts is not None:
            for (s, e), part in zip(todo[i:i + world], parts):
                write_npy(_chunk_path(chunk_dir, s, e), part)


def _chunk_path(chunk_dir: Path, start: int, stop: int) -> Path:
    return chunk_dir / f"rows{start:09d}-{stop:09d}.npy"


def predict_in_chunks(n_rows: int, n_cols: int, predict_rows: Callable[[np.ndarray], np.ndarray],
                      chunk_dir, chunk_rows: int = CHUNK_ROWS, shard: tuple[int, int] | None = None,
                      resume: bool = True, barrier: Callable[[], None] | None = None,
                      desc: str = "predict", collective: bool = False) -> np.ndarray | None:
    """Run ``predict_rows(row_indices) -> (len, n_cols)`` over ``range(n_rows)``
    in chunks of ``chunk_rows``, each saved atomically as a float16 .npy in
    ``chunk_dir``.

    ``shard=(rank, world)``: this process does chunks ``rank::world``.
    ``resume``: chunks already on disk (right shape) are not recomputed.
    ``barrier``: called after this shard's chunks (``torch.distributed.barrier``
    under torchrun). ``collective``: ``shard`` is the process group's (rank,
    world); rank 0 picks the chunks to do, every rank predicts one per round
    and rank 0 gathers and writes them (only rank 0 touches ``chunk_dir``).
    Returns the assembled (n_rows, n_cols) float32 array on rank 0 (every
    chunk must be there; a missing one is named in the error), None on other ranks.
    """
    rank, world = shard or (0, 1)
    if not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard}")
    chunk_dir = Path(chunk_dir)
    bounds = [(s, min(s + chunk_rows, n_rows)) for s in range(0, n_rows, chunk_rows)]
    if collective and rank != 0:
        _predict_rounds(distributed.broadcast_object(None), predict_rows, n_cols, chunk_dir, rank, world, desc)
        return None
    chunk_dir.mkdir(parents=True, exist_ok=True)
    plan = {"n_rows": int(n_rows), "n_cols": int(n_cols), "chunk_rows": int(chunk_rows)}
    plan_path = chunk_dir / "plan.yaml"
    if plan_path.exists() and resume and (read_yaml(plan_path) or {}) != plan:
        raise ValueError(f"{chunk_dir} holds chunks of another job ({read_yaml(plan_path)}, now {plan}); "
                         "delete the folder or pass resume=False")
    write_yaml(plan_path, plan)

    def done(s: int, e: int) -> bool:
        path = _chunk_path(chunk_dir, s, e)
        if not path.exists():
            return False
        try:
            return read_npy(path).shape == (e - s, n_cols)
        except (ValueError, OSError):
            return False

    if collective:
        todo = distributed.broadcast_object([b for b in bounds if not (resume and done(*b))])
        _predict_rounds(todo, predict_rows, n_cols, chunk_dir, rank, world, desc)
    else:
        for s, e in _progress([b for b in bounds[rank::world] if not (resume and done(*b))],
                              desc=f"{desc} [{rank}/{world}]", unit="chunk"):
            write_npy(_chunk_path(chunk_dir, s, e), _predict_chunk(predict_rows, s, e, n_cols))
        if barrier is not None:
            barrier()
    if rank != 0:
        return None
    missing = [f"{s}:{e}" for s, e in bounds if not done(s, e)]
    if missing:
        raise RuntimeError(f"{len(missing)} chunks of {chunk_dir} are not predicted yet (rows {missing[:5]}...); "
                           "run the other shards, or rerun without shard to finish them (resume skips done chunks)")
    probs = np.empty((n_rows, n_cols), np.float32)
    for s, e in bounds:
        probs[s:e] = read_npy(_chunk_path(chunk_dir, s, e))
    return probs



def _complete(path: Path, shape: tuple) -> bool:
    return path.exists() and read_npy(path).shape == shape


def predict_split_probs(run_dir, epoch: int, ws, split: str = "noisy", out_path=None, batch_size: int = 256,
                        device: str = "auto", shard: tuple[int, int] | None = None, resume: bool = True,
                        chunk_rows: int = CHUNK_ROWS, num_workers: int = 0,
                        barrier: Callable[[], None] | None = None, multicrop: bool = False,
                        collective: bool = False) -> np.ndarray | None:
    """Probabilities (N, C) float32 of a run's checkpoint ``epoch`` on
    ``split`` of workspace ``ws`` (rows in the split file's order, C the run's AUs).

    Written to ``out_path`` (default ``<run>/preds/<name>_epoch<NNN>.npy``,
    float16, with ``<name>_index.csv`` beside it; ``name`` is ``split``, or
    ``<split>_mc`` with ``multicrop``, the average over the run's views,
    :func:`aulib.infer.multicrop.run_views`) and reused when it exists and ``resume``. Chunked, resumable and shardable: see
    :func:`predict_in_chunks` (``collective``: rank 0 alone reads and writes
    the run directory's prediction files). Returns None on ranks other than 0.
    """
    run_dir = Path(run_dir)
    rd = RunDir(run_dir)
    cfg = read_config(run_dir)
    aus = run_aus(cfg, run_dir)
    group = run_group(cfg, run_dir)
    name = RunDir.pred_name(split, multicrop)
    out_path = Path(out_path) if out_path else rd.preds(name, epoch)
    table = read_split(split, aus, ws=ws)
    rank = (shard or (0, 1))[0]
    if collective:   # rank 0 says whether the predictions exist (the others may not see its files)
        if distributed.broadcast_object(rank == 0 and resume and _complete(out_path, (len(table), len(aus)))):
            return read_npy(out_path).astype(np.float32) if rank == 0 else None
    elif resume and _complete(out_path, (len(table), len(aus))):
        return read_npy(out_path).astype(np.float32) if rank == 0 else None
    dev = resolve_device(device)
    model = load_model(run_dir, int(epoch)).to(dev).eval()
    style = cfg.get("crop_style")

    def predict_rows(rows: np.ndarray) -> np.ndarray:
        loader = make_loader(ws, table.iloc[rows], group, int(cfg["img_size"]), batch_size,
                             train=False, num_workers=num_workers, style=style,
                             stall_minutes=cfg.get("stall_minutes"))
        return predict_probs(model, loader, dev, multicrop=multicrop, aus=aus, views=run_views(cfg))

    chunk_dir = out_path.with_name(out_path.name[: -len(".npy")] + ".chunks")
    probs = predict_in_chunks(len(table), len(aus), predict_rows, chunk_dir, chunk_rows, shard, resume,
                              barrier, desc=f"{run_dir.name} on {name}", collective=collective)
    if probs is None:
        return None
    write_index(out_path.with_name(f"{name}_index.csv"), table)
    write_npy(out_path, probs.astype(np.float16))
    shutil.rmtree(chunk_dir, ignore_errors=True)
    return probs
