"""``python -m aulib.train`` and ``torchrun -m aulib.train``: see :mod:`aulib.train.loop`."""
from .loop import main

main()
