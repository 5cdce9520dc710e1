"""SynthAU written in the native layouts of BP4D, DISFA and Aff-Wild2.

Test-side writers (the CI rehearsals reuse them): each renders SynthAU faces
(:func:`aulib.data.sources.synthau.generate.render_image`, so MTCNN finds
them) under subject names of the published fold lists, writes the labels in
the data set's own codes, and leaves a few labelled frames without an image
and a few images without labels. Each returns a :class:`Written` with what a
reader must find.

* :func:`write_bp4d`: ``AUCoding/AU_OCC/<S>_<T>.csv`` (9 = unknown), frames
  ``img/<S>/<T>/<n>.jpg`` (zero-padded for every other subject).
* :func:`write_disfa`: ``ActionUnit_Labels/<SN>/<SN>_au<N>.txt`` (intensity
  0-5, >= 2 where SynthAU has the AU), one MJPG AVI per subject
  ``Video_LeftCamera/LeftVideo<SN>_comp.avi`` (or the right camera's).
* :func:`write_affwild2`: ``annotations/AU_Detection_Challenge/{Train,Validation}_Set/<video>.txt``
  with -1 rows, frames ``cropped_aligned/<video>/<i:05d>.jpg``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from aulib.aus import AUS_2020
from aulib.data.sources.synthau.generate import render_image, split_labels

#: Subjects of the published 3-fold lists (two per part), as in JAA-Net / ME-GraphAU.
BP4D_SUBJECTS = ("F001", "M007", "M011", "F003", "F007", "F015")
DISFA_SUBJECTS = ("SN002", "SN010", "SN013", "SN018", "SN003", "SN029")
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
AFFWILD_AUS = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
#: AUs SynthAU does not draw, labelled from a drawn neighbour so the columns carry signal.
_STAND_IN = {7: 6, 14: 12, 23: 24}


@dataclass
class Written:
    """What a native layout holds: ``labels`` {image key: {AU: 1/0/-1}} of
    the frames a reader must keep (per split), and the counts it must report."""

    root: Path
    labels: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def n(self, split: str = "optimization") -> int:
        return len(self.labels.get(split, {}))


class _Faces:
    """SynthAU faces and their true labels, drawn one after another."""

    def __init__(self, seed: int, n: int):
        self.seed = seed
        draws = split_labels(seed, "optimization", n)
        self.labels, self.intensity = draws["labels"], draws["intensity"]
        self.next = 0

    def take(self) -> tuple[np.ndarray, dict[int, int], dict[int, float]]:
        i = self.next
        self.next += 1
        img, _, _, _ = render_image(self.seed, "optimization", i, self.intensity[i])
        lab = {a: int(v) for a, v in zip(AUS_2020, self.labels[i])}
        inten = {a: float(v) for a, v in zip(AUS_2020, self.intensity[i])}
        for au, like in _STAND_IN.items():
            lab[au], inten[au] = lab[like], inten[like]
        return img, lab, inten


def _jpeg(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=92)


def write_bp4d(root, subjects=BP4D_SUBJECTS, tasks=("T1", "T2"), frames: int = 12, seed: int = 0,
               missing: int = 1, unlabelled: int = 1, unknown_every: int = 7) -> Written:
    """BP4D under ``root``: ``frames`` labelled frames per sequence starting at
    frame 240 (a sequence's coded span), the last ``missing`` without an image,
    ``unlabelled`` images after the coded span; every ``unknown_every``-th
    label of AU2 is 9 (unknown)."""
    root = Path(root)
    out = Written(root, {"optimization": {}})
    faces = _Faces(seed, len(subjects) * len(tasks) * (frames + unlabelled))
    labels_dir = root / "AUCoding" / "AU_OCC"
    labels_dir.mkdir(parents=True, exist_ok=True)
    n_missing = n_unlabelled = 0
    for s, subject in enumerate(subjects):
        for task in tasks:
            lines = ["0," + ",".join(str(a) for a in BP4D_AUS)]
            for k in range(frames + unlabelled):
                number = 240 + k
                name = f"{number:04d}.jpg" if s % 2 else f"{number}.jpg"
                img, lab, _ = faces.take()
                codes = {a: lab[a] for a in BP4D_AUS}
                if (k + s) % unknown_every == 0:
                    codes[2] = -1
                if k < frames:
                    lines.append(f"{number}," + ",".join("9" if codes[a] == -1 else str(codes[a]) for a in BP4D_AUS))
                if k >= frames - missing and k < frames:
                    n_missing += 1
                    continue
                _jpeg(root / "img" / subject / task / name, img)
                if k >= frames:
                    n_unlabelled += 1
                    continue
                key = f"img/{subject}/{task}/{name}"
                out.labels["optimization"][key] = codes
                out.subjects[key] = subject
            (labels_dir / f"{subject}_{task}.csv").write_text("\n".join(lines) + "\n")
    out.counts["optimization"] = {"labels without a frame": n_missing, "frames without labels": n_unlabelled}
    return out


def _intensity(present: int, value: float, rng: np.random.Generator) -> int:
    """DISFA's 0-5: 2-5 where SynthAU has the AU (by its intensity), else 0 or 1."""
    if present:
        return int(2 + min(3, np.floor(4 * max(0.0, value - 0.3) / 0.7)))
    return int(rng.random() < 0.3)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 20.0) -> None:
    """An MJPG AVI of RGB frames (the codec OpenCV writes everywhere)."""
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an MJPG AVI at {path}")
    for f in frames:
        writer.write(np.ascontiguousarray(f[:, :, ::-1]))
    writer.release()


