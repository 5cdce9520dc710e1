"""Multi-crop views and inference helpers (aulib.infer.multicrop, aulib.infer)."""
import numpy as np
import pytest
import torch

from aulib.aus import group_aus
from aulib.infer import checkpoint_path, load_model, load_run_config, predict_probs
from aulib.infer.multicrop import VIEWS, multicrop_probs, multicrop_views, run_views, view_probs
from aulib.io import write_torch, write_yaml
from aulib.model.config import TrainConfig
from aulib.model.network import create_model


class HalvesModel(torch.nn.Module):
    """A flip-equivariant stand-in: for 6au, AU51/55 read the left half of the
    image, AU52/56 the right half, AU53/54 the whole image."""

    num_aus = 6

    def probs(self, x):
        w = x.shape[-1]
        left, right, whole = x[..., : w // 2].mean((1, 2, 3)), x[..., w // 2:].mean((1, 2, 3)), x.mean((1, 2, 3))
        return torch.stack([left, right, whole, whole, left, right], 1) / 255


def test_views_and_flip_mapping_for_head_pose():
    x = torch.zeros(2, 3, 20, 20, dtype=torch.uint8)
    x[:, :, :, :10] = 200  # bright left half
    views = multicrop_views(x, "6au", VIEWS)
    assert len(views) == 4
    assert torch.equal(views[0][0], x.float()) and views[0][1].tolist() == list(range(6))
    assert torch.equal(views[1][0], x.float().flip(-1)) and views[1][1].tolist() == [1, 0, 2, 3, 5, 4]
    for xv, _ in views:
        assert xv.shape == x.shape and xv.dtype == torch.float32
        assert float(xv.min()) >= 0 and float(xv.max()) <= 255
    model = HalvesModel()
    per_view = view_probs(model, x, "6au", VIEWS)
    # the flipped view mapped back agrees with the image itself
    torch.testing.assert_close(per_view[1], per_view[0])
    assert torch.allclose(multicrop_probs(model, x, group_aus("6au"), VIEWS), per_view.mean(0))
    # expression AUs are not permuted
    assert all(p.tolist() == list(range(17)) for _, p in multicrop_views(x, "17au", VIEWS))


def test_default_views_are_those_training_produces():
    """Multi-crop averages only views the training augmentation makes: the image and, where
    training flips, its flip; the 0.9x corner crops (outside the training distribution of
    aligned faces, near chance on the demo's B) only when a run names them."""
    assert run_views({"group": "17au"}) == ("image", "flip")
    assert run_views({"group": "6au"}) == ("image",)                       # the head-pose model is not flipped
    assert run_views({"group": "17au", "augment": {"flip": False}}) == ("image",)
    assert run_views({"group": "17au", "augment": "none"}) == ("image",)
    assert run_views({"group": "17au", "multicrop_views": list(VIEWS)}) == VIEWS
    cfg = TrainConfig(group="17au", multicrop_views=["image", "crop_tl"]).resolved()
    assert run_views(cfg) == ("image", "crop_tl")
    for bad in (["flip"], ["image", "zoom"], ["image", "flip", "flip"]):
        with pytest.raises(ValueError, match="multicrop_views"):
            TrainConfig(group="17au", multicrop_views=bad).resolved()
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    views = multicrop_views(x, "17au")
    assert len(views) == 2 and torch.equal(views[1][0], x.float().flip(-1))


def test_predict_probs_matches_model_and_keeps_order():
    torch.manual_seed(0)
    model = create_model({"backbones": ["lcnet_050", "lcnet_050"], "group": "6au"}).eval()
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    loader = [(x[i:i + 4], torch.zeros(len(x[i:i + 4]), 6)) for i in range(0, 10, 4)]
    p = predict_probs(model, loader, "cpu", progress=False)
    assert p.dtype == np.float32 and p.shape == (10, 6)
    np.testing.assert_allclose(p, model.probs(x).numpy(), atol=1e-5)
    mc = predict_probs(model, loader, "cpu", multicrop=True, aus="6au", progress=False)
    np.testing.assert_allclose(mc, multicrop_probs(model, x, "6au").numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="aus"):
        predict_probs(model, loader, "cpu", multicrop=True, progress=False)


def test_load_model_and_run_config(tmp_path):
    cfg = TrainConfig(group="6au", backbones=["lcnet_050", "lcnet_050"], run_name="r").resolved()
    write_yaml(tmp_path / "config.yaml", cfg.to_dict())
    model = create_model(cfg)
    write_torch(tmp_path / "checkpoints" / "epoch002.pt", {"model": model.state_dict(), "epoch": 2})
    assert load_run_config(tmp_path) == cfg
    loaded = load_model(tmp_path, 2)
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert checkpoint_path(tmp_path).name == "epoch002.pt"
    with pytest.raises(FileNotFoundError, match=r"epochs \[2\]"):
        load_model(tmp_path, 7)
