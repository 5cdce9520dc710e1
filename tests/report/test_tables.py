"""The paper's numbers, and Tables 1-3 built from synthetic run directories."""
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from aulib.aus import AUS_2020, au_columns, group_aus
from aulib.io import write_csv, write_npy, write_yaml
from aulib.report import paper, tables
from aulib.select import recipes
from aulib.select.chosen import load_chosen, save_chosen
from aulib.workspace import Workspace


def test_paper_numbers_spot_checks():
    t1 = paper.table1().set_index(["group", "row"])
    assert t1.loc[("17au", "Baseline"), "Final score"] == 0.8030
    assert t1.loc[("17au", "Ensemble-multicrop-pretrained-chosen-threshold"), "F1"] == 0.7393
    assert t1.loc[("17au", "Ensemble-multicrop"), "Accuracy"] == 0.9461
    assert t1.loc[("6au", "Ensemble"), "Accuracy"] == 0.8574
    assert t1.loc[("6au", "Ensemble-chosen-threshold"), "Final score"] == 0.6396
    assert len(t1) == 10
    t2 = paper.table2().set_index(["phase", "team"])
    assert t2.loc[("validation", "TAL"), "Final score"] == 0.7460
    assert t2.loc[("test", "TAL"), "Final score"] == 0.7306
    assert t2.loc[("validation", "SIAT-NTU"), "F1"] == 0.3531
    assert t2.loc[("test", "USTC-alibaba"), "Mean Accuracy"] == 0.8609
    assert ("validation", "USTC-alibaba") not in t2.index
    t3 = paper.table3().set_index("row")
    assert t3.loc["w/o L_cr", "Final score"] == 0.7885
    assert t3.loc["w/o batch balancing", "F1"] == 0.6446
    assert t3.loc["Baseline", "Accuracy"] == 0.9604
    # the final score is (F1 + accuracy) / 2 in every published row (to rounding), except one
    # row where the paper itself is off: 17AU Baseline (0.6740 + 0.9330) / 2 = 0.8035, printed 0.8030
    for t, acc in ((paper.table1(), "Accuracy"), (paper.table2(), "Mean Accuracy"), (paper.table3(), "Accuracy")):
        off = ((t["F1"] + t[acc]) / 2 - t["Final score"]).abs() > 6e-5
        assert off.sum() == (1 if "group" in t else 0)
    assert paper.table1("17au").loc[0, "Final score"] == 0.8030


def test_claimed_gains_are_the_tables_differences():
    """The gains the paper's text states are differences of its tables' final scores,
    so the tables' 'Paper gain' columns say what the text says."""
    finals = {("table1_" + g, r): f for g, r, _, _, f in paper.TABLE1}
    finals.update({("table3", r): f for r, _, _, f in paper.TABLE3})
    for table, row, ref, gain in paper.CLAIMED_GAINS:
        assert finals[(table, row)] - finals[(table, ref)] == pytest.approx(gain, abs=1e-9)


def _make_run(ws, name, group, seed, quality=1.0, epochs=5, n_img=40, n_test=60):
    """A run directory as training writes it: every AU peaks at its own epoch."""
    labels_rng = np.random.default_rng(99)
    rng = np.random.default_rng(seed)
    aus = group_aus(group)
    c = len(aus)
    d = ws.run(name)
    write_yaml(d / "config.yaml", {"run_name": name, "group": group, "backbones": ["x", "y"], "img_size": 32,
                                   "crop_style": "aligned", "epochs": epochs, "heldout": "test"})
    write_csv(d / "log.csv", pd.DataFrame({"epoch": np.arange(1, epochs + 1)}))
    for split, img, var in (("B", np.repeat(np.arange(n_img), 4), np.tile(np.arange(4), n_img)),
                            ("test", np.arange(n_test), np.zeros(n_test, int))):
        y = (labels_rng.random((img.max() + 1, c)) < np.linspace(0.15, 0.4, c)).astype(np.int8)[img]
        index = pd.DataFrame({"image": [f"{split}/{i:04d}.jpg" for i in img], "variant": var})
        index[au_columns(aus)] = y
        for suffix in ("", "_mc"):
            write_csv(d / "preds" / f"{split}{suffix}_index.csv", index)
            for e in range(1, epochs + 1):
                strength = quality * (2.0 - 0.4 * np.abs(e - (1 + np.arange(c) % epochs)))
                z = strength * (2 * y - 1) + rng.normal(size=y.shape) - 0.5
                write_npy(d / "preds" / f"{split}{suffix}_epoch{e:03d}.npy", (1 / (1 + np.exp(-z))).astype(np.float16))
    return d


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace.for_profile("t", root=root, results=root / "results")
    for i, n in enumerate(["17_a", "17_b", "17_fa", "17_fb"]):
        _make_run(ws, n, "17au", seed=i, quality=1 + 0.1 * i)
    for i, n in enumerate(["6_a", "6_b"]):
        _make_run(ws, n, "6au", seed=10 + i)
    for i, n in enumerate(["12_base", "12_nomv", "12_nocr"]):
        _make_run(ws, n, "12au", seed=20 + i)
    return ws


