"""Per-AU checkpoint and threshold choice, and an honest estimate of its gain.

The paper (Sec. 2.3, Table 1) picks, for each AU, the checkpoint (epoch)
with the best final score on dataset B ("chosen"), then a per-AU decision
threshold on that checkpoint ("threshold"). Both choices are made and scored
on the same split B, so the reported gain is optimistic. This module makes
the same choices and also estimates them honestly:

- ``optimistic``: chosen on the selection split, scored on it (the paper's numbers);
- ``cross_fitted``: k-fold cross-fitting on the selection split: for each
  fold the choice is made on the other folds and applied to this fold; the
  pooled decisions are scored once. Folds are groups of images, so the ×4
  degraded copies of one B image never straddle a fold;
- ``heldout``: chosen on the selection split, scored on a split the choice
  never saw (the run's held-out split: ``test`` on SynthAU, ``H`` on EmotioNet).

Strategies (each gives one candidate and one threshold per AU):

- ``baseline``: the single candidate with the best mean final score at 0.5, threshold 0.5;
- ``chosen``: per AU, the candidate with its best final score at 0.5;
- ``threshold``: the paper's order: per-AU candidate as in ``chosen``, then
  the exact best threshold on that candidate;
- ``average+threshold``: the ``baseline`` candidate, then per-AU best thresholds;
- ``joint``: per AU, the (candidate, threshold) pair with the best score, searched jointly.

A candidate is one (run, epoch); with several runs, the choice is across runs.
Scores are the per-AU component of the challenge score, ``(acc + F1) / 2``
(:mod:`aulib.metrics`); a decision is positive when ``prob >= threshold``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .aus import GROUPS, group_aus
from .io import read_yaml, write_yaml
from .metrics import au_scores, batched_scores, decide, summarize
from .runs import RunPreds, heldout_split, load_run_preds, pred_epochs, select_runs
from .workspace import Workspace

STRATEGIES = ("baseline", "chosen", "threshold", "average+threshold", "joint")
ESTIMATES = ("optimistic", "cross_fitted", "heldout")

# Scores that differ by less than this are ties (they are ratios of counts,
# equal in exact arithmetic); among tied cuts the threshold nearest 0.5 wins.
_TIE_EPS = 1e-12


# --------------------------------------------------------------------------- exact threshold search

def _best_cut_chunk(labels_cn: np.ndarray, probs_ecn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact best threshold for (e, C, N) float64 probabilities; labels (C, N).

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
    score = (acc + f1) / 2
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
    score0 = np.where(n_known > 0, n_neg / np.where(n_known > 0, n_known, 1) / 2, -np.inf)  # (C,)
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


def best_threshold(labels: np.ndarray, probs: np.ndarray,
                   chunk_bytes: int = 256 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-AU best threshold for every prediction set.

    ``labels`` (N, C) with 1 / 0 / -1 (unknown rows are ignored per AU);
    ``probs`` (..., N, C) in [0, 1] (e.g. (E, N, C) for E epochs). Searches
    every cut between distinct probabilities (plus "all positive" and "all
    negative"), so no threshold can score higher on these labels. Returns
    ``thr`` (..., C) float64 (decide ``prob >= thr``) and ``score`` (..., C),
    the per-AU final score ``(acc + F1) / 2`` at that threshold (NaN for an
    AU without known labels). Among tied scores the threshold nearest 0.5 is
    returned. Works in chunks of ``chunk_bytes`` of working memory.
    """
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
        thr[s:s + step], score[s:s + step] = _best_cut_chunk(labels_cn, p)
    return thr.reshape(lead + (c,)), score.reshape(lead + (c,))


# --------------------------------------------------------------------------- strategies on arrays

def _argmax_nan(a: np.ndarray, axis: int) -> np.ndarray:
    """argmax that treats NaN as -inf (first index on ties: the earliest epoch)."""
    return np.argmax(np.where(np.isnan(a), -np.inf, a), axis=axis)


