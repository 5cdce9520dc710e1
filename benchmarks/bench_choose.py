"""Benchmark: exact vectorized checkpoint x threshold search vs a scikit-learn grid loop.

Problem: E epochs x N rows of B x C AUs (default 100 x 10,000 x 23), labels
with 10 % unknown, float16 probabilities. Two ways to pick, per AU, the best
(epoch, threshold) by the final score (acc + F1) / 2:

- ``aulib.select.threshold.best_threshold`` over all epochs at once (the ``joint``
  strategy): exact, every cut between distinct probabilities;
- a loop calling scikit-learn's ``accuracy_score`` and ``f1_score`` for each
  epoch, AU and one of 19 thresholds 0.05 .. 0.95 (a grid: not exact).

The loop over all E x C x 19 is slow, so it runs on the first ``--loop-epochs``
epochs and is extrapolated linearly (the output says so). Peak memory is
measured with tracemalloc (numpy reports its buffers to it).

    python benchmarks/bench_choose.py [--epochs 100 --rows 10000 --aus 23 --loop-epochs 4]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def make_problem(epochs: int, rows: int, aus: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((rows, aus)) < rng.uniform(0.05, 0.4, aus)).astype(np.int8)
    labels = np.where(rng.random(y.shape) < 0.1, -1, y).astype(np.int8)
    strength = np.linspace(0.3, 1.5, epochs)[:, None, None] * rng.uniform(0.5, 1.5, aus)
    probs = np.empty((epochs, rows, aus), np.float32)
    z = rng.normal(size=(rows, aus)).astype(np.float32)
    for e in range(epochs):  # one epoch at a time to keep the set-up small
        logit = strength[e] * (2 * y - 1) + z - 0.5 + 0.3 * rng.normal(size=(rows, aus))
        probs[e] = (1 / (1 + np.exp(-logit))).astype(np.float16)  # as the run directory stores them
    return labels, probs


def sklearn_grid(labels, probs, grid):
    """Best (acc + F1) / 2 per (epoch, AU) over the grid, by a scikit-learn loop."""
    from sklearn.metrics import accuracy_score, f1_score

    e_count, _, c_count = probs.shape
    best = np.full((e_count, c_count), -np.inf)
    for e in range(e_count):
        for c in range(c_count):
            k = labels[:, c] >= 0
            y, p = labels[k, c], probs[e, k, c]
            for t in grid:
                d = (p >= t).astype(np.int8)
                best[e, c] = max(best[e, c], (accuracy_score(y, d) + f1_score(y, d, zero_division=0)) / 2)
    return best


def measure(epochs: int = 100, rows: int = 10_000, aus: int = 23, loop_epochs: int = 4) -> dict:
    """Time both searches on one problem; prints the comparison and returns
    the seconds (``vectorized_s``, ``paper_order_s``, ``loop_measured_s``,
    ``loop_s`` extrapolated), ``speedup``, ``peak_mib`` and ``exact``."""
    from aulib.select.choose import best_threshold, choose_indices

    labels, probs = make_problem(epochs, rows, aus)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    print(f"problem: {epochs} epochs x {rows} rows x {aus} AUs "
          f"({probs.nbytes / 2**20:.0f} MiB of float32 probabilities), 10 % unknown labels")

    tracemalloc.start()
    t0 = time.perf_counter()
    thr, score = best_threshold(labels, probs)  # (E, C): exact best threshold for every epoch and AU
    idx = np.argmax(score, axis=0)  # per-AU best epoch: the `joint` strategy
    t_vec = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    choose_indices(labels, probs, "threshold")  # the paper's order: epoch at 0.5, then threshold
    t_paper = time.perf_counter() - t0

    n_loop = min(loop_epochs, epochs)
    t0 = time.perf_counter()
    grid_best = sklearn_grid(labels, probs[:n_loop], grid)
    t_loop_part = time.perf_counter() - t0
    t_loop = t_loop_part * epochs / n_loop

    pairs = epochs * aus
    print(f"vectorized exact search (all {pairs} epoch x AU pairs, every cut): {t_vec:8.2f} s   "
          f"peak extra memory {peak / 2**20:.0f} MiB")
    print(f"  (per-AU epoch chosen jointly with the threshold); the paper's order instead, epoch at 0.5 then "
          f"threshold on that epoch: {t_paper:.2f} s")
    print(f"scikit-learn loop, 19 thresholds: measured {t_loop_part:.2f} s on {n_loop} of {epochs} epochs "
          f"({n_loop * aus * len(grid)} threshold evaluations), extrapolated to all {epochs} epochs: "
          f"{t_loop:8.1f} s")
    print(f"speed-up (extrapolated loop / vectorized): {t_loop / t_vec:.0f}x  (target >= 50x)")
    diff = score[:n_loop] - grid_best
    exact = bool((diff >= -1e-12).all())
    print(f"exactness: on the looped epochs the exact search scores >= the grid on every pair "
          f"({exact}); mean gain over the grid {diff.mean():.5f}, max {diff.max():.5f}")
    print(f"chosen epochs (first 5 AUs): {idx[:5].tolist()}, "
          f"thresholds: {np.round(thr[idx[:5], range(5)], 4).tolist()}")
    return {"epochs": epochs, "rows": rows, "aus": aus, "loop_epochs": n_loop, "vectorized_s": t_vec,
            "paper_order_s": t_paper, "loop_measured_s": t_loop_part, "loop_s": t_loop,
            "speedup": t_loop / t_vec, "peak_mib": peak / 2**20, "exact": exact}


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: always at paper scale (100 epochs x
    10,000 rows x 23 AUs); ``quick`` loops scikit-learn over 1 epoch instead of 4."""
    from benchmarks import row

    r = measure(loop_epochs=1 if quick else 4)
    scale = f"{r['epochs']} ep x {r['rows']:,} x {r['aus']} AUs"
    return [row("choice: exact vectorized search vs scikit-learn loop (19 thresholds)",
                f"{r['vectorized_s']:.2f} s vs {r['loop_s']:.0f} s (loop timed on {r['loop_epochs']} epoch(s), "
                f"extrapolated); {scale}", r["speedup"], at_least=50),
            row("choice at paper scale: every epoch x AU x cut, then per-AU best epoch",
                f"{r['vectorized_s']:.2f} s ({scale}; paper's order {r['paper_order_s']:.2f} s; "
                f"+{r['peak_mib']:.0f} MiB numpy); never below the grid: {r['exact']}", None)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--aus", type=int, default=23)
    ap.add_argument("--loop-epochs", type=int, default=4, help="epochs the scikit-learn loop really runs")
    a = ap.parse_args(argv)
    return measure(a.epochs, a.rows, a.aus, a.loop_epochs)


if __name__ == "__main__":
    main()
