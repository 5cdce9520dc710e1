"""Where every artefact of a pipeline lives: one :class:`Workspace` per profile.

Layout (all under ``runs/<profile>/`` by default; see docs/layout.md)::

    data/                 generated SynthAU data root (when dataset = synthau)
    labels/<split>.csv    label tables: image, AU1..AU56 (int8: 1, 0, -1 unknown)
    faces.csv             face cache: one row per image (box, score, 5 landmarks)
    crops/<style>_<size>/ crop stores (uint8, memory-mapped)
    splits/<name>.csv     image, variant, AU columns (A, B, C, noisy, validation, test)
    train/<run_name>/     run directories (config.yaml, log.csv, preds/, checkpoints/)
    chosen/<group>.yaml   chosen model descriptions (per AU: run, epoch, threshold)
    notebooks/            executed notebook copies and their stamps (<step>.ipynb, <step>.stamp.yaml)
    results/              figures/ and tables/ of this profile (the project's results/ is a published copy:
                          ``python -m aulib.pipeline --profile demo --publish``)

A run directory's own layout is known only to :class:`RunDir`.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

_CHECKPOINT = re.compile(r"^epoch(\d+)\.pt$")


#: Environment variable naming the project root; it wins over every other rule.
ROOT_ENV = "AULIB_ROOT"
#: What makes a folder a project root: it holds the profiles of its notebooks.
PROJECT_MARK = Path("notebooks") / "profiles"


class ProjectRootWarning(UserWarning):
    """The project found from the current folder is not the clone aulib is imported from."""


_WARNED: set[tuple[Path, Path]] = set()     # (project, clone) pairs already warned of in this process


def package_clone() -> Path | None:
    """The clone this package is imported from (the folder holding
    pyproject.toml above it), or None for an installed package."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else None


def project_from(folder: str | os.PathLike) -> Path | None:
    """The nearest folder at or above ``folder`` that holds ``notebooks/profiles/``, or None."""
    start = Path(folder).resolve()
    return next((d for d in (start, *start.parents) if (d / PROJECT_MARK).is_dir()), None)


