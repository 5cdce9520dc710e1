"""Face detection with MTCNN (facenet-pytorch; its weights ship inside the package).

:func:`detect_faces` runs MTCNN on batches of equally sized images and returns
one face-cache row per image (largest face kept, ``n_faces`` says how many were
found); :func:`detect_all_faces` returns every face (prediction on photos).
"""
from __future__ import annotations

import concurrent.futures
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from aulib.progress import progress
from aulib.workers import SPLIT_SETTING, Stalled, stall_message, stall_seconds

from ..images import ImageReadError, as_rgb_array, image_size, load_rgb
from .columns import BOX_COLUMNS, CACHE_COLUMNS, LANDMARK_COLUMNS

#: MTCNN's own smallest face (pixels): the fallback when the size rule finds none.
MIN_FACE_PX = 20


@functools.lru_cache(maxsize=8)
def _mtcnn(device: str, min_face_size: int = MIN_FACE_PX):
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, select_largest=True, device=device, min_face_size=int(min_face_size))


def too_small(size_hw: tuple[int, int], min_face: int = MIN_FACE_PX) -> str | None:
    """Why an image of ``size_hw`` (pixels) cannot be searched for faces of
    ``min_face`` px or more (MTCNN's scale pyramid is empty), else ``None``."""
    h, w = size_hw
    if min(h, w) * (12.0 / min_face) >= 12.0:   # facenet-pytorch's own pyramid test
        return None
    return (f"image is {w}x{h} px: its shorter side is under {min_face} px, the smallest face MTCNN "
            "searches, so no face can be found; use a larger image (or upscale it) or leave it out")


def _detect(stack: np.ndarray, device: str, min_face: int = MIN_FACE_PX) -> tuple[list, list, list]:
    """MTCNN on a uint8 stack ``(N, H, W, 3)`` of equal-sized images: per image
    boxes ``(k, 4)``, scores ``(k,)``, landmarks ``(k, 5, 2)`` (pixels of the
    stack), or ``None`` when no face. A stack too small to search
    (:func:`too_small`) gives ``None`` for all without running MTCNN, whose
    empty pyramid would raise ``torch.cat(): expected a non-empty list``."""
    n = len(stack)
    if n == 0 or too_small(stack.shape[1:3], min_face):
        return [None] * n, [None] * n, [None] * n
    boxes, probs, points = _mtcnn(str(device), int(min_face)).detect(stack, landmarks=True)
    return list(boxes), list(probs), list(points)


def _min_face(size_hw: tuple[int, int], min_face_frac: float | None) -> int:
    """Smallest face (px) searched in an image of ``size_hw``: ``min_face_frac``
    of its shorter side, never below MTCNN's 20 px."""
    return MIN_FACE_PX if not min_face_frac else max(MIN_FACE_PX, int(min(size_hw) * min_face_frac))


def _empty_row() -> dict:
    row = {c: np.nan for c in CACHE_COLUMNS}
    row.update(image=None, width=0, height=0, n_faces=0, status="unreadable")
    return row


