"""The pixel files of a crop store, read with a CRC32 check of every row.

``RawCrops(path, n, size, crc32)`` (codec raw: a memmap of ``uint8 (N, S, S, 3)``)
and ``PackedJpeg(path, offsets_path, size, crc32)`` (codec jpeg: concatenated
JPEG files plus an offset index) read alike: ``x[i]`` is ``uint8 (S, S, 3)``,
``x[rows]`` is ``uint8 (k, S, S, 3)`` (rows read in file order; JPEGs decoded
with PIL's libjpeg-turbo). ``crc32``: ``uint32 (N,)``, ``zlib.crc32`` of each
row's stored bytes (raw: the row's ``3 S^2`` bytes; jpeg: its JPEG bytes),
checked on every read; a mismatch raises :class:`DamagedCrop` naming the store,
row and image. ``crc32=None`` (stores of format 1) reads unchecked. Both pickle
by path (with the CRCs, 4 bytes a row), so DataLoader workers reopen the file.
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

#: Chroma subsampling of the encoder: 4:4:4 keeps colour at full resolution.
SUBSAMPLING = 0

#: What to do about a damaged store (said by every error about one).
REMEDY = ("list every damaged row with `python -m aulib.data.crops verify {dir}`, then delete {dir} and rerun "
          "notebooks/02_split.ipynb (from Python: build_crop_store(..., overwrite=True))")


class DamagedCrop(ValueError):
    """A crop whose stored bytes fail their CRC32 or do not decode; ``store``, ``row``, ``image``."""

    def __init__(self, store: Path, row: int, image: str, problem: str):
        self.store, self.row, self.image, self.problem = store, row, image, problem
        super().__init__(f"crop store {store}: row {row} (image {image}) is damaged: {problem}; "
                         + REMEDY.format(dir=store))


def encode_jpeg(crop: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of one ``uint8 (S, S, 3)`` RGB crop (baseline, 4:4:4)."""
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="JPEG", quality=int(quality), subsampling=SUBSAMPLING)
    return buf.getvalue()


def decode_jpeg(data: bytes, size: int) -> np.ndarray:
    """``uint8 (size, size, 3)`` RGB from JPEG bytes; a wrong size raises ValueError."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (size, size))
        arr = np.asarray(im.convert("RGB"))
    if arr.shape != (size, size, 3):
        raise ValueError(f"a packed crop decodes to {arr.shape}, expected {(size, size, 3)}")
    return arr


def crc32_rows(rows: np.ndarray) -> np.ndarray:
    """``uint32 (k,)``: ``zlib.crc32`` of each row of a C-contiguous ``(k, ...)`` array."""
    return np.fromiter((zlib.crc32(r) for r in np.ascontiguousarray(rows)), np.uint32, len(rows))


def check_offsets(offsets, n: int, file_size: int) -> str | None:
    """What is wrong with a jpeg store's offsets (``int64 (N, 2)``: start, length)
    for ``n`` rows in a file of ``file_size`` bytes, or None: shape, negative
    or empty entries, entries past the end, two rows sharing bytes."""
    offsets = np.asarray(offsets)
    if offsets.ndim != 2 or offsets.shape[1:] != (2,) or offsets.dtype.kind not in "iu":
        return f"offsets.npy holds {offsets.dtype} {offsets.shape}, expected int64 ({n}, 2)"
    if len(offsets) != n:
        return f"offsets.npy has {len(offsets)} rows, the store has {n}"
    start, length = offsets[:, 0].astype(np.int64), offsets[:, 1].astype(np.int64)
    for what, bad in (("a negative start", start < 0), ("a length under 1 byte", length < 1),
                      (f"an end past the {file_size} bytes of pixels.jpg", start + length > file_size)):
        if bad.any():
            rows = np.flatnonzero(bad)
            return f"{len(rows)} rows of offsets.npy have {what} (rows {rows[:5].tolist()})"
    order = np.argsort(start, kind="stable")
    overlap = np.flatnonzero(start[order][1:] < (start + length)[order][:-1])
    if len(overlap):
        return (f"{len(overlap)} rows of offsets.npy share bytes with another row "
                f"(rows {order[overlap + 1][:5].tolist()})")
    return None


class _CheckedRows:
    """Shared part of the two readers: shape, the CRC check, naming a row's image."""

    dtype = np.dtype(np.uint8)

    def __init__(self, path, n: int, size: int, crc32):
        self.path, self.size = Path(path), int(size)
        self.shape = (int(n), self.size, self.size, 3)
        self.crc32 = None if crc32 is None else np.asarray(crc32, dtype=np.uint32)
        self.verify = self.crc32 is not None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of all the crops decoded, as numpy's ``nbytes``."""
        return int(np.prod(self.shape))

    def _rows(self, index) -> np.ndarray:
        n = len(self)
        if isinstance(index, slice):
            return np.arange(*index.indices(n))
        rows = np.asarray(index, dtype=np.int64)
        if rows.ndim != 1:
            raise IndexError(f"{type(self).__name__} takes an int, a slice or a 1-d list of rows, "
                             f"got shape {rows.shape}")
        rows = np.where(rows < 0, rows + n, rows)      # negative rows count from the end, as numpy's
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows {index} out of range for {n} crops")
        return rows

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        return self.read(self._rows(index))

    def damage(self, row: int, problem: str) -> DamagedCrop:
        """The error for ``row``, naming its image (read from the store's index.csv)."""
        image = "?"
        try:
            import pandas as pd

            index = pd.read_csv(self.path.parent / "index.csv", usecols=["row", "image"], dtype={"image": str},
                                keep_default_na=False)
            image = str(index["image"].to_numpy()[np.flatnonzero(index["row"].to_numpy() == row)[0]])
        except Exception:   # the name is a courtesy: a damaged index.csv must not hide the damage found
            pass
        return DamagedCrop(self.path.parent, int(row), image, problem)

    def _check(self, rows: np.ndarray, got: np.ndarray) -> None:
        bad = np.flatnonzero(got != self.crc32[rows])
        if len(bad):
            k = bad[0]
            more = f" ({len(bad)} of the {len(rows)} rows read fail)" if len(bad) > 1 else ""
            raise self.damage(rows[k], f"{self.path.name} bytes have crc32 {int(got[k]):08x}, index.csv "
                                       f"records {int(self.crc32[rows[k]]):08x}{more}")

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


