"""Linear ensemble of several runs, one logistic regression per AU.

The paper combines "the results of several models with different backbone by
using linear model". Here, for AU ``c``, the ensemble probability is::

    p_c = sigmoid(sum_r coef[c, r] * logit(p_rc) + intercept[c])

where ``p_rc`` is run ``r``'s probability for AU ``c`` (clipped to
``[eps, 1 - eps]`` before the logit). The weights are fitted on dataset B by
L2-regularised logistic regression on the known labels (scikit-learn's
objective: ``0.5 |coef|^2 + C * sum(weight * log-loss)``, intercept not
penalised), solved for all AUs at once by a batched Newton method.

Fitting rule (``neg_weight``): the members were trained with batch balancing
(``alpha``: where ``alpha * negatives > positives`` an AU keeps only
``alpha * negatives`` of its negatives), so their outputs, decided at 0.5,
carry that balanced prior. An ensemble refitted by plain log-loss undoes it
(it recalibrates to B's prevalence, predicts fewer positives, and loses F1 at
0.5 to its own members). ``neg_weight=alpha`` fits by the members' own rule:
per AU, where ``alpha * n_neg > n_pos`` on the fitting rows every negative
weighs ``alpha`` (the expected share training keeps), else 1.
``neg_weight=None`` is plain log-loss (members trained without balancing).
:func:`members_neg_weight` reads the rule from the members' configs. Which
rule suits depends on the members (measured on the demo: the members' rule
wins for the 17 expression AUs, whose rare AUs the members under-detect;
plain log-loss for the 6 head-pose AUs, which they separate almost
perfectly), so Table 1 chooses between the two on B by the ensemble's own
final score (:func:`ensemble_rules`, :func:`aulib.select.recipes.fit_system`).

Chosen ensembles (:func:`choose_ensemble_epochs`): the paper's "chosen" step
inside an ensemble picks, per AU, the members' epochs *for the ensemble*: a
combination of the members' candidate epochs (each member's ``top_k`` best by
its own score) is refitted and scored by the ensemble's own final score at
0.5. Every combination is tried where that is cheap (top_k^R refits per AU,
under a budget of row-fits); otherwise coordinate ascent (one member at a
time, about rounds x R x top_k refits). Above ``SCREEN_ABOVE`` rows
(Aff-Wild2's B) that search scores the combinations on a seeded, weighted
sample of the rows and only the few best are refitted and scored on every
row. Either way the combination of the unchosen ensemble is tried first (on
every row) and is left only for a strictly better one, so in-sample the
choice cannot lose to it.

Cross-fitting: B's rows are split into ``folds`` folds *by group* (the image:
B's degraded copies of one image share a fold); the ensemble scored on a fold
is fitted on the other folds only, so the returned B probabilities are
out-of-fold. The final ensemble is fitted on all of B, for held-out and new data.

An AU whose (training) labels have fewer than ``min_count`` positives or
negatives cannot be fitted; it falls back to the mean of the runs' logits
(``coef = 1/R``, ``intercept = 0``), which is the run itself for one run.
Those AUs are listed in ``LinearEnsemble.fallback`` and a warning names them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..metrics import batched_scores, scores_from_counts
from .folds import group_folds

EPS = 1e-4


def _logit(p, eps: float = EPS) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _stack(probs_list, n_rows: int | None = None) -> np.ndarray:
    """list of R arrays (N, C) -> (R, N, C) float64, shapes checked."""
    if len(probs_list) == 0:
        raise ValueError("the ensemble needs the probabilities of at least one run")
    arrs = [np.asarray(p) for p in probs_list]
    shape = arrs[0].shape
    for i, a in enumerate(arrs):
        if a.ndim != 2 or a.shape != shape:
            raise ValueError(f"run {i} probabilities have shape {a.shape}; every run must give the same (N, C) "
                             f"as run 0 {shape} (same split index, same AUs)")
    if n_rows is not None and shape[0] != n_rows:
        raise ValueError(f"probabilities have {shape[0]} rows but labels have {n_rows}")
    return np.stack(arrs).astype(np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, C: float = 1.0,
                 max_iter: int = 100, tol: float = 1e-10, start: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Batched L2 logistic regression by damped Newton steps.

    x (P, N, D) features, y (P, N) 0/1 targets, weight (P, N) >= 0 row
    weights (0 drops a row). Minimises ``0.5 |w|^2 + C * sum_i weight_i *
    logloss_i`` per problem ``p`` (intercept not penalised), i.e.
    scikit-learn's ``LogisticRegression(C=C)``. ``start`` (P, D+1): initial
    (coef, intercept) (default 0; the optimum is unique, a start near it
    saves Newton steps). Returns ``coef`` (P, D) and ``intercept`` (P,).
    """
    x = np.asarray(x, dtype=np.float64)
    xa = np.concatenate([np.swapaxes(x, 1, 2), np.ones((x.shape[0], 1, x.shape[1]))], axis=1)   # (P, D+1, N)
    return _newton(xa, y, weight, C, max_iter, tol, start)


