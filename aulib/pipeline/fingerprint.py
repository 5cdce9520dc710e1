"""A step's fingerprint: what it ran with, so an unchanged step is skipped.

fingerprint = sha256(notebook source, every resolved parameter, the
identity (path, size, mtime_ns) of the input files the step reads outside
its workspace, the previous step's fingerprint), 16 hex digits. A step is up
to date when its stamp (:meth:`aulib.workspace.Workspace.stamp`) holds that
fingerprint and its executed notebook exists (:func:`step_states`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..data.sources import source_inputs
from ..io import read_yaml
from ..workspace import Workspace


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


@dataclass
class StepState:
    """Where a planned step stands: its fingerprint (``previous``: the step
    before's), input identities, whether it is up to date, and how many
    seconds its last run took (None: never ran here)."""

    step: object
    notebook: Path
    parameters: dict
    fingerprint: str
    previous: str
    inputs: list
    up_to_date: bool
    last_seconds: float | None


def step_states(steps: list[tuple], ws: Workspace) -> list[StepState]:
    """The :class:`StepState` of every ``(step, notebook, parameters)`` of
    :func:`aulib.pipeline.profile.plan`, in order; reads stamps, writes nothing."""
    out, previous = [], ""
    for step, nb_path, params in steps:
        inputs = identity(input_files(params))
        fp = fingerprint(nb_path, params, inputs, previous)
        stamp = ws.stamp(step.name)
        saved = (read_yaml(stamp) or {}) if stamp.exists() else {}
        ok = saved.get("fingerprint") == fp and ws.executed(step.name).exists()
        seconds = saved.get("seconds")
        out.append(StepState(step, Path(nb_path), params, fp, previous, inputs, ok,
                             float(seconds) if isinstance(seconds, (int, float)) else None))
        previous = fp
    return out
