"""The paper's Tables 1-3 rebuilt from run directories, its numbers beside ours.

Table spec (``<workspace>/table_spec.yaml``, written by the pipeline runner
from a profile's ``tables`` section; a dict of the same shape may be passed
directly). Run names are folder names under ``<workspace>/train/``; a single
name or a list is accepted everywhere::

    heldout: test          # optional: held-out split (default: the runs' config `heldout`)
    folds: 5               # optional: cross-fitting folds (grouped by image)
    17au:
      baseline: 17au_lcnet_a                     # one multi-view run trained on A
      ensemble: [17au_lcnet_a, 17au_mnv3_a]      # runs with different backbones, trained on A
      pretrained: [17au_lcnet_ft, 17au_mnv3_ft]  # the same backbones, pretrain(A+C) -> finetune(A)
    6au:
      baseline: 6au_lcnet_a
      ensemble: [6au_lcnet_a, 6au_mnv3_a]
    12au:                                        # Table 3 (12 AUs of EmotioNet 2018)
      baseline: 12au_lcnet_a
      no_mv: 12au_lcnet_nomv                     # trained without L_mv
      no_cr: 12au_lcnet_nocr                     # without L_cr
      no_balance: 12au_lcnet_nobal               # without batch balancing

A row whose runs the spec does not name keeps the paper's numbers and gets
NaN for ours, with a note.

Recipe of each row (one "system": which runs, which predictions, which choices):

- *Baseline*: one run; its best-average epoch on B (the epoch with the best
  mean final score at 0.5); threshold 0.5; no ensemble.
- *Ensemble*: the ``ensemble`` runs, each at its own best-average epoch;
  combined by the per-AU linear ensemble (:mod:`aulib.select.ensemble`),
  fitted by the rule (the members' balancing, or plain log-loss) that scores
  better on B at 0.5; threshold 0.5.
- *-multicrop*: the runs' ``B_mc`` predictions (multi-crop average) instead
  of ``B`` (and ``<heldout>_mc`` for the held-out estimate).
- *-pretrained*: the ``pretrained`` runs instead of the ``ensemble`` runs.
- *-chosen*: per AU, the members' epochs chosen *for the ensemble* on B:
  combinations of the members' epochs refitted and scored by the ensemble's
  final score at 0.5 (every combination of each member's 10 best where that
  is cheap, else coordinate ascent), the unchosen ensemble's combination
  winning ties (:func:`aulib.select.ensemble.choose_ensemble_epochs`), so
  in-sample on B the step cannot lose to the row above it. Each distinct
  ensemble (members' prediction files, rows, rule, ...) is fitted once and
  shared by the rows, estimates and :func:`full_systems` that need it.
- *-threshold*: per-AU thresholds chosen (exact search,
  :func:`aulib.select.threshold.best_threshold`) on the ensemble's B probabilities
  (in-sample: the ensemble fitted on the same rows, as in the paper).

Three estimates of every row (F1, Accuracy, Final score each):

- ``B``: the paper's protocol: every choice (epochs, ensemble weights,
  thresholds) fitted on all of B and scored on B, in-sample, for every row
  alike (Baseline and ensembles).
- ``B cross-fit``: the whole recipe (epochs, ensemble, thresholds) fitted on
  k-1 folds of B and applied to the remaining fold (out-of-fold); decisions
  pooled, scored once.
- ``Held-out``: the recipe fitted on all of B, applied to the runs'
  predictions on the held-out split at the same epochs (degraded x4 like B).

Gains with 95 % paired cluster-bootstrap intervals (:mod:`.bootstrap`;
resamples of B's images, their four copies together) on the final score,
for every estimate: ``<estimate> gain vs Baseline`` (each row against the
table's Baseline row) and, in Table 1, ``<estimate> gain vs previous row``
(the step the row adds, e.g. the paper's "chosen" and "threshold" gains);
``... lo`` / ``... hi`` bound the interval, ``Paper gain ...`` is the paper's.
Spec keys ``bootstrap`` (resamples, default 1000; 0: no intervals) and ``seed``.

Seed spread (only when the spec's ``seed_replicas``, {run: {seed: replica
run}}, which the pipeline runner writes for a profile's ``seeds``, gives a
row's runs replicas; otherwise the table has none of these columns): the
bootstrap interval resamples images for fixed trained models, the seed spread
retrains them. A row's recipe is fitted again for every seed on the seed's
replicas of all its runs together (a run without replicas, such as the noisy
filter's base model, is the same in every seed); ``seeds`` is the number of
seeds a row's score was computed for (1: trained once) and, for ``B`` and
``B cross-fit``, ``<estimate> Final seed sd`` is the sample standard
deviation (n - 1) over those seeds of the row's final score, ``<estimate>
gain <comparison> seed sd`` that of its gain, seed by seed (NaN with fewer
than two seeds, or when neither row has replicas). The other columns stay the
first seed's runs' (the spec's names), so they match a one-seed table.
"""
from __future__ import annotations

import copy
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import aus as aulib_aus
from ..data.splits import read_split
from ..infer.at_epochs import preds_at_epochs
from ..infer.sharded import pred_name
from ..io import read_yaml, write_csv, write_text
from ..metrics import au_scores, batched_scores, decide, summarize, trivial_f1
from ..runs import RunPreds, heldout_split, load_run_preds, pred_epochs, select_runs
from ..select.choose import choose_indices
from ..select.chosen import ChosenModel, load_chosen, save_chosen
from ..select.ensemble import TOP_K, LinearEnsemble, choose_ensemble_epochs, ensemble_rules, fit_linear_ensemble
from ..select.folds import add_subjects, fold_groups, group_folds
from ..select.threshold import best_threshold
from ..workspace import RunDir
from . import paper
from .bootstrap import cluster_ids, paired_gains
from .markdown import to_markdown

ESTIMATES = ("B", "B cross-fit", "Held-out")
#: Estimates that get a seed spread (their seeds' recipes are fitted on B alone).
SEED_ESTIMATES = ("B", "B cross-fit")
#: The table spec's key of the seed replicas ({run: {seed: replica run}}).
SEED_REPLICAS = "seed_replicas"
METRICS = (("f1", "F1"), ("acc", "Acc"), ("final", "Final"))