SPEC = {"heldout": "test", "folds": 4,
        "17au": {"baseline": "17_a", "ensemble": ["17_a", "17_b"], "pretrained": ["17_fa", "17_fb"]},
        "6au": {"baseline": ["6_a"], "ensemble": ["6_a", "6_b"]},
        "12au": {"baseline": "12_base", "no_mv": "12_nomv", "no_cr": "12_nocr"}}


def test_table1_rows_and_paper_columns(ws):
    t = tables.table1(ws, "17au", SPEC)
    assert t["row"].tolist() == list(paper.TABLE1_ROWS["17au"])
    assert t["Paper Final"].tolist() == paper.table1("17au")["Final score"].tolist()
    ours = t[[f"{e} {m}" for e in tables.ESTIMATES for _, m in tables.METRICS]].to_numpy()
    assert np.isfinite(ours).all() and (ours >= 0).all() and (ours <= 1).all()
    by_row = t.set_index("row")
    # thresholds are chosen on the same (in-sample) B probabilities they are scored on: never worse there
    assert (by_row.loc["Ensemble-multicrop-pretrained-chosen-threshold", "B Final"]
            >= by_row.loc["Ensemble-multicrop-pretrained-chosen", "B Final"])
    # the synthetic runs peak at different epochs per AU: per-AU choice must beat one epoch for all
    assert (by_row.loc["Ensemble-multicrop-pretrained-chosen", "Held-out Final"]
            > by_row.loc["Ensemble-multicrop-pretrained", "Held-out Final"])
    assert by_row.loc["Ensemble", "runs"] == "17_a + 17_b"
    t6 = tables.table1(ws, "6au", SPEC)
    assert t6["row"].tolist() == list(paper.TABLE1_ROWS["6au"])


def test_b_column_is_in_sample_for_ensembles_like_the_baseline(ws):
    """'B' follows the paper for every row: the ensemble fitted on all of B and scored on
    B in-sample (the old code scored its out-of-fold probabilities, i.e. 'B cross-fit')."""
    from aulib.metrics import au_scores, decide, summarize
    from aulib.runs import load_run_preds

    rec = recipes.TABLE1_RECIPES["17au"][1]                                  # Ensemble
    runs = [load_run_preds(ws.run(n), "B") for n in ("17_a", "17_b")]
    scores, system = recipes.evaluate_recipe(rec, runs, None, folds=4)
    in_sample = decide(system.probs(runs), system.thresholds)               # fitted on B, applied to B
    expected = summarize(au_scores(runs[0].labels, in_sample, runs[0].aus))
    assert scores["B"]["final"] == pytest.approx(expected["final"], abs=1e-12)
    assert scores["B"]["f1"] == pytest.approx(expected["f1"], abs=1e-12)
    assert np.isnan(scores["Held-out"]["final"])
    t = tables.table1(ws, "17au", {**SPEC, "bootstrap": 0}).set_index("row")
    assert t.loc["Ensemble", "B Final"] == pytest.approx(expected["final"], abs=1e-12)


def test_gain_columns_and_intervals(ws):
    t = tables.table1(ws, "17au", {**SPEC, "bootstrap": 300}).set_index("row")
    chosen, pre = "Ensemble-multicrop-pretrained-chosen", "Ensemble-multicrop-pretrained"
    # the paper's headline "chosen" gain (+0.0102) and its total gain over the baseline
    assert t.loc[chosen, "Paper gain vs previous row"] == pytest.approx(0.0102, abs=1e-9)
    assert t.loc[t.index[-1], "Paper gain vs Baseline"] == pytest.approx(0.8454 - 0.8030, abs=1e-9)
    for est in tables.ESTIMATES:
        g = t[f"{est} gain vs previous row"]
        assert g[chosen] == pytest.approx(t.loc[chosen, f"{est} Final"] - t.loc[pre, f"{est} Final"])
        assert np.isnan(t.loc["Baseline", f"{est} gain vs Baseline"])
        lo, hi = t[f"{est} gain vs Baseline lo"].iloc[1:], t[f"{est} gain vs Baseline hi"].iloc[1:]
        assert (lo < hi).all() and np.isfinite(lo).all()
    # the synthetic runs peak at different epochs per AU: the chosen gain holds held out (its interval
    # touches 0 here: these runs are nearly separable on B, so refitting each epoch pair overfits a little)
    assert t.loc[chosen, "Held-out gain vs previous row"] > 0
    t3 = tables.table3(ws, {**SPEC, "bootstrap": 100})
    assert "B gain vs previous row" not in t3.columns and t3.columns[-1] == "note"
    assert t3.set_index("row").loc["w/o L_cr", "Paper gain vs Baseline"] == pytest.approx(-0.0195, abs=1e-9)
    md = tables.to_markdown(tables.with_intervals(t.reset_index()))
    assert "B gain vs Baseline lo" not in md and " [" in md.splitlines()[3]


