"""Selection rules on arrays: which candidate (run, epoch) and which
threshold predict each AU, chosen on one set of labels.

Every rule takes ``labels`` (N, C) with 1 / 0 / -1 (unknown rows are left
out per AU) and ``probs`` (K, N, C) of K candidates on the same rows, and
returns per AU the candidate index (C,) and the threshold (C,) (decide
``prob >= threshold``, :func:`aulib.metrics.decide`):

- :func:`public_rule`: one candidate for all AUs, the best mean F1 at 0.5
  (what JAA-Net, ME-GraphAU, AU-Net and MDHR keep: one epoch of one model);
- :func:`fmae_iat_rule`: one candidate and one global threshold of the grid
  0.01 .. 0.99 by mean F1 (FMAE-IAT's ``AU_evaluate``);
- :func:`paper_rule`: per AU the candidate with the best score at 0.5, then
  the exact best threshold on it (the paper's Sec. 2.3; the ``threshold``
  strategy of :func:`choose_indices`);
- :func:`no_choice`: the last candidate at 0.5.

:func:`choose_indices` holds the strategies of 06_choose
(:mod:`aulib.select.choose`). ``criterion`` (:data:`CRITERIA`): the per-AU
score a per-AU choice maximises, ``final`` ((acc + F1) / 2, the challenge's)
or ``f1``. Ties go to the first candidate (the earliest epoch of the first
run) and, for thresholds, to the one nearest 0.5 (the grid's: the lowest).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..metrics import batched_scores, decide, scores_from_counts
from .threshold import CRITERIA, best_threshold, check_criterion

STRATEGIES = ("baseline", "chosen", "threshold", "average+threshold", "joint")
#: FMAE-IAT's threshold grid (engine_finetune.py: ``threshold = i * 0.01`` for i in 1..99).
FMAE_IAT_GRID = np.arange(1, 100) * 0.01


def _argmax_nan(a: np.ndarray, axis: int) -> np.ndarray:
    """argmax that treats NaN as -inf (first index on ties: the earliest epoch)."""
    return np.argmax(np.where(np.isnan(a), -np.inf, a), axis=axis)


def per_au_columns(probs: np.ndarray, idx: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(N, C) probabilities taking AU j from candidate ``idx[j]`` of (K, N, C),
    as ``dtype`` (None: the candidates' own, e.g. float16 for the threshold
    search, which counts float16 values instead of sorting)."""
    c = probs.shape[-1]
    return np.ascontiguousarray(np.asarray(probs[idx, :, np.arange(c)], dtype=dtype).T)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with warnings.catch_warnings():            # every AU without a known label: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis)


def _check(probs) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(f"probs must be (K, N, C) with K >= 1 candidates; got {probs.shape}")
    return probs


def choose_indices(labels: np.ndarray, probs: np.ndarray, strategy: str,
                   criterion: str = "final") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One 06_choose strategy on arrays: ``labels`` (N, C), ``probs`` (K, N, C)
    for K candidates. Returns per AU the candidate index (C,), threshold (C,)
    and the per-AU ``criterion`` score on these labels (C,)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    check_criterion(criterion)
    probs = _check(probs)
    c = probs.shape[-1]
    if strategy == "joint":
        thr_all, score_all = best_threshold(labels, probs, criterion=criterion)
        idx = _argmax_nan(score_all, 0)
        return idx, thr_all[idx, np.arange(c)], score_all[idx, np.arange(c)]
    at_half = batched_scores(labels, probs, 0.5)
    per_au = at_half[criterion]
    if strategy in ("baseline", "average+threshold"):
        mean = at_half["mean_final"] if criterion == "final" else _mean(per_au)
        idx = np.full(c, _argmax_nan(mean, 0))
    else:
        idx = _argmax_nan(per_au, 0)
    if strategy in ("baseline", "chosen"):
        return idx, np.full(c, 0.5), per_au[idx, np.arange(c)]
    thr, score = best_threshold(labels, per_au_columns(probs, idx, dtype=None), criterion=criterion)
    return idx, thr, score


def mean_f1(labels: np.ndarray, probs: np.ndarray, thresholds=0.5) -> np.ndarray:
    """Mean F1 over the AUs with known labels of each candidate (K,) at ``thresholds``."""
    return _mean(batched_scores(labels, _check(probs), thresholds)["f1"])


