"""aulib.metrics equals scikit-learn per AU, unknown labels dropped."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from aulib.metrics import au_scores, batched_scores, decide, score_probs, summarize


def _sklearn_per_au(labels, decisions):
    acc, f1 = [], []
    for c in range(labels.shape[1]):
        k = labels[:, c] >= 0
        acc.append(accuracy_score(labels[k, c], decisions[k, c]) if k.any() else np.nan)
        f1.append(f1_score(labels[k, c], decisions[k, c], zero_division=0) if k.any() else np.nan)
    return np.array(acc), np.array(f1)


@pytest.mark.parametrize("seed", range(5))
def test_au_scores_equal_sklearn_with_unknowns(seed):
    rng = np.random.default_rng(seed)
    n, c = rng.integers(5, 60), rng.integers(1, 8)
    labels = rng.choice([-1, 0, 1], size=(n, c), p=[0.25, 0.55, 0.2]).astype(np.int8)
    labels[:, 0] = np.where(labels[:, 0] == 1, 0, labels[:, 0])  # an AU with no positive: F1 -> 0
    decisions = (rng.random((n, c)) < 0.3).astype(np.int8)
    decisions[:, 0] = 0  # and no predicted positive (zero_division)
    aus = list(range(100, 100 + c))
    df = au_scores(labels, decisions, aus)
    acc, f1 = _sklearn_per_au(labels, decisions)
    np.testing.assert_allclose(df["acc"], acc, atol=1e-12)
    np.testing.assert_allclose(df["f1"], f1, atol=1e-12)
    np.testing.assert_allclose(df["final"], (acc + f1) / 2, atol=1e-12)
    assert df.index.tolist() == aus
    assert (df["n"] == (labels >= 0).sum(0)).all() and (df["n_pos"] == (labels == 1).sum(0)).all()
    s = summarize(df)
    assert s["final"] == pytest.approx((np.mean(acc) + np.mean(f1)) / 2)
    assert s["final"] == pytest.approx(df["final"].mean())


def test_au_without_known_labels_is_nan_and_skipped():
    labels = np.array([[1, -1], [0, -1], [1, -1]], np.int8)
    df = au_scores(labels, np.array([[1, 1], [0, 0], [0, 1]]), [1, 2])
    assert np.isnan(df.loc[2, "final"]) and df.loc[2, "n"] == 0
    assert summarize(df)["acc"] == pytest.approx(2 / 3)


def test_score_probs_and_batched_scores_agree_with_threshold_rule():
    rng = np.random.default_rng(3)
    labels = rng.choice([-1, 0, 1], size=(40, 5)).astype(np.int8)
    probs = rng.random((6, 40, 5)).astype(np.float32)
    probs[0, :3] = 0.5  # exactly at the threshold counts as positive (prob >= thr)
    thr = rng.uniform(0.2, 0.8, 5)
    b = batched_scores(labels, probs, thr)
    assert b["final"].shape == (6, 5) and b["mean_final"].shape == (6,)
    for e in range(6):
        per_au, summary = score_probs(labels, probs[e], thr)
        acc, f1 = _sklearn_per_au(labels, (probs[e] >= thr).astype(int))
        np.testing.assert_allclose(per_au["acc"], acc)
        np.testing.assert_allclose(b["acc"][e], acc)
        np.testing.assert_allclose(b["f1"][e], f1)
        assert b["mean_final"][e] == pytest.approx(summary["final"])
    assert decide(np.array([[0.5, 0.49]]), 0.5).tolist() == [[1, 0]]
    # a memmap-like chunked pass gives the same numbers
    small = batched_scores(labels, probs, thr, chunk_bytes=1)
    np.testing.assert_array_equal(small["final"], b["final"])


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="row 1, column 0 holds 999"):
        au_scores(np.array([[1], [999]]), np.array([[1], [0]]))
    with pytest.raises(ValueError, match="3 AU columns"):
        au_scores(np.zeros((2, 3), np.int8), np.zeros((2, 2), np.int8))
    assert isinstance(au_scores(np.zeros((2, 1), np.int8), np.zeros((2, 1))), pd.DataFrame)


def test_batched_scores_of_float16_compare_as_in_float64():
    """float16 probabilities are compared as integers against the smallest float16 not below each
    threshold: the same decisions as comparing in float64, at a threshold equal to a value, one float64
    step above or below it, 0, -0.0, negative, above 1, NaN and infinite; -0.0 probabilities included."""
    rng = np.random.default_rng(3)
    for it in range(240):
        e, n, c = rng.integers(1, 4), rng.integers(1, 50), rng.integers(1, 4)
        labels = rng.choice([-1, 0, 1], size=(n, c)).astype(np.int8)
        probs = rng.random((e, n, c)).astype(np.float16)
        probs[0, 0] = -0.0 if it % 3 == 0 else probs[0, 0]
        probs[..., -1] = 1.0 if it % 4 == 0 else probs[..., -1]
        at = probs.astype(np.float64).ravel()[rng.integers(0, probs.size, (e, c))]
        thr = [at, np.nextafter(at, np.inf), np.nextafter(at, -np.inf), rng.random((e, c)),
               rng.choice([0.0, -0.0, -1.0, 1.0, 1.5, 0.5, np.nan, np.inf], (e, c))][it % 5]
        want = batched_scores(labels, probs.astype(np.float64), thr)
        got = batched_scores(labels, probs, thr)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
