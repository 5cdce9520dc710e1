"""Multi-crop views measured one by one: which views help a model, on a split.

A checkpoint predicts a split under every view of :data:`aulib.infer.multicrop.VIEWS`
once; each view alone and each average of views is then scored (challenge
final score, mean F1 and accuracy at 0.5). This is the measurement behind the
choice of the views multi-crop averages (:func:`aulib.infer.multicrop.run_views`)::

    python -m aulib.infer.multicrop_study --workspace runs/demo --run 17au_base [--epoch 10] [--split B]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from ..data.dataset import make_loader
from ..data.splits import read_split
from ..io import write_csv
from ..metrics import score_probs
from ..runs import read_config, run_aus, run_group
from ..model.distributed import resolve_device
from ..workspace import Workspace
from .checkpoints import load_model
from .multicrop import VIEWS, run_views, view_probs


def predict_each_view(ws, run_dir, epoch="last", split: str = "B", views=VIEWS, batch_size: int = 64,
                      device: str = "auto") -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Probabilities float32 (V, N, C) of a run's checkpoint under each of
    ``views`` on ``split`` (rows in the split file's order), the labels
    (N, C) and the run's AUs."""
    cfg = read_config(run_dir)
    aus = run_aus(cfg, run_dir)
    table = read_split(split, aus, ws=ws)
    dev = resolve_device(device)
    model = load_model(run_dir, epoch).to(dev).eval()
    loader = make_loader(ws, table, run_group(cfg, run_dir), int(cfg["img_size"]), batch_size, train=False,
                         style=cfg.get("crop_style"))
    parts, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            parts.append(view_probs(model, x.to(dev), aus, views).cpu())
            labels.append(y)
    return torch.cat(parts, 1).numpy(), torch.cat(labels).numpy().astype(np.int8), aus


def view_scores(ws, run_dir, epoch="last", split: str = "B", batch_size: int = 64, device: str = "auto"
                ) -> pd.DataFrame:
    """One row per view alone, then the run's own average (:func:`run_views`)
    and the average of all :data:`VIEWS`: ``views``, ``final``, ``f1``, ``acc``
    on ``split`` at 0.5, and ``gain`` (final) over the image alone."""
    probs, labels, aus = predict_each_view(ws, run_dir, epoch, split, VIEWS, batch_size, device)
    sets = [(v,) for v in VIEWS] + [tuple(run_views(read_config(run_dir))), VIEWS]
    rows = []
    for names in dict.fromkeys(sets):
        p = probs[[VIEWS.index(v) for v in names]].mean(0)
        s = score_probs(labels, p, 0.5, aus)[1]
        rows.append({"views": " + ".join(names), "final": s["final"], "f1": s["f1"], "acc": s["acc"]})
    out = pd.DataFrame(rows)
    out["gain"] = out["final"] - out["final"].iloc[0]
    return out


def write_view_scores(ws, spec) -> pd.DataFrame | None:
    """:func:`view_scores` of the table spec's 17-AU Baseline run (its last
    epoch, on B), written to ``<ws.tables>/multicrop_views.csv``; None when the
    spec (:func:`aulib.report.tables.load_table_spec`) names no such run or its checkpoint is gone."""
    base = (spec.get("17au") or {}).get("baseline") or []
    run_dir = ws.run(base[0]) if base else None
    if run_dir is None or not any((run_dir / "checkpoints").glob("epoch*.pt")):
        return None
    df = view_scores(ws, run_dir).assign(run=base[0])
    write_csv(ws.tables / "multicrop_views.csv", df)
    return df


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aulib.infer.multicrop_study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, help="workspace folder (runs/<profile>)")
    ap.add_argument("--run", required=True, help="run name under <workspace>/train/")
    ap.add_argument("--epoch", default="last", help="checkpoint epoch (default: the last)")
    ap.add_argument("--split", default="B")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    ws = Workspace.for_profile("multicrop_study", root=args.workspace)
    epoch = args.epoch if args.epoch == "last" else int(args.epoch)
    print(view_scores(ws, ws.run(args.run), epoch, args.split, device=args.device).to_string(index=False))


if __name__ == "__main__":
    main()
