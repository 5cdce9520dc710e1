"""Old import path of :mod:`aulib.train.distributed` (the same module object)."""
import importlib, sys  # noqa: E401

sys.modules[__name__] = importlib.import_module("aulib.train.distributed")
