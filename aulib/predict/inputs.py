"""Inputs and outputs of prediction on new photos and videos.

* :func:`expand_inputs` turns files and folders into a list of image and
  video files (folders searched recursively, by extension);
* :func:`iter_frames` reads them one picture at a time: an image file gives
  one :class:`Frame`, a video gives frames sampled at ``video_fps`` per second
  (OpenCV ``cv2.VideoCapture``); unreadable files give an :class:`InputError`
  instead, so one bad file never stops the rest;
* :func:`annotate` draws boxes, landmarks and the AUs decided present (names
  and probabilities) on a picture, with a note across it when there is one;
* :func:`sample_photos` gives real face photos that ship with the
  dependencies (for the demo notebook and the tests).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..aus import AU_NAMES
from ..data.faces.columns import BOX_COLUMNS, LANDMARK_COLUMNS
from ..data.images import ImageReadError, as_rgb_array, load_rgb
from ..data.faces.detect import too_small
from ..io import atomic_path
from ..workspace import repo_root

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                              ".pgm", ".pbm", ".jfif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                              ".flv", ".3gp"})


@dataclass
class Frame:
    """One picture to predict on: ``image`` RGB uint8 (H, W, 3); ``source``
    the file (or ``array[i]``); ``frame`` the video frame index and
    ``time_s`` its time in seconds (None for still images)."""

    source: str
    image: np.ndarray
    frame: int | None = None
    time_s: float | None = None


@dataclass
class InputError:
    """An input that gave no picture: ``source`` and the reason."""

    source: str
    reason: str
    frame: int | None = None


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def expand_inputs(items: Iterable) -> tuple[list, list[InputError]]:
    """Files, folders and in-memory arrays -> (list of files/arrays, errors).

    Folders are searched recursively for image and video files (by
    extension, case-insensitive), in sorted order. A file given by name is
    kept whatever its extension (it is tried as an image). A file reached
    twice (``DIR`` and ``DIR/a.jpg``, a link, ``./a.jpg`` and ``a.jpg``) is
    kept once, at its first place (compared by resolved path). Missing paths
    and folders without any image or video give an :class:`InputError`.
    """
    out, errors, seen = [], [], set()
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            out.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file()
                           and q.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
            if not found:
                errors.append(InputError(str(p), "folder holds no image or video files "
                                                 f"(extensions {sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)})"))
        elif p.is_file():
            found = [p]
        else:
            errors.append(InputError(str(p), "file or folder not found"))
            continue
        for q in found:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out, errors


def _iter_video(path: Path, rate: float | None) -> Iterator[Frame | InputError]:
    import cv2  # heavy optional dependency (OpenCV): only for videos

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        yield InputError(str(path), "cannot open video (OpenCV could not decode it)")
        return
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps <= 0:
            fps = 0.0
        step_t = (1.0 / rate) if (rate and fps and rate < fps) else None
        next_t, i, got = 0.0, 0, 0
        while cap.grab():
            t = i / fps if fps else None
            if step_t is None or t + 1e-6 >= next_t:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    yield InputError(str(path), f"frame {i} could not be decoded", frame=i)
                elif too_small(bgr.shape[:2]):   # every frame has this size: one error for the video
                    yield InputError(str(path), f"video frames: {too_small(bgr.shape[:2])}")
                    return
                else:
                    got += 1
                    yield Frame(str(path), np.ascontiguousarray(bgr[:, :, ::-1]), i, t)
                if step_t is not None:
                    while next_t <= t + 1e-6:
                        next_t += step_t
            i += 1
        if i == 0:
            yield InputError(str(path), "video has no readable frames (corrupt or unsupported codec)")
    finally:
        cap.release()


def iter_frames(items: Sequence, video_fps: float | None = 2.0) -> Iterator[Frame | InputError]:
    """Pictures of ``items`` (files as given by :func:`expand_inputs`, or
    arrays) in order. Videos (by extension) are sampled at ``video_fps``
    frames per second (None: every frame). Unreadable inputs, and pictures
    too small to search for faces (shorter side under 20 px,
    :func:`aulib.data.faces.detect.too_small`), yield an :class:`InputError` and the
    iteration goes on."""
    for i, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            try:
                frame = Frame(f"array[{i}]", as_rgb_array(item))
            except ValueError as e:
                yield InputError(f"array[{i}]", str(e))
                continue
        elif is_video(item):
            yield from _iter_video(Path(item), video_fps)
            continue
        else:
            try:
                frame = Frame(str(Path(item)), load_rgb(item))
            except ImageReadError as e:
                yield InputError(str(Path(item)), str(e))
                continue
        reason = too_small(frame.image.shape[:2])
        yield InputError(frame.source, reason) if reason else frame


# --------------------------------------------------------------------------- annotation

def _font(height: int):
    size = max(12, int(height / 40))
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _place(box, size, width, height, gap):
    """Top-left corner of a text block of ``size`` (w, h) beside a face ``box``
    without covering it: to its right, its left, below, above; when none
    fits, over the face's top-left. Kept inside the picture."""
    w, h = size
    x_in = min(max(0.0, box[0]), max(0.0, width - w))
    y_in = min(max(0.0, box[1]), max(0.0, height - h))
    if box[2] + gap + w <= width:
        return box[2] + gap, y_in
    if box[0] - gap - w >= 0:
        return box[0] - gap - w, y_in
    if box[3] + gap + h <= height:
        return x_in, box[3] + gap
    if box[1] - gap - h >= 0:
        return x_in, box[1] - gap - h
    return x_in, y_in


