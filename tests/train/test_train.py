"""End-to-end tests of aulib.train on a tiny, learnable workspace (tests/helpers/tiny_workspace.py).

The workspace follows docs/layout.md: a crop store (``crops/box1.5_32``) whose
images show one bright square per present head-pose AU (6au group), and split
files A, B (two variants per image) and test.
"""
from __future__ import annotations

import importlib.util
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from aulib import aus as aulib_aus
from aulib.infer import load_model, load_run_config
from aulib.io import read_npy, read_torch
from aulib.workspace import Workspace
from tiny_workspace import GROUP, SIZE, make_workspace, tiny_config


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    torch.set_num_threads(1)
    return make_workspace(tmp_path_factory.mktemp("ws"))


@pytest.mark.slow
def test_heldout_predicted_at_chosen_epochs_equals_scoring_it_every_epoch(workspace):
    """Training scores B alone; the held-out split, predicted afterwards from
    a checkpoint, is what a run scoring it every epoch wrote (same weights:
    seeded, deterministic on CPU), plain and multi-crop."""
    from aulib.infer.at_epochs import preds_at_epochs
    from aulib.runs import load_run_preds
    from aulib.train.loop import train

    lazy = train(tiny_config(workspace, run_name="lazy_h", epochs=2))
    eager = train(tiny_config(workspace, run_name="eager_h", epochs=2, eval_splits=["B", "test"]))
    assert not list((lazy / "preds").glob("test*")) and len(list((eager / "preds").glob("test*_epoch*.npy"))) == 4
    for mc in (False, True):
        got = preds_at_epochs(workspace, lazy, "test", [1], multicrop=mc)
        want = load_run_preds(eager, "test_mc" if mc else "test", [1])
        assert got.epochs.tolist() == [1] and got.probs.shape == want.probs.shape
        np.testing.assert_allclose(got.probs, want.probs, atol=2e-3)
        assert got.index["image"].tolist() == want.index["image"].tolist()
    assert sorted(p.name for p in (lazy / "preds").glob("test*.npy")) == ["test_epoch001.npy", "test_mc_epoch001.npy"]
    (lazy / "checkpoints" / "epoch002.pt").rename(lazy / "epoch002.pt.away")
    try:
        with pytest.raises(FileNotFoundError, match=r"lazy_h has no test predictions at epochs \[2\].*keep_checkpoints"):
            preds_at_epochs(workspace, lazy, "test", [1, 2])
    finally:
        (lazy / "epoch002.pt.away").rename(lazy / "checkpoints" / "epoch002.pt")


@pytest.mark.slow
def test_run_directory_layout_and_learning(workspace):
    from aulib.train.loop import train

    # lr 6e-3: at the shared 3e-3 this run starts to learn only at epoch 4-5, and its B final after 5
    # epochs then hangs on float rounding (0.546-0.640 over seeds 0-2 on one machine, where another
    # machine had passed 0.60); at 6e-3 seeds 0-2 reach 0.648 / 0.796 / 0.640
    cfg = tiny_config(workspace, run_name="learn", epochs=5, lr=6e-3)
    run_dir = train(cfg)
    assert run_dir == workspace.run("learn")
    log = pd.read_csv(run_dir / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3, 4, 5]
    for col in ["lr", "time_s", "loss", "bce", "mv", "cr", "B_acc", "B_f1", "B_final", "B_mc_final"]:
        assert col in log, col
    assert "test_final" not in log     # the held-out split is scored at chosen epochs only (next test)
    assert [f"B_final_AU{a}" for a in aulib_aus.group_aus(GROUP)] == [c for c in log if c.startswith("B_final_AU")]
    assert log["bce"].iloc[-1] < log["bce"].iloc[0]
    # labels of B: the score must beat both trivial predictors (all negative, all positive)
    index = pd.read_csv(run_dir / "preds" / "B_index.csv")
    assert list(index.columns) == ["image", "variant"] + aulib_aus.au_columns(GROUP)
    labels = index[aulib_aus.au_columns(GROUP)].to_numpy()
    from aulib.metrics import score_probs

    trivial = max(score_probs(labels, np.full(labels.shape, p), 0.5)[1]["final"] for p in (0.0, 1.0))
    assert log["B_final"].iloc[-1] > trivial + 0.1
    assert not (run_dir / "preds" / "test_index.csv").exists()
    for split in ("B", "B_mc"):
        assert (run_dir / "preds" / f"{split}_index.csv").exists()
        for e in range(1, 6):
            p = read_npy(run_dir / "preds" / f"{split}_epoch{e:03d}.npy")
            assert p.dtype == np.float16 and p.shape == (len(pd.read_csv(run_dir / "preds" / f"{split}_index.csv")), 6)
    ckpt = read_torch(run_dir / "checkpoints" / "epoch005.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(ckpt) and ckpt["epoch"] == 5
    # tensors and plain data only: no module path is pickled, so a checkpoint still loads after a module moves
    # (aulib.train.model -> aulib.model.network)
    with zipfile.ZipFile(run_dir / "checkpoints" / "epoch005.pt") as z:
        assert not [n for n in z.namelist() if n.endswith(".pkl") and b"aulib" in z.read(n)]
    assert load_run_config(run_dir).run_name == "learn"
    # the saved predictions are what the checkpoint predicts (same code path)
    from aulib.data.dataset import make_loader
    from aulib.infer import predict_probs

    model = load_model(run_dir, 5)
    loader = make_loader(workspace, "B", GROUP, SIZE, 64, train=False)
    again = predict_probs(model, loader, "cpu", progress=False)
    np.testing.assert_allclose(again, read_npy(run_dir / "preds" / "B_epoch005.npy").astype(np.float32), atol=1e-3)
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg)


