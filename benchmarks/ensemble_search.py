"""How close do coordinate ascent and the screened search come to the searches they replace?

For each chosen ensemble (Table 1's ``-chosen`` rows, both fitting rules, on
all of B), runs :func:`aulib.select.ensemble.choose_ensemble_epochs` with
``search="exhaustive"`` and ``search="ascent"`` and compares, per AU, the
in-sample final score on B at 0.5 of the two choices: how often the ascent
finds the exhaustive optimum's score, the largest and mean shortfall, and the
refits each needed. On a finished workspace (``--workspace``, e.g. the demo)
and on synthetic members at the paper's size (``--synthetic``: 100 epochs,
10,000 rows, 17 AUs; 2 members x top 10 epochs, 3 members x top 5).

With ``--screened ROWS``: the search screened on a sample of the rows
(``screen_above`` 0: always) against the same search on every row, on
synthetic members of Aff-Wild2's shape with ROWS rows.

    .venv/bin/python benchmarks/ensemble_search.py [--workspace runs/demo [--full]] [--synthetic] [--screened ROWS]

With ``--full``: on the workspace, Table 1's search against the search it
replaced (every combination of every epoch of the members, no top-k limit).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


SEARCHES = (("exhaustive", {"search": "exhaustive"}), ("ascent", {"search": "ascent"}))
#: The search before issue 33 (every epoch of every member, every combination) against Table 1's search now.
FULL = (("every combination of every epoch", {"search": "exhaustive", "top_k": None}), ("Table 1's search", {}))
#: The screened search (rows above the threshold) against the same search on every row.
SCREENED = (("full", {"screen_above": None}), ("screened", {"screen_above": 0}))


def compare(probs_runs, labels, first, neg_weight, top_k: int, what: str, ways=SEARCHES) -> dict:
    """Two ways of searching (``ways``: (name, keyword arguments) of
    ``choose_ensemble_epochs``, the reference first) on one problem: per-AU
    in-sample final scores, how often the second makes the first's choice
    and reaches its score, the largest and mean shortfall, refits and CPU."""
    from aulib.metrics import scores_from_counts
    from aulib.select import ensemble

    out = {"case": what, "rule": "plain" if neg_weight is None else f"neg {neg_weight:g}", "members": len(probs_runs),
           "top_k": top_k, "rows": labels.shape[0]}
    finals, idxs = {}, {}
    for name, kw in ways:
        fits = []
        real = ensemble._ComboScorer.__call__

        def counted(self, au, ep, start=None, real=real, fits=fits):
            fits.append(len(au) * self.labels.shape[0] / labels.shape[0])
            return real(self, au, ep, start)

        t = time.process_time()
        with mock.patch.object(ensemble._ComboScorer, "__call__", counted):
            idx, coef, intercept, _ = ensemble.choose_ensemble_epochs(probs_runs, labels, first, neg_weight=neg_weight,
                                                                      **{"top_k": top_k, **kw})
        out[f"{name} s"] = time.process_time() - t
        out[f"{name} refits/AU"] = sum(fits) / labels.shape[1]             # in refits on every row
        c = np.arange(labels.shape[1])
        x = np.stack([ensemble._logit(np.asarray(p)[idx[:, r], :, c].T) for r, p in enumerate(probs_runs)])
        d = ensemble._combine(x, coef, intercept) >= 0.5
        pos, neg = labels == 1, labels == 0
        tp, fp = (d & pos).sum(0), (d & neg).sum(0)
        finals[name], idxs[name] = scores_from_counts(tp, fp, pos.sum(0) - tp, neg.sum(0) - fp)[2], idx
    (a, _), (b, _) = ways
    gap = finals[a] - finals[b]
    out.update({"AUs": len(gap), f"{b} same choice": int((idxs[a] == idxs[b]).all(1).sum()),
                f"{b} >= {a}": int((gap <= 1e-12).sum()), "max gap": float(gap.max()),
                "mean gap": float(gap.mean()), f"mean final ({a})": float(np.nanmean(finals[a])),
                f"mean final ({b})": float(np.nanmean(finals[b]))})
    return out


def workspace_cases(root: str, ways=SEARCHES) -> list[dict]:
    """Table 1's chosen ensembles of a finished workspace, each rule, on all of B (``ways``: the two searches)."""
    from aulib.select import recipes
    from aulib.select.choose import choose_indices
    from aulib.workspace import Workspace

    ws = Workspace.for_profile("demo", root=root)
    spec = recipes.load_table_spec(None, ws)
    cache = recipes.RunCache(ws)
    rows = []
    for group in recipes.table1_groups(spec):
        gspec = recipes.group_runs(spec, group)
        rec = next(r for r in recipes.table1_recipes(group, gspec) if r.epochs == "chosen")
        runs = cache.get(gspec[rec.runs], "B_mc" if rec.multicrop else "B")
        labels = runs[0].labels
        first = np.array([choose_indices(labels, r.probs, "baseline")[0][0] for r in runs])
        for rule in recipes.ensemble_rules([r.config for r in runs]):
            rows.append(compare([r.probs for r in runs], labels, first, rule, recipes.ENSEMBLE_TOP_K,
                                f"{root} {group} {rec.row}", ways))
    return rows


