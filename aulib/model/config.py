"""Training configuration: :class:`TrainConfig`, plain data that round-trips
through YAML (``config.yaml`` of every run directory).

Stages (paper, Sec. 2.1): ``plain`` trains on A; ``pretrain`` on A + C (the
filtered noisy set, ``C_<group>`` or ``C``); ``finetune`` on A starting from
the weights of ``init_from`` (a checkpoint file or a run directory, relative
paths against the workspace).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..aus import BUILTIN, AUGroup, get_group, make_group
from ..data.multicrop_names import check_views
from ..settings import SettingError, Spec, check, check_all, help_table, setting, specs_of
from ..workers import STALL_MINUTES
from .loss_terms import TERMS, W_CR, W_MV, ablation_names

# this module imports no torch, so that ``python -m aulib.train --help`` answers at once; the default
# process-group timeout is read from here by aulib.model.distributed
DIST_TIMEOUT_MIN = 30.0

STAGES = ("plain", "pretrain", "finetune")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
#: Keys that may change when a run is resumed (they do not change results;
#: ``epochs`` extends or shortens a run, and only with ``extend=True``;
#: ``eval_splits`` only changes which splits later epochs score: a held-out
#: split they skip is predicted from the checkpoints when needed).
RESUMABLE_CHANGES = ("epochs", "num_workers", "stall_minutes", "progress", "eval_splits", "tensorboard", "log_every",
                     "dist_timeout_min")
#: Older boolean switches, still read (config.yaml of older runs): ``use_<x>:
#: false`` or ``no_<x>: true`` put ``<x>`` into ``ablate``.
LEGACY_SWITCHES = ("mv", "cr", "balance")


@dataclass
class TrainConfig:
    """Everything a training run needs; see docs/layout.md for the run directory.

    ``group`` names the AU group; ``aus`` and ``crop_style`` default to the
    built-in group's (:data:`aulib.aus.BUILTIN`) and are written to
    config.yaml. A profile's own group is given by its ``aus`` (and
    ``crop_style``), which the config carries (:func:`notebook_config` fills
    them from the profile's groups); :attr:`au_group` is the resolved group.
    Sizes: ``img_size`` px crops of style ``crop_style``;
    ``batch_size`` per process (torchrun: each rank). Learning rate ``lr``
    follows ``schedule`` per step: ``cosine`` (linear warm-up over
    ``warmup_epochs``, then cosine to 0), ``step`` (x ``lr_gamma`` every
    ``lr_step_epochs``), ``constant``. Loss: :class:`aulib.model.losses.MultiViewLoss`
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
    :func:`aulib.infer.multicrop.run_views`). ``max_train_batches``
    caps the batches per epoch (tests, smoke runs).
    """

    run_name: str | None = setting(None, "name", "run directory train/<run_name>; null: <group>_<backbones>_<stage>[_no_*]",
                                   nullable=True)
    workspace: str | None = setting(None, "str", "workspace folder; null: runs/<$AULIB_PROFILE or demo>", nullable=True)
    group: str = setting("17au", "name", "AU group: a built-in one (aulib.aus.BUILTIN) or a profile's own, "
                         "given with aus")
    aus: list | None = setting(None, "list", "the group's AU numbers (written to config.yaml); null: the built-in group's",
                               item="int", lo=1, nullable=True)
    backbones: list = setting(["lcnet_050", "lcnet_050"], "list", "the two views' timm model names", item="str", length=2)
    pretrained: bool | str | list = setting(False, ("bool", "str", "list"),
                                            "ImageNet weights from the timm cache (per view as a list)")
    drop_rate: float = setting(0.0, "float", "dropout before the classifiers", lo=0, hi=1, hi_open=True)
    feature_dim: int | None = setting(None, "int", "projected feature size; null: the backbone's", lo=1, nullable=True)
    img_size: int = setting(64, "int", "crop size in px", lo=8)
    crop_style: str | None = setting(None, "str", "crop style (aligned | box1.5); null: the group's", nullable=True)
    stage: str = setting("plain", (), "plain: train on A; pretrain: on A + C; finetune: on A from init_from",
                         choices=STAGES)
    init_from: str | None = setting(None, "str", "finetune: a run directory or .pt file (relative: to the workspace)",
                                    nullable=True)
    train_splits: list | None = setting(None, ("list", "str"), "training splits; null: A (pretrain: A, C_<group>)",
                                        item="str", nullable=True)
    eval_splits: list | None = setting(None, ("list", "str"), "splits scored every epoch (must include B); null: B",
                                       item="str", nullable=True)
    heldout: str | None = setting(None, "str", "held-out split predicted at the chosen epochs", nullable=True)
    epochs: int = setting(10, "int", "training epochs", lo=1)
    batch_size: int = setting(64, "int", "images per step and process (torchrun: per rank)", lo=1)
    eval_batch_size: int | None = setting(None, "int", "evaluation batch; null: 2 x batch_size", lo=1, nullable=True)
    optimizer: str = setting("adamw", (), "optimizer", choices=OPTIMIZERS)
    lr: float = setting(2e-3, "float", "peak learning rate (0: weights stay as they are)", lo=0)
    momentum: float = setting(0.9, "float", "SGD momentum (optimizer sgd)", lo=0, hi=1, hi_open=True)
    weight_decay: float = setting(0.01, "float", "weight decay of weights (not biases/norms)", lo=0)
    schedule: str = setting("cosine", (), "learning-rate schedule per step", choices=SCHEDULES)
    warmup_epochs: float = setting(1.0, "float", "cosine: linear warm-up epochs", lo=0)
    lr_step_epochs: int = setting(10, "int", "step: epochs between decays", lo=1)
    lr_gamma: float = setting(0.1, "float", "step: factor per decay", lo=0, hi=1, lo_open=True)
    alpha: float = setting(0.2, "float", "batch balancing: keep ceil(alpha x negatives) of an AU's negatives "
                           "when that is more than its positives (paper: 0.2)", lo=0, hi=1, lo_open=True)
    w_mv: float = setting(W_MV, "float", "weight of the multi-view loss L_mv", lo=0)
    w_cr: float = setting(W_CR, "float", "weight of the co-regularisation loss L_cr", lo=0)
    mv_absolute: bool = setting(True, "bool", "L_mv on |cos| (false: signed cos)")
    ablate: list = setting([], ("list", "str"), "loss terms switched off (mv, cr, balance)", item="str")
    loss_weights: dict = setting({}, "dict", "weights of further loss terms, by name")
    augment: str | dict = setting("default", "dict", "training augmentation: default, none, or AugmentConfig fields",
                                  choices=("default", "none"))
    amp: str | bool = setting("auto", "bool", "mixed precision (auto: on for CUDA)", choices=("auto",))
    seed: int = setting(0, "int", "seed of every random draw", lo=0)
    num_workers: int = setting(0, "int", "data-loader worker processes", lo=0)
    stall_minutes: float = setting(STALL_MINUTES, "float", "data-loader workers that give no batch for this "
                                   "long stop the run, naming the batch (aulib.workers)", lo=0, lo_open=True)
    device: str = setting("auto", "str", "auto (GPU when present) | cpu | cuda | cuda:N")
    multicrop: bool = setting(True, "bool", "also score <split>_mc, the mean over the multi-crop views")
    multicrop_views: list | None = setting(None, "list", "multi-crop views; null: those training produces",
                                           nullable=True)
    keep_checkpoints: str | int = setting("all", "int", "checkpoints kept: all, last, or the last N",
                                          choices=("all", "last"), lo=1)
    max_train_batches: int | None = setting(None, "int", "cap of batches per epoch (smoke runs); null: all",
                                            lo=1, nullable=True)
    progress: bool = setting(True, "bool", "print progress bars and epoch lines")
    tensorboard: bool = setting(True, "bool", "write TensorBoard event files beside log.csv (when installed)")
    log_every: int | None = setting(None, "int", "TensorBoard: per-step scalars every N batches (0: none); "
                                    "null: about 20 per epoch", lo=0, nullable=True)
    dist_timeout_min: float = setting(DIST_TIMEOUT_MIN, "float", "torchrun: minutes a collective may wait for a "
                                      "stopped or hung rank before the job fails", lo=0, lo_open=True)

    def __post_init__(self):
        check_all(TRAIN_SPECS, dataclasses.asdict(self), "training config")
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
        check_all(TRAIN_SPECS, data, str(source))
        for key in _legacy_keys():
            if key in data:
                check(LEGACY_SPEC, key, data[key], str(source))
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

    @property
    def au_group(self) -> AUGroup:
        """The run's :class:`aulib.aus.AUGroup` (name, AUs, crop style) of a resolved config."""
        if self.aus is None or self.crop_style is None:
            raise ValueError("au_group needs a resolved config (TrainConfig.resolved())")
        return AUGroup(self.group, tuple(int(a) for a in self.aus), self.crop_style)

    def resolved(self) -> "TrainConfig":
        """A copy with every derived field filled in and values checked:
        run_name, crop_style, train/eval splits, eval batch size."""
        c = dataclasses.replace(self)
        c.backbones = [str(b) for b in c.backbones]
        # aus / crop_style are recorded, so a torchrun child or a later stage
        # knows a profile's own group from config.yaml alone (nothing is registered)
        group = config_group(c.group, c.aus, c.crop_style, "training config")
        c.aus = list(group.aus)
        if len(c.backbones) != 2:
            raise ValueError(f"backbones must name two timm models, got {c.backbones}")
        for key, allowed in (("stage", STAGES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(c, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(c, key)!r}")
        if c.stage == "finetune" and not c.init_from:
            raise ValueError("stage 'finetune' needs init_from: the pretrain run directory or a checkpoint file")
        if isinstance(c.pretrained, tuple):
            c.pretrained = list(c.pretrained)
        c.crop_style = c.crop_style or group.crop
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
        bad = {k: w for k, w in c.loss_weights.items() if not (isinstance(w, (int, float)) and not isinstance(w, bool)
                                                               and w >= 0)}
        if bad:
            raise SettingError(f"training config: loss_weights {bad} must be numbers >= 0")
        return c


#: {key: Spec} of every TrainConfig key: the one place of their types, ranges, defaults and meanings.
TRAIN_SPECS = specs_of(TrainConfig)
#: The older ``use_<x>`` / ``no_<x>`` switches (:data:`LEGACY_SWITCHES`).
LEGACY_SPEC = Spec(("bool",), "older switch of an ablation (use ablate)")


def config_help() -> str:
    """Every TrainConfig key with its default, what it allows and its meaning
    (``python -m aulib.train --help``), generated from :data:`TRAIN_SPECS`."""
    return "config keys (YAML file or key=value; generated from TrainConfig):\n" + help_table(TRAIN_SPECS)


def _legacy_keys() -> list[str]:
    return [f"{p}_{k}" for p in ("use", "no") for k in LEGACY_SWITCHES]


def config_group(name: str, aus=None, crop_style: str | None = None, where: str = "training config") -> AUGroup:
    """The :class:`aulib.aus.AUGroup` a config's ``group``, ``aus`` and
    ``crop_style`` describe. A built-in group: ``aus`` (if given) must be its
    AUs; its crop unless ``crop_style`` is given. Any other name needs ``aus``
    (a profile's own group; crop ``crop_style`` or aligned). Registers nothing."""
    if name in BUILTIN:
        builtin = BUILTIN[name]
        if aus is not None and tuple(int(a) for a in aus) != builtin.aus:
            raise ValueError(f"{where}: aus {list(aus)} differ from group {name!r}'s {list(builtin.aus)}; "
                             "name the group that has these AUs")
        return builtin if not crop_style else AUGroup(name, builtin.aus, str(crop_style))
    if aus is None:
        get_group(name)     # the error: an unknown group, declare it in the profile
    return make_group(name, aus, crop_style or "aligned", where=where)


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
    """``["epochs=3", "backbones=[a, b]"]`` -> dict (values parsed as YAML, ``1e-4`` as a number); a dict passes through."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", parsed.strip()):
            parsed = float(parsed)      # lr=1e-4: YAML 1.1 reads an exponent without a dot as text
        out[key.strip()] = parsed
    return out


def notebook_config(workspace, group: str | None = None, backbones=None, stage: str | None = None,
                    init_from: str | None = None, epochs: int | None = None, run_name: str | None = None,
                    img_size: int | None = None, batch_size: int | None = None, lr: float | None = None,
                    ablate=None, heldout: str | None = None, overrides: dict | None = None,
                    groups: dict | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of notebook 04_train's parameters, already
    resolved by :func:`aulib.pipeline.step_settings` (this function reads no
    profile). ``workspace`` is the run's workspace folder; a value left None
    takes the TrainConfig default; ``ablate`` (names of loss terms, or
    ``balance``) turns parts of the loss off (Table 3 ablations);
    ``overrides`` sets any other TrainConfig key. ``groups``: the profile's
    own groups ({name: :class:`aulib.aus.AUGroup`},
    :attr:`aulib.pipeline.StepSettings.groups`); a group named there gives the
    config its ``aus`` and ``crop_style`` (unless ``overrides`` sets them).
    """
    given = {"group": group, "stage": stage, "epochs": epochs, "img_size": img_size, "batch_size": batch_size,
             "lr": lr, "heldout": heldout, "backbones": list(backbones) if backbones else None,
             "init_from": init_from, "run_name": run_name, "ablate": list(ablate) if ablate else None}
    data = {k: v for k, v in given.items() if v is not None}
    data.update(workspace=str(workspace))
    data.update(parse_overrides(overrides))
    own = (groups or {}).get(data.get("group"))
    if own is not None:
        if data.get("aus") is not None and tuple(int(a) for a in data["aus"]) != own.aus:
            raise ValueError(f"notebook parameters: aus {list(data['aus'])} differ from the profile's group "
                             f"{own.name!r} {list(own.aus)}; name the group that has these AUs")
        data["aus"] = list(own.aus)
        data["crop_style"] = data.get("crop_style") or own.crop
    return TrainConfig.from_dict(data, source="notebook parameters").resolved()
