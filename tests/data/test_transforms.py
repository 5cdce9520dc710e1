import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage.data import astronaut
from skimage.transform import resize

from aulib.aus import BUILTIN_GROUPS
from aulib.data.transforms import AugmentConfig, augment_batch, default_augment, degrade, degrade_batch, stable_rng


def face(size=64):
    """A real photo, resized, with no pure-black pixel (so occluders are easy to find)."""
    img = resize(astronaut()[:256, 128:384], (size, size), anti_aliasing=True, preserve_range=True)
    return np.clip(np.round(img), 1, 255).astype(np.uint8)


def batch(n=6, size=48):
    imgs = [np.roll(face(size), 5 * i, axis=1) for i in range(n)]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def hf_energy(img):
    """Mean squared difference of vertically and horizontally adjacent pixels, (H, W, 3)."""
    img = np.asarray(img, dtype=np.float64)
    return (np.diff(img, axis=0) ** 2).mean() + (np.diff(img, axis=1) ** 2).mean()


def black_box(mask):
    """(rows, cols) extent of the True pixels of a 2-D mask and whether they fill it."""
    ys, xs = np.nonzero(mask)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    return h, w, mask.sum() == h * w


def test_stable_rng_is_stable():
    assert stable_rng(0, "a.jpg", 1).random() == stable_rng(0, "a.jpg", 1).random()
    assert stable_rng(0, "a.jpg", 1).random() != stable_rng(0, "a.jpg", 2).random()
    # the same in another interpreter with another string-hash salt (not Python's hash())
    code = "from aulib.data.transforms import stable_rng; print(stable_rng(0, 'x.jpg', 1).integers(0, 2**62))"
    values = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout for s in (1,)}
    assert values == {f"{stable_rng(0, 'x.jpg', 1).integers(0, 2**62)}\n"}


def test_degrade_variants():
    img = face(64)
    assert degrade(img, 0, "k") is img or np.array_equal(degrade(img, 0, "k"), img)
    v1, v2, v3 = (degrade(img, v, "images/a.jpg", seed=0) for v in (1, 2, 3))
    for v in (v1, v2, v3):
        assert v.dtype == np.uint8 and v.shape == img.shape
    # 1: blurred by down/up-sampling, no black square
    assert not (v1 == 0).all(-1).any()
    assert hf_energy(v1) < 0.7 * hf_energy(img)
    # 2: one black square of 15-35% of the side, the rest untouched
    black = (v2 == 0).all(-1)
    h, w, full = black_box(black)
    assert full and h == w and 0.15 * 64 - 1 <= h <= 0.35 * 64 + 1
    assert np.array_equal(v2[~black], img[~black])
    # 3: both
    black3 = (v3 == 0).all(-1)
    assert black_box(black3)[2] and black3.sum() > 0
    assert hf_energy(np.where(black3[..., None], img, v3)) < hf_energy(img)


def test_degrade_deterministic_and_keyed():
    img = face(64)
    for v in (1, 2, 3):
        assert np.array_equal(degrade(img, v, "a.jpg", 0), degrade(img, v, "a.jpg", 0))
    occluded = [(degrade(img, 2, f"{k}.jpg", 0) == 0).all(-1) for k in range(6)]
    assert len({m.tobytes() for m in occluded}) > 1  # the square moves with the key
    assert not np.array_equal(degrade(img, 2, "a.jpg", 0), degrade(img, 2, "a.jpg", 1))
    with pytest.raises(ValueError, match="uint8"):
        degrade(img.astype(np.float32), 1, "a.jpg")


def test_degrade_batch_equals_one_call_per_image():
    """Batched degradation (grouped by down-sampled size) gives every copy pixel
    for pixel as degrading it alone, whatever else shares the batch."""
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, (40, 48, 48, 3), dtype=np.uint8)
    variants = np.tile(np.arange(8), 5)
    keys = [f"img/{i % 13}.jpg" for i in range(40)]        # repeated keys, other variants
    batch = degrade_batch(imgs, variants, keys, seed=3)
    alone = np.stack([degrade(imgs[i], int(variants[i]), keys[i], seed=3) for i in range(40)])
    assert np.array_equal(batch, alone) and np.array_equal(batch[variants == 0], imgs[variants == 0])
    assert np.array_equal(degrade_batch(imgs[::-1], variants[::-1], keys[::-1], seed=3), batch[::-1])
    with pytest.raises(ValueError, match="must match"):
        degrade_batch(imgs, variants[:3], keys, seed=3)


