"""The selection audit per test fold (docs/benchmarks.md), beside the published table.

For each test fold, each model (one run: what a published row is; and, with
several candidate runs, ``all runs``: a choice across them) and each
selection rule of :mod:`aulib.select.rules`, the mean F1 (%) over the AUs
on the test fold (images as they are) of the rule's choice made

- ``on test``: on the test fold itself, as the public codes do;
- ``on B``: on a held-out part of the training subjects (``B``), then scored
  on the test fold;

and ``owed to test`` = on test - on B: what the number owes to choosing on its
test fold. Rules: ``public rule`` (one candidate for all AUs by mean F1 at
0.5), ``FMAE-IAT rule`` (one candidate and one global threshold of 0.01 ..
0.99 by mean F1), ``paper's rule`` (per AU candidate, then exact threshold, by
the chosen file's ``criterion``); ``no choice``: a single run's last epoch at
0.5 (never an average of runs). Intervals: :func:`_interval` of a cluster
bootstrap over subjects (:mod:`aulib.report.bootstrap`), the same resample
for every column of a fold; the mean over folds resamples each fold
independently.

The arrays come from fold workspaces (:mod:`aulib.report.benchmark_workspace`:
every epoch's predictions on ``H`` and ``B``, 04_train with ``heldout: H``)
or from any code's prediction files (:mod:`aulib.audit`); both go through
:func:`fold_systems` and :func:`benchmark_table`. Imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_csv, write_text
from ..select.rules import FMAE_IAT_GRID, fmae_iat_rule, no_choice, paper_rule, public_rule, rule_decisions
from .bootstrap import INTERVAL, SELECTION_INTERVAL, boot_finals, interval
from .markdown import to_markdown
from .published import published_table

#: The selection rules, in table order.
RULES = ("public rule", "FMAE-IAT rule", "paper's rule")
NO_CHOICE = "no choice"
#: The model that chooses across every candidate run.
ALL_RUNS = "all runs"
#: Value columns of a kit row, in order (each with `` lo`` / `` hi``).
COLUMNS = tuple(c for r in RULES for c in (f"{r} on test", f"{r} on B", f"{r} owed to test")) + (NO_CHOICE,)


@dataclass
class ModelPreds:
    """One model's candidates: ``test`` (K, N, C) on the test fold, ``select``
    (K, Nb, C) on the held-out part (or None), same K candidates in the same
    order; ``single_run``: the candidates are one run's epochs, in order."""

    test: np.ndarray
    select: np.ndarray | None
    single_run: bool


@dataclass
class FoldInputs:
    """One fold: ``labels`` (N, C) and ``clusters`` (N,) of the test fold,
    ``select_labels`` (Nb, C) of the held-out part (None: none given),
    ``models`` {name: :class:`ModelPreds`}, the paper's rule's ``criterion``."""

    aus: tuple[int, ...]
    labels: np.ndarray
    clusters: np.ndarray
    select_labels: np.ndarray | None
    models: dict[str, ModelPreds]
    criterion: str = "f1"


@dataclass
class FoldResult:
    """Decisions (N, C) on the test fold of every model and column of :data:`COLUMNS`
    it has (``systems``: {model: {column: decisions}}); ``candidates``: {model: K};
    ``public``: {model: (K, N, C) probabilities on the test fold}, the candidates the
    public rule chooses among, so that its test-fold choice is re-made in every
    resample (models with a choice on B only)."""

    aus: tuple[int, ...]
    labels: np.ndarray
    clusters: np.ndarray
    systems: dict[str, dict[str, np.ndarray]]
    candidates: dict[str, int]
    criterion: str
    has_select: bool = field(default=True)
    public: dict[str, np.ndarray] = field(default_factory=dict)


def _rules(criterion: str) -> dict:
    return {"public rule": public_rule, "FMAE-IAT rule": fmae_iat_rule,
            "paper's rule": lambda labels, probs: paper_rule(labels, probs, criterion)}


def fold_systems(inp: FoldInputs) -> FoldResult:
    """Every rule's choice on the test fold and on B, and no choice, as decisions on the test fold."""
    systems, candidates, public = {}, {}, {}
    for name, m in inp.models.items():
        out = {}
        for rule, fn in _rules(inp.criterion).items():
            out[f"{rule} on test"] = rule_decisions(m.test, *fn(inp.labels, m.test))
            if m.select is not None and inp.select_labels is not None:
                out[f"{rule} on B"] = rule_decisions(m.test, *fn(inp.select_labels, m.select))
                public[name] = m.test
        if m.single_run:
            out[NO_CHOICE] = rule_decisions(m.test, *no_choice(m.test))
        systems[name], candidates[name] = out, int(m.test.shape[0])
    return FoldResult(tuple(inp.aus), inp.labels, inp.clusters, systems, candidates, inp.criterion,
                      inp.select_labels is not None, public)