def _target_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """Detection size: the longer side shrunk to ``max_side``, but the shorter
    side kept at :data:`MIN_FACE_PX` or more (a 3000x40 strip -> 1500x20, not
    1024x14, which MTCNN could not search)."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    s = max(max_side / max(h, w), min(1.0, MIN_FACE_PX / min(h, w)))
    return max(1, round(h * s)), max(1, round(w * s))


def _resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == tuple(size_hw):
        return img
    return np.asarray(Image.fromarray(img).resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR))


def detect_faces(images: Sequence, device: str = "cpu", batch_size: int = 16, progress: bool = True,
                 max_side: int | None = 1024, min_face_frac: float | None = None,
                 stall_minutes: float | None = None) -> pd.DataFrame:
    """Detect faces with MTCNN; one face-cache row per input image, in order.

    ``images``: RGB arrays ``(H, W, 3)`` or image file paths (read with
    :func:`load_rgb`). Images are grouped by size and run ``batch_size`` at a
    time (MTCNN batches need equal sizes); an image whose longer side exceeds
    ``max_side`` pixels is first downscaled to it (the coordinates are mapped
    back to the original), which bounds time and memory on large photos
    (``None`` disables this). ``min_face_frac`` (e.g. 1/6) searches only
    faces at least that fraction of the image's shorter side first, and
    images where none is found again down to 20 px: about 3x faster on CPU
    (MTCNN's cost is its pyramid's small scales), the same largest face, its
    box within ~7 % of the face size and eyes within ~6 % of their distance
    (measured on two photos; a coarser pyramid);
    ``n_faces`` then counts faces of at least that size. ``None`` (default):
    MTCNN's own search down to 20 px.

    Returns columns :data:`CACHE_COLUMNS`: ``image`` is the path as given
    (``None`` for arrays), ``width``/``height`` of the original, ``n_faces``,
    then score, box and 5 landmarks of the largest face (NaN when none) and
    ``status`` (``ok``/``no_face``/``too_small``/``unreadable``). Unreadable
    files and images too small to search (shorter side under
    :data:`MIN_FACE_PX`) never stop the run; the reasons of those given as
    paths are in ``df.attrs["errors"]`` (path -> text). Files are decoded in a
    thread, a batch ahead; a batch not decoded within ``stall_minutes`` (None:
    :data:`aulib.workers.STALL_MINUTES`) raises :class:`aulib.workers.Stalled` naming its files.
    """
    stall = stall_seconds(stall_minutes)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    rows = [_empty_row() for _ in range(n)]
    errors: dict[str, str] = {}
    sources: list = [None] * n   # array or path, per input
    groups: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            rows[i]["image"] = str(item)
            try:
                h, w = image_size(item)
            except ImageReadError as e:
                errors[str(item)] = str(e)
                continue
            sources[i] = Path(item)
        else:
            arr = as_rgb_array(item)
            h, w = arr.shape[:2]
            sources[i] = arr
        rows[i].update(width=w, height=h)
        reason = too_small((h, w))
        if reason:
            rows[i].update(status="too_small")
            if isinstance(sources[i], Path):
                errors[str(item)] = f"{item}: {reason}"
            continue
        groups.setdefault(_target_size(h, w, max_side), []).append(i)

    batches = [(size, idx[k:k + batch_size]) for size, idx in groups.items()
               for k in range(0, len(idx), batch_size)]

    def decode(batch):
        size, idx = batch
        ok, arrays = [], []
        for i in idx:
            src = sources[i]
            try:
                arr = load_rgb(src) if isinstance(src, Path) else src
            except ImageReadError as e:
                errors[str(src)] = str(e)
                continue
            if arr.shape[:2] != (rows[i]["height"], rows[i]["width"]):
                errors[str(src)] = f"{src}: decoded size {arr.shape[:2]} differs from the header's"
                continue
            ok.append(i)
            arrays.append(_resize(arr, size))
        return ok, (np.stack(arrays) if arrays else None)

    bar = progress_bar(total=n, desc="faces", disable=not progress)
    bar.update(n - sum(len(b[1]) for b in batches))
    pool = ThreadPoolExecutor(max_workers=1)   # decode the next batch while detecting
    try:
        pending = pool.submit(decode, batches[0]) if batches else None
        for b, batch in enumerate(batches):
            try:
                idx, stack = pending.result(timeout=stall)
            except concurrent.futures.TimeoutError:
                files = [str(sources[i]) for i in batch[1]]
                stuck = f"decoding {', '.join(files[:3])}" + (", ..." if len(files) > 3 else "")
                raise Stalled(stall_message("02_split: face detection", stall_minutes, stuck, SPLIT_SETTING)) from None
            if b + 1 < len(batches):
                pending = pool.submit(decode, batches[b + 1])
            if stack is not None:
                min_face = _min_face(batch[0], min_face_frac)
                boxes, probs, points = _detect(stack, device, min_face)
                missed = [j for j in range(len(idx)) if boxes[j] is None]
                if missed and min_face > MIN_FACE_PX:   # no large face: search the small scales too
                    again = _detect(stack[missed], device)
                    for k, j in enumerate(missed):
                        boxes[j], probs[j], points[j] = again[0][k], again[1][k], again[2][k]
                for j, i in enumerate(idx):
                    _fill_row(rows[i], boxes[j], probs[j], points[j], batch[0])
            bar.update(len(batch[1]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)   # a stuck decode is not waited for
    bar.close()
    df = pd.DataFrame(rows, columns=CACHE_COLUMNS)
    df = df.astype({"width": "int64", "height": "int64", "n_faces": "int64"})
    df.attrs["errors"] = errors
    return df


def detect_all_faces(images: Sequence[np.ndarray], device: str = "cpu", batch_size: int = 16,
                     max_side: int | None = 1024) -> list[list[dict]]:
    """Every face MTCNN finds in each RGB uint8 image (H, W, 3).

    Returns one list per image, largest face first; a face is a dict with
    ``score``, ``x0, y0, x1, y1`` and ``lm0_x … lm4_y`` (pixels of the
    original image, landmarks in MTCNN order). Images are grouped by size
    (MTCNN batches need equal sizes) and run ``batch_size`` at a time; an
    image whose longer side exceeds ``max_side`` is downscaled for detection
    and the coordinates are mapped back. An image too small to search
    (:func:`too_small`) gets an empty list.
    """
    faces: list[list[dict]] = [[] for _ in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(_target_size(*img.shape[:2], max_side), []).append(i)
    for size, idx in groups.items():
        for k in range(0, len(idx), batch_size):
            part = idx[k:k + batch_size]
            stack = np.stack([_resize(images[i], size) for i in part])
            boxes, probs, points = _detect(stack, device)
            for j, i in enumerate(part):
                if boxes[j] is None:
                    continue
                h, w = images[i].shape[:2]
                sx, sy = w / size[1], h / size[0]
                b = np.asarray(boxes[j], dtype=np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
                lm = np.asarray(points[j], dtype=np.float64).reshape(-1, 5, 2) * [sx, sy]
                sc = np.asarray(probs[j], dtype=np.float64).reshape(-1)
                for f in range(len(b)):
                    face = {"score": float(sc[f])}
                    face.update(zip(BOX_COLUMNS, b[f].tolist()))
                    face.update(zip(LANDMARK_COLUMNS, lm[f].reshape(-1).tolist()))
                    faces[i].append(face)
    return faces


def progress_bar(total: int, desc: str, disable: bool):
    return progress(total=total, desc=desc, unit="img", disable=disable)


def _fill_row(row: dict, boxes, probs, points, size_hw: tuple[int, int]) -> None:
    """Write the largest detected face (MTCNN sorts by area) into ``row``."""
    if boxes is None or len(boxes) == 0:
        row.update(n_faces=0, status="no_face")
        return
    sx = row["width"] / size_hw[1]
    sy = row["height"] / size_hw[0]
    box = np.asarray(boxes[0], dtype=np.float64) * [sx, sy, sx, sy]
    lms = np.asarray(points[0], dtype=np.float64) * [sx, sy]
    row.update(n_faces=len(boxes), score=float(probs[0]), status="ok")
    row.update(zip(BOX_COLUMNS, box.tolist()))
    row.update(zip(LANDMARK_COLUMNS, lms.reshape(-1).tolist()))


