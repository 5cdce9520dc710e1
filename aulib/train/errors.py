"""A torchrun child's exception, carried back to the process that launched it.

torch.distributed.elastic's error files: torchrun gives every child a
``TORCHELASTIC_ERROR_FILE``; the child's entry point, decorated with
:func:`record_child_errors` (``@record`` with :class:`RankedErrorHandler`),
writes its exception there as JSON, adding its rank, exception type and
message; torchrun, given a ``TORCHELASTIC_ERROR_FILE`` of its own, copies
the first failing child's file to it. :func:`child_failure` reads that copy
into a :class:`ChildProcessFailed` that names the child's exception and rank
instead of torchrun's ``ChildFailedError`` summary.
"""
from __future__ import annotations

import json
import os
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


def child_failure(error_file: str | os.PathLike, run_name: str, nproc: int,
                  exit_code: int) -> ChildProcessFailed | None:
    """The :class:`ChildProcessFailed` recorded in ``error_file`` (torchrun's
    copy of the first failing child's file); None when there is none (a child
    killed by a signal writes nothing)."""
    path = Path(error_file)
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
