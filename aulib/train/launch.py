"""Start training in this process or under torchrun, from a notebook or script.

``run_training(cfg, nproc=1)`` trains in-process (live curves in a
notebook). With ``nproc > 1`` it writes the resolved config to the run folder
and runs ``torchrun --standalone --nproc-per-node N -m aulib.train`` as a
child process (one process per GPU; gloo on CPU), streaming its output; the
run directory is the same either way, so notebooks 05-07 need not care.
A child that raises makes ``run_training`` raise
:class:`~aulib.train.errors.ChildProcessFailed` naming the child's exception
and rank (torchrun's error file, ``TORCHELASTIC_ERROR_FILE``, in a temporary
folder of this machine); a rank killed by a signal is named with its signal,
never a follower rank's "Connection closed by peer". SIGTERM or Ctrl-C
stops torchrun and its workers (:func:`stream_torchrun`).

Several machines (``nnodes > 1``): every machine runs the same call (or the
command of :func:`node_commands`) with its own ``node_rank``; the machines meet
at ``rdzv_endpoint`` (``HOST:PORT`` of node 0). The workspace must be on a
filesystem every machine sees (docs/several_machines.md).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ..io import write_yaml
from ..signals import sigterm_as_exit
from ..model.config import TrainConfig
from .errors import child_failure
from ..lock import TOKEN_ENV, RunLock
from .loop import train, workspace_of

#: torchrun rendezvous backends: ``c10d`` (ranks assigned by the rendezvous,
#: any node may get global rank 0) or ``static`` (node ``node_rank`` holds
#: global ranks ``node_rank * nproc ...``: rank 0 is on node 0).
RDZV_BACKENDS = ("c10d", "static")


def node_args(nnodes: int = 1, rdzv_endpoint: str | None = None, node_rank: int = 0,
              rdzv_backend: str = "c10d", rdzv_id: str = "aulib") -> list[str]:
    """torchrun's options that say where the processes live: ``--standalone``
    on one machine; on ``nnodes`` machines the rendezvous at ``rdzv_endpoint``
    (``HOST:PORT`` of node 0, reachable from every node)."""
    nnodes, node_rank = int(nnodes), int(node_rank)
    if nnodes <= 1:
        return ["--standalone"]
    if rdzv_backend not in RDZV_BACKENDS:
        raise ValueError(f"rdzv_backend must be one of {RDZV_BACKENDS}, got {rdzv_backend!r}")
    host, _, port = str(rdzv_endpoint or "").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"nnodes={nnodes} needs rdzv_endpoint 'HOST:PORT' (node 0's address and a free port, "
                         f"reachable from every node), got {rdzv_endpoint!r}")
    if not 0 <= node_rank < nnodes:
        raise ValueError(f"node_rank must be in 0..{nnodes - 1} (this machine's number), got {node_rank}")
    if rdzv_backend == "static":
        return [f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={host}", f"--master-port={port}"]
    # c10d: node 0 hosts the rendezvous store; the ranks themselves are assigned by the rendezvous
    return [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
            f"--rdzv-id={rdzv_id}", f"--rdzv-conf=is_host={str(node_rank == 0).lower()}"]


def torchrun_command(config_path: Path, nproc: int, resume: bool, overwrite: bool, extend: bool = False,
                     **nodes) -> list[str]:
    """The torchrun command line for a config file (``nodes``: :func:`node_args`)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *node_args(**nodes), f"--nproc-per-node={int(nproc)}",
           "-m", "aulib.train", "--config", str(config_path)]
    return (cmd + (["--resume"] if resume else []) + (["--overwrite"] if overwrite else [])
            + (["--extend"] if extend else []))


def node_commands(config_path: Path, nproc: int, nnodes: int, rdzv_endpoint: str, *, rdzv_id: str,
                  resume: bool = False, overwrite: bool = False, rdzv_backend: str = "c10d") -> list[str]:
    """The shell command of every node (index = node rank), to paste on each
    machine; ``rdzv_id`` the run name (what :func:`run_training` uses, so a
    machine started from a notebook meets the ones started from a shell)."""
    import shlex

    return [shlex.join(torchrun_command(config_path, nproc, resume, overwrite, nnodes=nnodes,
                                        rdzv_endpoint=rdzv_endpoint, node_rank=r, rdzv_backend=rdzv_backend,
                                        rdzv_id=rdzv_id)) for r in range(int(nnodes))]


