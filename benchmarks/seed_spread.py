"""Do the demo's claims hold under other seeds? Retrain its runs under more seeds, in a workspace of their own.

Reads a finished demo workspace (its data, splits, C and the runs named by its
``table_spec.yaml``) and never writes into its ``train/``: every retrained run
lives in a seed workspace of its own (default ``runs/<workspace name>_seeds``,
whose ``data``, ``crops``, ``labels``, ``splits`` and ``faces.csv`` link to the
demo's), as ``<run>_seed<k>`` with the same ``config.yaml`` but the seed (a
finetune starts from its own seed's pretraining run; C, built by the noisy
filter's seed-0 base model, is the same in every seed). Runs are resumed, so
a rerun continues where one stopped.

Default: each table's Baseline run only. Writes ``seed_spread.csv`` (per
baseline and seed: B final score at the last epoch, threshold 0.5; the
smallest per-AU F1 on B, and the AUs at or below their trivial F1 ``2p/(1+p)``,
p the AU's prevalence in B): the seed spread :mod:`benchmarks.reproduce`
derives its tolerance from.

``--tables``: every run of Tables 1 and 3 (and the pretraining runs their
finetunes start from) under each extra seed, then each table rebuilt on that
seed's runs exactly as notebook 07 builds it (``aulib.report.tables``,
intervals included); writes ``seed_gains.csv``: every gain of the forest plot
(``aulib.report.gains.table_gains``: each step, each whole system, each
ablation; per estimate, with its 95 % interval) per seed, seed 0 read from the
workspace's own tables. The results page calls a gain distinguishable from
zero only where its interval excludes 0 under every seed. Both files go to
the demo workspace's tables folder (``--out`` to change it); each seed's full
tables stay in the seed workspace's ``results/tables``.

    .venv/bin/python benchmarks/seed_spread.py [--workspace runs/demo] [--seeds 1 2] [--tables]

Baselines only: about 3.5 minutes a seed on 2 idle cores; ``--tables``
retrains all 13 runs of the demo (88 epochs a seed) and fits 3 tables a seed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: What a seed workspace shares with the workspace it retrains (linked, read only).
SHARED = ("data", "crops", "labels", "splits", "faces.csv")
#: The table groups of Tables 1 and 3 and their CSV names (as notebook 07 writes them).
TABLE_NAMES = {"17au": "table1_17au", "6au": "table1_6au", "12au": "table3"}


def baselines(spec: dict) -> dict[str, str]:
    """{group: Baseline run name} of the table spec's groups that name one."""
    return {g: v["baseline"][0] for g, v in spec.items() if isinstance(v, dict) and v.get("baseline")}


def seed_name(run: str, seed: int) -> str:
    return f"{run}_seed{seed}"


def seed_workspace(ws, root=None):
    """The seed workspace of ``ws`` (default ``<ws.root>_seeds``), its shared
    inputs linked to ``ws``'s (made on first use). Its results stay inside it."""
    from aulib.workspace import Workspace

    root = Path(root) if root is not None else ws.root.with_name(ws.root.name + "_seeds")
    if root.resolve() == ws.root.resolve():
        raise ValueError(f"the seed workspace must not be the workspace it retrains ({ws.root})")
    root.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        src, dst = ws.root / name, root / name
        if src.exists() and not dst.exists() and not dst.is_symlink():
            os.symlink(src.resolve(), dst)
    return Workspace(root.resolve(), root.resolve() / "results")


def _init_run(cfg: dict) -> str | None:
    """The run a finetune starts from (``init_from`` a run directory under ``train/``), else None."""
    init = cfg.get("init_from")
    if not init:
        return None
    p = Path(init)
    return p.name if p.suffix != ".pt" and (len(p.parts) == 1 or p.parts[-2] == "train") else None


def runs_to_train(ws, names: list[str]) -> list[str]:
    """``names`` and the runs their finetunes start from, each after the run it starts from."""
    from aulib.io import read_yaml

    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        parent = _init_run(read_yaml(ws.run(name) / "config.yaml") or {})
        if parent:
            visit(parent)
        order.append(name)

    for n in names:
        visit(n)
    return order


def train_seed(ws, seed_ws, run: str, seed: int) -> Path:
    """Run ``run`` of ``ws`` again under ``seed`` as ``<run>_seed<seed>`` in
    ``seed_ws`` (resumed if started); returns its directory."""
    from aulib.io import read_yaml
    from aulib.train.loop import train
    from aulib.model.config import TrainConfig

    cfg = read_yaml(ws.run(run) / "config.yaml")
    parent = _init_run(cfg)
    cfg.update(seed=int(seed), run_name=seed_name(run, seed), workspace=str(seed_ws.root), progress=False,
               tensorboard=False)
    if parent:
        cfg["init_from"] = f"train/{seed_name(parent, seed)}"
    return train(TrainConfig.from_dict(cfg), resume=True)


def last_epoch_scores(run_dir: Path) -> dict:
    """B final score at the last epoch (threshold 0.5), the smallest per-AU F1
    there and the AUs whose F1 is at or below the all-present predictor's."""
    from aulib.metrics import au_scores, decide, summarize, trivial_f1
    from aulib.runs import load_run_preds

    rp = load_run_preds(run_dir, "B")
    per = au_scores(rp.labels, decide(rp.probs[-1]), rp.aus)
    f1 = per["f1"]
    trivial = trivial_f1(per["n"], per["n_pos"])
    return {"B_final": summarize(per)["final"], "min_f1": float(f1.min()), "min_au": f"AU{int(f1.idxmin())}",
            "aus_at_trivial": " ".join(f"AU{a}" for a in f1.index[f1.to_numpy() <= trivial])}