@pytest.mark.slow
def test_resume_gives_identical_run(workspace):
    from aulib.train.loop import train

    kw = dict(epochs=3, max_train_batches=3, multicrop=False, heldout=None, drop_rate=0.1)
    full = train(tiny_config(workspace, run_name="full", **kw))
    part = train(tiny_config(workspace, run_name="part", **kw), stop_after=2)
    assert pd.read_csv(part / "log.csv")["epoch"].tolist() == [1, 2]
    train(tiny_config(workspace, run_name="part", **kw), resume=True)
    for e in (1, 2, 3):
        np.testing.assert_array_equal(read_npy(full / "preds" / f"B_epoch{e:03d}.npy"),
                                      read_npy(part / "preds" / f"B_epoch{e:03d}.npy"))
    a, b = read_torch(full / "checkpoints" / "epoch003.pt"), read_torch(part / "checkpoints" / "epoch003.pt")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    cols = ["loss", "bce", "mv", "cr", "B_final"]
    pd.testing.assert_frame_equal(pd.read_csv(full / "log.csv")[cols], pd.read_csv(part / "log.csv")[cols])
    with pytest.raises(ValueError, match="lr"):
        train(tiny_config(workspace, run_name="part", lr=0.1, **kw), resume=True)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(workspace, monkeypatch):
    from aulib.train.launch import run_training

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("AULIB_PROGRESS", "0")
    cfg = tiny_config(workspace, run_name="ddp", epochs=1, max_train_batches=2, multicrop=False,
                      eval_splits=["B", "test"])   # two splits gathered in split order
    run_dir = run_training(cfg, nproc=2)        # torchrun --nproc-per-node=2 -m aulib.train (gloo)
    assert run_dir == workspace.run("ddp")
    tensorboard = importlib.util.find_spec("tensorboard") is not None      # events/ only where it is installed
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", *(["events"] if tensorboard else []),
                                                         "log.csv", "preds"]
    assert pd.read_csv(run_dir / "log.csv")["epoch"].tolist() == [1]
    for split in ("B", "test"):
        index = pd.read_csv(run_dir / "preds" / f"{split}_index.csv")
        probs = read_npy(run_dir / "preds" / f"{split}_epoch001.npy")
        assert probs.shape == (len(index), 6)
        # rows in split order: the gathered predictions equal a single-process prediction
        from aulib.data.dataset import make_loader
        from aulib.infer import predict_probs

        single = predict_probs(load_model(run_dir, 1), make_loader(workspace, split, GROUP, SIZE, 16, train=False),
                               "cpu", progress=False)
        np.testing.assert_allclose(probs.astype(np.float32), single, atol=2e-3)


@pytest.mark.slow
def test_pretrain_on_a_plus_c_then_finetune(workspace):
    from aulib.train.loop import train

    kw = dict(epochs=1, max_train_batches=2, multicrop=False, heldout=None)
    pre = train(tiny_config(workspace, stage="pretrain", **kw))
    assert pre.name == "6au_lcnet_050_pretrain"
    assert load_run_config(pre).train_splits == ["A", "C_6au"]
    fine = train(tiny_config(workspace, stage="finetune", init_from="train/6au_lcnet_050_pretrain", lr=0.0,
                             schedule="constant", **kw))
    # lr 0: the finetuned weights are the pretrained ones (BatchNorm statistics aside)
    a, b = read_torch(pre / "checkpoints" / "epoch001.pt")["model"], read_torch(fine / "checkpoints" / "epoch001.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    with pytest.raises(ValueError, match="init_from"):
        train(tiny_config(workspace, stage="finetune", run_name="x", **kw))


@pytest.mark.slow
def test_multicrop_study_scores_each_view_and_the_image_alone_is_what_training_logged(workspace):
    """aulib.infer.multicrop_study predicts B under every view once: the image alone scores what
    training logged as B_final for that epoch; the run's own average (image + flip here:
    6au with flip switched on) and all four views follow."""
    from aulib.infer.multicrop_study import view_scores
    from aulib.infer.multicrop import VIEWS
    from aulib.train.loop import train

    run_dir = train(tiny_config(workspace, run_name="views", epochs=1, augment={"flip": True}))
    df = view_scores(workspace, run_dir, 1)
    assert df["views"].tolist() == [*VIEWS, "image + flip", " + ".join(VIEWS)]
    logged = pd.read_csv(run_dir / "log.csv")
    assert df["final"].iloc[0] == pytest.approx(float(logged["B_final"].iloc[0]), abs=1e-6)
    assert df["final"].iloc[4] == pytest.approx(float(logged["B_mc_final"].iloc[0]), abs=1e-6)
    assert df["gain"].iloc[0] == 0 and df[["final", "f1", "acc"]].notna().all().all()
