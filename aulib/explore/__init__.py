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
(:mod:`.widgets_common`), so no pyplot state leaks into the notebook.

Without ipywidgets, or in a headless run, ``explore_au``, ``compare_runs`` and
``table_breakdown`` print one line and return ``None`` (:mod:`.frontend`, which
imports ipywidgets where it is installed); every explorer module imports without it.
"""
from .au import AUExplorer, explore_au, threshold_curves, wrong_rows
from .breakdown import TableBreakdown, table_breakdown
from .compare import RunsExplorer, compare_runs

__all__ = ["AUExplorer", "explore_au", "threshold_curves", "wrong_rows", "RunsExplorer", "compare_runs",
           "TableBreakdown", "table_breakdown"]
