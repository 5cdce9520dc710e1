"""Per-AU checkpoint and threshold choice: exactness against brute force,
cross-fitting by image, recovery of known peaks, chosen-model files."""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from aulib.io import read_yaml, write_yaml
from aulib.runs import load_run_preds
from aulib.select import choose as ch
from aulib.select.choose import (Candidates, ChosenModel, best_threshold, choose_across_runs, choose_for_workspace,
                                 choose_indices, group_folds, honest_estimate, load_chosen, save_chosen)
from synthetic_runs import write_synthetic_run
from aulib.workspace import Workspace


def _final(y, d):
    return (accuracy_score(y, d) + f1_score(y, d, zero_division=0)) / 2


def _brute(labels, probs_nc):
    """Best per-AU final score over every candidate threshold, by a plain loop."""
    out = []
    for c in range(labels.shape[1]):
        k = labels[:, c] >= 0
        if not k.any():
            out.append(np.nan)
            continue
        y, p = labels[k, c], probs_nc[k, c].astype(np.float64)
        cands = list(np.unique(p)) + [np.inf]  # every distinct value as ">= v", and nothing positive
        out.append(max(_final(y, (p >= t).astype(int)) for t in cands))
    return np.array(out)


def _random_case(rng, ties):
    e, n, c = rng.integers(1, 4), rng.integers(1, 25), rng.integers(1, 4)
    labels = rng.choice([-1, 0, 1], size=(n, c), p=[0.2, 0.5, 0.3]).astype(np.int8)
    probs = (rng.integers(0, 5, size=(e, n, c)) / 4.0 if ties else rng.random((e, n, c))).astype(np.float32)
    return labels, probs


@pytest.mark.parametrize("ties", [False, True])
def test_best_threshold_equals_brute_force(ties):
    rng = np.random.default_rng(7 + ties)
    for _ in range(30):
        labels, probs = _random_case(rng, ties)
        thr, score = best_threshold(labels, probs)
        assert thr.shape == score.shape == (probs.shape[0], labels.shape[1])
        for e in range(probs.shape[0]):
            np.testing.assert_allclose(score[e], _brute(labels, probs[e]), atol=1e-12)
            for c in range(labels.shape[1]):  # the returned threshold reaches the returned score
                k = labels[:, c] >= 0
                if k.any():
                    d = (probs[e, k, c].astype(np.float64) >= thr[e, c]).astype(int)
                    assert _final(labels[k, c], d) == pytest.approx(score[e, c], abs=1e-12)


