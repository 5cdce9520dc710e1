"""Benchmark: paired cluster bootstrap of a whole table's gains at paper scale.

Problem: 25,000 images x 4 degraded copies (100,000 rows), 17 AUs,
8 systems (the rows of a table), 1,000 resamples of the images. Measures
:func:`aulib.report.bootstrap.paired_gains` (every row against the first and
against the previous one) on one core, against a loop rescoring each
resample with :func:`aulib.metrics.au_scores` (timed on a few resamples,
extrapolated).

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


def measure(images: int = 25_000, copies: int = 4, aus: int = 17, systems: int = 8, boot: int = 1000,
            loop_boot: int = 3) -> dict:
    """Seconds of the vectorised bootstrap (``fast_s``) and of the extrapolated
    loop (``loop_s``), and their ratio (``speedup``)."""
    from aulib.metrics import au_scores, summarize
    from aulib.report.bootstrap import paired_gains, resample_weights

    labels, decisions, clusters = make_problem(images, copies, aus, systems)
    pairs = [(s, 0) for s in range(1, systems)] + [(s, s - 1) for s in range(2, systems)]
    t0 = time.perf_counter()
    paired_gains(labels, decisions, clusters, pairs, n_boot=boot)
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    w = resample_weights(images, loop_boot, np.random.default_rng(0))
    for b in range(loop_boot):
        rows = np.repeat(np.arange(len(labels)), np.repeat(w[b].astype(int), copies))
        for s in range(systems):
            summarize(au_scores(labels[rows], decisions[s][rows]))
    t_loop = (time.perf_counter() - t0) * boot / loop_boot
    print(f"problem: {images:,} images x {copies} copies x {aus} AUs, {systems} systems, {len(pairs)} gains, "
          f"{boot} resamples")
    print(f"vectorised paired bootstrap: {t_fast:.2f} s (target < 60 s on one core)")
    print(f"loop rescoring every resample: {t_loop:.0f} s (timed on {loop_boot}, extrapolated)")
    return {"images": images, "copies": copies, "aus": aus, "systems": systems, "boot": boot,
            "fast_s": t_fast, "loop_s": t_loop, "speedup": t_loop / t_fast}


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: always at paper scale; ``quick``
    times the loop on 1 resample instead of 3."""
    from benchmarks import row

    r = measure(loop_boot=1 if quick else 3)
    scale = f"{r['images']:,} images x {r['copies']} x {r['aus']} AUs x {r['systems']} rows, {r['boot']} resamples"
    return [row("bootstrap: a table's gain intervals at paper scale (one core)", f"{r['fast_s']:.1f} s; {scale}",
                r["fast_s"], at_most=60),
            row("bootstrap: vectorised vs loop rescoring each resample",
                f"{r['fast_s']:.1f} s vs {r['loop_s']:.0f} s (loop extrapolated)", r["speedup"], at_least=10)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=25_000)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--aus", type=int, default=17)
    ap.add_argument("--systems", type=int, default=8)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--loop-boot", type=int, default=3)
    a = ap.parse_args(argv)
    return measure(a.images, a.copies, a.aus, a.systems, a.boot, a.loop_boot)


if __name__ == "__main__":
    main()
