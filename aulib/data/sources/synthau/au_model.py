"""SynthAU labels: AU prevalence and co-occurrence, intensities, the weak annotator.

Every image owns a block of ``N_UNIFORMS`` uniform random numbers drawn from
its own generator (seeded from ``(seed, split, index)``); every label-side
quantity of that image (true labels, intensities, unknown mask, weak-annotator
labels) is a pure, vectorised function of that block. A split's labels are
therefore computed for all images at once, and any subset regenerates
identically whatever the order.

Generative model
----------------
1. A latent emotion per image (``EMOTIONS``: prior and, per emotion, the
   probability that each of its AUs fires).
2. Independent activations per AU (``INDEPENDENT``), OR-ed with (1).
3. Couplings: 26 (jaw drop) brings 25 (lips part); 43 (eyes closed) removes 5;
   25 removes 24 and 28; 18 (pucker) removes 20 (stretch).
4. Head pose, independent of emotion: yaw none/51/52, pitch none/53/54,
   roll none/55/56 (the members of a pair are mutually exclusive).
5. Intensity of a present AU: uniform in [``MIN_INTENSITY``, 1]; 0 when absent.
   The drawn size of the change is ``EFFECT[au] * intensity`` (see
   :mod:`aulib.data.sources.synthau.face`), so AUs differ in difficulty.

Table (measured on 200k sampled label vectors, seed 0 — :func:`describe`; effect is
the drawn size relative to the AU's full-scale change; "sens" is the weak
annotator's sensitivity, its specificity is solved so that its per-AU label
accuracy equals ``ANNOTATOR_ACCURACY``, mean 0.81 as EmotioNet's automatic
annotations; "accuracy" is the measured one)::

    AU  name                  prevalence  effect        sens   accuracy
     1  inner brow raiser     10.8 %    0.45 subtle  0.60   0.767
     2  outer brow raiser      7.3 %    0.60         0.65   0.784
     4  brow lowerer          11.7 %    0.70         0.68   0.798
     5  upper lid raiser       6.4 %    0.80         0.71   0.809
     6  cheek raiser          22.3 %    0.70         0.68   0.797
     9  nose wrinkler          7.2 %    1.00 large   0.78   0.833
    10  upper lip raiser       6.4 %    1.00 large   0.78   0.833
    12  lip corner puller     28.5 %    1.00 large   0.78   0.834
    15  lip corner depressor   5.0 %    0.75         0.70   0.802
    17  chin raiser            7.4 %    1.00 large   0.78   0.832
    18  lip pucker             4.7 %    0.55         0.63   0.778
    20  lip stretcher          4.8 %    0.60         0.65   0.784
    24  lip pressor            4.6 %    0.80         0.71   0.809
    25  lips part             49.7 %    0.80         0.71   0.808
    26  jaw drop              13.8 %    1.00 large   0.78   0.834
    28  lip suck               4.6 %    0.70         0.68   0.796
    43  eyes closed            4.7 %    1.00 large   0.78   0.834
    51  head turn left         6.9 %    0.85         0.73   0.815
    52  head turn right        7.0 %    0.85         0.73   0.816
    53  head up                5.0 %    0.70         0.68   0.798
    54  head down              9.0 %    0.70         0.68   0.796
    55  head tilt left         6.0 %    1.00 large   0.78   0.833
    56  head tilt right        6.0 %    1.00 large   0.78   0.833

(Regenerate the numbers with :func:`describe`.)

Rarity floor: the rarest expression AUs (10, 9, 24, 28, 18, 43, 20) sit at
~4.5 %, not EmotioNet's 0.5 %, so the demo's split A (2400 images, after B and
the held-out H take 10 % each) holds ~110 positives of each and B (300) ~14.
Still imbalanced: 49.7 % / 4.5 % ~ 11x. Rates and effects are set so that the
10-epoch 64 px demo baseline learns every AU (each beats its trivial F1 on B,
tests/project/test_results.py); rarer or fainter AUs go unpredicted, or are learned or
not by seed (the versions and their measurements: docs/decisions.md,
"SynthAU's label model, version by version").
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ....aus import AUS_2020, au_columns

AUS = AUS_2020
N_AUS = len(AUS)
_POS = {au: i for i, au in enumerate(AUS)}
POSE_AUS = (51, 52, 53, 54, 55, 56)

#: Drawn size of each AU's change relative to its full-scale change (1.0).
EFFECT: dict[int, float] = {
    1: 0.45, 2: 0.60, 4: 0.70, 5: 0.80, 6: 0.70, 9: 1.00, 10: 1.00, 12: 1.00,
    15: 0.75, 17: 1.00, 18: 0.55, 20: 0.60, 24: 0.80, 25: 0.80, 26: 1.00,
    28: 0.70, 43: 1.00, 51: 0.85, 52: 0.85, 53: 0.70, 54: 0.70, 55: 1.00, 56: 1.00,
}

#: Latent emotions: (prior, {AU: probability of firing given the emotion}).
EMOTIONS: dict[str, tuple[float, dict[int, float]]] = {
    "neutral": (0.510, {}),
    "happy": (0.280, {6: 0.70, 12: 0.95, 25: 0.55, 26: 0.15}),
    "surprise": (0.055, {1: 0.90, 2: 0.90, 5: 0.55, 25: 0.90, 26: 0.75}),
    "sadness": (0.050, {1: 0.60, 4: 0.70, 15: 0.80, 17: 0.45}),
    "anger": (0.050, {4: 0.85, 5: 0.30, 24: 0.30, 17: 0.40}),
    "disgust": (0.020, {9: 0.65, 10: 0.75, 17: 0.35, 4: 0.30}),
    "fear": (0.020, {1: 0.85, 2: 0.70, 4: 0.70, 5: 0.70, 20: 0.80, 25: 0.85}),
}

#: Probability that an expression AU fires on its own (whatever the emotion).
INDEPENDENT: dict[int, float] = {
    1: 0.012, 2: 0.010, 4: 0.020, 5: 0.008, 6: 0.030, 9: 0.060, 10: 0.050,
    12: 0.020, 15: 0.010, 17: 0.025, 18: 0.047, 20: 0.035, 24: 0.072,
    25: 0.290, 26: 0.060, 28: 0.090, 43: 0.047,
}

#: Head pose: probability of each side of a pair (the rest: neither).
POSE_RATES: dict[int, float] = {51: 0.07, 52: 0.07, 53: 0.05, 54: 0.09, 55: 0.06, 56: 0.06}

MIN_INTENSITY = 0.4
UNKNOWN_RATE = 0.015  # share of unknown (-1) entries in the optimization file

#: Weak annotator: sensitivity per AU (higher for larger effects) and target
#: per-AU label accuracy (mean 0.81); specificity follows from both.
ANNOTATOR_SENSITIVITY = {au: 0.45 + 0.33 * EFFECT[au] for au in AUS}
_mean_effect = float(np.mean([EFFECT[a] for a in AUS]))
ANNOTATOR_ACCURACY = {au: 0.81 + 0.12 * (EFFECT[au] - _mean_effect) for au in AUS}

# Layout of the per-image uniform block.
_U_EMOTION = 0
_U_EMO_FIRE = slice(1, 1 + N_AUS)
_U_INDEP = slice(1 + N_AUS, 1 + 2 * N_AUS)
_U_INTENSITY = slice(1 + 2 * N_AUS, 1 + 3 * N_AUS)
_U_POSE = slice(1 + 3 * N_AUS, 4 + 3 * N_AUS)  # yaw, pitch, roll
_U_UNKNOWN = slice(4 + 3 * N_AUS, 4 + 4 * N_AUS)
_U_ANNOTATOR = slice(4 + 4 * N_AUS, 4 + 5 * N_AUS)
#: Number of uniforms each image draws for its labels.
N_UNIFORMS = 4 + 5 * N_AUS


def _emotion_tables() -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(EMOTIONS)
    prior = np.array([EMOTIONS[n][0] for n in names])
    prior = prior / prior.sum()
    fire = np.zeros((len(names), N_AUS))
    for e, name in enumerate(names):
        for au, p in EMOTIONS[name][1].items():
            fire[e, _POS[au]] = p
    return names, np.cumsum(prior), fire


EMOTION_NAMES, _EMOTION_CDF, _EMOTION_FIRE = _emotion_tables()
_INDEP = np.array([INDEPENDENT.get(au, 0.0) for au in AUS])


def true_labels(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels from uniform blocks ``u`` (N, N_UNIFORMS).

    Returns ``labels`` int8 (N, 23) in ``AUS_2020`` order, ``intensity``
    float32 (N, 23) in [MIN_INTENSITY, 1] where present else 0, and the
    latent ``emotion`` index int64 (N,) into ``EMOTION_NAMES``.
    """
    u = np.atleast_2d(u)
    emotion = np.searchsorted(_EMOTION_CDF, u[:, _U_EMOTION], side="right").clip(max=len(EMOTION_NAMES) - 1)
    on = (u[:, _U_EMO_FIRE] < _EMOTION_FIRE[emotion]) | (u[:, _U_INDEP] < _INDEP)
    c = _POS
    on[:, c[25]] |= on[:, c[26]]
    on[:, c[5]] &= ~on[:, c[43]]
    on[:, c[24]] &= ~on[:, c[25]]
    on[:, c[28]] &= ~on[:, c[25]]
    on[:, c[20]] &= ~on[:, c[18]]
    for k, (a, b) in enumerate(((51, 52), (53, 54), (55, 56))):
        up = u[:, _U_POSE][:, k]
        on[:, c[a]] = up < POSE_RATES[a]
        on[:, c[b]] = (up >= POSE_RATES[a]) & (up < POSE_RATES[a] + POSE_RATES[b])
    intensity = np.where(on, MIN_INTENSITY + (1 - MIN_INTENSITY) * u[:, _U_INTENSITY], 0.0)
    return on.astype(np.int8), intensity.astype(np.float32), emotion