def test_best_threshold_handles_ties_extremes_and_chunks():
    labels = np.array([[1], [1], [0], [0], [-1]], np.int8)
    probs = np.array([[[0.7], [0.3], [0.3], [0.1], [0.9]]], np.float32)  # 0.3 tie across classes
    thr, score = best_threshold(labels, probs)
    # best: 0.7 and both 0.3s positive (acc 3/4, F1 4/5); the tied 0.3s are never split
    assert 0.1 < thr[0, 0] <= 0.3 and score[0, 0] == pytest.approx((0.75 + 0.8) / 2)
    # perfect ranking with probabilities 1.0 and 0.0: a threshold inside (0, 1]
    thr, score = best_threshold(np.array([[1], [0]]), np.array([[1.0], [0.0]], np.float32))
    assert score[0] == 1.0 and 0 < thr[0] <= 1
    # all-negative is best when the model ranks positives last; threshold above the top value 1.0
    thr, score = best_threshold(np.array([[0]] * 9 + [[1]]), np.array([[1.0]] * 9 + [[0.0]], np.float32))
    assert thr[0] > 1.0 and score[0] == pytest.approx(0.45)
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, 0, 1], size=(50, 3)).astype(np.int8)
    probs = rng.random((7, 50, 3)).astype(np.float32)
    whole = best_threshold(labels, probs)
    tiny = best_threshold(labels, probs, chunk_bytes=1)
    np.testing.assert_array_equal(whole[0], tiny[0])
    np.testing.assert_array_equal(whole[1], tiny[1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        best_threshold(labels, probs + 1)


@pytest.mark.parametrize("criterion", ["final", "f1"])
def test_best_threshold_by_counting_float16_equals_sorting(criterion, monkeypatch):
    """float16 probabilities (as training writes them) are searched by counting per distinct value: the
    thresholds and scores equal the sorting search's on the same values bit for bit (ties, unknown labels,
    an AU without labels, -0.0, chunks); with more distinct values than rows the sort is used."""
    from aulib.select import threshold

    counted = []
    real = threshold._best_cut_by_value
    monkeypatch.setattr(threshold, "_best_cut_by_value", lambda *a: counted.append(r := real(*a)) or r)
    rng = np.random.default_rng(5)
    for it in range(120):
        e, n, c = rng.integers(1, 5), rng.integers(1, 80), rng.integers(1, 5)
        labels = rng.choice([-1, 0, 1], size=(n, c)).astype(np.int8)
        if it % 7 == 0:
            labels[:, 0] = -1
        levels = rng.integers(1, 12)
        probs = (rng.integers(0, levels + 1, (e, n, c)) / levels if it % 2 else rng.random((e, n, c))).astype(np.float16)
        if it % 4 == 0:
            probs[0, 0] = -0.0
        for chunk in (256 << 20, 1):
            by_sort = best_threshold(labels, probs.astype(np.float32), chunk_bytes=chunk, criterion=criterion)
            by_count = best_threshold(labels, probs, chunk_bytes=chunk, criterion=criterion)
            for a, b in zip(by_sort, by_count):
                np.testing.assert_array_equal(a, b)
    assert sum(r is not None for r in counted) > 100 and any(r is None for r in counted)


def test_strategies_equal_brute_force_over_epochs_and_thresholds():
    rng = np.random.default_rng(11)
    for _ in range(15):
        labels, probs = _random_case(rng, ties=bool(rng.integers(2)))
        e, _, c = probs.shape
        at_half = np.array([[_final(labels[labels[:, j] >= 0, j], (probs[k, labels[:, j] >= 0, j] >= 0.5).astype(int))
                             if (labels[:, j] >= 0).any() else -np.inf for j in range(c)] for k in range(e)])
        best_thr = np.array([_brute(labels, probs[k]) for k in range(e)])
        best_thr = np.where(np.isnan(best_thr), -np.inf, best_thr)
        idx, thr, score = choose_indices(labels, probs, "joint")
        known = (labels >= 0).any(0)
        np.testing.assert_allclose(score[known], best_thr.max(0)[known], atol=1e-12)
        idx, thr, score = choose_indices(labels, probs, "chosen")
        np.testing.assert_allclose(score[known], at_half.max(0)[known], atol=1e-12)
        assert (thr == 0.5).all()
        idx_t, thr_t, score_t = choose_indices(labels, probs, "threshold")
        assert (idx_t == idx).all()  # the paper's order: checkpoint first, then threshold
        np.testing.assert_allclose(score_t[known], best_thr[idx, np.arange(c)][known], atol=1e-12)
        idx_b, thr_b, _ = choose_indices(labels, probs, "baseline")
        assert len(set(idx_b)) == 1 and (thr_b == 0.5).all()


def test_group_folds_keep_images_together():
    images = np.repeat([f"img{i}" for i in range(23)], 4)
    fold = group_folds(images, 5, seed=3)
    for img in np.unique(images):
        assert len(set(fold[images == img])) == 1
    counts = np.bincount(fold)
    assert len(counts) == 5 and counts.max() - counts.min() <= 4
    with pytest.warns(UserWarning, match="using 23 folds instead of 50"):   # a B of few subjects: one fold each
        assert len(set(group_folds(images, 50))) == 23
    with pytest.raises(ValueError, match="folds"):
        group_folds(images, 1)


def test_cross_fitting_never_chooses_on_the_scored_rows(monkeypatch, tmp_path):
    rp = load_run_preds(write_synthetic_run(tmp_path / "r", epochs=4, n_images=30, heldout=None), "B")
    cands = Candidates.from_runs([rp])
    seen = []
    real = ch.choose_indices

    def spy(labels, probs, strategy, *criterion):
        seen.append(probs.shape[1])
        return real(labels, probs, strategy, *criterion)

    monkeypatch.setattr(ch, "choose_indices", spy)
    fold = group_folds(cands.groups(), 3)
    out = ch.cross_fitted_decisions(cands.labels, cands.probs, "threshold", fold)
    assert out.shape == cands.labels.shape
    assert sorted(seen) == sorted(int((fold != f).sum()) for f in range(3))
    # the decisions of fold f depend only on the other folds: changing fold 0's
    # probabilities changes no decision outside fold 0
    probs2 = cands.probs.copy()
    probs2[:, fold == 0] = np.random.default_rng(0).random(probs2[:, fold == 0].shape)
    out2 = ch.cross_fitted_decisions(cands.labels, probs2, "threshold", fold)
    assert (out2[fold == 0] != out[fold == 0]).any()


def test_choice_recovers_known_peak_epochs(tmp_path):
    peaks = np.array([1, 3, 5, 7, 9, 10, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 2])
    run = write_synthetic_run(tmp_path / "r", "17au", peaks=peaks, epochs=10, n_images=150, seed=4)
    rp = load_run_preds(run, "B")
    chosen = choose_across_runs([rp], "chosen")
    np.testing.assert_array_equal(chosen.epoch, peaks)
    assert chosen.run == ["r"] * 17


def test_honest_estimate_table(tmp_path):
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_synthetic_run(ws.run("a"), epochs=6, n_images=60, seed=1)
    write_synthetic_run(ws.run("b"), epochs=4, n_images=60, seed=2)
    report, chosen = choose_for_workspace(ws, "17au", folds=3)
    t = report.table
    assert list(t.index) == list(ch.STRATEGIES)
    assert list(t.columns) == ["optimistic", "cross_fitted", "heldout",
                               "gain_optimistic", "gain_cross_fitted", "gain_heldout"]
    assert t.notna().all().all() and (t.loc["baseline", ["gain_optimistic", "gain_heldout"]] == 0).all()
    np.testing.assert_allclose(t["gain_heldout"], t["heldout"] - t.loc["baseline", "heldout"])
    # the optimistic score of a strategy is the mean of its per-AU selection scores
    assert t.loc["joint", "optimistic"] == pytest.approx(report.choices["joint"].score.mean())
    assert report.heldout_split == "test" and report.select_split == "B"
    assert set(p["run"] for p in chosen.per_au) <= {"a", "b"}
    assert set(chosen.runs) == set(p["run"] for p in chosen.per_au)
    # without a held-out split the column stays empty
    rep2 = honest_estimate(Candidates.from_runs([load_run_preds(ws.run("a"), "B")]), None,
                           strategies=["chosen"], folds=3)
    assert list(rep2.table.index) == ["baseline", "chosen"] and rep2.table["heldout"].isna().all()


def test_heldout_is_needed_only_at_the_picked_candidates(tmp_path):
    """Training no longer scores the held-out split every epoch: the choice is
    made over every candidate on B, then only the picked (run, epoch) need
    held-out predictions (the old code dropped the others from the choice)."""
    import pandas as pd

    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    peaks = np.where(np.arange(17) % 2, 2, 3)
    write_synthetic_run(ws.run("a"), peaks=peaks, epochs=8, n_images=60, seed=1)
    full, _ = choose_for_workspace(ws, "17au", folds=3)
    picked = {e for c in full.choices.values() for e in c.epoch.tolist()}
    unpicked = sorted(set(range(1, 9)) - picked)
    assert unpicked
    for e in unpicked:
        (ws.run("a") / "preds" / f"test_epoch{e:03d}.npy").unlink()
    lazy, _ = choose_for_workspace(ws, "17au", folds=3)
    pd.testing.assert_frame_equal(lazy.table, full.table)
    assert not lazy.notes and np.isfinite(lazy.table["heldout"]).all()


def test_heldout_files_are_read_and_a_missing_one_names_the_inference_call(tmp_path):
    """The choice reads held-out files only: predictions_needed lists the (run, epoch) every strategy
    picks; a picked file missing beside its checkpoint is an error naming the file and the inference
    call (the choice no longer predicts from checkpoints itself); with the checkpoint pruned too,
    the held-out estimate is skipped with a note, as before."""
    from aulib.select.choose import predictions_needed
    from aulib.select.stored import MissingPredictions

    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_synthetic_run(ws.run("a"), peaks=np.where(np.arange(17) % 2, 2, 3), epochs=8, n_images=60, seed=1)
    full, _ = choose_for_workspace(ws, "17au", folds=3)
    picked = sorted({int(e) for c in full.choices.values() for e in c.epoch.tolist()})
    needed = predictions_needed(ws, "17au")
    assert [(r.run_dir.name, r.split, list(r.epochs), r.multicrop) for r in needed] == [("a", "test", picked, False)]
    gone = ws.run("a") / "preds" / f"test_epoch{picked[0]:03d}.npy"
    gone.unlink()
    ckpt = ws.run("a") / "checkpoints" / f"epoch{picked[0]:03d}.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    with pytest.raises(MissingPredictions, match=rf"{gone.name} not found.*predict_needed"):
        choose_for_workspace(ws, "17au", folds=3)
    ckpt.unlink()
    report, _ = choose_for_workspace(ws, "17au", folds=3)
    assert report.table["heldout"].isna().all() and "no checkpoint to predict them" in " ".join(report.notes)


def test_candidates_refuse_runs_on_different_rows(tmp_path):
    a = load_run_preds(write_synthetic_run(tmp_path / "a", epochs=2, n_images=10, heldout=None), "B")
    b = load_run_preds(write_synthetic_run(tmp_path / "b", epochs=2, n_images=11, heldout=None), "B")
    with pytest.raises(ValueError, match="different rows"):
        Candidates.from_runs([a, b])


def _chosen_workspace(tmp_path):
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    rp = load_run_preds(write_synthetic_run(ws.run("r"), "6au", epochs=3, n_images=20, heldout=None), "B")
    choice = choose_across_runs([rp], "threshold")
    for e in set(choice.epoch.tolist()):
        (ws.run("r") / "checkpoints").mkdir(exist_ok=True)
        (ws.run("r") / "checkpoints" / f"epoch{e:03d}.pt").write_bytes(b"")
    return ws, ChosenModel.from_choice(choice, "6au", ws.root, [rp])


def test_chosen_yaml_round_trip(tmp_path):
    ws, model = _chosen_workspace(tmp_path)
    save_chosen(ws.chosen("6au"), model)
    back = load_chosen(ws.chosen("6au"))
    assert back == model
    assert back.runs["r"]["dir"] == "train/r" and back.runs["r"]["crop_style"] == "box1.5"
    raw = read_yaml(ws.chosen("6au"))
    assert raw["aus"] == [51, 52, 53, 54, 55, 56] and raw["ensemble"] is None
    np.testing.assert_array_equal(back.thresholds, [p["threshold"] for p in model.per_au])


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(aus=[51, 52]), "do not match group 6au"),
    (lambda d: d["per_au"].pop(2), "no entry for AUs \\[53\\]"),
    (lambda d: d["per_au"][0].update(run="ghost"), "AU 51 uses run 'ghost'"),
    (lambda d: d["per_au"][1].update(epoch=0), "AU 52: epoch must be an integer >= 1"),
    (lambda d: d["per_au"][1].update(threshold=".5"), "AU 52: threshold must be a finite number"),
    (lambda d: d["per_au"].append(dict(d["per_au"][0])), "AU 51 appears twice"),
    (lambda d: d.update(group="7au", aus=[51, 99]), "group '7au': .*AU 99 is not in the kit's FACS catalog"),
    (lambda d: d["per_au"][0].update(epoch=99), "AU 51: checkpoint .*epoch099.pt not found"),
    (lambda d: d["runs"]["r"].update(dir="train/elsewhere"), "run 'r': .*config.yaml not found"),
    (lambda d: d.update(ensemble={"runs": ["r"], "coef": [[1.0]], "intercept": [0.0]}), "6 AUs|one per AU"),
])
def test_bad_chosen_file_errors(tmp_path, edit, message):
    ws, model = _chosen_workspace(tmp_path)
    d = model.to_dict()
    edit(d)
    write_yaml(ws.chosen("6au"), d)
    with pytest.raises(ValueError, match=message):
        load_chosen(ws.chosen("6au"))
    with pytest.raises(FileNotFoundError, match="06_choose"):
        load_chosen(ws.chosen("17au"))


