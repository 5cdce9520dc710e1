"""Stage 4, training one multi-view run: ``config`` (TrainConfig), ``losses``
(the loss terms, one table), ``model`` (MultiViewNet), ``loop`` (train one
run), ``launch`` (in-process or torchrun), ``distributed`` (the only device
and process-group code), ``curves`` (training curves).

``python -m aulib.train --config FILE`` / ``torchrun -m aulib.train ...``: see :mod:`aulib.train.loop`.
"""
import importlib

from .config import RESUMABLE_CHANGES, TrainConfig, notebook_config, parse_overrides

# loop and launch import aulib.infer, which imports this package's config and
# model: their names are loaded on first use so that importing
# aulib.train.config (or .model) never runs the loop's imports (no cycle).
_LAZY = {"train": "loop", "main": "loop", "lr_lambda": "loop", "workspace_of": "loop", "loss_keys": "loop",
         "run_training": "launch", "torchrun_command": "launch"}

__all__ = ["RESUMABLE_CHANGES", "TrainConfig", "notebook_config", "parse_overrides", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
