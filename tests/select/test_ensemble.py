"""Linear ensemble: shapes, round trip, fitting, out-of-fold property."""
import numpy as np
import pytest

from aulib.select.ensemble import LinearEnsemble, fit_linear_ensemble, fit_logistic
from aulib.select.folds import group_folds


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _synthetic(n=3000, c=4, r=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(r, n, c))
    coef = rng.normal(size=(c, r)) * 1.5
    intercept = rng.normal(size=c) * 0.5
    y = (rng.random((n, c)) < _sigmoid(np.einsum("rnc,cr->nc", x, coef) + intercept)).astype(np.int8)
    return [_sigmoid(x[i]) for i in range(r)], y, coef, intercept


def test_shapes_and_round_trip():
    probs, y, _, _ = _synthetic(n=400, c=5, r=2)
    ens, oof = fit_linear_ensemble(probs, y, groups=np.arange(400) // 4, folds=4, aus=[1, 2, 4, 5, 6],
                                   runs=["ra", "rb"])
    assert oof.shape == (400, 5) and oof.dtype == np.float32
    assert ens.coef.shape == (5, 2) and ens.intercept.shape == (5,)
    assert ens.runs == ("ra", "rb") and ens.aus == (1, 2, 4, 5, 6)
    pred = ens.predict(probs)
    assert pred.shape == (400, 5) and np.all((pred > 0) & (pred < 1))
    d = ens.to_dict()
    assert isinstance(d["coef"][0][0], float) and len(d["coef"]) == 5 and len(d["intercept"]) == 5
    back = LinearEnsemble.from_dict(d)
    np.testing.assert_allclose(back.predict(probs), pred)
    with pytest.raises(ValueError, match="runs"):
        ens.predict(probs[:1])


def test_recovers_known_linear_combination():
    probs, y, coef, intercept = _synthetic(n=20000, c=3, r=3, seed=1)
    ens, _ = fit_linear_ensemble(probs, y, folds=2, C=1e6)
    np.testing.assert_allclose(ens.coef, coef, atol=0.15)
    np.testing.assert_allclose(ens.intercept, intercept, atol=0.15)


def test_matches_scikit_learn_with_unknown_labels():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 3))
    y = (rng.random(500) < _sigmoid(x @ [1.0, -2.0, 0.5] + 0.3)).astype(float)
    known = rng.random(500) > 0.2
    w, b = fit_logistic(x[None], y[None], known[None].astype(float), C=0.5)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=1000).fit(x[known], y[known])
    np.testing.assert_allclose(w[0], ref.coef_[0], atol=1e-5)
    np.testing.assert_allclose(b[0], ref.intercept_[0], atol=1e-5)


def test_out_of_fold_rows_never_see_their_own_labels():
    probs, y, _, _ = _synthetic(n=800, c=3, r=2, seed=3)
    groups = np.arange(800) // 4
    _, oof = fit_linear_ensemble(probs, y, groups=groups, folds=5)
    fold = group_folds(groups, 5, 0)
    changed = y.copy()
    changed[fold == 0] = 1 - changed[fold == 0]          # scramble fold 0's labels only
    _, oof2 = fit_linear_ensemble(probs, changed, groups=groups, folds=5)
    np.testing.assert_array_equal(oof[fold == 0], oof2[fold == 0])   # fold 0 never trained on itself
    assert np.abs(oof[fold != 0] - oof2[fold != 0]).max() > 1e-3      # the others did see fold 0


def test_leak_detector_sign_flip_between_folds():
    # the label follows the feature in fold 0 and its opposite in fold 1: an
    # out-of-fold model must be wrong on almost every row, a leaking one would not be
    rng = np.random.default_rng(4)
    n = 2000
    groups = np.arange(n) // 2
    fold = group_folds(groups, 2, 0)
    x = rng.normal(size=n) * 3
    y = ((x > 0) == (fold == 0)).astype(np.int8)[:, None]
    _, oof = fit_linear_ensemble([_sigmoid(x)[:, None]], y, groups=groups, folds=2)
    acc = ((oof[:, 0] >= 0.5) == (y[:, 0] == 1)).mean()
    assert acc < 0.1


