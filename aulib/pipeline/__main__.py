"""``python -m aulib.pipeline``: see :mod:`aulib.pipeline.runner`."""
from .runner import main

main()
