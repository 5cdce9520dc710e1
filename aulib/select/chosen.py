"""Chosen-model files (docs/layout.md, "Chosen model"): per AU the run,
epoch and threshold (and an optional linear ensemble) that predict it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..aus import BUILTIN, AUGroup, make_group
from ..io import read_yaml, write_yaml
from ..settings import one_line
from ..workspace import RunDir
from .ensemble import LinearEnsemble
from .threshold import CRITERIA


@dataclass
class ChosenModel:
    """The chosen-model file (docs/layout.md, "Chosen model").

    ``runs``: run name -> {dir (relative to the workspace root), backbones,
    img_size, crop_style}; ``per_au``: one {au, run, epoch, threshold} per AU
    of the group, in group order; ``ensemble``: None or {runs, coef (C, R),
    intercept (C,)} (written by the ensemble step); ``choice``: None or
    {strategy, split, candidates, criterion}: how the per-AU choice was made
    (the strategy of :mod:`aulib.select.choose`, the split it was made on, the
    runs it chose among, the score it maximised: ``final`` or ``f1``; files
    without ``criterion`` chose by ``final``), so it can be made again on another split
    (:mod:`aulib.report.benchmark`)."""

    group: str
    aus: list[int]
    runs: dict[str, dict]
    per_au: list[dict]
    ensemble: dict | None = None
    choice: dict | None = None

    @classmethod
    def from_choice(cls, choice, group: str, workspace_root, run_dirs: dict[str, Path] | list):
        """Chosen model of a :class:`aulib.select.choose.Choice`; ``run_dirs`` maps run names to
        their folders (or is the list of :class:`aulib.runs.RunPreds` the choice came from)."""
        if isinstance(run_dirs, list):
            run_dirs = {r.run_name: r.run_dir for r in run_dirs}
        root = Path(workspace_root).resolve()
        runs = {}
        for name in dict.fromkeys(choice.run):
            d = Path(run_dirs[name]).resolve()
            cfg = read_yaml(RunDir(d).config) or {}
            rel = d.relative_to(root).as_posix() if d.is_relative_to(root) else str(d)  # outside: absolute
            runs[name] = {"dir": rel,
                          "backbones": [str(b) for b in cfg.get("backbones") or []],
                          "img_size": cfg.get("img_size"), "crop_style": cfg.get("crop_style")}
        per_au = [{"au": int(a), "run": r, "epoch": int(e), "threshold": float(t)}
                  for a, r, e, t in zip(choice.aus, choice.run, choice.epoch, choice.threshold)]
        how = {"strategy": str(choice.strategy), "split": str(choice.split), "candidates": [str(n) for n in run_dirs],
               "criterion": str(getattr(choice, "criterion", "final"))}
        return cls(group, [int(a) for a in choice.aus], runs, per_au, choice=how)

    def to_dict(self) -> dict:
        out = {"group": self.group, "aus": list(self.aus), "runs": self.runs, "per_au": self.per_au,
               "ensemble": self.ensemble}
        return out if self.choice is None else {**out, "choice": self.choice}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_au).set_index("au")

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([p["threshold"] for p in self.per_au], dtype=np.float64)

    @property
    def au_group(self) -> AUGroup:
        """The model's :class:`aulib.aus.AUGroup`: its group name, AUs and the
        crop style of its runs (the built-in group's when they record none)."""
        crops = [r.get("crop_style") for r in self.runs.values() if isinstance(r, dict)]
        builtin = BUILTIN.get(self.group)
        crop = next((c for c in crops if c), builtin.crop if builtin else "aligned")
        return AUGroup(self.group, tuple(int(a) for a in self.aus), crop)

    def run_dir(self, name: str, workspace_root) -> Path:
        return Path(workspace_root) / self.runs[name]["dir"]


def save_chosen(path, chosen: ChosenModel) -> None:
    """Write a chosen-model YAML atomically."""
    write_yaml(path, chosen.to_dict())


def _default_workspace_root(path: Path) -> Path:
    # chosen files live at <workspace>/chosen/<group>.yaml
    return path.resolve().parent.parent


def load_chosen(path, workspace_root=None, check_files: bool = True) -> ChosenModel:
    """Read and validate a chosen-model YAML.

    Checks: ``aus`` is the built-in group's AU list, or (a profile's own
    group) a valid list of catalog AUs, which defines the group for this file
    alone (:attr:`ChosenModel.au_group`; nothing is registered); ``per_au``
    has exactly one entry per AU naming a listed run, an epoch >= 1 and a
    finite threshold; the ensemble (if any) has matching shapes. With
    ``check_files`` also that each run folder and the checkpoint of every
    chosen epoch exist (``workspace_root`` defaults to the folder above
    ``chosen/``). Errors name the file and the AU or run at fault.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"chosen-model file {path} not found; run notebooks/06_choose.ipynb to make it")
    def fail(msg):
        raise ValueError(f"{path}: {msg}")

    try:
        raw = read_yaml(path)
    except yaml.YAMLError as err:   # e.g. a !!python/object tag, which safe_load does not construct
        fail(f"not a chosen-model file: {one_line(err)}; write it with "
             "aulib.select.chosen.save_chosen (notebooks/06_choose.ipynb)")
    except UnicodeDecodeError as err:
        fail(f"not a UTF-8 text file ({err.reason} at byte {err.start}); give the chosen/<group>.yaml file")

    if not isinstance(raw, dict):
        fail("must be a mapping with keys group, aus, runs, per_au")
    missing = [k for k in ("group", "aus", "runs", "per_au") if k not in raw]
    if missing:
        fail(f"missing keys {missing}")
    group = raw["group"]
    aus = [int(a) for a in raw["aus"] or []]
    if not isinstance(group, str):
        fail(f"group must be a group name such as 17au, got {group!r}")
    # the file records its group's AUs, so a profile's own group is known from it alone (nothing is registered)
    if group in BUILTIN and tuple(aus) != BUILTIN[group].aus:
        fail(f"aus {aus} do not match group {group}'s AUs {list(BUILTIN[group].aus)}")
    if group not in BUILTIN:
        make_group(group, aus, where=str(path))      # a valid definition (errors name the file)
    runs = raw["runs"]
    if not isinstance(runs, dict) or not runs:
        fail("'runs' must map run names to {dir, backbones, img_size, crop_style}")
    for name, info in runs.items():
        if not isinstance(info, dict) or "dir" not in info:
            fail(f"run {name!r} needs a 'dir' (path relative to the workspace)")
    per_au = raw["per_au"]
    if not isinstance(per_au, list):
        fail("'per_au' must be a list of {au, run, epoch, threshold}")
    by_au = {}
    for i, entry in enumerate(per_au):
        if not isinstance(entry, dict) or not {"au", "run", "epoch", "threshold"} <= set(entry):
            fail(f"per_au entry {i + 1} must have au, run, epoch, threshold; got {entry!r}")
        au = int(entry["au"])
        if au in by_au:
            fail(f"AU {au} appears twice in per_au")
        if au not in aus:
            fail(f"per_au names AU {au}, which is not in group {group}")
        if entry["run"] not in runs:
            fail(f"AU {au} uses run {entry['run']!r}, which is not listed under 'runs' ({sorted(runs)})")
        epoch = entry["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            fail(f"AU {au}: epoch must be an integer >= 1, got {epoch!r}")
        thr = entry["threshold"]
        if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not math.isfinite(thr):
            fail(f"AU {au}: threshold must be a finite number, got {thr!r}")
        by_au[au] = {"au": au, "run": entry["run"], "epoch": int(epoch), "threshold": float(thr)}
    lacking = [a for a in aus if a not in by_au]
    if lacking:
        fail(f"per_au has no entry for AUs {lacking}")
    ens = raw.get("ensemble")
    if ens is not None:
        if not isinstance(ens, dict):
            fail("'ensemble' must be null or a mapping {runs, coef, intercept, ...}")
        try:
            lin = LinearEnsemble.from_dict(ens)
        except ValueError as err:
            fail(str(err))
        unknown = [r for r in lin.runs if r not in runs]
        if unknown or not lin.runs:
            fail(f"ensemble must name its runs, each listed under 'runs'; unknown: {unknown}")
        if lin.coef.shape[0] != len(aus):
            fail(f"ensemble coef has {lin.coef.shape[0]} rows, expected one per AU ({len(aus)})")
    how = raw.get("choice")
    if how is not None:
        ok = (isinstance(how, dict) and isinstance(how.get("strategy"), str) and isinstance(how.get("split"), str)
              and isinstance(how.get("candidates"), list) and all(isinstance(n, str) for n in how["candidates"])
              and how.get("criterion", "final") in CRITERIA)
        if not ok:
            fail(f"'choice' must be null or {{strategy, split, candidates: [run names], criterion: "
                 f"{' | '.join(CRITERIA)}}}, got {how!r}")
    chosen = ChosenModel(group, aus, runs, [by_au[a] for a in aus], ens, how)
    if check_files:
        root = Path(workspace_root) if workspace_root is not None else _default_workspace_root(path)
        for name in runs:
            d = chosen.run_dir(name, root)
            if not RunDir(d).config.exists():
                fail(f"run {name!r}: {RunDir(d).config} not found (dir is relative to the workspace {root})")
        needed = [(p["au"], p["run"], p["epoch"]) for p in chosen.per_au]
        if ens is not None and lin.epochs is not None:
            needed = [(a, r, int(lin.epochs[c, j])) for c, a in enumerate(aus) for j, r in enumerate(lin.runs)]
        elif ens is not None:
            needed += [(p["au"], r, p["epoch"]) for p in chosen.per_au for r in lin.runs]
        for au, run, epoch in needed:
            ckpt = RunDir(chosen.run_dir(run, root)).checkpoint(epoch)
            if not ckpt.exists():
                fail(f"AU {au}: checkpoint {ckpt} not found (run {run}, epoch {epoch}); "
                     "the run's checkpoints were deleted or the workspace moved")
    return chosen