def repo_root() -> Path:
    """The project root, where profiles (``notebooks/profiles/``) and
    workspaces (``runs/<profile>/``) are: ``AULIB_ROOT`` if set; else the
    project folder the process runs in (the nearest folder at or above the
    current directory holding ``notebooks/profiles/``: a notebook's kernel
    runs in its own folder), with a :class:`ProjectRootWarning` when that is
    not the clone aulib is imported from; else that clone; else the current
    directory."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).resolve()
    try:
        cwd = Path.cwd().resolve()
    except FileNotFoundError:          # the current folder was deleted
        cwd = None
    clone = package_clone()
    found = project_from(cwd) if cwd is not None else None
    if found is not None:
        if clone is not None and found != clone and (found, clone) not in _WARNED:
            _WARNED.add((found, clone))
            warnings.warn(f"aulib: the project is {found} (the folder this runs in), while aulib is imported from "
                          f"the clone {clone}; profiles are read and workspaces written under {found}. Set "
                          f"{ROOT_ENV} to choose the project explicitly.", ProjectRootWarning, stacklevel=2)
        return found
    return clone or cwd or Path("/").resolve()


@dataclass(frozen=True)
class Workspace:
    """Paths of one pipeline's artefacts. Creating it touches no disk."""

    root: Path
    results: Path

    @classmethod
    def for_profile(cls, profile: str, root: str | os.PathLike | None = None,
                    results: str | os.PathLike | None = None) -> "Workspace":
        """Workspace of a profile: ``runs/<profile>`` under the project root
        (:func:`repo_root`; a name that would leave ``runs/`` is refused unless
        ``root`` is given). Figures and tables go to ``<workspace>/results``
        (``results`` overrides) for every profile; the project's own
        ``results/`` changes only by :func:`aulib.pipeline.publish.publish`."""
        base = repo_root()
        default_root = (base / "runs" / profile).resolve()
        if root is None and default_root.parent != (base / "runs").resolve():
            raise ValueError(f"profile name {profile!r} would put the workspace at {default_root}, outside "
                             f"{base / 'runs'}; give the profile a plain name (no '/' or '..'), or give the "
                             "workspace explicitly (--workspace DIR, the notebooks' workspace parameter)")
        ws_root = Path(root).resolve() if root else default_root
        if results is None:
            results = ws_root / "results"
        return cls(ws_root, Path(results).resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    def labels(self, split: str) -> Path:
        return self.root / "labels" / f"{split}.csv"

    @property
    def faces(self) -> Path:
        return self.root / "faces.csv"

    def crops(self, style: str, size: int) -> Path:
        return self.root / "crops" / f"{style}_{int(size)}"

    def split(self, name: str) -> Path:
        return self.root / "splits" / f"{name}.csv"

    @property
    def train(self) -> Path:
        return self.root / "train"

    def run(self, run_name: str) -> Path:
        return self.train / run_name

    def run_dir(self, run_name: str) -> "RunDir":
        return RunDir(self.run(run_name))

    def chosen(self, group: str) -> Path:
        return self.root / "chosen" / f"{group}.yaml"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    def fold(self, k: int) -> "Workspace":
        """Workspace of fold ``k`` (1-based) of a k-fold protocol: ``<root>/fold<k>``, results inside it."""
        root = self.root / f"fold{int(k)}"
        return Workspace(root, root / "results")

    def executed(self, step: str) -> Path:
        """The executed copy of pipeline step ``step``: ``notebooks/<step>.ipynb``."""
        return self.notebooks / f"{step}.ipynb"

    def stamp(self, step: str) -> Path:
        """The stamp of pipeline step ``step`` (its fingerprint, seconds, parameters): ``notebooks/<step>.stamp.yaml``."""
        return self.notebooks / f"{step}.stamp.yaml"

    @property
    def figures(self) -> Path:
        return self.results / "figures"

    @property
    def tables(self) -> Path:
        return self.results / "tables"


@dataclass(frozen=True)
class RunDir:
    """The layout of one run directory (docs/layout.md, "Run directory"); the
    only code that spells its file names. Creating it touches no disk; usable
    wherever a path is (``os.fspath``)::

        config.yaml  log.csv  preds/<split>_index.csv (+ .npz twin)  preds/<split>_epoch<NNN>.npy
        checkpoints/epoch<NNN>.pt  events/ (TensorBoard event files, when tensorboard is installed)

    Epochs are 1-based, zero-padded to three digits.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(getattr(self.path, "path", self.path)))

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log(self) -> Path:
        return self.path / "log.csv"

    @property
    def events(self) -> Path:
        """TensorBoard event files of the run (``tensorboard --logdir <workspace>/train``)."""
        return self.path / "events"

    @property
    def launch_config(self) -> Path:
        """Resolved config handed to a torchrun child (beside the run directory)."""
        return self.path.parent / f".{self.path.name}.launch.yaml"

    @property
    def lock(self) -> Path:
        """Lock file of the process writing the run (``aulib.lock``), beside the run directory."""
        return self.path.parent / f".{self.path.name}.lock"

    @property
    def preds_dir(self) -> Path:
        return self.path / "preds"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @staticmethod
    def pred_name(split: str, multicrop: bool = False) -> str:
        """File stem of a split's predictions: ``<split>`` or, multi-crop, ``<split>_mc``."""
        return f"{split}_mc" if multicrop else split

    def preds(self, split: str, epoch: int) -> Path:
        """``preds/<split>_epoch<NNN>.npy``: float16 (N, C) probabilities."""
        return self.preds_dir / f"{split}_epoch{int(epoch):03d}.npy"

    def index(self, split: str) -> Path:
        """``preds/<split>_index.csv``: image, variant, AU label columns."""
        return self.preds_dir / f"{split}_index.csv"

    def index_twin(self, split: str) -> Path:
        """``preds/<split>_index.npz``: the index's checked parse as arrays, a cache
        for reading it fast (:mod:`aulib.pred_index`, which alone writes and reads it)."""
        return self.twin_of(self.index(split))

    @staticmethod
    def twin_of(index: Path) -> Path:
        """The twin of an index file ``<name>_index.csv`` (wherever it lies): ``<name>_index.npz``."""
        return Path(index).with_suffix(".npz")

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints_dir / f"epoch{int(epoch):03d}.pt"

    def checkpoint_epochs(self) -> list[int]:
        """Epochs with a checkpoint file, sorted."""
        d = self.checkpoints_dir
        return sorted(int(m.group(1)) for p in d.iterdir() if (m := _CHECKPOINT.match(p.name))) if d.is_dir() else []

    def pred_epochs(self, split: str) -> list[int]:
        """Epochs with a ``preds/<split>_epoch<NNN>.npy`` file, sorted."""
        pat = re.compile(rf"^{re.escape(split)}_epoch(\d+)\.npy$")
        d = self.preds_dir
        return sorted(int(m.group(1)) for p in d.iterdir() if (m := pat.match(p.name))) if d.is_dir() else []

    def pred_splits(self) -> list[str]:
        """Splits with an index file, sorted."""
        d = self.preds_dir
        return sorted(p.name[: -len("_index.csv")] for p in d.glob("*_index.csv")) if d.is_dir() else []

    def read_log(self) -> pd.DataFrame:
        """``log.csv`` (one row per finished epoch); an empty frame with an
        ``epoch`` column before the first epoch. A log without an ``epoch``
        column gets one (1, 2, ... in row order)."""
        if not self.log.exists() or self.log.stat().st_size == 0:
            return pd.DataFrame({"epoch": pd.Series([], dtype=np.int64)})
        log = pd.read_csv(self.log)
        if "epoch" not in log.columns:
            log.insert(0, "epoch", np.arange(1, len(log) + 1))
        return log

    def logged_epochs(self) -> set[int]:
        return {int(e) for e in self.read_log()["epoch"]}

    def last_complete_epoch(self) -> int:
        """The last epoch with both a log row and a checkpoint (0: none)."""
        logged = self.logged_epochs()
        return max((e for e in self.checkpoint_epochs() if e in logged), default=0)
