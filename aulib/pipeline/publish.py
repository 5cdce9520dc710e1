"""``python -m aulib.pipeline --profile demo --publish``: the one way the
project's committed ``results/`` changes.

Notebooks write figures and tables into their workspace
(``runs/<profile>/results/``); :func:`publish` copies that folder over the
project's ``results/`` (:func:`results_dir`). Files of ``results/`` the
workspace lacks (a benchmark's table written there by hand) are kept and
listed. The new folder is built beside the old one and swapped in by two
renames, so ``results/`` is never half-copied: a failed copy leaves it as
it was.
"""
from __future__ import annotations

import filecmp
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..io import temp_path
from ..workspace import repo_root


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did, as paths relative to ``dest``: ``changed``
    (new or different files), ``same`` (copied, identical), ``kept`` (in
    ``dest`` only, left as they were)."""

    dest: Path
    changed: list[str]
    same: list[str]
    kept: list[str]

    def summary(self) -> str:
        lines = [f"published to {self.dest}: {len(self.changed)} file(s) new or changed, "
                 f"{len(self.same)} unchanged"]
        lines += [f"  changed  {p}" for p in self.changed]
        if self.kept:
            lines.append(f"  kept (not in the workspace's results; delete them by hand if stale): {', '.join(self.kept)}")
        return "\n".join(lines)


def results_dir() -> Path:
    """The project's committed results folder: ``<project root>/results``."""
    return repo_root() / "results"


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def publish(source: str | Path, dest: str | Path | None = None) -> Published:
    """Copy the workspace results folder ``source`` over ``dest`` (default
    :func:`results_dir`) in one swap; returns what changed. Refuses an empty
    or missing ``source`` and folders inside one another."""
    source = Path(source).resolve()
    dest = Path(dest).resolve() if dest is not None else results_dir()
    mine = _files(source)
    if not mine:
        raise FileNotFoundError(f"nothing to publish: {source} holds no files; run the pipeline first "
                                "(python -m aulib.pipeline --profile <name>)")
    if source == dest or dest in source.parents or source in dest.parents:
        raise ValueError(f"cannot publish {source} to {dest}: one folder is inside the other")
    old = _files(dest)
    changed = [p for p in mine if p not in old or not filecmp.cmp(source / p, dest / p, shallow=False)]
    staged, retired = temp_path(dest), temp_path(dest)
    try:
        if dest.is_dir():
            shutil.copytree(dest, staged, symlinks=True)
        shutil.copytree(source, staged, dirs_exist_ok=True)
        if dest.exists():
            dest.rename(retired)
        staged.rename(dest)
    finally:
        if staged.exists():
            shutil.rmtree(staged)
        if retired.exists():
            if dest.exists():
                shutil.rmtree(retired)
            else:                       # the second rename failed: the old folder goes back
                retired.rename(dest)
    return Published(dest, changed, [p for p in mine if p not in changed], [p for p in old if p not in mine])
