"""A run's prediction index, ``preds/<split>_index.csv``: writing it,
parsing and checking it, and its binary twin ``preds/<split>_index.npz``.

The CSV (``image, variant`` and the group's AU label columns, -1 unknown;
one row per row of the ``<split>_epoch<NNN>.npy`` files) is the contract:
people and other tools read it. Parsing 780,000 rows costs ~0.3 s, twice
reading every prediction file of an Aff-Wild2 run, so :func:`write_index`
also stores the checked parse as arrays (:data:`TWIN_ARRAYS`) with the
CSV's size, modification and change times and inode, and the SHA-256 of
its bytes. A reader uses the twin only while the CSV's ``os.stat`` matches
those four (any rewrite, the kit's atomic writes included, changes the
inode and change time); otherwise, or where there is no twin (a run
written by an older version or another tool, a copied workspace), it
parses the CSV. Runs that share a split's index share one parsed table
per process (keyed by the SHA-256 of the CSV's bytes: the twin's, or
hashed at 1.6 GB/s).
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .aus import au_columns_in
from .io import atomic_path, write_csv
from .workspace import RunDir

#: The twin's arrays: the CSV's header, image names (unique) and each row's code into them, variants,
#: labels (N, C) int8, the CSV's (size, mtime_ns, ctime_ns, inode) when written, and its SHA-256.
TWIN_ARRAYS = ("columns", "image_names", "image_codes", "variant", "labels", "source", "sha256")
#: pandas 3 copies on write: there a shallow copy of a shared table is a safe one.
_DEEP_COPY = int(pd.__version__.split(".")[0]) < 3
#: Checked index tables by content: the CSV's SHA-256 (from its twin, else hashed) -> table.
#: The last few read (B, its multi-crop, held-out).
_INDEXES: dict[bytes, pd.DataFrame] = {}
_INDEXES_KEPT = 4


def write_index(path, table: pd.DataFrame) -> None:
    """Write the index file ``path`` (``RunDir.index(split)``, or beside
    predictions written elsewhere) from ``table`` (``image, variant`` and AU
    columns) and its twin (``RunDir.twin_of``). Both atomically, the twin
    last and built from the written CSV's own parse, so it holds exactly
    what a reader of the CSV gets; a table with other columns, or values
    the typed parse does not take, gets no twin."""
    path = Path(path)
    write_csv(path, table)
    twin = RunDir.twin_of(path)
    twin.unlink(missing_ok=True)                       # a stale twin never outlives a rewrite
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).digest()
    parsed = _remember(digest, _checked(_read_csv(raw), path))
    au = au_columns_in(parsed.columns)
    typed = parsed["variant"].dtype == np.int64 and (parsed[au].dtypes == np.int8).all()
    if list(parsed.columns) != ["image", "variant", *au] or not typed or parsed["image"].isna().any():
        return                                         # not the kit's typed index: read from the CSV alone
    names, codes = np.unique(parsed["image"].to_numpy(dtype=object).astype(str), return_inverse=True)
    arrays = {"columns": np.array(parsed.columns, dtype=str), "image_names": names,
              "image_codes": codes.astype(np.int64), "variant": parsed["variant"].to_numpy(np.int64),
              "labels": parsed[au].to_numpy(np.int8), "source": _stat_key(path),
              "sha256": np.frombuffer(digest, np.uint8)}
    with atomic_path(twin) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def parsed_index(path) -> pd.DataFrame:
    """The checked index table of the index file ``path``: AU columns and label
    codes checked (a clear error naming the file, line and column), from
    its current twin when there is one, parsed once per content
    (:data:`_INDEXES`). The returned table is shared: copy it
    (:func:`copy_of`) before changing it."""
    path = Path(path)
    twin = _from_twin(path)
    if twin is not None:
        return _remember(*twin)
    raw = path.read_bytes()
    key = hashlib.sha256(raw).digest()
    hit = _INDEXES.get(key)
    return _remember(key, hit if hit is not None else _checked(_read_csv(raw), path))


def copy_of(index: pd.DataFrame) -> pd.DataFrame:
    """A copy of a shared table that its holder may change (shallow under pandas' copy-on-write)."""
    return index.copy(deep=_DEEP_COPY)


def _stat_key(path: Path) -> np.ndarray:
    st = os.stat(path)
    return np.array([st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino], np.int64)


def _from_twin(path: Path) -> tuple[bytes, pd.DataFrame] | None:
    """(content key, table) from the twin of index CSV ``path``, or None when
    there is none, it is damaged or the CSV changed since it was written."""
    try:
        z = np.load(RunDir.twin_of(path), allow_pickle=False)
    except Exception:  # noqa: BLE001 - a missing or damaged cache is no error: the CSV is read
        return None
    with z:
        try:
            if not (set(TWIN_ARRAYS) <= set(z.files) and np.array_equal(z["source"], _stat_key(path))):
                return None
            key = bytes(z["sha256"])
            hit = _INDEXES.get(key)
            if hit is not None:
                return key, hit
            columns = [str(c) for c in z["columns"]]
            image = pd.Series(z["image_names"].astype(object)[z["image_codes"]], dtype=str)
            table = pd.DataFrame({"image": image, "variant": z["variant"]})
            return key, pd.concat([table, pd.DataFrame(z["labels"], columns=columns[2:])], axis=1)
        except Exception:  # noqa: BLE001 - as above
            return None


def _read_csv(raw: bytes) -> pd.DataFrame:
    """An index file's table: ``image`` as text, ``variant`` and the AU columns as
    integers told to the parser (1.5x less CPU than letting it infer them: 0.35 s
    against 0.52 s for 780k rows). A file whose values do not parse so (a damaged
    or foreign file) is read as pandas infers it, for :func:`_checked` to name
    the line and column."""
    header = raw[:raw.find(b"\n")].decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")
    types = {c: np.int8 for c in au_columns_in(header)}
    types.update({c: str for c in header if c == "image"})
    types.update({c: np.int64 for c in header if c == "variant"})
    try:
        return pd.read_csv(io.BytesIO(raw), dtype=types)
    except (ValueError, OverflowError, TypeError):
        return pd.read_csv(io.BytesIO(raw))


def _checked(index: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``index`` after checking it has AU columns holding only 1, 0, -1."""
    cols = au_columns_in(index.columns)
    if not cols:
        raise ValueError(f"{path} has no AU label columns (expected AU1, AU2, ...)")
    vals = index[cols].to_numpy()
    if vals.dtype.kind in "iu" and (not vals.size or (vals.min() >= -1 and vals.max() <= 1)):
        return index                                                  # integers in [-1, 1]: the codes
    bad = ~np.isin(vals, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{path}: line {r + 2}, column {cols[c]} holds {vals[r, c].item()!r}; "
                         "labels must be 1, 0 or -1")
    return index


def _remember(key: bytes, index: pd.DataFrame) -> pd.DataFrame:
    """``index``, kept as the most recently used table of content ``key``."""
    _INDEXES.pop(key, None)
    _INDEXES[key] = index
    while len(_INDEXES) > _INDEXES_KEPT:
        del _INDEXES[next(iter(_INDEXES))]
    return index
