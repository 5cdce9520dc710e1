"""benchmarks/seed_spread.py: retrained runs live in a workspace of their own, finetunes start from
their own seed's pretraining, and --tables writes every gain of Tables 1 and 3 per seed.
Training is replaced by synthetic run directories (tests/helpers/synthetic_runs.py); about 1 minute."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:   # benchmarks/ is a folder of the repository, not of the installed package
    sys.path.insert(0, str(REPO))

from benchmarks import seed_spread  # noqa: E402

from aulib.io import read_yaml, write_yaml  # noqa: E402
from aulib.report import gains, tables  # noqa: E402
from aulib.workspace import Workspace  # noqa: E402
from synthetic_runs import write_synthetic_run  # noqa: E402

SPEC = {"heldout": "test", "folds": 3, "bootstrap": 100,
        "6au": {"baseline": "6_a", "ensemble": ["6_a", "6_b"]},
        "12au": {"baseline": "12_a", "no_mv": "12_b"}}
GROUP = {"6_a": "6au", "6_b": "6au", "6_p": "6au", "12_a": "12au", "12_b": "12au"}


def _source(root: Path) -> Workspace:
    """A finished 'demo' workspace: runs, table spec, its seed-0 tables; 6_b finetuned from 6_p."""
    ws = Workspace.for_profile("demo", root=root)
    for i, (name, group) in enumerate(GROUP.items()):
        write_synthetic_run(ws.run(name), group, epochs=4, n_images=30, n_heldout=40, seed=i)
    cfg = {k: v for k, v in read_yaml(ws.run("6_b") / "config.yaml").items() if k != "synthetic_peaks"}
    write_yaml(ws.run("6_b") / "config.yaml", {**cfg, "stage": "finetune", "init_from": "train/6_p"})
    write_yaml(ws.root / "table_spec.yaml", SPEC)
    for name in ("data", "splits"):
        (ws.root / name).mkdir(parents=True, exist_ok=True)
    tables.write_table(tables.table1(ws, "6au", SPEC), "table1_6au", ws)
    tables.write_table(tables.table3(ws, SPEC), "table3", ws)
    return ws


def test_train_seed_keeps_the_config_but_the_seed_and_follows_its_own_pretraining(tmp_path, monkeypatch):
    import aulib.train.loop

    ws = _source(tmp_path / "demo")
    sws = seed_spread.seed_workspace(ws)
    assert sws.root == (tmp_path / "demo_seeds").resolve() and (sws.root / "data").is_symlink()
    with pytest.raises(ValueError, match="must not be the workspace it retrains"):
        seed_spread.seed_workspace(ws, ws.root)
    seen = []
    monkeypatch.setattr(aulib.train.loop, "train", lambda cfg, resume: seen.append((cfg, resume)) or Path("x"))
    seed_spread.train_seed(ws, sws, "6_b", 2)
    cfg, resume = seen[0]
    assert resume and cfg.run_name == "6_b_seed2" and cfg.seed == 2 and cfg.workspace == str(sws.root)
    assert cfg.init_from == "train/6_p_seed2" and cfg.stage == "finetune"
    assert seed_spread.runs_to_train(ws, ["6_a", "6_b"]) == ["6_a", "6_p", "6_b"]


def test_tables_mode_writes_each_gain_per_seed_and_leaves_the_demo_untouched(tmp_path, monkeypatch):
    ws = _source(tmp_path / "demo")
    before = sorted(p.name for p in ws.train.iterdir())
    order = []

    def fake_train(ws_, sws, run, seed):          # a "retrained" run: same rows, other model noise
        order.append((run, seed))
        d = sws.run(seed_spread.seed_name(run, seed))
        if not d.exists():
            write_synthetic_run(d, GROUP[run], epochs=4, n_images=30, n_heldout=40, seed=100 * seed + len(order))
        return d

    monkeypatch.setattr(seed_spread, "train_seed", fake_train)
    got = seed_spread.main(["--workspace", str(ws.root), "--tables", "--seeds", "1", "2"])
    assert sorted(p.name for p in ws.train.iterdir()) == before                  # nothing new in the demo
    assert order.index(("6_p", 1)) < order.index(("6_b", 1)) and {s for _, s in order} == {1, 2}
    saved = pd.read_csv(ws.tables / "seed_gains.csv")
    assert sorted(saved["seed"].unique()) == [0, 1, 2]
    keys = ["table", "row", "comparison", "estimate"]
    per = [saved[saved["seed"] == s][keys].reset_index(drop=True) for s in (0, 1, 2)]
    assert per[0].equals(per[1]) and per[0].equals(per[2]) and len(per[0]) == len(gains.all_gains(ws.tables))
    # seed 1's gains are the tables of seed 1's runs, built as notebook 07 builds them
    sws = Workspace(ws.root.with_name("demo_seeds"), ws.root.with_name("demo_seeds") / "results")
    own = gains.table_gains(tables.table3(sws, seed_spread.seed_spec(SPEC, 1)), "table3")
    mine = saved[(saved["seed"] == 1) & (saved["table"] == "table3")].reset_index(drop=True)
    assert mine["gain"].notna().sum() == 3                              # w/o L_mv, the only ablation named
    assert mine["gain"].tolist() == pytest.approx(own["gain"].tolist(), nan_ok=True)
    assert mine["lo"].tolist() == pytest.approx(own["lo"].tolist(), nan_ok=True)
    assert (sws.tables / "table1_6au_seed2.csv").exists() and len(got) == len(saved)
    spread = pd.read_csv(ws.tables / "seed_spread.csv")
    assert spread.groupby("group").size().tolist() == [3, 3] and "aus_at_trivial" in spread.columns
    assert (spread.groupby("group")["seed"].apply(lambda s: {1, 2} <= set(s))).all()   # + each run's own seed
