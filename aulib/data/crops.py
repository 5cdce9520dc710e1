"""Crop store: every face of an image list cropped once, kept in one file.

Layout of a store folder (docs/layout.md, ``crops/<style>_<size>/``)::

    pixels.u8    codec raw: raw uint8, shape (N, size, size, 3), row i = image i
    pixels.jpg   codec jpeg: the rows' JPEG files concatenated (any order)
    offsets.npy  codec jpeg: int64 (N, 2), start byte and length of every row
    index.csv    row, image, status (ok | no_face | no_landmarks | unreadable | pending),
                 crc32 (zlib.crc32 of the row's stored bytes, checked on every read)
    meta.yaml    format, style, size, n, images_sha1, faces_sha1 (+ codec, quality for jpeg)
    done.npy     bool (N,), all True once the store is finished
    journal.bin  while building: one 29-byte record per finished row (row, start, length, status, crc32)

``codec="raw"`` (the default, for small sets) is a memmap; ``codec="jpeg"``
stores each crop as a JPEG (4:4:4, ``quality``), about 1/10 of the raw
size at quality 90, decoded on read (in the DataLoader's workers). Both open
with :class:`CropStore`, whose ``images[rows]`` gives ``uint8 (k, S, S, 3)``,
each row checked against its CRC32 (:mod:`aulib.data.packed`);
``python -m aulib.data.crops verify <store>...`` lists the damaged rows.

:func:`build_crop_store` is resumable and costs O(N) in all: pixels of a chunk
are flushed (raw: into the memmap; jpeg: appended to ``pixels.jpg``) before
their rows are appended to ``journal.bin``; a killed build continues with the
rows not in the journal (a torn tail is ignored), and ``index.csv``,
``offsets.npy`` and ``done.npy`` are written once, at the end. It checks the
free space first (raw: the whole ``pixels.u8`` is allocated before it is
mapped, so a full disk is an error, never a Bus error; jpeg: an estimate,
re-checked with every chunk); a full disk, a write error or a crop worker
that dies ends the build with an error naming the store, and SIGTERM stops it
as Ctrl-C does, with the worker processes ended. Workers are started clean
(:func:`aulib.workers.start_context`: never forked from a parent that has
decoded videos) and watched: no chunk finished for ``stall_minutes`` ends the
build with :class:`aulib.workers.Stalled` naming the stuck rows and images.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from aulib.data.faces.align import style_scale, crop_face
from aulib.data.faces.cache import read_face_cache
from aulib.data.faces.columns import BOX_COLUMNS, LANDMARK_COLUMNS
from aulib.data.images import ImageReadError, load_rgb, resolve_image
from aulib.data.packed import REMEDY, PackedJpeg, RawCrops, crc32_rows, encode_jpeg
from aulib.io import (free_bytes, no_space_message, read_npy, read_yaml, require_space, write_csv, write_error,
                      write_npy, write_yaml)
from aulib.progress import progress as _progress
from aulib.workers import SPLIT_SETTING, Stalled, start_context, stall_seconds, wait_some

FORMAT = "aulib-crop-store/2"
#: Format 1 (before the CRC32 column): still opened, read unchecked; build_crop_store rebuilds it.
OLD_FORMATS = ("aulib-crop-store/1",)
CODECS = ("raw", "jpeg")
STORE_FILES = ("pixels.u8", "pixels.jpg", "offsets.npy", "index.csv", "meta.yaml", "done.npy", "journal.bin")
STATUSES = ("ok", "no_face", "no_landmarks", "unreadable")   # journal code k + 1; 0 is pending
JOURNAL = np.dtype([("row", "<i8"), ("start", "<i8"), ("length", "<i8"), ("status", "i1"), ("crc32", "<u4")])
#: First space estimate of a JPEG crop, as a fraction of its raw bytes (about 1/10 at quality 90, + 25 %).
JPEG_ESTIMATE = 1 / 8


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _faces_digest(faces: pd.DataFrame) -> str:
    """Hash of the face geometry the crops depend on (n_faces, box, landmarks)."""
    values = faces[["n_faces", *BOX_COLUMNS, *LANDMARK_COLUMNS]].to_numpy(dtype=np.float64)
    return _sha1(np.ascontiguousarray(np.round(values, 4)).tobytes())


def _open_pixels(path: Path, n: int, size: int, mode: str) -> np.memmap:
    return np.memmap(path, dtype=np.uint8, mode=mode, shape=(n, size, size, 3))


def _crop_rows(task) -> tuple[np.ndarray, list[str], list[bytes] | None, np.ndarray]:
    """Worker: decode and crop ``rows``. Codec raw: write them into
    ``pixels.u8`` and flush; jpeg: encode them. Returns the rows, their
    statuses, (jpeg) their JPEG bytes and the CRC32 of each row's stored
    bytes. Runs in the parent or a pool process."""
    data_root, pixels_path, n, style, size, rows, images, face_rows, codec, quality = task
    pixels = _open_pixels(Path(pixels_path), n, size, "r+") if codec == "raw" else None
    statuses, blobs, crcs = [], [], []
    for row, image, face in zip(rows, images, face_rows):
        try:
            crop, status = crop_face(load_rgb(resolve_image(data_root, image)), face, style, size)
        except ImageReadError:
            crop, status = np.zeros((size, size, 3), np.uint8), "unreadable"
        statuses.append(status)
        if pixels is not None:
            pixels[row] = crop
            crcs.append(crc32_rows(pixels[row:row + 1])[0])
        else:
            blobs.append(encode_jpeg(crop, quality))
            crcs.append(zlib.crc32(blobs[-1]))
    crcs = np.asarray(crcs, dtype=np.uint32)
    if pixels is not None:
        pixels.flush()
        del pixels
        return np.asarray(rows, dtype=np.int64), statuses, None, crcs
    return np.asarray(rows, dtype=np.int64), statuses, blobs, crcs


def _exit_with_builder() -> None:
    """Thread of a crop worker: end it as soon as the process that started the pool ends."""
    multiprocessing.parent_process().join()
    os._exit(1)


def _worker_init(parent: int | None) -> None:
    """A crop worker: Ctrl-C and SIGTERM are the parent's to handle (it ends
    the pool); the worker ends when the building process ends, however it ends
    (SIGKILL, a notebook kernel's ``os._exit``): a thread waits on the parent's
    sentinel (a forkserver's worker is the server's child, and the server lives
    as long as its children), and on Linux the kernel's parent-death signal
    covers a worker that is the builder's own child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if multiprocessing.parent_process() is not None:
        threading.Thread(target=_exit_with_builder, name="exit-with-builder", daemon=True).start()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)    # PR_SET_PDEATHSIG
    except (OSError, AttributeError):     # not Linux
        return
    if parent is not None and os.getppid() != parent:                 # the parent ended before prctl
        os._exit(1)


