"""Safe image decoding: the one image loader of the kit.

* :func:`load_rgb`: RGB ``uint8 (H, W, 3)``, EXIF orientation applied, any PIL
  mode converted (grey, palette, CMYK, 16-bit, transparency on white), a clear
  :class:`ImageReadError` naming the file otherwise; images over
  :data:`MAX_IMAGE_PIXELS` are refused before decoding (decompression bombs).
* :func:`image_size` reads ``(height, width)`` from the header only.
* :func:`as_rgb_array` normalises an in-memory image; :func:`resolve_image`
  maps an image path relative to the data root to a file.
* Frame references: an image key ``<video path>#<frame>`` (:func:`frame_ref`,
  ``frame`` 0-based, the decode order of the video) names one frame of a video
  file (``.avi``, ``.mp4``, ``.mov``, ``.mkv``, ``.wmv``, ``.mpg``); :func:`load_rgb` and
  :func:`image_size` decode it with OpenCV, so the face cache and the crop
  stores read video frames without extracting them first. Each process keeps a
  few ``cv2.VideoCapture`` open and reads on sequentially when the next frame
  asked for follows the last one read (seeking otherwise).
"""
from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

#: Images with more pixels than this are refused before decoding
#: (decompression bombs). PIL's own limit, raise it to allow larger files.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(ValueError):
    """An image file that cannot be read; the message names the file."""


# ------------------------------------------------------------------ video frames
#: File name endings of the videos a frame reference may name.
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".wmv", ".mpg", ".mpeg")
_FRAME_REF = re.compile(r"^(?P<video>.+\.(?:" + "|".join(s[1:] for s in VIDEO_SUFFIXES) + r"))#(?P<frame>\d+)$",
                        re.IGNORECASE)
#: Videos kept open per process (least recently used closed first).
MAX_OPEN_VIDEOS = 4


def frame_ref(video: str, frame: int) -> str:
    """The image key of frame ``frame`` (0-based decode position) of ``video``
    (a path relative to the data root): ``"<video>#<frame>"``."""
    if int(frame) < 0:
        raise ValueError(f"frame index {frame} of {video} must be >= 0")
    return f"{video}#{int(frame)}"


def parse_frame_ref(image) -> tuple[str, int] | None:
    """``(video path, 0-based frame)`` of a frame reference, None for a plain image path."""
    m = _FRAME_REF.match(str(image))
    return (m.group("video"), int(m.group("frame"))) if m else None


class _Video:
    """One open ``cv2.VideoCapture``: size, frame count, next frame position."""

    def __init__(self, path: Path):
        import cv2
        if not path.is_file():
            raise ImageReadError(f"video file not found: {path}")
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise ImageReadError(f"cannot open video {path} with OpenCV (damaged, or a codec OpenCV lacks)")
        self.path = path
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        self.n_frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.next = 0
        self.seeks = 0
        self._decodable: int | None = None

    def _decodes(self, frame: int) -> bool:
        import cv2
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        self.seeks += 1
        self.next = -1                 # the next read() seeks
        ok, bgr = self.cap.read()
        return bool(ok) and bgr is not None

    def decodable_frames(self) -> int:
        """How many frames from the first decode: the header's count when its
        last frame decodes (one seek), else the first frame that does not, by
        bisection (a truncated file keeps its header's count, so the frames
        past the damage would otherwise be counted as there)."""
        if self._decodable is None:
            n = self.n_frames
            if n <= 0 or self._decodes(n - 1):
                self._decodable = max(n, 0)
            elif not self._decodes(0):
                self._decodable = 0
            else:
                good, bad = 0, n - 1
                while bad - good > 1:
                    mid = (good + bad) // 2
                    good, bad = (mid, bad) if self._decodes(mid) else (good, mid)
                self._decodable = bad
        return self._decodable

    def read(self, frame: int) -> np.ndarray:
        import cv2
        if frame != self.next:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
            self.seeks += 1
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            self.next = -1
            raise ImageReadError(f"{self.path}: cannot decode frame {frame} (0-based; the video reports "
                                 f"{self.n_frames} frames)")
        self.next = frame + 1
        return np.ascontiguousarray(bgr[:, :, ::-1])


_VIDEOS: "OrderedDict[tuple[int, str], _Video]" = OrderedDict()


def open_video(path) -> _Video:
    """This process's open reader of a video file (kept among the
    :data:`MAX_OPEN_VIDEOS` most recently used; a forked child opens its own)."""
    key = (os.getpid(), str(path))
    video = _VIDEOS.get(key)
    if video is None:
        video = _Video(Path(path))
        _VIDEOS[key] = video
        while len(_VIDEOS) > MAX_OPEN_VIDEOS:
            _, old = _VIDEOS.popitem(last=False)
            if old is not video:
                old.cap.release()
    _VIDEOS.move_to_end(key)
    return video


def _video_frame(path: Path) -> tuple[_Video, int] | None:
    ref = parse_frame_ref(path)
    if ref is None:
        return None
    video = open_video(ref[0])
    if ref[1] >= video.n_frames > 0:
        raise ImageReadError(f"{path}: frame {ref[1]} (0-based) is past the end of {ref[0]}, which has "
                             f"{video.n_frames} frames")
    return video, ref[1]


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
    frame = _video_frame(path)
    if frame is not None:
        return frame[0].size
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
    """Read an image file (or a video frame reference, see the module
    docstring) as RGB ``uint8 (H, W, 3)``, EXIF orientation applied.

    Grayscale, palette, CMYK, 16-bit and transparent images are converted
    (transparency on white). Raises :class:`ImageReadError` naming the file
    when it is missing, truncated, not an image, or has more than
    ``max_pixels`` pixels (default :data:`MAX_IMAGE_PIXELS`).
    """
    path = Path(path)
    frame = _video_frame(path)
    if frame is not None:
        return frame[0].read(frame[1])
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