def _per_au_columns(probs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N, C) probabilities taking AU j from candidate ``idx[j]`` of (K, N, C)."""
    c = probs.shape[-1]
    return np.asarray(probs[idx, :, np.arange(c)], dtype=np.float32).T


def choose_indices(labels: np.ndarray, probs: np.ndarray, strategy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One strategy on arrays: ``labels`` (N, C), ``probs`` (K, N, C) for K
    candidates. Returns per AU the candidate index (C,), threshold (C,) and
    the per-AU final score on these labels (C,)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(f"probs must be (K, N, C) with K >= 1 candidates; got {probs.shape}")
    c = probs.shape[-1]
    if strategy == "joint":
        thr_all, score_all = best_threshold(labels, probs)
        idx = _argmax_nan(score_all, 0)
        return idx, thr_all[idx, np.arange(c)], score_all[idx, np.arange(c)]
    at_half = batched_scores(labels, probs, 0.5)
    if strategy in ("baseline", "average+threshold"):
        idx = np.full(c, _argmax_nan(at_half["mean_final"], 0))
    else:
        idx = _argmax_nan(at_half["final"], 0)
    if strategy in ("baseline", "chosen"):
        return idx, np.full(c, 0.5), at_half["final"][idx, np.arange(c)]
    thr, score = best_threshold(labels, _per_au_columns(probs, idx))
    return idx, thr, score


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


def cross_fitted_decisions(labels: np.ndarray, probs: np.ndarray, strategy: str,
                           folds: np.ndarray) -> np.ndarray:
    """(N, C) 0/1 decisions where each row's decision comes from a choice
    made on the other folds only."""
    n, c = labels.shape
    out = np.zeros((n, c), np.int8)
    for f in np.unique(folds):
        test = folds == f
        train = ~test
        idx, thr, _ = choose_indices(labels[train], probs[:, train], strategy)
        p = np.asarray(probs[idx[:, None], np.flatnonzero(test)[None, :], np.arange(c)[:, None]]).T  # (n_f, C)
        out[test] = decide(p, thr)
    return out


# --------------------------------------------------------------------------- candidates across runs

@dataclass
class Candidates:
    """Predictions of K candidates (run, epoch) on the same rows of one split:
    ``probs`` (K, N, C), ``labels`` (N, C), ``keys`` [(run_name, epoch)] * K."""

    split: str
    aus: tuple[int, ...]
    keys: list[tuple[str, int]]
    labels: np.ndarray
    probs: np.ndarray
    index: pd.DataFrame

    @classmethod
    def from_runs(cls, runs: list[RunPreds]) -> "Candidates":
        """Stack runs' epochs as candidates. The runs must share the split,
        the AUs and the rows (same images, variants and labels, same order)."""
        if not runs:
            raise ValueError("no runs given to choose from")
        first = runs[0]
        for r in runs[1:]:
            if r.aus != first.aus:
                raise ValueError(f"runs {first.run_name} and {r.run_name} predict different AUs "
                                 f"({first.aus} vs {r.aus}); choose within one group")
            if r.split != first.split:
                raise ValueError(f"runs {first.run_name} and {r.run_name} hold different splits "
                                 f"({first.split}, {r.split})")
            cols = [c for c in ("image", "variant") if c in first.index.columns]
            same = (len(r.index) == len(first.index) and np.array_equal(r.labels, first.labels)
                    and r.index[cols].reset_index(drop=True).equals(first.index[cols].reset_index(drop=True)))
            if not same:
                raise ValueError(f"runs {first.run_name} and {r.run_name} have different rows in "
                                 f"preds/{first.split}_index.csv; they were not evaluated on the same split")
        keys = [(r.run_name, int(e)) for r in runs for e in r.epochs]
        if not keys:
            raise ValueError(f"none of the runs {[r.run_name for r in runs]} has a complete epoch on {first.split}")
        probs = runs[0].probs if len(runs) == 1 else np.concatenate([r.probs for r in runs], axis=0)
        return cls(first.split, first.aus, keys, first.labels, probs, first.index)

    def groups(self) -> np.ndarray:
        """Image of each row (rows of one image share a fold); row number if no ``image`` column."""
        return self.index["image"].to_numpy() if "image" in self.index.columns else np.arange(len(self.index))

    def subset(self, keys) -> "Candidates":
        pos = {k: i for i, k in enumerate(self.keys)}
        take = [pos[k] for k in keys]
        return Candidates(self.split, self.aus, list(keys), self.labels, self.probs[take], self.index)


@dataclass
class Choice:
    """Per-AU choice: ``run`` names, ``epoch`` (C,), ``threshold`` (C,), and
    ``score`` (C,), the per-AU final score on the split it was chosen on."""

    strategy: str
    split: str
    aus: tuple[int, ...]
    run: list[str]
    epoch: np.ndarray
    threshold: np.ndarray
    score: np.ndarray

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"run": self.run, "epoch": self.epoch, "threshold": self.threshold,
                             f"final_{self.split}": self.score}, index=pd.Index(self.aus, name="au"))

    def probs(self, cands: Candidates) -> np.ndarray:
        """(N, C) probabilities of this choice on another candidate set (same keys available)."""
        pos = {k: i for i, k in enumerate(cands.keys)}
        try:
            idx = np.array([pos[(r, int(e))] for r, e in zip(self.run, self.epoch)])
        except KeyError as err:
            raise KeyError(f"candidate {err.args[0]} has no predictions on split {cands.split}") from None
        return _per_au_columns(cands.probs, idx)

    def decisions(self, cands: Candidates) -> np.ndarray:
        return decide(self.probs(cands), self.threshold)


def choose(cands: Candidates, strategy: str = "threshold") -> Choice:
    """Make one strategy's per-AU choice on a candidate set."""
    idx, thr, score = choose_indices(cands.labels, cands.probs, strategy)
    return Choice(strategy, cands.split, cands.aus, [cands.keys[i][0] for i in idx],
                  np.array([cands.keys[i][1] for i in idx], dtype=np.int64), np.asarray(thr, float),
                  np.asarray(score, float))


