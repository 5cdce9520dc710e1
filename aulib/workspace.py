"""Where every artefact of a pipeline lives: one :class:`Workspace` per profile.

Layout (all under ``runs/<profile>/`` by default; see docs/layout.md)::

    data/                 generated SynthAU data root (when dataset = synthau)
    labels/<split>.csv    label tables: image, AU1..AU56 (int8: 1, 0, -1 unknown)
    faces.csv             face cache: one row per image (box, score, 5 landmarks)
    crops/<style>_<size>/ crop stores (uint8, memory-mapped)
    splits/<name>.csv     image, variant, AU columns (A, B, C, noisy, validation, test)
    train/<run_name>/     run directories (config.yaml, log.csv, preds/, checkpoints/)
    chosen/<group>.yaml   chosen model descriptions (per AU: run, epoch, threshold)
    notebooks/            executed notebook copies (pipeline runner)
    results/              figures/ and tables/ of this profile (demo: the repo's results/)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The project root: ``AULIB_ROOT`` if set, else the folder holding
    pyproject.toml above this package, else the current directory."""
    env = os.environ.get("AULIB_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Workspace:
    """Paths of one pipeline's artefacts. Creating it touches no disk."""

    root: Path
    results: Path

    @classmethod
    def for_profile(cls, profile: str, root: str | os.PathLike | None = None,
                    results: str | os.PathLike | None = None) -> "Workspace":
        """Workspace of a profile: ``runs/<profile>`` under the repo root.
        The ``demo`` profile in its default place writes figures/tables to the repo's
        ``results/`` (committed); other profiles keep them inside the workspace."""
        base = repo_root()
        default_root = (base / "runs" / profile).resolve()
        ws_root = Path(root).resolve() if root else default_root
        if results is None:
            results = base / "results" if (profile == "demo" and ws_root == default_root) else ws_root / "results"
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

    def chosen(self, group: str) -> Path:
        return self.root / "chosen" / f"{group}.yaml"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def figures(self) -> Path:
        return self.results / "figures"

    @property
    def tables(self) -> Path:
        return self.results / "tables"
