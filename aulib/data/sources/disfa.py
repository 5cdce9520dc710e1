"""DISFA as it ships (docs/disfa.md).

Labels: ``ActionUnit_Labels/<SNxxx>/<SNxxx>_au<N>.txt`` for the 12 AUs
:data:`DISFA_AUS`, one ``frame,intensity`` line per frame, frame numbers
from 1, intensity 0-5; occurrence = intensity >= ``threshold`` (default 2,
as JAA-Net / ME-GraphAU). A frame missing from one AU's file is unknown for
that AU.

Images, one of:

* ``images: video`` (default): straight from the videos of the ``camera``
  setting (``left``, default, or ``right``):
  ``<videos>/LeftVideo<SNxxx>_comp.avi`` or ``RightVideo<SNxxx>_comp.avi``
  (``videos`` default ``Video_LeftCamera`` / ``Video_RightCamera``;
  ``Videos_…Camera`` is taken when only that exists).
  Label frame ``f`` (1-based, the first line ``1,…``) is the video's frame
  ``f - 1`` in decode order, the image key ``<video>#<f-1>``
  (:func:`aulib.data.images.frame_ref`), as ME-GraphAU's lists pair label
  line t (0-based) with frame image ``t.png``.
* ``images: frames``: extracted frames ``<frames>/<SNxxx>/<f-1>.png|jpg``
  (0-based, zero-padded or not; ``frames`` default ``img``).

Every row goes to the optimization table; ``disfa_3fold`` splits it by subject.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ...settings import SettingError
from ..images import ImageReadError, frame_ref, open_video
from .text import file_problems
from .native import Ignored, Problems, assemble, code_values, numbered_files, read_fields, whole_numbers

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
SETTINGS = {"labels": "ActionUnit_Labels", "images": "video", "camera": "left", "videos": None, "frames": "img",
            "threshold": 2, "first_frame": 1}
_SUBJECT = re.compile(r"^SN\d{3}$")
_INTENSITY = {str(k): k for k in range(6)}
CAMERAS = ("left", "right")


def _camera(settings: dict) -> str:
    """``Left`` / ``Right`` of the ``camera`` setting (a ValueError naming the choices otherwise)."""
    camera = str(settings["camera"]).lower()
    if camera not in CAMERAS:
        raise SettingError(f"DISFA setting camera={settings['camera']!r}: use 'left' (LeftVideo<SN>_comp.avi, the "
                         "default) or 'right' (RightVideo<SN>_comp.avi)")
    return camera.capitalize()


def video_folder(root: Path, settings: dict) -> str:
    """The videos folder: the ``videos`` setting, else the camera's
    ``Video_<Camera>Camera``, or ``Videos_<Camera>Camera`` when only that exists."""
    if settings["videos"]:
        return settings["videos"]
    name = f"Video_{_camera(settings)}Camera"
    plural = f"Videos_{_camera(settings)}Camera"
    return plural if not (root / name).is_dir() and (root / plural).is_dir() else name


def video_file(sn: str, settings: dict) -> str:
    """``<Camera>Video<SN>_comp.avi``, the file name of a subject's video of the ``camera`` setting."""
    return f"{_camera(settings)}Video{sn}_comp.avi"


def inputs(root: Path, settings: dict) -> list[Path]:
    folder = root / settings["labels"]
    files = sorted(folder.glob("SN*/SN*_au*.txt"))
    media = root / (video_folder(root, settings) if settings["images"] == "video" else settings["frames"])
    return files + ([media] if media.is_dir() else [])


