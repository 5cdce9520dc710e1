"""The k-fold subject-exclusive protocol BP4D/DISFA papers report.

A profile with ``protocol: {kfold: K}`` runs all its steps once per fold,
each in its own workspace ``<workspace>/fold<k>/`` where notebook 02_split
makes the test fold ``k`` the held-out split ``H`` (:func:`aulib.data.splits.kfold_split`:
folds stratified and, with subjects, subject-exclusive; A/B from the other
folds; fold k > 1 reuses fold 1's faces and crops, :func:`share_data`).
:func:`kfold_summary` then scores every fold's chosen model
(``chosen/<group>.yaml``) on its test fold, as the images are (variant 0),
and writes one table per group: per-AU F1, mean F1, mean accuracy and final
score per fold and their mean over the folds (the number papers report).
A published protocol (``protocol: {folds: bp4d_3fold}``, :mod:`aulib.data.protocols`)
adds the benchmark table (:mod:`aulib.report.benchmark`): per fold and run
the F1 of each selection rule made on the test fold and on B, and of no
choice, beside the published numbers.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.protocols import get_protocol
from ..data.splits import read_split
from ..report.benchmark_workspace import write_benchmark
from ..metrics import au_scores, decide
from ..report.tables import write_table
from ..select.recipes import chosen_probs
from ..select.chosen import load_chosen
from ..workspace import Workspace

#: The held-out split a fold is scored on.
TEST_SPLIT = "H"
#: Notebooks whose output the summaries are made from (chosen models: 06_choose's, 07_tables' full system).
SUMMARY_STEMS = ("06_choose", "07_tables")


def fold_workspace(ws: Workspace, fold: int) -> Workspace:
    """Workspace of fold ``fold`` (1-based): ``<ws.root>/fold<k>``, results inside it (:meth:`Workspace.fold`)."""
    return ws.fold(fold)


def share_data(src: Workspace, dst: Workspace) -> list[Path]:
    """Hard-link (or copy) ``src``'s face cache and complete crop stores into
    ``dst`` where it has none, so fold k > 1 does not detect faces and crop
    again: every fold reads the same images, and notebook 02_split resumes
    from complete files (it checks their images and faces). Returns the files shared."""
    pairs = [(src.faces, dst.faces)] if src.faces.exists() and not dst.faces.exists() else []
    for store in sorted((src.root / "crops").glob("*_*")):
        done, target = store / "done.npy", dst.root / "crops" / store.name
        if target.exists() or not (done.exists() and (store / "meta.yaml").exists() and np.load(done).all()):
            continue
        pairs += [(f, target / f.name) for f in store.iterdir() if f.is_file()]
    for a, b in pairs:
        b.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    return [b for _, b in pairs]


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
        fws = fold_workspace(ws, k)
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
    (:mod:`aulib.report.benchmark`), returned as ``benchmark_<group>``."""

    groups = sorted(p.stem for p in (fold_workspace(ws, 1).root / "chosen").glob("*.yaml"))
    if not groups:
        raise FileNotFoundError(f"{fold_workspace(ws, 1).root / 'chosen'} holds no chosen model; the profile needs a "
                                "06_choose step for the k-fold summary")
    out = {g: write_table(kfold_summary(ws, kfold, g), f"kfold_{g}", ws) for g in groups}
    if protocol:
        dataset = get_protocol(protocol).dataset
        folds = {f"fold{k}": fold_workspace(ws, k) for k in range(1, int(kfold) + 1)}
        for g in groups:
            if load_chosen(fold_workspace(ws, 1).chosen(g), fold_workspace(ws, 1).root).ensemble is None:
                out[f"benchmark_{g}"] = write_benchmark(ws, folds, g, dataset)
    return out