@dataclass(frozen=True)
class Recipe:
    """How one table row is computed (see the module docstring).

    ``runs``: the spec key naming its runs; ``epochs``: ``average`` (best
    mean epoch per run) or ``chosen`` (per-AU epoch per run)."""

    row: str
    runs: str
    multicrop: bool = False
    epochs: str = "average"
    ensemble: bool = False
    threshold: bool = False


TABLE1_RECIPES: dict[str, tuple[Recipe, ...]] = {
    "17au": (
        Recipe("Baseline", "baseline"),
        Recipe("Ensemble", "ensemble", ensemble=True),
        Recipe("Ensemble-multicrop", "ensemble", multicrop=True, ensemble=True),
        Recipe("Ensemble-multicrop-pretrained", "pretrained", multicrop=True, ensemble=True),
        Recipe("Ensemble-multicrop-pretrained-chosen", "pretrained", multicrop=True, epochs="chosen", ensemble=True),
        Recipe("Ensemble-multicrop-pretrained-chosen-threshold", "pretrained", multicrop=True, epochs="chosen",
               ensemble=True, threshold=True),
    ),
    "6au": (
        Recipe("Baseline", "baseline"),
        Recipe("Ensemble", "ensemble", ensemble=True),
        Recipe("Ensemble-chosen", "ensemble", epochs="chosen", ensemble=True),
        Recipe("Ensemble-chosen-threshold", "ensemble", epochs="chosen", ensemble=True, threshold=True),
    ),
}
TABLE3_RECIPES: tuple[Recipe, ...] = (
    Recipe("w/o L_mv", "no_mv"), Recipe("w/o L_cr", "no_cr"),
    Recipe("w/o batch balancing", "no_balance"), Recipe("Baseline", "baseline"),
)
#: The recipe of the full system per group (the last Table 1 row), used for Table 2.
FULL_SYSTEM: dict[str, Recipe] = {g: r[-1] for g, r in TABLE1_RECIPES.items()}


def table1_recipes(group: str, group_spec: dict) -> tuple[Recipe, ...]:
    """Table 1 rows of a group: the paper's for 17au / 6au; for a profile's
    own group, 17au's when its spec names ``pretrained`` runs, else 6au's."""
    if group in TABLE1_RECIPES:
        return TABLE1_RECIPES[group]
    aulib_aus.group_aus(group)
    return TABLE1_RECIPES["17au" if group_spec.get("pretrained") else "6au"]


def table1_groups(spec) -> list[str]:
    """Groups that get a Table 1: every group of the spec that names
    ``ensemble`` runs (Table 3's ``12au`` entry names none), in spec order."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    return [g for g, v in full.items() if isinstance(v, dict) and g in aulib_aus.GROUPS and v.get("ensemble")]


# --------------------------------------------------------------------------- spec

def load_table_spec(spec=None, ws=None) -> dict:
    """The table spec as a dict: ``spec`` itself (a dict), a YAML path, or
    (None) ``<ws.root>/table_spec.yaml``. Run lists are normalised to lists."""
    if spec is None:
        if ws is None:
            raise ValueError("give a table spec or a workspace holding table_spec.yaml")
        spec = ws.root / "table_spec.yaml"
    if not isinstance(spec, dict):
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"table spec {path} not found; the pipeline runner writes it from the profile's "
                                    "'tables' section, or pass table_spec as a dict (format: aulib.report.tables)")
        spec = read_yaml(path) or {}
        if not isinstance(spec, dict):
            raise ValueError(f"{path} must hold a mapping (group -> row key -> run names)")
    out = {}
    for key, val in spec.items():
        if key == SEED_REPLICAS:
            out[key] = _seed_replicas(val)
        elif isinstance(val, dict):
            if key not in aulib_aus.GROUPS:
                raise ValueError(f"table spec: {key!r} is not an AU group ({sorted(aulib_aus.GROUPS)})")
            out[key] = {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in val.items()}
        else:
            out[key] = val
    return out


def _seed_replicas(value) -> dict[str, dict[int, str]]:
    """The spec's ``seed_replicas`` checked: {run: {seed (int): replica run}}."""
    if not isinstance(value, dict) or not all(isinstance(m, dict) for m in value.values()):
        raise ValueError(f"table spec: {SEED_REPLICAS} maps each run to {{seed: replica run}}, got {value!r}")
    return {str(run): {int(s): str(name) for s, name in m.items()} for run, m in value.items()}


def _row_replicas(names: list[str], replicas: dict) -> dict[int, list[str]]:
    """{seed: the row's runs under that seed} for the seeds every run of the
    row that has replicas has (a run without replicas stands in every seed);
    {} when no run of the row has replicas."""
    own = [set(replicas[n]) for n in names if n in replicas]
    if not own:
        return {}
    return {s: [replicas.get(n, {}).get(s, n) for n in names] for s in sorted(set.intersection(*own))}


def _group_spec(spec: dict, group: str) -> dict:
    spec = load_table_spec(spec) if not isinstance(spec, dict) else spec
    sub = spec.get(group, spec if not any(g in spec for g in aulib_aus.GROUPS) else {})
    return {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in sub.items()}


# --------------------------------------------------------------------------- systems

def _at(run: RunPreds, epochs: np.ndarray, rows=None) -> np.ndarray:
    """(n, C) probabilities of ``run`` taking AU c at epoch number ``epochs[c]``."""
    pos = {int(e): i for i, e in enumerate(run.epochs)}
    missing = sorted({int(e) for e in epochs} - set(pos))
    if missing:
        raise KeyError(f"run {run.run_name} has no {run.split} predictions at epochs {missing}")
    idx = np.array([pos[int(e)] for e in epochs])
    rows = np.arange(run.probs.shape[1]) if rows is None else np.asarray(rows)
    p = run.probs[idx[:, None], rows[None, :], np.arange(len(idx))[:, None]].T
    return np.asarray(p, dtype=np.float32)


