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
Choices maximise the per-AU component of the challenge score, ``(acc + F1) / 2``
(:mod:`aulib.metrics`), or with ``criterion="f1"`` the per-AU F1 (the profile's
``06_choose.criterion``); a decision is positive when ``prob >= threshold``.
The strategies on arrays live in :mod:`aulib.select.rules`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import au_scores, decide, summarize
from ..runs import RunPreds, complete_epochs, heldout_split, index_shape, load_run_preds, pred_epochs, select_runs
from ..workspace import RunDir, Workspace
from .chosen import ChosenModel, load_chosen, save_chosen  # noqa: F401 - re-exported
from .folds import add_subjects, fold_groups, group_folds  # noqa: F401 - group_folds re-exported
from .rules import STRATEGIES, choose_indices, per_au_columns
from .stored import PredRequest, request, stored_preds
from .threshold import CRITERIA, best_threshold, check_criterion  # noqa: F401 - re-exported
HONEST_ESTIMATES = ("optimistic", "cross_fitted", "heldout")

# --------------------------------------------------------------------------- strategies on arrays: aulib.select.rules

def cross_fitted_decisions(labels: np.ndarray, probs: np.ndarray, strategy: str,
                           folds: np.ndarray, criterion: str = "final") -> np.ndarray:
    """(N, C) 0/1 decisions where each row's decision comes from a choice
    made on the other folds only."""
    n, c = labels.shape
    out = np.zeros((n, c), np.int8)
    for f in np.unique(folds):
        test = folds == f
        train = ~test
        idx, thr, _ = choose_indices(labels[train], probs[:, train], strategy, criterion)
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
    def from_runs(cls, runs: list[RunPreds], probs: np.ndarray | None = None) -> "Candidates":
        """Stack runs' epochs as candidates. The runs must share the split,
        the AUs and the rows (same images, variants and labels, same order).
        ``probs``: the runs' probabilities already stacked in run order
        (:func:`load_candidates`), used as they are instead of a concatenated copy."""
        if not runs:
            raise ValueError("no runs given to choose from")
        first = runs[0]
        for r in runs[1:]:
            if r.aus != first.aus:
                raise ValueError(f"runs {first.run_name} and {r.run_name} predict different AUs "
                                 f"({first.aus} in {RunDir(first.run_dir).config} vs {r.aus} in "
                                 f"{RunDir(r.run_dir).config}); choose within one group")
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
        if probs is None:
            probs = runs[0].probs if len(runs) == 1 else np.concatenate([r.probs for r in runs], axis=0)
        elif probs.shape != (len(keys),) + first.probs.shape[1:]:
            raise ValueError(f"stacked probabilities {probs.shape} do not match the runs' {len(keys)} epochs")
        return cls(first.split, first.aus, keys, first.labels, probs, first.index)

    def groups(self) -> np.ndarray:
        """Subject, else image, of each row (they share a fold); row number
        if neither column (:func:`aulib.select.folds.fold_groups`)."""
        return fold_groups(self.index)

    def subset(self, keys) -> "Candidates":
        pos = {k: i for i, k in enumerate(self.keys)}
        take = [pos[k] for k in keys]
        return Candidates(self.split, self.aus, list(keys), self.labels, self.probs[take], self.index)


@dataclass
class Choice:
    """Per-AU choice: ``run`` names, ``epoch`` (C,), ``threshold`` (C,), and
    ``score`` (C,), the per-AU ``criterion`` score on the split it was chosen on."""

    strategy: str
    split: str
    aus: tuple[int, ...]
    run: list[str]
    epoch: np.ndarray
    threshold: np.ndarray
    score: np.ndarray
    criterion: str = "final"

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"run": self.run, "epoch": self.epoch, "threshold": self.threshold,
                             f"{self.criterion}_{self.split}": self.score}, index=pd.Index(self.aus, name="au"))

    def probs(self, cands: Candidates) -> np.ndarray:
        """(N, C) probabilities of this choice on another candidate set (same keys available)."""
        pos = {k: i for i, k in enumerate(cands.keys)}
        try:
            idx = np.array([pos[(r, int(e))] for r, e in zip(self.run, self.epoch)])
        except KeyError as err:
            raise KeyError(f"candidate {err.args[0]} has no predictions on split {cands.split}") from None
        return per_au_columns(cands.probs, idx)

    def decisions(self, cands: Candidates) -> np.ndarray:
        return decide(self.probs(cands), self.threshold)


