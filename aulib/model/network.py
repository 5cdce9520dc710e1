"""Multi-view AU model: two timm backbones, one linear AU classifier per view.

Paper, Sec. 2.2 (after Niu et al., NeurIPS 2019): view ``i`` extracts
features ``f_i`` with its own backbone and predicts ``p_ij = sigmoid(w_ij^T f_i
+ b_ij)`` for every AU ``j`` of the group; the output is ``p = (p1 + p2) / 2``.
The multi-view loss compares the classifier rows ``W_ij = [w_ij, b_ij]`` of
the two views, so both classifiers must act on features of the same size.

Different backbones (``D1 != D2``): each view's pooled features go through a
linear projection (``nn.Linear(D_i, D)``, ``D = min(D1, D2)`` unless
``feature_dim`` is given) before its classifier, so ``W1`` and ``W2`` are both
``(C, D + 1)``. When ``D1 == D2`` and ``feature_dim`` is None there is no
projection (the paper's setting: two efficientnet-b4 or two resnet-101).

Inputs are uint8 or float ``(B, 3, H, W)`` in [0, 255]; the model normalises
them with each backbone's ``pretrained_cfg`` mean/std.

Pretrained weights (``pretrained``) are never downloaded: ``True`` takes
timm's weights from the local Hugging Face / torch hub cache, a string is a
``.pth`` / ``.safetensors`` file; anything missing raises
:class:`PretrainedWeightsMissing` that says how to provide them.
"""
from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from torch import nn

from ..aus import aus_of


class PretrainedWeightsMissing(FileNotFoundError):
    """ImageNet weights for a backbone are not available offline."""


def _cached_weight_file(name: str) -> Path | None:
    """Local copy of timm's default pretrained weights for ``name``, or None.
    Looks in the Hugging Face hub cache and torch hub's ``checkpoints`` folder;
    touches no network."""
    cfg = timm.models.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(name.split(".")[0])
    if cfg is None:
        return None
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache  # optional: timm's hub cache
        except ImportError:  # pragma: no cover - timm depends on huggingface_hub
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, _, revision = hub_id.partition("@")
            names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else []
            for filename in names + ["model.safetensors", "pytorch_model.bin"]:
                hit = try_to_load_from_cache(repo, filename, revision=revision or None)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return Path(hit)
    url = cfg.get("url")
    if url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        if local.is_file():
            return local
    return None


def create_backbone(name: str, pretrained: bool | str | os.PathLike = False, drop_rate: float = 0.0) -> nn.Module:
    """A timm feature extractor (``num_classes=0``: pooled features (B, D)).

    pretrained: False (random init), True (timm's ImageNet weights from the
    local cache) or the path of a ``.pth`` / ``.safetensors`` state dict.
    """
    kwargs = dict(num_classes=0, drop_rate=drop_rate)
    if pretrained is False or pretrained is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    if pretrained is True:
        path = _cached_weight_file(name)
        if path is None:
            raise PretrainedWeightsMissing(
                f"no local ImageNet weights for backbone {name!r} (looked in the Hugging Face cache "
                f"{os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'} and "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}). Either give the weight file: "
                f"pretrained='/path/to/{name}.safetensors' (or .pth; one path per backbone as a list), or fill "
                f"the cache on a machine with network with `python -c \"import timm; "
                f"timm.create_model('{name}', pretrained=True)\"` and copy ~/.cache/huggingface here. "
                f"pretrained=False trains from random init.")
    else:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise PretrainedWeightsMissing(f"pretrained weight file {path} for backbone {name!r} does not exist; "
                                           f"give a .pth or .safetensors state dict of {name}")
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)


