"""The benchmark table (:mod:`aulib.report.benchmark`) of prediction files
read by :mod:`aulib.audit.inputs`."""
from __future__ import annotations

from pathlib import Path

from ..report.benchmark import fold_systems, write_benchmark_table
from .inputs import read_folds, read_labels


def audit(preds, labels, out, subjects=None, dataset: str = "", criterion: str = "f1", name: str = "audit",
          n_boot: int = 1000, seed: int = 0) -> tuple[Path, Path]:
    """``<out>/benchmark_<name>.csv|md`` from ``preds`` (docs/audit.md's layout),
    the label CSV and the subjects; returns both paths."""
    table = read_labels(labels, subjects)
    folds = read_folds(preds, table, criterion)
    results = {fold: fold_systems(inp) for fold, inp in folds.items()}
    title = f"{name}: mean F1 (%) on the test fold{'s' if len(results) > 1 else ''} by selection rule"
    return write_benchmark_table(out, f"benchmark_{name}", results, dataset, title, n_boot, seed,
                                 select_name="the val files")
