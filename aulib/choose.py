"""Old import path of :mod:`aulib.select.choose` (the same module object)."""
import importlib, sys  # noqa: E401

sys.modules[__name__] = importlib.import_module("aulib.select.choose")
