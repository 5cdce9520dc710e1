"""Exact per-AU threshold search: every cut point between distinct
probabilities, sorting-based and vectorised over (epoch, AU)."""
from __future__ import annotations

import numpy as np

#: What a choice maximises per AU: the challenge's ``final`` score (acc + F1) / 2, or ``f1`` alone.
CRITERIA = ("final", "f1")

# Scores that differ by less than this are ties (they are ratios of counts,
# equal in exact arithmetic); among tied cuts the threshold nearest 0.5 wins.
_TIE_EPS = 1e-12


# --------------------------------------------------------------------------- exact threshold search

def _best_cut_chunk(labels_cn: np.ndarray, probs_ecn: np.ndarray,
                    criterion: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Exact best threshold for (e, C, N) float64 probabilities; labels (C, N);
    score ``criterion`` (:data:`CRITERIA`).

    Sort every (epoch, AU) row once by probability, descending; a cut after
    the k-th row predicts the top k positive. Cumulative positives give TP at
    every cut, so acc = (2 TP + n_neg - k) / n and F1 = 2 TP / (k + n_pos) for
    all cuts at once. Only cuts between distinct values are valid (ties stay
    together); the threshold is the midpoint of the two values around the cut.

    The label travels with its probability inside one int64 sort key: the
    bits of a non-negative float64 are ordered like the float, so
    ``key = bits << 1 | is_positive`` sorts by probability; unknown labels
    get key -1 and end up after every known row.
    """
    e, c, n = probs_ecn.shape
    known = labels_cn >= 0
    pos = (labels_cn == 1)
    n_known = known.sum(-1)  # (C,)
    n_pos = pos.sum(-1)
    n_neg = n_known - n_pos

    bits = (probs_ecn + 0.0).view(np.int64)  # + 0.0 turns -0.0 into 0.0
    key = np.where(known, (bits << 1) | pos, -1)
    key.sort(axis=-1)
    key = key[..., ::-1]  # descending: highest probability first, unknown rows last
    is_pos = (key & 1).astype(np.int32)
    is_pos[key < 0] = 0
    tp = np.cumsum(is_pos, axis=-1, dtype=np.int64)  # tp[..., k-1]: TP when the top k are positive
    del is_pos
    val = np.where(key >= 0, key, 0) >> 1
    val = val.view(np.float64)  # sorted probabilities (0 where unknown)
    ks = np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        nk = np.where(n_known > 0, n_known, 1)[None, :, None]
        acc = (2 * tp + n_neg[None, :, None] - ks) / nk
        f1 = 2 * tp / (ks + n_pos[None, :, None])
    score = f1 if criterion == "f1" else (acc + f1) / 2
    del acc, f1, tp
    # valid cuts: k <= n_known, and the k-th and (k+1)-th values differ (or k == n_known)
    valid = np.broadcast_to(ks[None, None, :] <= n_known[None, :, None], (e, c, n)).copy()
    valid[..., :-1] &= (key[..., :-1] >> 1) != (key[..., 1:] >> 1)
    valid |= ks[None, None, :] == n_known[None, :, None]
    score = np.where(valid, score, -np.inf)
    # midpoint thresholds; at k == n_known every known row is positive: half the smallest value
    nxt = np.concatenate([val[..., 1:], np.zeros((e, c, 1))], axis=-1)
    last = ks[None, None, :] == n_known[None, :, None]
    mid = (val + nxt) / 2
    mid = np.where(mid > nxt, mid, np.nextafter(nxt, np.inf))  # adjacent floats: the upper one
    thr = np.where(last, val / 2, mid)
    del nxt, last, mid
    # the cut before the first row: nothing positive (F1 = 0)
    none_acc = n_neg / np.where(n_known > 0, n_known, 1)
    score0 = np.where(n_known > 0, 0.0 if criterion == "f1" else none_acc / 2, -np.inf)  # (C,)
    top = val[..., 0]
    thr0 = np.maximum(np.where(top < 1.0, (top + 1.0) / 2, 0.0), np.nextafter(top, np.inf))  # (e, C)

    best = np.maximum(score.max(-1), score0[None, :])
    cand = score >= (best[..., None] - _TIE_EPS)
    dist = np.where(cand, np.abs(thr - 0.5), np.inf)
    k_best = dist.argmin(-1)
    d_best = np.take_along_axis(dist, k_best[..., None], -1)[..., 0]
    thr_best = np.take_along_axis(thr, k_best[..., None], -1)[..., 0]
    use0 = (score0[None, :] >= best - _TIE_EPS) & (np.abs(thr0 - 0.5) < d_best)
    thr_best = np.where(use0, thr0, thr_best)
    no_labels = n_known == 0
    best = np.where(no_labels[None, :], np.nan, best)
    thr_best = np.where(no_labels[None, :], 0.5, thr_best)
    return thr_best, best


def check_criterion(criterion: str) -> str:
    """``criterion`` if it is one of :data:`CRITERIA`, else a ValueError naming them."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA} (final: (acc + F1) / 2, the challenge's score; "
                         f"f1: F1 alone, what BP4D / DISFA papers report); got {criterion!r}")
    return criterion


def best_threshold(labels: np.ndarray, probs: np.ndarray,
                   chunk_bytes: int = 256 << 20, criterion: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Exact per-AU best threshold for every prediction set.

    ``labels`` (N, C) with 1 / 0 / -1 (unknown rows are ignored per AU);
    ``probs`` (..., N, C) in [0, 1] (e.g. (E, N, C) for E epochs). Searches
    every cut between distinct probabilities (plus "all positive" and "all
    negative"), so no threshold can score higher on these labels. Returns
    ``thr`` (..., C) float64 (decide ``prob >= thr``) and ``score`` (..., C),
    the per-AU final score ``(acc + F1) / 2`` at that threshold (``criterion``
    ``f1``: the best F1 and its threshold) (NaN for an AU without known
    labels). Among tied scores the threshold nearest 0.5 is returned. Works
    in chunks of ``chunk_bytes`` of working memory.
    """
    check_criterion(criterion)
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    if probs.ndim < 2 or labels.ndim != 2 or probs.shape[-2:] != labels.shape:
        raise ValueError(f"probs (..., N, C) must match labels (N, C); got {probs.shape} and {labels.shape}")
    lead = probs.shape[:-2]
    n, c = labels.shape
    flat = probs.reshape((-1, n, c))
    labels_cn = np.ascontiguousarray(labels.T)
    e_all = flat.shape[0]
    thr = np.empty((e_all, c))
    score = np.empty((e_all, c))
    step = max(1, int(chunk_bytes // max(1, n * c * 80)))  # ~10 float64-sized temporaries per value
    for s in range(0, e_all, step):
        p = np.ascontiguousarray(np.asarray(flat[s:s + step], dtype=np.float64).transpose(0, 2, 1))
        if not (np.isfinite(p).all() and p.min(initial=0) >= 0 and p.max(initial=0) <= 1):
            raise ValueError(f"probabilities must be finite and in [0, 1] (prediction sets {s}..{s + len(p) - 1})")
        thr[s:s + step], score[s:s + step] = _best_cut_chunk(labels_cn, p, criterion)
    return thr.reshape(lead + (c,)), score.reshape(lead + (c,))