def test_folds_keep_images_together():
    groups = np.repeat(np.arange(50), 4)
    fold = group_folds(groups, 5, 0)
    assert all(len(set(fold[groups == g])) == 1 for g in range(50))
    assert sorted(np.bincount(fold)) == [40] * 5


def test_rare_au_falls_back_to_mean_of_runs():
    probs, y, _, _ = _synthetic(n=400, c=2, r=2, seed=5)
    y[:, 1] = 0
    y[:3, 1] = 1
    with pytest.warns(UserWarning, match=r"AUs \[7\]"):
        ens, oof = fit_linear_ensemble(probs, y, folds=4, aus=[6, 7])
    assert ens.fallback == (7,)
    np.testing.assert_allclose(ens.coef[1], [0.5, 0.5])
    assert ens.intercept[1] == 0
    logit = [np.log(p[:, 1]) - np.log1p(-p[:, 1]) for p in probs]
    np.testing.assert_allclose(oof[:, 1], _sigmoid((logit[0] + logit[1]) / 2), rtol=1e-4)


def test_fit_weights_follow_the_members_balancing_rule():
    from aulib.select.ensemble import fit_weights

    # AU 0: 2 positives, 8 negatives: 0.2 * 8 = 1.6 < 2, so no balancing; AU 1: 1 positive, 8 negatives,
    # 1 unknown: 0.2 * 8 > 1, negatives weigh 0.2; the last row is outside the fitting rows
    labels = np.array([[1, 1]] + [[1, 0]] + [[0, 0]] * 7 + [[0, -1]] + [[1, 1]], np.int8)
    rows = np.r_[np.ones(10, bool), False]
    w = fit_weights(labels, rows, 0.2)
    np.testing.assert_array_equal(w[:, 0], np.r_[np.ones(10), 0])
    np.testing.assert_allclose(w[:, 1], np.r_[1.0, [0.2] * 8, 0, 0])
    np.testing.assert_array_equal(fit_weights(labels, rows, None), ((labels >= 0) & rows[:, None]).astype(float))


def test_balanced_fit_is_weighted_logistic_regression():
    """neg_weight=alpha is scikit-learn's LogisticRegression with sample_weight alpha on the negatives."""
    from sklearn.linear_model import LogisticRegression

    probs, y, _, _ = _synthetic(n=600, c=2, r=2, seed=5)
    z0 = np.log(probs[0][:, 1] / (1 - probs[0][:, 1]))
    y[:, 1] = z0 + np.random.default_rng(0).normal(0, 0.7, 600) > 1.6                      # rare AU: balanced
    ens, _ = fit_linear_ensemble(probs, y, folds=2, neg_weight=0.2)
    assert ens.neg_weight == 0.2 and LinearEnsemble.from_dict(ens.to_dict()).neg_weight == 0.2
    x = np.stack([np.log(p[:, 1] / (1 - p[:, 1])) for p in np.clip(probs, 1e-4, 1 - 1e-4)], 1)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y[:, 1], sample_weight=np.where(y[:, 1], 1, 0.2))
    np.testing.assert_allclose(ens.coef[1], ref.coef_[0], atol=1e-5)
    np.testing.assert_allclose(ens.intercept[1], ref.intercept_[0], atol=1e-5)
    plain, _ = fit_linear_ensemble(probs, y, folds=2)
    # weighting the negatives down predicts more positives at 0.5, as the balanced members do
    assert (ens.predict(probs)[:, 1] >= 0.5).sum() > (plain.predict(probs)[:, 1] >= 0.5).sum()


def test_members_neg_weight_reads_the_training_rule():
    from aulib.select.ensemble import members_neg_weight

    assert members_neg_weight([{"alpha": 0.2}, {"alpha": 0.2, "ablate": []}]) == 0.2
    assert members_neg_weight([{"ablate": ["balance"]}, {"ablate": ["balance", "mv"]}]) is None
    with pytest.raises(ValueError, match="different batch balancing"):
        members_neg_weight([{"alpha": 0.2}, {"ablate": ["balance"]}])


