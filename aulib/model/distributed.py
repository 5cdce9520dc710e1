"""The one owner of devices and the process group (training, noisy-set
prediction, inference, the predict CLI): device choice, set-up/clean-up of
the process group under ``torchrun``, rank queries, and gathering per-rank
predictions back into dataset order.

One process per device; ``WORLD_SIZE > 1`` (set by torchrun) turns it on.
Backend: NCCL on CUDA, gloo on CPU. Without torchrun every helper is a no-op.

Several machines (``torchrun --nnodes N``): the device is chosen by
``LOCAL_RANK`` (the process's number on its machine: ``cuda:LOCAL_RANK``),
everything that writes asks :func:`is_main` (global ``RANK`` 0, on one machine
only). Under the c10d rendezvous any machine may hold rank 0.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist

from .config import DIST_TIMEOUT_MIN

#: Default process-group timeout, minutes (TrainConfig's ``dist_timeout_min``):
#: how long a collective waits for a rank before the job fails, so that a
#: stopped or hung rank ends the job in minutes, not hours. Long enough for
#: rank 0 to write an epoch's checkpoint and predictions while the others wait.
TIMEOUT_MIN = DIST_TIMEOUT_MIN


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    """This process's number on its machine (torchrun's ``LOCAL_RANK``; 0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def on_main(fn):
    """``fn()`` run on rank 0 only; its result on every rank, or its exception
    raised on every rank (so that all ranks stop together on a refusal)."""
    if world_size() == 1:
        return fn()
    box = [None]
    if is_main():
        try:
            box = [(True, fn())]
        except Exception as err:   # handed to the other ranks, then raised here too
            box = [(False, err)]
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> this process's GPU (``LOCAL_RANK``) if CUDA is available, else
    CPU; "cuda" without an index -> this process's GPU; anything else as given."""
    device = device or "auto"
    if device not in ("auto", "cuda"):
        return torch.device(device)
    if device == "cuda" or torch.cuda.is_available():
        return torch.device("cuda", local_rank())   # not RANK: on machine 2 of 8 GPUs each, RANK is 8..15
    return torch.device("cpu")


def setup(device: torch.device, timeout_min: float | None = None) -> bool:
    """Initialise the process group when launched by torchrun with more than
    one process (and not yet initialised), its collectives timing out after
    ``timeout_min`` minutes (None: :data:`TIMEOUT_MIN`). Returns whether this call did it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(minutes=float(TIMEOUT_MIN if timeout_min is None else timeout_min))
    dist.init_process_group(backend, timeout=timeout)
    return True


def cleanup(initialised_here: bool) -> None:
    if initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over the ranks (the tensor itself when not distributed)."""
    if world_size() == 1:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world_size()


def gather_strided(local: np.ndarray, n: int, device: torch.device) -> np.ndarray:
    """Reassemble rows predicted by ``DistributedSampler(shuffle=False)``.

    Rank ``r`` holds rows ``r, r + W, r + 2W, ...`` of the padded index list
    ``[0..n-1, 0, 1, ...]`` (every rank has ``ceil(n / W)`` rows). Returns the
    (n, C) array in dataset order on every rank (all_gather, then trim)."""
    w = world_size()
    if w == 1:
        return local[:n]
    t = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)).to(device)
    parts = [torch.empty_like(t) for _ in range(w)]
    dist.all_gather(parts, t)
    stacked = torch.stack(parts, dim=1)  # (M, W, C): row i of rank r is dataset position i * W + r
    return stacked.reshape(-1, t.shape[-1])[:n].cpu().numpy()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (a picklable object; itself when not distributed)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj) -> list | None:
    """Every rank's ``obj`` (picklable), in rank order, on rank 0; None on the
    others. Lets rank 0 alone write what all ranks computed, so the ranks of
    another machine need not see rank 0's files."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out