@dataclass
class FittedSystem:
    """A recipe fitted on some rows of B: per run the epoch of every AU
    (R, C), the ensemble (or None), per-AU thresholds (C,)."""

    runs: list[str]
    epochs: np.ndarray
    ensemble: LinearEnsemble | None
    thresholds: np.ndarray

    def probs(self, runs: list[RunPreds], rows=None) -> np.ndarray:
        """(n, C) probabilities on other predictions of the same runs."""
        per_run = [_at(r, e, rows) for r, e in zip(runs, self.epochs)]
        return self.ensemble.predict(per_run) if self.ensemble is not None else per_run[0]


#: Fitted ensembles shared by every row, rule, estimate (full fit and cross-fitting folds) and
#: :func:`full_systems`: {:func:`_ensemble_key`: (ensemble, epochs (R, C))}, least recently used dropped.
_ENSEMBLES: OrderedDict = OrderedDict()
_ENSEMBLES_MAX = 256


def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
    return h.hexdigest()


def _preds_key(run: RunPreds) -> tuple:
    """What a run's predictions are: its folder, split, epochs and each
    prediction file's inode, size and modification time (a rewrite, atomic
    by rename, makes a new inode; the arrays' content where the run has no files)."""
    rd = RunDir(run.run_dir)
    try:
        files = tuple((st.st_ino, st.st_size, st.st_mtime_ns)
                      for st in (os.stat(rd.preds(run.split, e)) for e in run.epochs))
    except (OSError, TypeError):
        files = _digest(run.probs)
    return str(Path(run.run_dir).resolve()), run.split, tuple(int(e) for e in run.epochs), files


def _ensemble_key(recipe: Recipe, runs: list[RunPreds], rows: np.ndarray, labels: np.ndarray, first: np.ndarray,
                  neg_weight, C: float, top_k: int | None) -> tuple:
    """Everything one fitted ensemble depends on: the members' predictions,
    the fitting rows and their labels, the unchosen epochs, the rule, C and
    (chosen epochs) top_k."""
    return (tuple(_preds_key(r) for r in runs), recipe.epochs, _digest(np.asarray(rows, np.int64), labels),
            tuple(int(f) for f in first[:, 0]), neg_weight, float(C), top_k if recipe.epochs == "chosen" else None)


def _fit_ensemble(recipe: Recipe, runs: list[RunPreds], rows: np.ndarray, labels: np.ndarray,
                  first: np.ndarray, neg_weight, C: float, top_k: int | None):
    """One fitting rule's ensemble of ``recipe`` on ``rows``: (ensemble, epochs (R, C), in-sample probabilities).
    Each distinct fit runs once (:data:`_ENSEMBLES`)."""
    key = _ensemble_key(recipe, runs, rows, labels, first, neg_weight, C, top_k)
    if key in _ENSEMBLES:
        _ENSEMBLES.move_to_end(key)
    else:
        names = [r.run_name for r in runs]
        if recipe.epochs == "chosen":
            idx, coef, intercept, fb = choose_ensemble_epochs([np.asarray(r.probs[:, rows]) for r in runs], labels,
                                                              first[:, 0], C, neg_weight, top_k=top_k)
            epochs = np.stack([r.epochs[idx[:, i]] for i, r in enumerate(runs)])               # (R, C)
            ens = LinearEnsemble(coef, intercept, tuple(runs[0].aus), tuple(names),
                                 tuple(a for a, f in zip(runs[0].aus, fb) if f), neg_weight=neg_weight)
        else:
            epochs = np.stack([r.epochs[i] for r, i in zip(runs, first)])
            ens, _ = fit_linear_ensemble([_at(r, e, rows) for r, e in zip(runs, epochs)], labels, None, None, C,
                                         aus=runs[0].aus, runs=names, neg_weight=neg_weight)
        ens.epochs = epochs.T
        _ENSEMBLES[key] = (ens, epochs)
        while len(_ENSEMBLES) > _ENSEMBLES_MAX:
            _ENSEMBLES.popitem(last=False)
    ens, epochs = copy.deepcopy(_ENSEMBLES[key])
    ens.multicrop = recipe.multicrop
    return ens, epochs, ens.predict([_at(r, e, rows) for r, e in zip(runs, epochs)])


#: Candidate epochs per member and AU of a chosen ensemble (:data:`aulib.select.ensemble.TOP_K`).
ENSEMBLE_TOP_K = TOP_K


def fit_system(recipe: Recipe, runs: list[RunPreds], rows: np.ndarray, groups: np.ndarray, folds: int = 5,
               seed: int = 0, C: float = 1.0, top_k: int | None = ENSEMBLE_TOP_K) -> tuple[FittedSystem, np.ndarray]:
    """Fit ``recipe`` on ``rows`` (indices) of the runs' B predictions, as the
    paper does: epochs, ensemble and thresholds all chosen on those rows.
    An ensemble's fitting rule is chosen on those rows too, by the score it is
    judged by (mean final at 0.5), among :func:`ensemble_rules` (the members'
    balancing rule first, winning ties); a chosen ensemble's epochs are chosen
    per AU for the ensemble over combinations of its members' epochs
    (:func:`choose_ensemble_epochs`: exhaustive under a budget, else coordinate ascent; ``top_k`` candidate epochs per member and
    AU, :data:`ENSEMBLE_TOP_K`; None: all; the unchosen epoch is always among
    them), so in-sample neither choice can lose to the row before it. Each
    distinct ensemble is fitted once per process (:func:`_fit_ensemble`);
    ``groups``, ``folds`` and ``seed`` are accepted for callers but unused
    (the ensemble's own out-of-fold probabilities are not needed here).
    Returns the system and its in-sample B probabilities on those rows (the
    ensemble fitted on them), on which thresholds were chosen."""
    labels = runs[0].labels[rows]
    names = [r.run_name for r in runs]
    if not recipe.ensemble and len(runs) != 1:
        raise ValueError(f"row {recipe.row!r} uses one run, but the spec names {names}")
    first = np.stack([choose_indices(labels, r.probs[:, rows], "baseline")[0] for r in runs])   # (R, C)
    if recipe.ensemble:
        best = None
        for neg_weight in ensemble_rules([r.config for r in runs]):
            fit = _fit_ensemble(recipe, runs, rows, labels, first, neg_weight, C, top_k)
            score = float(batched_scores(labels, fit[2])["mean_final"])
            if best is None or score > best[0]:
                best = (score, fit)
        ens, epochs, fit_probs = best[1]                    # in-sample, the paper's protocol
    else:
        idx = choose_indices(labels, runs[0].probs[:, rows], "baseline" if recipe.epochs == "average" else "chosen")[0]
        epochs = runs[0].epochs[idx][None, :]
        ens, fit_probs = None, _at(runs[0], epochs[0], rows)
    thr = best_threshold(labels, fit_probs)[0] if recipe.threshold else np.full(labels.shape[1], 0.5)
    return FittedSystem(names, epochs, ens, thr), fit_probs


