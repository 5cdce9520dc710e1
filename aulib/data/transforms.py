"""Degraded copies and online augmentation (paper, Sec. 2.1).

- :func:`degrade` / :func:`degrade_batch`: the deterministic copies that expand
  datasets B and H x4 (variant 0 as is, 1 down-sampled, 2 black-square occluded, 3 both).
- :func:`augment_batch`: the online training augmentation (down-sampling,
  horizontal flip, black-square occlusion) on a whole batch of tensors, CPU or
  GPU, with a label-aware flip that swaps the head-pose pairs 51<->52, 55<->56.

Images are RGB uint8 ``(H, W, 3)`` arrays or ``(B, 3, H, W)`` tensors with values in [0, 255].
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aulib import aus as aulib_aus

#: Down-scale factor range and occluder side (fraction of the shorter image side)
#: used by both the B copies and the default online augmentation.
DOWNSAMPLE_RANGE = (2.0, 4.0)
OCCLUDE_FRAC = (0.15, 0.35)


def stable_rng(seed: int, key: str, variant: int) -> np.random.Generator:
    """A numpy Generator seeded from (seed, key, variant) through BLAKE2b, so the
    draws are the same in every process and Python run (unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{int(seed)}|{key}|{int(variant)}".encode("utf-8"), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _downsample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Down-scale float (B, C, H, W) by ``factor`` (area average) and back up (bilinear)."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def _square(u_size: float, u_x: float, u_y: float, h: int, w: int, frac: tuple[float, float]):
    """Side and top-left corner of an occluder from three uniforms in [0, 1)."""
    side = max(1, round((frac[0] + u_size * (frac[1] - frac[0])) * min(h, w)))
    return side, int(u_x * (w - side + 1)), int(u_y * (h - side + 1))


def _degrade_draws(variant: int, key: str, seed: int) -> tuple[int, float, float, float, float]:
    """(kind, factor, u_size, u_x, u_y) of a degraded copy: kind 1 down, 2 occlude, 3 both."""
    kind = (variant - 1) % 3 + 1
    rng = stable_rng(seed, key, variant)
    factor, u_size, u_x, u_y = rng.uniform(DOWNSAMPLE_RANGE[0], DOWNSAMPLE_RANGE[1]), *rng.random(3)
    return kind, float(factor), float(u_size), float(u_x), float(u_y)


def degrade(img: np.ndarray, variant: int, key: str, seed: int = 0) -> np.ndarray:
    """The ``variant``-th degraded copy of an image, uint8 (H, W, 3) -> same.

    0: identity; 1: down-sampled by a factor drawn from [2, 4] then up-sampled
    back; 2: one black square of side 15-35% of the shorter side at a random
    place; 3: both (down-sampling first). Variants above 3 cycle through 1-3
    with fresh draws. Draws come from :func:`stable_rng` (seed, key, variant),
    ``key`` being the image path, so a copy is the same in every run and worker.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"degrade expects a uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    return degrade_batch(img[None], [variant], [key], seed)[0]


def degrade_batch(images: np.ndarray, variants, keys, seed: int = 0) -> np.ndarray:
    """:func:`degrade` of every image of a batch, uint8 (N, H, W, 3) -> a new
    array, pixel for pixel the same as one call per image. Down-sampling runs
    once per distinct down-sampled size (at most ~H/2 groups) instead of once per
    image: the per-call overhead dominated the evaluation of B and H x4."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"degrade_batch expects uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
    variants = [int(v) for v in variants]
    if len(variants) != len(images) or len(keys) != len(images):
        raise ValueError(f"{len(images)} images, {len(variants)} variants and {len(keys)} keys must match")
    bad = [v for v in variants if v < 0]
    if bad:
        raise ValueError(f"variant must be >= 0, got {bad[0]}")
    out = images.copy()
    h, w = images.shape[1:3]
    draws = {i: _degrade_draws(v, str(keys[i]), seed) for i, v in enumerate(variants) if v > 0}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (kind, factor, *_u) in draws.items():
        if kind in (1, 3):
            groups.setdefault((max(1, round(h / factor)), max(1, round(w / factor))), []).append(i)
    for idx in groups.values():
        x = torch.from_numpy(np.ascontiguousarray(images[idx])).permute(0, 3, 1, 2).float()
        up = _downsample(x, draws[idx[0]][1])           # every image of the group has this size
        out[idx] = up.permute(0, 2, 3, 1).round_().clamp_(0, 255).to(torch.uint8).numpy()
    for i, (kind, _f, u_size, u_x, u_y) in draws.items():
        if kind in (2, 3):
            side, x0, y0 = _square(u_size, u_x, u_y, h, w, OCCLUDE_FRAC)
            out[i, y0:y0 + side, x0:x0 + side] = 0
    return out


@dataclass
class AugmentConfig:
    """Online augmentation of a training batch (each applied per sample with its probability).

    flip: horizontal flip on/off (labels follow: 51<->52, 55<->56).
    downsample_range: down-scale factors, quantised to ``downsample_levels``
    evenly spaced values so a batch is resized in a few groups.
    occlude_frac: occluder side as a fraction of the shorter image side.
    The default probabilities 0.5 / 0.5 give the mix of dataset B's four
    copies (1/4 clean, 1/4 down-sampled, 1/4 occluded, 1/4 both).
    """

    flip: bool = True
    flip_p: float = 0.5
    downsample_p: float = 0.5
    downsample_range: tuple[float, float] = DOWNSAMPLE_RANGE
    downsample_levels: int = 5
    occlude_p: float = 0.5
    occlude_frac: tuple[float, float] = OCCLUDE_FRAC


def default_augment(group, flip: bool | None = None) -> AugmentConfig:
    """The paper's augmentation for a model group.

    17au / 12au / 23au: down-sampling, horizontal flip, black-square occlusion.
    6au: down-sampling and occlusion. The paper does not flip the head-pose
    model, because a plain flip would contradict the labels of 51/52 and 55/56.
    :func:`augment_batch` flips label-aware (it swaps those pairs), so
    flipping is valid for 6au too and can be switched on with ``flip=True``;
    the default stays ``False`` for 6au so that runs reproduce the paper's
    recipe (a flip also evens out the left/right prevalence, which changes the
    training distribution relative to B and the test set). ``group``: a
    built-in group name or an :class:`aulib.aus.AUGroup` (a profile's own).
    """
    group = aulib_aus.get_group(group)  # rejects an unknown group name
    if flip is None:
        flip = group.name != "6au"
    return AugmentConfig(flip=bool(flip))


def resolve_augment(augment, group) -> AugmentConfig | None:
    """A run's ``augment`` setting as an :class:`AugmentConfig`: "default"
    (:func:`default_augment` of ``group``), "none" (None), or a dict of
    fields over the default."""
    if augment in (None, "none", False):
        return None
    if augment == "default":
        return default_augment(group)
    if isinstance(augment, dict):
        return AugmentConfig(**{**default_augment(group).__dict__, **augment})
    raise ValueError(f"augment must be 'default', 'none' or a dict of AugmentConfig fields, got {augment!r}")


def augment_batch(x: torch.Tensor, y: torch.Tensor, aus, cfg: AugmentConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: uint8 or float (B, 3, H, W), labels (B, C) over ``aus``
    -> float32 (B, 3, H, W) in [0, 255] and the labels (flipped samples get
    their 51/52 and 55/56 columns swapped).

    Per-sample choices come from ``generator`` (a fixed number of draws per
    call, on the generator's device), so the result depends only on the
    generator state, not on ``x``'s device. Order: flip, down-sample, occlude.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"augment_batch expects (B, 3, H, W) images, got {tuple(x.shape)}")
    aus = list(aulib_aus.aus_of(aus))
    if y.ndim != 2 or y.shape != (x.shape[0], len(aus)):
        raise ValueError(f"labels have shape {tuple(y.shape)}; expected ({x.shape[0]}, {len(aus)}) for AUs {aus}")
    b, _, h, w = x.shape
    dev = x.device
    u = torch.rand(b, 7, generator=generator, device=generator.device).to(dev)
    x = x.float()

    if cfg.flip and cfg.flip_p > 0:
        flip = u[:, 0] < cfg.flip_p
        idx = torch.nonzero(flip).flatten()
        x = x.index_copy(0, idx, x[idx].flip(-1))
        perm = torch.as_tensor(aulib_aus.flip_permutation(aus), device=y.device)
        y = torch.where(flip[:, None].to(y.device), y[:, perm], y)

    if cfg.downsample_p > 0:
        down = u[:, 1] < cfg.downsample_p
        levels = torch.linspace(cfg.downsample_range[0], cfg.downsample_range[1], cfg.downsample_levels).tolist()
        level = (u[:, 2] * len(levels)).long().clamp_(max=len(levels) - 1)
        for i, factor in enumerate(levels):
            idx = torch.nonzero(down & (level == i)).flatten()
            if len(idx):
                x = x.index_copy(0, idx, _downsample(x[idx], factor))

    if cfg.occlude_p > 0:
        occ = u[:, 3] < cfg.occlude_p
        lo, hi = cfg.occlude_frac
        side = ((lo + u[:, 4] * (hi - lo)) * min(h, w)).round().clamp(min=1)
        x0 = (u[:, 5] * (w - side + 1)).floor()
        y0 = (u[:, 6] * (h - side + 1)).floor()
        cols = torch.arange(w, device=dev)[None, :]
        rows = torch.arange(h, device=dev)[None, :]
        in_x = (cols >= x0[:, None]) & (cols < (x0 + side)[:, None])       # (B, W)
        in_y = (rows >= y0[:, None]) & (rows < (y0 + side)[:, None])       # (B, H)
        mask = occ[:, None, None] & in_y[:, :, None] & in_x[:, None, :]    # (B, H, W)
        x = x.masked_fill(mask[:, None], 0.0)

    return x, y  # area / bilinear resampling stays within [0, 255]