def unknown_mask(u: np.ndarray, rate: float = UNKNOWN_RATE) -> np.ndarray:
    """bool (N, 23): entries written as unknown (-1 / 999) in the optimization file."""
    return np.atleast_2d(u)[:, _U_UNKNOWN] < rate


def _annotator_rates(prevalence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sens = np.array([ANNOTATOR_SENSITIVITY[a] for a in AUS])
    acc = np.array([ANNOTATOR_ACCURACY[a] for a in AUS])
    spec = np.clip((acc - prevalence * sens) / (1 - prevalence), 0.0, 1.0)
    return sens, spec


@lru_cache(maxsize=1)
def _prevalence_reference() -> np.ndarray:
    """Prevalence of the generative model on a fixed sample of 50k images (23,)."""
    u = np.random.default_rng(0).random((50_000, N_UNIFORMS))
    return true_labels(u)[0].mean(0)


def weak_labels(u: np.ndarray, labels: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Labels of the simulated weak annotator, int8 (N, 23).

    A present AU is reported with probability ``sens + 0.3 * (x - 0.5)``
    where ``x`` in [0, 1] is its relative intensity (weak AUs are missed more
    often; the mean is ``sens``); an absent AU is reported with probability
    ``1 - spec``. ``spec`` is solved per AU so that the expected label accuracy
    is ``ANNOTATOR_ACCURACY`` (mean 0.81).
    """
    u = np.atleast_2d(u)[:, _U_ANNOTATOR]
    sens, spec = _annotator_rates(_prevalence_reference())
    rel = (intensity - MIN_INTENSITY) / (1 - MIN_INTENSITY)
    p_hit = np.clip(sens + 0.3 * (rel - 0.5), 0.0, 1.0)
    p_one = np.where(labels == 1, p_hit, 1.0 - spec)
    return (u < p_one).astype(np.int8)


def label_table(images, labels: np.ndarray) -> pd.DataFrame:
    """Label table: column ``image`` then int8 ``AU1`` … ``AU56`` (-1 unknown)."""
    df = pd.DataFrame(np.asarray(labels, dtype=np.int8), columns=au_columns(AUS))
    df.insert(0, "image", list(images))
    return df


def per_au_accuracy(noisy: np.ndarray, true: np.ndarray) -> np.ndarray:
    """float (23,): per-AU share of noisy labels equal to the true ones."""
    return (np.asarray(noisy) == np.asarray(true)).mean(0)


def describe(n: int = 200_000, seed: int = 0) -> pd.DataFrame:
    """The module's table, measured on ``n`` sampled label vectors."""
    u = np.random.default_rng(seed).random((n, N_UNIFORMS))
    labels, intensity, _ = true_labels(u)
    noisy = weak_labels(u, labels, intensity)
    return pd.DataFrame({
        "au": AUS,
        "prevalence": labels.mean(0),
        "effect": [EFFECT[a] for a in AUS],
        "sensitivity": [ANNOTATOR_SENSITIVITY[a] for a in AUS],
        "noisy_accuracy": per_au_accuracy(noisy, labels),
    })