def test_convergence_table_and_figure(tmp_path):
    from aulib.report.figure2 import convergence_table, plot_convergence
    from aulib.runs import read_log

    peaks = np.array([2, 6, 4, 1, 5, 3])
    run = write_synthetic_run(tmp_path / "r", "6au", peaks=peaks, epochs=6, n_images=120, heldout=None)
    rp = load_run_preds(run, "B")
    t = convergence_table(rp)
    assert t.index.tolist() == [f"AU{a}" for a in rp.aus] + ["mean"]
    np.testing.assert_array_equal(t["best_epoch"].iloc[:-1], peaks)
    chosen = choose_across_runs([rp], "chosen")
    np.testing.assert_allclose(t["best_score"].iloc[:-1], chosen.score)
    assert (t["gain"] >= 0).all() and t.loc["mean", "gain"] > 0
    baseline = choose_across_runs([rp], "baseline")
    assert t.loc["mean", "avg_epoch"] == baseline.epoch[0]
    # the log's per-AU columns give the same table as the predictions
    from_log = convergence_table(read_log(run))
    np.testing.assert_allclose(from_log.to_numpy(float), t.to_numpy(float))
    fig = plot_convergence(rp, out_path=tmp_path / "fig" / "f2.png")
    assert (tmp_path / "fig" / "f2.png").read_bytes()[:4] == b"\x89PNG"
    stars = [ln for ln in fig.axes[0].lines if ln.get_marker() == "*"]
    assert len(stars) == len(rp.aus) + 1  # one per AU and one for the average
    with pytest.raises(ValueError, match="AU99"):
        plot_convergence(rp, aus_to_show=[99])