def evaluate_recipe(recipe: Recipe, runs_b: list[RunPreds], runs_h: list[RunPreds] | None = None,
                    folds: int = 5, seed: int = 0, C: float = 1.0) -> tuple[dict, FittedSystem]:
    """Scores of a recipe: {estimate: {acc, f1, final}} for ``ESTIMATES``
    (held-out NaN when ``runs_h`` is None), and the system fitted on all of B."""
    dec, system = recipe_decisions(recipe, runs_b, runs_h, folds, seed, C)
    return _scores(dec, runs_b[0].aus), system


def _scores(decisions: dict, aus) -> dict:
    """{estimate: {acc, f1, final}} of :func:`recipe_decisions`' output (NaN where no decisions)."""
    nan = {"acc": np.nan, "f1": np.nan, "final": np.nan}
    return {est: nan if d is None else summarize(au_scores(lab, d, aus)) for est, (lab, d, _) in decisions.items()}


def recipe_decisions(recipe: Recipe, runs_b: list[RunPreds], runs_h=None,
                     folds: int = 5, seed: int = 0, C: float = 1.0) -> tuple[dict, FittedSystem]:
    """0/1 decisions of a recipe under each estimate: {estimate: (labels (N, C),
    decisions (N, C) or None, clusters (N,))} for ``ESTIMATES`` (held-out
    decisions None when ``runs_h`` is None), and the system fitted on all of B.
    ``runs_h``: the runs' held-out predictions, or a function of the fitted
    system's epochs (R, C) that gives them (:meth:`_RunCache.heldout`).
    Clusters (:func:`.bootstrap.cluster_ids`) are what a bootstrap resamples."""
    labels = runs_b[0].labels
    n = len(labels)
    index = runs_b[0].index
    groups = fold_groups(index)
    for r in runs_b[1:]:
        if not np.array_equal(r.labels, labels) or len(r.index) != n:
            raise ValueError(f"runs {runs_b[0].run_name} and {r.run_name} have different {r.split} rows")
    system, fit_probs = fit_system(recipe, runs_b, np.arange(n), groups, folds, seed, C)
    clusters = cluster_ids(index)
    out = {"B": (labels, decide(fit_probs, system.thresholds), clusters)}
    fold = group_folds(groups, folds, seed)
    dec = np.zeros(labels.shape, np.int8)
    for f in np.unique(fold):
        test = np.flatnonzero(fold == f)
        sys_f, _ = fit_system(recipe, runs_b, np.flatnonzero(fold != f), groups, folds, seed, C)
        dec[test] = decide(sys_f.probs(runs_b, test), sys_f.thresholds)
    out["B cross-fit"] = (labels, dec, clusters)
    if callable(runs_h):
        runs_h = runs_h(system.epochs)
    if runs_h is None:
        out["Held-out"] = (None, None, None)
    else:
        out["Held-out"] = (runs_h[0].labels, decide(system.probs(runs_h), system.thresholds),
                           cluster_ids(runs_h[0].index))
    return out, system


# --------------------------------------------------------------------------- tables

class _RunCache:
    """Loads each (run, split) once per table."""

    def __init__(self, ws):
        self.ws, self.cache = ws, {}

    def get(self, names: list[str], split: str) -> list[RunPreds]:
        dirs = select_runs(self.ws, None, names)
        out = []
        for name, d in zip(names, dirs):
            if (name, split) not in self.cache:
                self.cache[(name, split)] = load_run_preds(d, split)
                add_subjects(self.cache[(name, split)].index, self.ws)   # subject-exclusive folds, clusters
            out.append(self.cache[(name, split)])
        return out

    def heldout(self, names: list[str], split: str | None, multicrop: bool):
        """``(load, None)``: ``load(epochs)`` gives the runs' held-out
        predictions at the epochs (R, C) a fitted system picked, predicted from
        their checkpoints where training did not score them
        (:mod:`aulib.infer.at_epochs`); or ``(None, reason)``."""
        if split is None:
            found = {heldout_split(self.get([n], "B")[0].config) for n in names} - {None}
            if not found:
                return None, "no held-out split named in the runs' configs"
            split = sorted(found)[0]
        dirs = select_runs(self.ws, None, names)
        if not self.ws.split(split).exists() and not all(pred_epochs(d, pred_name(split, multicrop)) for d in dirs):
            return None, f"no {split} split in the workspace ({self.ws.split(split)}) and no {split} predictions"

        def load(epochs: np.ndarray) -> list[RunPreds]:
            runs = [preds_at_epochs(self.ws, d, split, e, multicrop) for d, e in zip(dirs, epochs)]
            for r in runs:
                add_subjects(r.index, self.ws)
            return runs

        return load, None


def _row(recipe: Recipe, paper_row, scores: dict | None, runs: list[str], note: str) -> dict:
    row = {"row": recipe.row, "runs": " + ".join(runs)}
    pf = dict(zip(("f1", "acc", "final"), paper_row)) if paper_row is not None else {}
    for key, label in METRICS:
        row[f"Paper {label}"] = pf.get(key, np.nan)
    for est in ESTIMATES:
        for key, label in METRICS:
            row[f"{est} {label}"] = (scores or {}).get(est, {}).get(key, np.nan)
    row["note"] = note
    return row