def _read_au_file(path: Path, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
    """``(frame numbers int64, intensities int8)`` of the good lines of one AU file."""
    _, raw_all, lines, short = read_fields(path, header=False)
    if raw_all.shape[1] != 2:
        raise ValueError(f"{path}: {raw_all.shape[1]} comma-separated fields per line; a DISFA label file has two, "
                         "frame,intensity")
    text = raw_all[:, 0]
    frame = whole_numbers(text)
    for r in np.flatnonzero(frame < 0):
        problems.add(path, lines[r], "frame", text[r], "bad frame number (expected a whole number >= 1)")
    raw = raw_all[:, 1:]
    codes = code_values(raw, _INTENSITY)
    bad = problems.bad_values(path, lines, ["intensity"], raw, codes, "an intensity 0-5") | (frame < 0)
    keep = ~bad & ~problems.repeated(path, lines, "frame", text, frame, bad)
    return frame[keep], codes[keep, 0]


def read(root: Path, settings: dict, check_files: bool = True, on_error: str = "raise"):
    """``({"optimization": table}, {"optimization": report})`` of a DISFA root."""
    folder = root / settings["labels"]
    entries = sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []
    subjects = [p.name for p in entries if p.is_dir() and _SUBJECT.match(p.name)]
    ignored = Ignored()
    ignored.add(f"entries of {settings['labels']} that are no subject folder SN<3 digits> (e.g. SN001)",
                [p.name for p in entries if p.name not in subjects])
    if not subjects:
        raise FileNotFoundError(f"no DISFA subject folders SNxxx in {folder}; put DISFA's ActionUnit_Labels there "
                                "(docs/disfa.md), or set label_settings: {labels: <folder>}"
                                + "".join(f"; {n} (name them SN + 3 digits, e.g. SN010)" for n in ignored.notes()))
    if settings["images"] not in ("video", "frames"):
        raise ValueError(f"DISFA setting images={settings['images']!r}: use 'video' (frames read from "
                         "<Camera>Video<SN>_comp.avi) or 'frames' (extracted frame files)")
    _camera(settings)
    threshold, first = float(settings["threshold"]), int(settings["first_frame"])
    problems, notes = Problems(on_error), []
    videos = video_folder(root, settings)
    images, blocks, subj = [], [], []
    read_rows = missing = unlabelled = 0
    for sn in subjects:
        parts = {}
        absent = []
        wanted = {f"{sn}_au{au}.txt" for au in DISFA_AUS}
        ignored.add(f"files of subject folders that are no DISFA label file <SN>_au<N>.txt (N one of "
                    f"{', '.join(map(str, DISFA_AUS))})",
                    sorted(f"{sn}/{p.name}" for p in (folder / sn).iterdir() if p.name not in wanted))
        for au in DISFA_AUS:
            path = folder / sn / f"{sn}_au{au}.txt"
            if not path.is_file():
                absent.append(au)
                continue
            parts[au] = _read_au_file(path, problems)
        if absent:
            notes.append(f"{sn}: no label file for AU(s) {absent} ({sn}_au<N>.txt): unknown for this subject")
        if not parts:
            continue
        frames = np.unique(np.concatenate([f for f, _ in parts.values()]))
        codes = np.full((len(frames), len(DISFA_AUS)), -1, np.int8)
        for k, au in enumerate(DISFA_AUS):
            if au in parts:
                f, inten = parts[au]
                codes[np.searchsorted(frames, f), k] = (inten >= threshold).astype(np.int8)
        index = frames - first
        read_rows += len(frames)
        before = index >= 0
        if settings["images"] == "video":
            rel = f"{videos}/{video_file(sn, settings)}"
            n_frames = 0
            why = file_problems(root, [rel])[0] if check_files else "not checked"
            if why == "":
                try:
                    video = open_video(root / rel)
                    n_frames = video.decodable_frames()
                    if n_frames < video.n_frames:
                        notes.append(f"{rel}: its header counts {video.n_frames} frames but only the first {n_frames} "
                                     "decode (a truncated or damaged file): the labelled frames past them are counted "
                                     "as labels without a frame; copy the file again")
                except ImageReadError as e:
                    notes.append(str(e))
            elif check_files:
                notes.append(f"{rel}: {why}; its {len(index)} labelled frames are counted as labels without a frame")
            have = before & (index < n_frames) if check_files else before
            names = [frame_ref(rel, i) for i in index[have]]
            unlabelled += max(0, n_frames - int(have.sum()))
        else:
            on_disk = numbered_files(root / settings["frames"] / sn, root, ignored)
            have = np.isin(index, np.fromiter(on_disk, np.int64, len(on_disk))) & before if check_files else before
            names = [f"{settings['frames']}/{sn}/{on_disk.get(i) or f'{i}.png'}" for i in index[have]]
            unlabelled += len(set(on_disk) - set(index.tolist()))
        missing += int((~have).sum())
        images += names
        blocks.append(codes[have])
        subj += [sn] * int(have.sum())
    problems.check()
    if settings["images"] == "video" and (root / videos).is_dir():
        ignored.add(f"files of {videos} that are no labelled subject's {video_file('<SN>', settings)}",
                    sorted(set(os.listdir(root / videos)) - {video_file(sn, settings) for sn in subjects}))
    notes += ignored.notes()
    if check_files and read_rows and not images:
        where = root / (videos if settings["images"] == "video" else settings["frames"])
        raise FileNotFoundError(f"none of the {read_rows} labelled DISFA frames exist under {where} (expected "
                                + (video_file("<SN>", settings) if settings["images"] == "video" else "<SN>/<n>.png")
                                + "); set label_settings: {camera: left|right}, {videos: <folder>} or "
                                "{images: frames, frames: <folder>}" + "".join(f"; {n}" for n in notes[:3]))
    codes = np.concatenate(blocks) if blocks else np.zeros((0, len(DISFA_AUS)), np.int8)
    notes.append(f"occurrence = intensity >= {threshold:g}; label frame f is video/frame index f - {first}")
    table, report = assemble(str(folder), images, codes, list(DISFA_AUS), subj, read_rows, problems,
                             {"labels without a frame": missing, "frames without labels": unlabelled}, notes)
    return {"optimization": table}, {"optimization": report}
