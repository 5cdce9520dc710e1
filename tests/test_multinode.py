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

from aulib.io import read_npy, read_torch, read_yaml, write_csv, write_yaml
from aulib.train.launch import node_args, node_commands, torchrun_command
from aulib.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from test_train import GROUP, make_workspace, tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
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
    cmds = node_commands(Path("cfg.yaml"), 8, 2, "h0:29500", resume=True)
    assert len(cmds) == 2 and "is_host=true" in cmds[0] and "is_host=false" in cmds[1]
    assert cmds[0].replace("is_host=true", "is_host=false") == cmds[1]
    assert "--nproc-per-node=8" in cmds[0] and cmds[0].endswith("--config cfg.yaml --resume")


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
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_two_nodes_give_the_run_directory_of_one_node(tmp_path):
    ref_ws = make_workspace(tmp_path / "ref", n_a=128, n_b=32, n_test=16)
    ws0 = make_workspace(tmp_path / "node0", n_a=128, n_b=32, n_test=16)
    ws1 = _node1_workspace(ws0, tmp_path / "node1")
    kw = dict(run_name="mn", epochs=1, max_train_batches=2, multicrop=False, batch_size=16,
              backbones=["test_efficientnet", "test_efficientnet"])
    ref_cfg, cfg = tmp_path / "ref.yaml", tmp_path / "cfg.yaml"
    write_yaml(ref_cfg, tiny_config(ref_ws, **kw).resolved().to_dict())
    write_yaml(cfg, tiny_config(ws0, **kw).resolved().to_dict())
    endpoint = f"127.0.0.1:{free_port()}"
    one_node = torchrun_command(ref_cfg, 2, False, False)
    node = [torchrun_command(cfg, 1, False, False, nnodes=2, rdzv_endpoint=endpoint, node_rank=r, rdzv_id="t")
            for r in (0, 1)]
    node[1] += [f"workspace={ws1.root}"]   # the second machine's own copy of the inputs
    _wait(_agents([one_node] + node), "torchrun")

    # global rank 0 is on whichever node the rendezvous made node 0; the other node wrote nothing
    written = [w for w in (ws0, ws1) if w.run("mn").exists()]
    assert len(written) == 1, "exactly one node (the one holding global rank 0) writes the run directory"
    other = ws1 if written[0] is ws0 else ws0
    assert not (other.root / "train").exists() and _files(other.root / "crops") == _files(ws1.root / "crops")
    ref, run = ref_ws.run("mn"), written[0].run("mn")
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
