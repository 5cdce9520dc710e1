"""How close does coordinate ascent come to the exhaustive search of a chosen ensemble's epochs?

For each chosen ensemble (Table 1's ``-chosen`` rows, both fitting rules, on
all of B), runs :func:`aulib.select.ensemble.choose_ensemble_epochs` with
``search="exhaustive"`` and ``search="ascent"`` and compares, per AU, the
in-sample final score on B at 0.5 of the two choices: how often the ascent
finds the exhaustive optimum's score, the largest and mean shortfall, and the
refits each needed. On a finished workspace (``--workspace``, e.g. the demo)
and on synthetic members at the paper's size (``--synthetic``: 100 epochs,
10,000 rows, 17 AUs; 2 members x top 10 epochs, 3 members x top 5).

    .venv/bin/python benchmarks/ensemble_search.py [--workspace runs/demo] [--synthetic]
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


def compare(probs_runs, labels, first, neg_weight, top_k: int, what: str) -> dict:
    """Exhaustive vs ascent on one problem: per-AU final scores and refits."""
    from aulib.select import ensemble

    out = {"case": what, "rule": "plain" if neg_weight is None else f"neg {neg_weight:g}", "members": len(probs_runs),
           "top_k": top_k}
    finals = {}
    for search in ("exhaustive", "ascent"):
        fits = []
        real = ensemble._ComboScorer.__call__

        def counted(self, au, ep, start=None, real=real, fits=fits):
            fits.append(len(au))
            return real(self, au, ep, start)

        t = time.process_time()
        with mock.patch.object(ensemble._ComboScorer, "__call__", counted):
            idx, coef, intercept, _ = ensemble.choose_ensemble_epochs(probs_runs, labels, first, neg_weight=neg_weight,
                                                                      top_k=top_k, search=search)
        out[f"{search} s"] = time.process_time() - t
        out[f"{search} refits/AU"] = sum(fits) / labels.shape[1]
        c = np.arange(labels.shape[1])
        x = np.stack([ensemble._logit(np.asarray(p)[idx[:, r], :, c].T) for r, p in enumerate(probs_runs)])
        d = ensemble._combine(x, coef, intercept) >= 0.5
        pos, neg = labels == 1, labels == 0
        tp, fp = (d & pos).sum(0), (d & neg).sum(0)
        from aulib.metrics import scores_from_counts

        finals[search] = scores_from_counts(tp, fp, pos.sum(0) - tp, neg.sum(0) - fp)[2]
    gap = finals["exhaustive"] - finals["ascent"]
    out.update({"AUs": len(gap), "ascent = optimum": int((gap <= 1e-12).sum()), "max gap": float(gap.max()),
                "mean gap": float(gap.mean()), "mean final (exhaustive)": float(np.nanmean(finals["exhaustive"])),
                "mean final (ascent)": float(np.nanmean(finals["ascent"]))})
    return out


def workspace_cases(root: str) -> list[dict]:
    """Table 1's chosen ensembles of a finished workspace, each rule, on all of B."""
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
                                f"{root} {group} {rec.row}"))
    return rows


def synthetic_cases(seed: int = 0) -> list[dict]:
    """Members at the paper's size whose AUs peak at different epochs."""
    rng = np.random.default_rng(seed)
    n, c, e_count = 10_000, 17, 100
    y = (rng.random((n, c)) < np.linspace(0.05, 0.4, c)).astype(np.int8)
    y[rng.random(y.shape) < 0.05] = -1
    members = []
    for r in range(3):
        peak = rng.integers(0, e_count, c)
        p = np.empty((e_count, n, c), np.float16)
        for e in range(e_count):
            z = (1.5 - 0.02 * np.abs(e - peak)) * (2 * y - 1) + rng.standard_normal((n, c)) * 1.5 - 0.5
            p[e] = 1 / (1 + np.exp(-z))
        members.append(p)
    first = np.full(3, e_count - 1)
    return [compare(members[:2], y, first[:2], 0.2, 10, "synthetic paper size"),
            compare(members, y, first, 0.2, 5, "synthetic paper size")]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", action="append", default=[])
    ap.add_argument("--synthetic", action="store_true")
    a = ap.parse_args(argv)
    rows = [r for w in a.workspace for r in workspace_cases(w)] + (synthetic_cases() if a.synthetic else [])
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
