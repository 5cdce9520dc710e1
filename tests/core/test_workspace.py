"""RunDir: the one owner of the run-directory layout; the one device owner."""
from __future__ import annotations

import os
import shutil

import pandas as pd
import torch

from aulib.io import write_csv
from aulib.model.distributed import resolve_device
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


def _copy_of_the_clone(tmp_path):
    """A user's copy of the clone's notebooks and profiles (no package inside)."""
    from aulib.workspace import repo_root

    copy = tmp_path / "copy"
    (copy / "notebooks").mkdir(parents=True)
    for nb in (repo_root() / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, copy / "notebooks" / nb.name)
    shutil.copytree(repo_root() / "notebooks" / "profiles", copy / "notebooks" / "profiles")
    return copy


PROBE = ("from aulib.pipeline import step_settings\nfrom aulib.io import write_text\n"
         "p = step_settings('07_tables', {'profile': 'demo'})\n"
         "write_text(p.ws.results / 'probe.txt', 'x')\nprint(p.ws.root)\nprint(p.ws.results)")


def _probe(cwd, **env):
    import subprocess
    import sys

    from aulib.workspace import package_clone

    full = {**os.environ, "PYTHONPATH": str(package_clone()), **env}
    full.pop("AULIB_PROFILE", None)
    if "AULIB_ROOT" not in env:
        full.pop("AULIB_ROOT", None)
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=full, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.split(), res.stderr


def test_a_copy_of_the_clone_writes_into_the_copy_and_warns(tmp_path):
    """Issue 35.6: a notebook run in a copy of the clone (aulib imported from the clone) resolves its
    workspace from the folder it runs in, not from the package, and says so; demo's results stay in
    the workspace (the committed results/ changes only by --publish)."""
    from aulib.workspace import package_clone

    copy = _copy_of_the_clone(tmp_path)
    (root, results), err = _probe(copy / "notebooks")
    assert root == str(copy / "runs" / "demo") and results == str(copy / "runs" / "demo" / "results")
    assert (copy / "runs" / "demo" / "results" / "probe.txt").exists()
    assert not (package_clone() / "runs" / "demo" / "results" / "probe.txt").exists()
    assert "ProjectRootWarning" in err and str(package_clone()) in err and str(copy) in err
    assert err.count("ProjectRootWarning") == 1                         # once per process, not per call


def test_aulib_root_wins_over_the_folder_and_the_clone_runs_silently(tmp_path):
    from aulib.workspace import package_clone

    copy, mine = _copy_of_the_clone(tmp_path), tmp_path / "mine"
    shutil.copytree(copy / "notebooks", mine / "notebooks")
    (root, _), err = _probe(copy / "notebooks", AULIB_ROOT=str(mine))
    assert root == str(mine / "runs" / "demo") and "ProjectRootWarning" not in err
    clone = package_clone()
    probe = clone / "runs" / "demo" / "results" / "probe.txt"
    existed = probe.exists()
    try:
        (root, results), err = _probe(clone / "notebooks")           # the clone itself: no warning
        assert root == str(clone / "runs" / "demo") and results == str(clone / "runs" / "demo" / "results")
        assert "ProjectRootWarning" not in err
    finally:
        if not existed:
            probe.unlink(missing_ok=True)


def test_project_from_walks_up_to_the_folder_holding_notebooks_profiles(tmp_path):
    from aulib.workspace import project_from

    (tmp_path / "p" / "notebooks" / "profiles").mkdir(parents=True)
    (tmp_path / "p" / "notebooks" / "sub").mkdir()
    assert project_from(tmp_path / "p" / "notebooks" / "sub") == tmp_path / "p"
    assert project_from(tmp_path / "p") == tmp_path / "p"
    assert project_from(tmp_path) is None
