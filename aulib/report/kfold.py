"""The k-fold summary tables BP4D/DISFA papers report, from a profile run
with ``protocol: {kfold: K}`` (or a published protocol), each fold in its own
workspace ``<workspace>/fold<k>/`` (:mod:`aulib.pipeline.kfold`).

:func:`kfold_summary` scores every fold's chosen model (``chosen/<group>.yaml``)
on its test fold, as the images are (variant 0), and :func:`write_kfold_summaries`
writes one table per group: per-AU F1, mean F1, mean accuracy and final score
per fold and their mean over the folds (the number papers report). A
published protocol (``protocol: {folds: bp4d_3fold}``, :mod:`aulib.data.protocols`)
adds the benchmark table (:mod:`aulib.report.benchmark`): per fold and run
the F1 of each selection rule made on the test fold and on B, and of no
choice, beside the published numbers. Reads prediction files only (the test
fold's predictions are made by notebooks 06 and 07's inference steps).
Notebook ``09_kfold_summary`` calls :func:`write_kfold_summaries`; the
pipeline runner runs it after the folds (:func:`aulib.pipeline.kfold.summary_step`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.protocols import get_protocol
from ..data.splits import read_split
from ..metrics import au_scores, decide
from ..select.chosen import load_chosen
from ..select.recipes import chosen_probs
from ..workspace import Workspace
from .benchmark_workspace import TEST_SPLIT, write_benchmark
from .tables import write_table


def fold_scores(ws: Workspace, group: str) -> pd.DataFrame:
    """Per-AU scores (index au; acc, f1, final, n, n_pos) of the chosen model of
    ``group`` on the workspace's test fold ``H``, variant 0 (images as they are)."""

    chosen = load_chosen(ws.chosen(group), ws.root)
    table = read_split(TEST_SPLIT, chosen.aus, ws=ws)
    probs = chosen_probs(ws, chosen, TEST_SPLIT, images=table["image"].to_numpy())
    rows = (table["variant"] == 0).to_numpy()
    labels = table[[f"AU{a}" for a in chosen.aus]].to_numpy(np.int8)
    return au_scores(labels[rows], decide(probs, chosen.thresholds)[rows], chosen.aus)


def kfold_summary(ws: Workspace, kfold: int, group: str) -> pd.DataFrame:
    """One row per fold and a ``mean`` row: ``F1 AU<n>`` per AU, ``F1`` (mean
    over AUs), ``Accuracy``, ``Final score`` ((F1 + Accuracy) / 2) and
    ``images`` (test images). A fold without a chosen model of ``group`` is a
    FileNotFoundError naming it."""
    rows = []
    for k in range(1, int(kfold) + 1):
        fws = ws.fold(k)
        if not fws.chosen(group).exists():
            raise FileNotFoundError(f"fold {k}: {fws.chosen(group)} not found; the profile needs a 06_choose step "
                                    f"for group {group!r} (rerun python -m aulib.pipeline)")
        s = fold_scores(fws, group)
        known = s[s["n"] > 0]
        row = {"fold": str(k), "images": int(s["n"].max())}
        row.update({f"F1 AU{a}": float(f) for a, f in s["f1"].items()})
        f1, acc = float(known["f1"].mean()), float(known["acc"].mean())
        row.update({"F1": f1, "Accuracy": acc, "Final score": (f1 + acc) / 2})
        rows.append(row)
    df = pd.DataFrame(rows)
    mean = df.drop(columns=["fold"]).mean(numeric_only=True)
    mean["images"] = df["images"].sum()
    return pd.concat([df, pd.DataFrame([{"fold": "mean", **mean.to_dict()}])], ignore_index=True)


def write_kfold_summaries(ws: Workspace, kfold: int, protocol: str | None = None) -> dict[str, tuple]:
    """``<ws.tables>/kfold_<name>.csv|md`` for every chosen model of fold 1
    (``chosen/<name>.yaml``: 06_choose's ``<group>``, and 07_tables' full
    system ``<group>_full``); returns {name: (csv, md)}. With a published
    ``protocol`` (``bp4d_3fold``, ...) also the benchmark table of every
    per-AU chosen model (no ensemble): ``benchmark_<dataset>_<group>.csv|md``
    (:mod:`aulib.report.benchmark`), returned as ``benchmark_<group>``.
    ``kfold`` 0 (a profile without a fold protocol): nothing to summarise, {}."""
    if not kfold:
        return {}
    groups = sorted(p.stem for p in (ws.fold(1).root / "chosen").glob("*.yaml"))
    if not groups:
        raise FileNotFoundError(f"{ws.fold(1).root / 'chosen'} holds no chosen model; the profile needs a "
                                "06_choose step for the k-fold summary")
    out = {g: write_table(kfold_summary(ws, kfold, g), f"kfold_{g}", ws) for g in groups}
    if protocol:
        dataset = get_protocol(protocol).dataset
        folds = {f"fold{k}": ws.fold(k) for k in range(1, int(kfold) + 1)}
        for g in groups:
            if load_chosen(ws.fold(1).chosen(g), ws.fold(1).root).ensemble is None:
                out[f"benchmark_{g}"] = write_benchmark(ws, folds, g, dataset)
    return out
