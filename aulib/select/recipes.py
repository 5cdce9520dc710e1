"""Recipe fitting for the paper's Tables 1 and 3: which runs, predictions
and choices make each row's system, fitted on (some rows of) B.

The table spec (``<workspace>/table_spec.yaml``, written by the pipeline
runner from a profile's ``tables`` section; a dict of the same shape may be
passed directly) names the runs of each row. Run names are folder names
under ``<workspace>/train/``; a single name or a list is accepted everywhere::

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
    groups:                                      # a profile's own groups (the runner writes them)
      disfa12: {aus: [1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26], crop: aligned}
    disfa12: {baseline: ..., ensemble: [...]}    # then an entry like 17au's

A group entry names a built-in group (:data:`aulib.aus.BUILTIN`) or one of
the spec's ``groups``; the AUs of a table's runs come from their configs, and
runs of one group name that predict different AUs are refused
(:class:`RunCache`, :func:`aulib.runs.check_group_aus`).

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

The three estimates (``ESTIMATES``) of a recipe (:func:`recipe_decisions`):
``B`` (every choice fitted on all of B and scored on it, the paper's
protocol), ``B cross-fit`` (fitted on k-1 folds of B, applied to the
remaining fold, decisions pooled) and ``Held-out`` (fitted on all of B,
applied to the held-out split's predictions at the same epochs). Rows and
gains are assembled by :mod:`aulib.report.tables`.

Only prediction files are read. The held-out epochs a fitted system picks
(and the full systems' validation / test epochs) are listed by
:func:`predictions_needed` and written by the inference step
:func:`aulib.infer.at_epochs.predict_needed` (notebook 07 calls both first);
a missing file is a :class:`aulib.select.stored.MissingPredictions` naming it.
"""
from __future__ import annotations

import copy
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import aus as aulib_aus
from ..io import read_yaml
from ..metrics import au_scores, batched_scores, decide, summarize
from ..runs import RunPreds, check_group_aus, heldout_split, load_run_preds, pred_epochs, select_runs
from ..workspace import RunDir
from .chosen import ChosenModel, save_chosen
from .ensemble import TOP_K, LinearEnsemble, choose_ensemble_epochs, ensemble_rules, fit_linear_ensemble
from .folds import add_subjects, cluster_ids, fold_groups, group_folds
from .rules import choose_indices
from .stored import PredRequest, merge_requests, request, stored_preds
from .threshold import best_threshold

ESTIMATES = ("B", "B cross-fit", "Held-out")
#: Splits Table 2 scores the full systems on.
TABLE2_SPLITS = ("validation", "test")
#: The table spec's key of the seed replicas ({run: {seed: replica run}}).
SEED_REPLICAS = "seed_replicas"
#: The spec key listing a profile's own AU groups ({name: {aus, crop}}).
SPEC_GROUPS = "groups"


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
    return TABLE1_RECIPES["17au" if group_spec.get("pretrained") else "6au"]


def table1_groups(spec) -> list[str]:
    """Groups that get a Table 1: every group of the spec that names
    ``ensemble`` runs (Table 3's ``12au`` entry names none), in spec order."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    known = spec_groups(full)
    return [g for g, v in full.items() if isinstance(v, dict) and g in known and v.get("ensemble")]


def spec_groups(spec: dict) -> set[str]:
    """Names of the AU groups a table spec may have entries for: the built-in
    groups and the spec's own ``groups`` (a profile's, :meth:`aulib.pipeline.Profile.table_spec`)."""
    return {*aulib_aus.BUILTIN, *(spec.get(SPEC_GROUPS) or {})}


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
                                    "'tables' section, or pass table_spec as a dict (format: aulib.select.recipes)")
        spec = read_yaml(path) or {}
        if not isinstance(spec, dict):
            raise ValueError(f"{path} must hold a mapping (group -> row key -> run names)")
    out = {}
    own = aulib_aus.parse_groups(spec.get(SPEC_GROUPS), where=f"table spec: {SPEC_GROUPS}")
    known = {*aulib_aus.BUILTIN, *own}
    for key, val in spec.items():
        if key == SEED_REPLICAS:
            out[key] = check_seed_replicas(val)
        elif key == SPEC_GROUPS:
            out[key] = own
        elif isinstance(val, dict):
            if key not in known:
                raise ValueError(f"table spec: {key!r} is not an AU group ({sorted(known)}); a profile's own "
                                 f"group is listed under {SPEC_GROUPS}: {{name: {{aus: [...], crop: aligned}}}}")
            out[key] = {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in val.items()}
        else:
            out[key] = val
    return out


def check_seed_replicas(value) -> dict[str, dict[int, str]]:
    """The spec's ``seed_replicas`` checked: {run: {seed (int): replica run}}."""
    if not isinstance(value, dict) or not all(isinstance(m, dict) for m in value.values()):
        raise ValueError(f"table spec: {SEED_REPLICAS} maps each run to {{seed: replica run}}, got {value!r}")
    return {str(run): {int(s): str(name) for s, name in m.items()} for run, m in value.items()}


