"""A step's fingerprint: what it ran with, so an unchanged step is skipped.

fingerprint = sha256(notebook source, every resolved parameter, the
identity of the input files the step reads outside its workspace, the
previous step's fingerprint), 16 hex digits. A step is up
to date when its stamp (:meth:`aulib.workspace.Workspace.stamp`) holds that
fingerprint and its executed notebook exists (:func:`step_states`).

A file's identity is (path, size, mtime_ns, inode, ctime_ns): a file
rewritten in place with its size and mtime put back still changes its ctime
(which no program can set back), and one replaced by another file changes
its inode. An image folder's identity is its file count and a digest of the
identity of every file beneath it (one ``stat`` per file, nothing read:
3.7 s for 150,000 files measured on a shared 2-core machine under load 5,
local disk), so an image changed in place reruns the step that reads it and
every step after it. A generic CSV names images anywhere under its root: the
root is that folder, walked only for that data set (``dataset: csv``, its
label file present): the other data sets' image folders are named by their
layouts, so a wrong data root is never walked (:func:`check_data_root`
refuses it before any step, in well under a second). A folder that cannot
be read is a :class:`DataRootError` naming it and the setting to change.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..data.sources import source_inputs
from ..io import read_yaml
from ..workspace import Workspace


#: Files read from a data root besides those of the data set's layout.
EXTRA_INPUTS = ("faces.csv", "synthau.yaml")
#: The setting that names the data root, as a user sets it.
ROOT_SETTING = "--data-root (profile YAML: common: {data_root: ...})"


class DataRootError(ValueError):
    """A data root that does not hold the data set, or a folder under it that
    cannot be read; the message names the folder and the setting to change."""


def _csv_label_file(values: dict, root: Path) -> Path | None:
    """The label file of a generic CSV data set (``labels_csv``), when it exists."""
    name = values.get("labels_csv")
    return root / name if (values.get("dataset") == "csv" and name and (root / name).is_file()) else None


def check_data_root(values: dict) -> None:
    """Refuse at once a step whose ``data_root`` holds none of its data set's
    label files where the layout puts them (a wrong ``--data-root``): a
    :class:`DataRootError` naming the root, what was looked for and the
    setting; SynthAU (generated when absent) and steps without a root pass."""
    dataset = values.get("dataset") or "synthau"
    if not values.get("data_root") or dataset == "synthau":
        return
    root = Path(values["data_root"])
    if not root.is_dir():
        raise DataRootError(f"data root {root} is not a folder; set {ROOT_SETTING} to the folder of the "
                            f"{dataset} data set")
    if dataset == "csv":
        if values.get("labels_csv") and _csv_label_file(values, root) is None:
            raise DataRootError(f"data root {root} has no label file {values['labels_csv']} (labels_csv); set "
                                f"{ROOT_SETTING} to the folder that holds it, or labels_csv")
        return
    if not [p for p in source_inputs(dataset, root, values.get("label_settings")) if p.is_file()]:
        raise DataRootError(f"data root {root} holds no {dataset} label files where its layout puts them "
                            f"(docs/{dataset}.md); set {ROOT_SETTING} to the {dataset} folder, or name its folders "
                            "with label_settings")


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
    label_file = _csv_label_file(values, root)
    if label_file is not None:       # a generic CSV: its images anywhere under the root
        files |= {label_file, root}
    return sorted(files)


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _walk(folder: Path, rel: str = ""):
    """(relative path, stat) of every file beneath ``folder`` in name order
    (links to files followed, links to folders not); an unreadable folder is
    a :class:`DataRootError` naming it."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError:
        raise DataRootError(f"cannot read folder {folder} (permission denied) under the data root: make it "
                            f"readable by this user, or move the data set to a folder without it and set "
                            f"{ROOT_SETTING} there") from None
    for e in entries:
        name = f"{rel}{e.name}"
        if e.is_dir(follow_symlinks=False):
            yield from _walk(Path(e.path), name + "/")
        else:
            try:
                yield name, e.stat()
            except OSError:      # a dangling link: its name still counts
                yield name, None


def folder_identity(folder: Path) -> list:
    """``[n_files, digest]`` of the identity of every file beneath ``folder``."""
    lines = [f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}" if st else f"{name}\0-"
             for name, st in _walk(folder)]
    return [len(lines), hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()[:16]]


def identity(paths: list[Path]) -> list[list]:
    """``[[path, size, mtime_ns, inode, ctime_ns], ...]`` of existing files,
    ``[path, "folder", n_files, digest]`` of folders (:func:`folder_identity`),
    ``[path, "missing"]`` of a path that is not there (a data root not yet in
    place: the step is then out of date, and 01_data names what it lacks)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.append([str(p), "folder", *folder_identity(p)])
        elif p.exists():
            out.append([str(p), *_stat_key(p.stat())])
        else:
            out.append([str(p), "missing"])
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


def step_states(steps: list[tuple], ws: Workspace, previous: str = "") -> list[StepState]:
    """The :class:`StepState` of every ``(step, notebook, parameters)`` of
    :func:`aulib.pipeline.profile.plan`, in order, the first chained on from
    ``previous`` (the k-fold summary's: every fold's last fingerprint); reads
    stamps, writes nothing."""
    out = []
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
