"""A trained run's model: its saved config and the weights of one epoch's checkpoint
(file names from :class:`aulib.workspace.RunDir`)."""
from __future__ import annotations

from pathlib import Path

from ..io import read_torch
from ..runs import read_config
from ..model.config import TrainConfig
from ..model.network import create_model
from ..workspace import RunDir


def load_run_config(run_dir) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``<run_dir>/config.yaml``."""
    return TrainConfig.from_dict(read_config(run_dir), source=RunDir(run_dir).config)


def checkpoint_epochs(run_dir) -> list[int]:
    """Epochs with a ``checkpoints/epoch<NNN>.pt`` file, sorted."""
    return RunDir(run_dir).checkpoint_epochs()


def checkpoint_path(run_dir, epoch: int | str = "last") -> Path:
    """Path of a run's checkpoint of ``epoch`` ("last": the latest); a clear
    error when it is missing."""
    rd = RunDir(run_dir)
    have = rd.checkpoint_epochs()
    if epoch == "last":
        if not have:
            raise FileNotFoundError(f"run {run_dir} has no checkpoint yet (checkpoints/epoch<NNN>.pt)")
        epoch = have[-1]
    path = rd.checkpoint(int(epoch))
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run {rd.name} has checkpoints for epochs {have} "
                                "(keep_checkpoints may have removed it; retrain or choose a kept epoch)")
    return path


def load_model(run_dir, epoch: int | str = "last", map_location="cpu"):
    """The run's :class:`aulib.model.network.MultiViewNet` with the weights of
    ``epoch`` (``weights_only`` load), in eval mode on ``map_location``."""
    cfg = load_run_config(run_dir)
    model = create_model({**cfg.to_dict(), "pretrained": False})
    state = read_torch(checkpoint_path(run_dir, epoch), map_location=map_location)
    model.load_state_dict(state["model"] if "model" in state else state)
    return model.to(map_location).eval()