def write_disfa(root, subjects=DISFA_SUBJECTS, frames: int = 20, seed: int = 0, extra: int = 2,
                camera: str = "left", videos: str | None = None) -> Written:
    """DISFA under ``root``: per subject ``frames`` frames; subjects at even
    positions have ``extra`` label lines past the video's end (labels without
    a frame), odd ones ``extra`` video frames past the last label line. The
    videos are ``camera``'s (``left`` or ``right``: ``<Camera>Video<SN>_comp.avi``)
    in ``videos`` (default ``Video_<Camera>Camera``)."""
    root = Path(root)
    out = Written(root, {"optimization": {}})
    faces = _Faces(seed, len(subjects) * (frames + extra))
    rng = np.random.default_rng(seed)
    n_missing = n_unlabelled = 0
    for s, sn in enumerate(subjects):
        n_labels, n_video = (frames + extra, frames) if s % 2 == 0 else (frames, frames + extra)
        images, rows = [], []
        for k in range(max(n_labels, n_video)):
            img, lab, inten = faces.take()
            images.append(img)
            rows.append({a: _intensity(lab[a], inten[a], rng) for a in DISFA_AUS})
        folder = root / "ActionUnit_Labels" / sn
        folder.mkdir(parents=True, exist_ok=True)
        for a in DISFA_AUS:
            (folder / f"{sn}_au{a}.txt").write_text("".join(f"{k + 1},{rows[k][a]}\n" for k in range(n_labels)))
        cam = camera.capitalize()
        rel = f"{videos or f'Video_{cam}Camera'}/{cam}Video{sn}_comp.avi"
        write_video(root / rel, images[:n_video])
        for k in range(min(n_labels, n_video)):
            key = f"{rel}#{k}"
            out.labels["optimization"][key] = {a: int(rows[k][a] >= 2) for a in DISFA_AUS}
            out.subjects[key] = sn
        n_missing += max(0, n_labels - n_video)
        n_unlabelled += max(0, n_video - n_labels)
    out.counts["optimization"] = {"labels without a frame": n_missing, "frames without labels": n_unlabelled}
    return out


def write_affwild2(root, train=("video1", "video2_left", "video2_right", "video4"),
                   validation=("video3", "video5_left"), frames: int = 12, seed: int = 0,
                   invalid: int = 2, missing: int = 1, unlabelled: int = 1) -> Written:
    """Aff-Wild2 under ``root``: per video ``frames`` label lines, the first
    ``invalid`` all -1 (no valid label), the last ``missing`` without an
    image, ``unlabelled`` images after the last line."""
    root = Path(root)
    out = Written(root)
    faces = _Faces(seed, (len(train) + len(validation)) * (frames + unlabelled))
    base = root / "annotations" / "AU_Detection_Challenge"
    for split, folder, videos in (("optimization", "Train_Set", train), ("validation", "Validation_Set", validation)):
        out.labels[split] = {}
        counts = {"rows without a valid label (-1)": 0, "labels without a frame": 0, "frames without labels": 0}
        (base / folder).mkdir(parents=True, exist_ok=True)
        for video in videos:
            lines = [",".join(f"AU{a}" for a in AFFWILD_AUS)]
            for k in range(frames + unlabelled):
                i = k + 1
                img, lab, _ = faces.take()
                codes = {a: (-1 if k < invalid else lab[a]) for a in AFFWILD_AUS}
                if k < frames:
                    lines.append(",".join(str(codes[a]) for a in AFFWILD_AUS))
                if frames - missing <= k < frames:
                    counts["labels without a frame"] += 1
                    continue
                _jpeg(root / "cropped_aligned" / video / f"{i:05d}.jpg", img)
                if k >= frames:
                    counts["frames without labels"] += 1
                elif k < invalid:
                    counts["rows without a valid label (-1)"] += 1
                    counts["frames without labels"] += 1
                else:
                    key = f"cropped_aligned/{video}/{i:05d}.jpg"
                    out.labels[split][key] = codes
                    out.subjects[key] = video.replace("_left", "").replace("_right", "")
            (base / folder / f"{video}.txt").write_text("\n".join(lines) + "\n")
        out.counts[split] = counts
    return out
