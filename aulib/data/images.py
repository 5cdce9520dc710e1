"""Safe image decoding: the one image loader of the kit.

* :func:`load_rgb`: RGB ``uint8 (H, W, 3)``, EXIF orientation applied, any PIL
  mode converted (grey, palette, CMYK, 16-bit, transparency on white), a clear
  :class:`ImageReadError` naming the file otherwise; images over
  :data:`MAX_IMAGE_PIXELS` are refused before decoding (decompression bombs).
* :func:`image_size` reads ``(height, width)`` from the header only.
* :func:`as_rgb_array` normalises an in-memory image; :func:`resolve_image`
  maps an image path relative to the data root to a file.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

#: Images with more pixels than this are refused before decoding
#: (decompression bombs). PIL's own limit, raise it to allow larger files.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(ValueError):
    """An image file that cannot be read; the message names the file."""


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


