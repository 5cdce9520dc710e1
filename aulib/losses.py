"""Losses of the multi-view co-regularised AU model (paper, Sec. 2.2-2.3).

L = BCE(view 1) + BCE(view 2) + w_mv * L_mv + w_cr * L_cr

- BCE: per-view binary cross-entropy over the kept (balanced, known) labels.
- L_mv (:func:`multiview_loss`): mean over AUs of the cosine between the two
  views' classifier vectors ``W = [w, b]``.
- L_cr (:func:`coreg_loss`): mean per-AU Jensen-Shannon divergence between
  the two views' Bernoulli predictions.
- Batch balancing (:func:`balance_mask`): the paper's alpha rule.

Default weights ``w_mv = w_cr = 1``. The paper gives none; the released
MLCR code (Niu et al., NeurIPS'19, ``main.py``) uses ``lambda_multi_view =
400`` and ``lambda_co_regularization = 100`` over the *mean* of the two
views' BCEs. With AdamW those scales let L_mv and L_cr dominate the
classifier's updates (Adam normalises each parameter's step, and L_mv acts
only on the classifiers): on the toy set of tests/test_train.py, 5 epochs
with 400/100 leave the BCE at 1.35 (its start) and F1 on B at 0, 10/10 reach
F1 0.05, and 1/1 reach BCE 1.10 and F1 0.57. At weight 1 both terms still
do their job: |cos| falls from ~0.03 (random classifiers) to ~0.003 within
five epochs, and the JS term is of the order of the BCE's changes. Pass
``w_mv=400, w_cr=200`` (MLCR's ratios for a sum of BCEs) with SGD to follow
MLCR instead.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG2 = math.log(2.0)
#: Defaults of the loss weights (see the module docstring).
W_MV, W_CR = 1.0, 1.0


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


class MultiViewLoss(nn.Module):
    """L = BCE1 + BCE2 + w_mv * L_mv + w_cr * L_cr, with switches for the
    ablations of Table 3 (``use_mv``, ``use_cr``, ``use_balance``).

    ``forward(logits1, logits2, labels, weights, generator=None)``:
    logits (B, C), labels int (B, C) (-1 unknown), weights ``(W1, W2)`` from
    :meth:`aulib.models.MultiViewNet.classifier_weights`. Returns a dict of
    scalar tensors: ``total`` (the loss to minimise), ``bce`` (BCE1 + BCE2),
    ``bce1``, ``bce2``, ``mv``, ``cr`` (unweighted; switched-off terms are
    still reported, detached, but not added to ``total``).
    """

    def __init__(self, w_mv: float = W_MV, w_cr: float = W_CR, use_mv: bool = True, use_cr: bool = True,
                 use_balance: bool = True, alpha: float = 0.2, mv_absolute: bool = True):
        super().__init__()
        self.w_mv, self.w_cr, self.alpha = float(w_mv), float(w_cr), float(alpha)
        self.use_mv, self.use_cr, self.use_balance = bool(use_mv), bool(use_cr), bool(use_balance)
        self.mv_absolute = bool(mv_absolute)

    def forward(self, logits1: torch.Tensor, logits2: torch.Tensor, labels: torch.Tensor,
                weights: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        mask = balance_mask(labels, self.alpha, generator) if self.use_balance else labels >= 0
        bce1 = masked_bce(logits1, labels, mask)
        bce2 = masked_bce(logits2, labels, mask)
        mv = multiview_loss(weights[0], weights[1], self.mv_absolute)
        cr = coreg_loss(logits1, logits2)
        total = bce1 + bce2
        if self.use_mv:
            total = total + self.w_mv * mv
        if self.use_cr:
            total = total + self.w_cr * cr
        return {"total": total, "bce": (bce1 + bce2).detach(), "bce1": bce1.detach(), "bce2": bce2.detach(),
                "mv": mv.detach(), "cr": cr.detach()}