class RawCrops(_CheckedRows):
    """Read-only raw crops: ``pixels.u8`` as ``uint8 (N, S, S, 3)``; reads return copies."""

    def __init__(self, path, n: int, size: int, crc32=None):
        super().__init__(path, n, size, crc32)
        self._mm = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``uint8 (k, S, S, 3)`` of sorted or unsorted ``rows`` (one fancy read), checked."""
        out = self._mm[rows]
        if self.verify:
            self._check(rows, crc32_rows(out))
        return out

    def stored_crc32(self, rows: np.ndarray) -> np.ndarray:
        return crc32_rows(self._mm[rows])

    def __getstate__(self):
        return {"path": str(self.path), "n": len(self), "size": self.size, "crc32": self.crc32}

    def __setstate__(self, state):
        self.__init__(**state)


class PackedJpeg(_CheckedRows):
    """Read-only view of a packed JPEG file as ``(N, S, S, 3)`` uint8.

    ``offsets_path``: ``.npy`` of ``int64 (N, 2)``, start byte and length of
    every row, checked on open (:func:`check_offsets`; ``n`` the expected rows,
    default as many as it has); a damaged one raises ValueError naming it."""

    def __init__(self, path, offsets_path, size: int, crc32=None, n: int | None = None):
        self._fd, self._pid = None, None       # first: __del__ runs even when opening fails
        self.offsets_path = Path(offsets_path)
        try:
            offsets = np.load(self.offsets_path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{self.offsets_path} is damaged (not a readable .npy: {e}); "
                             + REMEDY.format(dir=self.offsets_path.parent)) from None
        n = len(offsets) if n is None else n
        problem = check_offsets(offsets, n, Path(path).stat().st_size)
        if problem is None and crc32 is not None and len(crc32) != n:
            problem = f"index.csv has {len(crc32)} checksums, the store has {n} rows"
        if problem:
            raise ValueError(f"crop store {Path(path).parent} is damaged: {problem}; "
                             + REMEDY.format(dir=Path(path).parent))
        super().__init__(path, n, size, crc32)
        self.offsets = offsets.astype(np.int64, copy=False)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():   # a forked worker opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def _bytes(self, row: int) -> bytes:
        start, length = self.offsets[row]
        return os.pread(self._file(), int(length), int(start))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``uint8 (k, S, S, 3)`` of ``rows``, read in file order, each checked then decoded."""
        out = np.empty((len(rows), self.size, self.size, 3), np.uint8)
        for k in np.argsort(self.offsets[rows, 0], kind="stable"):   # sequential reads in file order
            row = rows[k]
            data = self._bytes(row)
            if self.verify:
                self._check(rows[k:k + 1], np.array([zlib.crc32(data)], np.uint32))
            try:
                out[k] = decode_jpeg(data, self.size)
            except Exception as e:       # PIL's own text names only a BytesIO
                raise self.damage(row, f"its {len(data)} bytes are not a {self.size} px JPEG "
                                       f"({type(e).__name__}: {e})") from None
        return out

    def stored_crc32(self, rows: np.ndarray) -> np.ndarray:
        return np.fromiter((zlib.crc32(self._bytes(r)) for r in rows), np.uint32, len(rows))

    def __getstate__(self):
        return {"path": str(self.path), "offsets_path": str(self.offsets_path), "size": self.size,
                "crc32": self.crc32, "n": len(self)}

    def __setstate__(self, state):
        self.__init__(**state)

    def __del__(self):
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)
