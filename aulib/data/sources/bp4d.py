"""BP4D(-Spontaneous) as it ships (docs/bp4d.md).

Labels: ``AUCoding/AU_OCC/<Subject>_<Task>.csv`` (``F001_T1.csv``): a header
row; column ``0`` is the frame number, every other column is named by its AU
number; values 0 / 1, 9 = unknown. Frames: ``<frames>/<Subject>/<Task>/<n>.jpg``
with ``n`` the CSV's frame number, zero-padded or not (``frames`` default
``img``, the folder name of ME-GraphAU's lists). Subject = the file's subject.
Every row goes to the optimization table; the published folds
(``bp4d_3fold``) split it by subject.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .native import Ignored, Problems, assemble, code_values, numbered_files, read_fields, whole_numbers

SETTINGS = {"labels": "AUCoding/AU_OCC", "frames": "img"}
_FILE = re.compile(r"^(?P<subject>[FM]\d{3})_(?P<task>T\d+)\.csv$")
CODES = {"0": 0, "1": 1, "9": -1}
_ALLOWED = "0, 1 or 9 (unknown)"


def inputs(root: Path, settings: dict) -> list[Path]:
    """Files and folders whose change makes the labels change."""
    folder = root / settings["labels"]
    return sorted(folder.glob("*.csv")) + [p for p in [root / settings["frames"]] if p.is_dir()]


def read(root: Path, settings: dict, check_files: bool = True, on_error: str = "raise"):
    """``({"optimization": table}, {"optimization": report})`` of a BP4D root."""
    folder = root / settings["labels"]
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no BP4D label files <Subject>_<Task>.csv in {folder}; put BP4D's AUCoding/AU_OCC "
                                "there (docs/bp4d.md), or set label_settings: {labels: <folder>}")
    problems, notes, ignored = Problems(on_error), [], Ignored()
    odd = [f.name for f in files if not _FILE.match(f.name)]
    if odd:
        raise ValueError(f"{folder}: file name(s) {odd[:5]} are not <Subject>_<Task>.csv (e.g. F001_T1.csv); "
                         "rename or move them out of the folder")
    ignored.add(f"entries of {settings['labels']} that are not <Subject>_<Task>.csv label files",
                sorted(p.name for p in folder.iterdir() if p.suffix.lower() != ".csv" or not p.is_file()))
    coded = {(m.group("subject"), m.group("task")) for m in map(_FILE.match, (f.name for f in files))}
    images, rows, subjects = [], [], []
    aus: list[int] | None = None
    read_rows = missing = unlabelled = 0
    for f in files:
        m = _FILE.match(f.name)
        subject, task = m.group("subject"), m.group("task")
        cols, raw_all, lines, short = read_fields(f, header=True)
        if not cols or cols[0] != "0":
            raise ValueError(f"{f}: the first header field is {cols[0] if cols else ''!r}; a BP4D AU_OCC file "
                             "starts with column 0 (the frame number), then one column per AU number")
        bad_head = [c for c in cols[1:] if not c.isdigit()]
        if bad_head:
            raise ValueError(f"{f}: header field(s) {bad_head} are not AU numbers; a BP4D AU_OCC header is "
                             "0,1,2,4,... (frame, then AU numbers)")
        file_aus = [int(c) for c in cols[1:]]
        if aus is None:
            aus = file_aus
        elif file_aus != aus:
            raise ValueError(f"{f}: its AU columns {file_aus} differ from {files[0].name}'s {aus}; "
                             "every AU_OCC file of one release has the same header")
        frame_text = raw_all[:, 0]
        frame = whole_numbers(frame_text)
        for r in np.flatnonzero((frame < 0) & ~short):
            problems.add(f, lines[r], "0", frame_text[r], "bad frame number (expected a whole number)")
        raw = raw_all[:, 1:]
        codes = code_values(raw, CODES)
        codes[short] = -1
        bad = problems.bad_values(f, lines, cols[1:], raw, codes, _ALLOWED) | (frame < 0)
        for r in np.flatnonzero(short):
            problems.add(f, lines[r], "", "", f"too few fields (expected {len(cols)})")
        bad |= short
        bad |= problems.repeated(f, lines, "0", frame_text, frame, bad)
        read_rows += len(lines)
        on_disk = numbered_files(root / settings["frames"] / subject / task, root, ignored)
        have = np.isin(frame, np.fromiter(on_disk, np.int64, len(on_disk))) if check_files else \
            np.ones(len(frame), bool)
        keep = ~bad & have
        missing += int((~bad & ~have).sum())
        unlabelled += len(set(on_disk) - set(frame[~bad].tolist()))
        prefix = f"{settings['frames']}/{subject}/{task}/"
        images += [prefix + (on_disk.get(n) or f"{n}.jpg") for n in frame[keep]]
        rows.append(codes[keep])
        subjects += [subject] * int(keep.sum())
    problems.check()
    ignored.add(f"frame folders of {settings['frames']} without a label file <Subject>_<Task>.csv",
                _uncoded(root / settings["frames"], coded))
    notes += ignored.notes()
    if check_files and read_rows and not images and not problems.rows:
        raise FileNotFoundError(f"none of the {read_rows} labelled BP4D frames exist under {root / settings['frames']}"
                                " (expected <frames>/<Subject>/<Task>/<frame>.jpg); set label_settings: "
                                "{frames: <folder>} to where the frames are")
    codes = np.concatenate(rows) if rows else np.zeros((0, len(aus or [])), np.int8)
    table, report = assemble(str(folder), images, codes, aus or [], subjects, read_rows, problems,
                             {"labels without a frame": missing, "frames without labels": unlabelled}, notes)
    return {"optimization": table}, {"optimization": report}


def _uncoded(frames: Path, coded: set) -> list[str]:
    """``<Subject>/<Task>`` frame folders under ``frames`` with no label file
    (and entries there that are no such folder)."""
    if not frames.is_dir():
        return []
    out = []
    for subject in sorted(frames.iterdir(), key=lambda p: p.name):
        tasks = sorted(subject.iterdir(), key=lambda p: p.name) if subject.is_dir() else [None]
        out += [f"{subject.name}/{t.name}" if t else subject.name for t in tasks
                if t is None or (subject.name, t.name) not in coded]
    return out
