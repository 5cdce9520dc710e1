"""The loss-term table: a new term with its ablation switch is one row of the
torch-free table (aulib.model.loss_terms) and its function (aulib.model.losses);
the ablate list and the older no_*/use_* switches; old run configs still load."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from aulib.io import read_yaml, write_yaml
from aulib.train import TrainConfig, notebook_config
from aulib.model import loss_terms
from aulib.model.losses import FUNCTIONS, TERMS, LossTerm, MultiViewLoss
from tiny_workspace import make_workspace, tiny_config

WEIGHT = 0.05


def l2_head(batch) -> torch.Tensor:
    """Squared L2 norm of both views' classifier weights (biases excluded)."""
    return sum((w[:, :-1] ** 2).sum() for w in batch.weights)


@pytest.fixture
def with_l2_term(monkeypatch):
    monkeypatch.setitem(loss_terms.TERMS, "l2_head", (None, WEIGHT))
    monkeypatch.setitem(TERMS, "l2_head", LossTerm("l2_head", l2_head, None, WEIGHT))


def test_the_torch_free_table_and_the_functions_name_the_same_terms():
    assert list(TERMS) == list(loss_terms.TERMS) == list(FUNCTIONS) == ["mv", "cr"]
    assert {n: (t.weight_key, t.default_weight) for n, t in TERMS.items()} == loss_terms.TERMS
    assert loss_terms.ablation_names() == ("mv", "cr", "balance")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    torch.set_num_threads(1)
    return make_workspace(tmp_path_factory.mktemp("ws"), n_a=64, n_b=16, n_test=8)


def test_registered_term_is_added_reported_and_ablatable(with_l2_term):
    torch.manual_seed(0)
    logits = torch.randn(8, 6)
    labels = torch.randint(-1, 2, (8, 6), dtype=torch.int8)
    w = (torch.randn(6, 5), torch.randn(6, 5))
    on = MultiViewLoss(use_balance=False)(logits, -logits, labels, w)
    off = MultiViewLoss(use_balance=False, ablate=["l2_head"])(logits, -logits, labels, w)
    assert on["l2_head"].item() == pytest.approx(l2_head(type("B", (), {"weights": w})).item())
    assert off["l2_head"].item() == pytest.approx(on["l2_head"].item())
    assert (on["total"] - off["total"]).item() == pytest.approx(WEIGHT * on["l2_head"].item(), rel=1e-5)
    heavier = MultiViewLoss(use_balance=False, weights={"l2_head": 2 * WEIGHT})(logits, -logits, labels, w)
    assert (heavier["total"] - off["total"]).item() == pytest.approx(2 * WEIGHT * on["l2_head"].item(), rel=1e-5)


def test_registered_term_trains_on_and_ablated(workspace, with_l2_term):
    from aulib.train.loop import train

    kw = dict(epochs=1, max_train_batches=1, multicrop=False, heldout=None, batch_size=16)
    on = train(tiny_config(workspace, run_name="l2_on", **kw))
    off = train(tiny_config(workspace, ablate=["l2_head"], **kw))
    assert off.name == "6au_lcnet_050_plain_no_l2_head"
    log_on, log_off = pd.read_csv(on / "log.csv"), pd.read_csv(off / "log.csv")
    assert "l2_head" in log_on and "l2_head" in log_off
    # one step from the same start: same BCE and terms, the total differs by the weighted new term
    assert log_on["bce"][0] == pytest.approx(log_off["bce"][0])
    assert log_on["l2_head"][0] == pytest.approx(log_off["l2_head"][0])
    assert log_on["loss"][0] - log_off["loss"][0] == pytest.approx(WEIGHT * log_on["l2_head"][0], rel=1e-4)
    assert read_yaml(off / "config.yaml")["ablate"] == ["l2_head"]


def test_ablate_list_and_legacy_switches():
    legacy = TrainConfig.from_dict({"use_mv": False, "use_cr": True, "no_balance": True}).resolved()
    assert legacy.ablate == ["mv", "balance"] and legacy.run_name == "17au_lcnet_050_plain_no_mv_no_balance"
    assert "use_mv" not in legacy.to_dict()
    # the list's order does not matter: ablations are kept in table order
    assert TrainConfig.from_dict({"ablate": ["balance", "cr"]}).resolved().ablate == ["cr", "balance"]
    with pytest.raises(ValueError, match="valid: .*'mv', 'cr', 'balance'"):
        TrainConfig.from_dict({"ablate": ["nope"]}).resolved()
    with pytest.raises(ValueError, match="unknown config key"):
        TrainConfig.from_dict({"use_nope": False})


def test_notebook_config_takes_ablate_and_trainconfig_defaults(tmp_path):
    cfg = notebook_config(tmp_path, group="12au", ablate=["mv", "cr"])
    assert cfg.ablate == ["mv", "cr"] and cfg.run_name.endswith("_no_mv_no_cr")
    plain = notebook_config(tmp_path)     # every parameter None: TrainConfig's defaults, declared there alone
    assert plain.to_dict() == TrainConfig(workspace=str(tmp_path)).resolved().to_dict()


def test_old_run_config_with_use_switches_resumes(workspace):
    from aulib.train.loop import train

    kw = dict(multicrop=False, heldout=None, max_train_batches=1, batch_size=16, ablate=["mv"], schedule="constant")
    run = train(tiny_config(workspace, run_name="old", epochs=1, **kw))
    saved = read_yaml(run / "config.yaml")  # written the way runs before the ablate list were
    del saved["ablate"], saved["loss_weights"]
    write_yaml(run / "config.yaml", {**saved, "use_mv": False, "use_cr": True, "use_balance": True})
    train(tiny_config(workspace, run_name="old", epochs=2, **kw), resume=True, extend=True)
    assert pd.read_csv(run / "log.csv")["epoch"].tolist() == [1, 2]
