"""``python -m aulib.pipeline``: see :mod:`aulib.pipeline.runner` and :mod:`aulib.pipeline.cli`.

The arguments are parsed, and ``--help``, ``--list`` and ``--dry-run``
answered, before the runner (which imports torch through the k-fold summary)
is imported, so they take well under a second.
"""
import sys

from .cli import build_parser, describe

args = build_parser().parse_args()
if args.list or args.dry_run:
    print(describe(args))
    sys.exit(0)

from .runner import run_args  # noqa: E402  (after the answers that need no runner)

run_args(args)
