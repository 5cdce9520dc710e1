"""Three numbers per test fold, beside the published table (docs/benchmarks.md).

For each fold workspace of a published protocol (:mod:`aulib.data.protocols`)
and a group's chosen model (``chosen/<group>.yaml``, notebook 06_choose), on
the test fold ``H`` as its images are (variant 0), per-AU F1 (decision
``prob >= threshold``) averaged over the AUs:

- ``as public codes``: the same choice (strategy, candidate runs: the chosen
  file's ``choice``) made **on the test fold** itself: per AU the epoch (and
  threshold) that scores best on ``H`` -- what a code that validates on its
  test fold reports;
- ``honest``: the chosen model as it is (chosen on ``B``), scored on ``H``
  (the k-fold summary's number);
- ``no choice``: the last epoch at 0.5 (several candidate runs: the mean of
  their last-epoch probabilities).

``optimism`` = as public codes - honest. 95 % intervals resample subjects
(cluster bootstrap, :mod:`aulib.report.bootstrap`, basic interval with
expanded tails; images where the
workspace has no subjects), the same resample for the three systems; the
mean over folds resamples each fold's subjects independently. Needs every
epoch's predictions on ``H`` (04_train with ``heldout: H``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..aus import au_columns
from ..data.splits import read_split
from ..io import write_csv, write_text
from ..metrics import decide
from ..runs import select_runs
from ..select.choose import Candidates, choose, load_candidates
from ..select.chosen import load_chosen
from ..select.folds import add_subjects
from .bootstrap import boot_finals, cluster_ids, interval, mean_over_folds
from .published import published_table
from .tables import chosen_probs, to_markdown

SYSTEMS = ("as public codes", "honest", "no choice")
TEST_SPLIT = "H"
#: The strategy 06_choose uses by default, for chosen files that do not record theirs.
DEFAULT_STRATEGY = "threshold"


@dataclass
class FoldResult:
    """One fold: ``labels`` (N, C) on H's variant-0 rows, ``decisions`` (3, N, C)
    of :data:`SYSTEMS`, ``clusters`` (N,) (subject, else image)."""

    aus: tuple[int, ...]
    labels: np.ndarray
    decisions: np.ndarray
    clusters: np.ndarray
    strategy: str


def _candidate_dirs(ws, chosen) -> tuple[str, list[Path]]:
    how = chosen.choice or {}
    names = how.get("candidates") or None
    dirs = select_runs(ws, chosen.group, names)
    if not dirs:
        raise FileNotFoundError(f"{ws.chosen(chosen.group)}: none of its candidate runs {names} is under {ws.train}")
    return str(how.get("strategy") or DEFAULT_STRATEGY), dirs


def fold_result(ws, group: str) -> FoldResult:
    """The three systems' decisions on fold workspace ``ws``'s test split H."""
    chosen = load_chosen(ws.chosen(group), ws.root)
    if chosen.ensemble is not None:
        raise ValueError(f"{ws.chosen(group)} is an ensemble; the benchmark's three numbers are made for per-AU "
                         "chosen models (06_choose's chosen/<group>.yaml)")
    table = read_split(TEST_SPLIT, chosen.aus, ws=ws)
    rows = (table["variant"] == 0).to_numpy()
    labels = table[au_columns(chosen.aus)].to_numpy(np.int8)[rows]
    strategy, dirs = _candidate_dirs(ws, chosen)
    try:
        runs, cands = load_candidates(dirs, TEST_SPLIT)
    except (FileNotFoundError, ValueError) as err:
        raise FileNotFoundError(f"the benchmark chooses on the test fold and needs every epoch's predictions on "
                                f"{TEST_SPLIT} (04_train with heldout: H): {err}") from None
    honest = decide(chosen_probs(ws, chosen, TEST_SPLIT, images=table["image"].to_numpy())[rows], chosen.thresholds)
    pos = {(img, int(v)): i for i, (img, v) in enumerate(zip(cands.index["image"], cands.index["variant"]))}
    want = list(zip(table["image"].to_numpy()[rows], table["variant"].to_numpy()[rows]))
    missing = [k for k in want if (k[0], int(k[1])) not in pos]
    if missing:
        raise ValueError(f"{runs[0].run_dir}/preds/{TEST_SPLIT}_index.csv lacks image {missing[0][0]!r} of "
                         f"splits/{TEST_SPLIT}.csv; delete the run's {TEST_SPLIT} predictions so they are made again")
    take = np.array([pos[(k[0], int(k[1]))] for k in want], np.int64)
    on_test = Candidates(TEST_SPLIT, cands.aus, cands.keys, labels, np.asarray(cands.probs[:, take]),
                         cands.index.iloc[take].reset_index(drop=True))
    public = choose(on_test, strategy).decisions(on_test)
    last = [cands.keys.index((r.run_name, int(r.epochs[-1]))) for r in runs]
    none = decide(on_test.probs[last].mean(0), 0.5)
    index = add_subjects(table.loc[rows, ["image"]].reset_index(drop=True), ws)
    return FoldResult(tuple(chosen.aus), labels, np.stack([public, honest, none]).astype(np.int8),
                      cluster_ids(index), strategy)


def benchmark_table(results: dict[str, FoldResult], dataset: str, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per fold (``results``: {fold name: FoldResult}) and ``mean``:
    ``images``, ``subjects``, then for each of :data:`SYSTEMS` and
    ``optimism`` the F1 (%) with ``lo`` / ``hi`` (95 % cluster bootstrap);
    then ``dataset``'s published rows (:mod:`aulib.report.published`) with
    their F1 (%), source and epoch selection. ``kind``: ``kit`` or ``published``."""
    rows, points, boots = [], [], []
    for k, (fold, r) in enumerate(results.items()):
        point, boot = boot_finals(r.labels, r.decisions, r.clusters, n_boot, seed + k, metric="f1")
        points.append(point), boots.append(boot)
        subjects = len(np.unique(r.clusters))
        rows.append(_kit_row(fold, point, boot, subjects, len(r.labels), subjects, r.strategy))
    if rows:
        point, boot, _ = mean_over_folds(points, boots)
        rows.append(_kit_row("mean", point, boot, [r["subjects"] for r in rows], sum(r["images"] for r in rows),
                             sum(r["subjects"] for r in rows), next(iter(results.values())).strategy))
    kit = pd.DataFrame(rows)
    pub = published_table(dataset).rename(columns={"method": "fold", "F1": "published F1"})
    pub["kind"] = "published"
    return pd.concat([kit, pub], ignore_index=True)