def _references(rows: list[str], previous: bool) -> dict[str, list[int | None]]:
    """Gain comparisons: {name: reference row of every row (None: no gain)}."""
    base = rows.index("Baseline")
    refs = {"vs Baseline": [None if i == base else base for i in range(len(rows))]}
    if previous:
        refs["vs previous row"] = [i - 1 if i > 0 else None for i in range(len(rows))]
    return refs


def add_gains(df: pd.DataFrame, decisions: list[dict | None], previous: bool, n_boot: int = 1000,
              seed: int = 0) -> pd.DataFrame:
    """Add gain columns to a table (see the module docstring): for every
    comparison and estimate the final-score gain and its 95 % paired cluster
    bootstrap interval (``lo`` / ``hi``), and the paper's gain.
    ``decisions``: per table row, :func:`recipe_decisions`' dict or None."""
    df = df.copy()
    refs = _references(df["row"].tolist(), previous)
    for name, ref in refs.items():
        pf = df["Paper Final"].to_numpy(np.float64)
        df[f"Paper gain {name}"] = [np.nan if r is None else pf[i] - pf[r] for i, r in enumerate(ref)]
    for est in ESTIMATES:
        final = df[f"{est} Final"].to_numpy(np.float64)
        have = [i for i, d in enumerate(decisions) if d is not None and d[est][1] is not None]
        lab, clusters = (decisions[have[0]][est][0], decisions[have[0]][est][2]) if have else (None, None)
        # every row's decisions must be on the same rows (B and B_mc share the split's index)
        have = [i for i in have if np.array_equal(decisions[i][est][0], lab)
                and np.array_equal(decisions[i][est][2], clusters)]
        pos = {i: k for k, i in enumerate(have)}
        pairs = [(pos[i], pos[r]) for ref in refs.values() for i, r in enumerate(ref)
                 if r is not None and i in pos and r in pos]
        res = {}
        if pairs and n_boot > 0:
            stack = np.stack([decisions[i][est][1] for i in have])
            got = paired_gains(lab, stack, clusters, sorted(set(pairs)), n_boot, seed)
            res = {(int(a), int(b)): (lo, hi) for a, b, lo, hi in zip(got["a"], got["b"], got["lo"], got["hi"])}
        for name, ref in refs.items():
            gain, lo, hi = (np.full(len(df), np.nan) for _ in range(3))
            for i, r in enumerate(ref):
                if r is None:
                    continue
                gain[i] = final[i] - final[r]
                lo[i], hi[i] = res.get((pos.get(i), pos.get(r)), (np.nan, np.nan))
            df[f"{est} gain {name}"], df[f"{est} gain {name} lo"], df[f"{est} gain {name} hi"] = gain, lo, hi
    return df[[c for c in df.columns if c != "note"] + ["note"]]


