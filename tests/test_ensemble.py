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
