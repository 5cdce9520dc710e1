"""Watching a run while it trains: TensorBoard scalars and the run's ETA.

:class:`Board` writes TensorBoard event files into the run directory's
``events/`` (:attr:`aulib.workspace.RunDir.events`), beside ``log.csv``, with
``torch.utils.tensorboard.SummaryWriter`` when the optional ``tensorboard``
package is installed (``pip install tensorboard``, in the ``notebooks``
extra); without it, or with ``tensorboard: false`` in the config, it is off
and says so in one line. Read them with ``tensorboard --logdir <workspace>/train``.

Scalars (TensorBoard's step axis):

* ``step/<name>`` every ``log_every`` batches, at the global batch number
  ``(epoch - 1) * batches_per_epoch + batch``: ``loss``, ``bce`` and each loss
  term of the batch (rank 0's batch under torchrun), ``lr``, ``img_per_s``
  (images per second of all processes since the last logged step), and the
  memory in MiB (``memory/cuda_peak_mib`` on a GPU, ``memory/rss_peak_mib``
  of the process);
* ``epoch/<column>`` once per epoch, at the epoch number: every number of the
  epoch's ``log.csv`` row (losses, lr, time_s, per-split acc / F1 / final
  score) and ``epoch/img_per_s``; the per-AU final scores on B as
  ``B_final_per_AU/AU<n>``.

A resumed run purges the step scalars after its last complete epoch, so the
curves show each step once.
"""
from __future__ import annotations

import math
import sys
import time

import torch

from ..progress import format_duration
from ..workspace import RunDir

#: Per-AU columns of log.csv, shown in their own TensorBoard section.
PER_AU_PREFIX = "B_final_AU"


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (the ``tensorboard`` package is installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  optional dependency
    except ImportError:
        return False
    return True


def memory_mib(device: torch.device) -> dict[str, float]:
    """Peak memory so far in MiB: ``cuda_peak_mib`` (allocated by torch on the
    device) on a GPU, and ``rss_peak_mib`` of the process where the OS reports it."""
    out = {}
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        import resource  # POSIX only

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["rss_peak_mib"] = rss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)   # bytes on macOS, KiB on Linux
    except ImportError:
        pass
    return out


def step_interval(log_every: int | None, steps: int) -> int:
    """Batches between logged steps: ``log_every``, else about 20 per epoch (0: none)."""
    if log_every is None:
        return max(1, steps // 20)
    return max(0, int(log_every))


class Board:
    """TensorBoard writer of one run (rank 0); a no-op when off.

    ``start``: the epoch training continues after (0: fresh run); ``steps``:
    batches per epoch; ``images_per_step``: images one optimisation step takes
    over all processes."""

    def __init__(self, rd: RunDir, enabled: bool, start: int, steps: int, images_per_step: int,
                 log_every: int | None = None, device: torch.device | None = None, quiet: bool = False):
        self.steps, self.images_per_step = int(steps), int(images_per_step)
        self.every = step_interval(log_every, self.steps)
        self.device = device or torch.device("cpu")
        self.writer = None
        self._t, self._n = None, 0
        if not enabled:
            return
        if not tensorboard_available():
            if not quiet:
                print("TensorBoard logging off: the tensorboard package is not installed "
                      "(pip install tensorboard); log.csv has the epoch scores", flush=True)
            return
        from torch.utils.tensorboard import SummaryWriter  # optional dependency, checked above

        rd.events.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(rd.events), purge_step=start * self.steps + 1 if start else None)

    @property
    def on(self) -> bool:
        return self.writer is not None

    def step(self, epoch: int, batch: int, losses: dict, lr: float) -> None:
        """After batch ``batch`` (0-based) of ``epoch``: log it if it is a logged step.
        ``losses``: name -> 0-d tensor (read only on logged steps)."""
        if self.writer is None or not self.every:
            return
        now = time.perf_counter()
        if self._t is None:
            self._t, self._n = now, 0
        self._n += 1
        if (batch + 1) % self.every:
            return
        gstep = (epoch - 1) * self.steps + batch + 1
        w = self.writer
        for k, v in losses.items():
            w.add_scalar(f"step/{k}", float(v), gstep)
        w.add_scalar("step/lr", float(lr), gstep)
        if now > self._t:
            w.add_scalar("step/img_per_s", self._n * self.images_per_step / (now - self._t), gstep)
        for k, v in memory_mib(self.device).items():
            w.add_scalar(f"memory/{k}", v, gstep)
        self._t, self._n = now, 0

    def epoch(self, row: dict) -> None:
        """The epoch's ``log.csv`` row (and ``img_per_s`` of its training part, when given)."""
        self._t = None                      # the evaluation between epochs is not training throughput
        if self.writer is None:
            return
        e = int(row["epoch"])
        for k, v in row.items():
            if k == "epoch" or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                continue
            tag = f"B_final_per_AU/AU{k[len(PER_AU_PREFIX):]}" if k.startswith(PER_AU_PREFIX) else f"epoch/{k}"
            self.writer.add_scalar(tag, float(v), e)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class RunClock:
    """ETA of a run from the epochs this process trained: the mean epoch time
    (training and evaluation) times the epochs left."""

    def __init__(self, last: int):
        self.last, self.times = int(last), []

    def epoch_done(self, seconds: float) -> None:
        self.times.append(float(seconds))

    def eta_s(self, epoch: int) -> float:
        """Seconds left after ``epoch`` (0 at the last epoch)."""
        if not self.times:
            return float("nan")
        return sum(self.times) / len(self.times) * max(0, self.last - int(epoch))


def epoch_line(run_name: str, epoch: int, epochs: int, row: dict, terms, eta_s: float) -> str:
    """The line printed after every epoch: losses, B final score, its time and the run's ETA."""
    parts = " ".join(f"{k} {row[k]:.4f}" for k in terms)
    eta = "run done" if eta_s == 0 else f"run ETA {format_duration(eta_s)}"
    return (f"[{run_name}] epoch {epoch}/{epochs}  loss {row['loss']:.4f} (bce {row['bce']:.4f} {parts})  "
            f"B final {row['B_final']:.4f}  {row['time_s']:.1f} s  {eta}")
