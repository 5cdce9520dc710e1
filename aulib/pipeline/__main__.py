"""``python -m aulib.pipeline``: see :mod:`aulib.pipeline.runner` and :mod:`aulib.pipeline.cli`.

The arguments are parsed, ``--help``, ``--list`` and ``--dry-run``
answered, and the profile and data root checked (a refused one answered in
one line), before the runner is imported, so they take well under a second.
The runner imports no torch either: it runs notebooks and nothing else (the
k-fold summary is notebook 09_kfold_summary's step); papermill and the
kernels start only when a step runs.
"""
import sys

from .cli import answer, build_parser

args = build_parser().parse_args()
if answer(args):        # --list / --dry-run, or a refused profile or data root (exit 1, one line)
    sys.exit(0)

from .runner import run_args  # noqa: E402  (after the answers that need no runner)

run_args(args)
