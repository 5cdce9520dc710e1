"""``python -m aulib.predict``: see :mod:`aulib.predict.cli`."""
import sys

from .cli import main

sys.exit(main())
