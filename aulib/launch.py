"""Old import path of :mod:`aulib.train.launch` (the same module object)."""
import importlib, sys  # noqa: E401

sys.modules[__name__] = importlib.import_module("aulib.train.launch")