@pytest.mark.slow
def test_notebooks_05_and_06_run_on_synthetic_runs(tmp_path):
    import papermill

    from aulib.workspace import repo_root

    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_synthetic_run(ws.run("a"), "6au", epochs=5, n_images=40, seed=1)
    write_synthetic_run(ws.run("b"), "6au", epochs=3, n_images=40, seed=2)
    nb_dir = repo_root() / "notebooks"
    params = {"profile": "ci", "workspace": str(ws.root), "group": "6au"}
    for nb in ("05_convergence", "06_choose"):
        papermill.execute_notebook(str(nb_dir / f"{nb}.ipynb"), str(tmp_path / f"{nb}.ipynb"), parameters=params,
                                   kernel_name="python3", cwd=str(nb_dir), progress_bar=False)
    assert (ws.figures / "figure2_convergence_6au.png").exists()
    assert (ws.figures / "figure2_convergence_a.png").exists()
    model = load_chosen(ws.chosen("6au"), check_files=False)
    assert model.aus == [51, 52, 53, 54, 55, 56]
    import pandas as pd

    table = pd.read_csv(ws.tables / "choice_6au.csv")
    assert table["strategy"].tolist()[0] == "baseline" and "heldout" in table.columns


def test_load_candidates_reads_runs_into_one_float16_stack(tmp_path):
    """The choice's memory is K x N x C x 2 bytes: the files are read into one
    float16 stack (their own dtype), each run a view of it, no float32 copy and
    no concatenation; the choice is the same as from float32 copies."""
    a = write_synthetic_run(tmp_path / "a", epochs=5, n_images=40, heldout=None, seed=1)
    b = write_synthetic_run(tmp_path / "b", epochs=3, n_images=40, heldout=None, seed=2)
    runs, cands = ch.load_candidates([a, b], "B")
    assert cands.probs.dtype == np.float16 and cands.probs.shape[0] == 8
    assert all(np.shares_memory(r.probs, cands.probs) for r in runs)
    old = Candidates.from_runs([load_run_preds(a, "B"), load_run_preds(b, "B")])
    assert np.array_equal(cands.probs, old.probs)
    for strategy in ("chosen", "threshold", "joint"):
        new_choice, old_choice = ch.choose(cands, strategy), ch.choose(old, strategy)
        assert new_choice.run == old_choice.run and np.array_equal(new_choice.epoch, old_choice.epoch)
        assert np.array_equal(new_choice.threshold, old_choice.threshold)
        assert np.allclose(new_choice.score, old_choice.score, equal_nan=True)