def test_default_augment():
    assert default_augment("17au").flip and default_augment("12au").flip
    assert not default_augment("6au").flip
    assert default_augment("6au", flip=True).flip
    with pytest.raises(ValueError, match="unknown AU group"):
        default_augment("7au")


def test_label_aware_flip_swaps_head_pose_pairs():
    aus = BUILTIN_GROUPS["23au"]
    x = batch(4)
    y = torch.from_numpy(np.random.default_rng(0).integers(-1, 2, (4, len(aus)), dtype=np.int8))
    cfg = AugmentConfig(flip=True, flip_p=1.0, downsample_p=0.0, occlude_p=0.0)
    xa, ya = augment_batch(x, y, aus, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(xa, x.float().flip(-1))
    idx = {a: i for i, a in enumerate(aus)}
    expected = y.clone()
    for a, b in ((51, 52), (55, 56)):
        expected[:, idx[a]], expected[:, idx[b]] = y[:, idx[b]], y[:, idx[a]]
    assert torch.equal(ya, expected) and not torch.equal(ya, y)
    # no flip: untouched
    xa, ya = augment_batch(x, y, aus, AugmentConfig(flip=False, downsample_p=0, occlude_p=0),
                           torch.Generator().manual_seed(0))
    assert torch.equal(xa, x.float()) and torch.equal(ya, y)


def test_flip_only_some_samples():
    aus = BUILTIN_GROUPS["6au"]
    x = batch(32, 16)
    y = torch.zeros(32, 6, dtype=torch.int8)
    y[:, 0] = 1  # everyone turns left
    cfg = AugmentConfig(flip=True, flip_p=0.5, downsample_p=0.0, occlude_p=0.0)
    xa, ya = augment_batch(x, y, aus, cfg, torch.Generator().manual_seed(1))
    flipped = ya[:, 1] == 1
    assert 0 < flipped.sum() < 32
    assert torch.equal(xa[flipped], x[flipped].float().flip(-1))
    assert torch.equal(xa[~flipped], x[~flipped].float())


def test_augment_shapes_dtypes_determinism():
    aus = BUILTIN_GROUPS["17au"]
    x = batch(8)
    y = torch.ones(8, len(aus), dtype=torch.int8)
    cfg = default_augment("17au")
    out1 = augment_batch(x, y, aus, cfg, torch.Generator().manual_seed(3))
    out2 = augment_batch(x, y, aus, cfg, torch.Generator().manual_seed(3))
    out3 = augment_batch(x, y, aus, cfg, torch.Generator().manual_seed(4))
    assert out1[0].dtype == torch.float32 and out1[0].shape == x.shape
    assert out1[1].dtype == torch.int8 and out1[1].shape == y.shape
    assert 0 <= out1[0].min() and out1[0].max() <= 255
    assert torch.equal(out1[0], out2[0]) and not torch.equal(out1[0], out3[0])
    # float input gives the same result as uint8 input
    assert torch.equal(augment_batch(x.float(), y, aus, cfg, torch.Generator().manual_seed(3))[0], out1[0])
    with pytest.raises(ValueError, match="labels have shape"):
        augment_batch(x, y[:, :3], aus, cfg, torch.Generator())


def test_occlusion_makes_black_square():
    x = batch(8, 64)
    y = torch.zeros(8, 6, dtype=torch.int8)
    cfg = AugmentConfig(flip=False, downsample_p=0.0, occlude_p=1.0, occlude_frac=(0.2, 0.3))
    xa, _ = augment_batch(x, y, BUILTIN_GROUPS["6au"], cfg, torch.Generator().manual_seed(0))
    for i in range(8):
        black = (xa[i] == 0).all(0).numpy()
        h, w, full = black_box(black)
        assert full and h == w and round(0.2 * 64) <= h <= round(0.3 * 64)
        assert torch.equal(xa[i][:, ~torch.from_numpy(black)], x[i].float()[:, ~torch.from_numpy(black)])


def test_downsample_reduces_high_frequency_energy():
    x = batch(10, 64)
    y = torch.zeros(10, 6, dtype=torch.int8)
    cfg = AugmentConfig(flip=False, downsample_p=1.0, occlude_p=0.0)
    xa, _ = augment_batch(x, y, BUILTIN_GROUPS["6au"], cfg, torch.Generator().manual_seed(0))
    for i in range(10):
        before = hf_energy(x[i].permute(1, 2, 0).numpy())
        after = hf_energy(xa[i].permute(1, 2, 0).numpy())
        assert after < 0.7 * before
    # mean brightness is kept (area down-sampling + bilinear up-sampling)
    assert abs(xa.mean() - x.float().mean()) < 2.0
