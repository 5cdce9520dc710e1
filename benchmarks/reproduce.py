"""Does a fresh demo run give the committed results? Compare within a tolerance derived from the seed spread.

After ``python -m aulib.pipeline --profile demo`` (which writes
``runs/demo/results/``; ``--publish`` would then copy it over ``results/``),
compares every row's final score of Tables 1 and 3 under each estimate (B,
B cross-fit, Held-out) in ``runs/demo/results/tables/`` with the committed
ones (``git show REV:results/tables/...``). The tolerance of a group is ``k``
standard deviations over seeds of its Baseline's B final score
(``seed_spread.csv``, written by ``benchmarks/seed_spread.py``; the fresh
folder's, else the committed one):
a difference inside it is what another seed, or another machine's float
rounding, gives. Prints each difference as a share of its tolerance and exits
1 when one exceeds it.

    .venv/bin/python benchmarks/reproduce.py [--rev HEAD] [--k 3]
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TABLES = {"table1_17au": "17au", "table1_6au": "6au", "table3": "12au"}
ESTIMATES = ("B", "B cross-fit", "Held-out")


def committed(rev: str, rel: str) -> pd.DataFrame:
    """A committed CSV of the repository at ``rev``."""
    out = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{rel}"], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"reproduce: {rel} is not committed at {rev}: {out.stderr.strip()}")
    return pd.read_csv(io.StringIO(out.stdout))


def tolerances(spread: pd.DataFrame, k: float) -> dict[str, float]:
    """{group: k x the standard deviation over seeds of its Baseline's B final}."""
    return {g: k * float(d["B_final"].std(ddof=1)) for g, d in spread.groupby("group") if len(d) > 1}


def compare(fresh_dir: Path, rev: str, k: float) -> pd.DataFrame:
    """One row per table row and estimate: committed, fresh, difference, tolerance, share of it."""
    spread = fresh_dir / "seed_spread.csv"
    tol = tolerances(pd.read_csv(spread) if spread.exists() else committed(rev, "results/tables/seed_spread.csv"), k)
    rows = []
    for name, group in TABLES.items():
        if group not in tol:
            continue
        old, new = committed(rev, f"results/tables/{name}.csv"), pd.read_csv(fresh_dir / f"{name}.csv")
        for est in ESTIMATES:
            for (_, r_old), (_, r_new) in zip(old.iterrows(), new.iterrows()):
                a, b = float(r_old[f"{est} Final"]), float(r_new[f"{est} Final"])
                rows.append({"table": name, "row": r_new["row"], "estimate": est, "committed": a, "fresh": b,
                             "difference": b - a, "tolerance": tol[group], "share": abs(b - a) / tol[group]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="HEAD", help="the commit holding the results to compare with")
    ap.add_argument("--k", type=float, default=3.0, help="tolerance in seed standard deviations")
    ap.add_argument("--fresh", default=str(REPO / "runs" / "demo" / "results" / "tables"), help="folder of the fresh tables")
    args = ap.parse_args(argv)
    df = compare(Path(args.fresh), args.rev, args.k)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    worst = df.loc[df["share"].idxmax()]
    print(f"\nlargest difference: {worst['difference']:+.4f} ({worst['table']}, {worst['row']}, {worst['estimate']}), "
          f"{worst['share']:.2f} x its tolerance {worst['tolerance']:.4f} ({args.k:g} seed sd)")
    return int((df["share"] > 1).any())


if __name__ == "__main__":
    sys.exit(main())