def test_table3_missing_run_keeps_paper_row(ws):
    t = tables.table3(ws, SPEC)
    assert t["row"].tolist() == list(paper.TABLE3_ROWS)
    nobal = t.set_index("row").loc["w/o batch balancing"]
    assert np.isnan(nobal["B Final"]) and "no_balance" in nobal["note"] and nobal["Paper Final"] == 0.8019
    assert np.isfinite(t.set_index("row").loc["Baseline", "Held-out Final"])


def test_missing_heldout_predictions_are_noted(ws, tmp_path):
    spec = {**SPEC, "heldout": "validation"}
    t = tables.table1(ws, "6au", spec)
    assert t["Held-out Final"].isna().all() and t["note"].str.contains("validation").all()
    assert np.isfinite(t["B cross-fit Final"]).all()


def test_write_table_csv_and_markdown(ws):
    t = tables.table3(ws, SPEC)
    csv, md = tables.write_table(t, "table3", ws)
    assert pd.read_csv(csv)["row"].tolist() == t["row"].tolist()
    lines = md.read_text().splitlines()
    assert len(lines) == 2 + len(t) and lines[0].startswith("| row | runs | Paper F1")
    assert "| w/o L_cr | 12_nocr | 0.6188 | 0.9583 | 0.7885 |" in md.read_text()
    html = tables.style_table(t).to_html()
    assert "0.7885" in html


def test_table2_full_system_on_test_split(ws):
    chosen = {g: recipes.full_system(ws, g, SPEC) for g in ("17au", "6au")}
    ens = chosen["17au"].ensemble
    assert ens["multicrop"] is True and len(ens["epochs"]) == 17 and len(ens["epochs"][0]) == 2
    save_chosen(ws.chosen("17au"), chosen["17au"])
    # the model file passes the chosen-model checks (checkpoints are not part of these synthetic runs)
    assert load_chosen(ws.chosen("17au"), ws.root, check_files=False).ensemble["runs"] == ["17_fa", "17_fb"]
    split = pd.read_csv(ws.run("17_fa") / "preds" / "test_index.csv")
    six = pd.read_csv(ws.run("6_a") / "preds" / "test_index.csv")
    for c in au_columns(group_aus("6au")):
        split[c] = six[c]
    write_csv(ws.split("test"), split[["image", "variant"] + au_columns(AUS_2020)])
    t = tables.table2(ws, chosen, splits=("validation", "test"))
    ours = t[t["source"] == "aulib"].set_index("phase")
    assert "no split 'validation'" in ours.loc["validation", "note"]
    assert 0.5 < ours.loc["test", "Final score"] <= 1
    assert t[t["source"] == "paper"]["team"].tolist()[:3] == ["TAL", "University of Magdeburg", "SIAT-NTU"]
    # ours in a block of its own after every team of both phases, its note saying what it was scored on
    n_paper = len(paper.table2())
    assert t["source"].tolist() == ["paper"] * n_paper + ["aulib"] * 2
    assert t["phase"].tolist()[-2:] == ["validation", "test"]
    assert ours.loc["test", "note"].startswith("this workspace data (test split), not EmotioNet: NOT comparable")
    (ws.data / "synthau.yaml").parent.mkdir(parents=True, exist_ok=True)
    (ws.data / "synthau.yaml").write_text("profile: t\n")
    t = tables.table2(ws, chosen, splits=("test",))
    row = t[t["source"] == "aulib"].iloc[0]
    assert row["team"] == "ours on SynthAU (17au + 6au)" and "not EmotioNet" in row["note"]
    (ws.data / "synthau.yaml").unlink()


def test_markdown_counts_stay_whole_and_scores_keep_decimals():
    df = pd.DataFrame({"au": ["AU1", "mean", "images"], "pos": [2401.0, 9692.0, np.nan],
                       "kept": [0.6478, 0.75, 1.0], "f1": [0.0, 1.0, np.nan], "label": ["a|b", "c", "d"]})
    lines = tables.to_markdown(df).splitlines()
    assert lines[0] == "| au | pos | kept | f1 | label |"
    assert lines[1] == "|:---|---:|---:|---:|:---|"
    assert lines[2] == "| AU1 | 2401 | 0.6478 | 0.0000 | a\\|b |"
    assert lines[4] == "| images |  | 1.0000 |  | d |"


