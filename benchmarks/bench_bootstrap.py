"""Benchmark: paired cluster bootstrap of a whole table's gains at paper scale.

Problem: 25,000 images x 4 degraded copies (100,000 rows), 17 AUs,
8 systems (the rows of a table), 1,000 resamples of the images. Measures
:func:`aulib.report.bootstrap.paired_gains` (every row against the first and
against the previous one) on one core, against the best simple baseline: a
vectorised numpy resampler (:func:`numpy_resampler`: per-row weights of 100
resamples at a time, weighted confusion counts by matrix products), checked
to give the same resampled scores for the same draws.

    python benchmarks/bench_bootstrap.py [--images 25000 --copies 4 --aus 17 --systems 8 --boot 1000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def make_problem(images: int, copies: int, aus: int, systems: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((images, aus)) < rng.uniform(0.05, 0.4, aus)).astype(np.int8)
    labels = np.repeat(np.where(rng.random(y.shape) < 0.1, -1, y), copies, axis=0).astype(np.int8)
    truth = np.repeat(y, copies, axis=0)
    flip = rng.random((systems, len(labels), aus)) < np.linspace(0.2, 0.1, systems)[:, None, None]
    decisions = np.where(flip, 1 - truth, truth).astype(np.int8)
    return labels, decisions, np.repeat(np.arange(images), copies)


def numpy_resampler(labels, decisions, clusters, weights, chunk: int = 100) -> np.ndarray:
    """Final score (B, S) of every system on every resample (``weights`` (B, K) cluster counts,
    clusters in ``np.unique`` order): the mean over AUs of (acc + F1) / 2 from weighted counts."""
    _, inv = np.unique(clusters, return_inverse=True)
    pos, neg = (labels == 1).astype(np.float64), (labels == 0).astype(np.float64)
    out = np.empty((len(weights), len(decisions)))
    for b in range(0, len(weights), chunk):
        wr = weights[b:b + chunk][:, inv]                                   # (b, N) row weights
        n_pos, n_neg = wr @ pos, wr @ neg
        for s, d in enumerate(decisions):
            tp, fp = wr @ (d * pos), wr @ (d * neg)
            acc = (tp + n_neg - fp) / (n_pos + n_neg)
            denom = tp + fp + n_pos
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
            out[b:b + chunk, s] = ((acc + f1) / 2).mean(1)
    return out


def measure(images: int = 25_000, copies: int = 4, aus: int = 17, systems: int = 8, boot: int = 1000) -> dict:
    """CPU seconds of the kit's bootstrap (``fast_s``) and of the numpy
    resampler (``numpy_s``), their ratio (``speedup``), and whether both
    give the same resampled scores (``same``)."""
    from aulib.report.bootstrap import boot_finals, paired_gains, resample_weights

    labels, decisions, clusters = make_problem(images, copies, aus, systems)
    pairs = [(s, 0) for s in range(1, systems)] + [(s, s - 1) for s in range(2, systems)]
    t0 = time.process_time()
    paired_gains(labels, decisions, clusters, pairs, n_boot=boot)
    t_fast = time.process_time() - t0

    w = resample_weights(images, boot, np.random.default_rng(0))
    t0 = time.process_time()
    base = numpy_resampler(labels, decisions, clusters, w)
    t_numpy = time.process_time() - t0
    _, kit = boot_finals(labels, decisions, clusters, weights=w)
    same = bool(np.allclose(kit, base, rtol=0, atol=1e-9))
    print(f"problem: {images:,} images x {copies} copies x {aus} AUs, {systems} systems, {len(pairs)} gains, "
          f"{boot} resamples")
    print(f"kit's paired bootstrap: {t_fast:.2f} s CPU (target < 60 s on one core)")
    print(f"vectorised numpy resampler: {t_numpy:.2f} s CPU; same resampled scores: {same}")
    return {"images": images, "copies": copies, "aus": aus, "systems": systems, "boot": boot,
            "fast_s": t_fast, "numpy_s": t_numpy, "same": same, "speedup": t_numpy / t_fast}


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: at paper scale (``quick``: 200 resamples)."""
    from benchmarks import row

    r = measure(boot=200 if quick else 1000)
    scale = f"{r['images']:,} images x {r['copies']} x {r['aus']} AUs x {r['systems']} rows, {r['boot']} resamples"
    return [row("bootstrap: a table's gain intervals at paper scale (one core)", f"{r['fast_s']:.1f} s; {scale}",
                r["fast_s"], at_most=60),
            row(f"bootstrap: kit vs a vectorised numpy resampler (same resampled scores: {r['same']})",
                f"{r['fast_s']:.1f} s vs {r['numpy_s']:.1f} s CPU", r["speedup"], expect="reported, no target")]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=25_000)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--aus", type=int, default=17)
    ap.add_argument("--systems", type=int, default=8)
    ap.add_argument("--boot", type=int, default=1000)
    a = ap.parse_args(argv)
    return measure(a.images, a.copies, a.aus, a.systems, a.boot)


if __name__ == "__main__":
    main()