class _Terminated(BaseException):
    """SIGTERM arrived during a build (raised so that the pool is ended, as on Ctrl-C)."""


@contextlib.contextmanager
def _sigterm_stops():
    """While building: SIGTERM raises :class:`_Terminated` (in the main thread),
    so ``finally`` ends the pool; then the previous handler gets the signal
    (by default: exit, non-zero). Elsewhere, or where SIGTERM is ignored: nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        print("crop store build stopped by SIGTERM: its worker processes are ended, the rows finished are "
              "kept (rerun to continue)", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)      # the previous handler acts (default: the process exits)
        raise SystemExit(128 + signal.SIGTERM)    # if that handler returned
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _start_pool(num_workers: int) -> ProcessPoolExecutor:
    ctx = start_context("aulib.data.crops")
    parent = os.getpid() if ctx.get_start_method() in ("fork", "spawn") else None   # forkserver: its child
    return ProcessPoolExecutor(num_workers, mp_context=ctx, initializer=_worker_init, initargs=(parent,))


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (running chunks are dropped: not journalled, redone on resume) and join them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # Python < 3.14 has no terminate_workers()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
        with contextlib.suppress(OSError, TypeError):
            os.kill(p.pid, signal.SIGCONT)    # a stopped worker (Ctrl-Z, a debugger) gets its SIGTERM now
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` and fsync it."""
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_journal(out_dir: Path, n: int, codec: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status codes ``int8 (N,)`` (0 pending), ``int64 (N, 2)`` offsets and
    ``uint32 (N,)`` CRC32s of the rows in ``journal.bin``; a torn tail record, or (jpeg) a record past
    the end of ``pixels.jpg``, is dropped and the files are cut back to what is kept."""
    codes, offsets, crcs = np.zeros(n, np.int8), np.zeros((n, 2), np.int64), np.zeros(n, np.uint32)
    journal = out_dir / "journal.bin"
    raw = journal.read_bytes() if journal.exists() else b""
    whole = len(raw) // JOURNAL.itemsize * JOURNAL.itemsize
    rec = np.frombuffer(raw[:whole], dtype=JOURNAL)
    if codec == "jpeg":
        pack = out_dir / "pixels.jpg"
        rec = rec[rec["start"] + rec["length"] <= pack.stat().st_size]
        end = int((rec["start"] + rec["length"]).max()) if len(rec) else 0
        os.truncate(pack, end)
    if whole != len(raw) or len(rec) * JOURNAL.itemsize != whole:
        os.truncate(journal, 0)
        _append(journal, rec.tobytes())
    codes[rec["row"]] = rec["status"]          # a later record of a row wins
    offsets[rec["row"], 0], offsets[rec["row"], 1] = rec["start"], rec["length"]
    crcs[rec["row"]] = rec["crc32"]
    return codes, offsets, crcs


def rows_done(directory) -> int:
    """How many rows of the store at ``directory`` are finished (during or after a build)."""
    directory = Path(directory)
    done = read_npy(directory / "done.npy").astype(bool)
    if done.all():
        return len(done)
    journal = directory / "journal.bin"
    if (read_yaml(directory / "meta.yaml") or {}).get("format") != FORMAT:   # an older journal's records
        return int(done.sum())
    rec = np.frombuffer(journal.read_bytes()[: journal.stat().st_size // JOURNAL.itemsize * JOURNAL.itemsize],
                        dtype=JOURNAL) if journal.exists() else np.zeros(0, JOURNAL)
    return len(np.union1d(rec["row"], np.flatnonzero(done)))


def build_crop_store(data_root, faces, out_dir, style: str, size: int, images: Sequence[str] | None = None,
                     num_workers: int = 0, progress: bool = True, chunk: int = 256,
                     overwrite: bool = False, codec: str = "raw", quality: int = 90,
                     stall_minutes: float | None = None) -> "CropStore":
    """Crop every image once into a store at ``out_dir`` and open it.

    ``faces``: the face cache (DataFrame or CSV path); ``images``: the image
    names (relative to ``data_root``) in store order, default every image of
    the cache. ``style``: ``aligned`` or ``box<scale>`` (``box1.5``), see
    :func:`aulib.data.faces.align.crop_face`. Unreadable files get a black crop and
    status ``unreadable``; they never stop the build. ``codec``: ``raw``
    (uint8 memmap, ``3 * size**2`` bytes a crop) or ``jpeg`` (4:4:4 at
    ``quality`` 1-100; about 14 kB a 224 px crop at 90, for large sets).

    Resumes an interrupted build of the same parameters; a finished one is
    just opened. A store of other parameters (style, size, image list, face
    geometry, codec, quality) in ``out_dir`` raises ``ValueError``; ``overwrite=True`` always
    rebuilds from scratch. ``num_workers > 0`` decodes, crops and encodes ``chunk`` images
    per task in that many processes, started clean (:func:`aulib.workers.start_context`;
    from a script, call it under ``if __name__ == "__main__":``); no chunk finished
    for ``stall_minutes`` (None: :data:`aulib.workers.STALL_MINUTES`) stops them and
    raises :class:`aulib.workers.Stalled` naming the stuck rows (the rows finished are kept).
    """
    style_scale(style)
    stall_seconds(stall_minutes)      # a bad limit is refused before anything is written
    size = int(size)
    if size < 1:
        raise ValueError(f"crop size must be a positive number of pixels, got {size}")
    if codec not in CODECS:
        raise ValueError(f"unknown crop-store codec {codec!r}; choose one of {CODECS}")
    if codec == "jpeg" and not (isinstance(quality, (int, np.integer)) and 1 <= quality <= 100):
        raise ValueError(f"JPEG quality must be an integer 1-100, got {quality!r}")
    faces_df = read_face_cache(faces) if not isinstance(faces, pd.DataFrame) else faces
    if faces_df["image"].duplicated().any():
        raise ValueError(f"the face cache lists images more than once, e.g. "
                         f"{faces_df.loc[faces_df['image'].duplicated(), 'image'].tolist()[:5]}")
    images = faces_df["image"].astype(str).tolist() if images is None else [str(i) for i in images]
    if len(set(images)) != len(images):
        raise ValueError("the image list has duplicates, e.g. "
                         f"{pd.Series(images)[pd.Series(images).duplicated()].tolist()[:5]}")
    by_image = faces_df.set_index(faces_df["image"].astype(str))
    missing = [i for i in images if i not in by_image.index]
    if missing:
        raise KeyError(f"{len(missing)} of {len(images)} images have no row in the face cache, e.g. "
                       f"{missing[:5]}; run build_face_cache on them first")
    faces_df = by_image.loc[images].reset_index(drop=True)
    for image in images:
        resolve_image(data_root, image)

    out_dir = Path(out_dir)
    n = len(images)
    meta = {"format": FORMAT, "style": style, "size": size, "n": n,
            "images_sha1": _sha1("\n".join(images).encode("utf-8")),
            "faces_sha1": _faces_digest(faces_df)}
    if codec != "raw":   # a raw store's meta is unchanged, so stores built before codecs still open
        meta.update(codec=codec, quality=int(quality))
    pixels_path = out_dir / ("pixels.u8" if codec == "raw" else "pixels.jpg")
    existing = read_yaml(out_dir / "meta.yaml") if (out_dir / "meta.yaml").exists() else None
    if existing is not None and (not isinstance(existing, dict) or existing.get("format") != FORMAT):
        print(f"{out_dir}: a crop store of format {existing.get('format') if isinstance(existing, dict) else '?'} "
              f"(no checksums): rebuilding it as {FORMAT}", file=sys.stderr)
        overwrite = True
    if existing is not None and existing != meta and not overwrite:
        diff = {k: (existing.get(k), meta.get(k)) for k in {**existing, **meta} if existing.get(k) != meta.get(k)}
        raise ValueError(f"{out_dir} holds a crop store built with other parameters "
                         f"(stored vs requested: {diff}); delete {out_dir} and rerun notebooks/02_split.ipynb "
                         "(from Python: another out_dir, or build_crop_store(..., overwrite=True))")
    if overwrite:
        existing = None
    # what the index, offsets and done files take at the end (each written beside its old copy, then renamed)
    reserve = 2 * (sum(len(i.encode("utf-8")) for i in images) + 64 * n) + 2**20
    try:
        if existing is None:
            for name in STORE_FILES:
                (out_dir / name).unlink(missing_ok=True)
            out_dir.mkdir(parents=True, exist_ok=True)
            if codec == "raw":
                _allocate(pixels_path, n * size * size * 3, reserve)
            else:
                require_space(pixels_path, int((n * size * size * 3) * JPEG_ESTIMATE) + reserve,
                              "the crop store (an estimate of its JPEG crops)")
                pixels_path.write_bytes(b"")
            write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images,
                                                           "status": "pending", "crc32": 0}))
            write_npy(out_dir / "done.npy", np.zeros(n, dtype=bool))
            write_yaml(out_dir / "meta.yaml", meta)      # last: its presence means the files above exist
    except OSError as e:
        raise write_error(e, "the crop store", e.filename or out_dir, reserve) from e

    done = read_npy(out_dir / "done.npy").astype(bool)
    if len(done) != n or (codec == "raw" and pixels_path.stat().st_size != n * size * size * 3):
        raise ValueError(f"{out_dir} is damaged (files disagree on the number of rows); "
                         "delete the folder and rerun notebooks/02_split.ipynb (from Python: "
                         "build_crop_store(..., overwrite=True))")
    if done.all():
        return CropStore(out_dir)
    codes, offsets, crcs = _read_journal(out_dir, n, codec)
    todo = np.flatnonzero(codes == 0)
    try:
        if codec == "raw":        # a resumed store (or one of an older build, sparse): its blocks allocated now
            _allocate(pixels_path, n * size * size * 3, reserve)
        elif len(todo):
            require_space(pixels_path, int(len(todo) * size * size * 3 * JPEG_ESTIMATE) + reserve,
                          "the crop store (an estimate of its JPEG crops)")
        if len(todo):
            with _sigterm_stops():
                _crop_todo(data_root, faces_df, images, out_dir, pixels_path, style, size, codec, quality, todo,
                           codes, offsets, crcs, chunk, num_workers, progress, reserve, stall_minutes)
        statuses = np.asarray(STATUSES, dtype=object)[codes - 1]
        write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": statuses,
                                                       "crc32": crcs}))
        if codec == "jpeg":
            write_npy(out_dir / "offsets.npy", offsets)
        write_npy(out_dir / "done.npy", np.ones(n, dtype=bool))    # last: the store is finished
    except OSError as e:
        raise write_error(e, "the crop store", e.filename or out_dir, reserve) from e
    (out_dir / "journal.bin").unlink(missing_ok=True)
    return CropStore(out_dir)


def _allocate(path: Path, nbytes: int, reserve: int) -> None:
    """Make ``path`` a file of ``nbytes`` whose blocks are all allocated
    (``posix_fallocate``; elsewhere zeros written over the holes), after
    checking that the blocks still missing, plus ``reserve``, are free: a memmap
    over it can never write past the end of a full disk (a Bus error)."""
    have = path.stat().st_blocks * 512 if path.exists() else 0
    require_space(path, max(nbytes - have, 0) + reserve, "the crop store")
    with open(path, "r+b" if path.exists() else "w+b") as f:
        if nbytes and hasattr(os, "posix_fallocate"):
            os.posix_fallocate(f.fileno(), 0, nbytes)
        elif nbytes and have < nbytes:          # no fallocate: write zeros over what is not written yet
            f.truncate(nbytes)
            step = 2**24
            for pos in range(0, nbytes, step):
                f.seek(pos)
                block = f.read(min(step, nbytes - pos))
                if not any(block):
                    f.seek(pos)
                    f.write(bytes(len(block)))
        f.truncate(nbytes)
        f.flush()
        os.fsync(f.fileno())


def _crop_todo(data_root, faces_df, images, out_dir, pixels_path, style, size, codec, quality, todo,
               codes, offsets, crcs, chunk, num_workers, progress, reserve, stall_minutes=None) -> None:
    """Crop the rows ``todo`` in chunks (in ``num_workers`` processes, watched
    for stalls), each chunk's pixels written then journalled; fills ``codes``,
    ``offsets``, ``crcs``."""
    n = len(images)
    face_records = faces_df.to_dict("records")
    tasks = [(str(data_root), str(pixels_path), n, style, size, rows.tolist(),
              [images[r] for r in rows], [face_records[r] for r in rows], codec, int(quality))
             for rows in np.array_split(todo, int(np.ceil(len(todo) / chunk)))]
    bar = _progress(total=n, initial=n - len(todo), desc=f"crops {style} {size}px {codec}", unit="img",
                    disable=not progress)
    pool = _start_pool(num_workers) if num_workers > 0 else None
    left, written = len(todo), 0
    try:
        results = _watched(pool, tasks, stall_minutes, out_dir) if pool else map(_crop_rows, tasks)
        for rows, chunk_status, blobs, chunk_crc in results:
            left -= len(rows)
            rec = np.zeros(len(rows), JOURNAL)
            rec["row"], rec["status"] = rows, [STATUSES.index(s) + 1 for s in chunk_status]
            rec["crc32"] = chunk_crc
            if blobs is not None:
                rec["length"] = [len(b) for b in blobs]
                rec["start"] = pixels_path.stat().st_size + np.concatenate([[0], np.cumsum(rec["length"])[:-1]])
                data = b"".join(blobs)
                written += len(data)
                # this chunk, and the rest at the mean size so far (+ 20 %)
                needed = len(data) + int(1.2 * left * written / (len(todo) - left)) + reserve
                require_space(pixels_path, needed, "the crop store (this chunk, and an estimate of the rest)")
                _append(pixels_path, data)
            _append(out_dir / "journal.bin", rec.tobytes())
            codes[rows], offsets[rows, 0], offsets[rows, 1], crcs[rows] = (rec["status"], rec["start"],
                                                                           rec["length"], rec["crc32"])
            bar.update(len(rows))
    except BrokenProcessPool:
        full = free_bytes(out_dir) < 2**20
        raise RuntimeError(f"crop store {out_dir}: a crop worker process died (killed by a signal"
                           + (f"; {no_space_message('the crop store', pixels_path, 2**20)}" if full else
                              ": out of memory, or a disk error?")
                           + f"); the {n - int((codes == 0).sum())} rows finished are kept: rerun to continue") \
            from None
    except Stalled as e:
        raise Stalled(f"{e}; the {n - int((codes == 0).sum())} rows finished are kept: rerun to continue") from None
    finally:
        bar.close()
        if pool:
            _stop_pool(pool)


def _watched(pool: ProcessPoolExecutor, tasks: list, stall_minutes, out_dir: Path):
    """The results of ``tasks`` run in ``pool``, as they finish; no chunk
    finished for ``stall_minutes`` raises :class:`aulib.workers.Stalled`."""
    rows_of = {pool.submit(_crop_rows, t): t for t in tasks}
    pending = set(rows_of)

    def stuck(futures) -> str:
        parts = [f"rows {rows_of[f][5][0]}-{rows_of[f][5][-1]} (images {', '.join(rows_of[f][6][:3])}"
                 + (", ..." if len(rows_of[f][6]) > 3 else "") + ")" for f in futures[:4]]
        return "; ".join(parts) + (f"; and {len(futures) - 4} more chunks" if len(futures) > 4 else "")

    while pending:
        done, pending = wait_some(pending, stall_minutes, f"02_split: building crop store {out_dir}",
                                  SPLIT_SETTING, stuck)
        for f in done:
            yield f.result()


class CropStore:
    """A finished crop store, read-only.

    ``images``: ``uint8 (N, size, size, 3)`` indexable by row(s), each row
    checked against its CRC32 on read (a mismatch raises
    :class:`aulib.data.packed.DamagedCrop` naming store, row and image): a
    :class:`aulib.data.packed.RawCrops` (codec raw, a memmap) or a
    :class:`aulib.data.packed.PackedJpeg` (codec jpeg, decoded on read; its
    offsets checked on open); ``index``: DataFrame ``row, image, status,
    crc32``; ``status``: ``(N,)`` str array; ``crc32``: ``uint32 (N,)`` (None
    for a store of format 1, read unchecked); ``style``, ``size``, ``codec``.
    Pickles by path (DataLoader workers reopen the file, nothing is copied).
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        meta_path = self.dir / "meta.yaml"
        if not meta_path.exists():
            raise FileNotFoundError(f"no crop store at {self.dir} (meta.yaml missing); "
                                    f"create it with aulib.data.crops.build_crop_store")
        self.meta = read_yaml(meta_path)
        if not isinstance(self.meta, dict) or self.meta.get("format") not in (FORMAT, *OLD_FORMATS):
            raise ValueError(f"{meta_path} is not an {FORMAT} crop store")
        self.style: str = self.meta["style"]
        self.size: int = int(self.meta["size"])
        self.codec: str = self.meta.get("codec", "raw")
        n = int(self.meta["n"])
        done = read_npy(self.dir / "done.npy").astype(bool)
        if len(done) != n or not done.all():
            raise RuntimeError(f"crop store {self.dir} is incomplete ({rows_done(self.dir)} of {n} rows done); "
                               f"rerun build_crop_store with the same arguments to finish it")
        self.index = pd.read_csv(self.dir / "index.csv", dtype={"image": str, "status": str},
                                 keep_default_na=False)
        self.crc32 = self._checksums(n) if self.meta["format"] == FORMAT else None
        if self.codec == "jpeg":
            self.images = PackedJpeg(self.dir / "pixels.jpg", self.dir / "offsets.npy", self.size,
                                     crc32=self.crc32, n=n)
            size_ok, expected = True, "offsets within pixels.jpg"
        else:
            pixels = self.dir / "pixels.u8"
            expected = n * self.size * self.size * 3
            size_ok = pixels.stat().st_size == expected
            expected = f"{expected} bytes of pixels.u8"
        if len(self.index) != n or not size_ok:
            raise ValueError(f"crop store {self.dir} is damaged (index rows {len(self.index)}, expected {n} rows, "
                             f"{expected}); delete the folder and rerun notebooks/02_split.ipynb (from Python: "
                             "build_crop_store(..., overwrite=True))")
        if self.codec != "jpeg":     # mapped only once its size is known to be right
            self.images = RawCrops(pixels, n, self.size, crc32=self.crc32)
        self.status: np.ndarray = self.index["status"].to_numpy(dtype=str)
        self._row_of = pd.Series(self.index["row"].to_numpy(dtype=np.int64), index=self.index["image"])

    def _checksums(self, n: int) -> np.ndarray:
        """``uint32 (N,)`` from index.csv's ``crc32``, after checking its ``row`` column is ``0 .. N-1``."""
        problem = None
        if not {"row", "crc32"} <= set(self.index.columns):
            problem = f"its columns are {list(self.index.columns)}, expected row, image, status, crc32"
        elif len(self.index) != n:
            problem = f"it has {len(self.index)} rows, the store has {n}"
        else:
            rows = pd.to_numeric(self.index["row"], errors="coerce").to_numpy()
            crc = pd.to_numeric(self.index["crc32"], errors="coerce").to_numpy()
            if not np.array_equal(rows, np.arange(n)):
                problem = "its row column is not 0, 1, 2, ... in order"
            elif np.isnan(crc).any() or (crc < 0).any() or (crc >= 2**32).any() or (crc % 1 != 0).any():
                problem = "its crc32 column holds values that are not 32-bit checksums"
        if problem:
            raise ValueError(f"crop store {self.dir} is damaged: index.csv: {problem}; "
                             + REMEDY.format(dir=self.dir))
        return crc.astype(np.uint32)

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, image_names) -> np.ndarray:
        """Store rows (``int64``) of the given image names, in their order."""
        names = pd.Index([str(i) for i in image_names])
        pos = self._row_of.index.get_indexer(names)
        if (pos < 0).any():
            missing = names[pos < 0].tolist()
            raise KeyError(f"{len(missing)} images are not in crop store {self.dir}, e.g. {missing[:5]}; "
                           f"build the store over the image list you use")
        return self._row_of.to_numpy()[pos]

    def __getstate__(self):
        return {"dir": str(self.dir)}

    def __setstate__(self, state):
        self.__init__(state["dir"])

    def __repr__(self) -> str:
        return (f"CropStore({str(self.dir)!r}, style={self.style!r}, size={self.size}, n={len(self)}, "
                f"codec={self.codec!r})")