def test_results_readme_says_what_each_column_is_and_which_gains_exclude_zero(ws):
    from aulib.report.summary import write_results_readme

    tables.write_table(tables.table1(ws, "17au", {**SPEC, "bootstrap": 200}), "table1_17au", ws)
    tables.write_table(tables.table3(ws, {**SPEC, "bootstrap": 200}), "table3", ws)
    text = write_results_readme(ws, "t").read_text()
    assert "in-sample" in text and "out-of-fold" in text and "degraded x4 exactly as B" in text
    section = text.split("## Which gains are distinguishable from zero")[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("| Table 1 · 17 AUs |")]   # the paper's name
    assert len(lines) == 6                                   # 5 steps + the whole system vs Baseline
    chosen = next(ln for ln in lines if "| Ensemble-multicrop-pretrained-chosen |" in ln)
    assert "| +0.0102 | yes |" in chosen
    for line in lines:                                       # the estimates listed are those whose interval excludes 0
        cells = [c.strip() for c in line.split("|")[1:-1]]
        bounds = [re.search(r"\[([-+\d.]+), ([-+\d.]+)\]", c) for c in cells[5:8]]
        excl = {e for e, m in zip(("B", "B cross-fit", "Held-out"), bounds)
                if m and (float(m[1]) > 0 or float(m[2]) < 0)}
        assert {e.strip() for e in cells[8].split(",") if e.strip() not in ("", "none")} == excl, line
    assert "| +0.0144 |  |" in lines[0]                      # Baseline -> Ensemble: not stated in the text
    t3 = [ln for ln in section.splitlines() if ln.startswith("| Table 3 · 12 AUs, ablations |")]
    assert len(t3) == 3 and "| -0.0195 |" in next(ln for ln in t3 if "w/o L_cr" in ln)
    assert "table1_17au |" not in section                   # no internal keys
    # one sentence on multiplicity: the flags shown against what chance alone gives at 95 %
    from aulib.report.gains import all_gains
    long = all_gains(ws.tables)
    n = int((long["lo"].notna() & long["hi"].notna()).sum())
    flags = int(((long["lo"] > 0) | (long["hi"] < 0)).sum())
    assert (f"**Multiplicity.** {flags} of the {n} intervals above exclude 0; if no step had any effect, chance "
            f"alone would make about {0.05 * n:.0f} of {n} exclude 0 at 95 %") in section
    # the verdict comes first, with the whole system's honest gains and their intervals
    head = text.split("## Figure 1")[0]
    t1 = pd.read_csv(ws.tables / "table1_17au.csv").iloc[-1]
    held = f"{t1['Held-out gain vs Baseline']:+.4f} [{t1['Held-out gain vs Baseline lo']:+.4f}, "
    assert head.index("**Verdict.**") < head.index("These numbers come from")
    assert f"- 17 AUs, whole system vs Baseline: held out {held}" in head
    assert "- Distinguishable from zero, cross-fitted or held out, in this one training run" in head
    assert len([ln for ln in head.split("**Verdict.**")[1].splitlines() if ln.startswith("- ")]) == 2  # no 6au table


