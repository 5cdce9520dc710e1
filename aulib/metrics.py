"""Challenge metrics: per-AU accuracy, F1 of the positive class, final score.

EmotioNet practice, per AU: drop the rows whose label is unknown (``-1``),
compute accuracy and the F1 score of the positive class on the rest; the
challenge reports mean accuracy, mean F1 and
``final = (mean accuracy + mean F1) / 2``. The per-AU ``final`` column is
``(acc + f1) / 2`` of that AU, so the mean of the per-AU finals equals the
challenge's final score.

Conventions (identical to scikit-learn's ``accuracy_score`` and
``f1_score(zero_division=0)`` on the known rows):

- F1 is 0 when there are no true and no predicted positives.
- An AU with no known label at all has ``acc = f1 = final = NaN``; means skip it.
- A probability becomes a positive decision when ``prob >= threshold``
  (compared in float64).

Shapes: ``labels`` (N, C) int with 1 / 0 / -1; ``decisions`` (N, C) 0/1;
``probs`` (N, C) or (E, N, C) for E epochs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


#: Unsigned views of IEEE floats: a non-negative float's bits grow with its value, and NaN, infinities and
#: negative numbers (sign bit set) all lie above 1.0's bits.
_UINT = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def in_unit_interval(a: np.ndarray) -> bool:
    """Whether every value of float array ``a`` is finite and in [0, 1]: one
    pass of an integer max over its bits (no temporaries); the float checks
    only where that fails (-0.0 passes them)."""
    u = _UINT.get(a.dtype)                      # a view of the same item size: any strides
    if u is not None and (not a.size or a.view(u).max() <= np.array(1, a.dtype).view(u)):
        return True
    return bool(np.isfinite(a).all() and a.min(initial=0) >= 0 and a.max(initial=0) <= 1)


def _check_labels(labels: np.ndarray, n_cols: int, what: str = "probs") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (N, C); got shape {labels.shape}")
    if labels.shape[1] != n_cols:
        raise ValueError(f"labels have {labels.shape[1]} AU columns but {what} have {n_cols}")
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"labels must be 1, 0 or -1 (unknown); row {r}, column {c} holds {labels[r, c].item()!r}")
    return labels


def confusion_counts(labels: np.ndarray, decisions: np.ndarray) -> dict[str, np.ndarray]:
    """True/false positives/negatives per AU over the known rows.

    ``decisions`` may carry leading axes, e.g. (E, N, C); counts then have
    shape (E, C). Returns int64 arrays ``tp, fp, fn, tn``.
    """
    decisions = np.asarray(decisions).astype(bool, copy=False)
    labels = _check_labels(labels, decisions.shape[-1], "decisions")
    if decisions.shape[-2] != labels.shape[0]:
        raise ValueError(f"labels have {labels.shape[0]} rows but decisions have {decisions.shape[-2]}")
    pos = labels == 1
    neg = labels == 0
    tp = (decisions & pos).sum(axis=-2, dtype=np.int64)
    fp = (decisions & neg).sum(axis=-2, dtype=np.int64)
    n_pos = pos.sum(axis=0, dtype=np.int64)
    n_neg = neg.sum(axis=0, dtype=np.int64)
    return {"tp": tp, "fp": fp, "fn": n_pos - tp, "tn": n_neg - fp}


def scores_from_counts(tp, fp, fn, tn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(acc, f1, final) from confusion counts of any (matching) shape.

    ``f1 = 2 tp / (2 tp + fp + fn)``, 0 when the denominator is 0
    (scikit-learn's ``zero_division=0``); NaN everywhere when no row is known.
    """
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (tp + tn) / n
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    f1 = np.where(n > 0, f1, np.nan)
    return acc, f1, (acc + f1) / 2


def decide(probs: np.ndarray, thresholds=0.5) -> np.ndarray:
    """0/1 decisions ``probs >= thresholds``; thresholds scalar or per AU (C,)
    (or any shape broadcasting against ``probs`` without its row axis)."""
    probs = np.asarray(probs)
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim > 0:
        thr = np.expand_dims(thr, -2)  # (..., 1, C): same threshold for every row
    return (probs.astype(np.float64, copy=False) >= thr).astype(np.int8)


def au_scores(labels: np.ndarray, decisions: np.ndarray, aus=None) -> pd.DataFrame:
    """Per-AU scores of 0/1 decisions.

    Returns a DataFrame indexed by AU number (``au``) with columns ``acc``,
    ``f1``, ``final`` ((acc + f1) / 2), ``n`` (known rows), ``n_pos``.
    ``aus`` defaults to 0..C-1 when not given.
    """
    decisions = np.asarray(decisions)
    if decisions.ndim != 2:
        raise ValueError(f"decisions must be (N, C); got shape {decisions.shape}")
    c = confusion_counts(labels, decisions)
    acc, f1, final = scores_from_counts(c["tp"], c["fp"], c["fn"], c["tn"])
    aus = list(range(decisions.shape[1])) if aus is None else [int(a) for a in aus]
    if len(aus) != decisions.shape[1]:
        raise ValueError(f"{len(aus)} AU numbers given for {decisions.shape[1]} columns")
    df = pd.DataFrame({"acc": acc, "f1": f1, "final": final,
                       "n": c["tp"] + c["fp"] + c["fn"] + c["tn"], "n_pos": c["tp"] + c["fn"]},
                      index=pd.Index(aus, name="au"))
    return df


