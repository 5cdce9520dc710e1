"""Inference with trained runs: load a run's config and checkpoints, predict
probabilities over a loader. The training loop evaluates with
:func:`predict_views`, so saved predictions and later predictions are made
by the same code.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .io import read_torch
from .multicrop import view_probs
from .progress import progress as _progress


def load_run_config(run_dir) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``<run_dir>/config.yaml``."""
    from .runs import read_config

    return TrainConfig.from_dict(read_config(run_dir), source=Path(run_dir) / "config.yaml")


def checkpoint_epochs(run_dir) -> list[int]:
    """Epochs with a ``checkpoints/epoch<NNN>.pt`` file, sorted."""
    d = Path(run_dir) / "checkpoints"
    pat = re.compile(r"^epoch(\d+)\.pt$")
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := pat.match(p.name))) if d.is_dir() else []


def checkpoint_path(run_dir, epoch: int | str = "last") -> Path:
    """Path of a run's checkpoint of ``epoch`` ("last": the latest); a clear
    error when it is missing."""
    have = checkpoint_epochs(run_dir)
    if epoch == "last":
        if not have:
            raise FileNotFoundError(f"run {run_dir} has no checkpoint yet (checkpoints/epoch<NNN>.pt)")
        epoch = have[-1]
    path = Path(run_dir) / "checkpoints" / f"epoch{int(epoch):03d}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run {Path(run_dir).name} has checkpoints for epochs {have} "
                                "(keep_checkpoints may have removed it; retrain or choose a kept epoch)")
    return path


def load_model(run_dir, epoch: int | str = "last", map_location="cpu"):
    """The run's :class:`aulib.models.MultiViewNet` with the weights of
    ``epoch`` (``weights_only`` load), in eval mode on ``map_location``."""
    from .models import create_model

    cfg = load_run_config(run_dir)
    model = create_model({**cfg.to_dict(), "pretrained": False})
    state = read_torch(checkpoint_path(run_dir, epoch), map_location=map_location)
    model.load_state_dict(state["model"] if "model" in state else state)
    return model.to(map_location).eval()


def autocast(device: torch.device):
    """Mixed-precision context on CUDA (bf16 where supported, else fp16); a no-op elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def predict_views(model, loader, device, multicrop: bool = False, aus=None,
                  progress: bool = True, desc: str = "predict") -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities of the plain view and (``multicrop``) the multi-crop
    average over ``loader`` (batches ``(x, labels)`` or ``x``).

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
            probs = view_probs(core, x, aus)
            single.append(probs[0].cpu())
            mc.append(probs.mean(0).cpu())
    c = core.num_aus
    cat = lambda parts: torch.cat(parts).numpy() if parts else np.zeros((0, c), np.float32)  # noqa: E731
    return cat(single), (cat(mc) if multicrop else None)


def predict_probs(model, loader, device, multicrop: bool = False, aus=None, progress: bool = True) -> np.ndarray:
    """Probabilities float32 (N, C) of ``model`` over ``loader``: p = (p1 + p2) / 2
    of the plain view, or with ``multicrop`` the average over the views of
    :func:`aulib.multicrop.multicrop_views`. Rows in the loader's order."""
    single, mc = predict_views(model, loader, device, multicrop, aus, progress)
    return mc if multicrop else single
