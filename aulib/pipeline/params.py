"""The settings schema of every notebook parameter a profile may set:
{notebook stem: {parameter: :class:`aulib.settings.Spec`}} (:data:`PARAMS`).

Defaults stay in ``notebooks/profiles/base.yaml`` (the one place of them);
here are types, ranges and meanings. A parameter that is a TrainConfig key
(``epochs``, ``img_size``, ...) takes TrainConfig's spec
(:data:`aulib.model.config.TRAIN_SPECS`), so the two cannot disagree, and
its default too: base.yaml leaves it null and :func:`train_defaults` fills in
TrainConfig's; a 04_train step's ``overrides`` are checked key by key against it.
:func:`check_params` is what :mod:`aulib.pipeline.profile` calls on every
section of a profile when it is loaded, and on a step's resolved values.
tests/core/test_settings.py checks that every declared parameter has a spec.
"""
from __future__ import annotations

import copy

from ..model.config import TRAIN_SPECS
from ..settings import NO_DEFAULT, SettingError, Spec, check

#: Folds of a k-fold protocol refused at load as absurd (the splits refuse more folds than subjects/images).
MAX_KFOLD = 100


def _s(kinds, help: str, **kw) -> Spec:
    return Spec(kinds=(kinds,) if isinstance(kinds, str) else tuple(kinds), help=help, default=NO_DEFAULT, **kw)


def _train(key: str, nullable: bool = False) -> Spec:
    spec = TRAIN_SPECS[key]
    return spec.nullable_copy() if nullable else spec


DATASET = _s("name", "data set layout (synthau | emotionet | csv)")
DATA_ROOT = _s("str", "data root folder", nullable=True)
SEED = _s("int", "seed of the random draws", lo=0)
GROUP = _s("name", "AU group (built-in: aulib.aus.BUILTIN, or one of the profile's groups)")
RUNS = _s(("list",), "run names; null: every run of the group", item="name", nullable=True)
SPLIT = _s("name", "a split name (A, B, H, ...)")

