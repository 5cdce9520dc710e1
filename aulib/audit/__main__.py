"""``python -m aulib.audit``: see :mod:`aulib.audit.cli`."""
import sys

from .cli import main

sys.exit(main())