def public_rule(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One candidate for every AU: the best mean F1 at 0.5. (idx (C,), thr (C,))."""
    c = _check(probs).shape[-1]
    return np.full(c, _argmax_nan(mean_f1(labels, probs), 0)), np.full(c, 0.5)


def grid_mean_f1(labels: np.ndarray, probs: np.ndarray, grid=FMAE_IAT_GRID,
                 chunk_bytes: int = 256 << 20) -> np.ndarray:
    """Mean F1 over the AUs (K, G) of every candidate at every global threshold
    of ``grid`` (ascending), from per-(candidate, AU) histograms of where each
    probability falls in the grid: one pass over the data, no (K, G, N, C) array."""
    probs = _check(probs)
    grid = np.asarray(grid, np.float64)
    k_all, n, c = probs.shape
    g = len(grid)
    labels = np.asarray(labels)
    pos, known = (labels == 1), (labels >= 0)
    n_pos = pos.sum(0)
    out = np.empty((k_all, g))
    step = max(1, int(chunk_bytes // max(1, n * c * 24)))
    cols = np.arange(c) * (g + 1)
    for s in range(0, k_all, step):
        p = np.asarray(probs[s:s + step], np.float64)
        k = len(p)
        j = np.searchsorted(grid, p, side="right")              # grid values <= p: p >= grid[i] iff i < j
        flat = (j + cols + (np.arange(k) * c * (g + 1))[:, None, None]).ravel()
        size = k * c * (g + 1)
        hp = np.bincount(flat, weights=np.broadcast_to(pos, p.shape).ravel(), minlength=size)
        hk = np.bincount(flat, weights=np.broadcast_to(known, p.shape).ravel(), minlength=size)
        hp, hk = hp.reshape(k, c, g + 1), hk.reshape(k, c, g + 1)
        tp = np.cumsum(hp[..., ::-1], -1)[..., ::-1][..., 1:]     # (k, C, G): positives with p >= grid[i]
        pred = np.cumsum(hk[..., ::-1], -1)[..., ::-1][..., 1:]
        fn = n_pos[None, :, None] - tp
        _, f1, _ = scores_from_counts(tp, pred - tp, fn, (known.sum(0) - n_pos)[None, :, None] - (pred - tp))
        out[s:s + k] = _mean(f1, 1)
    return out


def fmae_iat_rule(labels: np.ndarray, probs: np.ndarray, grid=FMAE_IAT_GRID) -> tuple[np.ndarray, np.ndarray]:
    """One candidate and one global threshold of ``grid`` for every AU, the
    best mean F1 (first candidate, then lowest threshold, on ties)."""
    scores = grid_mean_f1(labels, probs, grid)
    k, i = np.unravel_index(_argmax_nan(scores.ravel(), 0), scores.shape)
    c = np.asarray(probs).shape[-1]
    return np.full(c, int(k)), np.full(c, float(np.asarray(grid)[i]))


def paper_rule(labels: np.ndarray, probs: np.ndarray, criterion: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Per AU the candidate with the best ``criterion`` at 0.5, then its exact best threshold."""
    idx, thr, _ = choose_indices(labels, probs, "threshold", criterion)
    return idx, thr


def no_choice(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last candidate (a run's last epoch) at 0.5."""
    k, _, c = _check(probs).shape
    return np.full(c, k - 1), np.full(c, 0.5)


def rule_decisions(probs: np.ndarray, idx: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """(N, C) 0/1 decisions of a rule's choice (idx, thr) on candidates ``probs``
    (K, N, C) of another (or the same) set of rows; compared in float64."""
    probs = np.asarray(probs)
    cols = np.asarray(probs[idx, :, np.arange(probs.shape[-1])]).T       # (N, C), dtype kept (float16 widened)
    return decide(cols.astype(np.result_type(np.float32, cols.dtype), copy=False), thr)


__all__ = ["CRITERIA", "STRATEGIES", "FMAE_IAT_GRID", "choose_indices", "mean_f1", "public_rule", "grid_mean_f1",
           "fmae_iat_rule", "paper_rule", "no_choice", "rule_decisions"]