PARAMS: dict[str, dict[str, Spec]] = {
    "01_data": {
        "dataset": DATASET, "data_root": DATA_ROOT,
        "labels_csv": _s("str", "csv data set: the label CSV, relative to the data root", nullable=True),
        "label_settings": _s("dict", "the data set's reader settings", nullable=True),
        "on_error": _s((), "a bad label line: raise (stop, naming file and line) or skip (drop it, listed)",
                       choices=("raise", "skip")),
        "synth_profile": _s("name", "SynthAU size (demo | ci)"),
        "seed": SEED, "n_examples": _s("int", "example images shown", lo=0),
    },
    "02_split": {
        "dataset": DATASET, "data_root": DATA_ROOT,
        "faces": _s("name", "face source: auto | mtcnn | a ground-truth face cache"),
        "sizes": _s("list", "crop sizes to build, in px", item="int", lo=8),
        "seed": SEED,
        "frac_b": _s("float", "share of images (subjects) in B, the split checkpoints are chosen on",
                     lo=0, hi=1, lo_open=True, hi_open=True),
        "b_copies": _s("int", "copies of B and H (degraded variants)", lo=1),
        "frac_holdout": _s("float", "share of images (subjects) held out as H", lo=0, hi=1, hi_open=True),
        "kfold": _s("int", "k-fold protocol: number of folds (0: off)", lo=0, hi=MAX_KFOLD),
        "fold": _s("int", "the test fold 1..kfold", lo=1, nullable=True),
        "published_folds": _s("name", "a published protocol's folds (bp4d_3fold, disfa_3fold, ...)", nullable=True),
        "num_workers": _s("int", "crop-building processes", lo=0),
        "codec": _s((), "crop-store codec", choices=("raw", "jpeg")),
        "quality": _s("int", "JPEG quality of codec jpeg", lo=1, hi=100),
        "stall_minutes": _s("float", "face detection or crop workers that finish nothing for this long stop the "
                            "step, naming the stuck files", lo=0, lo_open=True),
    },
    "03_noisy_filter": {
        "group": _train("group"),
        "base_run": _s("name", "an existing run; null: train <group>_base on A", nullable=True),
        "epoch": _s("int", "base model checkpoint; null: its best-average epoch on B", lo=1, nullable=True),
        "threshold": _s("float", "confidence t of the filtering rule", lo=0, hi=1),
        "base_epochs": _train("epochs", nullable=True), "backbones": _train("backbones", nullable=True),
        "img_size": _train("img_size", nullable=True), "batch_size": _train("batch_size", nullable=True),
        "lr": _train("lr", nullable=True),
    },
    "04_train": {
        **{k: _train(k) for k in ("group", "backbones", "stage", "epochs", "img_size", "batch_size", "lr", "ablate")},
        **{k: _train(k) for k in ("init_from", "run_name", "heldout")},
        "overrides": _s("dict", "any other TrainConfig key (python -m aulib.train --help lists them)",
                        nullable=True),
        "resume": _s("bool", "continue the run from its last complete epoch"),
        "overwrite": _s("bool", "start an existing run again"),
        "extend": _s("bool", "continue a finished run to `epochs`"),
        "nproc": _s("int", "processes (GPUs) under torchrun; 1: this kernel", lo=1),
        "nnodes": _s("int", "machines", lo=1),
        "rdzv_endpoint": _s("str", "HOST:PORT of node 0", nullable=True),
        "node_rank": _s("int", "this machine's number", lo=0),
    },
    "05_convergence": {"runs": RUNS, "group": GROUP, "split": SPLIT},
    "06_choose": {
        "group": GROUP, "runs": RUNS, "select_split": SPLIT,
        "heldout": _s("name", "held-out split; null: the runs' own", nullable=True),
        "folds": _s("int", "folds of the cross-fitted estimate", lo=2),
        "strategy": _s("str", "strategy saved as the chosen model"),
        "criterion": _s((), "per-AU score the choice maximises: final ((acc + F1) / 2, the challenge's) | f1 "
                            "(what BP4D / DISFA papers report)", choices=("final", "f1")),
    },
    "07_tables": {"table_spec": _s(("dict", "str"), "table spec (mapping or YAML path)", nullable=True),
                  "dataset": DATASET},
    "08_predict": {
        "groups": _s("list", "chosen models to use", item="name"),
        "images": _s(("list", "str"), "files, folders or videos", item="str", nullable=True),
        "out_csv": _s("str", "predictions CSV", nullable=True),
        "annotate_dir": _s("str", "folder of annotated pictures", nullable=True),
        "video_fps": _s("float", "frames per second sampled from videos", lo=0, lo_open=True),
        "device": _s("str", "auto | cpu | cuda"),
        "multicrop": _s("bool", "average each checkpoint over the multi-crop views"),
        "max_faces": _s("int", "faces shown in the figure", lo=1),
    },
    "09_kfold_summary": {},        # profile and workspace only: the folds and protocol are the profile's
}


def train_defaults(stem: str) -> dict:
    """{parameter: TrainConfig's default} of notebook ``stem``'s parameters that are
    TrainConfig keys with a default other than None (what a null in base.yaml means)."""
    return {k: copy.deepcopy(TRAIN_SPECS[k].default) for k, spec in PARAMS.get(stem, {}).items()
            if spec is TRAIN_SPECS.get(k) and TRAIN_SPECS[k].default is not None}


def check_params(stem: str, values: dict, where: str) -> None:
    """SettingError naming ``where``, the key, the value and what is allowed
    for the first parameter of notebook ``stem`` that its spec refuses
    (04_train's ``overrides``: every key against TrainConfig's). None is
    always allowed: it means "not set" (the built-in default, or TrainConfig's)."""
    specs = PARAMS.get(stem, {})
    for key, value in values.items():
        if key in specs and value is not None:
            check(specs[key], key, value, where)
    overrides = values.get("overrides") if stem == "04_train" else None
    if overrides:
        unknown = sorted(set(overrides) - set(TRAIN_SPECS))
        if unknown:
            raise SettingError(f"{where}: overrides sets {unknown}, which are no TrainConfig keys "
                               f"(python -m aulib.train --help lists them)")
        for key, value in overrides.items():
            check(TRAIN_SPECS[key], f"overrides.{key}", value, where)
    if stem == "02_split" and values.get("kfold") == 1:
        raise SettingError(f"{where}: kfold = 1 is not allowed; kfold must be 0 (off) or 2..{MAX_KFOLD}")