def remade_public_boot(labels: np.ndarray, test: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int,
                       chunk: int = 8) -> np.ndarray:
    """(n_boot,) the public rule's test-fold choice re-made in every resample: the best mean F1 at 0.5
    among the K candidates ``test`` (K, N, C), on the same resamples as :func:`boot_finals` with ``seed``
    (the same seed draws the same cluster counts), ``chunk`` candidates at a time to bound memory."""
    best = np.full(n_boot, -np.inf)
    for s in range(0, len(test), chunk):
        _, boot = boot_finals(labels, np.asarray(test[s:s + chunk]) >= 0.5, clusters, n_boot, seed, metric="f1")
        best = np.fmax(best, np.nanmax(np.where(np.isfinite(boot), boot, -np.inf), 1))
    return np.where(np.isfinite(best), best, np.nan)


def _interval(point: float, boot: np.ndarray, n, bounds: tuple[float, float],
              method: str = INTERVAL) -> tuple[float, float]:
    """The interval of one number from its bootstrap replicates (the one place the table makes intervals):
    :func:`aulib.report.bootstrap.interval` (basic, or ``method``; tails expanded for ``n`` subjects: an
    int, or one per fold for a mean over folds; clipped to ``bounds``)."""
    lo, hi = interval(np.array([point]), np.asarray(boot, np.float64)[:, None], method=method, n=n,
                      bounds=bounds)
    return float(lo[0]), float(hi[0])


def _kit_row(fold: str, model: str, names: list[str], point: np.ndarray, boot: np.ndarray, images: int,
             subjects: int, candidates: int, n=None, remade: np.ndarray | None = None) -> dict:
    """``n``: subjects resampled (an int; one per fold for the mean), for the interval's tails;
    ``remade`` (B,): the public rule's test-fold choice re-made per resample (:func:`remade_public_boot`),
    which its ``owed to test`` interval resamples (percentile tails: the selection is in the resamples)."""
    row = {"kind": "kit", "fold": fold, "model": model, "images": images, "subjects": subjects,
           "candidates": candidates}
    at = {n: j for j, n in enumerate(names)}
    for col in COLUMNS:
        if col.endswith(" owed to test"):
            rule = col[:-len(" owed to test")]
            a, b = at.get(f"{rule} on test"), at.get(f"{rule} on B")
            if a is None or b is None:
                continue
            p, bt, bounds, method = point[a] - point[b], boot[:, a] - boot[:, b], (-1.0, 1.0), INTERVAL
            if rule == "public rule" and remade is not None:
                bt, method = remade - boot[:, b], SELECTION_INTERVAL
        elif col in at:
            p, bt, bounds, method = point[at[col]], boot[:, at[col]], (0.0, 1.0), INTERVAL
        else:
            continue
        lo, hi = _interval(p, bt, subjects if n is None else n, bounds, method)
        row.update({col: 100 * p, f"{col} lo": 100 * lo, f"{col} hi": 100 * hi})
    return row


