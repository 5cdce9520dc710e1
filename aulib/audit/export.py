"""A kit workspace's predictions written as the audit reads any code's
(:mod:`aulib.audit.inputs`): per fold and candidate run of
``chosen/<group>.yaml``, one CSV per epoch of the test fold ``H`` (images as
they are, variant 0) and of ``B`` (the held-out part of the training
subjects, ``val``; variant 0: a B of degraded copies is exported as its
images are, so the rules on it can differ from the workspace's), plus the
label table and the subjects. Float16 probabilities are written exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..aus import au_columns
from ..io import write_csv
from ..runs import complete_epochs, read_index, select_runs
from ..select.chosen import load_chosen
from ..select.folds import add_subjects
from ..workspace import RunDir, Workspace


def fold_workspaces(root) -> dict[str, Workspace]:
    """{fold name: Workspace} of a k-fold workspace (``fold<k>/``), or {``test``: it}."""
    root = Path(root)
    folds = sorted((p for p in root.glob("fold*") if p.is_dir() and p.name[4:].isdigit()),
                   key=lambda p: int(p.name[4:]))
    if folds:
        return {p.name: Workspace(p, p / "results") for p in folds}
    return {"test": Workspace(root, root / "results")}


def export_workspace(root, group: str, out) -> list[str]:
    """Write ``out/<fold>/<run>/{test,val}_epoch<N>.csv``, ``out/labels.csv`` and
    ``out/subjects.csv``; returns notes (what was left out)."""
    out, labels, subjects, notes = Path(out), [], [], []
    for fold, ws in fold_workspaces(root).items():
        chosen = load_chosen(ws.chosen(group), ws.root, check_files=False)
        names = (chosen.choice or {}).get("candidates") or None
        select = str((chosen.choice or {}).get("split") or "B")
        cols = au_columns(chosen.aus)
        for d in select_runs(ws, chosen.group, names):
            for split, name in (("H", "test"), (select, "val")):
                index = read_index(d, split)
                rows = (index["variant"] == 0).to_numpy() if "variant" in index else np.ones(len(index), bool)
                if not rows.all() and name == "val":
                    notes.append(f"{fold}/{d.name}: {split} holds degraded copies; only the images as they are "
                                 "(variant 0) were exported")
                img = index.loc[rows, "image"].astype(str).to_numpy()
                for e in complete_epochs(d, split):
                    p = np.load(RunDir(d).preds(split, e))[rows].astype(np.float64)
                    write_csv(out / fold / d.name / f"{name}_epoch{e:03d}.csv",
                              pd.concat([pd.DataFrame({"image": img}), pd.DataFrame(p, columns=cols)], axis=1))
                labels.append(index.loc[rows, ["image", *cols]])
                subjects.append(add_subjects(index.loc[rows, ["image"]].reset_index(drop=True), ws))
    table = pd.concat(labels).drop_duplicates("image")
    write_csv(out / "labels.csv", table)
    subj = pd.concat(subjects).drop_duplicates("image")
    if "subject" not in subj:
        subj["subject"] = subj["image"]            # no subjects in the workspace: each image its own cluster
    write_csv(out / "subjects.csv", subj[["image", "subject"]])
    return list(dict.fromkeys(notes))
