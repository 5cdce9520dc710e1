"""``python -m aulib.predict``: see :mod:`aulib.predict.cli`.

The arguments are parsed (``--help`` and a wrong argument answered) before
the CLI, which imports torch and the models, is imported."""
import sys

from .parser import build_parser

build_parser().parse_args()

from .cli import main  # noqa: E402  (after the answers that need no model)

sys.exit(main())
