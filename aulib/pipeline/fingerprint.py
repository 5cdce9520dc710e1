"""A step's fingerprint: what it ran with, so an unchanged step is skipped.

fingerprint = sha256(notebook source, every resolved parameter, the
identity (path, size, mtime_ns) of the input files the step reads outside
its workspace, the previous step's fingerprint), 16 hex digits.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..data.sources import LAYOUTS

#: Files read from a data root besides those of the data set's layout.
EXTRA_INPUTS = ("faces.csv", "synthau.yaml")


def input_files(values: dict) -> list[Path]:
    """Inputs outside the workspace of a step with ``values``: when
    ``data_root`` is given, the label files of its ``dataset`` layout
    (:data:`aulib.data.sources.LAYOUTS`; a generic CSV data set: the root's
    ``*.csv``/``*.txt``), the face cache, and the image folders (their
    listing's identity: a folder's mtime changes when a file is added or removed)."""
    if not values.get("data_root"):
        return []
    root = Path(values["data_root"])
    layout = LAYOUTS.get(values.get("dataset") or "synthau", {})
    patterns = [spec for spec, _, _ in layout.values() if spec] or ["*.csv", "*.txt"]
    files = {m for pat in [*patterns, *EXTRA_INPUTS] for m in root.glob(pat) if m.is_file()}
    folders = {root / d for _, _, d in layout.values() if d and (root / d).is_dir()}
    return sorted(files | folders)


def identity(paths: list[Path]) -> list[list]:
    """``[[path, size, mtime_ns], ...]`` of existing paths."""
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def fingerprint(nb_path: Path, values: dict, inputs: list[list], previous: str) -> str:
    """16 hex digits over the notebook, ``values``, ``inputs`` and ``previous``."""
    h = hashlib.sha256()
    h.update(Path(nb_path).read_bytes())
    h.update(json.dumps(values, sort_keys=True, default=str).encode())
    h.update(json.dumps(inputs).encode())
    h.update(previous.encode())
    return h.hexdigest()[:16]
