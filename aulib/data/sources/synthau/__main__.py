"""``python -m aulib.data.sources.synthau``: write a SynthAU data root (see :mod:`.generate`)."""
import sys

from .generate import main

sys.exit(main())