def run_training(cfg: TrainConfig, nproc: int = 1, resume: bool = False, overwrite: bool = False,
                 on_epoch_end=None, extend: bool = False, nnodes: int = 1, rdzv_endpoint: str | None = None,
                 node_rank: int = 0, rdzv_backend: str = "c10d") -> Path:
    """Train ``cfg`` with ``nproc`` processes on each of ``nnodes`` machines
    (this one is ``node_rank``); returns the run directory. ``resume``,
    ``overwrite``, ``extend``: as :func:`aulib.train.loop.train`."""
    if int(nproc) <= 1 and int(nnodes) <= 1:
        return train(cfg, resume=resume, overwrite=overwrite, on_epoch_end=on_epoch_end, extend=extend)
    cfg = cfg.resolved()
    rd = workspace_of(cfg).run_dir(cfg.run_name)
    command = torchrun_command(rd.launch_config, nproc, resume, overwrite, extend, nnodes=nnodes,
                               rdzv_endpoint=rdzv_endpoint, node_rank=node_rank, rdzv_backend=rdzv_backend,
                               rdzv_id=cfg.run_name)
    if int(nnodes) > 1:   # global rank 0 may start on any machine: it takes the run's lock itself
        return _torchrun(cfg, rd, nproc, command, dict(os.environ))
    with RunLock(rd) as lock:   # held for the whole torchrun job, lent to its rank 0
        return _torchrun(cfg, rd, nproc, command, {**os.environ, TOKEN_ENV: lock.token})


def _torchrun(cfg: TrainConfig, rd, nproc: int, command: list[str], env: dict) -> Path:
    """Run ``command`` (torchrun; the caller holds the run's lock), streaming its output."""
    launch_cfg = rd.launch_config
    write_yaml(launch_cfg, cfg.to_dict())
    stream_torchrun(command, env, cfg.run_name, nproc)
    launch_cfg.unlink(missing_ok=True)
    return rd.path


#: Seconds torchrun gets to stop its workers (it SIGTERMs them, then SIGKILLs after 30 s) before it is killed.
STOP_GRACE_S = 45


def _die_with_parent() -> None:
    """In the torchrun child, before exec (Linux): SIGTERM when its parent
    dies, however it dies (SIGKILL included), so no job outlives its launcher."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))    # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stream_torchrun(command: list[str], env: dict, run_name: str, nproc: int) -> None:
    """Run a torchrun ``command``, streaming its output; raise the root cause
    of a failure (:func:`aulib.train.errors.child_failure`: a child's
    exception with its rank, or the rank and signal that killed it). SIGTERM
    or SIGINT (Ctrl-C, a notebook's interrupt) here stops torchrun and its
    workers before this returns; if this process is killed, torchrun gets SIGTERM."""
    with tempfile.TemporaryDirectory(prefix="aulib-torchrun-") as tmp:   # this machine's, not the shared workspace
        error_file = Path(tmp) / "error.json"   # torchrun copies the first failing child's exception here
        with sigterm_as_exit():
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    bufsize=1, env={**env, "TORCHELASTIC_ERROR_FILE": str(error_file)},
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            tail: list[str] = []
            try:
                for line in proc.stdout:
                    print(line, end="", flush=True)
                    tail.append(line)
                    del tail[:-400]
                proc.wait()
            finally:
                if proc.poll() is None:          # interrupted: stop the job, then make sure it is gone
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        if proc.returncode == 0:
            return
        failure = child_failure(error_file, run_name, nproc, proc.returncode, "".join(tail))
    if failure is not None:
        raise failure
    raise RuntimeError(f"torchrun with {nproc} processes failed (exit {proc.returncode}) for run {run_name} "
                       "and no child recorded an exception (killed by a signal, e.g. out of memory?); "
                       f"last output:\n{''.join(tail[-40:])}")
