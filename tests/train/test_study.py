"""The loss-weight study (aulib.train.study): MLCR's weights carried over to
aulib's normalisation, the effective label count, settings, configs, table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from aulib.io import write_csv, write_yaml
from aulib.report.summary import write_results_readme
from aulib.model.losses import MultiViewLoss, balance_mask, masked_bce
from aulib.train.study import (effective_labels, like_config, mlcr_weights, parse_setting, study_configs,
                               study_table, write_study)
from aulib.workspace import Workspace


def test_effective_labels_counts_known_and_balanced_labels():
    # one batch of 10, 3 AUs: balanced AU (5/5, all kept), AU with 2 unknowns (8 kept),
    # rare AU 1 pos / 9 neg -> alpha 0.2 keeps ceil(1.8) = 2 negatives -> 3 kept
    y = np.zeros((10, 3), np.int8)
    y[:5, 0] = 1
    y[:2, 1] = -1
    y[2:6, 1] = 1
    y[0, 2] = 1
    c, sd = effective_labels(y, batch_size=10, alpha=0.2, seed=3)
    assert c == pytest.approx((10 + 8 + 3) / 10)
    assert sd == 0.0
    with pytest.raises(ValueError, match="no full batch of 32"):
        effective_labels(y, batch_size=32)


def test_effective_labels_matches_a_loop_over_batches():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < [0.5, 0.1, 0.05, 0.3, 0.02]).astype(np.int8)
    y[rng.random(y.shape) < 0.05] = -1
    c, sd = effective_labels(y, batch_size=32, alpha=0.2, seed=1, epochs=2)
    # reference: the same shuffles, one balance_mask call per batch (the keys differ, the counts do not)
    r = np.random.default_rng(1)
    ref = [int(balance_mask(torch.as_tensor(y[p[i * 32:(i + 1) * 32]])).sum()) / 32
           for p in (r.permutation(200), r.permutation(200)) for i in range(6)]
    assert c == pytest.approx(np.mean(ref))
    assert sd == pytest.approx(np.std(ref, ddof=1))
    assert 1.0 < c < 5.0


def test_mlcr_loss_is_a_multiple_of_aulibs_with_the_carried_over_weights():
    torch.manual_seed(0)
    b, k, d = 16, 12, 8
    z1, z2 = torch.randn(b, k), torch.randn(b, k)
    y = (torch.rand(b, k) < 0.3).long()
    y[torch.rand(b, k) < 0.1] = -1
    w = (torch.randn(k, d + 1), torch.randn(k, d + 1))
    known = y >= 0
    c = known.sum().item() / b

    def mlcr_bce(z):  # MLCR's BCE_sigmoid: summed over kept labels, divided by the batch size
        return (F.binary_cross_entropy_with_logits(z, y.clamp(min=0).float(), reduction="none") * known).sum() / b

    aul = MultiViewLoss(ablate=["balance"], weights=dict(zip(("mv", "cr"), mlcr_weights(c))))(z1, z2, y, w)
    mlcr = (mlcr_bce(z1) + mlcr_bce(z2)) / 2 + 400 * aul["mv"] + 100 * aul["cr"]
    assert torch.isclose(mlcr, c / 2 * aul["total"], rtol=1e-5)
    assert torch.isclose(masked_bce(z1, y), mlcr_bce(z1) / c, rtol=1e-5)
    assert mlcr_weights(12.0) == pytest.approx((800 / 12, 200 / 12))
    with pytest.raises(ValueError, match="> 0"):
        mlcr_weights(0.0)


def test_parse_setting():
    assert parse_setting("kit") == ("kit", 1.0, 1.0)
    assert parse_setting("none") == ("none", 0.0, 0.0)
    assert parse_setting("mlcr_raw") == ("mlcr_raw", 400.0, 100.0)
    assert parse_setting("mlcr", 8.0) == ("mlcr", 100.0, 25.0)
    assert parse_setting("10/2.5") == ("10_2.5", 10.0, 2.5)
    with pytest.raises(ValueError, match="needs the effective labels"):
        parse_setting("mlcr")
    for bad in ("heavy", "1/x", "3"):
        with pytest.raises(ValueError, match="w_mv>/<w_cr"):
            parse_setting(bad)


def test_configs_copy_the_demo_step_and_change_only_weights_seed_name_and_score_heldout(tmp_path):
    base = like_config(tmp_path, "demo", "12au_effnet_plain")
    assert (base.group, base.epochs, base.img_size, base.batch_size, base.lr) == ("12au", 10, 64, 32, 0.005)
    assert base.backbones == ["test_efficientnet"] * 2 and base.heldout == "H" and base.multicrop is False
    cfgs = study_configs(base, [("kit", 1.0, 1.0), ("none", 0.0, 0.0)], seeds=[0, 1])
    assert [c.run_name for c in cfgs["kit"] + cfgs["none"]] == ["lw_kit_s0", "lw_kit_s1", "lw_none_s0", "lw_none_s1"]
    got = cfgs["none"][1].to_dict()
    assert (got["w_mv"], got["w_cr"], got["seed"]) == (0.0, 0.0, 1)
    changed = {k for k, v in base.to_dict().items() if got[k] != v}
    assert changed == {"w_mv", "w_cr", "seed", "run_name", "eval_splits"}
    assert base.eval_splits == ["B"] and got["eval_splits"] == ["B", "H"]   # the study reads H from log.csv
    with pytest.raises(ValueError, match="no 04_train step 'nope'"):
        like_config(tmp_path, "demo", "nope")


def _fake_run(d, w_mv, w_cr, seed, finals, heldout="test"):
    d.mkdir(parents=True)
    write_yaml(d / "config.yaml", {"w_mv": w_mv, "w_cr": w_cr, "seed": seed, "heldout": heldout})
    n = len(finals)
    write_csv(d / "log.csv", pd.DataFrame({
        "epoch": np.arange(1, n + 1), "loss": 1.0, "bce": np.linspace(1, 0.5, n), "mv": 0.01 * seed, "cr": 0.002,
        "B_acc": 0.9, "B_f1": np.array(finals) - 0.3, "B_final": finals,
        f"{heldout}_f1": np.array(finals) - 0.35, f"{heldout}_final": np.array(finals) - 0.05}))
    return d


def test_study_table_last_epoch_rows_and_means(tmp_path):
    runs = {"kit": [_fake_run(tmp_path / "k0", 1, 1, 0, [0.6, 0.7]), _fake_run(tmp_path / "k1", 1, 1, 1, [0.5, 0.8])],
            "none": [_fake_run(tmp_path / "n0", 0, 0, 0, [0.6, 0.65, 0.66], heldout="H")]}
    df = study_table(runs)
    assert list(df["setting"]) == ["kit", "kit", "none", "kit"]  # no mean row for a single run
    assert list(df["seed"]) == ["0", "1", "0", "mean"]
    mean_kit = df[(df.setting == "kit") & (df.seed == "mean")].iloc[0]
    assert mean_kit["B final"] == pytest.approx(0.75)
    assert mean_kit["held-out final"] == pytest.approx(0.70)
    assert mean_kit["|cos| (mv)"] == pytest.approx(0.005)
    none = df[(df.setting == "none") & (df.seed == "0")].iloc[0]
    assert (none["epochs"], none["w_mv"], none["B F1"]) == (3, 0.0, pytest.approx(0.36))
    assert none["held-out F1"] == pytest.approx(0.31)  # read from the run's own held-out split (H)
    csv, md = write_study(df, tmp_path / "tables", caption="Loss weights.")
    assert pd.read_csv(csv).shape == df.shape
    text = md.read_text()
    assert text.startswith("Loss weights.\n\n| setting | seed |") and "| kit | mean |" in text


def test_study_table_names_a_run_without_epochs(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    write_yaml(d / "config.yaml", {"w_mv": 1, "w_cr": 1, "seed": 0, "heldout": "test"})
    with pytest.raises(ValueError, match=r"r/log.csv: no finished epoch.*'kit'"):
        study_table({"kit": [d]})
    with pytest.raises(ValueError, match="no runs"):
        study_table({})


def test_results_readme_shows_the_study_table_only_when_written(tmp_path):
    ws = Workspace(tmp_path / "ws", tmp_path / "results")
    assert "Loss weights" not in write_results_readme(ws, "demo").read_text()
    df = study_table({"kit": [_fake_run(tmp_path / "k0", 1, 1, 0, [0.6, 0.7])]})
    write_study(df, ws.tables, caption="Caption.")
    text = write_results_readme(ws, "demo").read_text()
    assert "## Loss weights (w_mv, w_cr)" in text and "Caption.\n\n| setting | seed |" in text