def row_replicas(names: list[str], replicas: dict) -> dict[int, list[str]]:
    """{seed: the row's runs under that seed} for the seeds every run of the
    row that has replicas has (a run without replicas stands in every seed);
    {} when no run of the row has replicas."""
    own = [set(replicas[n]) for n in names if n in replicas]
    if not own:
        return {}
    return {s: [replicas.get(n, {}).get(s, n) for n in names] for s in sorted(set.intersection(*own))}


def group_runs(spec: dict, group: str) -> dict:
    spec = load_table_spec(spec) if not isinstance(spec, dict) else spec
    sub = spec.get(group, spec if not any(g in spec for g in spec_groups(spec)) else {})
    return {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in sub.items() if k != SPEC_GROUPS}


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


def fitted_ensemble(recipe: Recipe, runs: list[RunPreds], rows: np.ndarray, labels: np.ndarray,
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


def fit_system(recipe: Recipe, runs: list[RunPreds], rows: np.ndarray, C: float = 1.0,
               top_k: int | None = ENSEMBLE_TOP_K) -> tuple[FittedSystem, np.ndarray]:
    """Fit ``recipe`` on ``rows`` (indices) of the runs' B predictions, as the
    paper does: epochs, ensemble and thresholds all chosen on those rows.
    An ensemble's fitting rule is chosen on those rows too, by the score it is
    judged by (mean final at 0.5), among :func:`ensemble_rules` (the members'
    balancing rule first, winning ties); a chosen ensemble's epochs are chosen
    per AU for the ensemble over combinations of its members' epochs
    (:func:`choose_ensemble_epochs`: exhaustive under a budget, else coordinate ascent; ``top_k`` candidate epochs per member and
    AU, :data:`ENSEMBLE_TOP_K`; None: all; the unchosen epoch is always among
    them), so in-sample neither choice can lose to the row before it. Each
    distinct ensemble is fitted once per process (:func:`fitted_ensemble`).
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
            fit = fitted_ensemble(recipe, runs, rows, labels, first, neg_weight, C, top_k)
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
    return recipe_scores(dec, runs_b[0].aus), system


def recipe_scores(decisions: dict, aus) -> dict:
    """{estimate: {acc, f1, final}} of :func:`recipe_decisions`' output (NaN where no decisions)."""
    nan = {"acc": np.nan, "f1": np.nan, "final": np.nan}
    return {est: nan if d is None else summarize(au_scores(lab, d, aus)) for est, (lab, d, _) in decisions.items()}


def recipe_decisions(recipe: Recipe, runs_b: list[RunPreds], runs_h=None,
                     folds: int = 5, seed: int = 0, C: float = 1.0) -> tuple[dict, FittedSystem]:
    """0/1 decisions of a recipe under each estimate: {estimate: (labels (N, C),
    decisions (N, C) or None, clusters (N,))} for ``ESTIMATES`` (held-out
    decisions None when ``runs_h`` is None), and the system fitted on all of B.
    ``runs_h``: the runs' held-out predictions, or a function of the fitted
    system's epochs (R, C) that gives them (:meth:`RunCache.heldout`).
    Clusters (:func:`.folds.cluster_ids`) are what a bootstrap resamples."""
    labels = runs_b[0].labels
    n = len(labels)
    index = runs_b[0].index
    groups = fold_groups(index)
    for r in runs_b[1:]:
        if not np.array_equal(r.labels, labels) or len(r.index) != n:
            raise ValueError(f"runs {runs_b[0].run_name} and {r.run_name} have different {r.split} rows")
    system, fit_probs = fit_system(recipe, runs_b, np.arange(n), C)
    clusters = cluster_ids(index)
    out = {"B": (labels, decide(fit_probs, system.thresholds), clusters)}
    fold = group_folds(groups, folds, seed)
    dec = np.zeros(labels.shape, np.int8)
    for f in np.unique(fold):
        test = np.flatnonzero(fold == f)
        sys_f, _ = fit_system(recipe, runs_b, np.flatnonzero(fold != f), C)
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


# --------------------------------------------------------------------------- workspace

class RunCache:
    """Loads each (run, split) once per table; runs of one group name must
    predict the same AUs (:func:`aulib.runs.check_group_aus`)."""

    def __init__(self, ws):
        self.ws, self.cache = ws, {}

    def get(self, names: list[str], split: str) -> list[RunPreds]:
        dirs = select_runs(self.ws, None, names)
        out = []
        for name, d in zip(names, dirs):
            if (name, split) not in self.cache:
                self.cache[(name, split)] = load_run_preds(d, split)
                add_subjects(self.cache[(name, split)].index, self.ws)   # subject-exclusive folds, clusters
                check_group_aus(self.cache.values())   # one group name, one AU list, in every table
            out.append(self.cache[(name, split)])
        return out

    def resolve_heldout(self, names: list[str], split: str | None, multicrop: bool) -> tuple[str | None, str]:
        """``(split, "")``: the held-out split of the runs ``names`` (``split``,
        else the first their configs name); or ``(None, reason)`` when there is none."""
        if split is None:
            found = {heldout_split(self.get([n], "B")[0].config) for n in names} - {None}
            if not found:
                return None, "no held-out split named in the runs' configs"
            split = sorted(found)[0]
        dirs = select_runs(self.ws, None, names)
        if not self.ws.split(split).exists() and not all(pred_epochs(d, RunDir.pred_name(split, multicrop)) for d in dirs):
            return None, f"no {split} split in the workspace ({self.ws.split(split)}) and no {split} predictions"
        return split, ""

    def heldout(self, names: list[str], split: str | None, multicrop: bool):
        """``(load, None)``: ``load(epochs)`` gives the runs' held-out
        predictions at the epochs (R, C) a fitted system picked, read from
        the files the inference step wrote (:func:`predictions_needed`,
        :func:`aulib.select.stored.stored_preds`); or ``(None, reason)``."""
        split, why = self.resolve_heldout(names, split, multicrop)
        if split is None:
            return None, why
        dirs = select_runs(self.ws, None, names)

        def load(epochs: np.ndarray) -> list[RunPreds]:
            runs = [stored_preds(d, split, e, multicrop) for d, e in zip(dirs, epochs)]
            for r in runs:
                add_subjects(r.index, self.ws)
            return runs

        return load, None


def table_rows(spec) -> dict[str, list[str]]:
    """{table name: its row names} of every table the spec gives runs for:
    ``table1_<group>`` for each :func:`table1_groups` group, then ``table3``
    when the spec has a ``12au`` entry."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    out = {f"table1_{g}": [r.row for r in table1_recipes(g, group_runs(full, g))] for g in table1_groups(full)}
    if isinstance(full.get("12au"), dict):
        out["table3"] = [r.row for r in TABLE3_RECIPES]
    return out


def row_recipe(full: dict, table: str, row: str) -> tuple[Recipe, list[str]]:
    """A row's recipe and the runs the spec names for it (maybe none)."""
    if table == "table3":
        gspec, recipes = group_runs(full, "12au"), TABLE3_RECIPES
    elif table.startswith("table1_"):
        group = table[len("table1_"):]
        if group not in spec_groups(full):
            raise ValueError(f"table {table!r}: {group!r} is not an AU group ({sorted(spec_groups(full))})")
        gspec = group_runs(full, group)
        recipes = table1_recipes(group, gspec)
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
    rec, names = row_recipe(full, table, row)
    if not names:
        return f"the table spec names no '{rec.runs}' runs"
    split = RunDir.pred_name("B", rec.multicrop)
    lacking = [n for n in names if not pred_epochs(ws.run(n), split)]
    return f"run(s) {', '.join(lacking)} have no {split} predictions under {ws.train}" if lacking else None



def full_system(ws, group: str, spec) -> ChosenModel:
    """The chosen model of ``group``'s full system (the last Table 1 row's
    recipe fitted on all of B) with its ensemble, per-run epochs and
    thresholds, ready for :func:`aulib.select.chosen.save_chosen` and :func:`aulib.report.tables.table2`."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    rec = table1_recipes(group, group_runs(full, group))[-1]
    names = group_runs(full, group).get(rec.runs) or []
    if not names:
        raise ValueError(f"table spec names no '{rec.runs}' runs for {group}; the full system needs them")
    runs = RunCache(ws).get(names, "B_mc" if rec.multicrop else "B")
    system, _ = fit_system(rec, runs, np.arange(len(runs[0].index)), float(full.get("C", 1.0)))
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
        if group_runs(full, g).get(table1_recipes(g, group_runs(full, g))[-1].runs):
            out[g] = full_system(ws, g, full)
            if save:
                save_chosen(ws.root / "chosen" / f"{g}_full.yaml", out[g])
    return out


def _chosen_epochs(chosen: ChosenModel) -> tuple[LinearEnsemble | None, list[tuple[str, np.ndarray]], bool]:
    """A chosen model's ensemble (or None), its runs with the epoch of every
    AU (C,) each is read at, and whether it reads multi-crop predictions."""
    ens = LinearEnsemble.from_dict(chosen.ensemble) if chosen.ensemble else None
    if ens is not None:
        run_names = list(ens.runs)
        epochs = ens.epochs if ens.epochs is not None else np.array(
            [[p["epoch"]] * len(run_names) for p in chosen.per_au])
        return ens, [(n, epochs[:, i]) for i, n in enumerate(run_names)], bool(ens.multicrop)
    per_run = []
    for name in dict.fromkeys(p["run"] for p in chosen.per_au):
        own = [p["epoch"] for p in chosen.per_au if p["run"] == name]
        per_run.append((name, np.array([p["epoch"] if p["run"] == name else own[0] for p in chosen.per_au])))
    return None, per_run, False


def chosen_requests(ws, chosen: ChosenModel, split: str) -> list[PredRequest]:
    """The prediction files :func:`chosen_probs` reads for ``chosen`` on ``split``."""
    _, per_run, multicrop = _chosen_epochs(chosen)
    return [request(chosen.run_dir(name, ws.root), split, eps, multicrop) for name, eps in per_run]


def chosen_probs(ws, chosen: ChosenModel, split: str, images=None) -> np.ndarray:
    """(N, C) probabilities of a chosen model on a split of the workspace,
    read from the runs' ``preds/<split>[_mc]_epoch<NNN>.npy``
    (:func:`chosen_requests` lists them; the inference step
    :func:`aulib.infer.at_epochs.predict_needed` writes those missing).
    ``images`` (N,): the split's image column, checked against the saved
    predictions' index."""
    ens, per_run, multicrop = _chosen_epochs(chosen)
    pred_split = RunDir.pred_name(split, multicrop)

    def run_probs(name: str, eps: np.ndarray) -> np.ndarray:
        d = chosen.run_dir(name, ws.root)
        rp = stored_preds(d, split, eps, multicrop)
        if images is not None and not np.array_equal(rp.index["image"].to_numpy(), np.asarray(images)):
            raise ValueError(f"{d}/preds/{pred_split}_index.csv lists other images than splits/{split}.csv; "
                             f"delete the run's {pred_split} predictions so they are made again")
        return _at(rp, eps)

    if ens is not None:
        return ens.predict([run_probs(n, eps) for n, eps in per_run])
    out = None
    for name, eps in per_run:
        cols = np.array([p["run"] == name for p in chosen.per_au])
        p = run_probs(name, eps)
        out = np.zeros_like(p) if out is None else out
        out[:, cols] = p[:, cols]
    return out


def predictions_needed(ws, spec, splits=TABLE2_SPLITS) -> list[PredRequest]:
    """The prediction files the tables read and training did not write, for
    the inference step :func:`aulib.infer.at_epochs.predict_needed`
    (notebook 07 calls both before the tables): per row of every table
    (:func:`table_rows`), its runs' held-out predictions at the epochs its
    system fitted on all of B picks; per full system (:func:`full_systems`),
    its runs' predictions on each of ``splits`` the workspace has (Table 2)."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    cache, C, out = RunCache(ws), float(full.get("C", 1.0)), []
    for table, rows in table_rows(full).items():
        for row in rows:
            rec, names = row_recipe(full, table, row)
            split = cache.resolve_heldout(names, full.get("heldout"), rec.multicrop)[0] if names else None
            if split is None:
                continue
            runs_b = cache.get(names, "B_mc" if rec.multicrop else "B")
            system, _ = fit_system(rec, runs_b, np.arange(len(runs_b[0].labels)), C)
            out += [request(r.run_dir, split, e, rec.multicrop) for r, e in zip(runs_b, system.epochs)]
    for chosen in full_systems(ws, full, save=False).values():
        out += [r for split in splits if ws.split(split).exists() for r in chosen_requests(ws, chosen, split)]
    return merge_requests(out)
