"""The benchmark's selection audit per fold (issue 32): each rule (the public
codes', FMAE-IAT's, the paper's) made on the test fold and on B, each run's
last epoch at 0.5, with subject-bootstrap intervals, beside the published
table. Synthetic runs whose best epoch on the test fold (3) is not B's (1),
so the answer is known; and the columns against loops over the candidates
with scikit-learn's f1_score on the prediction files."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from aulib.aus import au_columns
from aulib.io import read_yaml
from aulib.pipeline import profile as P
from aulib.pipeline.kfold import fold_workspace
from aulib.report.kfold import kfold_summary, write_kfold_summaries
from aulib.report import benchmark as BM
from aulib.report import benchmark_workspace as BW
from aulib.report.published import published_table
from aulib.select.rules import FMAE_IAT_GRID
from aulib.workspace import RunDir, Workspace
from benchmark_folds import AUS, GROUP, RUNS, write_fold


@pytest.fixture(scope="module")
def three_folds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    ws = Workspace(tmp / "ws", tmp / "ws" / "results")
    for k in (1, 2, 3):
        write_fold(fold_workspace(ws, k), k)
    return ws


@pytest.fixture(scope="module")
def table(three_folds):
    out = write_kfold_summaries(three_folds, 3, "disfa_3fold")
    csv, md = out[f"benchmark_{GROUP}"]
    return pd.read_csv(csv), md.read_text()


def _kit(df):
    return df[df["kind"] == "kit"].set_index(["fold", "model"])


def test_each_rule_on_the_test_fold_beside_the_same_rule_on_b(three_folds, table):
    df, text = table
    kit = _kit(df)
    folds = ["fold1", "fold2", "fold3", "mean"]
    assert list(kit.index) == [(f, m) for f in folds[:3] for m in (*RUNS, BM.ALL_RUNS)] + \
        [("mean", m) for m in (*RUNS, BM.ALL_RUNS)]
    good = kit.xs(RUNS[0], level="model")
    # on the test fold every rule finds epoch 3, which separates H; B's choice (epoch 1) carries nothing on H
    for rule in BM.RULES:
        assert np.allclose(good[f"{rule} on test"], 100), rule
        assert (good[f"{rule} on B"] < 80).all(), rule
        assert (good[f"{rule} owed to test"] > 20).all() and (good[f"{rule} owed to test lo"] > 0).all(), rule
        assert np.allclose(good[f"{rule} owed to test"], good[f"{rule} on test"] - good[f"{rule} on B"])
    # no choice: each run's own last epoch (epoch 3 of run _r), never an average of runs
    assert np.allclose(good[BM.NO_CHOICE], 100)
    assert kit.xs(BM.ALL_RUNS, level="model")[BM.NO_CHOICE].isna().all()
    assert (good["public rule on B lo"] <= good["public rule on B"]).all()
    assert (good["public rule on B"] <= good["public rule on B hi"]).all()
    assert good.loc["mean", "images"] == 3 * 9 * 8 and good.loc["mean", "subjects"] == 27
    assert (kit.xs(RUNS[0], level="model")["candidates"] == 3).all()
    assert (kit.xs(BM.ALL_RUNS, level="model")["candidates"] == 6).all()
    assert np.isclose(good.loc["mean", "public rule on B"], good.loc[folds[:3], "public rule on B"].mean())
    # the paper's rule on B across the candidate runs is 06_choose's chosen model: the k-fold summary's number
    summary = kfold_summary(three_folds, 3, GROUP).set_index("fold")
    assert np.allclose(kit.xs(BM.ALL_RUNS, level="model").loc[folds, "paper's rule on B"], 100 * summary["F1"])
    # the note says what each column chose on, by what, among how many candidates
    assert "one candidate (run, epoch) for every AU, the best mean F1 at threshold 0.5" in text
    assert "K x 99" in text and "per AU the candidate with the best F1 at 0.5" in text
    assert "do not include seed or training variance" in text and "was `optimism`" in text
    # beside the published table, each row with its source and that data set's selection
    pub = df[df["kind"] == "published"].set_index("fold")
    assert pub.loc["ME-GraphAU (ResNet-50)", "published F1"] == 63.1 and pub.loc["MDHR", "published F1"] == 66.2
    assert "100.0 [100.0, 100.0]" in text and "RIGHT camera" in text


def _preds(ws, run, split):
    rd = RunDir(ws.run(run))
    index = pd.read_csv(rd.index(split))
    epochs = sorted(int(p.stem.split("epoch")[1]) for p in rd.preds_dir.glob(f"{split}_epoch*.npy"))
    return index[au_columns(AUS)].to_numpy(), [np.load(rd.preds(split, e)).astype(np.float64) for e in epochs]


def _mean_f1(y, p, thr=0.5):
    known = y >= 0
    return np.mean([f1_score(y[known[:, j], j], p[known[:, j], j] >= thr, zero_division=0)
                    for j in range(y.shape[1])])


def test_public_and_fmae_iat_rules_equal_loops_over_candidates_with_sklearn(three_folds, table):
    """The independent computation: loop over a run's epochs, f1_score at 0.5 per AU on the known rows."""
    kit = _kit(table[0])
    for k in (1, 2, 3):
        fws = fold_workspace(three_folds, k)
        for run in RUNS:
            y_h, p_h = _preds(fws, run, "H")
            y_b, p_b = _preds(fws, run, "B")
            on_h = [_mean_f1(y_h, p) for p in p_h]
            best_b = int(np.argmax([_mean_f1(y_b, p) for p in p_b]))
            row = kit.loc[(f"fold{k}", run)]
            assert row["public rule on test"] == pytest.approx(100 * max(on_h), abs=1e-10)
            assert row["public rule on B"] == pytest.approx(100 * on_h[best_b], abs=1e-10)
            assert row[BM.NO_CHOICE] == pytest.approx(100 * on_h[-1], abs=1e-10)
    fws = fold_workspace(three_folds, 1)                            # FMAE-IAT: epochs x the 99 global thresholds
    y_h, p_h = _preds(fws, RUNS[1], "H")
    best = max(_mean_f1(y_h, p, t) for p in p_h for t in FMAE_IAT_GRID)
    assert kit.loc[("fold1", RUNS[1]), "FMAE-IAT rule on test"] == pytest.approx(100 * best, abs=1e-10)


