"""Exact per-AU threshold search: every cut point between distinct
probabilities, vectorised over (epoch, AU): by sorting, or for float16
probabilities (as training writes them) by counting per distinct value."""
from __future__ import annotations

import numpy as np

from ..metrics import in_unit_interval

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
    every cut (:func:`_pick_cut` scores them all at once). Only cuts between
    distinct values are valid (ties stay together).

    The label travels with its probability inside one int64 sort key: the
    bits of a non-negative float64 are ordered like the float, so
    ``key = bits << 1 | is_positive`` sorts by probability; unknown labels
    get key -1 and end up after every known row.
    """
    e, c, n = probs_ecn.shape
    known = labels_cn >= 0
    n_known = known.sum(-1)  # (C,)
    bits = (probs_ecn + 0.0).view(np.int64)  # + 0.0 turns -0.0 into 0.0
    key = np.where(known, (bits << 1) | (labels_cn == 1), -1)
    key.sort(axis=-1)
    key = key[..., ::-1]  # descending: highest probability first, unknown rows last
    is_pos = (key & 1).astype(np.int32)
    is_pos[key < 0] = 0
    tp = np.cumsum(is_pos, axis=-1, dtype=np.int64)  # tp[..., k-1]: TP when the top k are positive
    del is_pos
    val = (np.where(key >= 0, key, 0) >> 1).view(np.float64)  # sorted probabilities (0 where unknown)
    ks = np.arange(1, n + 1)
    # valid cuts: k <= n_known, and the k-th and (k+1)-th values differ (or k == n_known)
    valid = np.broadcast_to(ks[None, None, :] <= n_known[None, :, None], (e, c, n)).copy()
    valid[..., :-1] &= (key[..., :-1] >> 1) != (key[..., 1:] >> 1)
    valid |= ks[None, None, :] == n_known[None, :, None]
    del key

    def next_value(ie, ic, j):
        return np.where(j + 1 < n_known[ic], val[ie, ic, np.minimum(j + 1, n - 1)], np.nan)

    return _pick_cut(labels_cn, ks, tp, valid, lambda ie, ic, j: val[ie, ic, j], next_value, val[..., 0], criterion)


def _best_cut_by_value(labels_cn: np.ndarray, probs_ecn: np.ndarray,
                       criterion: str = "final") -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_best_cut_chunk` for (e, C, N) **float16** probabilities, by
    counting instead of sorting: a float16 in [0, 1] is one of 15,361 values,
    so each (epoch, AU) row's known rows and positives are counted per
    distinct value present (``np.bincount``), from the highest down; a cut
    after each value present is a valid cut, as between distinct sorted
    values. The same cuts, counts and arithmetic give the same thresholds and
    scores, bit for bit (tests/select/test_choose.py), ~5x faster when N is
    large (a BP4D fold's 39,000 rows, Aff-Wild2's 780,000). None when the
    values present outnumber the rows (counting would not pay)."""
    e, c, n = probs_ecn.shape
    bits = probs_ecn.view(np.uint16)
    present = np.zeros(1 << 16, bool)
    present[bits.ravel()] = True
    negative_zero = present[0x8000]
    present[0], present[0x8000] = present[0] | negative_zero, False
    codes = np.flatnonzero(present)               # bit patterns of the values present, ascending = by value
    m = len(codes)
    if m > n:
        return None
    rank = np.empty(1 << 16, np.int64)
    rank[codes] = np.arange(m)[::-1]              # 0 = the highest value
    rank[0x8000] = rank[0] if negative_zero else 0                 # -0.0 is 0.0
    row = (np.arange(e * c, dtype=np.int64) * (m + 1)).reshape(e, c, 1)
    known = labels_cn >= 0
    at = np.where(known, rank[bits], m) + row     # unknown rows go to a last bin, dropped
    per_value = np.bincount(at.ravel(), minlength=e * c * (m + 1)).reshape(e, c, m + 1)[..., :m]
    at = np.where(labels_cn == 1, at, row + m)
    pos_per_value = np.bincount(at.ravel(), minlength=e * c * (m + 1)).reshape(e, c, m + 1)[..., :m]
    del at
    k = np.cumsum(per_value, axis=-1)             # rows predicted positive by a cut after each value
    tp = np.cumsum(pos_per_value, axis=-1)
    valid = per_value > 0
    del per_value, pos_per_value
    values = codes[::-1].astype(np.uint16).view(np.float16).astype(np.float64)   # (m,) descending
    cuts = np.flatnonzero(valid.ravel())          # every valid cut, flat (e, c, value) order
    cuts_end = np.append(cuts, np.iinfo(np.int64).max)

    def next_value(ie, ic, j):
        f = (ie * c + ic) * m + j
        nxt = cuts_end[np.searchsorted(cuts, f, side="right")]
        same_row = nxt < (ie * c + ic + 1) * m
        return np.where(same_row, values[np.where(same_row, nxt, f) % m], np.nan)

    first = cuts_end[np.searchsorted(cuts, np.arange(e * c) * m)]
    has = first < (np.arange(e * c) + 1) * m
    top = np.where(has, values[np.where(has, first, 0) % m], 0.0).reshape(e, c)
    return _pick_cut(labels_cn, k, tp, valid, lambda ie, ic, j: values[j], next_value, top, criterion)