def _epoch_runs(seed=0, n=400, c=5, epochs=(4, 3)):
    """Members whose AUs peak at different epochs: (E_r, N, C) probabilities and labels."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < np.linspace(0.1, 0.4, c)).astype(np.int8)
    y[rng.random((n, c)) < 0.05] = -1
    runs = []
    for r, e_count in enumerate(epochs):
        peak = rng.integers(0, e_count, c)
        strength = 2.0 - 0.7 * np.abs(np.arange(e_count)[:, None] - peak[None, :])           # (E, C)
        z = strength[:, None, :] * (2 * y[None] - 1) + rng.normal(size=(e_count, n, c)) * 1.5
        runs.append(_sigmoid(z).astype(np.float32))
    return runs, y


def test_chosen_ensemble_cannot_lose_in_sample_and_keeps_the_unchosen_on_ties():
    from aulib.metrics import au_scores, decide
    from aulib.select.ensemble import choose_ensemble_epochs

    runs, y = _epoch_runs()
    first = np.array([1, 2])
    idx, coef, intercept, fb = choose_ensemble_epochs(runs, y, first, neg_weight=0.2)
    assert idx.shape == (5, 2) and coef.shape == (5, 2) and not fb.any()
    chosen = LinearEnsemble(coef, intercept).predict([r[idx[:, i], :, np.arange(5)].T for i, r in enumerate(runs)])
    plain, _ = fit_linear_ensemble([r[f] for r, f in zip(runs, first)], y, folds=2, neg_weight=0.2)
    ours = au_scores(y, decide(chosen))["final"].to_numpy()
    unchosen = au_scores(y, decide(plain.predict([r[f] for r, f in zip(runs, first)])))["final"].to_numpy()
    assert (ours >= unchosen - 1e-12).all() and (ours > unchosen).any()
    # per AU it is the best of every pair of epochs, each refitted
    for c in range(5):
        for e0 in range(4):
            for e1 in range(3):
                ens, _ = fit_linear_ensemble([runs[0][e0][:, [c]], runs[1][e1][:, [c]]], y[:, [c]], folds=2,
                                             neg_weight=0.2)
                p = ens.predict([runs[0][e0][:, [c]], runs[1][e1][:, [c]]])
                assert au_scores(y[:, [c]], decide(p))["final"].iloc[0] <= ours[c] + 1e-12
    # identical epochs everywhere: every candidate ties, the unchosen combination is kept
    flat = [np.repeat(r[:1], len(r), 0) for r in runs]
    idx, *_ = choose_ensemble_epochs(flat, y, first)
    np.testing.assert_array_equal(idx, np.tile(first, (5, 1)))
    # top_k keeps each member's k best epochs per AU, the unchosen one always among them
    idx_k, *_ = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, top_k=2)
    assert idx_k.shape == (5, 2)


def test_exhaustive_search_is_chunked_over_combinations_and_ascent_never_loses_to_the_unchosen():
    """The exhaustive search gives the same choice whatever chunk_bytes (chunks of combinations,
    not only of AUs), and its memory follows chunk_bytes; coordinate ascent starts from the
    unchosen combination and moves only on a strict gain, so per AU it is never below it, and
    it needs fewer refits than the product of the members' candidates (toy sizes: ~5 s)."""
    import tracemalloc
    from unittest import mock

    from aulib.metrics import au_scores, decide
    from aulib.select import ensemble
    from aulib.select.ensemble import choose_ensemble_epochs

    runs, y = _epoch_runs(seed=3, n=300, c=3, epochs=(4, 3, 3))
    first = np.array([3, 2, 2])
    big = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, search="exhaustive")
    peaks = {}
    for chunk in (1, 256 << 20):
        tracemalloc.start()
        got = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, search="exhaustive", chunk_bytes=chunk)
        peaks[chunk] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_array_equal(got[0], big[0])
        np.testing.assert_allclose(got[1], big[1], atol=1e-9)
    # one refit at a time (chunk_bytes=1) holds a small fraction of all 36 combinations x 3 AUs at once
    assert peaks[1] < peaks[256 << 20] / 10

    def final_of(idx, coef, intercept):
        probs = LinearEnsemble(coef, intercept).predict([r[idx[:, i], :, np.arange(3)].T for i, r in enumerate(runs)])
        return au_scores(y, decide(probs))["final"].to_numpy()

    fits = []
    real = ensemble._ComboScorer.__call__
    with mock.patch.object(ensemble._ComboScorer, "__call__",
                           lambda self, au, ep, start=None: fits.append(len(au)) or real(self, au, ep, start)):
        asc = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, search="ascent")
    unchosen = choose_ensemble_epochs([r[f:f + 1] for r, f in zip(runs, first)], y, np.zeros(3, int), neg_weight=0.2)
    assert (final_of(*asc[:3]) >= final_of(*[unchosen[0] + first, *unchosen[1:3]]) - 1e-12).all()
    assert (final_of(*big[:3]) >= final_of(*asc[:3]) - 1e-12).all()       # exhaustive is the optimum
    assert sum(fits) < 3 * 36 * 0.8                                        # vs 36 combinations x 3 AUs
    # auto: the exhaustive search only under its budget of row-fits (36 combinations x 300 rows)
    np.testing.assert_array_equal(choose_ensemble_epochs(runs, y, first, neg_weight=0.2)[0], big[0])
    np.testing.assert_array_equal(choose_ensemble_epochs(runs, y, first, neg_weight=0.2, budget=36 * 300 - 1)[0],
                                  asc[0])
    with pytest.raises(ValueError, match="search must be one of"):
        choose_ensemble_epochs(runs, y, first, search="greedy")


