"""Test helper: chosen models written by test code (predict/, train/).

Tiny MultiViewNets (timm ``test_efficientnet``, random weights) saved as run
directories (:func:`make_run`) and the chosen-model files that pick their
epochs and thresholds per AU: :func:`chosen17` (17au, two runs) and
:func:`chosen6` (6au, one run)."""
from __future__ import annotations

from pathlib import Path

import torch

from aulib.aus import BUILTIN_GROUPS
from aulib.io import write_torch, write_yaml
from aulib.model.config import TrainConfig
from aulib.model.network import create_model

AUS17, AUS6 = list(BUILTIN_GROUPS["17au"]), list(BUILTIN_GROUPS["6au"])
BACKBONE = "test_efficientnet"


def make_run(root: Path, name: str, group: str, img_size: int, style: str, epochs=(1, 2)) -> None:
    cfg = TrainConfig(run_name=name, group=group, backbones=[BACKBONE, BACKBONE], img_size=img_size,
                      crop_style=style, epochs=max(epochs))
    d = root / "train" / name
    write_yaml(d / "config.yaml", cfg.to_dict())
    for e in epochs:
        torch.manual_seed(1000 * e + len(name) + img_size)
        model = create_model(cfg)
        write_torch(d / "checkpoints" / f"epoch{e:03d}.pt", {"model": model.state_dict(), "epoch": e})


def runs_entry(name, img_size, style):
    return {"dir": f"train/{name}", "backbones": [BACKBONE, BACKBONE], "img_size": img_size, "crop_style": style}


def chosen17(thresholds=None):
    # AUs alternate between run a (epoch 1) and run b (epoch 2); thresholds: 0 (always on), 2 (always off), ...
    thr = thresholds or [[0.0, 2.0, 0.5][j % 3] for j in range(17)]
    per_au = [{"au": a, "run": "r17a" if j % 2 == 0 else "r17b", "epoch": 1 if j % 2 == 0 else 2,
               "threshold": float(thr[j])} for j, a in enumerate(AUS17)]
    return {"group": "17au", "aus": AUS17,
            "runs": {"r17a": runs_entry("r17a", 48, "aligned"), "r17b": runs_entry("r17b", 40, "aligned")},
            "per_au": per_au, "ensemble": None}


def chosen6():
    return {"group": "6au", "aus": AUS6, "runs": {"r6": runs_entry("r6", 48, "box1.5")},
            "per_au": [{"au": a, "run": "r6", "epoch": 2, "threshold": 0.5} for a in AUS6], "ensemble": None}