def choose_across_runs(runs: list[RunPreds], strategy: str = "threshold") -> Choice:
    """Per AU the best (run, epoch) (and threshold) over several runs of one group."""
    return choose(Candidates.from_runs(runs), strategy)


# --------------------------------------------------------------------------- honest estimate

@dataclass
class ChoiceReport:
    """Result of :func:`honest_estimate`.

    ``table``: one row per strategy; columns ``optimistic``, ``cross_fitted``,
    ``heldout`` (final scores) and ``gain_<estimate>`` (over ``baseline``).
    ``long``: strategy, estimate, acc, f1, final. ``choices``: each strategy's
    choice made on the whole selection split. ``per_au``: per-AU scores of
    every strategy and estimate (strategy, estimate, au, acc, f1, final, n, n_pos).
    """

    table: pd.DataFrame
    long: pd.DataFrame
    choices: dict[str, Choice]
    per_au: pd.DataFrame
    select_split: str
    heldout_split: str | None
    folds: int
    notes: list[str] = field(default_factory=list)


def honest_estimate(select: Candidates, heldout: Candidates | None = None, strategies=STRATEGIES,
                    folds: int = 5, seed: int = 0) -> ChoiceReport:
    """Score every strategy three ways: chosen and scored on ``select``
    (optimistic), k-fold cross-fitted on ``select`` (folds by image), and
    chosen on ``select`` then scored on ``heldout`` (when given). Candidates
    missing from ``heldout`` are dropped from both before choosing."""
    strategies = list(strategies)
    if "baseline" not in strategies:
        strategies = ["baseline"] + strategies
    notes = []
    if heldout is not None:
        if heldout.aus != select.aus:
            raise ValueError(f"held-out split {heldout.split} has AUs {heldout.aus}, selection split has {select.aus}")
        common = [k for k in select.keys if k in set(heldout.keys)]
        if not common:
            notes.append(f"no (run, epoch) has predictions on both {select.split} and {heldout.split}; "
                         "held-out estimate skipped")
            heldout = None
        else:
            if len(common) < len(select.keys):
                notes.append(f"{len(select.keys) - len(common)} candidates without {heldout.split} predictions "
                             "were left out of every estimate")
            select, heldout = select.subset(common), heldout.subset(common)
    fold_of_row = group_folds(select.groups(), folds, seed)
    rows, per_au, choices = [], [], {}
    for s in strategies:
        ch = choose(select, s)
        choices[s] = ch
        decs = {"optimistic": (select.labels, ch.decisions(select)),
                "cross_fitted": (select.labels, cross_fitted_decisions(select.labels, select.probs, s, fold_of_row))}
        if heldout is not None:
            decs["heldout"] = (heldout.labels, ch.decisions(heldout))
        for est, (lab, d) in decs.items():
            sc = au_scores(lab, d, select.aus)
            rows.append({"strategy": s, "estimate": est, **summarize(sc)})
            per_au.append(sc.reset_index().assign(strategy=s, estimate=est))
    long = pd.DataFrame(rows)
    table = long.pivot(index="strategy", columns="estimate", values="final").reindex(strategies)
    table = table.reindex(columns=list(ESTIMATES))
    for est in ESTIMATES:
        table[f"gain_{est}"] = table[est] - table.loc["baseline", est]
    table.columns.name = None
    per_au = pd.concat(per_au, ignore_index=True)[["strategy", "estimate", "au", "acc", "f1", "final", "n", "n_pos"]]
    return ChoiceReport(table, long, choices, per_au, select.split, heldout.split if heldout is not None else None,
                        folds, notes)