def _pick_cut(labels_cn, k, tp, valid, value, next_value, top, criterion):
    """The best cut per (epoch, AU) and its threshold, from every cut at once.

    ``k`` and ``tp`` (e, C, J) (or broadcastable): rows predicted positive
    and true positives by a cut after cut j; ``valid`` (e, C, J) the cuts
    between distinct values. acc = (2 TP + n_neg - k) / n and F1 = 2 TP /
    (k + n_pos). Thresholds are computed only for cuts that reach the best
    score (ties): the midpoint of the cut's value (``value(ie, ic, j)``) and
    the next lower one (``next_value``, NaN after the lowest known value:
    then half the value); among ties the threshold nearest 0.5 wins, then
    the first cut. The cut before the first row (nothing positive, F1 = 0)
    has threshold between ``top`` (e, C), the highest known value, and 1.
    """
    known = labels_cn >= 0
    n_known = known.sum(-1)  # (C,)
    n_pos = (labels_cn == 1).sum(-1)
    n_neg = n_known - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        nk = np.where(n_known > 0, n_known, 1)[None, :, None]
        acc = (2 * tp + n_neg[None, :, None] - k) / nk
        f1 = 2 * tp / (k + n_pos[None, :, None])
    score = f1 if criterion == "f1" else (acc + f1) / 2
    del acc, f1
    score = np.where(valid, score, -np.inf)
    e, c = score.shape[:2]
    none_acc = n_neg / np.where(n_known > 0, n_known, 1)
    score0 = np.where(n_known > 0, 0.0 if criterion == "f1" else none_acc / 2, -np.inf)  # (C,)
    thr0 = np.maximum(np.where(top < 1.0, (top + 1.0) / 2, 0.0), np.nextafter(top, np.inf))  # (e, C)

    best = np.maximum(score.max(-1), score0[None, :])
    ie, ic, j = np.nonzero(valid & (score >= (best[..., None] - _TIE_EPS)))
    del score
    v, nv = value(ie, ic, j), next_value(ie, ic, j)
    with np.errstate(invalid="ignore"):
        mid = (v + nv) / 2
        mid = np.where(mid > nv, mid, np.nextafter(nv, np.inf))  # adjacent floats: the upper one
    thr = np.where(np.isnan(nv), v / 2, mid)
    cell = ie * c + ic
    order = np.lexsort((j, np.abs(thr - 0.5), cell))            # per cell: nearest 0.5, then the first cut
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]] if len(order) else order
    d_best, thr_best = np.full(e * c, np.inf), np.zeros(e * c)
    d_best[cell[first]] = np.abs(thr[first] - 0.5)
    thr_best[cell[first]] = thr[first]
    d_best, thr_best = d_best.reshape(e, c), thr_best.reshape(e, c)
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
        p = np.asarray(flat[s:s + step])
        if not in_unit_interval(p):
            raise ValueError(f"probabilities must be finite and in [0, 1] (prediction sets {s}..{s + len(p) - 1})")
        found = (_best_cut_by_value(labels_cn, np.ascontiguousarray(p.transpose(0, 2, 1)), criterion)
                 if p.dtype == np.float16 else None)
        if found is None:
            p = np.ascontiguousarray(p.astype(np.float64).transpose(0, 2, 1))
            found = _best_cut_chunk(labels_cn, p, criterion)
        thr[s:s + step], score[s:s + step] = found
    return thr.reshape(lead + (c,)), score.reshape(lead + (c,))