def _seed_sd(x: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (rows, seeds), the sample standard deviation (n - 1) of
    its finite values; NaN with fewer than two."""
    ok = np.isfinite(x)
    n = ok.sum(axis=1)
    v = np.where(ok, x, 0.0)
    mean = v.sum(axis=1) / np.maximum(n, 1)
    ss = (np.where(ok, x - mean[:, None], 0.0) ** 2).sum(axis=1)
    return np.where(n >= 2, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


def add_seed_spread(df: pd.DataFrame, per_seed: list[dict], previous: bool) -> pd.DataFrame:
    """Add the seed-spread columns (see the module docstring) to a table with
    its gains. ``per_seed``: per table row, {seed: :func:`_scores` of the row's
    recipe on that seed's replicas} ({} when its runs have no replicas). A
    table none of whose rows has replicas is returned unchanged."""
    if not any(per_seed):
        return df
    df = df.copy()
    seeds = sorted({s for p in per_seed for s in p})
    has = np.array([bool(p) for p in per_seed])
    refs = _references(df["row"].tolist(), previous)
    trained_once = np.where(np.isfinite(df["B Final"].to_numpy(np.float64)), 1.0, np.nan)
    df.insert(df.columns.get_loc("runs") + 1, "seeds", np.where(has, [float(len(p)) for p in per_seed], trained_once))
    for est in SEED_ESTIMATES:
        main = df[f"{est} Final"].to_numpy(np.float64)
        # (rows, seeds): a row without replicas scores the same in every seed
        final = np.array([[p[s][est]["final"] if s in p else np.nan for s in seeds] if p else [m] * len(seeds)
                          for p, m in zip(per_seed, main)], dtype=np.float64)
        df.insert(df.columns.get_loc(f"{est} Final") + 1, f"{est} Final seed sd",
                  np.where(has, _seed_sd(final), np.nan))
        for name, ref in refs.items():
            r = np.array([-1 if x is None else x for x in ref])
            sd = _seed_sd(final - final[r])
            keep = (r >= 0) & (has | has[r])
            col = f"{est} gain {name}"
            df.insert(df.columns.get_loc(f"{col} hi") + 1, f"{col} seed sd", np.where(keep, sd, np.nan))
    return df


def _seed_scores(recipe: Recipe, names: list[str], replicas: dict, cache: _RunCache, split: str, scores: dict,
                 folds: int, seed: int, C: float) -> tuple[dict, list[int]]:
    """{seed: :func:`_scores` of ``recipe`` on that seed's replicas of ``names``}
    (B and B cross-fit; ``scores``, the row's own, for the seed whose runs are
    ``names``) and the seeds whose runs are missing; ({}, []) without replicas."""
    out, missing = {}, []
    for s, names_s in _row_replicas(names, replicas).items():
        if names_s == names:
            out[s] = scores
            continue
        try:
            runs_s = cache.get(names_s, split)
        except FileNotFoundError:
            missing.append(s)
            continue
        out[s] = _scores(recipe_decisions(recipe, runs_s, None, folds, seed, C)[0], runs_s[0].aus)
    return out, missing


def _table(ws, recipes, group_spec: dict, paper_rows: dict, heldout: str | None, folds: int, seed: int,
           C: float, n_boot: int, previous: bool, replicas: dict | None = None) -> pd.DataFrame:
    cache = _RunCache(ws)
    replicas = _seed_replicas(replicas) if replicas else {}
    rows, decisions, per_seed = [], [], []
    for rec in recipes:
        names = group_spec.get(rec.runs) or []
        per_seed.append({})
        if not names:
            rows.append(_row(rec, paper_rows.get(rec.row), None, [], f"spec names no '{rec.runs}' runs"))
            decisions.append(None)
            continue
        split = "B_mc" if rec.multicrop else "B"
        runs_b = cache.get(names, split)
        runs_h, why = cache.heldout(names, heldout, rec.multicrop)
        try:
            dec, _ = recipe_decisions(rec, runs_b, runs_h, folds, seed, C)
        except FileNotFoundError as err:       # a pruned checkpoint: no held-out estimate for this row
            dec, _ = recipe_decisions(rec, runs_b, None, folds, seed, C)
            why = str(err)
        scores = _scores(dec, runs_b[0].aus)
        per_seed[-1], missing = _seed_scores(rec, names, replicas, cache, split, scores, folds, seed, C)
        if missing:
            why = "; ".join(filter(None, [why, f"no runs of seed(s) {missing} (seed spread without them)"]))
        rows.append(_row(rec, paper_rows.get(rec.row), scores, names, why or ""))
        decisions.append(dec)
    table = add_gains(pd.DataFrame(rows), decisions, previous, n_boot, seed)
    return add_seed_spread(table, per_seed, previous)


def table1(ws, group: str, spec) -> pd.DataFrame:
    """Table 1 of ``group`` (``17au``, ``6au`` or a profile's own group,
    :func:`table1_recipes`): the paper's rows, the paper's F1/Acc/Final
    beside ours (17au / 6au only) on B, cross-fitted on B and held out."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    gspec = _group_spec(full, group)
    paper_rows = {}
    if group in paper.TABLE1_ROWS:
        p = paper.table1(group)
        paper_rows = {r: (f, a, s) for r, f, a, s in zip(p["row"], p["F1"], p["Accuracy"], p["Final score"])}
    return _table(ws, table1_recipes(group, gspec), gspec, paper_rows, full.get("heldout"),
                  int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0)),
                  int(full.get("bootstrap", 1000)), previous=True, replicas=full.get(SEED_REPLICAS))


def table3(ws, spec) -> pd.DataFrame:
    """Table 3 (12 AUs): baseline and the three ablation runs, each at its
    best-average epoch and threshold 0.5, the paper's numbers beside ours."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    p = paper.table3()
    paper_rows = {r: (f, a, s) for r, f, a, s in zip(p["row"], p["F1"], p["Accuracy"], p["Final score"])}
    return _table(ws, TABLE3_RECIPES, _group_spec(full, "12au"), paper_rows, full.get("heldout"),
                  int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0)),
                  int(full.get("bootstrap", 1000)), previous=False, replicas=full.get(SEED_REPLICAS))


def table_rows(spec) -> dict[str, list[str]]:
    """{table name: its row names} of every table the spec gives runs for:
    ``table1_<group>`` for each :func:`table1_groups` group, then ``table3``
    when the spec has a ``12au`` entry."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    out = {f"table1_{g}": [r.row for r in table1_recipes(g, _group_spec(full, g))] for g in table1_groups(full)}
    if isinstance(full.get("12au"), dict):
        out["table3"] = [r.row for r in TABLE3_RECIPES]
    return out


def _row_recipe(full: dict, table: str, row: str) -> tuple[Recipe, list[str]]:
    """A row's recipe and the runs the spec names for it (maybe none)."""
    if table == "table3":
        gspec, recipes = _group_spec(full, "12au"), TABLE3_RECIPES
    elif table.startswith("table1_"):
        gspec = _group_spec(full, table[len("table1_"):])
        recipes = table1_recipes(table[len("table1_"):], gspec)
    else:
        raise ValueError(f"table {table!r}: expected table1_<group> or table3 ({sorted(table_rows(full))})")
    rec = next((r for r in recipes if r.row == row), None)
    if rec is None:
        raise ValueError(f"{table} has no row {row!r}; its rows: {[r.row for r in recipes]}")
    return rec, list(gspec.get(rec.runs) or [])


def row_missing(ws, spec, table: str, row: str) -> str | None:
    """Why :func:`row_per_au` cannot fit a row, checked from file names only
    (no prediction is read): the spec names no runs for it, or a run lacks
    its B predictions (``B_mc`` for a multi-crop row); None when it can."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    rec, names = _row_recipe(full, table, row)
    if not names:
        return f"the table spec names no '{rec.runs}' runs"
    split = pred_name("B", rec.multicrop)
    lacking = [n for n in names if not pred_epochs(ws.run(n), split)]
    return f"run(s) {', '.join(lacking)} have no {split} predictions under {ws.train}" if lacking else None


def row_per_au(ws, spec, table: str, row: str) -> pd.DataFrame:
    """One table row's per-AU breakdown: the row's recipe fitted again on its
    runs exactly as the table does (:func:`recipe_decisions`), scored per AU
    under each estimate. ``table``: ``table1_<group>`` or ``table3``; ``row``:
    a row name of that table (:func:`table_rows`). Returns one line per
    (estimate, AU): ``estimate, au, acc, f1, final, n, n_pos``; the mean of
    an estimate's ``acc`` and ``f1`` over its AUs gives the table's numbers.
    Reads the runs' saved predictions (held-out ones the table made)."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    rec, names = _row_recipe(full, table, row)
    if not names:
        raise ValueError(f"{table} row {row!r}: the table spec names no '{rec.runs}' runs, so the row has only "
                         "the paper's numbers")
    cache = _RunCache(ws)
    runs_b = cache.get(names, "B_mc" if rec.multicrop else "B")
    runs_h, _why = cache.heldout(names, full.get("heldout"), rec.multicrop)
    folds, seed, C = int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0))
    try:
        dec, _ = recipe_decisions(rec, runs_b, runs_h, folds, seed, C)
    except FileNotFoundError:              # a pruned checkpoint: no held-out estimate, as in the table
        dec, _ = recipe_decisions(rec, runs_b, None, folds, seed, C)
    parts = [au_scores(lab, d, runs_b[0].aus).reset_index().assign(estimate=est)
             for est, (lab, d, _) in dec.items() if d is not None]
    out = pd.concat(parts, ignore_index=True)
    return out[["estimate", "au", "acc", "f1", "final", "n", "n_pos"]]


