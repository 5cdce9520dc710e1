"""``python -m aulib.audit``: the benchmark table of any model's per-epoch predictions.

    python -m aulib.audit --preds PREDS --labels labels.csv [--subjects subjects.csv] --out DIR
                          [--dataset BP4D|DISFA] [--criterion f1|final] [--name NAME]
    python -m aulib.audit export --workspace runs/bp4d --group bp4d12 --out PREDS

The first writes ``DIR/benchmark_<name>.csv|md`` (:mod:`aulib.report.benchmark`)
from the files laid out as docs/audit.md says (:mod:`aulib.audit.inputs`);
the second writes a kit workspace's predictions in that layout
(:mod:`aulib.audit.export`). Exit status: 0 done, 2 bad input or arguments
(one line naming the file, line and AU). Nothing here imports torch, so
``--help`` is instant.
"""
from __future__ import annotations

import argparse
import sys

from .export import export_workspace
from .inputs import AuditError
from .run import audit


def _audit_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m aulib.audit",
        description="The selection audit of any model's per-epoch predictions: each selection rule made on the "
                    "test fold beside the same rule made on a held-out part of the training subjects, and no "
                    "choice (docs/audit.md). 'python -m aulib.audit export --help': a kit workspace's "
                    "predictions in this layout.")
    ap.add_argument("--preds", required=True, metavar="PREDS",
                    help="folder: [<fold>/]<model>/test_epoch<N>.csv and optionally val_epoch<N>.csv "
                         "(columns image, AU1 or AU01, ...: probabilities in [0, 1])")
    ap.add_argument("--labels", required=True, help="label CSV: image, AU columns (1, 0, -1 unknown), optional subject")
    ap.add_argument("--subjects", default=None, help="CSV image, subject (when the label CSV has no subject column)")
    ap.add_argument("--out", required=True, help="folder the table is written to")
    ap.add_argument("--dataset", default="", help="BP4D or DISFA: put the published rows beside the table")
    ap.add_argument("--criterion", default="f1", choices=("f1", "final"),
                    help="score of the paper's per-AU rule: f1 (default) or final ((acc + F1) / 2)")
    ap.add_argument("--name", default="audit", help="table name: benchmark_<name>.csv|md")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the subjects")
    ap.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    return ap


def _export_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m aulib.audit export",
                                 description="Write a kit workspace's per-epoch predictions (test fold H and B) "
                                             "as the audit's CSV files, with labels.csv and subjects.csv")
    ap.add_argument("--workspace", required=True, help="workspace root (a k-fold one holds fold<k>/)")
    ap.add_argument("--group", required=True, help="group of the chosen model whose candidate runs are exported")
    ap.add_argument("--out", required=True, help="folder to write PREDS into")
    return ap


def _fail(err) -> int:
    print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        args = _export_parser().parse_args(argv[1:])
        try:
            notes = export_workspace(args.workspace, args.group, args.out)
        except (OSError, ValueError) as err:
            return _fail(err)
        for n in notes:
            print("note:", n)
        print(f"wrote {args.out}; audit it with:\n  python -m aulib.audit --preds {args.out} --labels "
              f"{args.out}/labels.csv --subjects {args.out}/subjects.csv --out {args.out}/table")
        return 0
    args = _audit_parser().parse_args(argv)
    try:
        csv, md = audit(args.preds, args.labels, args.out, subjects=args.subjects, dataset=args.dataset,
                        criterion=args.criterion, name=args.name, n_boot=args.n_boot, seed=args.seed)
    except (AuditError, OSError) as err:
        return _fail(err)
    print(csv)
    print(md)
    return 0
