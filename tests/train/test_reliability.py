"""Faults: a training run SIGKILLed mid-epoch resumes to the same result as an
uninterrupted one; same seed and config give identical metrics; damaged
checkpoints are refused with a message naming the file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import aulib
from aulib.io import read_npy, read_torch
from tiny_workspace import make_workspace, tiny_config

KW = dict(epochs=3, max_train_batches=4, multicrop=False, heldout=None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    torch.set_num_threads(1)
    return make_workspace(tmp_path_factory.mktemp("ws_rel"), n_a=256, n_b=32, n_test=16)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(workspace):
    from aulib.train.loop import train

    full = train(tiny_config(workspace, run_name="straight", **KW))
    # A child process trains the same config and SIGKILLs itself inside epoch 3
    # (its 10th loss evaluation: 4 batches per epoch, so batch 2 of epoch 3).
    code = f"""
import os, signal, torch
torch.set_num_threads(1)
import aulib.model.losses as L
from aulib.train.loop import train
from tiny_workspace import tiny_config
from aulib.workspace import Workspace
calls = [0]
orig = L.MultiViewLoss.forward
def counting(self, *a, **k):
    calls[0] += 1
    if calls[0] == 10:
        os.kill(os.getpid(), signal.SIGKILL)
    return orig(self, *a, **k)
L.MultiViewLoss.forward = counting
ws = Workspace({str(workspace.root)!r}, {str(workspace.results)!r})
train(tiny_config(ws, run_name="killed", **{KW!r}))
"""
    helpers = str(Path(__file__).parents[1] / "helpers")   # the child imports tiny_workspace from there
    proc = subprocess.run([sys.executable, "-c", code], cwd=helpers, capture_output=True, text=True,
                          env={**os.environ,  # the child imports this aulib, whatever is installed
                               "PYTHONPATH": os.pathsep.join([helpers, str(Path(aulib.__file__).parents[1])])})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    killed = workspace.run("killed")
    # Only complete epochs are on disk, and no temporary file is left behind as a result.
    assert pd.read_csv(killed / "log.csv")["epoch"].tolist() == [1, 2]
    assert sorted(p.name for p in (killed / "checkpoints").glob("*.pt")) == ["epoch001.pt", "epoch002.pt"]
    assert not list((killed / "preds").glob("B_epoch003*"))
    for f in killed.rglob("*"):
        if f.is_file() and not f.name.startswith("."):
            assert f.suffix != ".tmp", f
    train(tiny_config(workspace, run_name="killed", **KW), resume=True)
    for e in (1, 2, 3):
        np.testing.assert_array_equal(read_npy(full / "preds" / f"B_epoch{e:03d}.npy"),
                                      read_npy(killed / "preds" / f"B_epoch{e:03d}.npy"))
    a, b = read_torch(full / "checkpoints" / "epoch003.pt"), read_torch(killed / "checkpoints" / "epoch003.pt")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())


@pytest.mark.slow
def test_same_seed_same_metrics_on_cpu(workspace):
    from aulib.train.loop import train

    r1 = train(tiny_config(workspace, run_name="seed_a", **KW))
    r2 = train(tiny_config(workspace, run_name="seed_b", **KW))
    cols = ["loss", "bce", "mv", "cr", "B_acc", "B_f1", "B_final"]
    pd.testing.assert_frame_equal(pd.read_csv(r1 / "log.csv")[cols], pd.read_csv(r2 / "log.csv")[cols])
    r3 = train(tiny_config(workspace, run_name="seed_c", **{**KW, "seed": 7}))
    assert not np.array_equal(read_npy(r1 / "preds" / "B_epoch003.npy"), read_npy(r3 / "preds" / "B_epoch003.npy"))


def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path):
    from aulib.io import write_torch

    path = tmp_path / "epoch001.pt"
    write_torch(path, {"model": {"w": torch.ones(1000)}, "epoch": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])        # e.g. copied by hand from a full disk
    with pytest.raises(ValueError, match="epoch001.pt"):
        read_torch(path)