def test_screened_search_refits_the_best_exactly_and_runs_only_above_its_row_threshold():
    """Above ``screen_above`` rows the search screens combinations on a weighted sample of the rows and
    refits only the unchosen and the few best exactly on every row: where one epoch of each member is
    clearly best it makes the full search's choice with the full fit's weights; at or below the
    threshold no sample is drawn. The sample keeps a rare AU's positives (toy sizes: ~5 s)."""
    from unittest import mock

    from aulib.select import ensemble
    from aulib.select.ensemble import choose_ensemble_epochs, screen_rows

    runs, y = _epoch_runs(seed=5, n=3000, c=3, epochs=(5, 4))
    first = np.array([4, 3])
    full = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, screen_above=None)
    draws = []
    real = ensemble.screen_rows
    with mock.patch.object(ensemble, "screen_rows", lambda *a, **k: draws.append(a) or real(*a, **k)):
        for search in ("exhaustive", "ascent"):
            ref = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, screen_above=None, search=search)
            got = choose_ensemble_epochs(runs, y, first, neg_weight=0.2, screen_above=2999, screen_sample=600,
                                         search=search)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_allclose(got[1], ref[1], atol=1e-6)           # refitted on all 3,000 rows
            np.testing.assert_allclose(got[2], ref[2], atol=1e-6)
        assert len(draws) == 2 and draws[0][1] == 600
        np.testing.assert_array_equal(choose_ensemble_epochs(runs, y, first, neg_weight=0.2)[0], full[0])
        choose_ensemble_epochs(runs, y, first, neg_weight=0.2, screen_above=3000, screen_sample=600)
        assert len(draws) == 2                                                # n = threshold: no sample
    # the peaks are clear: the choice is each member's peak epoch on every AU (not the unchosen one)
    assert (full[0] != first).any()
    # a rare AU keeps all its positives, and weighted counts stand for every row
    labels = np.zeros((20_000, 2), np.int8)
    labels[::400, 0] = 1                                                       # 50 positives
    labels[::4, 1] = 1
    rows, w = screen_rows(labels, 2_000, seed=1, min_pos=100)
    assert labels[rows, 0].sum() == 50 and np.allclose(w[labels[rows, 0] == 1], 1.0)
    assert 1_800 < len(rows) < 2_300 and abs(w.sum() - 20_000) < 1_500
    assert abs(w @ labels[rows, 1] - 5_000) < 700
    np.testing.assert_array_equal(screen_rows(labels, 2_000, seed=1, min_pos=100)[0], rows)    # seeded