def choose(cands: Candidates, strategy: str = "threshold", criterion: str = "final") -> Choice:
    """Make one strategy's per-AU choice on a candidate set, maximising ``criterion`` (:data:`CRITERIA`)."""
    idx, thr, score = choose_indices(cands.labels, cands.probs, strategy, criterion)
    return Choice(strategy, cands.split, cands.aus, [cands.keys[i][0] for i in idx],
                  np.array([cands.keys[i][1] for i in idx], dtype=np.int64), np.asarray(thr, float),
                  np.asarray(score, float), criterion)


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
    ``decisions``: per estimate, ``(labels (N, C), index (N rows: the rows'
    image, variant, subject), {strategy: 0/1 decisions (N, C)})``, what a
    paired bootstrap of the gains resamples (:func:`aulib.report.gains.choice_table`).
    """

    table: pd.DataFrame
    long: pd.DataFrame
    choices: dict[str, Choice]
    per_au: pd.DataFrame
    select_split: str
    heldout_split: str | None
    folds: int
    notes: list[str] = field(default_factory=list)
    decisions: dict = field(default_factory=dict)


def honest_estimate(select: Candidates, heldout=None, strategies=STRATEGIES,
                    folds: int = 5, seed: int = 0, criterion: str = "final") -> ChoiceReport:
    """Score every strategy three ways: chosen and scored on ``select``
    (optimistic), k-fold cross-fitted on ``select`` (folds by image), and
    chosen on ``select`` then scored on ``heldout`` (when given).
    ``heldout``: :class:`Candidates` (those missing from it are dropped from
    both before choosing), or a function of the (run, epoch) keys the
    choices picked that returns their Candidates (:func:`choose_for_workspace`
    reads them from the files the inference step wrote, :func:`predictions_needed`). Every choice maximises
    ``criterion`` (:data:`CRITERIA`); the table reports final scores either way."""
    check_criterion(criterion)
    strategies = list(strategies)
    if "baseline" not in strategies:
        strategies = ["baseline"] + strategies
    notes = []
    if heldout is not None and not callable(heldout):
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
    choices = {s: choose(select, s, criterion) for s in strategies}
    if callable(heldout):
        picked = sorted({(r, int(e)) for ch in choices.values() for r, e in zip(ch.run, ch.epoch)})
        try:
            heldout = heldout(picked)
        except FileNotFoundError as err:      # a pruned checkpoint: no held-out estimate
            notes.append(f"held-out estimate skipped: {err}")
            heldout = None
    if heldout is not None and heldout.aus != select.aus:
        raise ValueError(f"held-out split {heldout.split} has AUs {heldout.aus}, selection split has {select.aus}")
    fold_of_row = group_folds(select.groups(), folds, seed)
    rows, per_au = [], []
    kept = {"optimistic": (select.labels, select.index, {}), "cross_fitted": (select.labels, select.index, {})}
    if heldout is not None:
        kept["heldout"] = (heldout.labels, heldout.index, {})
    for s, ch in choices.items():
        decs = {"optimistic": (select.labels, ch.decisions(select)),
                "cross_fitted": (select.labels, cross_fitted_decisions(select.labels, select.probs, s, fold_of_row,
                                                                      criterion))}
        if heldout is not None:
            decs["heldout"] = (heldout.labels, ch.decisions(heldout))
        for est, (lab, d) in decs.items():
            sc = au_scores(lab, d, select.aus)
            rows.append({"strategy": s, "estimate": est, **summarize(sc)})
            per_au.append(sc.reset_index().assign(strategy=s, estimate=est))
            kept[est][2][s] = np.asarray(d, np.int8)
    long = pd.DataFrame(rows)
    table = long.pivot(index="strategy", columns="estimate", values="final").reindex(strategies)
    table = table.reindex(columns=list(HONEST_ESTIMATES))
    for est in HONEST_ESTIMATES:
        table[f"gain_{est}"] = table[est] - table.loc["baseline", est]
    table.columns.name = None
    per_au = pd.concat(per_au, ignore_index=True)[["strategy", "estimate", "au", "acc", "f1", "final", "n", "n_pos"]]
    return ChoiceReport(table, long, choices, per_au, select.split, heldout.split if heldout is not None else None,
                        folds, notes, kept)


# --------------------------------------------------------------------------- workspace entry point

def load_candidates(run_dirs, split: str, epochs: dict | None = None) -> tuple[list[RunPreds], Candidates]:
    """Load runs' predictions on ``split`` and stack them as candidates.

    The files are read straight into one (K, N, C) array in their own dtype
    (float16 as training writes them: no value changes), each run's
    ``probs`` a view of its epochs: no float32 copy and no concatenation, so
    memory is K x N x C x 2 bytes (2 runs x 100 epochs x 780k rows x 12 AUs:
    3.7 GB, where float32 copies and a concatenation needed 15 GB)."""
    plan = []
    for d in run_dirs:
        eps = complete_epochs(d, split, None if epochs is None else epochs.get(Path(d).name))
        if eps:
            plan.append((d, eps))
    if not plan:
        runs = [load_run_preds(d, split, None if epochs is None else epochs.get(Path(d).name)) for d in run_dirs]
        return [], Candidates.from_runs(runs)    # its error names the runs without a complete epoch
    n, c = index_shape(plan[0][0], split)            # each run's own checks: load_run_preds
    dtype = np.result_type(np.float16, *[np.load(RunDir(d).preds(split, eps[0]), mmap_mode="r").dtype
                                         for d, eps in plan])
    stack = np.empty((sum(len(eps) for _, eps in plan), n, c), dtype)
    runs, at = [], 0
    for d, eps in plan:
        runs.append(load_run_preds(d, split, eps, out=stack[at:at + len(eps)]))
        at += len(eps)
    return runs, Candidates.from_runs(runs, probs=stack)


def _heldout_loader(ws: Workspace, run_dirs: dict, split: str):
    """keys [(run, epoch)] -> their :class:`Candidates` on ``split``, read
    from the files the inference step wrote (:func:`predictions_needed`)."""
    def load(keys) -> Candidates:
        epochs = {}
        for run, e in keys:
            epochs.setdefault(run, []).append(e)
        runs = [stored_preds(run_dirs[run], split, eps) for run, eps in epochs.items()]
        for r in runs:
            add_subjects(r.index, ws)
        return Candidates.from_runs(runs)
    return load


def _workspace_candidates(ws: Workspace, group: str, runs, select_split: str, heldout: str | None):
    """The runs' predictions on ``select_split`` stacked as candidates, and
    the held-out split (``heldout``, else the first the runs' configs name)
    with the run directories, or None and a note why there is none."""
    dirs = select_runs(ws, group, runs)
    if not dirs:
        raise FileNotFoundError(f"no runs of group {group!r} under {ws.train}; train one with notebooks/04_train.ipynb")
    run_preds, select = load_candidates(dirs, select_split)
    add_subjects(select.index, ws)          # with subjects, the cross-fitted folds are subject-exclusive
    if heldout is None:
        names = {heldout_split(r.config) for r in run_preds} - {None}
        heldout = sorted(names)[0] if names else None  # runs naming different splits: the first by name
    notes = []
    if heldout is not None and not (ws.split(heldout).exists() or all(pred_epochs(d, heldout) for d in dirs)):
        notes.append(f"no {heldout} split in the workspace ({ws.split(heldout)}): held-out estimate skipped")
        heldout = None
    return run_preds, select, heldout, notes


def predictions_needed(ws: Workspace, group: str, runs=None, select_split: str = "B", heldout: str | None = None,
                       strategy: str = "threshold", strategies=STRATEGIES,
                       criterion: str = "final") -> list[PredRequest]:
    """The held-out prediction files :func:`choose_for_workspace` reads (its
    arguments but ``folds`` and ``seed``, which do not change them): per run, the
    epochs the choices of ``strategies`` (and ``baseline``, ``strategy``)
    pick on ``select_split``. For the inference step
    :func:`aulib.infer.at_epochs.predict_needed` (notebook 06 calls both
    first); [] when there is no held-out split."""
    run_preds, select, heldout, _ = _workspace_candidates(ws, group, runs, select_split, heldout)
    if heldout is None:
        return []
    check_criterion(criterion)
    picked: dict = {}
    for s in dict.fromkeys(["baseline", *strategies, strategy]):
        ch = choose(select, s, criterion)
        for r, e in zip(ch.run, ch.epoch):
            picked.setdefault(r, set()).add(int(e))
    dirs = {r.run_name: r.run_dir for r in run_preds}
    return [request(dirs[r], heldout, sorted(eps)) for r, eps in picked.items()]


def choose_for_workspace(ws: Workspace, group: str, runs=None, select_split: str = "B", heldout: str | None = None,
                         folds: int = 5, strategy: str = "threshold", strategies=STRATEGIES,
                         seed: int = 0, criterion: str = "final") -> tuple[ChoiceReport, ChosenModel]:
    """Checkpoint and threshold choice for a group over the runs of a
    workspace (``runs`` None: every run of the group). ``heldout`` None takes
    the held-out split named in the runs' configs, whose predictions at the
    epochs the choices pick are read from files: run the inference step of
    :func:`predictions_needed` first. Returns the honest-estimate report and
    the chosen model of ``strategy`` (not yet saved)."""
    run_preds, select, heldout, notes = _workspace_candidates(ws, group, runs, select_split, heldout)
    held = None if heldout is None else _heldout_loader(ws, {r.run_name: r.run_dir for r in run_preds}, heldout)
    report = honest_estimate(select, held, strategies=strategies, folds=folds, seed=seed, criterion=criterion)
    report.notes[:0] = notes
    if strategy not in report.choices:
        report.choices[strategy] = choose(select, strategy, criterion)
    chosen = ChosenModel.from_choice(report.choices[strategy], group, ws.root, run_preds)
    return report, chosen


__all__ = ["CRITERIA", "STRATEGIES", "HONEST_ESTIMATES", "best_threshold", "choose_indices", "group_folds",
           "cross_fitted_decisions",
           "Candidates", "Choice", "choose", "choose_across_runs", "ChoiceReport", "honest_estimate",
           "ChosenModel", "save_chosen", "load_chosen", "load_candidates", "predictions_needed", "choose_for_workspace"]
