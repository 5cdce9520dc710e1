"""Paired cluster bootstrap intervals for gains in the challenge final score.

A gain is ``final(system a) - final(system b)`` on the same rows (final =
(mean acc + mean F1) / 2 over the AUs, :mod:`aulib.metrics`). Its 95 %
interval resamples *clusters* of rows with replacement (B's four degraded
copies of an image are one cluster; a subject's images, where a ``subject``
column is known), the same resample for every system (paired); the interval
from the resampled gains is the basic (reverse-percentile) one with tails
expanded for the number of clusters (:func:`interval`), whose coverage
``benchmarks/bench_coverage.py`` measures at the benchmarks' sizes (0.91 or
more for scores and paired differences; the percentile interval covered
0.47-0.99 there).

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
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..metrics import scores_from_counts


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
    idx += np.arange(n_boot)[:, None] * n_clusters            # in place: at 400,000 clusters each copy is 0.3 GB
    counts = np.bincount(idx.ravel(), minlength=n_boot * n_clusters)
    del idx
    return counts.reshape(n_boot, n_clusters).astype(np.float64)


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


#: Interval methods of :func:`interval`. The kit's (:data:`INTERVAL`, with ``n`` given) was chosen by
#: coverage measured at the benchmarks' sizes (``benchmarks/bench_coverage.py``, docs/benchmarks.md).
INTERVAL_METHODS = ("percentile", "basic", "bca")
#: For a score or a difference of fixed systems (the choices made once).
INTERVAL = "basic"
#: For a statistic whose choice is re-made in every resample (e.g. the best candidate's score: the
#: max over candidates per resample): reflecting would double the selection's bias.
SELECTION_INTERVAL = "percentile"
_NORMAL = NormalDist()


def jackknife_finals(labels, decisions, clusters, metric: str = "final") -> np.ndarray:
    """Scores (K, S) of S systems with one cluster left out, for each of the K
    clusters (``np.unique`` order): BCa's acceleration (:func:`interval`)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    decisions = np.asarray(decisions)
    s_count, _, c = decisions.shape
    counts = cluster_counts(labels, decisions, clusters)
    return _finals(counts.sum(0, keepdims=True) - counts, s_count, c, metric)


def mean_over_folds(points, boots, jacks=None):
    """The mean over F folds resampled independently: ``points`` F x (S,),
    ``boots`` F x (B, S) (the same B), ``jacks`` F x (K_f, S) or None. Returns
    the mean's point (S,), resamples (B, S) and jackknife values
    (sum K_f, S): the mean with one cluster of one fold left out."""
    points = np.asarray(points, dtype=np.float64)
    point, boot = points.mean(0), np.mean(np.asarray(boots, dtype=np.float64), 0)
    if jacks is None:
        return point, boot, None
    f = len(points)
    jack = np.concatenate([point + (np.asarray(j, dtype=np.float64) - points[k]) / f for k, j in enumerate(jacks)])
    return point, boot, jack


