"""Run-directory safety (issue 15, points 2b, 4, 5, 6, 9b): a finished run is
never extended by accident, one process writes a run directory at a time,
every kill point of an epoch's commit resumes to the uninterrupted result,
nothing is written before a resume is decided, and hostile model files end the
predict CLI with exit 2 and one line naming the file."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import aulib
import aulib.train.loop as loop
from aulib.io import read_npy, read_torch, write_yaml
from aulib.lock import TOKEN_ENV, RunLock, RunLockedError
from aulib.workspace import RunDir
from tiny_workspace import make_workspace, tiny_config

KW = dict(max_train_batches=2, batch_size=16, multicrop=False, heldout=None)
HELPERS = Path(__file__).parents[1] / "helpers"   # children import tiny_workspace from there
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "AULIB_PROGRESS": "0",
             "PYTHONPATH": os.pathsep.join([str(HELPERS), str(Path(aulib.__file__).parents[1])])}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    torch.set_num_threads(1)
    return make_workspace(tmp_path_factory.mktemp("ws_safety"), n_a=64, n_b=16, n_test=16)


def _python(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=HELPERS, env=CHILD_ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        assert time.time() - t0 < timeout, "child did not get there in time"
        time.sleep(0.1)


# ---------------------------------------------------------------- 2b, 9b: decided before anything is written
@pytest.mark.slow
def test_finished_run_is_not_extended_unless_asked_by_name(workspace):
    run = loop.train(tiny_config(workspace, run_name="done3", epochs=2, **KW))
    before = {p: p.read_bytes() for p in (run / "config.yaml", run / "log.csv")}
    # a profile that lost its 'epochs' key asks for the default (10)
    with pytest.raises(ValueError) as err:
        loop.train(tiny_config(workspace, run_name="done3", **{**KW, "epochs": 10}), resume=True)
    msg = str(err.value)
    assert "epochs 10" in msg and "epochs 2" in msg and "finished all 2 epochs" in msg
    assert "extend=True" in msg and "--extend" in msg and "--overwrite" in msg
    assert {p: p.read_bytes() for p in before} == before          # nothing rewritten
    assert RunDir(run).checkpoint_epochs() == [1, 2]
    with pytest.warns(UserWarning, match="recomputed"):
        loop.train(tiny_config(workspace, run_name="done3", epochs=3, **KW), resume=True, extend=True)
    assert pd.read_csv(run / "log.csv")["epoch"].tolist() == [1, 2, 3]
    assert "epochs: 3" in (run / "config.yaml").read_text()
    with pytest.raises(ValueError, match="has finished 3"):
        loop.train(tiny_config(workspace, run_name="done3", epochs=2, **KW), resume=True, extend=True)


@pytest.mark.slow
def test_refused_resume_or_overwrite_leaves_the_run_as_it_was(workspace):
    run = loop.train(tiny_config(workspace, run_name="keep", epochs=3, **KW), stop_after=1)
    config = (run / "config.yaml").read_bytes()
    (run / "checkpoints" / "epoch001.pt").write_bytes(b"not a checkpoint")   # the resume will fail to load it
    with pytest.warns(UserWarning, match="recomputed"), pytest.raises(ValueError, match="epoch001.pt"):
        loop.train(tiny_config(workspace, run_name="keep", epochs=4, **KW), resume=True, extend=True)
    assert (run / "config.yaml").read_bytes() == config
    # an overwrite whose run cannot be built deletes nothing
    with pytest.raises(FileNotFoundError, match="init_from"):
        loop.train(tiny_config(workspace, run_name="keep", epochs=3, init_from="train/none", **KW), overwrite=True)
    assert (run / "config.yaml").read_bytes() == config and (run / "log.csv").exists()


# ---------------------------------------------------------------- 4: one writer per run directory
HOLD = """
import sys, time
from aulib.lock import RunLock
RunLock(sys.argv[1]).acquire()
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def test_lock_names_its_holder_and_a_killed_holder_does_not_block(tmp_path):
    rd = RunDir(tmp_path / "train" / "r")
    ready = tmp_path / "ready"
    proc = _python(HOLD, rd.path, ready)
    try:
        _wait_for(ready, proc)
        with pytest.raises(RunLockedError) as err:
            RunLock(rd).acquire()
        msg = str(err.value)
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg and "started" in msg and str(rd.lock) in msg
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert rd.lock.exists()                  # left behind by the killed holder ...
    with RunLock(rd) as lock:                # ... and taken over at once
        assert f"pid: {os.getpid()}" in rd.lock.read_text()
        assert lock.token in rd.lock.read_text()
    assert not rd.lock.exists()


