"""Multi-crop inference (paper, Table 1 "multicrop"): average a model's
probabilities over a few views of each image.

Views (:data:`VIEWS`, by name) of a batch ``x`` (B, 3, H, W):

- ``image``: the image itself;
- ``flip``: its horizontal flip, label-aware (the flipped image's "turn left"
  is the original's "turn right", so 51<->52 and 55<->56 are swapped back,
  :func:`aulib.aus.flip_permutation`);
- ``crop_tl`` / ``crop_br``: a square of 0.9 x the side anchored at the
  top-left / bottom-right corner, resized back to H x W (a 1.11x zoom shifted
  by 5 % of the side).

Which views a run averages (:func:`run_views`): the ones its training
augmentation produces, so that no view is outside what the model was
trained on: ``image``, and ``flip`` when training flips. The kit's faces are
5-point aligned and its augmentation (down-sampling, flip, occlusion) has no
crop, zoom or shift: measured on the demo's 17-AU base model, the crop views
score near chance on B, so averaging them loses (docs/decisions.md). A run's
``multicrop_views`` setting names its views explicitly (e.g. all four, for a
model trained with crop jitter).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..aus import aus_of, flip_permutation
from ..data.transforms import resolve_augment
from ..data.multicrop_names import CROP_VIEWS, VIEWS, check_views  # noqa: F401 - VIEWS re-exported
from ..runs import run_group


def _crop_resize(x: torch.Tensor, scale: float, anchor: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    y0, x0 = round((h - ch) * anchor), round((w - cw) * anchor)
    crop = x[..., y0:y0 + ch, x0:x0 + cw].float()
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def run_views(cfg) -> tuple[str, ...]:
    """The multi-crop views of a run (its ``config.yaml`` dict or a
    :class:`aulib.model.config.TrainConfig`): its ``multicrop_views`` when set,
    else those its training augmentation produces (``image``; ``flip`` when it flips)."""
    cfg = cfg if isinstance(cfg, dict) else cfg.to_dict()
    if cfg.get("multicrop_views"):
        return check_views(cfg["multicrop_views"])
    group = run_group(cfg) if cfg.get("group") else "17au"     # a profile's own group: from the config's aus
    aug = resolve_augment(cfg.get("augment", "default"), group)
    return ("image", "flip") if aug is not None and aug.flip and aug.flip_p > 0 else ("image",)


def multicrop_views(x: torch.Tensor, aus, views=("image", "flip")) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The named ``views`` (:data:`VIEWS`) of a batch (B, 3, H, W) uint8/float in [0, 255].

    Returns ``[(x_view, perm), ...]`` in the order of ``views``: ``x_view``
    float (B, 3, H, W) and ``perm`` int64 (C,) such that
    ``probs_of_view[:, perm]`` are probabilities of the original image's AUs
    (identity except for the flip).
    """
    aus = list(aus_of(aus))
    ident = torch.arange(len(aus), device=x.device)
    out = []
    for name in check_views(views):
        if name == "image":
            out.append((x.float(), ident))
        elif name == "flip":
            out.append((x.float().flip(-1), torch.as_tensor(flip_permutation(aus), device=x.device)))
        else:
            out.append((_crop_resize(x, *CROP_VIEWS[name]), ident))
    return out


@torch.no_grad()
def view_probs(model, x: torch.Tensor, aus, views=("image", "flip")) -> torch.Tensor:
    """``model.probs`` of every view of :func:`multicrop_views`, mapped back to
    the original AUs: float32 (V, B, C); view 0 is the image itself."""
    return torch.stack([model.probs(xv).float()[:, perm] for xv, perm in multicrop_views(x, aus, views)])


@torch.no_grad()
def multicrop_probs(model, x: torch.Tensor, aus, views=("image", "flip")) -> torch.Tensor:
    """Multi-crop probabilities: the mean over the views of :func:`view_probs`, float32 (B, C)."""
    return view_probs(model, x, aus, views).mean(0)
