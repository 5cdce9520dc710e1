"""Atomic file writes and safe reads.

Every artefact the kit writes goes through :func:`atomic_path`: the data is
written to a temporary file in the same folder, flushed to disk, then renamed
over the target. A reader therefore sees either the old file or the whole new
one, never half of it, even if the writer is killed (SIGKILL) mid-write.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml

from .settings import one_line


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it in
    ``/proc/self/status`` (a set-and-restore round trip elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: errno values that mean the disk (or the user's quota) is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StorageError(OSError):
    """A write the disk refused (full, quota, I/O error), its message already naming what, where and why."""


def free_bytes(path) -> int:
    """Bytes free to this user on the file system that holds ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _amount(n: int) -> str:
    return f"{int(n):,} bytes ({int(n) / 2**20:,.1f} MiB)"


def no_space_message(what: str, path, needed: int, free: int | None = None) -> str:
    """The one wording of a full disk: what, where, bytes needed and free."""
    free = free_bytes(path) if free is None else free
    return (f"no space left on the device for {what} {path}: it needs {_amount(needed)}, "
            f"{_amount(free)} are free; free some space (or move the workspace) and rerun: "
            "what was finished is kept")


def require_space(path, needed: int, what: str) -> None:
    """Raise ``OSError(ENOSPC)`` with :func:`no_space_message` unless ``needed``
    bytes are free where ``path`` is (or will be) written."""
    free = free_bytes(path)
    if free < needed:
        raise StorageError(errno.ENOSPC, no_space_message(what, path, needed, free))


def write_error(e: OSError, what: str, path, needed: int = 0) -> OSError:
    """``e`` (raised writing ``path``) restated as a :class:`StorageError` naming
    ``what`` and ``path``: a full disk as :func:`no_space_message`, any other
    error (EIO, ...) by its errno; a StorageError is returned as it is."""
    if isinstance(e, StorageError):
        return e
    if e.errno in NO_SPACE:
        return StorageError(e.errno, no_space_message(what, path, needed))
    return StorageError(e.errno, f"writing {what} {path} failed: {e.strerror or e} "
                            f"({errno.errorcode.get(e.errno, e.errno)}); what was finished is kept: "
                            "fix the disk and rerun")


def temp_path(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path`` that no other process or call uses:
    ``.<name>.<pid>.<random>.tmp`` (the file is not created). Every temporary
    file aulib writes is named here or by :func:`atomic_path`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_bytes(path, data: bytes, fsync: bool = True) -> None:
    """Atomically write bytes under a temporary name unique to this call
    (:func:`temp_path`); ``fsync=False`` for many small files whose batch
    a marker written last vouches for (SynthAU's images)."""
    if fsync:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on clean exit fsync and rename
    it to ``path``. On error the temporary file is removed and ``path`` is
    left untouched. The file gets the mode ``open()`` would give a new file
    (``0o666 & ~umask``, e.g. 0644 under umask 022), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    """Atomically write a text file (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(path, df) -> None:
    """Atomically write a pandas DataFrame as CSV without its index."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_npy(path, array: np.ndarray) -> None:
    """Atomically write one numpy array (``allow_pickle=False``)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)


def read_npy(path) -> np.ndarray:
    """Read an array written by :func:`write_npy`; refuses pickled objects."""
    return np.load(path, allow_pickle=False)


def write_yaml(path, data) -> None:
    """Atomically write plain data (dicts, lists, str, numbers) as YAML."""
    write_text(path, yaml.safe_dump(data, sort_keys=False))


class YAMLFileError(ValueError, yaml.YAMLError):
    """A YAML file that does not parse, or asks for a Python object (``!!python``
    tags): the message is one line naming the file, line and column."""


def read_yaml(path):
    """Parse a YAML file with ``yaml.safe_load`` (no arbitrary objects); a
    :class:`YAMLFileError` (``<file>: line L, column C: <problem>``) when it
    does not parse or holds a tag ``safe_load`` refuses."""
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = one_line(getattr(e, "problem", None) or e)
            hint = (" (plain YAML only: tags such as !!python/... are refused)"
                    if isinstance(e, yaml.constructor.ConstructorError) else "")
            raise YAMLFileError(f"{path}: {where}{problem}{hint}") from None


def write_json(path, data) -> None:
    """Atomically write plain data as indented JSON."""
    write_text(path, json.dumps(data, indent=2))


def _tensor_bytes(obj) -> int:
    """Bytes of the tensors (and numpy arrays) inside nested dicts/lists/tuples."""
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return obj.element_size() * obj.nelement()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def write_torch(path, obj) -> None:
    """Atomically ``torch.save`` an object of tensors/plain data. Refuses
    before writing when the disk lacks the tensors' bytes (+ 1 % and 1 MiB),
    and a write that fails on a full disk says so (``OSError(ENOSPC)``)."""
    import torch

    needed = int(_tensor_bytes(obj) * 1.01) + 2**20
    require_space(path, needed, "the checkpoint")
    try:
        with atomic_path(path) as tmp:
            try:
                torch.save(obj, tmp)
            except RuntimeError as e:    # torch's zip writer says "file write failed", its errno is lost
                if free_bytes(tmp) < 2**20:     # measured while the partial file still fills the disk
                    raise OSError(errno.ENOSPC, "torch.save: " + str(e).splitlines()[0]) from e
                raise
    except OSError as e:
        raise write_error(e, "the checkpoint", path, needed) from e


def read_torch(path, map_location="cpu"):
    """``torch.load`` with ``weights_only=True``: a checkpoint cannot run code."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:   # an object a weights-only load must not run, or a damaged file
        # torch's text suggests retrying with weights_only=False, i.e. running the file's code: only its finding is kept
        found = [ln.strip().rstrip(".") for ln in str(e).splitlines()
                 if ln.strip() and "weights_only" not in ln and "torch.load" not in ln]
        what = "; ".join(found) or "not plain data"
        if "global" in what.lower():
            raise pickle.UnpicklingError(f"{path}: refused by the weights-only loader ({what}); a pickle of "
                                         "Python objects can run code and aulib never writes one: do not load "
                                         "this file, use a checkpoint of a run you trained") from None
        raise ValueError(f"{path}: not a readable checkpoint ({what}); it is damaged or not written by aulib: "
                         "retrain or resume from an earlier epoch") from None
    except Exception as e:                # truncated or not a checkpoint at all
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); "
                         "it is damaged or not written by aulib: retrain or resume from an earlier epoch") from None