def seed_spec(spec: dict, seed: int) -> dict:
    """The table spec with every run of its groups (a name or a list) renamed to its ``seed`` replica."""
    return {k: ({key: [seed_name(n, seed) for n in ([names] if isinstance(names, str) else names)]
                 for key, names in v.items()} if isinstance(v, dict) else v)
            for k, v in spec.items() if k != "seed_replicas"}


def seed_tables(seed_ws, spec: dict, seed: int) -> dict:
    """{table name: Table 1 / 3 of ``seed``'s runs} (as notebook 07 builds them: the held-out
    predictions the rows read made first), each written to ``<seed_ws>/results/tables/<name>_seed<seed>.csv``."""
    from aulib.infer.at_epochs import predict_needed
    from aulib.io import write_csv
    from aulib.report.tables import table1, table3
    from aulib.select.recipes import predictions_needed

    sspec = seed_spec(spec, seed)
    predict_needed(seed_ws, predictions_needed(seed_ws, sspec, splits=()))
    out = {}
    for group, name in TABLE_NAMES.items():
        if group not in sspec:
            continue
        df = table3(seed_ws, sspec) if name == "table3" else table1(seed_ws, group, sspec)
        write_csv(seed_ws.tables / f"{name}_seed{seed}.csv", df)
        out[name] = df
    return out


def gains_by_seed(tables: dict[int, dict]) -> pd.DataFrame:
    """{seed: {table name: table}} -> the long gain table (:func:`aulib.report.gains.table_gains`) with a
    ``seed`` column, one line per (table, row, comparison, estimate, seed)."""
    from aulib.report.gains import table_gains

    parts = [table_gains(df, name).assign(seed=seed) for seed, per in tables.items() for name, df in per.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[["table", "row", "comparison", "estimate", "seed", "gain", "lo", "hi"]]


def main(argv=None) -> pd.DataFrame:
    from aulib.io import read_yaml, write_csv
    from aulib.report.tables import load_table_spec
    from aulib.workspace import Workspace

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default=str(REPO / "runs" / "demo"), help="the finished demo workspace (read)")
    ap.add_argument("--seed-workspace", default=None, help="where the retrained runs go (default <workspace>_seeds)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="extra seeds (the workspace's runs: seed 0)")
    ap.add_argument("--tables", action="store_true", help="retrain every run of Tables 1 and 3 and rebuild them")
    ap.add_argument("--out", default=None, help="folder of seed_spread.csv / seed_gains.csv (default: the "
                                                "workspace's tables folder)")
    args = ap.parse_args(argv)
    ws = Workspace.for_profile("demo", root=Path(args.workspace).resolve())
    if not ws.train.exists():
        raise SystemExit(f"{ws.root} has no trained runs: run the demo pipeline first")
    sws = seed_workspace(ws, args.seed_workspace)
    out = Path(args.out) if args.out else ws.tables
    spec = load_table_spec(None, ws)
    base = baselines(spec)
    names = sorted({n for v in spec.values() if isinstance(v, dict) for ns in v.values() for n in ns}) \
        if args.tables else list(base.values())
    order = runs_to_train(ws, names)
    t0 = time.perf_counter()
    for seed in args.seeds:
        for run in order:
            t = time.perf_counter()
            train_seed(ws, sws, run, seed)
            print(f"trained {seed_name(run, seed)} in {time.perf_counter() - t:.0f} s", flush=True)
    t_train = time.perf_counter() - t0
    rows = []
    for group, run in base.items():
        seed0 = int((read_yaml(ws.run(run) / "config.yaml") or {}).get("seed", 0))
        rows.append({"group": group, "run": run, "seed": seed0, **last_epoch_scores(ws.run(run))})
        rows += [{"group": group, "run": run, "seed": s, **last_epoch_scores(sws.run(seed_name(run, s)))}
                 for s in args.seeds]
    df = pd.DataFrame(rows)
    write_csv(out / "seed_spread.csv", df)
    print("\nper seed and baseline:\n" + df.to_string(index=False))
    print("\nB final over seeds:\n" + df.groupby("group")["B_final"].agg(["mean", "std", "min", "max", "count"])
          .to_string())
    print(f"\ntraining: {t_train / 60:.1f} min for {len(order)} runs x {len(args.seeds)} seeds", flush=True)
    if not args.tables:
        return df
    t = time.perf_counter()
    tables = {0: {name: pd.read_csv(ws.tables / f"{name}.csv") for name in TABLE_NAMES.values()
                  if (ws.tables / f"{name}.csv").exists()}}
    for seed in args.seeds:
        tables[seed] = seed_tables(sws, spec, seed)
    gains = gains_by_seed(tables)
    write_csv(out / "seed_gains.csv", gains)
    print(f"tables: {(time.perf_counter() - t) / 60:.1f} min for {len(args.seeds)} seeds; "
          f"total {(time.perf_counter() - t0) / 60:.1f} min")
    wide = gains.pivot_table(index=["table", "row", "comparison", "estimate"], columns="seed", values="gain",
                             sort=False)
    print("\ngain per seed:\n" + wide.round(4).to_string())
    return gains


if __name__ == "__main__":
    main()
