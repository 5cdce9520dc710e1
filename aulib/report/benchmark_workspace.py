"""The benchmark's arrays from fold workspaces (:mod:`aulib.report.benchmark`):
the candidate runs of a fold's ``chosen/<group>.yaml`` (06_choose), every
epoch's predictions on the test split ``H`` (images as they are) and on the
split the choice was made on (``B``), and the table of the k-fold summary step."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..aus import au_columns
from ..data.splits import read_split
from ..runs import select_runs
from ..select.choose import load_candidates
from ..select.chosen import load_chosen
from ..select.folds import add_subjects, cluster_ids
from .benchmark import ALL_RUNS, FoldInputs, FoldResult, ModelPreds, fold_systems, write_benchmark_table

TEST_SPLIT = "H"


def fold_inputs(ws, group: str) -> FoldInputs:
    """The arrays of fold workspace ``ws``: the candidate runs of ``chosen/<group>.yaml``
    (06_choose), every epoch's predictions on the test split H (variant 0)
    and on the split the chosen file chose on (its ``choice.split``, B)."""
    chosen = load_chosen(ws.chosen(group), ws.root)
    if chosen.ensemble is not None:
        raise ValueError(f"{ws.chosen(group)} is an ensemble; the benchmark audits the rules on the candidate runs "
                         "of a per-AU chosen model (06_choose's chosen/<group>.yaml)")
    how = chosen.choice or {}
    dirs = select_runs(ws, chosen.group, how.get("candidates") or None)
    if not dirs:
        raise FileNotFoundError(f"{ws.chosen(group)}: none of its candidate runs is under {ws.train}")
    table = read_split(TEST_SPLIT, chosen.aus, ws=ws)
    rows = (table["variant"] == 0).to_numpy()
    labels = table[au_columns(chosen.aus)].to_numpy(np.int8)[rows]
    try:
        runs, cands = load_candidates(dirs, TEST_SPLIT)
    except (FileNotFoundError, ValueError) as err:
        raise FileNotFoundError(f"the benchmark chooses on the test fold and needs every epoch's predictions on "
                                f"{TEST_SPLIT} (04_train with heldout: H): {err}") from None
    pos = {(img, int(v)): i for i, (img, v) in enumerate(zip(cands.index["image"], cands.index["variant"]))}
    want = list(zip(table["image"].to_numpy()[rows], table["variant"].to_numpy()[rows]))
    missing = [k for k in want if (k[0], int(k[1])) not in pos]
    if missing:
        raise ValueError(f"{runs[0].run_dir}/preds/{TEST_SPLIT}_index.csv lacks image {missing[0][0]!r} of "
                         f"splits/{TEST_SPLIT}.csv; delete the run's {TEST_SPLIT} predictions so they are made again")
    take = np.array([pos[(k[0], int(k[1]))] for k in want], np.int64)
    test, keys = _rows(np.asarray(cands.probs), take, axis=1), list(cands.keys)
    del cands
    select, select_labels = None, None
    try:
        _, sel = load_candidates(dirs, str(how.get("split") or "B"))
    except (FileNotFoundError, ValueError):
        sel = None
    if sel is not None:
        common = [k for k in keys if k in set(sel.keys)]
        at_sel = {k: i for i, k in enumerate(sel.keys)}
        at_test = {k: i for i, k in enumerate(keys)}
        test = _rows(test, [at_test[k] for k in common])
        select, select_labels, keys = _rows(np.asarray(sel.probs), [at_sel[k] for k in common]), sel.labels, common
        del sel
    models = {}
    for r in dict.fromkeys(name for name, _ in keys):
        ks = [i for i, (name, _) in enumerate(keys) if name == r]
        models[r] = ModelPreds(_rows(test, ks), None if select is None else _rows(select, ks), True)
    if len(models) > 1:
        models[ALL_RUNS] = ModelPreds(test, select, False)
    index = add_subjects(table.loc[rows, ["image"]].reset_index(drop=True), ws)
    return FoldInputs(tuple(chosen.aus), labels, cluster_ids(index), select_labels, models,
                      str(how.get("criterion") or "final"))


def _rows(a: np.ndarray, idx, axis: int = 0) -> np.ndarray:
    """``a`` taken at ``idx`` along ``axis``: a view where ``idx`` is a run of
    consecutive positions (the usual case: candidates in run order, test rows
    in split order), else a copy. At Aff-Wild2's size a copy of the stacks is
    0.4-0.75 GB each."""
    idx = np.asarray(idx, np.int64)
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return a[(slice(None),) * axis + (slice(int(idx[0]), int(idx[0]) + len(idx)),)]
    return np.take(a, idx, axis=axis)


def fold_result(ws, group: str) -> FoldResult:
    """Every column's decisions on fold workspace ``ws``'s test split H."""
    return fold_systems(fold_inputs(ws, group))


def write_benchmark(ws, fold_workspaces: dict, group: str, dataset: str, n_boot: int = 1000,
                    seed: int = 0) -> tuple[Path, Path]:
    """``<ws.tables>/benchmark_<dataset>_<group>.csv|md`` from fold workspaces
    ({fold name: Workspace}); returns both paths."""
    results = {fold: fold_result(fws, group) for fold, fws in fold_workspaces.items()}
    stem = f"benchmark_{dataset.lower().replace('-', '')}_{group}"
    return write_benchmark_table(ws.tables, stem, results, dataset,
                                 f"{dataset}, group {group}: mean F1 (%) on the test folds by selection rule",
                                 n_boot, seed)
