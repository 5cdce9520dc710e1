"""Face detection (MTCNN), the face cache, 5-point alignment and face crops.

* :func:`load_rgb` is the one image loader of the kit: RGB ``uint8 (H, W, 3)``,
  EXIF orientation applied, any PIL mode converted, a clear error naming the
  file otherwise.
* :func:`detect_faces` runs facenet-pytorch's MTCNN (weights ship inside the
  package) on batches of equally sized images and returns one face-cache row
  per image (largest face kept, ``n_faces`` says how many were found).
* :func:`build_face_cache` writes ``faces.csv`` once per image, resumable, or
  copies a ground-truth cache (SynthAU ships ``data_root/faces.csv``).
* Crops: :func:`align_face` (5-point similarity onto :data:`ALIGN_TEMPLATE`),
  :func:`box_crop` (square box around the detector box, no rotation) and
  :func:`crop_face`, which picks one by style name.

Coordinates are continuous pixel coordinates: pixel ``(i, j)`` covers
``[j, j+1) x [i, i+1)``, so its centre is ``(j + 0.5, i + 0.5)``.
"""
from __future__ import annotations

import functools
import os
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from aulib.io import write_csv
from aulib.progress import progress

#: Face cache columns (docs/layout.md). Landmarks in MTCNN order: eye at
#: image-left, eye at image-right, nose tip, mouth corner at image-left, mouth
#: corner at image-right.
BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
LANDMARK_COLUMNS = [f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y")]
FACE_COLUMNS = ["image", "width", "height", "n_faces", "score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
#: The cache the kit writes adds ``status``: ``ok`` (at least one face),
#: ``no_face`` (none found), ``too_small`` (shorter side under
#: :data:`MIN_FACE_PX`: MTCNN cannot search it, no face) or ``unreadable``
#: (file missing, corrupt or not an image). Readers that only know
#: :data:`FACE_COLUMNS` can ignore it.
CACHE_COLUMNS = [*FACE_COLUMNS, "status"]

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

#: Images with more pixels than this are refused before decoding
#: (decompression bombs). PIL's own limit, raise it to allow larger files.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(ValueError):
    """An image file that cannot be read; the message names the file."""


# --------------------------------------------------------------------------- loading

def _open_checked(path: Path, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) and refuse oversize images."""
    if not path.is_file():
        raise ImageReadError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"{path}: {e}. Raise PIL.Image.MAX_IMAGE_PIXELS or pass "
                             f"max_pixels to load it, or downscale the file") from None
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        raise ImageReadError(f"cannot read image {path}: {e}") from None
    limit = max_pixels if max_pixels is not None else MAX_IMAGE_PIXELS
    if im.width * im.height > limit:
        im.close()
        raise ImageReadError(
            f"{path}: {im.width}x{im.height} = {im.width * im.height} pixels exceeds the limit of "
            f"{limit} (decompression-bomb guard); pass max_pixels=... to load it, or downscale the file")
    return im


def _exif_swaps_axes(im: Image.Image) -> bool:
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:
        return False


def image_size(path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(height, width)`` of an image file after EXIF orientation, read from
    its header only. Raises :class:`ImageReadError`."""
    path = Path(path)
    with _open_checked(path, max_pixels) as im:
        w, h = im.size
        return (w, h) if _exif_swaps_axes(im) else (h, w)


def _pil_to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited on white, 16/32-bit
    grey is rescaled to 8 bits."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        return Image.fromarray(np.round(a).astype(np.uint8)).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as RGB ``uint8 (H, W, 3)``, EXIF orientation applied.

    Grayscale, palette, CMYK, 16-bit and transparent images are converted
    (transparency on white). Raises :class:`ImageReadError` naming the file
    when it is missing, truncated, not an image, or has more than
    ``max_pixels`` pixels (default :data:`MAX_IMAGE_PIXELS`).
    """
    path = Path(path)
    im = _open_checked(path, max_pixels)
    try:
        with im:
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _pil_to_rgb(im)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except ImageReadError:
        raise
    except Exception as e:
        raise ImageReadError(f"cannot decode image {path}: {e}") from None


def as_rgb_array(img) -> np.ndarray:
    """An in-memory image (``(H, W)``, ``(H, W, 1|3|4)`` array or PIL image) as
    RGB ``uint8 (H, W, 3)``; alpha is dropped, float arrays must be in [0, 255]."""
    if isinstance(img, Image.Image):
        return np.asarray(_pil_to_rgb(img), dtype=np.uint8)
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array (H, W) or (H, W, 1|3|4), got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or np.nanmin(a) < 0 or np.nanmax(a) > 255:
            raise ValueError(f"image array of dtype {a.dtype} must hold values in [0, 255]")
        a = np.round(a).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def resolve_image(data_root, image: str) -> Path:
    """``data_root / image`` for a POSIX path relative to the data root;
    absolute paths and paths with ``..`` are rejected."""
    p = PurePosixPath(str(image))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", str(image)):
        raise ValueError(f"image path {image!r} must be relative to the data root and stay inside it")
    return Path(data_root) / p


# --------------------------------------------------------------------------- detection

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
                 max_side: int | None = 1024, min_face_frac: float | None = None) -> pd.DataFrame:
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
    paths are in ``df.attrs["errors"]`` (path -> text).
    """
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

    bar = _progress_bar(total=n, desc="faces", disable=not progress)
    bar.update(n - sum(len(b[1]) for b in batches))
    with ThreadPoolExecutor(max_workers=1) as pool:   # decode the next batch while detecting
        pending = pool.submit(decode, batches[0]) if batches else None
        for b, batch in enumerate(batches):
            idx, stack = pending.result()
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


def _progress_bar(total: int, desc: str, disable: bool):
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


# --------------------------------------------------------------------------- face cache

@dataclass
class FaceReport:
    """What a face-cache build found, image names per outcome."""

    ok: list[str] = field(default_factory=list)            # exactly one face
    zero_faces: list[str] = field(default_factory=list)    # readable, no face
    several_faces: list[str] = field(default_factory=list)  # largest kept
    too_small: list[str] = field(default_factory=list)      # shorter side < MIN_FACE_PX, no search
    unreadable: dict[str, str] = field(default_factory=dict)  # image -> reason

    @classmethod
    def from_cache(cls, df: pd.DataFrame, errors: Mapping[str, str] | None = None) -> "FaceReport":
        errors = dict(errors or {})
        status = df["status"] if "status" in df else np.where(df["n_faces"] > 0, "ok", "no_face")
        report = cls()
        for image, n, st in zip(df["image"], df["n_faces"], status):
            if st == "unreadable":
                report.unreadable[image] = errors.get(image, "unreadable")
            elif st == "too_small":
                report.too_small.append(image)
            elif n == 0:
                report.zero_faces.append(image)
            elif n == 1:
                report.ok.append(image)
            else:
                report.several_faces.append(image)
        return report

    @property
    def counts(self) -> dict[str, int]:
        return {"ok": len(self.ok), "zero_faces": len(self.zero_faces),
                "several_faces": len(self.several_faces), "too_small": len(self.too_small),
                "unreadable": len(self.unreadable)}

    def summary(self, examples: int = 5) -> str:
        """A few lines: the count of each outcome and some image names."""
        total = sum(self.counts.values())
        lines = [f"{total} images: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items())]
        for name, items in (("zero faces (centre crop fallback)", self.zero_faces),
                            ("several faces (largest kept)", self.several_faces),
                            (f"too small to search, under {MIN_FACE_PX} px (centre crop fallback)", self.too_small)):
            if items:
                more = f" ... (+{len(items) - examples})" if len(items) > examples else ""
                lines.append(f"  {name}: {', '.join(items[:examples])}{more}")
        if self.unreadable:
            lines.append("  unreadable (black crop):")
            lines += [f"    {k}: {v}" for k, v in list(self.unreadable.items())[:examples]]
            if len(self.unreadable) > examples:
                lines.append(f"    ... (+{len(self.unreadable) - examples})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def read_face_cache(path) -> pd.DataFrame:
    """Read a face cache CSV; checks the columns of docs/layout.md and adds
    ``status`` when absent (``ok`` if ``n_faces > 0`` else ``no_face``)."""
    df = pd.read_csv(path, dtype={"image": str, "status": str}, keep_default_na=False,
                     na_values={c: ["", "nan", "NaN"] for c in FACE_COLUMNS[4:]})
    missing = [c for c in FACE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"face cache {path} lacks columns {missing}; expected {FACE_COLUMNS}")
    if df["image"].duplicated().any():
        dup = df.loc[df["image"].duplicated(), "image"].tolist()[:5]
        raise ValueError(f"face cache {path} lists images more than once, e.g. {dup}")
    for col in ("width", "height", "n_faces"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            raise ValueError(f"face cache {path}: column {col!r} must be an integer on every row; "
                             f"images {df['image'][bad].tolist()[:5]} are not")
    if "status" not in df.columns:
        df["status"] = np.where(df["n_faces"].astype(int) > 0, "ok", "no_face")
    return df[CACHE_COLUMNS].astype({"width": "int64", "height": "int64", "n_faces": "int64"})


def build_face_cache(data_root, images: Sequence[str], out_csv, method: str = "mtcnn",
                     ground_truth_csv=None, device: str = "cpu", batch_size: int = 16,
                     resume: bool = True, progress: bool = True, chunk: int = 256,
                     max_side: int | None = 1024, min_face_frac: float | None = None
                     ) -> tuple[pd.DataFrame, FaceReport]:
    """Write the face cache ``out_csv`` for ``images`` (paths relative to
    ``data_root``) and return it with a :class:`FaceReport`.

    ``method="mtcnn"`` detects faces (see :func:`detect_faces`), ``chunk``
    images at a time, rewriting ``out_csv`` atomically after a chunk unless
    the last rewrite was under 10x its own duration ago (so rewrites cost at
    most ~10 % of the time, not O(N^2) on a million images); with
    ``resume`` the rows already in ``out_csv`` are kept (except unreadable
    ones, which are retried), so an interrupted build continues where it
    stopped (rows are reused whatever made them: pass ``resume=False`` after
    changing the method). ``method="ground_truth"`` copies the rows of ``ground_truth_csv``
    (default ``data_root/faces.csv``), every image must be listed there.
    The cache holds the rows of ``images`` in their order, nothing else.
    """
    images = [str(i) for i in images]
    if len(set(images)) != len(images):
        dup = pd.Series(images)[pd.Series(images).duplicated()].tolist()[:5]
        raise ValueError(f"images are listed more than once, e.g. {dup}")
    paths = [resolve_image(data_root, i) for i in images]

    if method == "ground_truth":
        gt_path = Path(ground_truth_csv) if ground_truth_csv else Path(data_root) / "faces.csv"
        gt = read_face_cache(gt_path).set_index("image", drop=False)
        missing = [i for i in images if i not in gt.index]
        if missing:
            raise KeyError(f"{len(missing)} of {len(images)} images are not in the ground-truth face "
                           f"cache {gt_path}, e.g. {missing[:5]}; use method='mtcnn' or fix the list")
        df = gt.loc[images, CACHE_COLUMNS].reset_index(drop=True)
        write_csv(out_csv, df)
        return df, FaceReport.from_cache(df)
    if method != "mtcnn":
        raise ValueError(f"unknown face method {method!r}; choose 'mtcnn' or 'ground_truth'")

    done: dict[str, dict] = {}
    if resume and Path(out_csv).exists():
        old = read_face_cache(out_csv)
        wanted = set(images)
        done = {r["image"]: r for r in old.to_dict("records")
                if r["image"] in wanted and r["status"] != "unreadable"}
    todo = [k for k, i in enumerate(images) if i not in done]
    errors: dict[str, str] = {}
    bar = _progress_bar(total=len(images), desc="faces", disable=not progress)
    bar.update(len(images) - len(todo))
    next_write, write_s = 0.0, 0.0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        found = detect_faces([paths[k] for k in part], device=device, batch_size=batch_size,
                             progress=False, max_side=max_side, min_face_frac=min_face_frac)
        for k, row in zip(part, found.to_dict("records")):
            if row["status"] == "unreadable":
                errors[images[k]] = found.attrs["errors"].get(str(paths[k]), "unreadable")
            row["image"] = images[k]
            done[images[k]] = row
        if time.perf_counter() >= next_write:   # checkpoint, at most ~10 % of the time: O(N) writing in all
            t = time.perf_counter()
            _write_cache(out_csv, [done[i] for i in images if i in done])
            write_s = time.perf_counter() - t
            next_write = time.perf_counter() + 10 * write_s
        bar.update(len(part))
    bar.close()
    df = _write_cache(out_csv, [done[i] for i in images])
    return df, FaceReport.from_cache(df, errors)


def _write_cache(path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=CACHE_COLUMNS)
    df = df.astype({"width": "int64", "height": "int64", "n_faces": "int64"})
    write_csv(path, df)
    return df


# --------------------------------------------------------------------------- alignment

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


def _style_scale(style: str) -> float | None:
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
    scale = _style_scale(style)
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