# --------------------------------------------------------------------------- chosen model file

@dataclass
class ChosenModel:
    """The chosen-model file (docs/layout.md, "Chosen model").

    ``runs``: run name -> {dir (relative to the workspace root), backbones,
    img_size, crop_style}; ``per_au``: one {au, run, epoch, threshold} per AU
    of the group, in group order; ``ensemble``: None or {runs, coef (C, R),
    intercept (C,)} (written by the ensemble step)."""

    group: str
    aus: list[int]
    runs: dict[str, dict]
    per_au: list[dict]
    ensemble: dict | None = None

    @classmethod
    def from_choice(cls, choice: Choice, group: str, workspace_root, run_dirs: dict[str, Path] | list[RunPreds]):
        """Chosen model of a :class:`Choice`; ``run_dirs`` maps run names to
        their folders (or is the list of RunPreds the choice came from)."""
        if isinstance(run_dirs, list):
            run_dirs = {r.run_name: r.run_dir for r in run_dirs}
        root = Path(workspace_root).resolve()
        runs = {}
        for name in dict.fromkeys(choice.run):
            d = Path(run_dirs[name]).resolve()
            cfg = read_yaml(d / "config.yaml") or {}
            rel = d.relative_to(root).as_posix() if d.is_relative_to(root) else str(d)  # outside: absolute
            runs[name] = {"dir": rel,
                          "backbones": [str(b) for b in cfg.get("backbones") or []],
                          "img_size": cfg.get("img_size"), "crop_style": cfg.get("crop_style")}
        per_au = [{"au": int(a), "run": r, "epoch": int(e), "threshold": float(t)}
                  for a, r, e, t in zip(choice.aus, choice.run, choice.epoch, choice.threshold)]
        return cls(group, [int(a) for a in choice.aus], runs, per_au)

    def to_dict(self) -> dict:
        return {"group": self.group, "aus": list(self.aus), "runs": self.runs, "per_au": self.per_au,
                "ensemble": self.ensemble}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_au).set_index("au")

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([p["threshold"] for p in self.per_au], dtype=np.float64)

    def run_dir(self, name: str, workspace_root) -> Path:
        return Path(workspace_root) / self.runs[name]["dir"]