def test_lock_lent_by_a_launcher_only_with_its_token(tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "train" / "r")
    with RunLock(rd) as held:
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(rd).acquire()            # a second open file of this very process is refused too
        monkeypatch.setenv(TOKEN_ENV, "someone else's")
        assert not RunLock(rd).lent_by_launcher()
        monkeypatch.setenv(TOKEN_ENV, held.token)
        assert RunLock(rd).lent_by_launcher()
    assert not RunLock(rd).lent_by_launcher()   # released: nothing to borrow


TRAIN_AND_WAIT = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import aulib.train.loop as loop
from aulib.workspace import Workspace
from tiny_workspace import tiny_config
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real = loop.train_one_epoch
def waiting(run, epoch):
    if epoch == 1:
        ready.touch()
        while not go.exists():
            time.sleep(0.05)
    return real(run, epoch)
loop.train_one_epoch = waiting
ws = Workspace(Path(sys.argv[3]), Path(sys.argv[3]) / "results")
loop.train(tiny_config(ws, run_name="shared", epochs=2, **%r))
""" % (KW,)


@pytest.mark.slow
def test_two_trainings_of_one_run_directory(workspace, tmp_path):
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = _python(TRAIN_AND_WAIT, ready, go, workspace.root)
    try:
        _wait_for(ready, proc)               # the child holds the lock and is inside epoch 1
        for kw in ({"resume": True}, {"overwrite": True}, {}):
            with pytest.raises(RunLockedError, match=f"run shared is being written by pid {proc.pid}"):
                loop.train(tiny_config(workspace, run_name="shared", epochs=2, **KW), **kw)
        go.touch()
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = workspace.run("shared")
    assert pd.read_csv(run / "log.csv")["epoch"].tolist() == [1, 2]
    assert RunDir(run).checkpoint_epochs() == [1, 2] and not RunDir(run).lock.exists()
    loop.train(tiny_config(workspace, run_name="shared", epochs=2, **KW), resume=True)   # free again


@pytest.mark.slow
def test_torchrun_ranks_stop_together_when_rank_0_is_refused_the_lock(workspace, tmp_path):
    """``torchrun -m aulib.train`` takes the lock on rank 0; the refusal reaches every rank (no hang)."""
    cfg = tiny_config(workspace, run_name="ddp_locked", epochs=1, **KW).resolved()
    path = tmp_path / "run.yaml"
    write_yaml(path, cfg.to_dict())
    with RunLock(workspace.run_dir("ddp_locked")):
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                               "-m", "aulib.train", "--config", str(path)], cwd=HELPERS, env=CHILD_ENV,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert out.count(f"run ddp_locked is being written by pid {os.getpid()}") >= 2, out[-3000:]  # both ranks
    assert not workspace.run("ddp_locked").exists()


# ---------------------------------------------------------------- 5: every kill point of the epoch commit
class Killed(Exception):
    pass


SAFE = dict(epochs=3, max_train_batches=2, batch_size=16, multicrop=False, heldout="test", keep_checkpoints="last",
            eval_splits=["B", "test"])      # two prediction files an epoch: a kill between them too
#: (where epoch 2's commit is killed, the last complete epoch left on disk)
KILL_POINTS = [("preds B", 1), ("preds test", 1), ("checkpoint", 1), ("log", 1), ("prune", 2)]


@pytest.fixture(scope="module")
def straight(workspace):
    return loop.train(tiny_config(workspace, run_name="straight", **SAFE))


def _inject(monkeypatch, point: str):
    """Make epoch 2's commit fail just before step ``point``."""
    def before(name, real, hit):
        def wrapped(*a, **k):
            if hit(*a):
                raise Killed(name)
            return real(*a, **k)
        monkeypatch.setattr(loop, name, wrapped)

    if point.startswith("preds"):
        split = point.split()[1]
        before("write_npy", loop.write_npy, lambda path, *_: Path(path).name == f"{split}_epoch002.npy")
    elif point == "checkpoint":
        before("write_torch", loop.write_torch, lambda path, *_: Path(path).name == "epoch002.pt")
    elif point == "log":
        before("write_csv", loop.write_csv, lambda path, df: Path(path).name == "log.csv" and 2 in set(df["epoch"]))
    else:
        before("_prune_checkpoints", loop._prune_checkpoints, lambda rd, keep: rd.checkpoint_epochs()[-1:] == [2])


