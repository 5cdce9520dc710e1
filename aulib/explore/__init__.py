"""Interactive explorers of a finished workspace (ipywidgets + matplotlib),
each one call from a notebook cell; they only read the workspace.

- :func:`explore_au` (:mod:`.au`): one AU at a time: every run's curve, the
  chosen epoch and threshold, precision / recall / F1 against a threshold
  slider, the faces it gets wrong at that threshold.
- :func:`compare_runs` (:mod:`.compare`): runs side by side, their curves
  overlaid, per AU.
- :func:`table_breakdown` (:mod:`.breakdown`): a Table 1 / 3 row's per-AU
  breakdown under each estimate.

Each returns an explorer object whose ``widget`` is displayed (the object
displays itself in a notebook); tests drive its controls and read its
``state()``. Figures are rendered to PNG inside ``ipywidgets.Image`` widgets
(:mod:`.view`), so no pyplot state leaks into the notebook.

Without ipywidgets, or in a headless run, ``explore_au``, ``compare_runs`` and
``table_breakdown`` print one line and return ``None`` (:mod:`.frontend`); the
other names are imported when first used (they need ipywidgets).
"""
import importlib

from .frontend import explorer

explore_au = explorer("au", "explore_au")
compare_runs = explorer("compare", "compare_runs")
table_breakdown = explorer("breakdown", "table_breakdown")
_LAZY = {"AUExplorer": "au", "threshold_curves": "au", "wrong_rows": "au", "TableBreakdown": "breakdown",
         "RunsExplorer": "compare"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AUExplorer", "explore_au", "threshold_curves", "wrong_rows", "RunsExplorer", "compare_runs",
           "TableBreakdown", "table_breakdown"]