def save_chosen(path, chosen: ChosenModel) -> None:
    """Write a chosen-model YAML atomically."""
    write_yaml(path, chosen.to_dict())


def _default_workspace_root(path: Path) -> Path:
    # chosen files live at <workspace>/chosen/<group>.yaml
    return path.resolve().parent.parent


def load_chosen(path, workspace_root=None, check_files: bool = True) -> ChosenModel:
    """Read and validate a chosen-model YAML.

    Checks: the group is known and ``aus`` equals its AU list; ``per_au``
    has exactly one entry per AU naming a listed run, an epoch >= 1 and a
    finite threshold; the ensemble (if any) has matching shapes. With
    ``check_files`` also that each run folder and the checkpoint of every
    chosen epoch exist (``workspace_root`` defaults to the folder above
    ``chosen/``). Errors name the file and the AU or run at fault.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"chosen-model file {path} not found; run notebooks/06_choose.ipynb to make it")
    raw = read_yaml(path)

    def fail(msg):
        raise ValueError(f"{path}: {msg}")

    if not isinstance(raw, dict):
        fail("must be a mapping with keys group, aus, runs, per_au")
    missing = [k for k in ("group", "aus", "runs", "per_au") if k not in raw]
    if missing:
        fail(f"missing keys {missing}")
    group = raw["group"]
    if group not in GROUPS:
        fail(f"unknown group {group!r}; known: {sorted(GROUPS)}")
    aus = [int(a) for a in raw["aus"] or []]
    if tuple(aus) != group_aus(group):
        fail(f"aus {aus} do not match group {group}'s AUs {list(group_aus(group))}")
    runs = raw["runs"]
    if not isinstance(runs, dict) or not runs:
        fail("'runs' must map run names to {dir, backbones, img_size, crop_style}")
    for name, info in runs.items():
        if not isinstance(info, dict) or "dir" not in info:
            fail(f"run {name!r} needs a 'dir' (path relative to the workspace)")
    per_au = raw["per_au"]
    if not isinstance(per_au, list):
        fail("'per_au' must be a list of {au, run, epoch, threshold}")
    by_au = {}
    for i, entry in enumerate(per_au):
        if not isinstance(entry, dict) or not {"au", "run", "epoch", "threshold"} <= set(entry):
            fail(f"per_au entry {i + 1} must have au, run, epoch, threshold; got {entry!r}")
        au = int(entry["au"])
        if au in by_au:
            fail(f"AU {au} appears twice in per_au")
        if au not in aus:
            fail(f"per_au names AU {au}, which is not in group {group}")
        if entry["run"] not in runs:
            fail(f"AU {au} uses run {entry['run']!r}, which is not listed under 'runs' ({sorted(runs)})")
        epoch = entry["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            fail(f"AU {au}: epoch must be an integer >= 1, got {epoch!r}")
        thr = entry["threshold"]
        if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not math.isfinite(thr):
            fail(f"AU {au}: threshold must be a finite number, got {thr!r}")
        by_au[au] = {"au": au, "run": entry["run"], "epoch": int(epoch), "threshold": float(thr)}
    lacking = [a for a in aus if a not in by_au]
    if lacking:
        fail(f"per_au has no entry for AUs {lacking}")
    ens = raw.get("ensemble")
    if ens is not None:
        from .ensemble import LinearEnsemble

        if not isinstance(ens, dict):
            fail("'ensemble' must be null or a mapping {runs, coef, intercept, ...}")
        try:
            lin = LinearEnsemble.from_dict(ens)
        except ValueError as err:
            fail(str(err))
        unknown = [r for r in lin.runs if r not in runs]
        if unknown or not lin.runs:
            fail(f"ensemble must name its runs, each listed under 'runs'; unknown: {unknown}")
        if lin.coef.shape[0] != len(aus):
            fail(f"ensemble coef has {lin.coef.shape[0]} rows, expected one per AU ({len(aus)})")
    chosen = ChosenModel(group, aus, runs, [by_au[a] for a in aus], ens)
    if check_files:
        root = Path(workspace_root) if workspace_root is not None else _default_workspace_root(path)
        for name in runs:
            d = chosen.run_dir(name, root)
            if not (d / "config.yaml").exists():
                fail(f"run {name!r}: {d / 'config.yaml'} not found (dir is relative to the workspace {root})")
        needed = [(p["au"], p["run"], p["epoch"]) for p in chosen.per_au]
        if ens is not None and lin.epochs is not None:
            needed = [(a, r, int(lin.epochs[c, j])) for c, a in enumerate(aus) for j, r in enumerate(lin.runs)]
        elif ens is not None:
            needed += [(p["au"], r, p["epoch"]) for p in chosen.per_au for r in lin.runs]
        for au, run, epoch in needed:
            ckpt = chosen.run_dir(run, root) / "checkpoints" / f"epoch{epoch:03d}.pt"
            if not ckpt.exists():
                fail(f"AU {au}: checkpoint {ckpt} not found (run {run}, epoch {epoch}); "
                     "the run's checkpoints were deleted or the workspace moved")
    return chosen


# --------------------------------------------------------------------------- workspace entry point

def load_candidates(run_dirs, split: str, epochs: dict | None = None) -> tuple[list[RunPreds], Candidates]:
    """Load runs' predictions on ``split`` and stack them as candidates."""
    runs = [load_run_preds(d, split, None if epochs is None else epochs.get(Path(d).name)) for d in run_dirs]
    runs = [r for r in runs if len(r.epochs)]
    return runs, Candidates.from_runs(runs)


