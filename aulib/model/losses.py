"""Losses of the multi-view co-regularised AU model (paper, Sec. 2.2-2.3).

L = BCE(view 1) + BCE(view 2) + w_mv * L_mv + w_cr * L_cr

- BCE: per-view binary cross-entropy over the kept (balanced, known) labels.
- L_mv (:func:`multiview_loss`): mean over AUs of the cosine between the two
  views' classifier vectors ``W = [w, b]``.
- L_cr (:func:`coreg_loss`): mean per-AU Jensen-Shannon divergence between
  the two views' Bernoulli predictions.
- Batch balancing (:func:`balance_mask`): the paper's alpha rule.

The terms added to the BCE come from one table, :data:`TERMS` (name,
function, weight key, ablation switch), built from the torch-free
:data:`aulib.model.loss_terms.TERMS` (names, weight keys, default weights)
and :data:`FUNCTIONS` here: a new term is one row there and its function here.

Default weights ``w_mv = w_cr = 1`` (:mod:`aulib.model.loss_terms`; chosen by
the loss-weight study, ``python -m aulib.train.study``, table
``results/tables/loss_weights.md``).
The paper gives none. Normalisations differ, so weights do not carry over
as numbers:

- MLCR (Niu et al., NeurIPS'19, released ``main.py`` and ``loss/``) minimises
  ``(BCE1 + BCE2) / 2 + 400 L_mv + 100 L_cr`` where each view's BCE is
  *summed* over its kept labels and divided by the batch size B (a per-image
  sum over AUs). Its L_mv (mean |cos|) and L_cr (per-entry mean JS) are
  averaged as here. (Its ``main.py`` sets ``use_web = 0``, which zeroes L_cr.)
- aulib minimises ``BCE1 + BCE2 + w_mv L_mv + w_cr L_cr`` where each BCE is
  the *mean* over the K kept labels (:func:`masked_bce`).

With ``c = K / B`` the kept labels per image (:func:`aulib.train.study.effective_labels`:
at most C, fewer with unknown labels and batch balancing), MLCR's loss is
``c / 2`` times aulib's with ``w_mv = 2 * 400 / c`` and ``w_cr = 2 * 100 / c``
(:func:`aulib.train.study.mlcr_weights`; the 2 is MLCR's mean over the two
views). AdamW is blind to the overall factor, so those are MLCR's weights in
aulib's units. Typing 400/100 here instead weights the regularisers
``c / 2`` times more than MLCR does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import loss_terms
from .loss_terms import BALANCE, ablation_names

LOG2 = math.log(2.0)


def multiview_loss(w1: torch.Tensor, w2: torch.Tensor, absolute: bool = True) -> torch.Tensor:
    """L_mv: mean over AUs of the cosine between rows of W1 and W2, each (C, D + 1) = [w | b].

    ``absolute=True`` (default) averages |cos|, as the released MLCR code does:
    the paper's text says the loss *orthogonalises* the two views' classifiers,
    which |cos| -> 0 achieves. ``absolute=False`` is the paper's formula as
    printed (signed cos, minimised at -1: anti-parallel classifiers).
    """
    if w1.shape != w2.shape or w1.ndim != 2:
        raise ValueError(f"classifier matrices must both be (C, D+1); got {tuple(w1.shape)} and {tuple(w2.shape)}")
    cos = F.cosine_similarity(w1.float(), w2.float(), dim=1, eps=1e-8)
    return cos.abs().mean() if absolute else cos.mean()


def _bernoulli_kl(log_p: torch.Tensor, log_q: torch.Tensor, log_1mp: torch.Tensor,
                  log_1mq: torch.Tensor) -> torch.Tensor:
    """KL(Bern(p) || Bern(q)) from log-probabilities; 0 * finite terms stay 0."""
    return log_p.exp() * (log_p - log_q) + log_1mp.exp() * (log_1mp - log_1mq)


def coreg_loss(logits1: torch.Tensor, logits2: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_cr: Jensen-Shannon divergence per AU between Bern(p1) and Bern(p2),
    ``H((p1+p2)/2) - (H(p1) + H(p2))/2``, averaged over the entries (all, or
    those where ``mask`` (B, C) is True). In nats, within [0, log 2].

    Computed from logits (B, C) as ``(KL(p1||m) + KL(p2||m)) / 2`` (the same
    quantity) with log-sigmoids, so it is finite for any finite logit (tested
    to |logit| = 1e4) and never negative.
    """
    z1, z2 = logits1.float(), logits2.float()
    lp1, lp2 = F.logsigmoid(z1), F.logsigmoid(z2)
    lq1, lq2 = F.logsigmoid(-z1), F.logsigmoid(-z2)
    log_m = torch.logaddexp(lp1, lp2) - LOG2
    log_1mm = torch.logaddexp(lq1, lq2) - LOG2
    js = 0.5 * (_bernoulli_kl(lp1, log_m, lq1, log_1mm) + _bernoulli_kl(lp2, log_m, lq2, log_1mm))
    js = js.clamp(min=0.0)
    if mask is None:
        return js.mean()
    mask = mask.to(js.dtype)
    return (js * mask).sum() / mask.sum().clamp(min=1.0)


