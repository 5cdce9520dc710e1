"""Crop store: every face of an image list cropped once, kept as one memmap.

Layout of a store folder (docs/layout.md, ``crops/<style>_<size>/``)::

    pixels.u8   raw uint8, shape (N, size, size, 3), row i = image i
    index.csv   row, image, status (ok | no_face | no_landmarks | unreadable | pending)
    meta.yaml   format, style, size, n, images_sha1, faces_sha1
    done.npy    bool (N,), rows whose pixels are on disk

:func:`build_crop_store` is resumable: pixels of a chunk are flushed before
its rows are marked done (``done.npy`` is replaced atomically), so a killed
build continues with the rows not done. :class:`CropStore` opens a finished
store read-only.
"""
from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from aulib.data.faces import (BOX_COLUMNS, LANDMARK_COLUMNS, ImageReadError, _style_scale, crop_face,
                              load_rgb, read_face_cache, resolve_image)
from aulib.io import read_npy, read_yaml, write_csv, write_npy, write_yaml
from aulib.progress import progress as _progress

FORMAT = "aulib-crop-store/1"
STORE_FILES = ("pixels.u8", "index.csv", "meta.yaml", "done.npy")


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _faces_digest(faces: pd.DataFrame) -> str:
    """Hash of the face geometry the crops depend on (n_faces, box, landmarks)."""
    values = faces[["n_faces", *BOX_COLUMNS, *LANDMARK_COLUMNS]].to_numpy(dtype=np.float64)
    return _sha1(np.ascontiguousarray(np.round(values, 4)).tobytes())


def _open_pixels(path: Path, n: int, size: int, mode: str) -> np.memmap:
    return np.memmap(path, dtype=np.uint8, mode=mode, shape=(n, size, size, 3))


def _crop_rows(task) -> tuple[np.ndarray, list[str]]:
    """Worker: decode and crop ``rows``, write them into ``pixels.u8``, flush.
    Returns the rows and their statuses. Runs in the parent or a pool process."""
    data_root, pixels_path, n, style, size, rows, images, face_rows = task
    pixels = _open_pixels(Path(pixels_path), n, size, "r+")
    statuses = []
    for row, image, face in zip(rows, images, face_rows):
        try:
            img = load_rgb(resolve_image(data_root, image))
        except ImageReadError:
            pixels[row] = 0
            statuses.append("unreadable")
            continue
        pixels[row], status = crop_face(img, face, style, size)
        statuses.append(status)
    pixels.flush()
    del pixels
    return np.asarray(rows, dtype=np.int64), statuses


