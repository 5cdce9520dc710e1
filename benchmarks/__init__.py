"""Benchmarks that show the kit is never the bottleneck.

``python -m benchmarks [--quick] [--only NAME]`` runs every benchmark in its
own process and prints one table (see benchmarks/README.md). Each module
``bench_<name>.py`` is also a script with its own ``main()`` and options, and
has ``run(quick: bool) -> list[dict]``: the rows of the table, made with
:func:`row`.
"""
from __future__ import annotations

#: Benchmark names (module ``benchmarks.bench_<name>``), in table order.
BENCHMARKS = ("loader", "train", "choose", "faces", "noisy", "bootstrap", "coverage", "scale", "readers",
              "post_training")
#: Run only when named with ``--only`` (``scale`` takes about 15 minutes; ``readers``
#: spends minutes writing its 150k-frame layouts on a slow disk; ``post_training`` about
#: an hour of CPU, most of it the Aff-Wild2-size Table 1; ``coverage`` about 11 minutes).
ON_REQUEST = ("scale", "readers", "post_training", "coverage")


def row(name: str, measured: str, ratio: float | None, at_most: float | None = None,
        at_least: float | None = None, expect: str | None = None) -> dict:
    """One line of the table.

    ``name`` what is compared; ``measured`` the measured values side by side
    (text, with units); ``ratio`` the figure compared with the target (None
    when the line only reports a time); ``at_most`` / ``at_least`` the target
    (``ok`` says whether it is met); ``expect`` a target given as text only
    (not checked, ``ok`` is None).
    """
    if at_most is not None and at_least is not None:
        raise ValueError("give at most one of at_most and at_least")
    if at_most is not None:
        target, ok = f"<= {at_most:g}", None if ratio is None else bool(ratio <= at_most)
    elif at_least is not None:
        target, ok = f">= {at_least:g}", None if ratio is None else bool(ratio >= at_least)
    else:
        target, ok = expect or "", None
    return {"name": name, "measured": measured, "ratio": None if ratio is None else float(ratio),
            "target": target, "ok": ok}