def test_choice_table_gives_each_gain_its_paired_bootstrap_interval(tmp_path):
    """Notebook 06's gains over the baseline carry 95 % paired cluster-bootstrap intervals
    (aulib.report.bootstrap over the decisions 06 scores), and its figure draws them."""
    from aulib.report import gains
    from aulib.report.bootstrap import paired_gains
    from aulib.select.folds import cluster_ids

    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_synthetic_run(ws.run("a"), epochs=6, n_images=60, seed=1)
    write_synthetic_run(ws.run("b"), epochs=4, n_images=60, seed=2)
    report, _ = choose_for_workspace(ws, "17au", folds=3)
    table = gains.choice_table(report, n_boot=300)
    for est in ch.HONEST_ESTIMATES:
        cols = [f"gain_{est}", f"gain_{est}_lo", f"gain_{est}_hi"]
        assert table.columns.get_loc(cols[1]) == table.columns.get_loc(cols[0]) + 1
        others = table.drop(index="baseline")
        assert others[cols].notna().all().all() and (others[cols[1]] <= others[cols[2]]).all()
        assert table.loc["baseline", cols[1:]].isna().all()
    # the interval of 'chosen' held out is the paired bootstrap of its decisions against the baseline's
    lab, index, _ = report.decisions["heldout"]
    held = Candidates.from_runs([load_run_preds(ws.run(r), "test") for r in ("a", "b")])
    decs = np.stack([report.choices[s].decisions(held.subset([k for k in held.keys]))
                     for s in ("chosen", "baseline")])
    want = paired_gains(lab, decs, cluster_ids(index), [(0, 1)], 300, 0).iloc[0]
    assert table.loc["chosen", ["gain_heldout_lo", "gain_heldout_hi"]].tolist() == pytest.approx([want.lo, want.hi])
    assert table.loc["chosen", "gain_heldout"] == pytest.approx(want.gain)
    # the figure draws every interval: one bar per (strategy, estimate) besides the markers
    long = gains.choice_gains(table.reset_index(), "17au")
    assert long[["lo", "hi"]].notna().all().all()
    fig = gains.plot_forest(long)
    bars = [ln for ln in fig.axes[0].lines if len(ln.get_xdata()) == 2 and ln.get_marker() in ("None", "", None)
            and ln.get_ydata()[0] == ln.get_ydata()[1]]                 # horizontal: not the zero line
    assert len(bars) == len(long)
    assert fig.axes[0].get_title(loc="left") == "Checkpoint choice · 17au (notebook 06)"