def verify_store(directory, chunk_bytes: int = 2**26) -> pd.DataFrame:
    """Every damaged row of the finished store at ``directory``: ``row, image,
    problem`` (empty when all rows match their CRC32). Opening it checks the
    files' sizes and (jpeg) the offsets first: damage there raises ValueError.
    A store of format 1 has no checksums: ValueError saying to rebuild it."""
    store = CropStore(directory)
    if store.crc32 is None:
        raise ValueError(f"crop store {store.dir} is of format {store.meta['format']} and has no checksums; "
                         f"rebuild it (delete {store.dir} and rerun notebooks/02_split.ipynb) to check it")
    bad = []
    chunk = max(1, chunk_bytes // (3 * store.size ** 2))      # rows read at a time (64 MiB of raw pixels)
    for start in range(0, len(store), chunk):
        rows = np.arange(start, min(start + chunk, len(store)))
        got = store.images.stored_crc32(rows)
        for r in rows[got != store.crc32[rows]]:
            bad.append((int(r), store.index["image"].iat[r],
                        f"crc32 {int(got[r - start]):08x}, index.csv records {int(store.crc32[r]):08x}"))
    return pd.DataFrame(bad, columns=["row", "image", "problem"])


def main(argv=None) -> int:
    """``python -m aulib.data.crops verify STORE...``: exit 0 when every row of
    every store matches its checksum, 1 when some are damaged (listed), 2 when
    a store cannot be opened (said why)."""
    p = argparse.ArgumentParser(prog="python -m aulib.data.crops", description="Crop-store maintenance.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check every row of crop stores against its CRC32; list damaged rows")
    v.add_argument("stores", nargs="+", help="crop store folders (runs/<profile>/crops/<style>_<size>)")
    args = p.parse_args(argv)
    worst = 0
    for path in args.stores:
        try:
            bad = verify_store(path)
        except (OSError, ValueError, RuntimeError) as e:
            print(f"{path}: cannot be checked: {e}")
            worst = 2
            continue
        n = len(CropStore(path))
        if bad.empty:
            print(f"{path}: all {n} rows match their checksums")
            continue
        print(f"{path}: {len(bad)} of {n} rows are damaged:")
        print(bad.to_string(index=False))
        print(f"to repair: delete {path} and rerun notebooks/02_split.ipynb "
              "(from Python: build_crop_store(..., overwrite=True))")
        worst = max(worst, 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())