def _newton(xa: np.ndarray, y, weight, C: float, max_iter: int = 100, tol: float = 1e-10, start=None):
    """:func:`fit_logistic` on features laid out (P, D+1, N), the last
    feature the constant 1 (each feature's rows contiguous). A problem stops
    after a full Newton step below ``sqrt(tol)`` (Newton converges
    quadratically: the error left is about its square); one exponential per
    row and step gives the loss and the probabilities."""
    p_count, d1, _ = xa.shape
    d = d1 - 1
    y = np.asarray(y, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64) * C
    penalty = np.r_[np.ones(d), 1e-10]                                       # intercept ~unpenalised
    theta = np.zeros((p_count, d1)) if start is None else np.array(start, dtype=np.float64)
    out = theta.copy()
    live = np.arange(p_count)                                                # problems still iterating

    def state(th, xa, y, w):                                                 # z (P, N), exp(-|z|), objective
        z = np.matmul(th[:, None, :], xa)[:, 0]
        e = np.exp(-np.abs(z))
        loss = np.maximum(z, 0.0) + np.log1p(e) - y * z
        return z, e, np.einsum("pn,pn->p", w, loss) + 0.5 * (th[:, :d] ** 2).sum(-1)

    z, e, current = state(theta, xa, y, weight)
    for _ in range(max_iter):
        p = np.where(z >= 0, 1.0, e) / (1.0 + e)
        grad = np.matmul(xa, (weight * (p - y))[..., None])[..., 0] + theta * penalty
        xs = xa * (weight * p * (1.0 - p))[:, None, :]
        hess = np.matmul(xs, np.swapaxes(xa, 1, 2)) + np.diag(penalty)
        del xs, p
        delta = np.linalg.solve(hess, grad[..., None])[..., 0]
        step = np.ones(len(live))
        pending = np.ones(len(live), bool)
        for _half in range(30):                       # backtrack only where the full step does not descend
            cand = theta - step[:, None] * delta
            zc, ec, obj = state(cand, xa, y, weight)
            ok = pending & (obj <= current + 1e-12 * np.abs(current))
            theta[ok], current[ok], z[ok], e[ok] = cand[ok], obj[ok], zc[ok], ec[ok]
            pending &= ~ok
            if not pending.any():
                break
            step[pending] *= 0.5
        done = (np.abs(delta).max(1) < np.sqrt(tol)) & (step == 1.0) & ~pending
        out[live] = theta
        if done.all():
            break
        if done.any():                                # drop converged problems (one copy of the rest)
            keep = ~done
            live, theta, current, z, e = live[keep], theta[keep], current[keep], z[keep], e[keep]
            xa, y, weight = xa[keep], y[keep], weight[keep]
    return out[:, :d], out[:, d]


