"""Folds that keep the rows of one image together (B's degraded copies share a fold),
for cross-fitted choice (:mod:`aulib.select.choose`) and ensembles (:mod:`aulib.select.ensemble`)."""
from __future__ import annotations

import numpy as np


def group_folds(groups, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) per row, keeping rows of one group (image) together.

    Unique groups are shuffled with ``seed`` and dealt round-robin, so folds
    hold about the same number of groups."""
    groups = np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    if k < 2 or k > len(uniq):
        raise ValueError(f"need 2 <= folds <= number of images ({len(uniq)}); got folds={k}")
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(len(uniq), np.int64)
    fold_of_group[rng.permutation(len(uniq))] = np.arange(len(uniq)) % k
    return fold_of_group[inverse.reshape(-1)]