def _kit_row(fold: str, point: np.ndarray, boot: np.ndarray, n, images: int, subjects: int, strategy: str) -> dict:
    row = {"kind": "kit", "fold": fold, "images": images, "subjects": subjects}
    lo, hi = interval(point, boot, n=n, bounds=(0, 1))     # n: clusters resampled (per fold for the mean)
    for j, s in enumerate(SYSTEMS):
        row.update({s: 100 * point[j], f"{s} lo": 100 * lo[j], f"{s} hi": 100 * hi[j]})
    (lo,), (hi,) = interval(point[0] - point[1], boot[:, 0] - boot[:, 1], n=n, bounds=(-1, 1))
    row.update({"optimism": 100 * (point[0] - point[1]), "optimism lo": 100 * lo, "optimism hi": 100 * hi})
    row.update({"source": "aulib", "selection": f"per-AU choice '{strategy}' made on B (honest) or on the test fold "
                                                 "(as public codes); last epoch at 0.5 (no choice)", "note": ""})
    return row


def benchmark_markdown(df: pd.DataFrame, title: str) -> str:
    """The table for reading: each number as ``64.7 [62.0, 67.1]``; the kit's
    rows, then the published ones."""
    out = pd.DataFrame({"": df["fold"]})

    def cell(v, lo, hi, sign=""):
        if not np.isfinite(v):
            return ""
        return f"{v:{sign}.1f}" + (f" [{lo:{sign}.1f}, {hi:{sign}.1f}]" if np.isfinite(lo) and np.isfinite(hi) else "")

    kit = df["kind"] == "kit"
    for s in (*SYSTEMS, "optimism"):
        sign = "+" if s == "optimism" else ""
        out[f"F1 {s}" if s != "optimism" else "optimism (a - b)"] = [
            cell(*(float(r.get(c, np.nan)) for c in (s, f"{s} lo", f"{s} hi")), sign) if k else ""
            for k, (_, r) in zip(kit, df.iterrows())]
    out["published F1"] = [f"{v:.1f}" if np.isfinite(v) else "" for v in df.get("published F1", pd.Series(np.nan,
                                                                                                       df.index)).astype(float)]
    out["images"] = [str(int(v)) if np.isfinite(v) else "" for v in df.get("images", pd.Series(np.nan, df.index)).astype(float)]
    out["epoch selection"] = df["selection"].fillna("")
    out["source"] = df["source"].fillna("")
    notes = [f"- {m}: {n}" for m, n in zip(df["fold"], df["note"].fillna("")) if n]
    return f"# {title}\n\n" + to_markdown(out) + ("\n" + "\n".join(notes) + "\n" if notes else "")


def write_benchmark(ws, fold_workspaces: dict, group: str, dataset: str, n_boot: int = 1000,
                    seed: int = 0) -> tuple[Path, Path]:
    """``<ws.tables>/benchmark_<dataset>_<group>.csv|md`` from fold workspaces
    ({fold name: Workspace}); returns both paths."""
    results = {fold: fold_result(fws, group) for fold, fws in fold_workspaces.items()}
    df = benchmark_table(results, dataset, n_boot, seed)
    stem = f"benchmark_{dataset.lower().replace('-', '')}_{group}"
    csv, md = ws.tables / f"{stem}.csv", ws.tables / f"{stem}.md"
    write_csv(csv, df)
    write_text(md, benchmark_markdown(df, f"{dataset}, group {group}: mean F1 (%) on the test folds, "
                                          "95 % subject-bootstrap intervals"))
    return csv, md
