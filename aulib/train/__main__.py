"""``python -m aulib.train`` and ``torchrun -m aulib.train``: see :mod:`aulib.train.cli`.

The arguments are read first (``--help`` and a call without settings end
there, without importing torch), then the loop is imported and trains."""
from .cli import parse_args

args = parse_args()

from .loop import main  # noqa: E402  (torch: only once the arguments are read)

main(args)