@dataclass
class LinearEnsemble:
    """Per-AU linear combination of runs' logits (see module docstring).

    ``coef`` (C, R), ``intercept`` (C,); ``aus`` the C AU numbers; ``runs``
    the R run names in feature order; ``fallback`` AUs that use the mean of
    the runs' logits because B had too few positives/negatives;
    ``neg_weight`` the fitting rule (module docstring; None: plain log-loss).
    For a chosen model, ``epochs`` (C, R) int names the checkpoint of run r
    used for AU c and ``multicrop`` whether the runs' inputs are multi-crop averages.
    """

    coef: np.ndarray
    intercept: np.ndarray
    aus: tuple[int, ...] = ()
    runs: tuple[str, ...] = ()
    fallback: tuple[int, ...] = field(default_factory=tuple)
    eps: float = EPS
    epochs: np.ndarray | None = None
    multicrop: bool = False
    neg_weight: float | None = None

    def predict(self, probs_list) -> np.ndarray:
        """Ensemble probabilities (N, C) float32 from R runs' (N, C) arrays,
        given in the order of ``runs``."""
        x = _logit(_stack(probs_list), self.eps)                             # (R, N, C)
        if x.shape[0] != self.coef.shape[1] or x.shape[2] != self.coef.shape[0]:
            raise ValueError(f"the ensemble combines {self.coef.shape[1]} runs over {self.coef.shape[0]} AUs; "
                             f"got {x.shape[0]} runs over {x.shape[2]} AUs")
        return _combine(x, self.coef, self.intercept)

    def to_dict(self) -> dict:
        """Plain lists for the chosen model's ``ensemble`` entry."""
        return {"runs": list(self.runs), "aus": [int(a) for a in self.aus],
                "coef": [[float(v) for v in row] for row in np.asarray(self.coef)],
                "intercept": [float(v) for v in np.asarray(self.intercept)],
                "fallback": [int(a) for a in self.fallback], "features": "logit", "eps": float(self.eps),
                "epochs": None if self.epochs is None else np.asarray(self.epochs, dtype=int).tolist(),
                "multicrop": bool(self.multicrop),
                "neg_weight": None if self.neg_weight is None else float(self.neg_weight)}

    @classmethod
    def from_dict(cls, d: dict) -> "LinearEnsemble":
        """Inverse of :meth:`to_dict` (clear error on a malformed entry)."""
        try:
            coef = np.asarray(d["coef"], dtype=np.float64)
            intercept = np.asarray(d["intercept"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"ensemble entry needs 'coef' (C x R) and 'intercept' (C) lists of numbers: {err}") \
                from None
        if coef.ndim != 2 or intercept.shape != (coef.shape[0],):
            raise ValueError(f"ensemble entry: coef must be C x R and intercept C; got {coef.shape} and "
                             f"{intercept.shape}")
        runs = tuple(d.get("runs") or ())
        if runs and len(runs) != coef.shape[1]:
            raise ValueError(f"ensemble entry names {len(runs)} runs but coef has {coef.shape[1]} columns")
        if d.get("features", "logit") != "logit":
            raise ValueError(f"ensemble entry has features {d.get('features')!r}; only 'logit' is known")
        epochs = d.get("epochs")
        if epochs is not None:
            epochs = np.asarray(epochs, dtype=np.int64)
            if epochs.shape != coef.shape:
                raise ValueError(f"ensemble entry: epochs must be C x R like coef {coef.shape}, got {epochs.shape}")
        return cls(coef, intercept, tuple(int(a) for a in d.get("aus") or ()), runs,
                   tuple(int(a) for a in d.get("fallback") or ()), float(d.get("eps", EPS)), epochs,
                   bool(d.get("multicrop", False)),
                   None if d.get("neg_weight") is None else float(d["neg_weight"]))


def _combine(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Logits x (R, N, C) -> ensemble probabilities (N, C) float32."""
    return _sigmoid(np.einsum("rnc,cr->nc", x, coef) + intercept).astype(np.float32)


def members_neg_weight(configs) -> float | None:
    """The fitting rule of an ensemble of runs with these ``config.yaml``
    dicts: their ``alpha`` when they were trained with batch balancing, None
    (plain log-loss) when balancing was ablated. Members must agree."""
    rules = {None if "balance" in (c.get("ablate") or []) or c.get("no_balance") or c.get("use_balance") is False
             else float(c.get("alpha", 0.2)) for c in configs}
    if len(rules) > 1:
        raise ValueError(f"ensemble members were trained with different batch balancing ({sorted(map(str, rules))}); "
                         "ensemble runs trained under one rule")
    return rules.pop() if rules else None


def ensemble_rules(configs) -> tuple[float | None, ...]:
    """The fitting rules an ensemble of runs (their ``config.yaml`` dicts) is
    chosen among: the members' balancing rule (:func:`members_neg_weight`)
    first, then plain log-loss (None); one rule when they are the same."""
    return tuple(dict.fromkeys([members_neg_weight(configs), None]))


def fit_weights(labels: np.ndarray, rows: np.ndarray, neg_weight: float | None) -> np.ndarray:
    """Row weights (N, C) of the fit: 0 for unknown labels and rows outside
    ``rows`` (bool (N,)); per AU, ``neg_weight`` on the negatives where
    ``neg_weight * n_neg > n_pos`` among the fitting rows (the members'
    balancing rule), else 1."""
    known = (labels >= 0) & rows[:, None]
    w = known.astype(np.float64)
    if neg_weight is not None:
        neg = (labels == 0) & known
        balanced = neg_weight * neg.sum(0) > ((labels == 1) & known).sum(0)        # (C,)
        w[neg & balanced[None, :]] = neg_weight
    return w


def _too_few(labels: np.ndarray, rows: np.ndarray, min_count: int) -> np.ndarray:
    """(C,) bool: AUs with fewer than ``min_count`` known positives or negatives among ``rows`` (bool (N,))."""
    known = (labels >= 0) & rows[:, None]
    return (((labels == 1) & known).sum(0) < min_count) | (((labels == 0) & known).sum(0) < min_count)


def _fit_problems(x: np.ndarray, y: np.ndarray, w: np.ndarray, fallback: np.ndarray, C: float, start=None):
    """Fit P problems x (P, N, R), 0/1 y (P, N), weights w (P, N); a
    ``fallback`` (P,) problem takes the mean of the logits. ``start`` (P, R+1)
    or None: :func:`fit_logistic`'s. Returns coef (P, R), intercept (P,)."""
    coef = np.full((x.shape[0], x.shape[2]), 1.0 / x.shape[2])
    intercept = np.zeros(x.shape[0])
    fit = np.flatnonzero(~fallback)
    if fit.size:
        coef[fit], intercept[fit] = fit_logistic(x[fit], y[fit], w[fit], C=C,
                                                 start=None if start is None else start[fit])
    return coef, intercept


def _fit_masked(x: np.ndarray, labels: np.ndarray, rows: np.ndarray, C: float, min_count: int,
                neg_weight: float | None = None):
    """Fit every AU on ``rows`` (bool (N,)); x (R, N, C). Returns coef (C, R),
    intercept (C,), fallback bool (C,)."""
    fallback = _too_few(labels, rows, min_count)
    coef, intercept = _fit_problems(np.moveaxis(x, (0, 2), (2, 0)), (labels == 1).T,
                                    fit_weights(labels, rows, neg_weight).T, fallback, C)
    return coef, intercept, fallback


def _candidate_epochs(probs: np.ndarray, labels: np.ndarray, first: int, top_k: int | None) -> np.ndarray:
    """Per AU, the epoch indices (C, k) of one run's candidates: every epoch,
    or its ``top_k`` best by its own per-AU final score at 0.5; ``first``
    (the unchosen ensemble's epoch) always first."""
    e_count, c_count = probs.shape[0], labels.shape[1]
    if top_k is None or e_count <= top_k:
        order = np.tile(np.arange(e_count), (c_count, 1))
    else:
        final = np.nan_to_num(batched_scores(labels, probs)["final"], nan=-1.0)     # (E, C)
        order = np.argsort(-final, axis=0, kind="stable")[:top_k].T                  # (C, k)
        order = np.where((order == first).any(1, keepdims=True), order,
                         np.concatenate([order[:, :-1], np.full((c_count, 1), first)], 1))
    rest = np.sort(np.where(order == first, -1, order), axis=1)[:, 1:]              # first taken out
    return np.concatenate([np.full((c_count, 1), first), rest], axis=1)


#: Candidate epochs per member and AU of a chosen ensemble (each member's best by its own score, the
#: unchosen epoch always among them): 10 keeps every combination of the demo's <= 10-epoch runs.
TOP_K = 10
#: The exhaustive search runs where one AU's combinations times the fitting rows stay within this many
#: row-fits and the combinations are at most 5 x the members' candidates (about two coordinate ascents):
#: 2 members x 10 epochs x 10,000 rows: exhaustive; 3 or more members, or 780k rows: coordinate ascent.
EXHAUSTIVE_BUDGET = 2_000_000
SEARCHES = ("auto", "exhaustive", "ascent")
#: Above this many fitting rows (Aff-Wild2's B: 520k-780k; a BP4D fold's 39k is below) the search screens
#: the combinations on a seeded sample of about SCREEN_ROWS rows (:func:`screen_rows`) and refits exactly on
#: every row only the unchosen combination and each AU's SCREEN_TOP best (:func:`_refit_screened`).
SCREEN_ABOVE = 200_000
SCREEN_ROWS = 50_000
SCREEN_TOP = 3
#: A sampled AU keeps about this many of its positives (all of them where it has fewer).
SCREEN_MIN_POS = 1_000


_F16_LOGITS: list[np.ndarray] = []


def _logit_at(probs: np.ndarray, epochs: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """(k, N) float64 logits of ``probs`` (E, N, C) at (epochs[i], :, aus[i]);
    float16 probabilities (as runs store them) by a table of every float16's logit."""
    g = np.asarray(probs)[epochs, :, aus]
    if g.dtype != np.float16:
        return _logit(g)
    if not _F16_LOGITS:
        with np.errstate(invalid="ignore"):
            _F16_LOGITS.append(_logit(np.arange(1 << 16, dtype=np.uint16).view(np.float16)))
    return _F16_LOGITS[0][g.view(np.uint16)]


def _problem_bytes(n: int, r_count: int) -> int:
    """Bytes one refit of ``r_count`` members on ``n`` rows holds at once (features, Newton temporaries)."""
    return n * 8 * (2 * (r_count + 1) + 12)


class _ComboScorer:
    """Refits and scores combinations of the members' epochs, chunked so
    about ``chunk_bytes`` are held at once (never less than one refit).

    ``probs_runs`` R arrays (E_r, N, C); ``labels`` (N, C). ``rows`` (M,)
    and ``row_weight`` (M,): score on those rows only, each weighing
    ``row_weight`` in the fit and in the counts (a sample standing for all
    rows, :func:`screen_rows`); the fitting rule and the fallback AUs are
    still decided on all rows. ``seen``: a list to record every scored
    problem in, as (au, ep, final, coef, intercept) arrays, or None."""

    def __init__(self, probs_runs, labels, C, neg_weight, min_count, chunk_bytes, rows=None, row_weight=None):
        n = labels.shape[0]
        w = fit_weights(labels, np.ones(n, bool), neg_weight)                             # (N, C)
        self.fallback = _too_few(labels, np.ones(n, bool), min_count)                      # (C,)
        self.rw = None
        if rows is not None:
            probs_runs = [np.asarray(p)[:, rows] for p in probs_runs]
            labels, self.rw = labels[rows], np.asarray(row_weight, np.float64)
            w = w[rows] * self.rw[:, None]
        self.probs, self.labels, self.C, self.w = probs_runs, labels, C, w
        self.pos, self.neg = labels == 1, labels == 0
        self.step = max(1, int(chunk_bytes // _problem_bytes(labels.shape[0], len(probs_runs))))
        self.fits = 0
        self.seen: list | None = None

    def _count(self, m: np.ndarray) -> np.ndarray:
        """(k, N) bool -> (k,) count of true rows (weighted by ``row_weight``)."""
        return m.sum(-1) if self.rw is None else m @ self.rw

    def __call__(self, au: np.ndarray, ep: np.ndarray, start: np.ndarray | None = None):
        """Problems ``au`` (P,) AU index, ``ep`` (P, R) epoch index per member;
        ``start`` (P, R + 1) a warm start (coef, intercept) or None. Returns
        final score at 0.5 (P,) (NaN: no known labels), coef (P, R), intercept (P,)."""
        p_count, r_count = ep.shape
        final, coef, intercept = np.empty(p_count), np.empty((p_count, r_count)), np.empty(p_count)
        for s in range(0, p_count, self.step):
            a, e = au[s:s + self.step], ep[s:s + self.step]
            x = np.ones((len(a), r_count + 1, self.labels.shape[0]))                       # (k, R+1, N)
            for r in range(r_count):
                x[:, r] = _logit_at(self.probs[r], e[:, r], a)
            cf, b = np.full((len(a), r_count), 1.0 / r_count), np.zeros(len(a))
            fit = np.flatnonzero(~self.fallback[a])
            if fit.size:
                whole = fit.size == len(a)
                cf[fit], b[fit] = _newton(x if whole else x[fit], self.pos[:, a[fit]].T, self.w[:, a[fit]].T, self.C,
                                          start=None if start is None else start[s:s + self.step][fit])
            z = np.matmul(np.concatenate([cf, b[:, None]], 1)[:, None, :], x)[:, 0]
            d = _sigmoid(z).astype(np.float32) >= 0.5                                       # as decide() on predict()
            pos, neg = self.pos[:, a].T, self.neg[:, a].T
            tp, fp = self._count(d & pos), self._count(d & neg)
            final[s:s + self.step] = scores_from_counts(tp, fp, self._count(pos) - tp, self._count(neg) - fp)[2]
            coef[s:s + self.step], intercept[s:s + self.step] = cf, b
            self.fits += len(a)
        if self.seen is not None:
            self.seen.append((au, ep, final, coef, intercept))
        return final, coef, intercept


def _exhaustive(score: _ComboScorer, cands: list[np.ndarray]):
    """Every combination of the candidates (cands[r] (C, k_r)) per AU, in
    order with the all-first combination first; the first best wins. Returns
    the chosen candidate positions (C, R), coef (C, R), intercept (C,)."""
    c_count, r_count = cands[0].shape[0], len(cands)
    sizes = [c.shape[1] for c in cands]
    j_count = int(np.prod(sizes))
    best = np.full(c_count, -np.inf)
    pos, coef, intercept = np.zeros((c_count, r_count), np.int64), np.empty((c_count, r_count)), np.empty(c_count)
    block = max(1, score.step // c_count)
    for j0 in range(0, j_count, block):                                    # chunks of combinations, all AUs
        combos = np.stack(np.unravel_index(np.arange(j0, min(j_count, j0 + block)), sizes), axis=1)  # (J, R)
        jn = len(combos)
        au = np.repeat(np.arange(c_count), jn)
        ep = np.stack([cands[r][au, np.tile(combos[:, r], c_count)] for r in range(r_count)], axis=1)
        final, cf, b = score(au, ep)
        final = np.nan_to_num(final, nan=-np.inf).reshape(c_count, jn)
        j = np.argmax(final, axis=1)                                       # first on ties
        better = (final[np.arange(c_count), j] > best) | (j0 == 0)
        k = np.flatnonzero(better) * jn + j[better]
        best[better] = final[better, j[better]]
        pos[better], coef[better], intercept[better] = combos[j[better]], cf[k], b[k]
    return pos, coef, intercept


def _ascent(score: _ComboScorer, cands: list[np.ndarray], start: np.ndarray, aus: np.ndarray,
            max_rounds: int = 20):
    """Coordinate ascent per AU from the combination at candidate positions
    ``start`` (A, R) of AUs ``aus`` (A,) (``cands[r]`` (A, k_r) their rows):
    member by member, refit every candidate epoch of that member with the
    others held, move only on a strict gain (the first best among gains),
    until no member moves for a whole round (or ``max_rounds``). Vectorised
    over the AUs still moving; a refit starts from the current combination's
    weights. Returns candidate positions (A, R), coef (A, R), intercept (A,),
    final score (A,)."""
    c_count, r_count = cands[0].shape[0], len(cands)
    rows = np.arange(c_count)
    pos = np.array(start, np.int64)
    best, coef, intercept = score(aus, np.stack([cands[r][rows, pos[:, r]] for r in range(r_count)], axis=1))
    best = np.nan_to_num(best, nan=-np.inf)
    still = np.zeros(c_count, np.int64)                  # members tried in a row without a move
    for step in range(max_rounds * r_count):
        r = step % r_count
        act = np.flatnonzero(still < r_count)
        if not act.size:
            break
        k = cands[r].shape[1]
        alt = np.tile(np.arange(k), act.size)                                    # (A * k,)
        au = np.repeat(act, k)
        moved = alt != pos[au, r]                                               # the current one is known
        au, alt = au[moved], alt[moved]
        ep = np.stack([cands[q][au, pos[au, q]] for q in range(r_count)], axis=1)
        ep[:, r] = cands[r][au, alt]
        final, cf, b = score(aus[au], ep, np.concatenate([coef[au], intercept[au, None]], axis=1))
        final = np.nan_to_num(final, nan=-np.inf)
        grid = np.full((c_count, k), -np.inf)
        grid[au, alt] = final
        j = np.argmax(grid[act], axis=1)                                         # first best
        gain = grid[act, j] > best[act]
        still[act] += 1
        for c, jj in zip(act[gain], j[gain]):
            i = np.flatnonzero((au == c) & (alt == jj))[0]
            pos[c, r], best[c], coef[c], intercept[c], still[c] = jj, final[i], cf[i], b[i], 1
    return pos, coef, intercept, best


def _two_ascents(score: _ComboScorer, cands: list[np.ndarray], own: np.ndarray):
    """Coordinate ascent from the unchosen combination (positions 0), then,
    for the AUs where it did not end at ``own`` (A, R) (each member's own best
    epoch), from ``own``; the second result replaces the first only where it
    scores strictly higher. Returns positions (C, R), coef (C, R), intercept (C,)."""
    c_count = cands[0].shape[0]
    aus = np.arange(c_count)
    pos, coef, intercept, best = _ascent(score, cands, np.zeros_like(own), aus)
    redo = np.flatnonzero((own != pos).any(1) & (own != 0).any(1))
    if redo.size:
        p2, c2, b2, best2 = _ascent(score, [c[redo] for c in cands], own[redo], redo)
        win = best2 > best[redo]
        pos[redo[win]], coef[redo[win]], intercept[redo[win]] = p2[win], c2[win], b2[win]
    return pos, coef, intercept


def screen_rows(labels: np.ndarray, rows: int = SCREEN_ROWS, seed: int = 0, min_pos: int = SCREEN_MIN_POS
                ) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of about ``rows`` of the N rows of ``labels`` (N, C),
    stratified so each AU keeps about ``min_pos`` positives (all where it has
    fewer): a row is taken with probability ``rows / N``, raised for the
    positives of an AU rarer than that to ``min_pos / n_pos``. Returns the
    taken rows (M,) sorted and their weights (M,) = 1 / probability, so that
    weighted counts and losses estimate those of all rows."""
    n = labels.shape[0]
    pos = labels == 1
    want = np.minimum(1.0, min_pos / np.maximum(pos.sum(0), 1))                    # (C,)
    p = np.maximum(min(1.0, rows / n), (pos * want).max(1, initial=0.0))               # (N,)
    take = np.flatnonzero(np.random.default_rng(seed).random(n) < p)
    return take, 1.0 / p[take]


def _refit_screened(score: _ComboScorer, seen: list, unchosen: np.ndarray, top: int = SCREEN_TOP):
    """Exact refits, on ``score``'s rows, of each AU's unchosen combination
    (epoch indices ``unchosen`` (C, R)) and its ``top`` best distinct
    combinations among the screened ``seen`` (:class:`_ComboScorer` records;
    each warm-started from its screened weights). Per AU the unchosen one is
    left only for a strictly better one (the first best, in screened order).
    Returns epoch indices (C, R), coef (C, R), intercept (C,)."""
    au, ep, fin, cf, b = (np.concatenate(parts) for parts in zip(*seen))
    fin = np.nan_to_num(fin, nan=-np.inf)
    c_count, r_count = unchosen.shape
    is_unchosen = (ep == unchosen[au]).all(1)
    # per AU: the unchosen combination first, then by screened score (best first), first seen first
    order = np.lexsort((np.arange(len(au)), -fin, ~is_unchosen, au))
    key = np.column_stack([au, ep])[order]
    _, first = np.unique(key, axis=0, return_index=True)                            # each distinct (AU, combo)
    keep = order[np.sort(first)]                                                    # in the order above
    rank = np.arange(len(keep)) - np.searchsorted(au[keep], au[keep])               # position within its AU
    keep = keep[rank <= top]                                                        # the unchosen + top best
    final, coef, intercept = score(au[keep], ep[keep], np.concatenate([cf[keep], b[keep, None]], 1))
    final = np.nan_to_num(final, nan=-np.inf)
    out_ep, out_cf, out_b = unchosen.copy(), np.full((c_count, r_count), 1.0 / r_count), np.zeros(c_count)
    best, taken = np.full(c_count, -np.inf), np.zeros(c_count, bool)
    for i, k in enumerate(keep):                                                    # few per AU, in order
        c = au[k]
        if not taken[c] or final[i] > best[c]:
            taken[c], best[c], out_ep[c], out_cf[c], out_b[c] = True, final[i], ep[k], coef[i], intercept[i]
    return out_ep, out_cf, out_b


def choose_ensemble_epochs(probs_runs, labels, first, C: float = 1.0, neg_weight: float | None = None,
                           min_count: int = 5, top_k: int | None = TOP_K, chunk_bytes: int = 256 << 20,
                           search: str = "auto", budget: int = EXHAUSTIVE_BUDGET,
                           screen_above: int | None = SCREEN_ABOVE, screen_sample: int = SCREEN_ROWS, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The paper's "chosen" step for an ensemble, chosen for the ensemble.

    ``probs_runs``: R arrays (E_r, N, C), every epoch of each member on the
    fitting rows; ``labels`` (N, C) 1/0/-1; ``first`` (R,) the epoch index of
    each member in the unchosen ensemble. Per AU, combinations of the
    members' candidate epochs (each member's ``top_k`` by its own score, the
    unchosen one first; None: all; :func:`_candidate_epochs`) are refitted by
    the ensemble's rule and scored by its final score at 0.5 on these rows;
    the unchosen combination is tried first and is left only for a strictly
    better one, so in-sample the choice cannot lose to it. ``search``:
    ``exhaustive`` (every combination: top_k^R refits per AU), ``ascent``
    (coordinate ascent from the unchosen combination and from each member's
    own best, :func:`_two_ascents`: about rounds x R x top_k refits), or
    ``auto``: exhaustive where combinations x N <= ``budget`` and the
    combinations are at most 5 x the members' candidates, else ascent.
    Above ``screen_above`` rows (None: never) that search runs on a seeded
    sample of about ``screen_sample`` rows (:func:`screen_rows`, ``seed``; N is then the
    sample's size) and only each AU's unchosen and ``SCREEN_TOP`` best
    combinations are refitted and scored on every row
    (:func:`_refit_screened`): the in-sample guarantee holds, the optimum
    may be missed (``docs/decisions.md``, *Chosen*).
    Memory: about ``chunk_bytes`` of refits at once (at least one refit,
    :func:`_problem_bytes`), chunked over AUs and combinations. Returns
    ``epoch_idx`` (C, R), ``coef`` (C, R), ``intercept`` (C,), ``fallback`` (C,) bool.
    """
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    labels = np.asarray(labels)
    n, c_count = labels.shape
    cands = [_candidate_epochs(np.asarray(p), labels, int(f), top_k) for p, f in zip(probs_runs, first)]
    full = _ComboScorer(probs_runs, labels, C, neg_weight, min_count, chunk_bytes)
    screened = screen_above is not None and n > screen_above
    if screened:
        sample = screen_rows(labels, screen_sample, seed)
        score = _ComboScorer(probs_runs, labels, C, neg_weight, min_count, chunk_bytes, *sample)
        score.seen, n = [], score.labels.shape[0]
    else:
        score = full
    combos = int(np.prod([c.shape[1] for c in cands]))
    small = combos * n <= budget and combos <= 5 * sum(c.shape[1] for c in cands)
    exhaustive = search == "exhaustive" or (search == "auto" and small)
    if exhaustive:
        pos, coef, intercept = _exhaustive(score, cands)
    else:
        own = np.stack([np.argmax(c == np.argmax(np.nan_to_num(batched_scores(labels, p)["final"], nan=-1.0),
                                                  axis=0)[:, None], axis=1) for c, p in zip(cands, probs_runs)], 1)
        pos, coef, intercept = _two_ascents(score, cands, own)
    out_idx = np.stack([cands[r][np.arange(c_count), pos[:, r]] for r in range(len(cands))], axis=1)
    if screened:
        out_idx, coef, intercept = _refit_screened(full, score.seen, np.stack([c[:, 0] for c in cands], axis=1))
    return out_idx, coef, intercept, full.fallback


def fit_linear_ensemble(probs_list, labels, groups=None, folds: int | None = 5, C: float = 1.0,
                        aus=None, runs=None, seed: int = 0, min_count: int = 5, neg_weight: float | None = None
                        ) -> tuple[LinearEnsemble, np.ndarray | None]:
    """Fit the per-AU linear ensemble on B with cross-fitting.

    ``probs_list``: R arrays (N, C) (one per run, same rows); ``labels`` (N, C)
    1/0/-1 (unknown rows are ignored); ``groups`` (N,) the image of each row
    (None: every row its own group); ``folds`` >= 2; ``C`` inverse L2
    strength; ``neg_weight`` the fitting rule (module docstring). Returns
    ``(ensemble fitted on all rows, oof_probs (N, C))``
    where row i of ``oof_probs`` comes from the ensemble fitted without
    row i's fold; ``folds`` None: no cross-fitting, ``oof_probs`` None.
    """
    labels = np.asarray(labels)
    x = _logit(_stack(probs_list, labels.shape[0] if labels.ndim == 2 else None))
    if labels.shape != x.shape[1:]:
        raise ValueError(f"labels have shape {labels.shape} but the runs' probabilities are {x.shape[1:]}")
    n, c_count = labels.shape
    aus = tuple(int(a) for a in aus) if aus is not None else tuple(range(c_count))
    runs = tuple(str(r) for r in runs) if runs is not None else tuple(f"run{i}" for i in range(x.shape[0]))
    if len(aus) != c_count or len(runs) != x.shape[0]:
        raise ValueError(f"{len(aus)} AUs and {len(runs)} run names given for {c_count} AUs and {x.shape[0]} runs")
    if folds is not None and groups is not None and len(np.unique(groups)) < 2:    # rows of one subject
        warnings.warn("linear ensemble: its rows hold one subject, so its out-of-fold fits keep rows, not "
                      "subjects, apart", stacklevel=2)
        groups = None
    fold = np.zeros(0) if folds is None else group_folds(np.arange(n) if groups is None else groups, folds, seed)
    oof = None if folds is None else np.empty((n, c_count), np.float32)
    for f in np.unique(fold):
        test = fold == f
        coef, intercept, _ = _fit_masked(x, labels, ~test, C, min_count, neg_weight)
        oof[test] = _combine(x[:, test], coef, intercept)
    coef, intercept, fallback = _fit_masked(x, labels, np.ones(n, bool), C, min_count, neg_weight)
    fb = tuple(a for a, f_ in zip(aus, fallback) if f_)
    if fb:
        warnings.warn(f"linear ensemble: AUs {list(fb)} have fewer than {min_count} positive or negative labels "
                      "in B; they use the mean of the runs' logits instead of a fitted combination", stacklevel=2)
    return LinearEnsemble(coef, intercept, aus, runs, fb, neg_weight=neg_weight), oof