def _wrap(draw, text: str, font, width: float) -> str:
    """``text`` broken into lines at spaces so each fits ``width`` pixels."""
    lines, cur = [], ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if cur and draw.textlength(trial, font=font) > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return "\n".join(lines + [cur])


def annotate(image: np.ndarray, faces: Sequence[dict], path, note: str | None = None) -> Path:
    """Write ``image`` (RGB uint8) with each face's box, landmarks and label drawn.

    ``faces``: dicts with ``x0, y0, x1, y1``, ``label`` (text, may hold
    several lines: :func:`au_label`) and optionally the 5 landmarks
    ``lm0_x … lm4_y`` (drawn as dots). ``note``: a line written across the
    bottom of the picture (e.g. that the models were trained on synthetic
    faces). Saved atomically as JPEG (``.jpg``) or PNG."""
    path = Path(path)
    pil = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    font = _font(pil.height)
    line = max(2, round(max(pil.size) / 300))
    for face in faces:
        box = [face[c] for c in BOX_COLUMNS]
        draw.rectangle(box, outline=(255, 40, 40), width=line)
        text = str(face.get("label", ""))
        if text:
            l_, t_, r_, b_ = draw.multiline_textbbox((0, 0), text, font=font)
            tw, th = r_ - l_, b_ - t_
            x, y = _place(box, (tw + 6, th + 6), pil.width, pil.height, line)
            draw.rectangle([x, y, x + tw + 6, y + th + 6], fill=(200, 30, 30))
            draw.multiline_text((x + 3 - l_, y + 3 - t_), text, fill=(255, 255, 255), font=font)
    for face in faces:                      # landmarks last: over a label that had to cover the face
        if all(c in face and face[c] is not None and np.isfinite(face[c]) for c in LANDMARK_COLUMNS):
            r = line + 1
            for i in range(5):
                x, y = face[f"lm{i}_x"], face[f"lm{i}_y"]
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 230, 0), outline=(0, 0, 0))
    if note:
        note = _wrap(draw, note, font, pil.width - 8)
        l_, t_, r_, b_ = draw.multiline_textbbox((0, 0), note, font=font)
        th = b_ - t_
        draw.rectangle([0, pil.height - th - 8, pil.width, pil.height], fill=(0, 0, 0))
        draw.multiline_text((4 - l_, pil.height - th - 4 - t_), note, fill=(255, 220, 0), font=font)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


def au_label(face_index: int, active: Sequence[int], probs: Sequence[float] | None = None) -> str:
    """Text drawn beside a face: ``#0`` and one line per AU decided present,
    most probable first, with its name and probability (``AU12 Lip corner
    puller 0.91``); ``#0 no AU`` when none. Without ``probs``: ``#0 AU 1 2 12``."""
    if not len(active):
        return f"#{face_index} no AU"
    if probs is None:
        return f"#{face_index} AU " + " ".join(str(a) for a in active)
    order = sorted(zip(active, probs), key=lambda ap: -ap[1])
    return "\n".join([f"#{face_index}"] + [f"AU{a} {AU_NAMES.get(a, '')} {p:.2f}".replace("  ", " ")
                                             for a, p in order])


# --------------------------------------------------------------------------- demo photos

def sample_photos(folder=None) -> list[Path]:
    """Real face photos shipped with the dependencies, copied into ``folder``
    (default ``<repo>/runs/sample_photos``, one stable folder rewritten on each
    call, so no temporary folder is left behind per run): matplotlib's
    ``grace_hopper.jpg`` and scikit-image's astronaut as ``astronaut.png``
    (left out when scikit-image is not installed). Returns their paths."""
    from matplotlib import cbook  # optional: sample photos only

    folder = Path(folder) if folder is not None else repo_root() / "runs" / "sample_photos"
    folder.mkdir(parents=True, exist_ok=True)
    grace = folder / "grace_hopper.jpg"
    with atomic_path(grace) as tmp:
        tmp.write_bytes(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    try:
        from skimage import data  # optional: sample photos only
    except ImportError:
        return [grace]
    astronaut = folder / "astronaut.png"
    with atomic_path(astronaut) as tmp:
        Image.fromarray(data.astronaut()).save(tmp, format="PNG")
    return [grace, astronaut]


def read_frame(source, frame: int | None = None) -> np.ndarray:
    """The picture a prediction row came from: the image file, or frame
    ``frame`` of a video. RGB uint8 (H, W, 3)."""
    if frame is None or (isinstance(frame, float) and np.isnan(frame)) or not is_video(source):
        return load_rgb(source)
    import cv2  # heavy optional dependency (OpenCV): only for videos

    cap = cv2.VideoCapture(str(source))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok:
        raise ImageReadError(f"cannot read frame {frame} of video {source}")
    return np.ascontiguousarray(bgr[:, :, ::-1])