def per_au_baselines(ws, spec, split: str = "B") -> pd.DataFrame:
    """Per-AU F1 on ``split`` of each table's Baseline run (Tables 1 and 3) at
    its last epoch and threshold 0.5, as Figure 2 plots it: one row per AU
    (``au``, then per run ``F1 <run>``, ``trivial F1 <run>`` and ``positives
    <run>``, the AU's positive rows of ``split``). ``trivial F1`` is the F1 of
    the all-present predictor on the same rows, ``2p / (1 + p)`` for the AU's
    prevalence p (:func:`aulib.metrics.trivial_f1`): an AU whose F1 is at or
    below it is not predicted better than calling it present everywhere."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    out = None
    for group in [*table1_groups(full), "12au"]:
        base = _group_spec(full, group).get("baseline") or []
        if not base or not ws.run(base[0]).exists():
            continue
        run = load_run_preds(ws.run(base[0]), split)
        if not len(run.epochs):
            continue
        per = au_scores(run.labels, decide(run.probs[-1]), run.aus)
        col = pd.DataFrame({f"F1 {run.run_name}": per["f1"],
                            f"trivial F1 {run.run_name}": trivial_f1(per["n"], per["n_pos"]),
                            f"positives {run.run_name}": per["n_pos"]})
        out = col if out is None else out.join(col, how="outer")
    if out is None:
        return pd.DataFrame({"au": []})
    out.index = [f"AU{a}" for a in out.index]
    counts = [c for c in out.columns if c.startswith("positives ")]
    out[counts] = out[counts].astype("Int64")          # whole numbers, <NA> where a group lacks the AU
    return out.rename_axis("au").reset_index()


def full_system(ws, group: str, spec) -> ChosenModel:
    """The chosen model of ``group``'s full system (the last Table 1 row's
    recipe fitted on all of B) with its ensemble, per-run epochs and
    thresholds, ready for :func:`aulib.select.chosen.save_chosen` and :func:`table2`."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    rec = table1_recipes(group, _group_spec(full, group))[-1]
    names = _group_spec(full, group).get(rec.runs) or []
    if not names:
        raise ValueError(f"table spec names no '{rec.runs}' runs for {group}; the full system needs them")
    runs = _RunCache(ws).get(names, "B_mc" if rec.multicrop else "B")
    index = runs[0].index
    groups = fold_groups(index)
    system, _ = fit_system(rec, runs, np.arange(len(index)), groups, int(full.get("folds", 5)),
                           int(full.get("seed", 0)), float(full.get("C", 1.0)))
    root = Path(ws.root).resolve()
    infos = {}
    for r in runs:
        cfg = r.config
        infos[r.run_name] = {"dir": Path(r.run_dir).resolve().relative_to(root).as_posix()
                             if Path(r.run_dir).resolve().is_relative_to(root) else str(r.run_dir),
                             "backbones": [str(b) for b in cfg.get("backbones") or []],
                             "img_size": cfg.get("img_size"), "crop_style": cfg.get("crop_style")}
    per_au = [{"au": int(a), "run": runs[0].run_name, "epoch": int(system.epochs[0, c]),
               "threshold": float(system.thresholds[c])} for c, a in enumerate(runs[0].aus)]
    return ChosenModel(group, [int(a) for a in runs[0].aus], infos, per_au,
                       system.ensemble.to_dict() if system.ensemble is not None else None)


def full_systems(ws, spec, save: bool = True) -> dict[str, ChosenModel]:
    """:func:`full_system` of every Table 1 group whose spec names its runs;
    with ``save`` each is written to ``chosen/<group>_full.yaml`` (beside the
    single-run choice ``chosen/<group>.yaml`` of notebook 06)."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    out = {}
    for g in dict.fromkeys([*FULL_SYSTEM, *table1_groups(full)]):
        if _group_spec(full, g).get(table1_recipes(g, _group_spec(full, g))[-1].runs):
            out[g] = full_system(ws, g, full)
            if save:
                save_chosen(ws.root / "chosen" / f"{g}_full.yaml", out[g])
    return out


def chosen_probs(ws, chosen: ChosenModel, split: str, predict_missing: bool = True, images=None) -> np.ndarray:
    """(N, C) probabilities of a chosen model on a split of the workspace.

    Uses the runs' saved ``preds/<split>[_mc]_epoch<NNN>.npy``; epochs
    without them are predicted from their checkpoints
    (:func:`aulib.infer.at_epochs.preds_at_epochs`, saved for the next time)
    when ``predict_missing``. ``images`` (N,): the
    split's image column, checked against the saved predictions' index."""
    ens = LinearEnsemble.from_dict(chosen.ensemble) if chosen.ensemble else None
    if ens is not None:
        run_names = list(ens.runs)
        epochs = ens.epochs if ens.epochs is not None else np.array(
            [[p["epoch"]] * len(run_names) for p in chosen.per_au])
        pred_split = f"{split}_mc" if ens.multicrop else split
    else:
        run_names = list(dict.fromkeys(p["run"] for p in chosen.per_au))
        epochs = None
        pred_split = split

    def run_probs(name: str, eps: np.ndarray) -> np.ndarray:
        d = chosen.run_dir(name, ws.root)
        rp = (preds_at_epochs(ws, d, split, eps, multicrop=pred_split != split) if predict_missing
              else load_run_preds(d, pred_split, sorted(set(int(e) for e in eps))))
        if images is not None and not np.array_equal(rp.index["image"].to_numpy(), np.asarray(images)):
            raise ValueError(f"{d}/preds/{pred_split}_index.csv lists other images than splits/{split}.csv; "
                             f"delete the run's {pred_split} predictions so they are made again")
        return _at(rp, eps)

    if ens is not None:
        return ens.predict([run_probs(n, epochs[:, i]) for i, n in enumerate(run_names)])
    out = None
    for name in run_names:
        cols = np.array([p["run"] == name for p in chosen.per_au])
        own = [p["epoch"] for p in chosen.per_au if p["run"] == name]
        eps = np.array([p["epoch"] if p["run"] == name else own[0] for p in chosen.per_au])
        p = run_probs(name, eps)
        out = np.zeros_like(p) if out is None else out
        out[:, cols] = p[:, cols]
    return out


def _table2_note(dataset: str | None, split: str) -> str:
    """The note on our Table 2 rows: what they were scored on, and whether the teams' rows compare."""
    if dataset == "emotionet":
        return (f"our chosen models on the {split} split of this workspace's EmotioNet data, scored by aulib; "
                "the teams' rows are the challenge server's scores on its own sets")
    return (f"{dataset or 'this workspace'} data ({split} split), not EmotioNet: NOT comparable with the "
            "EmotioNet teams above; it does not beat the winner")