def pooled_features(backbone: nn.Module) -> int:
    """Size D of a ``num_classes=0`` timm model's output (after any pre-logits
    head, e.g. lcnet's 1280-wide conv head)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


#: Conv weights and inputs in channels-last (NHWC) memory: the same numbers,
#: 15-35 % faster CPU training and evaluation here (benchmarks/), and what
#: AMP convolutions on GPU want.
CHANNELS_LAST = True


class MultiViewNet(nn.Module):
    """Two backbones -> features f1, f2 -> per-view linear AU classifiers.

    backbones: two timm model names (same or different). num_aus: C.
    pretrained: bool, a weight-file path for both views, or a pair (one per
    view). feature_dim: common feature size D when the views differ (default
    min(D1, D2)); see the module docstring.
    ``forward(x) -> (logits1, logits2)``, each float (B, C).
    """

    def __init__(self, backbones=("lcnet_050", "lcnet_050"), num_aus: int = 17,
                 pretrained: bool | str | tuple | list = False, drop_rate: float = 0.0,
                 feature_dim: int | None = None):
        super().__init__()
        backbones = [str(b) for b in backbones]
        if len(backbones) != 2:
            raise ValueError(f"MultiViewNet needs exactly two backbone names, got {backbones}")
        if num_aus < 1:
            raise ValueError(f"num_aus must be >= 1, got {num_aus}")
        per_view = list(pretrained) if isinstance(pretrained, (tuple, list)) else [pretrained, pretrained]
        if len(per_view) != 2:
            raise ValueError(f"pretrained must be one value or one per view (2), got {pretrained!r}")
        self.backbone_names = tuple(backbones)
        self.backbone1 = create_backbone(backbones[0], per_view[0], drop_rate)
        self.backbone2 = create_backbone(backbones[1], per_view[1], drop_rate)
        d1, d2 = pooled_features(self.backbone1), pooled_features(self.backbone2)
        if feature_dim is None and d1 == d2:
            self.proj1, self.proj2 = nn.Identity(), nn.Identity()
            dim = d1
        else:
            dim = int(feature_dim or min(d1, d2))
            self.proj1, self.proj2 = nn.Linear(d1, dim), nn.Linear(d2, dim)
        self.feature_dim = dim
        self.classifier1 = nn.Linear(dim, num_aus)
        self.classifier2 = nn.Linear(dim, num_aus)
        for i, bb in ((1, self.backbone1), (2, self.backbone2)):
            cfg = bb.pretrained_cfg
            mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32) * 255
            std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32) * 255
            self.register_buffer(f"mean{i}", mean.view(1, 3, 1, 1), persistent=False)
            self.register_buffer(f"std{i}", std.view(1, 3, 1, 1), persistent=False)
        if CHANNELS_LAST:
            self.to(memory_format=torch.channels_last)

    @property
    def num_aus(self) -> int:
        return self.classifier1.out_features

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) uint8/float in [0, 255] -> (f1, f2), each (B, D)."""
        x = x.float().contiguous(memory_format=torch.channels_last if CHANNELS_LAST else torch.contiguous_format)
        f1 = self.proj1(self.backbone1((x - self.mean1) / self.std1))
        f2 = self.proj2(self.backbone2((x - self.mean2) / self.std2))
        return f1, f2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1, f2 = self.features(x)
        return self.classifier1(f1), self.classifier2(f2)

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Final output p = (sigmoid(logits1) + sigmoid(logits2)) / 2, float32 (B, C)."""
        l1, l2 = self(x)
        return (torch.sigmoid(l1.float()) + torch.sigmoid(l2.float())) / 2

    def classifier_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W1, W2), each (C, D + 1) = [w | b] of a view's AU classifiers."""
        return tuple(torch.cat([c.weight, c.bias[:, None]], dim=1) for c in (self.classifier1, self.classifier2))


def create_model(cfg) -> MultiViewNet:
    """The model of a :class:`aulib.model.config.TrainConfig` (or a dict of its fields)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    return MultiViewNet(tuple(get("backbones")), len(aus_of(get("aus") or get("group"))), get("pretrained", False),
                        float(get("drop_rate", 0.0) or 0.0), get("feature_dim", None))
