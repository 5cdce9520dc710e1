"""Multi-crop inference (paper, Table 1 "multicrop"): average a model's
probabilities over a few views of each image.

Views of a batch ``x`` (B, 3, H, W): the image itself, its horizontal flip
(label-aware: the flipped image's "turn left" is the original's "turn right",
so 51<->52 and 55<->56 are swapped back, :func:`aulib.aus.flip_permutation`),
and two slightly zoomed, shifted crops (:data:`CROPS`) resized back to H x W.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..aus import flip_permutation, group_aus

#: (scale, anchor) of the crop views: a square of ``scale`` times the side,
#: anchored at the top-left (0) or bottom-right (1) corner of the image, i.e.
#: a 1.11x zoom shifted by 5% of the side either way from the centre.
CROPS: tuple[tuple[float, float], ...] = ((0.9, 0.0), (0.9, 1.0))


def _crop_resize(x: torch.Tensor, scale: float, anchor: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    y0, x0 = round((h - ch) * anchor), round((w - cw) * anchor)
    crop = x[..., y0:y0 + ch, x0:x0 + cw].float()
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def multicrop_views(x: torch.Tensor, aus) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The views of a batch (B, 3, H, W) uint8/float in [0, 255].

    Returns ``[(x_view, perm), ...]``: ``x_view`` float (B, 3, H, W) and
    ``perm`` int64 (C,) such that ``probs_of_view[:, perm]`` are probabilities
    of the original image's AUs (identity except for the flip).
    """
    aus = list(group_aus(aus) if isinstance(aus, str) else aus)
    ident = torch.arange(len(aus), device=x.device)
    flip = torch.as_tensor(flip_permutation(aus), device=x.device)
    views = [(x.float(), ident), (x.float().flip(-1), flip)]
    views += [(_crop_resize(x, scale, anchor), ident) for scale, anchor in CROPS]
    return views


@torch.no_grad()
def view_probs(model, x: torch.Tensor, aus) -> torch.Tensor:
    """``model.probs`` of every view of :func:`multicrop_views`, mapped back to
    the original AUs: float32 (V, B, C); view 0 is the image itself."""
    return torch.stack([model.probs(xv).float()[:, perm] for xv, perm in multicrop_views(x, aus)])


@torch.no_grad()
def multicrop_probs(model, x: torch.Tensor, aus) -> torch.Tensor:
    """Multi-crop probabilities: the mean over the views of :func:`view_probs`, float32 (B, C)."""
    return view_probs(model, x, aus).mean(0)
