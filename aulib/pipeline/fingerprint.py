"""A step's fingerprint: what it ran with, so an unchanged step is skipped.

fingerprint = sha256(notebook source, every resolved parameter, the
identity (path, size, mtime_ns) of the input files the step reads outside
its workspace, the previous step's fingerprint), 16 hex digits.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..data.sources import source_inputs

#: Files read from a data root besides those of the data set's layout.
EXTRA_INPUTS = ("faces.csv", "synthau.yaml")


def input_files(values: dict) -> list[Path]:
    """Inputs outside the workspace of a step with ``values``: when
    ``data_root`` is given, the label files of its ``dataset``
    (:func:`aulib.data.sources.source_inputs`; a generic CSV data set: the root's
    ``*.csv``/``*.txt``, and ``labels_csv``), the face cache, and the image folders (their
    listing's identity: a folder's mtime changes when a file is added or removed)."""
    if not values.get("data_root"):
        return []
    root = Path(values["data_root"])
    files = set(source_inputs(values.get("dataset") or "synthau", root, values.get("label_settings")))
    files |= {m for pat in EXTRA_INPUTS for m in root.glob(pat) if m.is_file()}
    if values.get("labels_csv") and (root / values["labels_csv"]).is_file():   # a csv data set's label file
        files.add(root / values["labels_csv"])
    return sorted(files)


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