def build_crop_store(data_root, faces, out_dir, style: str, size: int, images: Sequence[str] | None = None,
                     num_workers: int = 0, progress: bool = True, chunk: int = 256,
                     overwrite: bool = False) -> "CropStore":
    """Crop every image once into a store at ``out_dir`` and open it.

    ``faces``: the face cache (DataFrame or CSV path); ``images``: the image
    names (relative to ``data_root``) in store order, default every image of
    the cache. ``style``: ``aligned`` or ``box<scale>`` (``box1.5``), see
    :func:`aulib.data.faces.crop_face`. Unreadable files get a black crop and
    status ``unreadable``; they never stop the build.

    Resumes an interrupted build of the same parameters; a finished one is
    just opened. A store of other parameters (style, size, image list, face
    geometry) in ``out_dir`` raises ``ValueError``; ``overwrite=True`` always
    rebuilds from scratch. ``num_workers > 0`` decodes and crops ``chunk`` images
    per task in that many processes (the platform's start method; where it
    is ``spawn``, call it from a notebook or under ``if __name__ == "__main__":``).
    """
    _style_scale(style)
    size = int(size)
    if size < 1:
        raise ValueError(f"crop size must be a positive number of pixels, got {size}")
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
    pixels_path = out_dir / "pixels.u8"
    existing = read_yaml(out_dir / "meta.yaml") if (out_dir / "meta.yaml").exists() else None
    if existing is not None and existing != meta and not overwrite:
        diff = {k: (existing.get(k), v) for k, v in meta.items() if existing.get(k) != v}
        raise ValueError(f"{out_dir} holds a crop store built with other parameters "
                         f"(stored vs requested: {diff}); delete {out_dir} and rerun notebooks/02_split.ipynb "
                         "(from Python: another out_dir, or build_crop_store(..., overwrite=True))")
    if overwrite:
        existing = None
    if existing is None:
        for name in STORE_FILES:
            (out_dir / name).unlink(missing_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        _open_pixels(pixels_path, n, size, "w+").flush()
        write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": "pending"}))
        write_npy(out_dir / "done.npy", np.zeros(n, dtype=bool))
        write_yaml(out_dir / "meta.yaml", meta)      # last: its presence means the files above exist

    done = read_npy(out_dir / "done.npy").astype(bool)
    index = pd.read_csv(out_dir / "index.csv", dtype={"image": str, "status": str}, keep_default_na=False)
    if len(done) != n or len(index) != n or pixels_path.stat().st_size != n * size * size * 3:
        raise ValueError(f"{out_dir} is damaged (files disagree on the number of rows); "
                         "delete the folder and rerun notebooks/02_split.ipynb (from Python: "
                         "build_crop_store(..., overwrite=True))")
    statuses = index["status"].to_numpy(dtype=object)
    todo = np.flatnonzero(~done)
    if len(todo):
        face_records = faces_df.to_dict("records")
        tasks = [(str(data_root), str(pixels_path), n, style, size, rows.tolist(),
                  [images[r] for r in rows], [face_records[r] for r in rows])
                 for rows in np.array_split(todo, int(np.ceil(len(todo) / chunk)))]
        bar = _progress(total=n, initial=n - len(todo), desc=f"crops {style} {size}px", unit="img",
                        disable=not progress)
        pool = multiprocessing.get_context().Pool(num_workers) if num_workers > 0 else None
        try:
            results = pool.imap_unordered(_crop_rows, tasks) if pool else map(_crop_rows, tasks)
            for rows, chunk_status in results:
                statuses[rows] = chunk_status
                done[rows] = True
                write_csv(out_dir / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images,
                                                               "status": statuses}))
                write_npy(out_dir / "done.npy", done)
                bar.update(len(rows))
        finally:
            bar.close()
            if pool:
                pool.terminate()
                pool.join()
    return CropStore(out_dir)


class CropStore:
    """A finished crop store, read-only.

    ``images``: ``np.memmap uint8 (N, size, size, 3)``; ``index``: DataFrame
    ``row, image, status``; ``status``: ``(N,)`` str array; ``style``, ``size``.
    Pickles by path (DataLoader workers reopen the memmap, nothing is copied).
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
        n = int(self.meta["n"])
        done = read_npy(self.dir / "done.npy").astype(bool)
        if len(done) != n or not done.all():
            raise RuntimeError(f"crop store {self.dir} is incomplete ({int(done.sum())} of {n} rows done); "
                               f"rerun build_crop_store with the same arguments to finish it")
        self.index = pd.read_csv(self.dir / "index.csv", dtype={"image": str, "status": str},
                                 keep_default_na=False)
        pixels = self.dir / "pixels.u8"
        expected = n * self.size * self.size * 3
        if len(self.index) != n or pixels.stat().st_size != expected:
            raise ValueError(f"crop store {self.dir} is damaged (index rows {len(self.index)}, pixels "
                             f"{pixels.stat().st_size} bytes, expected {n} rows, {expected} bytes); "
                             "delete the folder and rerun notebooks/02_split.ipynb (from Python: "
                             "build_crop_store(..., overwrite=True))")
        self.images: np.memmap = _open_pixels(pixels, n, self.size, "r")
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
        return f"CropStore({str(self.dir)!r}, style={self.style!r}, size={self.size}, n={len(self)})"

