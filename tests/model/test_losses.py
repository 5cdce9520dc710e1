"""Loss values against hand-computed cases (aulib.model.losses)."""
import math

import pytest
import torch

from aulib.model.losses import MultiViewLoss, balance_mask, coreg_loss, masked_bce, multiview_loss


def test_multiview_loss_cosines():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    orth = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    assert multiview_loss(w, orth).item() == pytest.approx(0.0, abs=1e-7)
    assert multiview_loss(w, 5 * w).item() == pytest.approx(1.0)
    assert multiview_loss(w, -w, absolute=False).item() == pytest.approx(-1.0)
    assert multiview_loss(w, -w, absolute=True).item() == pytest.approx(1.0)
    # mean over AUs: one parallel row, one orthogonal row
    mixed = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert multiview_loss(w, mixed).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="C, D"):
        multiview_loss(w, w[:, :2])


def test_coreg_loss_js_values_and_stability():
    z = torch.randn(8, 5)
    assert coreg_loss(z, z).item() == pytest.approx(0.0, abs=1e-6)
    big = torch.full((4, 3), 1e4)
    assert coreg_loss(big, -big).item() == pytest.approx(math.log(2), abs=1e-6)
    # H((p1+p2)/2) - (H(p1)+H(p2))/2 for p1 = sigmoid(1), p2 = sigmoid(-2)
    p1, p2 = torch.sigmoid(torch.tensor(1.0)), torch.sigmoid(torch.tensor(-2.0))
    h = lambda p: -(p * p.log() + (1 - p) * (1 - p).log())  # noqa: E731
    want = h((p1 + p2) / 2) - (h(p1) + h(p2)) / 2
    assert coreg_loss(torch.tensor([[1.0]]), torch.tensor([[-2.0]])).item() == pytest.approx(want.item(), rel=1e-5)
    extreme = torch.tensor([[1e4, -1e4, 30.0, 0.0]], requires_grad=True)
    other = torch.tensor([[1e4, 1e4, -30.0, 1e4]])
    loss = coreg_loss(extreme, other)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()
    mask = torch.tensor([[True, False, False, False]])
    assert coreg_loss(extreme.detach(), other, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_balance_mask_paper_example():
    labels = torch.cat([torch.zeros(90), torch.ones(10)]).to(torch.int8)[:, None]
    g = torch.Generator().manual_seed(0)
    keep = balance_mask(labels, 0.2, g)
    assert keep.dtype == torch.bool and keep.shape == (100, 1)
    assert keep[labels == 1].all()
    assert int(keep[labels == 0].sum()) == 18
    # a different draw keeps other negatives, still 18
    keep2 = balance_mask(labels, 0.2, torch.Generator().manual_seed(1))
    assert int(keep2[labels == 0].sum()) == 18 and not torch.equal(keep, keep2)


def test_balance_mask_unknowns_and_balanced_aus():
    # AU0: 30 neg, 2 pos, 8 unknown -> 0.1*30 (3.0000000000000004 in floats) -> 3 negatives;
    # AU1: 20 pos >= 0.1*20 -> all kept
    au0 = torch.tensor([0] * 30 + [1] * 2 + [-1] * 8)
    au1 = torch.tensor([1] * 20 + [0] * 20)
    labels = torch.stack([au0, au1], 1).to(torch.int8)
    keep = balance_mask(labels, 0.1, torch.Generator().manual_seed(0))
    assert not keep[labels == -1].any()
    assert int((keep[:, 0] & (au0 == 0)).sum()) == 3 and keep[:, 0][au0 == 1].all()
    assert keep[:, 1].all()
    # ceil: 0.2 * 11 = 2.2 -> 3 negatives when there is no positive
    eleven = torch.zeros(11, 1, dtype=torch.int8)
    assert int(balance_mask(eleven, 0.2).sum()) == 3


def test_masked_bce_and_combined_loss():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([[1, -1], [0, 1]], dtype=torch.int8)
    want = (math.log(2) + math.log1p(math.e) + math.log1p(math.e)) / 3
    assert masked_bce(logits, labels).item() == pytest.approx(want, rel=1e-6)
    only = torch.tensor([[True, True], [False, False]])
    assert masked_bce(logits, labels, only).item() == pytest.approx(math.log(2), rel=1e-6)
    w1, w2 = torch.eye(2, 3), torch.eye(2, 3)
    full = MultiViewLoss(w_mv=2.0, w_cr=3.0, use_balance=False)(logits, -logits, labels, (w1, w2))
    bce = masked_bce(logits, labels) + masked_bce(-logits, labels)
    assert full["bce"].item() == pytest.approx(bce.item())
    assert full["mv"].item() == pytest.approx(1.0)
    want_total = bce + 2.0 * 1.0 + 3.0 * coreg_loss(logits, -logits)
    assert full["total"].item() == pytest.approx(want_total.item(), rel=1e-6)
    ablated = MultiViewLoss(w_mv=2.0, w_cr=3.0, use_mv=False, use_cr=False, use_balance=False)(
        logits, -logits, labels, (w1, w2))
    assert ablated["total"].item() == pytest.approx(bce.item()) and ablated["mv"].item() == pytest.approx(1.0)
