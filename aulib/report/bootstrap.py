"""Paired cluster bootstrap intervals for gains in the challenge final score.

A gain is ``final(system a) - final(system b)`` on the same rows (final =
(mean acc + mean F1) / 2 over the AUs, :mod:`aulib.metrics`). Its 95 %
interval resamples *clusters* of rows with replacement (B's four degraded
copies of an image are one cluster; a subject's images, where a ``subject``
column is known), the same resample for every system (paired), and takes the
2.5 / 97.5 percentiles of the resampled gains.

Vectorised: per-cluster counts ``pos, neg, tp[s], fp[s]`` (K, F) are summed
once; a resample is a row of multinomial cluster counts, so every resample's
per-AU TP/FP/FN/TN is one matrix product ``W (B, K) @ counts (K, F)``.

An AU whose labels a resample leaves all unknown is left out of that
resample's means (as :func:`aulib.metrics.summarize` leaves it out).
Cross-fitted decisions are resampled as they are: the interval does not
include the variability of refitting the folds.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..metrics import scores_from_counts


def cluster_ids(index: pd.DataFrame) -> np.ndarray:
    """Cluster of every row of a split index (N,): ``subject`` when the index has
    that column, else ``image`` (B's degraded copies of one image together),
    else every row its own cluster."""
    for col in ("subject", "image"):
        if col in index.columns:
            return index[col].astype(str).to_numpy()
    return np.arange(len(index))


def cluster_counts(labels: np.ndarray, decisions: np.ndarray, clusters) -> np.ndarray:
    """Per-cluster counts (K, 2 C + 2 S C) float64, clusters in ``np.unique`` order.

    labels (N, C) 1/0/-1; decisions (S, N, C) 0/1 of S systems on the same
    rows; clusters (N,). Columns: positives (C), negatives (C), then TP (S, C)
    and FP (S, C) flattened."""
    labels = np.asarray(labels)
    decisions = np.asarray(decisions).astype(bool)
    s_count, n, c = decisions.shape
    if labels.shape != (n, c):
        raise ValueError(f"labels have shape {labels.shape}, decisions rows x AUs are {(n, c)}")
    clusters = np.asarray(clusters)
    if clusters.shape != (n,):
        raise ValueError(f"clusters must have one entry per row ({n}), got shape {clusters.shape}")
    _, inv = np.unique(clusters, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
    pos, neg = labels == 1, labels == 0
    tp = np.moveaxis(decisions & pos, 0, 1).reshape(n, s_count * c)
    fp = np.moveaxis(decisions & neg, 0, 1).reshape(n, s_count * c)
    x = np.concatenate([pos, neg, tp, fp], axis=1)[order].astype(np.float64)
    return np.add.reduceat(x, starts, axis=0)


#: What :func:`boot_finals` scores: the challenge final score, or mean F1 / accuracy over the AUs.
METRICS = ("final", "f1", "acc")


def _finals(counts: np.ndarray, s_count: int, c: int, metric: str = "final") -> np.ndarray:
    """Scores (B, S) from summed counts (B, 2 C + 2 S C): ``metric`` of :data:`METRICS`."""
    b = counts.shape[0]
    pos, neg = counts[:, None, :c], counts[:, None, c:2 * c]
    tp = counts[:, 2 * c:2 * c + s_count * c].reshape(b, s_count, c)
    fp = counts[:, 2 * c + s_count * c:].reshape(b, s_count, c)
    acc, f1, _ = scores_from_counts(tp, fp, pos - tp, neg - fp)
    with warnings.catch_warnings():            # a resample without any known label of every AU: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        if metric == "f1":
            return np.nanmean(f1, -1)
        if metric == "acc":
            return np.nanmean(acc, -1)
        return (np.nanmean(acc, -1) + np.nanmean(f1, -1)) / 2


def resample_weights(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_clusters) float64 multinomial counts: how often each cluster is
    drawn in each resample of ``n_clusters`` draws with replacement."""
    idx = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    flat = (idx + np.arange(n_boot)[:, None] * n_clusters).ravel()
    return np.bincount(flat, minlength=n_boot * n_clusters).reshape(n_boot, n_clusters).astype(np.float64)


def boot_finals(labels, decisions, clusters, n_boot: int = 1000, seed: int = 0, weights=None,
                chunk: int = 100, metric: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Final scores (``metric``: or mean F1, mean accuracy) of S systems on
    the data (S,) and on each resample (B, S).

    ``weights`` (B, K): explicit cluster counts (clusters in ``np.unique``
    order) instead of ``n_boot`` seeded multinomial draws. Resamples are made
    ``chunk`` at a time, so memory stays at ``chunk x K``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    decisions = np.asarray(decisions)
    s_count, _, c = decisions.shape
    counts = cluster_counts(labels, decisions, clusters)
    point = _finals(counts.sum(0, keepdims=True), s_count, c, metric)[0]
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != counts.shape[0]:
            raise ValueError(f"weights must be (B, {counts.shape[0]} clusters), got {w.shape}")
        return point, _finals(w @ counts, s_count, c, metric)
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, s_count))
    for s in range(0, n_boot, chunk):
        w = resample_weights(counts.shape[0], min(chunk, n_boot - s), rng)
        out[s:s + len(w)] = _finals(w @ counts, s_count, c, metric)
    return point, out


def paired_gains(labels, decisions, clusters, pairs, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> pd.DataFrame:
    """Gain of system ``a`` over ``b`` for every ``(a, b)`` in ``pairs`` (indices
    into the S systems of ``decisions`` (S, N, C)), with its paired cluster
    bootstrap interval. Returns one row per pair: ``a, b, gain, lo, hi``
    (final-score units) and ``nonzero`` (the interval excludes 0)."""
    point, boot = boot_finals(labels, decisions, clusters, n_boot, seed)
    tail = 100 * (1 - level) / 2
    rows = []
    for a, b in pairs:
        g = boot[:, a] - boot[:, b]
        lo, hi = np.nanpercentile(g, [tail, 100 - tail]) if np.isfinite(g).any() else (np.nan, np.nan)
        rows.append({"a": a, "b": b, "gain": point[a] - point[b], "lo": lo, "hi": hi,
                     "nonzero": bool(lo > 0 or hi < 0)})
    return pd.DataFrame(rows, columns=["a", "b", "gain", "lo", "hi", "nonzero"])