@pytest.mark.slow
@pytest.mark.parametrize("point,done", KILL_POINTS)
def test_kill_at_each_commit_step_resumes_to_the_uninterrupted_run(workspace, straight, monkeypatch, point, done):
    name = "killed_" + point.replace(" ", "_")
    with monkeypatch.context() as m:
        _inject(m, point)
        with pytest.raises(Killed):
            loop.train(tiny_config(workspace, run_name=name, **SAFE))
    rd = workspace.run_dir(name)
    assert rd.last_complete_epoch() == done
    trained = []
    real = loop.train_one_epoch
    monkeypatch.setattr(loop, "train_one_epoch", lambda run, epoch: (trained.append(epoch), real(run, epoch))[1])
    loop.train(tiny_config(workspace, run_name=name, **SAFE), resume=True)
    assert trained == list(range(done + 1, 4))                   # no finished epoch trained again
    assert rd.checkpoint_epochs() == [3]                         # keep_checkpoints: last
    for split in ("B", "test"):
        for e in (1, 2, 3):
            np.testing.assert_array_equal(read_npy(straight / "preds" / f"{split}_epoch{e:03d}.npy"),
                                          read_npy(rd.preds(split, e)))
    a, b = read_torch(straight / "checkpoints" / "epoch003.pt"), read_torch(rd.checkpoint(3))
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    cols = ["epoch", "loss", "bce", "B_final", "test_final"]
    pd.testing.assert_frame_equal(pd.read_csv(straight / "log.csv")[cols], rd.read_log()[cols])


# ---------------------------------------------------------------- 6: hostile model files in the predict CLI
class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _one_line_exit_2(capsys, argv, name: str) -> str:
    from aulib.predict.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and name in err and "Traceback" not in err
    assert "weights_only" not in err and "weights_only=False" not in err
    return err


def test_predict_cli_hostile_checkpoint_and_chosen_yaml(tmp_path, capsys):
    from chosen_models import chosen6, make_run

    make_run(tmp_path, "r6", "6au", 48, "box1.5")
    marker = tmp_path / "ran"
    torch.save({"model": _Evil(marker), "epoch": 2}, tmp_path / "train" / "r6" / "checkpoints" / "epoch002.pt")
    write_yaml(tmp_path / "chosen" / "6au.yaml", chosen6())
    picture = tmp_path / "a.jpg"
    base = [str(picture), "--device", "cpu", "--out", str(tmp_path / "out.csv")]
    err = _one_line_exit_2(capsys, base + ["--model", str(tmp_path / "chosen" / "6au.yaml")], "epoch002.pt")
    assert "refused" in err and not marker.exists()
    evil_yaml = tmp_path / "chosen" / "evil.yaml"
    evil_yaml.write_text(f"group: !!python/object/apply:os.system ['touch {marker}']\naus: []\n")
    err = _one_line_exit_2(capsys, base + ["--model", str(evil_yaml)], "evil.yaml")
    assert "python/object" in err and not marker.exists()
    (tmp_path / "train" / "r6" / "config.yaml").write_text("group: !!python/object/new:os.getcwd []\n")
    write_yaml(tmp_path / "chosen" / "6au.yaml", chosen6())
    _one_line_exit_2(capsys, base + ["--model", str(tmp_path / "chosen" / "6au.yaml")], "config.yaml")


@pytest.mark.slow
def test_predict_cli_process_exit_code_for_a_hostile_yaml(tmp_path):
    evil = tmp_path / "17au.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hi']\n")
    proc = subprocess.run([sys.executable, "-m", "aulib.predict", str(tmp_path), "--model", str(evil),
                           "--device", "cpu"], capture_output=True, text=True, env=CHILD_ENV, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "17au.yaml" in proc.stderr, proc.stderr
