"""Is the data loader hidden behind the training step?

Builds a throwaway crop store (random 64 px images through the real
``build_crop_store``), then measures side by side, at batch 128:

- loader throughput (images/s) of ``make_loader`` + ``augment_batch``
  (train split, num_workers 0 and 2) and of an expanded B split (degraded copies);
- the time of one training step of a demo-sized model (two
  ``lcnet_050`` backbones + linear heads, forward + backward + AdamW);
- the ratio loader time per batch / step time per batch (target <= 0.05);
- epoch time with the loader vs the same batches already in memory;
- the cost of the crop stores' CRC32 check on read (``checks``): batches of
  sorted rows read from a raw and a jpeg store with the check and without.

Run: ``.venv/bin/python benchmarks/bench_loader.py [--images 1024] [--threads 1] [--checks-size 224]``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from aulib.aus import AUS_2020, BUILTIN_GROUPS, au_columns
from aulib.data.crops import CropStore, build_crop_store
from aulib.data.dataset import make_loader, set_epoch
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.data.splits import expand_variants
from aulib.data.transforms import augment_batch, default_augment
from aulib.io import write_csv
from aulib.workspace import Workspace


def build_workspace(root: Path, n_images: int, size: int) -> Workspace:
    """Random images with a face box filling the image, a box1.0 crop store, splits A and B (x4)."""
    ws = Workspace.for_profile("bench", root=root)
    rng = np.random.default_rng(0)
    names, faces = [], []
    for i in range(n_images):
        name = f"images/optimization/{i:06d}.png"
        (ws.data / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(ws.data / name)
        row = dict.fromkeys(FACE_COLUMNS, np.nan)
        row.update(image=name, width=size, height=size, n_faces=1, score=1.0, x0=0, y0=0, x1=size, y1=size)
        names.append(name)
        faces.append(row)
    build_crop_store(ws.data, pd.DataFrame(faces, columns=FACE_COLUMNS), ws.crops("box1.0", size),
                     "box1.0", size, progress=False)
    labels = pd.DataFrame(rng.integers(-1, 2, (n_images, len(AUS_2020))).astype(np.int8),
                          columns=au_columns(AUS_2020))
    labels.insert(0, "image", names)
    write_csv(ws.split("A"), expand_variants(labels, 1))
    write_csv(ws.split("B"), expand_variants(labels.iloc[: n_images // 4], 4))
    return ws


class DemoModel(torch.nn.Module):
    """Two lcnet_050 backbones (random init) with one linear head each; stands in for the demo model."""

    def __init__(self, n_aus: int):
        super().__init__()
        import timm

        self.views = torch.nn.ModuleList(
            [timm.create_model("lcnet_050", pretrained=False, num_classes=0) for _ in range(2)])
        width = [getattr(v, "head_hidden_size", None) or v.num_features for v in self.views]
        self.heads = torch.nn.ModuleList([torch.nn.Linear(w, n_aus) for w in width])

    def forward(self, x):
        x = (x / 255.0 - 0.5) / 0.25
        return [h(v(x)) for v, h in zip(self.views, self.heads)]


def make_step(n_aus: int, device: torch.device):
    model = DemoModel(n_aus).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(x, y):
        logits = model(x)
        known = (y >= 0).float()
        target = y.clamp(min=0).float()
        loss = sum((torch.nn.functional.binary_cross_entropy_with_logits(logit, target, reduction="none") * known).mean()
                   for logit in logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(images: int = 1024, size: int = 64, batch: int = 128, threads: int = 1) -> dict:
    """All measurements of the module docstring; prints them and returns
    ``throughput`` {(split, workers): (read, read + augment) images/s},
    ``step_s`` (s/batch), ``loader_step`` {workers: loader/step ratio} and
    ``epoch`` {workers: (loader s, in-memory s, batches)}."""
    args = argparse.Namespace(images=images, size=size, batch=batch, threads=threads)
    out = {"images": images, "size": size, "batch": batch, "threads": threads,
           "throughput": {}, "loader_step": {}, "epoch": {}}
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    group = "17au"
    aus = BUILTIN_GROUPS[group]
    cfg = default_augment(group)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ws = build_workspace(Path(tmp), args.images, args.size)
        print(f"crop store: {args.images} images of {args.size}px built in {time.perf_counter() - t:.1f}s; "
              f"batch {args.batch}, device {device}, torch threads {args.threads}")

        gen = torch.Generator(device=device).manual_seed(0)

        def run_loader(loader, augment=True, epoch=0):
            set_epoch(loader, epoch)
            n = 0
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if augment:
                    x, y = augment_batch(x, y, aus, cfg, gen)
                n += len(x)
            return n

        loaders = {}
        print("\nloader throughput: read only | read + augment_batch")
        for workers in (0, 2):
            for split, train in (("A", True), ("B", False)):
                loader = make_loader(ws, split, group, args.size, args.batch, train=train, num_workers=workers,
                                     style="box1.0")
                run_loader(loader)  # warm-up: workers start, pages cached
                n = len(loader.dataset)
                read = min(timed(lambda: run_loader(loader, augment=False, epoch=1)) for _ in range(2))
                full = min(timed(lambda: run_loader(loader, epoch=1)) for _ in range(2))
                loaders[(split, workers)] = (loader, full / len(loader))
                out["throughput"][(split, workers)] = (n / read, n / full)
                what = "train, variant 0" if train else "eval, x4 degraded copies"
                print(f"  split {split} ({what}), num_workers {workers}: {n / read:7.0f} | {n / full:7.0f} images/s"
                      f"  ({1000 * read / len(loader):5.1f} | {1000 * full / len(loader):5.1f} ms/batch)")

        step = make_step(len(aus), device)
        x0, y0 = next(iter(loaders[("A", 0)][0]))
        x0, y0 = augment_batch(x0.to(device), y0.to(device), aus, cfg, gen)
        for _ in range(2):
            step(x0, y0)
        reps = 5
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_time = timed(lambda: [step(x0, y0) for _ in range(reps)]) / reps
        print(f"\ntraining step (2 x lcnet_050 + heads, fwd+bwd+AdamW): {1000 * step_time:.1f} ms/batch")
        out["step_s"] = step_time
        for workers in (0, 2):
            per_batch = loaders[("A", workers)][1]
            out["loader_step"][workers] = per_batch / step_time
            print(f"  loader/step ratio, num_workers {workers}: {per_batch / step_time:.3f} (target <= 0.05)")

        print("\nepoch time (read + augment + step) vs the same batches already in memory")
        for workers in (0, 2):
            loader = loaders[("A", workers)][0]
            set_epoch(loader, 2)
            in_memory = [(x.to(device), y.to(device)) for x, y in loader]

            def epoch_loader():
                set_epoch(loader, 2)
                for x, y in loader:
                    step(*augment_batch(x.to(device, non_blocking=True), y.to(device, non_blocking=True),
                                        aus, cfg, gen))

            def epoch_memory():
                for x, y in in_memory:
                    step(*augment_batch(x, y, aus, cfg, gen))

            t_loader = min(timed(epoch_loader) for _ in range(2))
            t_memory = min(timed(epoch_memory) for _ in range(2))
            print(f"  num_workers {workers}: loader {t_loader:.2f}s, in memory {t_memory:.2f}s, "
                  f"overhead {100 * (t_loader / t_memory - 1):+.1f}% ({len(in_memory)} batches)")
            out["epoch"][workers] = (t_loader, t_memory, len(in_memory))
    return out


def measure_checks(images: int = 512, size: int = 224, batch: int = 128, reps: int = 3) -> dict:
    """Seconds per image of ``store.images[rows]`` (batches of ``batch`` sorted
    random rows) with the CRC32 check and without, for a raw and a jpeg store
    of ``images`` crops of ``size`` px (smooth random images, as faces compress);
    prints and returns ``{codec: (checked_s, unchecked_s)}``."""
    out = {}
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        names, faces = [], []
        for i in range(images):
            name = f"images/{i:06d}.png"
            small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).save(root / name)
            row = dict.fromkeys(FACE_COLUMNS, np.nan)
            row.update(image=name, width=size, height=size, n_faces=1, score=1.0, x0=0, y0=0, x1=size, y1=size)
            names.append(name)
            faces.append(row)
        faces = pd.DataFrame(faces, columns=FACE_COLUMNS)
        batches = [np.sort(rng.choice(images, batch, replace=False)) for _ in range(max(images // batch, 1))]
        print(f"\nCRC32 check on read ({images} crops of {size} px, batches of {batch} sorted rows)")
        for codec in ("raw", "jpeg"):
            store = CropStore(build_crop_store(root, faces, root / codec, "box1.0", size, codec=codec,
                                               progress=False).dir)
            times = {}
            for verify in (True, False, True, False):        # alternated, best of each
                store.images.verify = verify
                t = min(timed(lambda: [store.images[b] for b in batches]) for _ in range(reps))
                times[verify] = min(times.get(verify, t), t)
            n = sum(len(b) for b in batches)
            out[codec] = (times[True] / n, times[False] / n)
            print(f"  {codec:4s}: {1e6 * times[True] / n:7.1f} us/img checked, {1e6 * times[False] / n:7.1f} "
                  f"unchecked ({100 * (times[True] / times[False] - 1):+.1f}%)")
    return out


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: 512 (``quick``) or 1024 random 64 px crops, batch 128."""
    from benchmarks import row

    r = measure(images=512 if quick else 1024)
    rows = []
    for workers, (t_loader, t_memory, batches) in r["epoch"].items():
        rows.append(row(f"data loading: epoch with crop store + augment vs in memory (num_workers {workers})",
                        f"{t_loader:.2f} vs {t_memory:.2f} s ({batches} batches of {r['batch']}, "
                        f"2 x lcnet_050 step)", t_loader / t_memory, at_most=1.05))
    read, full = r["throughput"][("A", 0)]
    rows.append(row("data loading: loader time / training-step time, per batch (num_workers 0)",
                    f"{1000 * r['batch'] / full:.1f} vs {1000 * r['step_s']:.0f} ms/batch "
                    f"(read {read:,.0f} img/s, read + augment {full:,.0f} img/s)",
                    r["loader_step"][0], at_most=0.05))
    for codec, (checked, unchecked) in measure_checks(images=256 if quick else 512).items():
        rows.append(row(f"crop store read with CRC32 check vs without ({codec}, 224 px)",
                        f"{1e6 * checked:.1f} vs {1e6 * unchecked:.1f} us/img "
                        f"(+{1e6 * (checked - unchecked):.0f} us/img, one core)", checked / unchecked,
                        expect="reported: the loader rows above include it"))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    p.add_argument("--checks-size", type=int, default=224, help="crop size of the CRC32 check's measurement")
    args = p.parse_args(argv)
    out = measure(args.images, args.size, args.batch, args.threads)
    out["checks"] = measure_checks(size=args.checks_size, batch=args.batch)
    return out


if __name__ == "__main__":
    main()