def test_results_readme_calls_a_gain_distinguishable_only_under_every_seed(ws, tmp_path):
    """With seed_gains.csv (benchmarks/seed_spread.py --tables) beside the tables, the page shows
    each gain under the other seeds and calls it distinguishable from zero only where its
    interval excludes 0, on the same side, under every seed."""
    from aulib.report.gains import all_gains
    from aulib.report.summary import write_results_readme

    other = Workspace.for_profile("t3", root=tmp_path, results=tmp_path / "results")
    tables.write_table(tables.table3(ws, {**SPEC, "bootstrap": 200}), "table3", other)
    long = all_gains(other.tables)
    s1, s2 = long.assign(seed=1), long.assign(seed=2)
    # seed 1 agrees everywhere; seed 2 moves w/o L_mv's interval to (+0.001, +0.002) on every estimate
    mv = s2["row"] == "w/o L_mv"
    s2.loc[mv, ["gain", "lo", "hi"]] = [0.0015, 0.001, 0.002]
    seeds = pd.concat([long.assign(seed=0), s1, s2], ignore_index=True)
    write_csv(other.tables / "seed_gains.csv", seeds[["table", "row", "comparison", "estimate", "seed",
                                                       "gain", "lo", "hi"]])
    text = write_results_readme(other, "t3").read_text()
    section = text.split("## Which gains are distinguishable from zero")[1]
    line = next(ln for ln in section.splitlines() if "| w/o L_mv |" in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[-1] == "none" and "+0.0015" in cells[-2]               # flipped sign under seed 2: never
    ex = long[(long["lo"] > 0) | (long["hi"] < 0)]
    kept = ex[ex["row"] != "w/o L_mv"]
    for _, g in kept.iterrows():                                      # the others keep their flags
        row = next(ln for ln in section.splitlines() if f"| {g['row']} |" in ln)
        assert g["estimate"] in row.split("|")[-2]
    assert "Under all 3 seeds" in section and "under every one of 3 seeds" in text.split("## Figure 1")[0]


def test_per_au_baselines_trivial_f1_is_the_all_present_predictors():
    """The trivial F1 of an AU is the F1 of calling it present in every image of B: 2p/(1+p)."""
    from aulib.metrics import au_scores, trivial_f1

    rng = np.random.default_rng(3)
    labels = np.where(rng.random((500, 4)) < 0.1, -1, (rng.random((500, 4)) < [0.03, 0.1, 0.3, 0.6]).astype(int))
    per = au_scores(labels, np.ones_like(labels))
    assert trivial_f1(per["n"], per["n_pos"]) == pytest.approx(per["f1"].to_numpy())
    p = per["n_pos"] / per["n"]
    assert trivial_f1(per["n"], per["n_pos"]) == pytest.approx((2 * p / (1 + p)).to_numpy())
    assert np.isnan(trivial_f1([0], [0])).all()


def test_per_au_baselines_flags_an_au_never_predicted(ws, tmp_path):
    """Each baseline's per-AU F1 on B at its last epoch, threshold 0.5; an AU the
    model never predicts present (F1 0) is marked in results/README.md."""
    from aulib.report.summary import write_results_readme

    per = tables.per_au_baselines(ws, SPEC)
    assert per["au"].tolist()[:3] == ["AU1", "AU2", "AU4"]
    assert {"F1 17_a", "positives 17_a", "F1 6_a", "F1 12_base"} <= set(per.columns)
    base = tables.load_run_preds(ws.run("17_a"), "B")
    expect = tables.au_scores(base.labels, tables.decide(base.probs[-1]), base.aus)["f1"].to_numpy()
    assert per["F1 17_a"].iloc[:17].to_numpy() == pytest.approx(expect)
    assert per["positives 17_a"].iloc[0] == (base.labels[:, 0] == 1).sum()
    known = (base.labels >= 0).sum(0)
    p = (base.labels == 1).sum(0) / known
    assert per["trivial F1 17_a"].iloc[:17].to_numpy() == pytest.approx(2 * p / (1 + p))
    # AU9 never predicted present: F1 0, marked
    run = ws.run("17_a")
    other = Workspace.for_profile("t2", root=tmp_path, results=tmp_path / "results")
    shutil.copytree(run, other.run("17_a"))
    col = list(base.aus).index(9)
    for e in base.epochs:
        path = other.run("17_a") / "preds" / f"B_epoch{e:03d}.npy"
        p = np.load(path)
        p[:, col] = 0.1
        write_npy(path, p)
    per2 = tables.per_au_baselines(other, {"17au": {"baseline": "17_a", "ensemble": ["17_a"]}})
    assert per2.set_index("au").loc["AU9", "F1 17_a"] == 0
    assert list(per2.columns) == ["au", "F1 17_a", "trivial F1 17_a", "positives 17_a"]
    # a learned-looking F1 at or below the AU's own trivial F1 is marked too (no fixed 0.2 line)
    per2.loc[per2["au"] == "AU2", "F1 17_a"] = per2.loc[per2["au"] == "AU2", "trivial F1 17_a"] - 0.001
    per2.loc[per2["au"] == "AU4", "F1 17_a"] = 0.19
    per2.loc[per2["au"] == "AU4", "trivial F1 17_a"] = 0.12
    write_csv(other.tables / "per_au_baselines.csv", per2)
    text = write_results_readme(other, "t2").read_text()
    assert "| AU9 | 0.000 ** |" in text and "| AU1 | 0.000 ** |" not in text
    assert next(ln for ln in text.splitlines() if ln.startswith("| AU2 |")).count("**") == 1
    assert "| AU4 | 0.190 | 0.120 |" in text                  # above its trivial F1 though below 0.2
    assert "2p / (1 + p)" in text and "F1 <= 0.2" not in text


@pytest.mark.parametrize("group", ["17au", "6au"])
def test_chosen_and_threshold_steps_cannot_lose_in_sample_per_au(ws, group):
    """'Chosen' inside an ensemble is chosen for the ensemble (over its own epoch combinations,
    refitted), so in-sample on B it cannot lose to the unchosen ensemble: per AU under one fitting
    rule, on the mean when the rule is chosen too; thresholds then cannot lose either.
    (Choosing each member's epoch by its own score lost on several AUs.)"""
    from unittest import mock

    from aulib.metrics import au_scores

    rows = recipes.TABLE1_RECIPES[group]
    names = SPEC[group]["pretrained" if group == "17au" else "ensemble"]
    split = "B_mc" if group == "17au" else "B"
    runs = [tables.load_run_preds(ws.run(n), split) for n in names]
    for rules in (lambda c: (0.2,), lambda c: (None,), recipes.ensemble_rules):
        per_au, rule = {}, {}
        with mock.patch.object(recipes, "ensemble_rules", rules):
            for rec in rows[-3:]:
                dec, system = recipes.recipe_decisions(rec, runs, None, folds=4)
                lab, d, _ = dec["B"]
                per_au[rec.epochs, rec.threshold] = au_scores(lab, d, runs[0].aus)["final"].to_numpy()
                rule[rec.epochs, rec.threshold] = system.ensemble.neg_weight
                if rec.epochs == "chosen":
                    assert system.ensemble.epochs.shape == (len(runs[0].aus), 2)
        assert per_au["chosen", False].mean() >= per_au["average", False].mean() - 1e-12
        if rule["chosen", False] == rule["average", False]:
            assert (per_au["chosen", False] >= per_au["average", False] - 1e-12).all()
            assert (per_au["chosen", False] > per_au["average", False]).any()
        assert (per_au["chosen", True] >= per_au["chosen", False] - 1e-12).all()


def test_the_ensemble_rule_is_chosen_on_b_by_the_final_score(ws):
    """Table 1 fits each ensemble by the better of the members' balancing rule and plain
    log-loss on B (final at 0.5), the members' rule winning ties."""
    from unittest import mock

    rec = recipes.TABLE1_RECIPES["6au"][1]
    runs = [tables.load_run_preds(ws.run(n), "B") for n in SPEC["6au"]["ensemble"]]
    assert recipes.ensemble_rules([r.config for r in runs]) == (0.2, None)
    assert recipes.ensemble_rules([{"ablate": ["balance"]}]) == (None,)
    finals = {}
    for rule in (0.2, None):
        with mock.patch.object(recipes, "ensemble_rules", lambda c, rule=rule: (rule,)):
            finals[rule] = recipes.evaluate_recipe(rec, runs, None, folds=4)[0]["B"]["final"]
    scores, system = recipes.evaluate_recipe(rec, runs, None, folds=4)
    assert scores["B"]["final"] == pytest.approx(max(finals.values()), abs=1e-12)
    assert system.ensemble.neg_weight == (0.2 if finals[0.2] >= finals[None] else None)


def test_results_readme_shows_table1_compact_with_a_reading(ws):
    """Table 1 at a glance: final score and the step's gain with its interval per estimate (the full
    23 columns stay in the CSV), and a paragraph computed from the numbers."""
    from aulib.report.summary import write_results_readme

    t1 = tables.table1(ws, "17au", {**SPEC, "bootstrap": 200})
    tables.write_table(t1, "table1_17au", ws)
    tables.write_table(tables.table3(ws, {**SPEC, "bootstrap": 200}), "table3", ws)
    text = write_results_readme(ws, "t").read_text()
    section = text.split("## Table 1 · 17 AUs")[1].split("## Table 1 · 6 AUs")[0]
    head = next(ln for ln in section.splitlines() if ln.startswith("| row"))
    assert head == "| row | paper | B | B gain | B cross-fit | B cross-fit gain | Held-out | Held-out gain |"
    chosen = next(ln for ln in section.splitlines() if ln.startswith("| Ensemble-multicrop-pretrained-chosen |"))
    r = t1.set_index("row").loc["Ensemble-multicrop-pretrained-chosen"]
    assert f"| {r['Held-out Final']:.4f} | {r['Held-out gain vs previous row']:+.4f} [" in chosen
    reading = next(ln for ln in section.splitlines() if ln.startswith("**Reading.**"))
    assert f"{t1['B gain vs Baseline'].iloc[-1]:+.4f}" in reading and "*Ensemble-multicrop*" in reading
    t3 = text.split("## Table 3")[1].split("##")[0]
    assert "| row | paper | B | B gain |" in t3
    assert (ws.results / "environment.txt").exists() and "## Environment" in text


# --------------------------------------------------------------------------- seed spread

def _fixed_run(ws, name, misses, group="12au", epochs=2, n_img=10):
    """A run with known scores at every epoch: of B's ``n_img`` images (4 copies
    each) the first 5 have every AU present; at threshold 0.5 the run misses the
    first ``misses`` of them and gets every other label right, so its final score
    is ((1 - misses / 10) + (10 - 2 misses) / (10 - misses)) / 2 (n_img 10)."""
    aus = group_aus(group)
    d = ws.run(name)
    write_yaml(d / "config.yaml", {"run_name": name, "group": group, "backbones": ["x", "y"], "img_size": 32,
                                   "crop_style": "aligned", "epochs": epochs})
    write_csv(d / "log.csv", pd.DataFrame({"epoch": np.arange(1, epochs + 1)}))
    img = np.repeat(np.arange(n_img), 4)
    y = np.repeat((img < 5)[:, None], len(aus), axis=1).astype(np.int8)
    index = pd.DataFrame({"image": [f"B/{i:04d}.jpg" for i in img], "variant": np.tile(np.arange(4), n_img)})
    index[au_columns(aus)] = y
    p = np.where((y == 1) & (img[:, None] >= misses), 0.9, 0.1).astype(np.float16)
    for suffix in ("", "_mc"):
        write_csv(d / "preds" / f"B{suffix}_index.csv", index)
        for e in range(1, epochs + 1):
            write_npy(d / "preds" / f"B{suffix}_epoch{e:03d}.npy", p)
    return d


def _final(misses):
    return ((1 - misses / 10) + (10 - 2 * misses) / (10 - misses)) / 2


def test_table3_seed_spread_on_runs_with_known_scores(tmp_path):
    """Baseline and w/o L_mv trained under seeds 0, 1, 2 (replicas in the spec), w/o L_cr
    once: the seed sd is the sample sd (n - 1) of the row's final score over its seeds and
    of its gain seed by seed (a run trained once is the same in every seed); the other
    columns are the first seed's, exactly the table without replicas."""
    ws = Workspace.for_profile("s", root=tmp_path, results=tmp_path / "results")
    misses = {"base": 0, "base_s1": 1, "base_s2": 2, "nomv": 1, "nomv_s1": 1, "nomv_s2": 3, "nocr": 2}
    for name, m in misses.items():
        _fixed_run(ws, name, m)
    one = {"bootstrap": 0, "folds": 5, "12au": {"baseline": "base", "no_mv": "nomv", "no_cr": "nocr"}}
    spec = {**one, "seed_replicas": {r: {s: r if s == 0 else f"{r}_s{s}" for s in (0, 1, 2)} for r in ("base", "nomv")}}
    t, t1 = tables.table3(ws, spec), tables.table3(ws, one)
    new = ["seeds"] + [f"{e} {c} seed sd" for e in tables.SEED_ESTIMATES for c in ("Final", "gain vs Baseline")]
    assert not any("seed" in c for c in t1.columns) and set(t.columns) - set(t1.columns) == set(new)
    pd.testing.assert_frame_equal(t.drop(columns=new), t1)
    cols = list(t.columns)
    assert cols[cols.index("runs") + 1] == "seeds" and cols[-1] == "note"
    for e in tables.SEED_ESTIMATES:
        assert cols[cols.index(f"{e} Final") + 1] == f"{e} Final seed sd"
        assert cols[cols.index(f"{e} gain vs Baseline hi") + 1] == f"{e} gain vs Baseline seed sd"
    assert "Held-out Final seed sd" not in cols
    t = t.set_index("row")
    base, nomv = np.array([_final(0), _final(1), _final(2)]), np.array([_final(1), _final(1), _final(3)])
    sd = lambda v: float(np.std(v, ddof=1))                                  # noqa: E731
    assert t["seeds"].tolist()[:2] == [3, 1] and t.loc["Baseline", "seeds"] == 3 and np.isnan(t["seeds"].iloc[2])
    for e in tables.SEED_ESTIMATES:                 # constant predictions: cross-fit = in-sample here
        assert t.loc["Baseline", f"{e} Final"] == pytest.approx(_final(0), abs=1e-12)
        assert t.loc["Baseline", f"{e} Final seed sd"] == pytest.approx(sd(base), abs=1e-12)
        assert t.loc["w/o L_mv", f"{e} Final"] == pytest.approx(_final(1), abs=1e-12)
        assert t.loc["w/o L_mv", f"{e} Final seed sd"] == pytest.approx(sd(nomv), abs=1e-12)
        assert t.loc["w/o L_mv", f"{e} gain vs Baseline"] == pytest.approx(_final(1) - _final(0), abs=1e-12)
        assert t.loc["w/o L_mv", f"{e} gain vs Baseline seed sd"] == pytest.approx(sd(nomv - base), abs=1e-12)
        # trained once: no spread of its own, but its gain moves with the Baseline's seeds
        assert np.isnan(t.loc["w/o L_cr", f"{e} Final seed sd"])
        assert t.loc["w/o L_cr", f"{e} gain vs Baseline seed sd"] == pytest.approx(sd(_final(2) - base), abs=1e-12)
        assert np.isnan(t.loc["Baseline", f"{e} gain vs Baseline seed sd"])
        assert t.loc["w/o batch balancing", [f"{e} Final seed sd", f"{e} gain vs Baseline seed sd"]].isna().all()
    assert sd(nomv - base) == pytest.approx(0.07266, abs=1e-5)               # the numbers the test stands on
    # a seed whose runs are missing: left out of the spread, and said so
    spec["seed_replicas"]["base"][3] = "base_s3"
    t3 = tables.table3(ws, spec).set_index("row")
    assert "seed(s) [3]" in t3.loc["Baseline", "note"] and t3.loc["Baseline", "seeds"] == 3
    assert t3.loc["Baseline", "B Final seed sd"] == pytest.approx(sd(base), abs=1e-12)
    md = tables.to_markdown(tables.with_intervals(t.reset_index()))
    assert "| B Final | B Final seed sd |" in md and "| B gain vs Baseline | B gain vs Baseline seed sd |" in md
    # results/README.md explains the columns only when a table has them
    from aulib.report.summary import write_results_readme

    tables.write_table(t1, "table3", ws)
    assert "seed sd" not in write_results_readme(ws, "s").read_text()
    tables.write_table(t.reset_index(), "table3", ws)
    assert "*seed sd* (the profile trains several `seeds`)" in write_results_readme(ws, "s").read_text()


def test_table1_seed_spread_is_the_spread_of_the_tables_of_each_seed(ws, tmp_path):
    """Table 1 (6au) with 6_a trained under a second seed (6_b once): each row's seed sd
    and its gains' are those of the two tables built from each seed's runs alone."""
    _make_run(ws, "6_a_s1", "6au", seed=31, quality=0.8)
    spec = {"heldout": "test", "folds": 4, "bootstrap": 0, "6au": {"baseline": ["6_a"], "ensemble": ["6_a", "6_b"]}}
    t0 = tables.table1(ws, "6au", spec)
    t1 = tables.table1(ws, "6au", {**spec, "6au": {"baseline": ["6_a_s1"], "ensemble": ["6_a_s1", "6_b"]}})
    path = tmp_path / "spec.yaml"                  # through YAML, as the runner writes it (seeds as int keys)
    write_yaml(path, {**spec, "seed_replicas": {"6_a": {0: "6_a", 1: "6_a_s1"}}})
    t = tables.table1(ws, "6au", recipes.load_table_spec(path))
    assert (t["seeds"] == 2).all()
    pd.testing.assert_frame_equal(t[t0.columns], t0)
    for e in tables.SEED_ESTIMATES:
        f0, f1 = t0[f"{e} Final"].to_numpy(), t1[f"{e} Final"].to_numpy()
        assert not np.allclose(f0, f1)
        assert t[f"{e} Final seed sd"].to_numpy() == pytest.approx(np.abs(f0 - f1) / np.sqrt(2), abs=1e-12)
        for comp in ("vs Baseline", "vs previous row"):
            g0, g1 = t0[f"{e} gain {comp}"].to_numpy(), t1[f"{e} gain {comp}"].to_numpy()
            got = t[f"{e} gain {comp} seed sd"].to_numpy()
            assert np.isnan(got[0]) and got[1:] == pytest.approx(np.abs(g0 - g1)[1:] / np.sqrt(2), abs=1e-12)
    with pytest.raises(ValueError, match="seed_replicas maps each run"):
        recipes.load_table_spec({**spec, "seed_replicas": {"6_a": ["6_a", "6_a_s1"]}})


def test_each_distinct_ensemble_is_fitted_once_across_rows_rules_folds_and_full_systems(ws):
    """Table 1's -chosen and -chosen-threshold rows, both fitting rules, the full fit and every
    cross-fitting fold, and full_systems share one cache: the chosen-ensemble search runs once per
    distinct (members' predictions, rows, rule, top_k) key; a rewritten prediction file is a new key."""
    from unittest import mock

    recipes._ENSEMBLES.clear()
    with mock.patch.object(recipes, "choose_ensemble_epochs", wraps=recipes.choose_ensemble_epochs) as search:
        t1 = {g: tables.table1(ws, g, {**SPEC, "bootstrap": 0}) for g in ("17au", "6au")}
        # per group: 2 rules x (the full fit + 4 folds), whatever the number of rows using them
        assert search.call_count == 2 * 2 * (1 + SPEC["folds"])
        recipes.full_systems(ws, SPEC, save=False)
        assert search.call_count == 2 * 2 * (1 + SPEC["folds"])
        again = tables.table1(ws, "6au", {**SPEC, "bootstrap": 0})
        assert search.call_count == 2 * 2 * (1 + SPEC["folds"])
        pd.testing.assert_frame_equal(again, t1["6au"])
        # a member's prediction file rewritten: its fits are new keys
        rd = ws.run("6_b")
        path = sorted((rd / "preds").glob("B_epoch*.npy"))[0]
        write_npy(path, np.load(path))
        tables.table1(ws, "6au", {**SPEC, "bootstrap": 0})
        assert search.call_count == 2 * 2 * (1 + SPEC["folds"]) + 2 * (1 + SPEC["folds"])


def test_tables_read_only_the_predictions_the_inference_step_is_asked_for(tmp_path):
    """Notebook 07's inference step: predictions_needed lists, per row, its runs' held-out epochs
    (those the row's system fitted on all of B picks); the table reads those files alone (a held-out
    file not listed may go), and a listed one missing beside its checkpoint is an error naming the
    file and the call to make (the table no longer predicts from checkpoints itself)."""
    from aulib.select.stored import MissingPredictions

    ws = Workspace.for_profile("t", root=tmp_path, results=tmp_path / "results")
    for i, n in enumerate(["6_a", "6_b"]):
        _make_run(ws, n, "6au", seed=10 + i, epochs=8)
    spec = {"heldout": "test", "folds": 4, "bootstrap": 0, "6au": SPEC["6au"]}
    want = tables.table1(ws, "6au", spec)
    needed = recipes.predictions_needed(ws, spec)
    assert sorted((r.run_dir.name, r.split, r.multicrop) for r in needed) == [("6_a", "test", False),
                                                                              ("6_b", "test", False)]
    listed = {(r.run_dir.name, e) for r in needed for e in r.epochs}
    unlisted = [(n, e) for n in ("6_a", "6_b") for e in range(1, 9) if (n, e) not in listed]
    assert unlisted
    for n, e in unlisted:
        (ws.run(n) / "preds" / f"test_epoch{e:03d}.npy").unlink()
    pd.testing.assert_frame_equal(tables.table1(ws, "6au", spec), want)
    n, e = sorted(listed)[0]
    (ws.run(n) / "preds" / f"test_epoch{e:03d}.npy").unlink()
    (ws.run(n) / "checkpoints").mkdir()
    (ws.run(n) / "checkpoints" / f"epoch{e:03d}.pt").write_bytes(b"")
    with pytest.raises(MissingPredictions, match=rf"test_epoch{e:03d}.npy not found.*predict_needed"):
        tables.table1(ws, "6au", spec)
