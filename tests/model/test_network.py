"""MultiViewNet: shapes, normalisation, classifier weights, pretrained weights offline."""
import pytest
import torch

from aulib.model.network import MultiViewNet, PretrainedWeightsMissing, create_model


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_forward_shapes_probs_and_weights():
    torch.manual_seed(0)
    model = MultiViewNet(("lcnet_050", "lcnet_050"), num_aus=6).eval()
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    l1, l2 = model(x)
    assert l1.shape == l2.shape == (3, 6)
    p = model.probs(x)
    assert torch.allclose(p, (torch.sigmoid(l1) + torch.sigmoid(l2)) / 2)
    # uint8 and float inputs in [0, 255] give the same output
    assert torch.allclose(model(x.float())[0], l1)
    w1, w2 = model.classifier_weights()
    assert w1.shape == w2.shape == (6, model.feature_dim + 1)
    assert torch.equal(w1[:, -1], model.classifier1.bias)
    assert isinstance(model.proj1, torch.nn.Identity)
    # normalisation constants are not part of the checkpoint
    assert not any(k.startswith(("mean", "std")) for k in model.state_dict())


def test_different_backbones_are_projected_to_a_common_size():
    model = MultiViewNet(("lcnet_050", "resnet10t"), num_aus=4)
    assert isinstance(model.proj1, torch.nn.Linear) and model.proj1.in_features != model.proj2.in_features
    w1, w2 = model.classifier_weights()
    assert w1.shape == w2.shape == (4, model.feature_dim + 1)
    assert model(torch.zeros(2, 3, 32, 32))[1].shape == (2, 4)


def test_pretrained_from_local_file_and_clear_error_offline(tmp_path, monkeypatch):
    import timm

    src = timm.create_model("lcnet_050", num_classes=0)
    path = tmp_path / "lcnet_050.pth"
    torch.save(src.state_dict(), path)
    model = MultiViewNet(("lcnet_050", "lcnet_050"), 3, pretrained=[str(path), False])
    assert torch.equal(model.backbone1.conv_stem.weight, src.conv_stem.weight)
    assert not torch.equal(model.backbone2.conv_stem.weight, src.conv_stem.weight)
    with pytest.raises(PretrainedWeightsMissing, match="does not exist"):
        MultiViewNet(("lcnet_050", "lcnet_050"), 3, pretrained=str(tmp_path / "missing.pth"))
    # an empty cache: a clear error naming both ways to provide weights, no network access
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torchhub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(PretrainedWeightsMissing, match="safetensors.*cache"):
        MultiViewNet(("lcnet_050", "lcnet_050"), 3, pretrained=True)


def test_create_model_from_config_dict():
    model = create_model({"backbones": ["lcnet_050", "lcnet_050"], "group": "17au", "pretrained": False})
    assert model.num_aus == 17
