"""Selection rules on arrays (aulib.select.rules) against brute force with
scikit-learn, and the choice criterion (issue 32, points 1 and 2)."""
import numpy as np
import pytest
from sklearn.metrics import f1_score

from aulib.select import rules as R
from aulib.select.choose import Candidates, choose
from aulib.select.threshold import best_threshold


def _data(seed=0, k=4, n=60, c=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.int8)
    y[rng.random((n, c)) < 0.1] = -1                     # unknown labels
    p = np.clip(0.3 * y[None] + rng.random((k, n, c)) * 0.7, 0, 1).astype(np.float16).astype(np.float64)
    return y, p


def _f1(y, d):
    return f1_score(y[y >= 0], d[y >= 0], zero_division=0)


def test_public_rule_is_the_best_mean_f1_at_half_over_candidates():
    y, p = _data()
    idx, thr = R.public_rule(y, p)
    loop = [np.mean([_f1(y[:, j], p[k, :, j] >= 0.5) for j in range(3)]) for k in range(len(p))]
    assert (idx == int(np.argmax(loop))).all() and (thr == 0.5).all()
    assert np.allclose(R.mean_f1(y, p), loop)


def test_fmae_iat_rule_is_the_best_epoch_and_global_threshold_of_its_grid():
    y, p = _data(1)
    grid = R.grid_mean_f1(y, p)
    loop = np.array([[np.mean([_f1(y[:, j], p[k, :, j] >= t) for j in range(3)]) for t in R.FMAE_IAT_GRID]
                     for k in range(len(p))])
    assert np.allclose(grid, loop, atol=1e-12)
    idx, thr = R.fmae_iat_rule(y, p)
    k, i = np.unravel_index(np.argmax(loop), loop.shape)
    assert (idx == k).all() and (thr == R.FMAE_IAT_GRID[i]).all()
    small = R.grid_mean_f1(y, p, chunk_bytes=1)             # one candidate at a time: the same
    assert np.array_equal(small, grid)


@pytest.mark.parametrize("criterion", ["f1", "final"])
def test_exact_threshold_by_criterion_beats_every_cut(criterion):
    y, p = _data(2, k=1)
    thr, score = best_threshold(y, p[0], criterion=criterion)
    for j in range(3):
        known = y[:, j] >= 0
        cuts = np.r_[np.unique(p[0, known, j]), 1.01]
        f1 = [_f1(y[:, j], p[0, :, j] >= t) for t in cuts]
        acc = [np.mean((p[0, known, j] >= t) == (y[known, j] == 1)) for t in cuts]
        best = max(f1) if criterion == "f1" else max((a + f) / 2 for a, f in zip(acc, f1))
        assert score[j] == pytest.approx(best, abs=1e-12)
        d = p[0, :, j] >= thr[j]
        got = _f1(y[:, j], d) if criterion == "f1" else (np.mean(d[known] == (y[known, j] == 1)) + _f1(y[:, j], d)) / 2
        assert got == pytest.approx(best, abs=1e-12)


def test_the_f1_criterion_keeps_a_rare_aus_threshold_where_f1_is_best():
    """A rare AU: (acc + F1) / 2 trades F1 for accuracy by raising the threshold; F1 does not."""
    rng = np.random.default_rng(31)
    y = (rng.random((40, 1)) < 0.1).astype(np.int8)
    p = np.round(np.clip(np.where(y == 1, 0.5, 0.3) + rng.normal(0, 0.15, y.shape), 0, 1), 2)
    t_final, _ = best_threshold(y, p)
    t_f1, s_f1 = best_threshold(y, p, criterion="f1")
    assert _f1(y[:, 0], p[:, 0] >= t_f1[0]) == pytest.approx(s_f1[0])
    assert _f1(y[:, 0], p[:, 0] >= t_f1[0]) > _f1(y[:, 0], p[:, 0] >= t_final[0]) + 0.1
    assert t_f1[0] < t_final[0]


def test_choose_records_its_criterion_and_refuses_an_unknown_one():
    y, p = _data(4)
    cands = Candidates("B", (1, 2, 4), [("r", e) for e in range(1, 5)], y, p, None)
    ch = choose(cands, "threshold", "f1")
    assert ch.criterion == "f1" and "f1_B" in ch.table().columns
    assert list(ch.threshold) == list(R.paper_rule(y, p, "f1")[1])
    with pytest.raises(ValueError, match="criterion must be one of"):
        choose(cands, "threshold", "F1 score")


def test_no_choice_is_a_runs_last_epoch_in_its_own_precision():
    y, p = _data(5)
    idx, thr = R.no_choice(p)
    assert (idx == len(p) - 1).all()
    half = np.full(p.shape[1:], 0.5, np.float64)
    half[0, 0] = np.nextafter(0.5, 0)                         # just under 0.5: float16 could not hold it
    stack = np.concatenate([p, half[None]])
    d = R.rule_decisions(stack, *R.no_choice(stack))
    assert d[0, 0] == 0 and d[1, 0] == 1
