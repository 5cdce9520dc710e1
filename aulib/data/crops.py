"""Crop store: every face of an image list cropped once, kept in one file.

Layout of a store folder (docs/layout.md, ``crops/<style>_<size>/``)::

    pixels.u8    codec raw: raw uint8, shape (N, size, size, 3), row i = image i
    pixels.jpg   codec jpeg: the rows' JPEG files concatenated (any order)
    offsets.npy  codec jpeg: int64 (N, 2), start byte and length of every row
    index.csv    row, image, status (ok | no_face | no_landmarks | unreadable | pending)
    meta.yaml    format, style, size, n, images_sha1, faces_sha1 (+ codec, quality for jpeg)
    done.npy     bool (N,), all True once the store is finished
    journal.bin  while building: one 25-byte record per finished row (row, start, length, status)

``codec="raw"`` (the default, for small sets) is a memmap; ``codec="jpeg"``
stores each crop as a JPEG (4:4:4, ``quality``), about 1/10 of the raw
size at quality 90, decoded on read (in the DataLoader's workers). Both open
with :class:`CropStore`, whose ``images[rows]`` gives ``uint8 (k, S, S, 3)``.

:func:`build_crop_store` is resumable and costs O(N) in all: pixels of a chunk
are flushed (raw: into the memmap; jpeg: appended to ``pixels.jpg``) before
their rows are appended to ``journal.bin``; a killed build continues with the
rows not in the journal (a torn tail is ignored), and ``index.csv``,
``offsets.npy`` and ``done.npy`` are written once, at the end.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from aulib.data.faces.align import _style_scale, crop_face
from aulib.data.faces.cache import read_face_cache
from aulib.data.faces.columns import BOX_COLUMNS, LANDMARK_COLUMNS
from aulib.data.images import ImageReadError, load_rgb, resolve_image
from aulib.data.packed import PackedJpeg, encode_jpeg
from aulib.io import read_npy, read_yaml, write_csv, write_npy, write_yaml
from aulib.progress import progress as _progress

FORMAT = "aulib-crop-store/1"
CODECS = ("raw", "jpeg")
STORE_FILES = ("pixels.u8", "pixels.jpg", "offsets.npy", "index.csv", "meta.yaml", "done.npy", "journal.bin")
STATUSES = ("ok", "no_face", "no_landmarks", "unreadable")   # journal code k + 1; 0 is pending
JOURNAL = np.dtype([("row", "<i8"), ("start", "<i8"), ("length", "<i8"), ("status", "i1")])


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _faces_digest(faces: pd.DataFrame) -> str:
    """Hash of the face geometry the crops depend on (n_faces, box, landmarks)."""
    values = faces[["n_faces", *BOX_COLUMNS, *LANDMARK_COLUMNS]].to_numpy(dtype=np.float64)
    return _sha1(np.ascontiguousarray(np.round(values, 4)).tobytes())


def _open_pixels(path: Path, n: int, size: int, mode: str) -> np.memmap:
    return np.memmap(path, dtype=np.uint8, mode=mode, shape=(n, size, size, 3))


def _crop_rows(task) -> tuple[np.ndarray, list[str], list[bytes] | None]:
    """Worker: decode and crop ``rows``. Codec raw: write them into
    ``pixels.u8`` and flush; jpeg: encode them. Returns the rows, their
    statuses and (jpeg) their JPEG bytes. Runs in the parent or a pool process."""
    data_root, pixels_path, n, style, size, rows, images, face_rows, codec, quality = task
    pixels = _open_pixels(Path(pixels_path), n, size, "r+") if codec == "raw" else None
    statuses, blobs = [], []
    for row, image, face in zip(rows, images, face_rows):
        try:
            crop, status = crop_face(load_rgb(resolve_image(data_root, image)), face, style, size)
        except ImageReadError:
            crop, status = np.zeros((size, size, 3), np.uint8), "unreadable"
        statuses.append(status)
        if pixels is not None:
            pixels[row] = crop
        else:
            blobs.append(encode_jpeg(crop, quality))
    if pixels is not None:
        pixels.flush()
        del pixels
        return np.asarray(rows, dtype=np.int64), statuses, None
    return np.asarray(rows, dtype=np.int64), statuses, blobs


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` and fsync it."""
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_journal(out_dir: Path, n: int, codec: str) -> tuple[np.ndarray, np.ndarray]:
    """Status codes ``int8 (N,)`` (0 pending) and ``int64 (N, 2)`` offsets of
    the rows in ``journal.bin``; a torn tail record, or (jpeg) a record past
    the end of ``pixels.jpg``, is dropped and the files are cut back to what is kept."""
    codes, offsets = np.zeros(n, np.int8), np.zeros((n, 2), np.int64)
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
    return codes, offsets


