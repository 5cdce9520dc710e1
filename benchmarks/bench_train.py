"""Training throughput of the multi-view model.

1. Step time of one MultiViewNet step (two backbones, both BCEs, L_mv, L_cr,
   batch balancing, one optimizer) against two single timm backbones with
   their own linear head and BCE trained separately on the same batch: the
   ratio is the overhead of the multi-view machinery (target <= 1.05).
2. Epoch time with the real data path (crop-store memmap -> make_loader ->
   augment_batch on the device) against the same steps over in-memory tensors.
3. The same MultiViewNet step in channels-last memory (the kit's,
   ``aulib.model.network.CHANNELS_LAST``) against contiguous NCHW.

``python benchmarks/bench_train.py [--backbone lcnet_050] [--img-size 64]
[--batch-size 64] [--steps 20] [--device auto] [--threads N]``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F

from aulib.aus import au_columns, group_aus
from aulib.data.dataset import make_loader, set_epoch
from aulib.data.transforms import augment_batch, default_augment
from aulib.io import write_csv, write_npy, write_yaml
from aulib.model.distributed import resolve_device
from aulib.model.losses import MultiViewLoss
from aulib.model import network as model_mod
from aulib.model.network import MultiViewNet
from aulib.workspace import Workspace

GROUP = "17au"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(step, batches, device, warmup: int = 3) -> float:
    """Seconds per step, after ``warmup`` untimed steps."""
    for x, y in batches[:warmup]:
        step(x, y)
    _sync(device)
    t = time.perf_counter()
    for x, y in batches[warmup:]:
        step(x, y)
    _sync(device)
    return (time.perf_counter() - t) / max(1, len(batches) - warmup)


def multiview_step_fn(backbone: str, c: int, device):
    model = MultiViewNet((backbone, backbone), c).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    crit = MultiViewLoss()
    gen = torch.Generator()

    def step(x, y):
        l1, l2 = model(x)
        loss = crit(l1, l2, y, model.classifier_weights(), gen)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def single_step_fn(backbone: str, c: int, device):
    """Two independent (backbone + linear head + BCE) models, one after the other."""
    models = [torch.nn.Sequential(timm.create_model(backbone, num_classes=0), torch.nn.LazyLinear(c)).to(device)
              for _ in range(2)]
    fmt = torch.channels_last if model_mod.CHANNELS_LAST else torch.contiguous_format  # as MultiViewNet
    for m in models:
        m(torch.zeros(2, 3, 32, 32, device=device))  # materialise the lazy head
        m.to(memory_format=fmt)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in models]
    mean = torch.tensor((0.485, 0.456, 0.406), device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor((0.229, 0.224, 0.225), device=device).view(1, 3, 1, 1) * 255

    def step(x, y):
        xn = ((x.float() - mean) / std).contiguous(memory_format=fmt)
        for m, opt in zip(models, opts):
            logits = m(xn)
            loss = F.binary_cross_entropy_with_logits(logits, y.clamp(min=0).float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return step


def _fake_workspace(root: Path, n: int, size: int) -> Workspace:
    """A crop store of random faces and a split A of ``n`` rows (docs/layout.md formats)."""
    rng = np.random.default_rng(0)
    ws = Workspace(root, root / "results")
    store = ws.crops("aligned", size)
    store.mkdir(parents=True)
    rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8).tofile(store / "pixels.u8")
    images = [f"images/optimization/{i:06d}.jpg" for i in range(n)]
    write_csv(store / "index.csv", pd.DataFrame({"row": np.arange(n), "image": images, "status": "ok"}))
    write_npy(store / "done.npy", np.ones(n, dtype=bool))
    write_yaml(store / "meta.yaml", {"format": "aulib-crop-store/1", "style": "aligned", "size": size, "n": n})
    labels = pd.DataFrame(rng.choice([-1, 0, 1], (n, 17), p=[0.05, 0.75, 0.2]).astype(np.int8),
                          columns=au_columns(GROUP))
    write_csv(ws.split("A"), pd.concat([pd.DataFrame({"image": images, "variant": 0}), labels], axis=1))
    return ws


def measure(backbone: str = "lcnet_050", img_size: int = 64, batch_size: int = 64, steps: int = 20,
            device: str = "auto", threads: int | None = None, num_workers: int = 0) -> dict:
    """Both comparisons; prints them and returns seconds per step
    (``multiview_s``, ``single_s``), ``overhead`` ratio, epoch seconds
    (``loader_s``, ``memory_s``) and ``loader_ratio``."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    c, s, b = len(group_aus(GROUP)), img_size, batch_size
    torch.manual_seed(0)
    batches = [(torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, device=device),
                torch.randint(-1, 2, (b, c), dtype=torch.int8, device=device)) for _ in range(steps + 3)]
    print(f"device {device}, threads {torch.get_num_threads()}, {backbone} x2, {s} px, batch {b}, "
          f"{steps} timed steps")

    t_mv = _time_steps(multiview_step_fn(backbone, c, device), batches, device)
    t_single = _time_steps(single_step_fn(backbone, c, device), batches, device)
    print(f"multi-view step        {1000 * t_mv:8.1f} ms  ({b / t_mv:7.0f} img/s)")
    print(f"two single models      {1000 * t_single:8.1f} ms  ({b / t_single:7.0f} img/s)")
    print(f"overhead ratio (multi-view / two singles): {t_mv / t_single:.3f}  (target <= 1.05)")
    saved, model_mod.CHANNELS_LAST = model_mod.CHANNELS_LAST, False
    try:
        t_nchw = _time_steps(multiview_step_fn(backbone, c, device), batches, device)
    finally:
        model_mod.CHANNELS_LAST = saved
    print(f"multi-view step NCHW   {1000 * t_nchw:8.1f} ms  (channels-last / NCHW {t_mv / t_nchw:.3f})")

    n = b * (steps + 3)
    aug = default_augment(GROUP)
    with tempfile.TemporaryDirectory() as tmp:
        ws = _fake_workspace(Path(tmp), n, s)
        loader = make_loader(ws, "A", GROUP, s, b, train=True, num_workers=num_workers)
        set_epoch(loader, 1)
        step = multiview_step_fn(backbone, c, device)
        gen = torch.Generator()

        def augmented(x, y):
            x, y = augment_batch(x.to(device), y.to(device), GROUP, aug, gen)
            step(x, y)

        memory = [(x.to(device), y.to(device)) for x, y in loader]
        t0 = time.perf_counter()
        for x, y in loader:
            augmented(x, y)
        _sync(device)
        t_loader = time.perf_counter() - t0
        t0 = time.perf_counter()
        for x, y in memory:
            augmented(x, y)
        _sync(device)
        t_memory = time.perf_counter() - t0
    print(f"epoch of {n} images: real loader {t_loader:.2f} s, in-memory tensors {t_memory:.2f} s, "
          f"ratio {t_loader / t_memory:.3f}")
    return {"device": str(device), "threads": torch.get_num_threads(), "backbone": backbone, "img_size": s,
            "batch_size": b, "steps": steps, "multiview_s": t_mv, "single_s": t_single, "overhead": t_mv / t_single,
            "nchw_s": t_nchw,
            "images": n, "loader_s": t_loader, "memory_s": t_memory, "loader_ratio": t_loader / t_memory}


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: 8 timed steps of batch 64 once
    (``quick``), or 20 steps measured twice, best time of each side (a shared
    machine slows one side or the other at random)."""
    from benchmarks import row

    runs = [measure(steps=8 if quick else 20) for _ in range(1 if quick else 2)]
    r = {**runs[0], **{k: min(x[k] for x in runs) for k in ("multiview_s", "single_s", "nchw_s", "loader_s",
                                                             "memory_s")}}
    r["overhead"], r["loader_ratio"] = r["multiview_s"] / r["single_s"], r["loader_s"] / r["memory_s"]
    what = f"{r['backbone']} x2, {r['img_size']} px, batch {r['batch_size']}, {r['device']}"
    return [row("multi-view overhead: one two-view step vs two single-backbone steps",
                f"{1000 * r['multiview_s']:.0f} vs {1000 * r['single_s']:.0f} ms/step ({what})",
                r["overhead"], at_most=1.05),
            row("memory format: the two-view step channels-last (the kit's) vs contiguous NCHW",
                f"{1000 * r['multiview_s']:.0f} vs {1000 * r['nchw_s']:.0f} ms/step ({what})",
                r["multiview_s"] / r["nchw_s"], at_most=1.0),
            row("data loading in training: aligned crop store + augment vs in-memory batches",
                f"{r['loader_s']:.2f} vs {r['memory_s']:.2f} s per epoch of {r['images']} img "
                f"(two-view step, num_workers 0)", r["loader_ratio"], at_most=1.05)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", default="lcnet_050")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--num-workers", type=int, default=0)
    a = ap.parse_args(argv)
    return measure(a.backbone, a.img_size, a.batch_size, a.steps, a.device, a.threads, a.num_workers)


if __name__ == "__main__":
    main()