def benchmark_table(results: dict[str, FoldResult], dataset: str, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One kit row per fold (``results``: {fold name: FoldResult}) and model,
    and a ``mean`` row per model present in every fold: ``images``,
    ``subjects``, ``candidates``, then each of :data:`COLUMNS` as F1 (%) with
    ``lo`` / ``hi``; then ``dataset``'s published rows (:mod:`aulib.report.published`)
    with their F1 (%), source, epoch selection and note. ``kind``: ``kit`` or ``published``."""
    rows, per_model = [], {}
    for k, (fold, r) in enumerate(results.items()):
        for model, systems in r.systems.items():
            names = list(systems)
            point, boot = boot_finals(r.labels, np.stack([systems[n] for n in names]), r.clusters, n_boot,
                                      seed + k, metric="f1")
            remade = (remade_public_boot(r.labels, r.public[model], r.clusters, n_boot, seed + k)
                      if model in r.public else None)
            n_img, n_subj = len(r.labels), len(np.unique(r.clusters))
            rows.append(_kit_row(fold, model, names, point, boot, n_img, n_subj, r.candidates[model],
                                 remade=remade))
            per_model.setdefault(model, []).append((names, point, boot, n_img, n_subj, r.candidates[model],
                                                    remade))
    for model, parts in per_model.items():
        if len(results) > 1 and len(parts) == len(results) and all(p[0] == parts[0][0] for p in parts):
            remade = None if any(p[6] is None for p in parts) else np.mean([p[6] for p in parts], 0)
            rows.append(_kit_row("mean", model, parts[0][0], np.mean([p[1] for p in parts], 0),
                                 np.mean([p[2] for p in parts], 0), sum(p[3] for p in parts),
                                 sum(p[4] for p in parts), parts[0][5], n=[p[4] for p in parts], remade=remade))
    cols = ["kind", "fold", "model", "images", "subjects", "candidates"]
    cols += [c for col in COLUMNS for c in (col, f"{col} lo", f"{col} hi")]
    kit = pd.DataFrame(rows).reindex(columns=cols)
    pub = published_table(dataset).rename(columns={"method": "fold", "F1": "published F1"})
    pub["kind"] = "published"
    return pd.concat([kit, pub], ignore_index=True) if len(pub) else kit.assign(**{
        "published F1": np.nan, "source": "", "selection": "", "note": ""})


def table_note(criterion: str, has_select: bool, select_name: str = "B") -> list[str]:
    """What each column chose on, by what and among how many candidates (``candidates``: K of the model)."""
    grid = len(FMAE_IAT_GRID)
    lines = [
        f"public rule: one candidate (run, epoch) for every AU, the best mean F1 at threshold 0.5, among the "
        f"model's K candidates (column `candidates`: a run's epochs; `{ALL_RUNS}`: every candidate run's)",
        f"FMAE-IAT rule: one candidate and one global threshold for every AU, the best mean F1, among K x {grid} "
        f"(thresholds 0.01, 0.02, ..., 0.99)",
        f"paper's rule: per AU the candidate with the best {_criterion_words(criterion)} at 0.5 (K per AU), then "
        "the exact best threshold on it by the same score (every cut between distinct probabilities)",
        "on test: the choice made on the test fold itself (as the public codes make it); on B: made on "
        f"{select_name}, a held-out part of the training subjects, then scored on the test fold; owed to test: "
        "on test - on B, what the number owes to choosing on its test fold (the paper's rule's was `optimism`)",
        f"{NO_CHOICE}: a single run's last epoch at 0.5 (no choice of any kind; runs are never averaged here)",
        "every number: mean over the AUs of F1 (%) on the test fold as its images are; [95 % interval]: "
        "basic subject bootstrap with tails expanded for the number of subjects, the same resample for every "
        "column of a fold and model, each fold resampled independently for the mean; measured coverage of the "
        "nominal 95 % (benchmarks/bench_coverage.py, 9-41 subjects a fold): 0.90-0.96 for a fold's F1 and the "
        "3-fold mean; the public rule's `owed to test` re-makes its test-fold choice in every resample "
        "(percentile tails): 0.86-0.95; the other rules' `owed to test` are APPROXIMATE: they hold the test-fold "
        "choice made once fixed and cover only 0.42-0.75 for one fold, 0.86-0.95 for the mean (too narrow); "
        "every interval holds the trained models fixed: they do not include seed or training variance",
    ]
    if not has_select:
        lines.append("no held-out part of the training subjects was given: every rule is made on the test fold "
                     "only, beside no choice; what a number owes to its test fold cannot be separated here")
    return lines


def _criterion_words(criterion: str) -> str:
    return "F1" if criterion == "f1" else "final score (acc + F1) / 2"


def benchmark_markdown(df: pd.DataFrame, title: str, note: list[str] | None = None) -> str:
    """The table for reading: each number as ``64.7 [62.0, 67.1]``; the kit's
    rows, the note, then the published rows."""
    def cell(r, c, sign=""):
        v, lo, hi = (float(r.get(x, np.nan)) for x in (c, f"{c} lo", f"{c} hi"))
        if not np.isfinite(v):
            return ""
        return f"{v:{sign}.1f}" + (f" [{lo:{sign}.1f}, {hi:{sign}.1f}]" if np.isfinite(lo) and np.isfinite(hi) else "")

    kit = df[df["kind"] == "kit"]
    shown = [c for c in COLUMNS if c in kit and kit[c].notna().any()]
    out = pd.DataFrame({"fold": kit["fold"], "model": kit["model"]})
    for c in shown:
        out[c] = [cell(r, c, "+" if c.endswith("owed to test") else "") for _, r in kit.iterrows()]
    out["images"] = [str(int(v)) for v in kit["images"]]
    out["subjects"] = [str(int(v)) for v in kit["subjects"]]
    out["candidates"] = [str(int(v)) for v in kit["candidates"]]
    text = f"# {title}\n\n" + to_markdown(out) + "\n"
    if note:
        text += "\n" + "\n".join(f"- {n}" for n in note) + "\n"
    pub = df[df["kind"] == "published"]
    if len(pub):
        table = pd.DataFrame({"method": pub["fold"], "published F1": [f"{v:.1f}" for v in pub["published F1"]],
                              "epoch selection": pub["selection"].fillna(""), "source": pub["source"].fillna("")})
        text += "\n## Published\n\n" + to_markdown(table) + "\n"
        notes = [f"- {m}: {n}" for m, n in zip(pub["fold"], pub["note"].fillna("")) if n]
        text += ("\n" + "\n".join(notes) + "\n") if notes else ""
    return text


def write_benchmark_table(out_dir, stem: str, results: dict[str, FoldResult], dataset: str, title: str,
                          n_boot: int = 1000, seed: int = 0, select_name: str = "B") -> tuple[Path, Path]:
    """``<out_dir>/<stem>.csv|md`` of :func:`benchmark_table`; returns both paths."""
    df = benchmark_table(results, dataset, n_boot, seed)
    first = next(iter(results.values()))
    note = table_note(first.criterion, all(r.has_select for r in results.values()), select_name)
    csv, md = Path(out_dir) / f"{stem}.csv", Path(out_dir) / f"{stem}.md"
    write_csv(csv, df)
    write_text(md, benchmark_markdown(df, title, note))
    return csv, md