def table2(ws, chosen=None, splits=("validation", "test"), dataset: str | None = None) -> pd.DataFrame:
    """Table 2: the paper's leaderboard rows (the EmotioNet 2020 teams, both
    phases), then ours in a block of their own: the chosen models
    (``chosen``: {group: ChosenModel or path}; default every
    ``chosen/<group>.yaml`` of 17au and 6au) scored together (all their AUs)
    on the workspace's ``validation`` and ``test`` splits. ``dataset`` (None:
    ``synthau`` when the workspace holds generated SynthAU data) names the
    data in our rows' team and note, so a SynthAU score is never read as a
    place on the EmotioNet leaderboard."""
    if chosen is None:
        chosen = {g: ws.chosen(g) for g in ("17au", "6au") if ws.chosen(g).exists()}
    if dataset is None and (Path(ws.data) / "synthau.yaml").exists():
        dataset = "synthau"
    models = {g: (m if isinstance(m, ChosenModel) else load_chosen(m, ws.root)) for g, m in chosen.items()}
    p = paper.table2().assign(source="paper", note="")
    on = {"synthau": " on SynthAU"}.get(dataset or "", f" on {dataset}" if dataset else "")
    rows = []
    for split in splits:
        row = {"phase": split, "team": f"ours{on} (" + " + ".join(models) + ")", "source": "aulib"}
        if not models:
            rows.append({**row, "note": "no chosen model in the workspace"})
            continue
        if not ws.split(split).exists():
            rows.append({**row, "note": f"workspace has no split {split!r}"})
            continue
        labels, decisions, aus = [], [], []
        try:
            for g, m in models.items():
                table = read_split(split, m.aus, ws=ws)
                labels.append(table[aulib_aus.au_columns(m.aus)].to_numpy(np.int8))
                decisions.append(decide(chosen_probs(ws, m, split, images=table["image"].to_numpy()), m.thresholds))
                aus += list(m.aus)
        except FileNotFoundError as err:      # e.g. no crop store for this split: say so in the row
            rows.append({**row, "note": f"cannot predict {split}: {err}"})
            continue
        s = summarize(au_scores(np.concatenate(labels, 1), np.concatenate(decisions, 1), aus))
        rows.append({**row, "Mean Accuracy": s["acc"], "F1": s["f1"], "Final score": s["final"],
                     "note": _table2_note(dataset, split)})
    ours = pd.DataFrame(rows)
    out = pd.concat([p, ours], ignore_index=True)
    order = {s: i for i, s in enumerate(splits)}
    out["_o"] = out["phase"].map(order)
    out["_s"] = (out["source"] != "paper").astype(int)          # the teams' leaderboard first, ours in a block below
    return out.sort_values(["_s", "_o"], kind="stable").drop(columns=["_o", "_s"]).reset_index(drop=True)[
        ["phase", "team", "Mean Accuracy", "F1", "Final score", "source", "note"]]


# --------------------------------------------------------------------------- output

def with_intervals(df: pd.DataFrame) -> pd.DataFrame:
    """For reading: every column ``X`` with ``X lo`` and ``X hi`` beside it
    becomes one text column ``+0.0102 [-0.0030, +0.0210]`` (empty when ``X`` is NaN)."""
    out = df.copy()
    for col in [c for c in df.columns if f"{c} lo" in df.columns and f"{c} hi" in df.columns]:
        def cell(g, lo, hi):
            if not np.isfinite(g):
                return ""
            return f"{g:+.4f}" + (f" [{lo:+.4f}, {hi:+.4f}]" if np.isfinite(lo) and np.isfinite(hi) else "")
        out[col] = [cell(*v) for v in zip(df[col].astype(float), df[f"{col} lo"].astype(float),
                                           df[f"{col} hi"].astype(float))]
        out = out.drop(columns=[f"{col} lo", f"{col} hi"])
    return out


def write_table(df: pd.DataFrame, name: str, ws) -> tuple[Path, Path]:
    """Write ``<ws.tables>/<name>.csv`` and ``.md`` atomically; returns both
    paths. The Markdown shows each gain with its interval in one cell."""
    csv, md = ws.tables / f"{name}.csv", ws.tables / f"{name}.md"
    write_csv(csv, df)
    write_text(md, to_markdown(with_intervals(df)))
    return csv, md


def style_table(df: pd.DataFrame):
    """A pandas Styler for notebooks: 4 decimals, the paper's columns shaded,
    the best of each of our final-score columns in bold, gains as ``gain [lo, hi]``."""
    df = with_intervals(df)
    num = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    paper_cols = [c for c in df.columns if str(c).startswith("Paper") or c in ("Mean Accuracy", "F1", "Final score")
                  and "source" in df.columns]
    st = df.style.format({c: "{:.4f}" for c in num}, na_rep="–").hide(axis="index")
    if "source" in df.columns:
        st = st.apply(lambda r: ["background-color: #eef2f7" if r["source"] == "paper" else "font-weight: bold"
                                 for _ in r], axis=1)
    else:
        st = st.set_properties(subset=[c for c in paper_cols if c in df.columns],
                               **{"background-color": "#eef2f7"})
        finals = [c for c in df.columns if str(c).endswith("Final") and not str(c).startswith("Paper")]
        st = st.highlight_max(subset=finals, props="font-weight: bold")
    return st
