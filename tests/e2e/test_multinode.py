"""Training and noisy-set prediction over two "machines": two torchrun agents
(``--nnodes 2 --nproc-per-node 1``, c10d rendezvous on loopback, gloo) give
the run directory of one machine with two processes (same files, same
predictions and weights), only global rank 0 writes, and a node that does not
hold rank 0 needs only the crop store and the split files."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aulib.io import read_npy, read_torch, read_yaml, write_yaml
from aulib.train.launch import node_args, node_commands, torchrun_command
from aulib.workspace import Workspace

from tiny_workspace import GROUP, make_workspace, tiny_config

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "AULIB_PROGRESS": "0",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_args_one_and_several_machines():
    assert node_args() == ["--standalone"]
    c10d = node_args(nnodes=2, rdzv_endpoint="10.0.0.1:29500", node_rank=1, rdzv_id="r")
    assert c10d == ["--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.1:29500", "--rdzv-id=r",
                    "--rdzv-conf=is_host=false"]
    assert node_args(nnodes=2, rdzv_endpoint="h0:29500", node_rank=1, rdzv_backend="static") == [
        "--nnodes=2", "--node-rank=1", "--master-addr=h0", "--master-port=29500"]
    with pytest.raises(ValueError, match="HOST:PORT"):
        node_args(nnodes=2)
    with pytest.raises(ValueError, match="node_rank must be in 0..1"):
        node_args(nnodes=2, rdzv_endpoint="h0:29500", node_rank=2)
    with pytest.raises(ValueError, match="rdzv_backend"):
        node_args(nnodes=2, rdzv_endpoint="h0:29500", rdzv_backend="etcd")
    cmds = node_commands(Path("cfg.yaml"), 8, 2, "h0:29500", rdzv_id="r", resume=True)
    assert len(cmds) == 2 and "is_host=true" in cmds[0] and "is_host=false" in cmds[1]
    assert cmds[0].replace("is_host=true", "is_host=false") == cmds[1]
    assert "--nproc-per-node=8" in cmds[0] and cmds[0].endswith("--config cfg.yaml --resume")


def test_device_follows_local_rank_not_global_rank(monkeypatch):
    from aulib.model import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("RANK", "9")          # machine 2 of 8 GPUs each, its second process
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.resolve_device("auto") == torch.device("cuda", 1)
    assert distributed.resolve_device("cuda") == torch.device("cuda", 1) and distributed.local_rank() == 1


def test_collective_chunks_without_a_process_group_are_the_plain_ones(tmp_path):
    from aulib.infer.sharded import predict_in_chunks

    def rows(r):
        return np.stack([r * 0.01, np.full(len(r), 0.5)], axis=1)

    plain = predict_in_chunks(20, 2, rows, tmp_path / "a", chunk_rows=6)
    collective = predict_in_chunks(20, 2, rows, tmp_path / "b", chunk_rows=6, shard=(0, 1), collective=True)
    np.testing.assert_array_equal(plain, collective)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def _agents(commands: list[list[str]]) -> list[subprocess.Popen]:
    return [subprocess.Popen(c, env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for c in commands]


def _wait(procs: list[subprocess.Popen], what: str) -> None:
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, f"{what} failed (exit {p.returncode}):\n{out[-3000:]}"


def _node1_workspace(ws: Workspace, root: Path) -> Workspace:
    """What a second machine holds locally: the crop store and the split files, nothing else."""
    other = Workspace(root.resolve(), (root / "results").resolve())
    shutil.copytree(ws.root / "crops", other.root / "crops")
    shutil.copytree(ws.root / "splits", other.root / "splits")
    return other


def _files(root: Path) -> list[str]:
    """Files under ``root``; TensorBoard's event files by folder only (their names
    carry the writing host, pid and time, which differ between any two runs)."""
    return sorted(str(p.relative_to(root).parent / "events.out.tfevents.*") if p.name.startswith("events.out.tfevents.")
                  else str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


KW = dict(epochs=1, max_train_batches=2, multicrop=False, batch_size=16, eval_splits=["B", "test"],
          backbones=["test_efficientnet", "test_efficientnet"])


def _noisy_workspace(root: Path) -> tuple[Workspace, Path]:
    """A workspace with a noisy split (the test split's rows) and a base run trained here."""
    from aulib.train.loop import train

    ws = make_workspace(root, n_a=64, n_b=16, n_test=20)
    shutil.copy(ws.split("test"), ws.split("noisy"))
    ws.split(f"C_{GROUP}").unlink()
    run = train(tiny_config(ws, run_name="base", heldout=None, **{**KW, "max_train_batches": 1}))
    return ws, run


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Everything started at once: one machine with 2 processes (reference run),
    two machines training, two machines predicting the noisy set. Node 1 of
    each pair works in its own workspace holding only what it must read."""
    tmp = tmp_path_factory.mktemp("multinode")
    torch.set_num_threads(1)
    ref_ws = make_workspace(tmp / "ref", n_a=128, n_b=32, n_test=16)
    ws0 = make_workspace(tmp / "node0", n_a=128, n_b=32, n_test=16)
    ws1 = _node1_workspace(ws0, tmp / "node1")
    ref_cfg, cfg = tmp / "ref.yaml", tmp / "cfg.yaml"
    write_yaml(ref_cfg, tiny_config(ref_ws, run_name="mn", **KW).resolved().to_dict())
    write_yaml(cfg, tiny_config(ws0, run_name="mn", **KW).resolved().to_dict())
    one_node = torchrun_command(ref_cfg, 2, False, False)
    endpoint = f"127.0.0.1:{free_port()}"
    train_nodes = [torchrun_command(cfg, 1, False, False, nnodes=2, rdzv_endpoint=endpoint, node_rank=r,
                                    rdzv_id="train") for r in (0, 1)]
    train_nodes[1] += [f"workspace={ws1.root}"]   # the second machine's own copy of the inputs

    nws0, run0 = _noisy_workspace(tmp / "noisy0")
    nws1 = _node1_workspace(nws0, tmp / "noisy1")
    run1 = nws1.run("base")
    (run1 / "checkpoints").mkdir(parents=True)
    shutil.copy(run0 / "config.yaml", run1 / "config.yaml")
    shutil.copy(run0 / "checkpoints" / "epoch001.pt", run1 / "checkpoints" / "epoch001.pt")
    before = {w: _files(w.root) for w in (nws0, nws1)}
    endpoint = f"127.0.0.1:{free_port()}"
    noisy_nodes = [[sys.executable, "-m", "torch.distributed.run",
                    *node_args(nnodes=2, rdzv_endpoint=endpoint, node_rank=r, rdzv_id="noisy"), "--nproc-per-node=1",
                    "-m", "aulib.noisy", "--run-dir", str(run), "--epoch", "1", "--workspace", str(w.root),
                    "--build-c", "--chunk-rows", "6", "--batch-size", "4", "--device", "cpu"]
                   for r, (w, run) in enumerate([(nws0, run0), (nws1, run1)])]
    _wait(_agents([one_node] + train_nodes + noisy_nodes), "torchrun")
    return {"ref": ref_ws, "train": (ws0, ws1), "noisy": (nws0, nws1), "before": before}


@pytest.mark.slow
def test_two_nodes_train_the_run_directory_of_one_node(launched):
    ws0, ws1 = launched["train"]
    # global rank 0 is on whichever machine the rendezvous numbered first; the other wrote nothing
    written = [w for w in (ws0, ws1) if w.run("mn").exists()]
    assert len(written) == 1, "exactly one node (the one holding global rank 0) writes the run directory"
    other = ws1 if written[0] is ws0 else ws0
    assert not (other.root / "train").exists() and _files(other.root / "crops") == _files(ws1.root / "crops")
    ref, run = launched["ref"].run("mn"), written[0].run("mn")
    assert _files(run) == _files(ref)
    drop_ws = lambda d: {k: v for k, v in d.items() if k != "workspace"}  # noqa: E731
    assert drop_ws(read_yaml(run / "config.yaml")) == drop_ws(read_yaml(ref / "config.yaml"))
    for split in ("B", "test"):
        pd.testing.assert_frame_equal(pd.read_csv(run / "preds" / f"{split}_index.csv"),
                                      pd.read_csv(ref / "preds" / f"{split}_index.csv"))
        np.testing.assert_allclose(read_npy(run / "preds" / f"{split}_epoch001.npy").astype(np.float32),
                                   read_npy(ref / "preds" / f"{split}_epoch001.npy").astype(np.float32), atol=1e-3)
    log, ref_log = pd.read_csv(run / "log.csv"), pd.read_csv(ref / "log.csv")
    assert list(log.columns) == list(ref_log.columns)
    pd.testing.assert_frame_equal(log.drop(columns="time_s"), ref_log.drop(columns="time_s"), atol=1e-4)
    a, b = read_torch(run / "checkpoints" / "epoch001.pt"), read_torch(ref / "checkpoints" / "epoch001.pt")
    assert a["rng"]["world_size"] == b["rng"]["world_size"] == 2
    for k, v in b["model"].items():
        torch.testing.assert_close(a["model"][k], v, atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.slow
def test_two_nodes_predict_the_noisy_set_and_only_rank0_writes(launched):
    from aulib.infer import predict_split_probs
    from aulib.noisy import filter_noisy
    from aulib.data.splits import read_split

    nws0, nws1 = launched["noisy"]
    written = [w for w in (nws0, nws1) if (w.run("base") / "preds" / "noisy_epoch001.npy").exists()]
    assert len(written) == 1, "exactly one node (global rank 0) writes the noisy-set predictions"
    ws = written[0]
    other = nws1 if ws is nws0 else nws0
    assert _files(other.root) == launched["before"][other], "the node without rank 0 wrote files"
    new = sorted(set(_files(ws.root)) - set(launched["before"][ws]))
    assert new == ["results/tables/noisy_filter_6au.csv", "splits/C_6au.csv",
                   "train/base/preds/noisy_epoch001.npy", "train/base/preds/noisy_index.csv",
                   "train/base/preds/noisy_index.npz"]  # chunks cleaned up
    probs = read_npy(ws.run("base") / "preds" / "noisy_epoch001.npy").astype(np.float32)
    single = predict_split_probs(ws.run("base"), 1, ws, "noisy", out_path=ws.root / "single.npy", device="cpu")
    np.testing.assert_allclose(probs, single, atol=2e-3)
    c = pd.read_csv(ws.split("C_6au"))
    expect = filter_noisy(read_split("noisy", ws=ws), single, GROUP)
    assert len(c) == len(expect) and list(c["image"]) == list(expect["image"])
