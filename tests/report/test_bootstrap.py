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


def test_interval_corrects_a_skewed_bootstrap_where_the_percentile_sits_at_the_point():
    # the audit's fold 1: point 11.07, percentile interval [8.71, 11.07] -- resamples that lose a rare AU's
    # few positive subjects score it 0, so they fall below the point and the point is the interval's edge
    rng = np.random.default_rng(0)
    point = 11.07
    boot = point + 0.15 - rng.gamma(2.0, 0.55, size=2000)                    # 3 % of the resamples above the point
    plo, phi = bootstrap.interval(point, boot, method="percentile")
    assert abs(phi[0] - point) < 0.02 * (phi[0] - plo[0])                  # the old interval: point at its edge
    lo, hi = bootstrap.interval(point, boot, n=9)
    assert lo[0] < point and hi[0] > point + 2.0                             # the point inside
    assert (lo[0] + hi[0]) / 2 > point > (plo[0] + phi[0]) / 2               # shifted against the resamples' bias
    # all resamples below: a reflected interval would start above the point; it is widened to hold it
    lo, hi = bootstrap.interval(point, point - rng.gamma(2.0, 0.55, size=2000), n=9)
    assert lo[0] == point and hi[0] > point + 2.0


def test_interval_is_vectorised_expanded_and_clipped():
    rng = np.random.default_rng(1)
    boot = rng.normal([0.5, 0.1], [0.02, 0.05], size=(4000, 2))
    point = np.array([0.5, 0.1])
    lo, hi = bootstrap.interval(point, boot)
    np.testing.assert_allclose(lo, point - 1.96 * np.array([0.02, 0.05]), atol=0.01)
    np.testing.assert_allclose(hi, point + 1.96 * np.array([0.02, 0.05]), atol=0.01)
    # few clusters: as wide as a t interval with n - 1 degrees of freedom, sqrt(n / (n - 1)) larger
    assert bootstrap.expanded_tail(0.025, 9) == pytest.approx(0.00722, abs=1e-4)
    assert bootstrap.expanded_tail(0.025, 10_000) == pytest.approx(0.025, abs=1e-4)
    assert bootstrap.expanded_tail(0.025, [9, 9, 9]) > bootstrap.expanded_tail(0.025, 9)
    assert np.isnan(bootstrap.expanded_tail(0.025, 1))
    wide = bootstrap.interval(point, boot, n=9)
    assert ((wide[1] - wide[0]) > 1.2 * (hi - lo)).all()
    clipped = bootstrap.interval(np.array([0.99]), rng.normal(0.99, 0.02, size=(500, 1)), bounds=(0, 1))
    assert clipped[1][0] == 1.0
    nan = bootstrap.interval(np.array([0.5]), np.full((10, 1), np.nan))
    assert np.isnan(nan[0]).all() and np.isnan(nan[1]).all()
    with pytest.raises(ValueError, match="method must be one of"):
        bootstrap.interval(point, boot, method="normal")


def test_mean_over_folds_and_jackknife():
    rng = np.random.default_rng(2)
    labels = (rng.random((40, 3)) < 0.4).astype(np.int8)
    dec = _flip(labels, 0.2, rng)[None]
    clusters = np.repeat(np.arange(8), 5)
    jack = bootstrap.jackknife_finals(labels, dec, clusters, metric="f1")
    for k in range(8):
        keep = clusters != k
        assert jack[k, 0] == pytest.approx(summarize(au_scores(labels[keep], dec[0][keep]))["f1"], abs=1e-12)
    point, boot, j = bootstrap.mean_over_folds([np.array([0.6]), np.array([0.8])],
                                               [np.full((5, 1), 0.5), np.full((5, 1), 0.9)],
                                               [np.array([[0.5], [0.7]]), np.array([[0.8]])])
    assert point[0] == pytest.approx(0.7) and boot[0, 0] == pytest.approx(0.7)
    np.testing.assert_allclose(j[:, 0], [0.65, 0.75, 0.7])
