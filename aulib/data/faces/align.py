"""Face crops: 5-point similarity alignment, detector-box crops and the fallbacks.

:func:`align_face` (5-point similarity onto :data:`ALIGN_TEMPLATE`),
:func:`box_crop` (square box around the detector box, no rotation) and
:func:`crop_face`, which picks one by style name (``aligned`` | ``box<scale>``)
from a face-cache row. Coordinates are continuous pixel coordinates.
"""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
from PIL import Image

from ..images import as_rgb_array
from .columns import BOX_COLUMNS, LANDMARK_COLUMNS

#: ArcFace's 5-point template for 112 x 112 crops, in pixels.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])
#: Margin added around the ArcFace crop, as a fraction of its side on each
#: side: the ArcFace crop fills the central ``1 / (1 + 2 * ALIGN_MARGIN)`` of
#: ours, which keeps the brows, the forehead and an open jaw (AU 26/27) inside.
ALIGN_MARGIN = 0.1
#: Where the 5 landmarks go in an aligned square crop, as fractions of its
#: side, shape (5, 2) (x, y), MTCNN order. Multiply by the crop size.
ALIGN_TEMPLATE = 0.5 + (ARCFACE_112 / 112.0 - 0.5) / (1.0 + 2.0 * ALIGN_MARGIN)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no
    reflection) mapping ``src`` points onto ``dst`` (Umeyama 1991).

    ``src``, ``dst``: ``(n, 2)`` with n >= 2. Returns ``M (2, 3)`` with
    ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two (n, 2) point arrays with n >= 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points contain NaN or inf")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("source points all coincide; a similarity is undefined")
    U, S, Vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.array([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0])
    R = U @ np.diag(d) @ Vt
    scale = (S * d).sum() / var_s
    t = mu_d - scale * R @ mu_s
    return np.hstack([scale * R, t[:, None]])


def apply_transform(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(n, 2)`` points with a ``(2, 3)`` affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ M[:, :2].T + M[:, 2]


def warp_affine(img: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Resample ``img`` (``uint8 (H, W, 3)``) into a ``(size, size, 3)`` crop
    where input point ``p`` lands at ``M @ [p, 1]``. Bilinear; black outside
    the image. When ``M`` shrinks by 2x or more the image is first box-averaged
    by an integer factor, so large faces are not aliased."""
    M = np.asarray(M, dtype=np.float64)
    A = np.vstack([M, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(A)
    # Region of the input the crop needs (plus one pixel for the filter).
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    src = apply_transform(inv[:2], corners)
    x0, y0 = np.floor(src.min(0)).astype(int) - 1
    x1, y1 = np.ceil(src.max(0)).astype(int) + 1
    region = _crop_padded(img, x0, y0, x1, y1)
    shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])   # region -> image coordinates
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    factor = int(np.floor(1.0 / scale)) if scale > 0 else 1
    pil = Image.fromarray(region)
    if factor >= 2:
        pil = pil.reduce(factor)
        shift = shift @ np.diag([factor, factor, 1.0])
    out_to_region = np.linalg.inv(A @ shift)
    out = pil.transform((size, size), Image.Transform.AFFINE, data=tuple(out_to_region[:2].reshape(-1)),
                        resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


def _crop_padded(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``img[y0:y1, x0:x1]`` with black where the window leaves the image."""
    h, w = img.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def align_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(2, 3)`` similarity taking the 5 landmarks onto ``ALIGN_TEMPLATE * size``."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    return similarity_transform(landmarks, ALIGN_TEMPLATE * size)


def align_face(img: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """5-point aligned face: ``uint8 (size, size, 3)``, the landmarks
    (``(5, 2)``, MTCNN order, pixels) mapped by a least-squares similarity
    onto :data:`ALIGN_TEMPLATE` ``* size``: eyes level, roll removed."""
    return warp_affine(img, align_matrix(landmarks, size), size)


def box_matrix(box, size: int, scale: float = 1.5) -> np.ndarray:
    """``(2, 3)`` scale+translation taking the square of side
    ``scale * max(w, h)`` centred on ``box`` onto ``[0, size]^2``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
        raise ValueError(f"invalid face box {box!r}; expected x0 < x1, y0 < y1")
    side = scale * max(x1 - x0, y1 - y0)
    k = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])


def box_crop(img: np.ndarray, box, size: int, scale: float = 1.5) -> np.ndarray:
    """Unaligned crop: the square of side ``scale * max(w, h)`` around the
    centre of the detector box ``(x0, y0, x1, y1)``, resized to ``uint8
    (size, size, 3)``; no rotation (head roll is kept), black outside the image."""
    return warp_affine(img, box_matrix(box, size, scale), size)


def centre_matrix(height: int, width: int, size: int) -> np.ndarray:
    """``(2, 3)`` map of the centred square of side ``min(height, width)`` onto ``[0, size]^2``."""
    side = min(height, width)
    return box_matrix(((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2),
                      size, scale=1.0)


def style_scale(style: str) -> float | None:
    """None for ``aligned``, the box scale for ``box<scale>`` (``box1.5``)."""
    if style == "aligned":
        return None
    m = re.fullmatch(r"box(\d+(?:\.\d+)?)", style)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"unknown crop style {style!r}; use 'aligned' or 'box<scale>' such as 'box1.5'")
    return float(m.group(1))


def crop_matrix(face_row: Mapping, style: str, size: int, image_hw: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The ``(2, 3)`` crop transform of a face-cache row and the crop status.

    ``aligned``: 5-point alignment; ``box<scale>``: :func:`box_crop`.
    Fallbacks: no face (``n_faces == 0`` or empty box) -> the centred square of
    side ``min(H, W)``, status ``no_face``; ``aligned`` with a box but no
    landmarks -> the box at scale 1.0, status ``no_landmarks``.
    """
    scale = style_scale(style)
    box = [float(face_row[c]) for c in BOX_COLUMNS]
    if int(face_row["n_faces"]) == 0 or not np.isfinite(box).all():
        return centre_matrix(*image_hw, size), "no_face"
    if scale is not None:
        return box_matrix(box, size, scale), "ok"
    lms = np.array([float(face_row[c]) for c in LANDMARK_COLUMNS]).reshape(5, 2)
    if not np.isfinite(lms).all():
        return box_matrix(box, size, 1.0), "no_landmarks"
    return align_matrix(lms, size), "ok"


def crop_face(img: np.ndarray, face_row: Mapping, style: str, size: int) -> tuple[np.ndarray, str]:
    """Crop one face as the given style: returns ``(uint8 (size, size, 3), status)``.

    ``face_row``: a face-cache row (mapping with ``n_faces``, ``x0..y1``,
    ``lm0_x..lm4_y``). Style ``aligned`` or ``box<scale>`` (``box1.5``).
    Status ``ok``, ``no_face`` (centre square crop of the whole image) or
    ``no_landmarks`` (``aligned`` without landmarks: the detector box).
    """
    img = as_rgb_array(img)
    M, status = crop_matrix(face_row, style, size, img.shape[:2])
    return warp_affine(img, M, size), status

