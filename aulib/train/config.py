"""Training configuration: :class:`TrainConfig`, plain data that round-trips
through YAML (``config.yaml`` of every run directory).

Stages (paper, Sec. 2.1): ``plain`` trains on A; ``pretrain`` on A + C (the
filtered noisy set, ``C_<group>`` or ``C``); ``finetune`` on A starting from
the weights of ``init_from`` (a checkpoint file or a run directory, relative
paths against the workspace).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..aus import GROUPS, define_group, group_aus, group_crop
from ..data.transforms import check_views
from .losses import TERMS, W_CR, W_MV, ablation_names

STAGES = ("plain", "pretrain", "finetune")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
#: Keys that may change when a run is resumed (they do not change results;
#: ``epochs`` extends or shortens a run, and only with ``extend=True``;
#: ``eval_splits`` only changes which splits later epochs score: a held-out
#: split they skip is predicted from the checkpoints when needed).
RESUMABLE_CHANGES = ("epochs", "num_workers", "progress", "eval_splits", "tensorboard", "log_every")
#: Older boolean switches, still read (config.yaml of older runs): ``use_<x>:
#: false`` or ``no_<x>: true`` put ``<x>`` into ``ablate``.
LEGACY_SWITCHES = ("mv", "cr", "balance")


@dataclass
class TrainConfig:
    """Everything a training run needs; see docs/layout.md for the run directory.

    ``group`` names the AU group; ``aus`` and ``crop_style`` default to the
    group's (:mod:`aulib.aus` registry) and are written to config.yaml.
    Sizes: ``img_size`` px crops of style ``crop_style``;
    ``batch_size`` per process (torchrun: each rank). Learning rate ``lr``
    follows ``schedule`` per step: ``cosine`` (linear warm-up over
    ``warmup_epochs``, then cosine to 0), ``step`` (x ``lr_gamma`` every
    ``lr_step_epochs``), ``constant``. Loss: :class:`aulib.train.losses.MultiViewLoss`
    (``alpha``, ``w_mv``, ``w_cr``, switches). ``augment``: "default"
    (:func:`aulib.data.transforms.default_augment`), "none", or a dict of
    :class:`aulib.data.transforms.AugmentConfig` fields. ``amp``: "auto" (on
    for CUDA), true, false. ``keep_checkpoints``: "all", "last" or N (the last
    N); per-AU choice reads predictions, but loading a chosen epoch later needs
    its checkpoint, so keep all unless disk is short. Splits: ``train_splits``
    (default A, plus C_<group> to pretrain); ``eval_splits`` are scored every
    epoch (default B alone); ``heldout`` names the held-out split, predicted
    afterwards at the epochs a choice picks, from their checkpoints
    (:mod:`aulib.infer.at_epochs`); list it in ``eval_splits`` to score it every
    epoch instead. ``multicrop``: also score ``<split>_mc``, the mean over
    the views ``multicrop_views`` (None: those training produces,
    :func:`aulib.infer.views.run_views`). ``max_train_batches``
    caps the batches per epoch (tests, smoke runs).
    """

    run_name: str | None = None
    workspace: str | None = None
    group: str = "17au"
    aus: list | None = None
    backbones: list = field(default_factory=lambda: ["lcnet_050", "lcnet_050"])
    pretrained: bool | str | list = False
    drop_rate: float = 0.0
    feature_dim: int | None = None
    img_size: int = 64
    crop_style: str | None = None
    stage: str = "plain"
    init_from: str | None = None
    train_splits: list | None = None
    eval_splits: list | None = None
    heldout: str | None = None
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int | None = None
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    alpha: float = 0.2
    w_mv: float = W_MV
    w_cr: float = W_CR
    mv_absolute: bool = True
    ablate: list = field(default_factory=list)
    loss_weights: dict = field(default_factory=dict)
    augment: str | dict = "default"
    amp: str | bool = "auto"
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    multicrop: bool = True
    multicrop_views: list | None = None
    keep_checkpoints: str | int = "all"
    max_train_batches: int | None = None
    progress: bool = True
    tensorboard: bool = True
    log_every: int | None = None

    def __post_init__(self):
        self.ablate = [str(a) for a in dict.fromkeys([self.ablate] if isinstance(self.ablate, str)
                                                     else self.ablate or [])]
        self.loss_weights = dict(self.loss_weights or {})

    @classmethod
    def from_dict(cls, data: dict, source: str | Path = "config") -> "TrainConfig":
        """Build from a mapping; unknown keys raise an error naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a training config is a mapping of keys, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - set(_legacy_keys()))
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {unknown}; valid keys: {sorted(names)}")
        ablate = ablations_of(data)
        return cls(**{k: v for k, v in data.items() if k not in _legacy_keys() + ["ablate"]}, ablate=ablate)

    @classmethod
    def from_yaml(cls, path, overrides: list[str] | dict | None = None) -> "TrainConfig":
        """Read a YAML file and apply ``overrides`` (``["key=value", ...]``,
        values parsed as YAML, or a dict)."""
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config is a mapping of keys")
        return cls.from_dict({**data, **parse_overrides(overrides)}, source=path)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved(self) -> "TrainConfig":
        """A copy with every derived field filled in and values checked:
        run_name, crop_style, train/eval splits, eval batch size."""
        c = dataclasses.replace(self)
        c.backbones = [str(b) for b in c.backbones]
        # aus / crop_style are recorded, so a torchrun child or a later stage
        # knows a profile's own group from config.yaml alone
        if c.aus is not None and c.group not in GROUPS:
            define_group(c.group, c.aus, c.crop_style or "aligned", where="training config")
        if c.aus is not None and tuple(int(a) for a in c.aus) != group_aus(c.group):
            raise ValueError(f"training config: aus {list(c.aus)} differ from group {c.group!r}'s "
                             f"{list(group_aus(c.group))}; name the group that has these AUs")
        c.aus = list(group_aus(c.group))
        if len(c.backbones) != 2:
            raise ValueError(f"backbones must name two timm models, got {c.backbones}")
        for key, allowed in (("stage", STAGES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(c, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(c, key)!r}")
        if c.stage == "finetune" and not c.init_from:
            raise ValueError("stage 'finetune' needs init_from: the pretrain run directory or a checkpoint file")
        if c.epochs < 1 or c.batch_size < 1 or c.img_size < 8:
            raise ValueError(f"epochs and batch_size must be >= 1 and img_size >= 8; got {c.epochs}, "
                             f"{c.batch_size}, {c.img_size}")
        if isinstance(c.pretrained, tuple):
            c.pretrained = list(c.pretrained)
        c.crop_style = c.crop_style or group_crop(c.group)
        c.run_name = c.run_name or default_run_name(c)
        if c.train_splits is None:
            c.train_splits = ["A", f"C_{c.group}"] if c.stage == "pretrain" else ["A"]
        c.train_splits = [str(s) for s in ([c.train_splits] if isinstance(c.train_splits, str) else c.train_splits)]
        if c.eval_splits is None:
            c.eval_splits = ["B"]      # the held-out split is scored at the chosen epochs (aulib.infer.at_epochs)
        c.eval_splits = [str(s) for s in ([c.eval_splits] if isinstance(c.eval_splits, str) else c.eval_splits)]
        if "B" not in c.eval_splits:
            raise ValueError(f"eval_splits {c.eval_splits} must include 'B' (the per-epoch metrics are on B)")
        c.eval_batch_size = int(c.eval_batch_size or 2 * c.batch_size)
        if c.multicrop_views is not None:
            c.multicrop_views = list(check_views(c.multicrop_views))
        valid = ablation_names()
        unknown = [a for a in c.ablate if a not in valid]
        if unknown:
            raise ValueError(f"ablate names {unknown}, which are not loss terms; valid: {list(valid)}")
        c.ablate = [a for a in valid if a in c.ablate]  # table order: the run name does not depend on list order
        stray = sorted(set(c.loss_weights) - set(TERMS))
        if stray:
            raise ValueError(f"loss_weights names {stray}, which are not loss terms; terms: {list(TERMS)}")
        if not (c.keep_checkpoints in ("all", "last") or (isinstance(c.keep_checkpoints, int)
                                                           and c.keep_checkpoints >= 1)):
            raise ValueError(f"keep_checkpoints must be 'all', 'last' or a number >= 1, got {c.keep_checkpoints!r}")
        return c


def _legacy_keys() -> list[str]:
    return [f"{p}_{k}" for p in ("use", "no") for k in LEGACY_SWITCHES]


def ablations_of(config: dict) -> list[str]:
    """The ablations of a config mapping: its ``ablate`` list (or name), then
    the older switches (``use_mv: false`` or ``no_mv: true`` -> ``mv``)."""
    given = config.get("ablate") or []
    off = [k for k in LEGACY_SWITCHES if config.get(f"use_{k}", True) is False or bool(config.get(f"no_{k}", False))]
    return list(dict.fromkeys(([given] if isinstance(given, str) else list(given)) + off))


def default_run_name(cfg: TrainConfig) -> str:
    """``<group>_<backbone1>-<backbone2>_<stage>`` plus one ``_no_<name>`` per
    ablation (``_no_mv``, ``_no_cr``, ``_no_balance``); one backbone name when both are the same."""
    bb = cfg.backbones[0] if cfg.backbones[0] == cfg.backbones[1] else "-".join(cfg.backbones)
    return f"{cfg.group}_{bb}_{cfg.stage}" + "".join(f"_no_{a}" for a in cfg.ablate)


def parse_overrides(overrides) -> dict:
    """``["epochs=3", "backbones=[a, b]"]`` -> dict (values parsed as YAML); a dict passes through."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def notebook_config(workspace, group: str = "17au", backbones=None, stage: str = "plain",
                    init_from: str | None = None, epochs: int | None = None, run_name: str | None = None,
                    img_size: int | None = None, batch_size: int | None = None, lr: float | None = None,
                    no_mv: bool = False, no_cr: bool = False, no_balance: bool = False,
                    heldout: str | None = None, overrides: dict | None = None, ablate=None) -> TrainConfig:
    """The :class:`TrainConfig` of notebook 04_train's parameters, already
    resolved by :func:`aulib.pipeline.step_settings` (this function reads no
    profile). ``workspace`` is the run's workspace folder; a value left None
    takes the TrainConfig default; ``ablate`` (names of loss terms, or
    ``balance``) and the older ``no_*`` switches turn parts of the loss off
    (Table 3 ablations); ``overrides`` sets any other TrainConfig key.
    """
    given = {"epochs": epochs, "img_size": img_size, "batch_size": batch_size, "lr": lr, "heldout": heldout,
             "backbones": list(backbones) if backbones else None, "init_from": init_from, "run_name": run_name}
    data = {k: v for k, v in given.items() if v is not None}
    data.update(workspace=str(workspace), group=group, stage=stage, ablate=list(ablate or []),
                no_mv=no_mv, no_cr=no_cr, no_balance=no_balance)
    data.update(parse_overrides(overrides))
    return TrainConfig.from_dict(data, source="notebook parameters").resolved()