def balance_mask(labels: torch.Tensor, alpha: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Entries of a batch that enter the BCE under the paper's batch balancing.

    labels: int (B, C), 1 / 0 / -1 unknown. Per AU, over its known labels: if
    ``alpha * neg > pos``, keep a random ``ceil(alpha * neg)`` of the negatives;
    otherwise keep all. Positives are always kept, unknowns never. (Batch 100,
    90 negatives, 10 positives, alpha 0.2 -> 18 negatives kept.)
    Returns bool (B, C). Vectorised: one random key per entry (from
    ``generator``, drawn on its device), negatives ranked by key per AU.
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must be (B, C), got shape {tuple(labels.shape)}")
    pos, neg = labels == 1, labels == 0
    n_pos = pos.sum(0)
    n_neg = neg.sum(0).to(torch.float64)
    # ceil of alpha * neg with a tolerance, so that 0.1 * 30 gives 3 and not 4
    limited = alpha * n_neg > n_pos + 1e-9
    k = torch.where(limited, torch.ceil(alpha * n_neg - 1e-9), n_neg).to(torch.long)
    device = generator.device if generator is not None else labels.device
    keys = torch.rand(labels.shape, generator=generator, device=device).to(labels.device)
    keys = keys.masked_fill(~neg, 2.0)  # non-negatives rank after every negative
    rank = keys.argsort(dim=0).argsort(dim=0)
    return pos | (neg & (rank < k[None, :]))


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of logits (B, C) against labels (B, C) (1 / 0 / -1),
    averaged over the entries where ``mask`` is True (default: known labels).
    0 when no entry is kept."""
    if mask is None:
        mask = labels >= 0
    mask = mask & (labels >= 0)
    target = labels.clamp(min=0).to(torch.float32)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp(min=1.0)


# --------------------------------------------------------------------------- the table of terms

@dataclass(frozen=True)
class LossBatch:
    """What a loss term sees of one batch: logits (B, C) of both views,
    labels int (B, C) (-1 unknown), the BCE ``mask`` bool (B, C) (batch
    balancing applied unless ablated), the classifier matrices ``weights``
    ``(W1, W2)`` each (C, D + 1), and ``mv_absolute`` (see :func:`multiview_loss`)."""

    logits1: torch.Tensor
    logits2: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    weights: tuple[torch.Tensor, torch.Tensor]
    mv_absolute: bool = True


@dataclass(frozen=True)
class LossTerm:
    """One term added to the two views' BCE: ``weight * fn(batch)``.

    ``name``: its log column and its ablation switch (``ablate: [name]``);
    ``weight_key``: the TrainConfig field holding its weight (None: the
    weight is ``loss_weights[name]`` of the config, else ``default_weight``)."""

    name: str
    fn: Callable[[LossBatch], torch.Tensor]
    weight_key: str | None = None
    default_weight: float = 1.0


#: The function of every term of :data:`aulib.model.loss_terms.TERMS`.
FUNCTIONS: dict[str, Callable[[LossBatch], torch.Tensor]] = {
    "mv": lambda b: multiview_loss(b.weights[0], b.weights[1], b.mv_absolute),
    "cr": lambda b: coreg_loss(b.logits1, b.logits2),
}
if set(FUNCTIONS) != set(loss_terms.TERMS):
    raise ImportError(f"loss terms without a function or a table row: {sorted(set(FUNCTIONS) ^ set(loss_terms.TERMS))}")
#: The loss terms, in the order they are added (and logged).
TERMS: dict[str, LossTerm] = {name: LossTerm(name, FUNCTIONS[name], key, weight)
                              for name, (key, weight) in loss_terms.TERMS.items()}


def term_weights(cfg) -> dict[str, float]:
    """Weight of every term of :data:`TERMS` for a config (a TrainConfig or mapping)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    extra = get("loss_weights") or {}
    return {t.name: float(get(t.weight_key) if t.weight_key and get(t.weight_key) is not None
                          else extra.get(t.name, t.default_weight)) for t in TERMS.values()}


class MultiViewLoss(nn.Module):
    """L = BCE1 + BCE2 + sum of ``weight * term`` over :data:`TERMS` not in
    ``ablate`` (Table 3's ablations; ``balance`` switches off batch balancing).

    ``weights``: {term name: weight}, missing terms take their default;
    ``w_mv``, ``w_cr``, ``use_mv``, ``use_cr``, ``use_balance``: the older
    keywords, mapped onto ``weights`` and ``ablate``.

    ``forward(logits1, logits2, labels, weights, generator=None)``:
    logits (B, C), labels int (B, C) (-1 unknown), weights ``(W1, W2)`` from
    :meth:`aulib.model.network.MultiViewNet.classifier_weights`. Returns a dict
    of scalar tensors: ``total`` (the loss to minimise), ``bce`` (BCE1 +
    BCE2), ``bce1``, ``bce2`` and every term by name (unweighted; ablated
    terms are still reported, detached, but not added to ``total``).
    """

    def __init__(self, w_mv: float | None = None, w_cr: float | None = None, use_mv: bool = True,
                 use_cr: bool = True, use_balance: bool = True, alpha: float = 0.2, mv_absolute: bool = True,
                 ablate=(), weights: dict | None = None):
        super().__init__()
        self.alpha, self.mv_absolute = float(alpha), bool(mv_absolute)
        legacy = {"mv": use_mv, "cr": use_cr, BALANCE: use_balance}
        self.ablate = set(ablate) | {k for k, on in legacy.items() if not on}
        unknown = sorted(self.ablate - set(ablation_names()))
        if unknown:
            raise ValueError(f"unknown ablation(s) {unknown}; valid: {list(ablation_names())}")
        given = {**(weights or {}), **{k: v for k, v in (("mv", w_mv), ("cr", w_cr)) if v is not None}}
        self.weights = {n: float(given.get(n, t.default_weight)) for n, t in TERMS.items()}

    def forward(self, logits1: torch.Tensor, logits2: torch.Tensor, labels: torch.Tensor,
                weights: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        mask = labels >= 0 if BALANCE in self.ablate else balance_mask(labels, self.alpha, generator)
        bce1 = masked_bce(logits1, labels, mask)
        bce2 = masked_bce(logits2, labels, mask)
        batch = LossBatch(logits1, logits2, labels, mask, weights, self.mv_absolute)
        total = bce1 + bce2
        out = {"bce": (bce1 + bce2).detach(), "bce1": bce1.detach(), "bce2": bce2.detach()}
        for name, term in TERMS.items():
            value = term.fn(batch)
            if name not in self.ablate:
                total = total + self.weights[name] * value
            out[name] = value.detach()
        return {"total": total, **out}
