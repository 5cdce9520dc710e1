"""Which rule should fit the linear ensemble? Table 1's ensemble rows under each, on a finished workspace.

Two rules fit the per-AU logistic regressions: the members' own balancing rule
(negatives weigh alpha where alpha * negatives > positives,
:func:`aulib.select.ensemble.members_neg_weight`) and plain log-loss; Table 1
chooses between them on B by the ensemble's final score (``chosen on B``).
For every Table 1 row with an ensemble, prints the final score of each and of
the choice under each estimate (B in-sample, B cross-fit, held-out) beside the
best single member's B score at its best-average epoch, from the saved
predictions (nothing is retrained; held-out predictions are made from
checkpoints where missing).

    .venv/bin/python benchmarks/ensemble_rule.py [--workspace runs/demo]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv=None) -> pd.DataFrame:
    from aulib.metrics import au_scores, decide, summarize
    from aulib.select import recipes
    from aulib.workspace import Workspace

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default=str(REPO / "runs" / "demo"))
    args = ap.parse_args(argv)
    ws = Workspace.for_profile("demo", root=args.workspace)
    spec = recipes.load_table_spec(None, ws)
    cache = recipes.RunCache(ws)
    rows = []
    for group in recipes.table1_groups(spec):
        gspec = recipes.group_runs(spec, group)
        for rec in recipes.table1_recipes(group, gspec):
            if not rec.ensemble:
                continue
            names = gspec[rec.runs]
            runs_b = cache.get(names, "B_mc" if rec.multicrop else "B")
            best = max(summarize(au_scores(r.labels, decide(r.probs[i]), r.aus))["final"]
                       for r in runs_b for i in [recipes.choose_indices(r.labels, r.probs, "baseline")[0][0]])
            both = recipes.ensemble_rules
            rules = (("chosen on B", both), ("members' balancing", lambda configs: both(configs)[:1]),
                     ("plain log-loss", lambda configs: (None,)))
            for rule, patch in rules:
                runs_h, _ = cache.heldout(names, spec.get("heldout"), rec.multicrop)
                with mock.patch.object(recipes, "ensemble_rules", patch):
                    scores, _ = recipes.evaluate_recipe(rec, runs_b, runs_h, int(spec.get("folds", 5)))
                rows.append({"group": group, "row": rec.row, "rule": rule, "best member B": best,
                             **{f"{e} final": s["final"] for e, s in scores.items()}})
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1,
                                                        float_format=lambda v: f"{v:.4f}"), flush=True)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
