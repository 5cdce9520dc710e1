"""The one owner of locks: one writer per workspace and per run directory.

:class:`WorkspaceLock` (``<workspace>/.pipeline.lock``): one pipeline runner
per workspace, held for the whole run (every step, every fold); a second
runner on the same workspace is refused at once, naming the holder.
:class:`RunLock` (``RunDir.lock``: ``train/.<run_name>.lock``, beside the run
directory so that ``overwrite`` cannot delete it): one training process per
run directory. Both are a :class:`FileLock`.

The lock is an ``fcntl.flock`` held for as long as the training process lives;
the kernel drops it when the process ends, however it ends (SIGKILL included),
so a lock left by a killed process never blocks: its file stays behind, only
naming the last holder. The file holds the holder's pid, host, start time (UTC)
and command line as YAML; a refusal quotes them. A holder whose pid is gone
on this host while the file is still locked (a child process it forked keeps
the lock) is named as such.

Under torchrun rank 0 takes the run's lock (:mod:`aulib.train.loop`); the in-process
launcher (:func:`aulib.train.launch.run_training`) takes it for a whole
torchrun job and hands it to the job through ``AULIB_RUN_LOCK_TOKEN``.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import os
import socket
import sys
import uuid
from pathlib import Path

import yaml

from .io import current_umask
from .workspace import RunDir

#: Environment variable by which a launcher that holds a run's lock lends it to its torchrun job.
TOKEN_ENV = "AULIB_RUN_LOCK_TOKEN"


class LockedError(RuntimeError):
    """Another process holds the lock (the message names it)."""


class RunLockedError(LockedError):
    """The run directory is being written by another training process."""


class WorkspaceLockedError(LockedError):
    """Another pipeline runner is running on the workspace."""


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return True
    return True


def describe_holder(info: dict, what: str) -> str:
    """A sentence naming the holder of the lock on ``what`` (``run r``,
    ``workspace w``) from its file's contents."""
    if not isinstance(info, dict) or "pid" not in info:
        return f"another process holds the lock on {what} (its lock file does not say which)"
    who = f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"
    if info.get("command"):
        who += f" ({info['command']})"
    if info.get("host") == socket.gethostname() and not _pid_alive(info.get("pid")):
        who += "; that pid is gone, so a process it started (e.g. a data-loader worker) still holds the lock"
    return f"{what} is being written by {who}"


class FileLock:
    """Exclusive, non-blocking lock held on the file ``path``, guarding ``what``.

    ``acquire()`` raises ``error`` (a :class:`LockedError`) naming the holder
    when another process holds it; ``release()`` (or leaving ``with``) drops it
    and removes the file. A lock file left by a dead process is taken over."""

    error = LockedError
    advice = "wait for it to finish, or stop it"

    def __init__(self, path, what: str):
        self.path, self.what = Path(path), what
        self.token = uuid.uuid4().hex
        self._fd = None

    def _read(self) -> dict:
        try:
            return yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}

    def lent_by_launcher(self) -> bool:
        """Whether a launcher holding this lock lent it to this process (``AULIB_RUN_LOCK_TOKEN``)."""
        token = os.environ.get(TOKEN_ENV)
        return bool(token) and self._read().get("token") == token and self._locked_elsewhere()

    def _locked_elsewhere(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)            # closing drops a lock taken just now
        return False

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise self.error(f"{describe_holder(self._read(), self.what)} (lock file {self.path}); "
                                 f"{self.advice}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:   # not a file the previous holder removed while we opened it
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:300], "token": self.token}
        os.ftruncate(fd, 0)
        os.write(fd, yaml.safe_dump(info, sort_keys=False).encode("utf-8"))
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)   # while still held: no one else has it
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunLock(FileLock):
    """One training process per run directory (``RunDir``): the lock file ``RunDir.lock``."""

    error = RunLockedError
    advice = "wait for it to finish, or stop it; two trainings of one run directory would mix their files"

    def __init__(self, run_dir):
        self.rd = RunDir(run_dir)
        super().__init__(self.rd.lock, f"run {self.rd.name}")


class WorkspaceLock(FileLock):
    """One pipeline runner per workspace (``<workspace>/.pipeline.lock``)."""

    error = WorkspaceLockedError
    advice = ("wait for that pipeline to finish, or stop it; two runners on one workspace would build the same "
              "files at once. To run both, give this one another workspace (--workspace DIR)")

    def __init__(self, ws):
        root = Path(getattr(ws, "root", ws))
        super().__init__(root / ".pipeline.lock", f"workspace {root}")
