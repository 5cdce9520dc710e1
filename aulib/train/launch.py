"""Start training in this process or under torchrun, from a notebook or script.

``run_training(cfg, nproc=1)`` trains in-process (live curves in a
notebook). With ``nproc > 1`` it writes the resolved config to the run folder
and runs ``torchrun --standalone --nproc-per-node N -m aulib.train`` as a
child process (one process per GPU; gloo on CPU), streaming its output; the
run directory is the same either way, so notebooks 05-07 need not care.
A child that raises makes ``run_training`` raise
:class:`~aulib.train.errors.ChildProcessFailed` naming the child's exception
and rank (torchrun's error file, ``TORCHELASTIC_ERROR_FILE``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..io import write_yaml
from .config import TrainConfig
from .errors import child_failure
from .loop import train, workspace_of


def torchrun_command(config_path: Path, nproc: int, resume: bool, overwrite: bool) -> list[str]:
    """The torchrun command line for a config file."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "aulib.train", "--config", str(config_path)]
    return cmd + (["--resume"] if resume else []) + (["--overwrite"] if overwrite else [])


def run_training(cfg: TrainConfig, nproc: int = 1, resume: bool = False, overwrite: bool = False,
                 on_epoch_end=None) -> Path:
    """Train ``cfg`` with ``nproc`` processes; returns the run directory."""
    if int(nproc) <= 1:
        return train(cfg, resume=resume, overwrite=overwrite, on_epoch_end=on_epoch_end)
    cfg = cfg.resolved()
    rd = workspace_of(cfg).run_dir(cfg.run_name)
    launch_cfg = rd.launch_config
    write_yaml(launch_cfg, cfg.to_dict())
    rd.launch_error.unlink(missing_ok=True)
    env = {**os.environ, "TORCHELASTIC_ERROR_FILE": str(rd.launch_error)}
    proc = subprocess.Popen(torchrun_command(launch_cfg, nproc, resume, overwrite), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    tail: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line])[-40:]
    if proc.wait() != 0:
        failure = child_failure(rd.launch_error, cfg.run_name, nproc, proc.returncode)
        rd.launch_error.unlink(missing_ok=True)
        if failure is not None:
            raise failure
        raise RuntimeError(f"torchrun with {nproc} processes failed (exit {proc.returncode}) for run {cfg.run_name} "
                           "and no child recorded an exception (killed by a signal, e.g. out of memory?); "
                           f"last output:\n{''.join(tail)}")
    launch_cfg.unlink(missing_ok=True)
    return rd.path
