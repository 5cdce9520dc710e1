"""Paired cluster bootstrap of final-score gains (aulib.report.bootstrap)."""
import numpy as np
import pytest

from aulib.metrics import au_scores, summarize
from aulib.report import bootstrap


def _flip(labels, rate, rng):
    """Decisions equal to the labels, each flipped with probability ``rate``."""
    return np.where(rng.random(labels.shape) < rate, 1 - labels, labels).astype(np.int8)


def test_known_gain_is_covered_and_not_zero():
    # balanced labels, symmetric errors: population acc = F1 = 1 - rate, so the final gain is 0.10
    rng = np.random.default_rng(0)
    labels = (rng.random((3000, 5)) < 0.5).astype(np.int8)
    dec = np.stack([_flip(labels, 0.1, rng), _flip(labels, 0.2, rng)])
    g = bootstrap.paired_gains(labels, dec, np.arange(3000), [(0, 1)], n_boot=500, seed=1).iloc[0]
    assert g["lo"] < 0.10 < g["hi"] and g["lo"] > 0 and g["nonzero"]


def test_zero_gain_interval_covers_zero():
    rng = np.random.default_rng(2)
    labels = (rng.random((800, 4)) < 0.3).astype(np.int8)
    dec = np.stack([_flip(labels, 0.15, rng), _flip(labels, 0.15, rng)])
    g = bootstrap.paired_gains(labels, dec, np.arange(800), [(0, 1)], n_boot=500, seed=3).iloc[0]
    assert g["lo"] < 0 < g["hi"] and not g["nonzero"]


def test_clusters_are_resampled_together():
    # B's layout: 4 copies of each image with the same labels and decisions. Resampling rows
    # independently pretends to have 4x the data: its interval must be visibly narrower.
    rng = np.random.default_rng(4)
    labels = np.repeat((rng.random((300, 3)) < 0.4).astype(np.int8), 4, axis=0)
    a = np.repeat(_flip(labels[::4], 0.1, rng), 4, axis=0)
    b = np.repeat(_flip(labels[::4], 0.2, rng), 4, axis=0)
    images = np.repeat(np.arange(300), 4)
    by_image = bootstrap.paired_gains(labels, np.stack([a, b]), images, [(0, 1)], n_boot=800, seed=5).iloc[0]
    by_row = bootstrap.paired_gains(labels, np.stack([a, b]), np.arange(1200), [(0, 1)], n_boot=800, seed=5).iloc[0]
    assert by_image["gain"] == pytest.approx(by_row["gain"])
    assert (by_image["hi"] - by_image["lo"]) > 1.6 * (by_row["hi"] - by_row["lo"])


def test_matches_slow_loop_over_repeated_rows():
    rng = np.random.default_rng(6)
    n, c, s = 60, 3, 3
    labels = rng.integers(-1, 2, size=(n, c)).astype(np.int8)
    labels[:, 1] = np.where(labels[:, 1] < 0, 0, labels[:, 1])
    dec = rng.integers(0, 2, size=(s, n, c)).astype(np.int8)
    clusters = rng.integers(0, 17, size=n).astype(str)          # uneven clusters, string ids
    keys = np.unique(clusters)
    w = bootstrap.resample_weights(len(keys), 25, np.random.default_rng(7))
    point, fast = bootstrap.boot_finals(labels, dec, clusters, weights=w)
    for si in range(s):
        assert point[si] == pytest.approx(summarize(au_scores(labels, dec[si]))["final"], abs=1e-12)
    for bi in range(len(w)):
        rows = np.concatenate([np.repeat(np.flatnonzero(clusters == k), int(m)) for k, m in zip(keys, w[bi])])
        for si in range(s):
            slow = summarize(au_scores(labels[rows], dec[si][rows]))["final"]
            assert fast[bi, si] == pytest.approx(slow, abs=1e-12)


def test_weights_are_multinomial_counts_and_shapes_are_checked():
    w = bootstrap.resample_weights(50, 40, np.random.default_rng(0))
    assert w.shape == (40, 50) and (w.sum(1) == 50).all() and (w >= 0).all()
    with pytest.raises(ValueError, match="one entry per row"):
        bootstrap.cluster_counts(np.zeros((5, 2), np.int8), np.zeros((1, 5, 2)), np.arange(4))
    with pytest.raises(ValueError, match="labels have shape"):
        bootstrap.cluster_counts(np.zeros((5, 3), np.int8), np.zeros((1, 5, 2)), np.arange(5))
