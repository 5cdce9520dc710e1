"""Aff-Wild2, the ABAW AU track, as it ships (docs/affwild2.md).

Labels: ``<annotations>/AU_Detection_Challenge/Train_Set/<video>.txt`` and
``…/Validation_Set/<video>.txt`` (the first ABAW's
``AU_Set/Training_Set`` / ``AU_Set/Validation_Set`` too): a header line
naming the 12 AUs, then one line per frame of comma-separated 0/1; a line of
-1 has no valid label (skipped, counted; a -1 among 0/1 is unknown for that
AU). Line i after the header (1-based) is frame ``cropped_aligned/<video>/<i:05d>.jpg``.
Train -> optimization table, Validation -> validation table (the reported
set). Subject = video name without ``_left`` / ``_right`` (two faces of one
video are one recording).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .native import Ignored, Problems, assemble, code_values, numbered_files, read_fields

AFFWILD_AUS = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
SETTINGS = {"annotations": "annotations", "frames": "cropped_aligned"}
#: (challenge folder, {table split: set folder}) of the ABAW releases, newest first.
LAYOUTS = (("AU_Detection_Challenge", {"optimization": "Train_Set", "validation": "Validation_Set"}),
           ("AU_Set", {"optimization": "Training_Set", "validation": "Validation_Set"}))
CODES = {"0": 0, "1": 1, "-1": -1}


def _sets(root: Path, settings: dict) -> dict[str, Path]:
    base = root / settings["annotations"]
    for challenge, sets in LAYOUTS:
        found = {split: base / challenge / name for split, name in sets.items() if (base / challenge / name).is_dir()}
        if found:
            return found
    return {}


def inputs(root: Path, settings: dict) -> list[Path]:
    files = [f for d in _sets(root, settings).values() for f in sorted(d.glob("*.txt"))]
    return files + [p for p in [root / settings["frames"]] if p.is_dir()]


def subject_of(video: str) -> str:
    """``video10_left`` -> ``video10``."""
    return re.sub(r"_(left|right)$", "", video)


def _read_set(root: Path, folder: Path, settings: dict, check_files: bool, problems: Problems, ignored: Ignored):
    files = sorted(folder.glob("*.txt"))
    ignored.add(f"entries of {folder.relative_to(root)} that are no <video>.txt annotation file",
                sorted(p.name for p in folder.iterdir() if p.suffix != ".txt" or not p.is_file()))
    images, blocks, subjects = [], [], []
    read_rows = missing = unlabelled = invalid = 0
    for f in files:
        cols, raw, lines, short = read_fields(f, header=True)
        names = [c.upper().replace(" ", "") for c in cols]
        want = [f"AU{a}" for a in AFFWILD_AUS]
        if names != want:
            raise ValueError(f"{f}: header {cols} is not the ABAW AU header {','.join(want)}; is this an AU "
                             "annotation file?")
        frame_no = lines - 1          # line 2 (first after the header) is frame 00001.jpg
        codes = code_values(raw, CODES)
        codes[short] = -1
        bad = problems.bad_values(f, lines, cols, raw, codes, "0, 1 or -1 (no valid label)")
        for r in np.flatnonzero(short):
            problems.add(f, lines[r], "", "", f"too few fields (expected {len(cols)})")
        bad |= short
        none = (codes == -1).all(axis=1) & ~bad
        invalid += int(none.sum())
        read_rows += len(lines)
        video = f.stem
        on_disk = numbered_files(root / settings["frames"] / video, root, ignored)
        have = np.isin(frame_no, np.fromiter(on_disk, np.int64, len(on_disk))) if check_files else \
            np.ones(len(lines), bool)
        keep = ~bad & ~none & have
        missing += int((~bad & ~none & ~have).sum())
        labelled = set(frame_no[~bad & ~none].tolist())
        unlabelled += len(set(on_disk) - labelled)
        images += [f"{settings['frames']}/{video}/{on_disk.get(n) or f'{n:05d}.jpg'}" for n in frame_no[keep]]
        blocks.append(codes[keep])
        subjects += [subject_of(video)] * int(keep.sum())
    return files, images, blocks, subjects, read_rows, {
        "rows without a valid label (-1)": invalid, "labels without a frame": missing,
        "frames without labels": unlabelled}


def read(root: Path, settings: dict, check_files: bool = True, on_error: str = "raise"):
    """``({"optimization": ..., "validation": ...}, reports)`` of an Aff-Wild2 root."""
    sets = _sets(root, settings)
    if "optimization" not in sets:
        base = root / settings["annotations"]
        raise FileNotFoundError(f"no Aff-Wild2 AU annotations under {base}: expected "
                                f"{base}/AU_Detection_Challenge/Train_Set/<video>.txt (or the first ABAW's "
                                "AU_Set/Training_Set); see docs/affwild2.md, or set label_settings: "
                                "{annotations: <folder>}")
    problems = Problems(on_error)
    tables, reports, seen = {}, {}, {}
    frames = root / settings["frames"]
    annotated = {f.stem for d in sets.values() for f in d.glob("*.txt")}
    for split, folder in sets.items():
        ignored = Ignored()
        if split == "optimization" and frames.is_dir():     # once: frame folders of no set
            ignored.add(f"frame folders of {settings['frames']} without an AU annotation file (videos of the other "
                        "ABAW tracks)", sorted(set(os.listdir(frames)) - annotated))
        files, images, blocks, subjects, read_rows, counts = _read_set(root, folder, settings, check_files, problems,
                                                                       ignored)
        for f in files:
            if f.stem in seen:
                raise ValueError(f"video {f.stem} is annotated in both {seen[f.stem]} and {folder}; the official "
                                 "split puts a video in one set")
            seen[f.stem] = folder
        problems.check()
        if check_files and read_rows and not images:
            raise FileNotFoundError(f"none of the labelled frames of {folder} exist under {root / settings['frames']}"
                                    " (expected <frames>/<video>/00001.jpg ...); set label_settings: {frames: ...}")
        codes = np.concatenate(blocks) if blocks else np.zeros((0, len(AFFWILD_AUS)), np.int8)
        tables[split], reports[split] = assemble(str(folder), images, codes, list(AFFWILD_AUS), subjects,
                                                 read_rows, problems, counts, ignored.notes())
        problems.rows = []
    return tables, reports
