"""Worker processes that decode images or videos: started clean, watched for stalls.

Forking a process after its parent has started library threads (OpenCV and
FFmpeg decoding, torch, MTCNN) copies whatever lock such a thread held at that
moment, held forever in the child: a worker that then opens a video waits on a
futex for good. :func:`start_context` gives the multiprocessing context every
pool of the kit uses (crop building, data loaders): ``forkserver`` where the
platform has it (a clean server process, started once, that never runs a
decoder, forks the workers), else ``spawn``; either way a worker inherits no
parent thread and opens its own readers.

:func:`wait_some` is the stall watchdog: no task finished for ``stall_minutes``
raises :class:`Stalled`, whose message names the work, the stuck rows or files
and the setting to raise. :data:`STALL_MINUTES` is the default of every such
setting (02_split's ``stall_minutes``, TrainConfig's ``stall_minutes``).
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, Iterable

#: Default minutes without a finished task before a pool is declared stuck.
STALL_MINUTES = 10.0
#: The setting each stall message tells the user to raise: 02_split's (face detection, crop building)
#: and TrainConfig's (data loaders).
SPLIT_SETTING = "02_split's stall_minutes (in the profile: defaults: {02_split: {stall_minutes: 30}})"
LOADER_SETTING = "TrainConfig's stall_minutes (a 04_train step: overrides: {stall_minutes: 30})"


class Stalled(RuntimeError):
    """A worker pool finished no task for its stall limit (the message says which work and what to raise)."""


def start_context(preload: str) -> multiprocessing.context.BaseContext:
    """The context of every decoding pool: ``forkserver`` (POSIX), else ``spawn``.

    ``preload``: the module of the workers' code, which the forkserver imports
    once (its first pool's), so that each worker then starts in milliseconds.

    Worker functions and their arguments must be picklable (module-level
    functions, no lambdas); a script that starts a pool must do so under
    ``if __name__ == "__main__":`` (notebooks and ``python -m`` need nothing)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])     # no effect once the server runs
        return ctx
    return multiprocessing.get_context("spawn")


def stall_seconds(stall_minutes: float | None) -> float:
    """``stall_minutes`` (None: :data:`STALL_MINUTES`) in seconds; it must be positive."""
    minutes = STALL_MINUTES if stall_minutes is None else float(stall_minutes)
    if not minutes > 0:
        raise ValueError(f"stall_minutes must be a positive number of minutes, got {stall_minutes!r}")
    return minutes * 60.0


def stall_message(work: str, stall_minutes: float | None, stuck: str, setting: str) -> str:
    """The one text of every stall: what stopped, for how long, what was stuck, what to raise."""
    minutes = STALL_MINUTES if stall_minutes is None else float(stall_minutes)
    return (f"{work}: no worker finished a task for {minutes:g} min, so the workers are stopped; "
            f"stuck: {stuck}. A decoder that hangs on these files (damaged, or a network share that stopped "
            f"answering) is the usual cause; if they are only slow, raise {setting}")


def wait_some(pending: Iterable[Future], stall_minutes: float | None, work: str, setting: str,
              describe: Callable[[list[Future]], str]) -> tuple[set[Future], set[Future]]:
    """``concurrent.futures.wait(..., FIRST_COMPLETED)`` with a watchdog: the
    (done, not done) futures once one finishes; none within ``stall_minutes``
    raises :class:`Stalled` (``describe(running futures)`` names what was stuck)."""
    pending = set(pending)
    done, left = wait(pending, timeout=stall_seconds(stall_minutes), return_when=FIRST_COMPLETED)
    if not done:
        running = [f for f in left if f.running()] or list(left)
        raise Stalled(stall_message(work, stall_minutes, describe(running), setting))
    return done, left