def _acceleration(jack: np.ndarray) -> np.ndarray:
    """BCa's acceleration (S,) from jackknife values (K, S) (Efron & Tibshirani 1993, 14.15)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = np.nanmean(jack, 0) - jack
        num, den = np.nansum(d ** 3, 0), np.nansum(d ** 2, 0)
        return np.where(den > 0, num / (6 * np.where(den > 0, den, 1) ** 1.5), 0.0)


def expanded_tail(tail: float, n) -> float:
    """The tail probability that makes a bootstrap interval from ``n`` clusters
    as wide as a t interval (Hesterberg 2015, "expanded percentile"):
    ``Phi(-sqrt(n / (n - 1)) t_{n - 1}(1 - tail))``. ``n``: the clusters of
    the resampled sample, or one count per fold resampled independently (a
    mean over folds: the factor of the folds' mean size, ``sum(n - 1)``
    degrees of freedom). NaN with fewer than two clusters."""
    from scipy.stats import t as student_t

    sizes = np.atleast_1d(np.asarray(n, dtype=np.float64))
    if (sizes < 2).any():
        return np.nan
    factor = np.sqrt(np.mean(sizes / (sizes - 1)))
    return _NORMAL.cdf(-factor * float(student_t.ppf(1 - tail, (sizes - 1).sum())))


def interval(point, boot, level: float = 0.95, method: str = INTERVAL, jack=None,
             n=None, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``level`` bootstrap interval ``(lo, hi)``, each (S,), of S
    statistics (a system's score, or a paired difference: pass the
    differences' point and resamples).

    point (S,) the estimate on the data; boot (B, S) on the resamples (NaN:
    a resample where it is undefined, left out). ``method``: ``percentile``
    (the resamples' quantiles), ``basic`` (those quantiles reflected about the
    point, ``2 point - q``: corrects the bias the resamples show), ``bca``
    (bias-corrected and accelerated; ``jack`` (K, S) the statistic with each
    cluster left out, :func:`jackknife_finals`; None: no acceleration).
    ``n``: clusters resampled (int, or one per fold for a mean over folds):
    percentile and basic take the expanded tails of :func:`expanded_tail`
    (wider at few clusters); None: the nominal tails. The interval always
    holds the point (widened to it where the quantiles leave it out: a
    bootstrap skewed to one side). ``bounds`` (lo, hi): the statistic's
    range, the interval clipped to it (a reflected interval can leave it: F1
    is in [0, 1], a difference in [-1, 1]). A statistic without finite
    resamples gets NaN."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    boot = np.asarray(boot, dtype=np.float64)
    boot = boot[:, None] if boot.ndim == 1 else boot
    point = np.broadcast_to(np.asarray(point, dtype=np.float64), boot.shape[1:])
    tail = (1 - level) / 2
    if n is not None and method != "bca":
        tail = expanded_tail(tail, n)
    lo, hi = np.full(point.shape, np.nan), np.full(point.shape, np.nan)
    if method == "bca":
        acc = np.zeros(point.shape) if jack is None else _acceleration(
            np.asarray(jack, dtype=np.float64).reshape(-1, *point.shape))
    for s in range(point.size if np.isfinite(tail) else 0):
        x = boot[:, s]
        x = x[np.isfinite(x)]
        if not len(x) or not np.isfinite(point[s]):
            continue
        q = (tail, 1 - tail)
        if method == "bca":
            below = (np.sum(x < point[s]) + 0.5 * np.sum(x == point[s])) / len(x)
            z0 = _NORMAL.inv_cdf(min(max(below, 0.5 / len(x)), 1 - 0.5 / len(x)))
            q = tuple(_NORMAL.cdf(z0 + (z0 + z) / max(1 - acc[s] * (z0 + z), 1e-9))
                      for z in (_NORMAL.inv_cdf(tail), _NORMAL.inv_cdf(1 - tail)))
        a, b = np.quantile(x, q)
        lo[s], hi[s] = (2 * point[s] - b, 2 * point[s] - a) if method == "basic" else (a, b)
        lo[s], hi[s] = min(lo[s], point[s]), max(hi[s], point[s])   # never excludes its own estimate
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    return lo, hi


def paired_gains(labels, decisions, clusters, pairs, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95, method: str = INTERVAL) -> pd.DataFrame:
    """Gain of system ``a`` over ``b`` for every ``(a, b)`` in ``pairs`` (indices
    into the S systems of ``decisions`` (S, N, C)), with its paired cluster
    bootstrap interval (:func:`interval`'s ``method``, expanded tails for the
    number of clusters; the jackknife over the clusters for BCa). Returns one
    row per pair: ``a, b, gain, lo, hi`` (final-score units) and ``nonzero``
    (the interval excludes 0)."""
    point, boot = boot_finals(labels, decisions, clusters, n_boot, seed)
    cols = ["a", "b", "gain", "lo", "hi", "nonzero"]
    if not len(pairs):
        return pd.DataFrame(columns=cols)
    a, b = (np.array([p[k] for p in pairs], np.int64) for k in (0, 1))
    jack = jackknife_finals(labels, decisions, clusters) if method == "bca" else None
    lo, hi = interval(point[a] - point[b], boot[:, a] - boot[:, b], level, method,
                      None if jack is None else jack[:, a] - jack[:, b], n=len(np.unique(np.asarray(clusters))),
                      bounds=(-1, 1))
    return pd.DataFrame({"a": a, "b": b, "gain": point[a] - point[b], "lo": lo, "hi": hi,
                         "nonzero": (lo > 0) | (hi < 0)}, columns=cols)
