"""RunDir: the one owner of the run-directory layout; the one device owner."""
from __future__ import annotations

import os

import pandas as pd
import torch

from aulib.io import write_csv
from aulib.train.distributed import resolve_device
from aulib.workspace import RunDir, Workspace


def test_run_dir_paths(tmp_path):
    ws = Workspace(tmp_path, tmp_path / "results")
    rd = ws.run_dir("r")
    assert rd.path == ws.run("r") and os.fspath(rd) == str(ws.run("r")) and RunDir(rd).path == rd.path
    assert rd.config == ws.run("r") / "config.yaml" and rd.log == ws.run("r") / "log.csv"
    assert rd.preds("B_mc", 7) == ws.run("r") / "preds" / "B_mc_epoch007.npy"
    assert rd.index("test") == ws.run("r") / "preds" / "test_index.csv"
    assert rd.checkpoint(12) == ws.run("r") / "checkpoints" / "epoch012.pt"
    assert rd.launch_config == ws.train / ".r.launch.yaml"


def test_run_dir_epochs_and_last_complete_epoch(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert rd.checkpoint_epochs() == [] and rd.last_complete_epoch() == 0 and list(rd.read_log()["epoch"]) == []
    for e in (1, 2, 3, 10):
        rd.checkpoint(e).parent.mkdir(parents=True, exist_ok=True)
        rd.checkpoint(e).write_bytes(b"")
        rd.preds("B", e).parent.mkdir(parents=True, exist_ok=True)
        rd.preds("B", e).write_bytes(b"")
    rd.preds("B_mc", 1).write_bytes(b"")
    rd.index("B").write_text("image\n")
    (rd.checkpoints_dir / "epoch4.tmp").write_bytes(b"")  # not a checkpoint
    write_csv(rd.log, pd.DataFrame({"epoch": [1, 2, 3, 4]}))  # epoch 4 has a log row but no checkpoint
    assert rd.checkpoint_epochs() == [1, 2, 3, 10]
    assert rd.pred_epochs("B") == [1, 2, 3, 10] and rd.pred_epochs("B_mc") == [1]
    assert rd.pred_splits() == ["B"]
    assert rd.logged_epochs() == {1, 2, 3, 4} and rd.last_complete_epoch() == 3


def test_resolve_device_takes_this_process_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda") == torch.device("cuda", 3)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == resolve_device("auto")
