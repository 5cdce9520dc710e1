"""Benchmark: do the benchmark table's 95 % subject-bootstrap intervals cover?

Simulation (nothing is trained): for each data set (BP4D-like, DISFA-like) and
each test-fold size (9, 13, 27, 41 subjects), ``--reps`` replications of a
3-fold benchmark. Per fold, a fixed trained model with ``EPOCHS`` candidate
epochs is scored on a test fold T and on B (as many new subjects as T, from
the same population); the public rule (one epoch for all AUs by mean F1 at
0.5) is applied on T ("as public codes") and on B ("honest"); the last epoch
is "no choice". Every interval is the kit's machinery: the same subject
resamples for all epochs (:func:`aulib.report.bootstrap.boot_finals`,
``metric="f1"``), each fold resampled independently for the mean
(:func:`aulib.report.bootstrap.mean_over_folds`), then
:func:`aulib.report.bootstrap.interval` with each of :data:`CANDIDATES`.

The data. Subjects are independent; AU c of subject s occurs in a fraction
``p_sc`` of the subject's segments (logit-normal around the AU's rate,
subject SD 1.0 on the logit; in DISFA-like data an AU occurs at all in only
a fraction ``PRESENT`` of the subjects). Each subject has ``SEGMENTS``
segments (frames within a segment share label and score: only segments
count, since pooled F1 does not change when every count is multiplied).
A segment's score is ``d_ce (y - 1/2) + b_ce + v_sc + e``: per-AU skill
``d`` calibrated so that the model reaches :data:`SKILL` (F1 at 0.5 per AU,
about what published models report), a bias ``b_c = 0.3 log(rate / 0.5)``
(rarer AUs called less often), a subject effect ``v_sc`` (SD 0.5: the model
fits some faces better; with ``p_sc`` it correlates a subject's frames), and
unit noise, 80 % of it shared by the epochs. Epochs differ by small per-AU
changes of skill (SD 6 %) and bias (SD 0.12): their population F1s differ by
about a point, as neighbouring epochs do.

What is covered (the truth):

- a fold's F1 (the honest system: chosen on B, a fixed model for T): the
  **population F1 of that fixed model** -- per AU ``2 TP / (2 TP + FP + FN)``
  of the counts expected over the subject population (``POPULATION``
  simulated subjects, each with its expected counts; Monte-Carlo error
  < 1e-3 F1), averaged over the AUs; the 3-fold mean: the mean of the three
  folds' models' population F1s;
- a paired difference (honest - no choice, two fixed models): the difference
  of their population F1s;
- the optimism (as public codes - honest, both on T): its **expectation at
  this fold size** over test folds and B parts, the models fixed -- what a
  published number owes its test fold on average; estimated by the mean of
  the replications' optimism (its Monte-Carlo error is printed beside it).
  Either with the choice on T kept fixed in the resamples (as the kit does
  for choices that are costly to re-make), or re-made in every resample
  (the best epoch of each resample).

The intervals condition on the trained models (no seed or training variance
is simulated) and on the choice made once.

    python benchmarks/bench_coverage.py [--reps 150] [--boot 1000] [--quick]

Prints one table (coverage per case and interval) and, last, the line
``coverage: min <x>``: the smallest coverage of the kit's interval for each
quantity (:data:`QUANTITIES`) over every case it claims.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

#: Frame-level base rates (fraction of frames with the AU): BP4D's 12 AUs as
#: usually stated for the FERA 2015 training and development data (JAA-Net,
#: Shao et al. 2018, Table 1 and EAC-Net's statistics); DISFA's 8 AUs at
#: intensity >= 2 (same sources).
BASE_RATES = {
    "BP4D": {1: 0.21, 2: 0.17, 4: 0.20, 6: 0.46, 7: 0.55, 10: 0.59, 12: 0.56, 14: 0.47, 15: 0.17, 17: 0.34,
             23: 0.17, 24: 0.15},
    "DISFA": {1: 0.050, 2: 0.042, 4: 0.150, 6: 0.078, 9: 0.041, 12: 0.130, 25: 0.245, 26: 0.110},
}
#: Fraction of subjects in whom the AU occurs at all (DISFA's rare AUs: a few subjects only).
PRESENT = {"BP4D": {}, "DISFA": {1: 0.4, 2: 0.35, 4: 0.7, 6: 0.6, 9: 0.3, 12: 0.9, 25: 1.0, 26: 0.8}}
#: Per-AU F1 (%) at 0.5 of the base epoch: about what published models report per AU.
SKILL = {
    "BP4D": {1: 50, 2: 45, 4: 55, 6: 77, 7: 77, 10: 83, 12: 87, 14: 63, 15: 45, 17: 62, 23: 45, 24: 50},
    "DISFA": {1: 45, 2: 40, 4: 60, 6: 50, 9: 45, 12: 75, 25: 90, 26: 55},
}
SIZES = (9, 13, 27, 41)
FOLDS = 3
EPOCHS = 8
SEGMENTS = 60
POPULATION = 100_000
SUBJECT_LOGIT_SD, SUBJECT_SCORE_SD, SHARED_NOISE = 1.0, 0.5, 0.8
EPOCH_SKILL_SD, EPOCH_BIAS_SD = 0.06, 0.12
#: What is covered: {name: (statistic of :func:`one_fold`, its truth)}. ``population``: the fixed
#: models' population value; ``expected``: the statistic's expectation at this fold size.
#: Intervals compared: {name: (method of :func:`aulib.report.bootstrap.interval`, expanded tails)}.
#: ``percentile`` is the kit's old interval.
CANDIDATES = {"percentile": ("percentile", False), "basic": ("basic", False), "bca": ("bca", False),
              "pct expanded": ("percentile", True), "basic expanded": ("basic", True)}
#: What is covered: {name: (statistic of :func:`one_fold`, its truth, the kit's interval or None)}.
#: Truth ``population``: the fixed models' population value; ``expected``: the statistic's
#: expectation at this fold size. Kit None: shown, but not an interval the kit claims covers.
QUANTITIES = {
    "fold F1": (0, "population", "basic expanded"),
    "3-fold mean F1": (0, "population", "basic expanded"),
    "fold paired difference": (1, "population", "basic expanded"),
    "fold optimism, choice re-made": (3, "expected", "pct expanded"),
    "3-fold mean optimism, re-made": (3, "expected", "pct expanded"),
    "fold optimism, choice fixed": (2, "expected", None),
    "3-fold mean optimism, fixed": (2, "expected", None),
}


def _phi(x):
    from scipy.special import ndtr
    return ndtr(x)


@dataclass
class Population:
    """Subject-level draws of one data set: label rate ``p`` (P, C) and score effect ``v`` (P, C)."""

    p: np.ndarray
    v: np.ndarray


def _centre(mean: np.ndarray) -> np.ndarray:
    """Logit centre whose logit-normal (SD :data:`SUBJECT_LOGIT_SD`) has this mean (Gauss-Hermite, bisection)."""
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    lo, hi = np.full(len(mean), -12.0), np.full(len(mean), 12.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = (w / (1 + np.exp(-(mid[:, None] + SUBJECT_LOGIT_SD * x)))).sum(1) < mean
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def draw_subjects(dataset: str, n: int, rng: np.random.Generator) -> Population:
    aus = list(BASE_RATES[dataset])
    rate = np.array([BASE_RATES[dataset][a] for a in aus])
    present = np.array([PRESENT[dataset].get(a, 1.0) for a in aus])
    centre = _centre(rate / present)
    p = 1 / (1 + np.exp(-(centre + SUBJECT_LOGIT_SD * rng.normal(size=(n, len(aus))))))
    p = np.where(rng.random((n, len(aus))) < present, p, 0.0)
    return Population(p, SUBJECT_SCORE_SD * rng.normal(size=(n, len(aus))))


def population_counts(pop: Population, d: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Population F1 (..., C) of models with skill ``d`` and bias ``b`` (..., C): F1 of the expected counts."""
    tpr = _phi(d[..., None, :] / 2 + b[..., None, :] + pop.v)
    fpr = _phi(-d[..., None, :] / 2 + b[..., None, :] + pop.v)
    tp = (pop.p * tpr).sum(-2)
    fp = ((1 - pop.p) * fpr).sum(-2)
    fn = (pop.p * (1 - tpr)).sum(-2)
    return 2 * tp / (2 * tp + fp + fn)