def summarize(scores: pd.DataFrame) -> dict[str, float]:
    """Challenge summary of :func:`au_scores`: mean acc, mean F1 and
    ``final = (mean acc + mean f1) / 2`` over the AUs with known labels."""
    known = scores[scores["n"] > 0] if "n" in scores else scores
    acc = float(known["acc"].mean())
    f1 = float(known["f1"].mean())
    return {"acc": acc, "f1": f1, "final": (acc + f1) / 2}


def score_probs(labels: np.ndarray, probs: np.ndarray, thresholds=0.5, aus=None) -> tuple[pd.DataFrame, dict]:
    """Score probabilities (N, C) at ``thresholds`` (scalar or per AU (C,)).
    Returns ``(au_scores DataFrame, summary dict)``."""
    per_au = au_scores(labels, decide(probs, thresholds), aus)
    return per_au, summarize(per_au)


def float16_cut(thresholds: np.ndarray) -> np.ndarray:
    """uint16 bits ``b`` per threshold such that, for a float16 ``p`` in [0, 1]
    (-0.0 included), ``p >= t`` in float64 exactly when ``bits(|p|) >= b``: the
    bits of the smallest float16 not below ``t`` (0 where ``t <= 0``; above
    every value in [0, 1] where ``t > 1`` or NaN)."""
    t = np.asarray(thresholds, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        up = t.astype(np.float16)
        up = np.where(up.astype(np.float64) < t, np.nextafter(up, np.float16(np.inf)), up)
    bits = up.view(np.uint16)
    return np.where(t <= 0, np.uint16(0), np.where(np.isnan(t), np.uint16(0x7E00), bits)).astype(np.uint16)


def batched_scores(labels: np.ndarray, probs: np.ndarray, thresholds=0.5,
                   chunk_bytes: int = 256 << 20) -> dict[str, np.ndarray]:
    """Per-AU scores for many prediction sets at once.

    ``probs`` (E, N, C) (or (N, C), treated as E = 1), thresholds scalar,
    (C,) or (E, C). Returns arrays of shape (E, C): ``acc``, ``f1``,
    ``final`` (per AU), and ``mean_final`` (E,) (the challenge final score of
    each prediction set). Works through ``probs`` in chunks of epochs
    (``chunk_bytes``), so a memmap is never loaded whole.
    """
    probs = np.asarray(probs)  # a memmap stays mapped: no copy
    squeeze = probs.ndim == 2
    if squeeze:
        probs = probs[None]
    if probs.ndim != 3:
        raise ValueError(f"probs must be (E, N, C) or (N, C); got shape {probs.shape}")
    e_count, n, c = probs.shape
    labels = _check_labels(labels, c)
    if labels.shape[0] != n:
        raise ValueError(f"labels have {labels.shape[0]} rows but probs have {n}")
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (e_count, c)) if np.ndim(thresholds) \
        else np.full((e_count, c), float(thresholds))
    pos, neg = labels == 1, labels == 0
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    tp = np.empty((e_count, c), np.int64)
    fp = np.empty((e_count, c), np.int64)
    step = max(1, int(chunk_bytes // max(1, n * c * 8)))
    half = probs.dtype == np.float16
    if half:
        thr = float16_cut(thr)
    for s in range(0, e_count, step):
        if half:       # compared as integers: the bits of |p| against the smallest float16 >= the threshold
            d = (np.asarray(probs[s:s + step]).view(np.uint16) & np.uint16(0x7FFF)) >= thr[s:s + step, None, :]
        else:
            d = np.asarray(probs[s:s + step], dtype=np.float64) >= thr[s:s + step, None, :]
        tp[s:s + step] = (d & pos).sum(1)
        fp[s:s + step] = (d & neg).sum(1)
    acc, f1, final = scores_from_counts(tp, fp, n_pos - tp, n_neg - fp)
    known = (n_pos + n_neg) > 0
    mean_final = (acc[:, known].mean(1) + f1[:, known].mean(1)) / 2 if known.any() else np.full(e_count, np.nan)
    out = {"acc": acc, "f1": f1, "final": final, "mean_final": mean_final}
    if squeeze:
        out = {k: v[0] for k, v in out.items()}
    return out



def trivial_f1(n, n_pos) -> np.ndarray:
    """F1 of the all-present predictor (every known row called positive) per AU:
    ``2 p / (1 + p)`` with prevalence ``p = n_pos / n`` (= ``2 n_pos / (n + n_pos)``);
    NaN where no row is known. A model's F1 at or below it has learned nothing
    about that AU. ``n``, ``n_pos``: known rows and positives (:func:`au_scores`' columns)."""
    n, n_pos = np.asarray(n, np.float64), np.asarray(n_pos, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 2 * n_pos / (n + n_pos), np.nan)
