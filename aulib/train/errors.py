"""A torchrun child's exception, carried back to the process that launched it.

torch.distributed.elastic's error files: torchrun gives every child a
``TORCHELASTIC_ERROR_FILE``; the child's entry point, decorated with
:func:`record_child_errors` (``@record`` with :class:`RankedErrorHandler`),
writes its exception there as JSON, adding its rank, exception type and
message; torchrun, given a ``TORCHELASTIC_ERROR_FILE`` of its own, copies
the first failing child's file to it. :func:`child_failure` reads that copy
into a :class:`ChildProcessFailed` that names the child's exception and rank
instead of torchrun's ``ChildFailedError`` summary.

The root cause is torchrun's own: its exit summary (:func:`torchrun_failures`,
every failed rank with its exit code or signal) names the rank it observed
first. A rank killed by a signal writes no error file, and the ranks it
leaves behind fail next with a communication error ("Connection closed by
peer"); such a follower's error is never reported as the cause when a rank
died of a signal: the killed rank and its signal are.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
import traceback
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import ErrorHandler, record

from ..io import write_json


class RankedErrorHandler(ErrorHandler):
    """torch's error handler, plus ``rank``, ``exc_type`` and ``exc_message``
    in ``message.extraInfo`` (same JSON schema, so torchrun still reads it)."""

    def record_exception(self, e: BaseException) -> None:
        path = self._get_error_file_path()
        if not path:
            return
        info = {"py_callstack": traceback.format_exc(), "timestamp": str(int(time.time())),
                "rank": int(os.environ.get("RANK", "0")), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                "exc_type": type(e).__name__, "exc_message": str(e)}
        write_json(path, {"message": {"message": f"{type(e).__name__}: {e}", "extraInfo": info}})


def record_child_errors(fn):
    """``@record`` with :class:`RankedErrorHandler`, for a torchrun entry point."""
    return record(fn, error_handler=RankedErrorHandler())


#: Messages of a rank that failed because another one went away (gloo / NCCL / the c10d store).
PEER_ERRORS = re.compile(r"Connection closed by peer|Connection reset by peer|Broken pipe|NCCL communicator was "
                         r"aborted|DistNetworkError|recvBytes|sendBytes|Socket Timeout|peer", re.I)
_BLOCK = re.compile(r"^\[(\d+)\]:\s*$(.*?)(?=^\[\d+\]:|^-{20,}|^={20,}|\Z)", re.M | re.S)


def torchrun_failures(output: str) -> list[dict]:
    """The failures of torchrun's exit summary in ``output`` (its last one),
    root cause first: ``{"rank", "exitcode", "signal" (name or None), "error_file", "root"}``."""
    start = output.rfind("Failures:")
    root_at = output.find("Root Cause (first observed failure):", max(start, 0))
    if root_at < 0:
        return []
    out = []
    for part, is_root in ((output[start:root_at] if start >= 0 else "", False), (output[root_at:], True)):
        for m in _BLOCK.finditer(part):
            body = m.group(2)
            rank = re.search(r"rank\s*:\s*(\d+)", body)
            code = re.search(r"exitcode\s*:\s*(-?\d+)", body)
            err = re.search(r"error_file\s*:\s*(\S+)", body)
            sig = re.search(r"Signal (\d+) \((\w+)\)", body)
            exitcode = int(code.group(1)) if code else None
            name = sig.group(2) if sig else (signal.Signals(-exitcode).name if exitcode and exitcode < 0
                                              and -exitcode in signal.valid_signals() else None)
            out.append({"rank": int(rank.group(1)) if rank else None, "exitcode": exitcode, "signal": name,
                        "error_file": None if not err or err.group(1) == "<N/A>" else err.group(1), "root": is_root})
    return sorted(out, key=lambda f: not f["root"])


class ChildProcessFailed(RuntimeError):
    """A torchrun child raised. Attributes: ``rank``, ``exc_type``,
    ``exc_message``, ``child_traceback`` (str), ``run_name``, ``exit_code``."""

    def __init__(self, run_name: str, nproc: int, exit_code: int, rank: int | None, exc_type: str,
                 exc_message: str, child_traceback: str = ""):
        self.run_name, self.nproc, self.exit_code = run_name, int(nproc), int(exit_code)
        self.rank, self.exc_type, self.exc_message = rank, exc_type, exc_message
        self.child_traceback = child_traceback
        frames = [ln.strip() for ln in child_traceback.splitlines() if ln.strip().startswith("File ")]
        who = "of unknown rank" if rank is None else f"rank {rank}"
        where = f"\n  raised at {frames[-1]}" if frames else ""
        super().__init__(f"training run {run_name!r} failed in torchrun child {who} (of {nproc} processes, "
                         f"torchrun exit {exit_code}): {exc_type}: {exc_message}{where}")


def child_failure(error_file: str | os.PathLike, run_name: str, nproc: int, exit_code: int,
                  output: str = "") -> ChildProcessFailed | None:
    """The root cause of a failed torchrun job: the :class:`ChildProcessFailed`
    recorded in ``error_file`` (torchrun's copy of the first failing child's
    file), unless torchrun's summary in ``output`` shows a rank killed by a
    signal while the recorded error is a follower's communication error, or
    torchrun's root cause itself is a signal: then that rank and its signal.
    None when nothing names a cause."""
    recorded = _recorded(Path(error_file), run_name, nproc, exit_code)
    killed = [f for f in torchrun_failures(output) if f["signal"]]
    if killed and (recorded is None or killed[0]["root"] or PEER_ERRORS.search(recorded.exc_message or "")):
        f = killed[0]
        follower = (f"; rank {recorded.rank} then failed with {recorded.exc_type}: {recorded.exc_message}"
                    if recorded is not None else "")
        return ChildProcessFailed(run_name, nproc, exit_code, f["rank"], "Signal",
                                  f"the process was killed by {f['signal']} (exit code {f['exitcode']}; out of "
                                  f"memory, a kill, or a node that went away){follower}")
    return recorded


def _recorded(path: Path, run_name: str, nproc: int, exit_code: int) -> ChildProcessFailed | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    msg = data.get("message") if isinstance(data, dict) else None
    if not isinstance(msg, dict):
        return None
    info = msg.get("extraInfo") or {}
    text = str(msg.get("message", ""))
    exc_type, _, exc_message = text.partition(": ")
    return ChildProcessFailed(run_name, nproc, exit_code, info.get("rank"),
                              info.get("exc_type") or exc_type, info.get("exc_message", exc_message),
                              info.get("py_callstack", ""))