def calibrate(dataset: str, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Per-AU skill ``d`` (C,) reaching :data:`SKILL` on the population, and bias ``b`` (C,)."""
    aus = list(BASE_RATES[dataset])
    target = np.array([SKILL[dataset][a] for a in aus]) / 100
    b = 0.3 * np.log(np.array([BASE_RATES[dataset][a] for a in aus]) / 0.5)   # rarer AU: fewer positive calls
    lo, hi = np.zeros(len(aus)), np.full(len(aus), 8.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        below = population_counts(pop, mid, b) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2, b


@dataclass
class FoldModel:
    """One fold's trained model: skill and bias per epoch and AU (E, C), population F1 per epoch (E,)."""

    d: np.ndarray
    b: np.ndarray
    pop_f1: np.ndarray


def fold_models(dataset: str, rng: np.random.Generator) -> list[FoldModel]:
    pop = draw_subjects(dataset, POPULATION, np.random.default_rng(12345))
    d0, b0 = calibrate(dataset, pop)
    out = []
    for _ in range(FOLDS):
        d = d0 * (1 + EPOCH_SKILL_SD * rng.normal(size=(EPOCHS, len(d0))))
        b = b0 + EPOCH_BIAS_SD * rng.normal(size=(EPOCHS, len(d0)))
        out.append(FoldModel(d, b, population_counts(pop, d, b).mean(-1)))
    return out


def simulate(dataset: str, model: FoldModel, n: int, rng: np.random.Generator):
    """Labels (N, C) int8, decisions of every epoch (E, N, C) int8 and subjects (N,) of ``n`` new subjects."""
    subj = draw_subjects(dataset, n, rng)
    c = subj.p.shape[1]
    y = (rng.random((n, SEGMENTS, c)) < subj.p[:, None]).astype(np.int8)
    shared = rng.standard_normal((n, SEGMENTS, c), np.float32) * np.sqrt(SHARED_NOISE) + subj.v[:, None]
    own = rng.standard_normal((EPOCHS, n, SEGMENTS, c), np.float32) * np.sqrt(1 - SHARED_NOISE)
    score = model.d[:, None, None] * (y - 0.5) + model.b[:, None, None] + shared + own
    return y.reshape(-1, c), (score > 0).reshape(EPOCHS, -1, c).astype(np.int8), np.repeat(np.arange(n), SEGMENTS)


def one_fold(dataset: str, model: FoldModel, n: int, n_boot: int, rng: np.random.Generator) -> dict:
    """One simulated fold (B and T of ``n`` new subjects each): point (4,), resamples (B, 4), jackknife
    values (n, 4) and population truth (4,) of the statistics honest, honest - no choice, optimism with
    the choice fixed, optimism with the choice re-made in each resample (truth NaN: its expectation,
    :func:`coverage_case`)."""
    from aulib.report.bootstrap import boot_finals, jackknife_finals

    lab_b, dec_b, subj_b = simulate(dataset, model, n, rng)
    on_b = boot_finals(lab_b, dec_b, subj_b, n_boot=0, metric="f1")[0]
    lab_t, dec_t, subj_t = simulate(dataset, model, n, rng)
    chosen_b = int(np.argmax(on_b))
    seed = int(rng.integers(2**31))
    # every epoch resampled (the same resamples): the public rule re-made in each resample, or kept fixed
    pt_all, boot_all = boot_finals(lab_t, dec_t, subj_t, n_boot=n_boot, seed=seed, metric="f1")
    jack_all = jackknife_finals(lab_t, dec_t, subj_t, metric="f1")
    chosen_t, last = int(np.argmax(pt_all)), EPOCHS - 1

    def stat(x):   # honest, honest - no choice, optimism with the choice fixed, optimism re-chosen
        return np.stack([x[..., chosen_b], x[..., chosen_b] - x[..., last], x[..., chosen_t] - x[..., chosen_b],
                         x.max(-1) - x[..., chosen_b]], -1)
    return {"point": stat(pt_all), "boot": stat(boot_all), "jack": stat(jack_all),
            "truth": np.array([model.pop_f1[chosen_b], model.pop_f1[chosen_b] - model.pop_f1[last],
                               model.pop_f1[chosen_t] - model.pop_f1[chosen_b], np.nan])}


def coverage_case(dataset: str, n: int, models: list[FoldModel], reps: int, n_boot: int, seed: int) -> dict:
    """Coverage per quantity (:data:`QUANTITIES`) and method for one (data set, fold size)."""
    from aulib.report.bootstrap import interval, mean_over_folds

    rng = np.random.default_rng(seed)
    got = {(q, m): [] for q in QUANTITIES for m in CANDIDATES}   # (lo, hi) per fold or per replication
    points, truths = [], []
    for _ in range(reps):
        folds = [one_fold(dataset, m, n, n_boot, rng) for m in models]
        points.append([f["point"] for f in folds])
        truths.append([f["truth"] for f in folds])
        mean = mean_over_folds([f["point"] for f in folds], [f["boot"] for f in folds], [f["jack"] for f in folds])
        for name, (method, expand) in CANDIDATES.items():
            for f in folds:
                lo, hi = interval(f["point"], f["boot"], method=method, jack=f["jack"], n=n if expand else None)
                for q, (j, *_) in QUANTITIES.items():
                    if not q.startswith("3-fold"):
                        got[q, name].append((lo[j], hi[j]))
            lo, hi = interval(mean[0], mean[1], method=method, jack=mean[2], n=[n] * len(folds) if expand else None)
            for q, (j, *_) in QUANTITIES.items():
                if q.startswith("3-fold"):
                    got[q, name].append((lo[j], hi[j]))
    points, truths = np.array(points), np.array(truths)          # (reps, folds, stats)
    expected = points.mean(0)                                    # (folds, stats): expectation at this size
    truth = {}
    for q, (j, kind, _) in QUANTITIES.items():
        t = truths[..., j] if kind == "population" else np.broadcast_to(expected[:, j], truths.shape[:2])
        truth[q] = t.mean(1) if q.startswith("3-fold") else t.ravel()
    cover = {q: {m: float(np.mean((np.array(got[q, m])[:, 0] <= truth[q]) & (truth[q] <= np.array(got[q, m])[:, 1])))
                 for m in CANDIDATES} for q in QUANTITIES}
    width = {q: {m: float(np.mean(np.diff(np.array(got[q, m]), axis=1))) for m in CANDIDATES}
             for q in QUANTITIES}
    opt = points[..., 2].mean(1)
    return {"dataset": dataset, "subjects": n, "coverage": cover, "width": width,
            "optimism": float(opt.mean()), "optimism_se": float(opt.std(ddof=1) / np.sqrt(reps))}


def measure(reps: int = 150, n_boot: int = 1000, sizes=SIZES, datasets=("BP4D", "DISFA"), seed: int = 0) -> dict:
    """Every case's coverage (:func:`coverage_case`); prints the table and, last, ``coverage: min <x>``
    (the smallest coverage of the kit's interval over every case it claims)."""
    t0 = time.perf_counter()
    cases = []
    for k, ds in enumerate(datasets):
        models = fold_models(ds, np.random.default_rng(seed + 100 + k))
        rates = draw_subjects(ds, POPULATION, np.random.default_rng(12345)).p.mean(0)
        print(f"{ds}-like: base rates in the simulated population (%): "
              + ", ".join(f"AU{a} {100 * r:.1f}" for a, r in zip(BASE_RATES[ds], rates)))
        print(f"{ds}-like: {len(BASE_RATES[ds])} AUs, population F1 (%) of each fold model's {EPOCHS} epochs: "
              + "; ".join(" ".join(f"{100 * x:.1f}" for x in m.pop_f1) for m in models))
        for j, n in enumerate(sizes):
            cases.append(coverage_case(ds, n, models, reps, n_boot, seed + 1000 * k + j))
    seconds = time.perf_counter() - t0
    se = np.sqrt(0.95 * 0.05 / reps)
    print(f"\ncoverage of the nominal 95 % interval; {reps} replications x {FOLDS} folds per case, {n_boot} subject "
          f"resamples; Monte-Carlo SE of a coverage near 0.95: {se:.3f} ({se / np.sqrt(FOLDS):.3f} for 'fold' rows, "
          f"which pool the {FOLDS} folds); {seconds:.0f} s. * = the kit's interval for that quantity")
    head = f"| {'data':5} | {'subj':>4} | {'quantity':29} | " + " | ".join(f"{m:>14}" for m in CANDIDATES) \
        + f" | {'width':>6} | note"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:]))
    kit, fixed = [], []
    for c in cases:
        for q, (_, _, method) in QUANTITIES.items():
            cov = c["coverage"][q]
            shown = method or "basic expanded"
            if method is None:
                note = f"choice not re-made: approximate, covers {cov[shown]:.2f}"
                fixed.append(cov[shown])
            else:
                short = 0.95 - cov[method]
                note = "" if cov[method] >= 0.90 else f"approximate: covers {cov[method]:.2f}, {short:.2f} short"
                kit.append(cov[method])
            if q == "fold optimism, choice re-made":
                truth = f"truth {100 * c['optimism']:+.2f} (MC SE {100 * c['optimism_se']:.2f})"
                note = f"{note}; {truth}" if note else truth
            cells = " | ".join(f"{cov[m]:>13.3f}" + ("*" if m == method else " ") for m in CANDIDATES)
            width = 100 * c["width"][q][shown]
            print(f"| {c['dataset']:5} | {c['subjects']:>4} | {q:29} | {cells} | {width:>6.2f} | {note}")
    print("(width: mean width in F1 points of the kit's interval, for 'choice fixed' rows of basic expanded; "
          "optimism truth: the 3 folds' mean, F1 points; every interval, the old percentile one too, is widened "
          "to hold its point where it does not)")
    print(f"old percentile interval: min {min(c['coverage'][q]['percentile'] for c in cases for q in QUANTITIES):.3f};"
          f" choice kept fixed (any method): min {min(fixed):.3f}")
    worst = float(min(kit))
    print(f"coverage: min {worst:.3f}")
    return {"cases": cases, "min": worst, "min_fixed": float(min(fixed)), "seconds": seconds, "reps": reps,
            "boot": n_boot}


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: ``quick`` is 20 replications at 9 and 13 subjects, 300 resamples."""
    from benchmarks import row

    r = measure(reps=20, n_boot=300, sizes=(9, 13)) if quick else measure()
    pct = min(c["coverage"][q]["percentile"] for c in r["cases"] for q in QUANTITIES)
    return [row("intervals: smallest coverage of the nominal 95 % over all cases (kit's vs old percentile)",
                f"{r['min']:.3f} vs {pct:.3f}; choice fixed {r['min_fixed']:.3f}; {r['reps']} reps x {FOLDS} folds, "
                f"{len(r['cases'])} cases, {r['seconds']:.0f} s", r["min"], at_least=0.90)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=150, help="replications of the 3-fold benchmark per case")
    ap.add_argument("--boot", type=int, default=1000, help="subject resamples per fold")
    ap.add_argument("--quick", action="store_true", help="20 replications, 300 resamples, 9 and 13 subjects")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.quick:
        return measure(reps=20, n_boot=300, sizes=(9, 13), seed=a.seed)
    return measure(reps=a.reps, n_boot=a.boot, seed=a.seed)


if __name__ == "__main__":
    main()