def test_criterion_is_recorded_and_read_back(three_folds):
    fws = fold_workspace(three_folds, 1)
    assert read_yaml(fws.chosen(GROUP))["choice"]["criterion"] == "f1"
    r = BW.fold_result(fws, GROUP)
    assert r.criterion == "f1" and len(np.unique(r.clusters)) == 9      # subjects, not images
    assert set(r.systems[RUNS[0]]) == set(BM.COLUMNS) - {f"{x} owed to test" for x in BM.RULES}
    assert BM.NO_CHOICE not in r.systems[BM.ALL_RUNS]


def test_the_summary_notebook_writes_what_the_library_writes(three_folds, table, tmp_path):
    """notebooks/09_kfold_summary.ipynb (the step the runner runs after the folds), run on a copy of the
    fold workspaces with the disfa profile (published folds disfa_3fold), writes the same k-fold summary
    and benchmark files, byte for byte, as write_kfold_summaries wrote in the fixture."""
    import shutil

    import papermill

    copy = tmp_path / "ws"
    shutil.copytree(three_folds.root, copy, ignore=lambda d, names: ["results"] if d == str(three_folds.root) else [])
    papermill.execute_notebook(str(P.repo_root() / "notebooks" / "09_kfold_summary.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"profile": "disfa", "workspace": str(copy)}, kernel_name="python3",
                               progress_bar=False, cwd=str(P.repo_root() / "notebooks"))
    want = sorted(p.name for p in three_folds.tables.iterdir())
    assert want == [f"{stem}.{ext}" for stem in (f"benchmark_disfa_{GROUP}", f"kfold_{GROUP}") for ext in ("csv", "md")]
    assert sorted(p.name for p in (copy / "results" / "tables").iterdir()) == want
    for name in want:
        assert (copy / "results" / "tables" / name).read_bytes() == (three_folds.tables / name).read_bytes(), name


def test_benchmark_profiles_choose_by_f1_on_b_as_the_images_are():
    for name in ("bp4d", "disfa", "affwild2"):
        prof = P.load_profile(name)
        assert P.resolve(prof, "06_choose")["criterion"] == "f1", name
        assert P.resolve(prof, "02_split")["b_copies"] == 1, name
    for name in ("demo", "ci", "paper"):                              # EmotioNet's challenge score stays
        assert P.resolve(P.load_profile(name), "06_choose")["criterion"] == "final", name


def test_published_rows_show_where_each_code_chooses():
    for dataset in ("BP4D", "DISFA"):
        pub = published_table(dataset).set_index("method")
        assert pub["selection"].str.startswith("on the test fold").all(), pub["selection"]
        assert "not stated" not in " ".join(pub["selection"])
        assert "MDHR" in pub.index and "CVPR 2024" in pub.loc["MDHR", "source"]
        assert "train_stage2.py" in pub.loc["ME-GraphAU (Swin-B)", "selection"]
    bp4d, disfa = published_table("BP4D").set_index("method"), published_table("DISFA").set_index("method")
    assert "BP4D_part3" in bp4d.loc["JAA-Net", "selection"] and "BP4D" not in disfa.loc["JAA-Net", "selection"]
    assert "DISFA_part3" in disfa.loc["JAA-Net", "selection"]
    note = disfa.loc["FMAE-IAT", "note"]
    assert "RIGHT camera" in note and "130,814" in note and "active AU" not in note
    assert bp4d.loc["FMAE-IAT", "note"] == "" and published_table("Aff-Wild2").empty


def test_missing_test_fold_predictions_are_named(tmp_path):
    ws = Workspace(tmp_path / "ws", tmp_path / "ws" / "results")
    fws = fold_workspace(ws, 2)
    write_fold(fws, 2)
    for run in RUNS:
        for p in RunDir(fws.run(run)).preds_dir.glob("H_epoch*.npy"):
            p.unlink()
        RunDir(fws.run(run)).index("H").unlink()
    with pytest.raises(FileNotFoundError, match="needs every epoch's predictions on H .*heldout: H"):
        BW.fold_result(fws, GROUP)


def test_public_rule_owed_to_test_interval_remakes_the_test_fold_choice_per_resample():
    """Ten candidates of equal skill: the choice on the test fold picks whichever is luckiest there.
    Held fixed, the resamples never see that luck; re-made in every resample they do: each
    resample's best candidate scores at least the fixed choice, often more, and the interval
    of `owed to test` moves up with that selection, holding its point."""
    rng = np.random.default_rng(3)
    n, c, k = 600, 4, 10
    subjects = np.repeat(np.arange(12), n // 12)
    y = (rng.random((n, c)) < 0.3).astype(np.int8)
    def skilled(lab):       # equal skill for every candidate, independent noise
        return 1 / (1 + np.exp(-(1.2 * (2 * lab - 1) + rng.normal(0, 1.5, lab.shape))))
    test = np.stack([skilled(y) for _ in range(k)]).astype(np.float32)
    yb = (rng.random((n, c)) < 0.3).astype(np.int8)
    select = np.stack([skilled(yb) for _ in range(k)]).astype(np.float32)
    inp = BM.FoldInputs((1, 2, 4, 6), y, subjects.astype(str), yb,
                        {"run": BM.ModelPreds(test, select, single_run=True)})
    res = BM.fold_systems(inp)
    row = BM.benchmark_table({"fold1": res}, "BP4D", n_boot=300).iloc[0]
    fixed = res.systems["run"]
    names = ["public rule on test", "public rule on B"]
    point, boot = BM.boot_finals(y, np.stack([fixed[n] for n in names]), res.clusters, 300, 0, metric="f1")
    lo_fixed, hi_fixed = BM._interval(point[0] - point[1], boot[:, 0] - boot[:, 1], 12, (-1, 1))
    lo, hi = row["public rule owed to test lo"] / 100, row["public rule owed to test hi"] / 100
    assert lo <= row["public rule owed to test"] / 100 <= hi
    remade = BM.remade_public_boot(y, test, res.clusters, 300, 0)
    assert (remade >= boot[:, 0] - 1e-12).all() and (remade > boot[:, 0] + 1e-9).mean() > 0.1
    assert lo > lo_fixed
