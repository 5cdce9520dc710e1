"""Folds that keep related rows together, for cross-fitted choice
(:mod:`aulib.select.choose`), ensembles (:mod:`aulib.select.ensemble`) and bootstrap
clusters (:func:`cluster_ids`, :mod:`aulib.report.bootstrap`):
the rows of one image (B's degraded copies share a fold) and, when the
workspace knows who is in each image (a generic CSV's ``subject`` column,
``labels/subjects.csv``), all images of one subject."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..data.sources import load_subjects
from ..data.splits import image_subjects

def group_folds(groups, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) per row, keeping rows of one group (subject or image) together.

    Unique groups are shuffled with ``seed`` and dealt round-robin, so folds
    hold about the same number of groups. Fewer groups than ``k`` (a B of a
    few subjects) gives one fold per group, with a warning; fewer than 2 is a ValueError."""
    groups = np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    if k < 2 or len(uniq) < 2:
        raise ValueError(f"need 2 <= folds and at least 2 groups (images or subjects) to cross-fit; got folds={k} "
                         f"and {len(uniq)} group(s): give the selection split more images or subjects (frac_b)")
    if k > len(uniq):
        warnings.warn(f"only {len(uniq)} groups (images or subjects) to cross-fit over; using {len(uniq)} folds "
                      f"instead of {k}", stacklevel=2)
        k = len(uniq)
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(len(uniq), np.int64)
    fold_of_group[rng.permutation(len(uniq))] = np.arange(len(uniq)) % k
    return fold_of_group[inverse.reshape(-1)]


def fold_groups(index: pd.DataFrame) -> np.ndarray:
    """What keeps rows of a prediction index together in a fold: its
    ``subject`` column, else ``image``, else each row alone (N,). A split of
    one subject cannot be cross-fitted by subject: its images are used, with a warning."""
    if "subject" in index.columns:
        if index["subject"].nunique() > 1:
            return index["subject"].astype(str).to_numpy()
        warnings.warn(f"the split holds one subject ({index['subject'].iloc[0]!r}), so its cross-fitted folds "
                      "keep images, not subjects, apart; raise frac_b to give B at least 2 subjects", stacklevel=2)
    if "image" in index.columns:
        return index["image"].astype(str).to_numpy()
    return np.arange(len(index))


def cluster_ids(index: pd.DataFrame) -> np.ndarray:
    """Cluster of every row of a split index (N,): ``subject`` when the index has
    that column, else ``image`` (B's degraded copies of one image together),
    else every row its own cluster."""
    for col in ("subject", "image"):
        if col in index.columns:
            return index[col].astype(str).to_numpy()
    return np.arange(len(index))


def add_subjects(index: pd.DataFrame, ws) -> pd.DataFrame:
    """``index`` with a ``subject`` column from the workspace's
    ``labels/subjects.csv`` (in place; unchanged when there is none)."""

    subjects = load_subjects(ws)
    if subjects is not None and "image" in index.columns and "subject" not in index.columns:
        index["subject"] = image_subjects(subjects, index["image"])
    return index