def choose_for_workspace(ws: Workspace, group: str, runs=None, select_split: str = "B", heldout: str | None = None,
                         folds: int = 5, strategy: str = "threshold", strategies=STRATEGIES,
                         seed: int = 0) -> tuple[ChoiceReport, ChosenModel]:
    """Checkpoint and threshold choice for a group over the runs of a
    workspace (``runs`` None: every run of the group). ``heldout`` None takes
    the held-out split named in the runs' configs. Returns the honest-estimate
    report and the chosen model of ``strategy`` (not yet saved)."""
    dirs = select_runs(ws, group, runs)
    if not dirs:
        raise FileNotFoundError(f"no runs of group {group!r} under {ws.train}; train one with notebooks/04_train.ipynb")
    run_preds, select = load_candidates(dirs, select_split)
    if heldout is None:
        names = {heldout_split(r.config) for r in run_preds} - {None}
        heldout = sorted(names)[0] if names else None  # runs naming different splits: the first by name
    held = None
    notes = []
    if heldout is not None:
        have = [d for d in dirs if pred_epochs(d, heldout)]
        if len(have) < len(dirs):
            lacking = sorted(set(d.name for d in dirs) - set(d.name for d in have))
            notes.append(f"runs without {heldout} predictions: {lacking}")
        if have:
            _, held = load_candidates(have, heldout)
    report = honest_estimate(select, held, strategies=strategies, folds=folds, seed=seed)
    report.notes[:0] = notes
    if strategy not in report.choices:
        report.choices[strategy] = choose(select, strategy)
    chosen = ChosenModel.from_choice(report.choices[strategy], group, ws.root, run_preds)
    return report, chosen


__all__ = ["STRATEGIES", "ESTIMATES", "best_threshold", "choose_indices", "group_folds", "cross_fitted_decisions",
           "Candidates", "Choice", "choose", "choose_across_runs", "ChoiceReport", "honest_estimate",
           "ChosenModel", "save_chosen", "load_chosen", "load_candidates", "choose_for_workspace"]
