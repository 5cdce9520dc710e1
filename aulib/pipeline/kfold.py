"""The k-fold subject-exclusive protocol BP4D/DISFA papers report.

A profile with ``protocol: {kfold: K}`` runs all its steps once per fold,
each in its own workspace ``<workspace>/fold<k>/`` where notebook 02_split
makes the test fold ``k`` the held-out split ``H`` (:func:`aulib.data.splits.kfold_split`:
folds stratified and, with subjects, subject-exclusive; A/B from the other
folds; fold k > 1 reuses fold 1's faces and crops, :func:`share_data`).
After the folds the runner runs one step more in the top workspace,
:func:`summary_step`: notebook ``09_kfold_summary``, which scores every fold's
chosen model on its test fold (:func:`aulib.report.kfold.write_kfold_summaries`:
the k-fold summary and benchmark tables). Its fingerprint chains on from every
fold's last step (:func:`aulib.pipeline.cli.summary_states`), so it reruns when
a fold changed and is skipped when none did; ``--only`` selects it with a step
it is made from (:data:`SUMMARY_STEMS`).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..workspace import Workspace
from .profile import Profile, Step

#: Notebooks whose output the summaries are made from (chosen models: 06_choose's, 07_tables' full system).
SUMMARY_STEMS = ("06_choose", "07_tables")
#: The notebook of the k-fold summary, run once after the folds in the top workspace.
SUMMARY_NOTEBOOK = "09_kfold_summary.ipynb"


def fold_workspace(ws: Workspace, fold: int) -> Workspace:
    """Workspace of fold ``fold`` (1-based): ``<ws.root>/fold<k>``, results inside it (:meth:`Workspace.fold`)."""
    return ws.fold(fold)


def summary_step(profile: Profile) -> Step:
    """The k-fold summary's step: :data:`SUMMARY_NOTEBOOK`, selected by ``--only``
    also through the profile's steps it is made from (:data:`SUMMARY_STEMS`)."""
    return Step(SUMMARY_NOTEBOOK, Path(SUMMARY_NOTEBOOK).stem,
                selected_by=tuple(s.name for s in profile.steps if s.stem in SUMMARY_STEMS))


def share_data(src: Workspace, dst: Workspace) -> list[Path]:
    """Hard-link (or copy) ``src``'s face cache and complete crop stores into
    ``dst`` where it has none, so fold k > 1 does not detect faces and crop
    again: every fold reads the same images, and notebook 02_split resumes
    from complete files (it checks their images and faces). Returns the files shared."""
    pairs = [(src.faces, dst.faces)] if src.faces.exists() and not dst.faces.exists() else []
    for store in sorted((src.root / "crops").glob("*_*")):
        done, target = store / "done.npy", dst.root / "crops" / store.name
        if target.exists() or not (done.exists() and (store / "meta.yaml").exists() and np.load(done).all()):
            continue
        pairs += [(f, target / f.name) for f in store.iterdir() if f.is_file()]
    for a, b in pairs:
        b.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    return [b for _, b in pairs]