def synthetic_members(n: int, c: int, e_count: int, members: int, seed: int = 0, prevalence=(0.05, 0.4)):
    """Members whose AUs peak at different epochs: R arrays (E, N, C) float16, labels (N, C)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < np.linspace(*prevalence, c)).astype(np.int8)
    y[rng.random(y.shape) < 0.05] = -1
    out = []
    for _ in range(members):
        peak = rng.integers(0, e_count, c)
        p = np.empty((e_count, n, c), np.float16)
        for e in range(e_count):
            z = (1.5 - 0.02 * np.abs(e - peak)) * (2 * y - 1) + rng.standard_normal((n, c)) * 1.5 - 0.5
            p[e] = 1 / (1 + np.exp(-z))
        out.append(p)
    return out, y


def synthetic_cases(seed: int = 0) -> list[dict]:
    """Members at the paper's size: 100 epochs, 10,000 rows, 17 AUs."""
    members, y = synthetic_members(10_000, 17, 100, 3, seed)
    first = np.full(3, 99)
    return [compare(members[:2], y, first[:2], 0.2, 10, "synthetic paper size"),
            compare(members, y, first, 0.2, 5, "synthetic paper size")]


def screened_cases(rows: int, seeds=(0,)) -> list[dict]:
    """The screened search against the same search on every row, members at
    Aff-Wild2's shape (12 AUs, 2 members x 20 epochs, top 10, prevalence
    2-30 %) with ``rows`` rows, both fitting rules, each seed."""
    out = []
    for seed in seeds:
        members, y = synthetic_members(rows, 12, 20, 2, seed, prevalence=(0.02, 0.3))
        for rule in (0.2, None):
            out.append(compare(members, y, np.full(2, 19), rule, 10, f"synthetic Aff-Wild2 shape, seed {seed}",
                               SCREENED))
            print(out[-1], flush=True)                                         # minutes each
    return out


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", action="append", default=[])
    ap.add_argument("--full", action="store_true", help="on --workspace: Table 1's search against every "
                    "combination of every epoch (the search before the top-k limit and coordinate ascent)")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--screened", type=int, metavar="ROWS", help="screened vs full search on this many rows")
    ap.add_argument("--seeds", type=int, default=1, help="synthetic draws of --screened (seeds 0, 1, ...)")
    a = ap.parse_args(argv)
    rows = [r for w in a.workspace for r in workspace_cases(w, FULL if a.full else SEARCHES)]
    rows += synthetic_cases() if a.synthetic else []
    rows += screened_cases(a.screened, range(a.seeds)) if a.screened else []
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