def rows_done(directory) -> int:
    """How many rows of the store at ``directory`` are finished (during or after a build)."""
    directory = Path(directory)
    done = read_npy(directory / "done.npy").astype(bool)
    if done.all():
        return len(done)
    journal = directory / "journal.bin"
    rec = np.frombuffer(journal.read_bytes()[: journal.stat().st_size // JOURNAL.itemsize * JOURNAL.itemsize],
                        dtype=JOURNAL) if journal.exists() else np.zeros(0, JOURNAL)
    return len(np.union1d(rec["row"], np.flatnonzero(done)))


def build_crop_store(data_root, faces, out_dir, style: str, size: int, images: Sequence[str] | None = None,
                     num_workers: int = 0, progress: bool = True, chunk: int = 256,
                     overwrite: bool = False, codec: str = "raw", quality: int = 90) -> "CropStore":
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
    per task in that many processes (the platform's start method; where it
    is ``spawn``, call it from a notebook or under ``if __name__ == "__main__":``).
    """
    _style_scale(style)
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
    if existing is not None and existing != meta and not overwrite:
        diff = {k: (existing.get(k), meta.get(k)) for k in {**existing, **meta} if existing.get(k) != meta.get(k)}
        raise ValueError(f"{out_dir} holds a crop store built with other parameters "
                         f"(stored vs requested: {diff}); delete {out_dir} and rerun notebooks/02_split.ipynb "
                         "(from Python: another out_dir, or build_crop_store(..., overwrite=True))")
    if overwrite:
        existing = None
    if existing is None:
        for name in STORE_FILES:
            (out_dir / name).unlink(missing_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        if codec == "raw":
            _open_pixels(pixels_path, n, size, "w+").flush()
        else:
            pixels_path.write_bytes(b"")
        write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": "pending"}))
        write_npy(out_dir / "done.npy", np.zeros(n, dtype=bool))
        write_yaml(out_dir / "meta.yaml", meta)      # last: its presence means the files above exist

    done = read_npy(out_dir / "done.npy").astype(bool)
    if len(done) != n or (codec == "raw" and pixels_path.stat().st_size != n * size * size * 3):
        raise ValueError(f"{out_dir} is damaged (files disagree on the number of rows); "
                         "delete the folder and rerun notebooks/02_split.ipynb (from Python: "
                         "build_crop_store(..., overwrite=True))")
    if done.all():
        return CropStore(out_dir)
    codes, offsets = _read_journal(out_dir, n, codec)
    todo = np.flatnonzero(codes == 0)
    if len(todo):
        face_records = faces_df.to_dict("records")
        tasks = [(str(data_root), str(pixels_path), n, style, size, rows.tolist(),
                  [images[r] for r in rows], [face_records[r] for r in rows], codec, int(quality))
                 for rows in np.array_split(todo, int(np.ceil(len(todo) / chunk)))]
        bar = _progress(total=n, initial=n - len(todo), desc=f"crops {style} {size}px {codec}", unit="img",
                        disable=not progress)
        pool = multiprocessing.get_context().Pool(num_workers) if num_workers > 0 else None
        try:
            results = pool.imap_unordered(_crop_rows, tasks) if pool else map(_crop_rows, tasks)
            for rows, chunk_status, blobs in results:
                rec = np.zeros(len(rows), JOURNAL)
                rec["row"], rec["status"] = rows, [STATUSES.index(s) + 1 for s in chunk_status]
                if blobs is not None:
                    rec["length"] = [len(b) for b in blobs]
                    rec["start"] = pixels_path.stat().st_size + np.concatenate([[0], np.cumsum(rec["length"])[:-1]])
                    _append(pixels_path, b"".join(blobs))
                _append(out_dir / "journal.bin", rec.tobytes())
                codes[rows], offsets[rows, 0], offsets[rows, 1] = rec["status"], rec["start"], rec["length"]
                bar.update(len(rows))
        finally:
            bar.close()
            if pool:
                pool.terminate()
                pool.join()
    statuses = np.asarray(STATUSES, dtype=object)[codes - 1]
    write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": statuses}))
    if codec == "jpeg":
        write_npy(out_dir / "offsets.npy", offsets)
    write_npy(out_dir / "done.npy", np.ones(n, dtype=bool))    # last: the store is finished
    (out_dir / "journal.bin").unlink(missing_ok=True)
    return CropStore(out_dir)


class CropStore:
    """A finished crop store, read-only.

    ``images``: ``uint8 (N, size, size, 3)`` indexable by row(s): a ``np.memmap``
    (codec raw) or a :class:`aulib.data.packed.PackedJpeg` (codec jpeg, decoded
    on read); ``index``: DataFrame ``row, image, status``; ``status``: ``(N,)``
    str array; ``style``, ``size``, ``codec``. Pickles by path (DataLoader
    workers reopen the file, nothing is copied).
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        meta_path = self.dir / "meta.yaml"
        if not meta_path.exists():
            raise FileNotFoundError(f"no crop store at {self.dir} (meta.yaml missing); "
                                    f"create it with aulib.data.crops.build_crop_store")
        self.meta = read_yaml(meta_path)
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
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
        if self.codec == "jpeg":
            self.images = PackedJpeg(self.dir / "pixels.jpg", self.dir / "offsets.npy", self.size)
            ends = self.images.offsets.sum(axis=1)
            size_ok = len(self.images) == n and bool((ends <= (self.dir / "pixels.jpg").stat().st_size).all())
            expected = "offsets within pixels.jpg"
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
            self.images = _open_pixels(pixels, n, self.size, "r")
        self.status: np.ndarray = self.index["status"].to_numpy(dtype=str)
        self._row_of = pd.Series(self.index["row"].to_numpy(dtype=np.int64), index=self.index["image"])

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

