"""Packed JPEG crops: one file of concatenated JPEG images plus an offset index.

``PackedJpeg(path, offsets_path, size)`` reads like the raw store's memmap:
``packed[i]`` is ``uint8 (S, S, 3)``, ``packed[rows]`` is ``uint8 (k, S, S, 3)``
(rows read in file order, decoded with PIL's libjpeg-turbo). It pickles by
path, so DataLoader workers reopen the file and decode in parallel.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

#: Chroma subsampling of the encoder: 4:4:4 keeps colour at full resolution.
SUBSAMPLING = 0


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


class PackedJpeg:
    """Read-only view of a packed JPEG file as ``(N, S, S, 3)`` uint8.

    ``offsets_path``: ``.npy`` of ``int64 (N, 2)``, start byte and length of every row."""

    dtype = np.dtype(np.uint8)

    def __init__(self, path, offsets_path, size: int):
        self.path, self.offsets_path, self.size = Path(path), Path(offsets_path), int(size)
        self.offsets = np.load(self.offsets_path, mmap_mode="r", allow_pickle=False)
        self.shape = (len(self.offsets), self.size, self.size, 3)
        self._fd, self._pid = None, None

    def __len__(self) -> int:
        return self.shape[0]

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():   # a forked worker opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, dtype=np.int64)
        if rows.ndim != 1:
            raise IndexError(f"PackedJpeg takes an int, a slice or a 1-d list of rows, got shape {rows.shape}")
        out = np.empty((len(rows), self.size, self.size, 3), np.uint8)
        fd = self._file()
        for k in np.argsort(self.offsets[rows, 0], kind="stable"):   # sequential reads in file order
            start, length = self.offsets[rows[k]]
            out[k] = decode_jpeg(os.pread(fd, int(length), int(start)), self.size)
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)

    def __getstate__(self):
        return {"path": str(self.path), "offsets_path": str(self.offsets_path), "size": self.size}

    def __setstate__(self, state):
        self.__init__(state["path"], state["offsets_path"], state["size"])

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
