"""What the paper profile asks of a GPU: rates measured on this machine's device
and the profile's GPU-hours projected from them.

1. Two-view training images/s (forward + backward + AdamW of
   :class:`aulib.model.network.MultiViewNet` with the full loss) of the
   ``efficientnet_b4`` and ``resnet101`` pairs at 224 px, batch 32, in fp32,
   bf16 autocast, and bf16 autocast + channels_last; inference images/s
   (bf16 autocast, no grad) of each pair.
2. Loader images/s (``make_loader`` + ``augment_batch`` on the device) at
   224 px from the raw crop store and the compressed (jpeg) one, with N
   DataLoader workers, against the fastest training rate (ratio >= 1: the
   loader keeps one GPU fed).
3. MTCNN images/s batched on the device (``aulib.data.faces.detect.detect_faces``).
4. GPU-hours of the paper profile (``notebooks/profiles/paper.yaml``: every
   04_train run's epochs, backbones, stage and multi-crop evaluation, the
   noisy-set prediction, face detection) from those rates and the paper's
   image counts (:data:`PAPER_IMAGES`).

``python -m benchmarks --gpu`` (one GPU, about 5 minutes);
``python -m benchmarks --gpu --toy`` runs the same code at toy size
(``test_efficientnet`` / ``test_resnet``, 32 px, a few batches) on the CPU,
so it cannot rot. As a script: ``python benchmarks/bench_gpu.py [--toy] [--device auto]``.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from aulib.aus import AUS_2020, au_columns, group_aus
from aulib.data.crops import build_crop_store
from aulib.data.dataset import make_loader, set_epoch
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.data.faces.detect import detect_faces
from aulib.data.splits import expand_variants
from aulib.data.transforms import augment_batch, default_augment
from aulib.io import write_csv
from aulib.pipeline.profile import load_profile, resolve
from aulib.model.distributed import resolve_device
from aulib.model.losses import MultiViewLoss
from aulib.model.network import MultiViewNet
from aulib.workspace import Workspace

from benchmarks import row

GROUP = "17au"
#: Image counts of the paper (EmotioNet 2020): A the optimization set without
#: B, B and H expanded x4 (variants 0-3), NOISY the automatically labelled set
#: that 03 predicts (and MTCNN reads) and C the filtered noisy set
#: (pretraining reads A + C).
PAPER_IMAGES = {"A": 22_500, "B": 2_500 * 4, "H": 2_500 * 4, "C": 300_000, "NOISY": 950_000}
#: Forward passes per evaluated image with multi-crop (identity, flip, two 0.9 crops).
MULTICROP_VIEWS = 4
MODES = ("fp32", "bf16", "bf16+channels_last")


@dataclass(frozen=True)
class Size:
    """Benchmark sizes; ``backbones`` maps the paper's backbone to the one timed."""

    img: int
    batch: int
    steps: int
    warmup: int
    backbones: dict
    loader_images: int
    loader_batches: int
    workers: tuple
    mtcnn_images: int
    mtcnn_size: int


FULL = Size(img=224, batch=32, steps=20, warmup=5,
            backbones={"efficientnet_b4": "efficientnet_b4", "resnet101": "resnet101"},
            loader_images=2048, loader_batches=48, workers=(0, 4, 8), mtcnn_images=256, mtcnn_size=512)
TOY = Size(img=32, batch=4, steps=2, warmup=1,
           backbones={"efficientnet_b4": "test_efficientnet", "resnet101": "test_resnet"},
           loader_images=32, loader_batches=4, workers=(0,), mtcnn_images=4, mtcnn_size=160)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, mode: str):
    if mode == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def train_rates(backbone: str, size: Size, device: torch.device) -> dict:
    """Images/s of training steps in every mode of :data:`MODES`, and of bf16 inference."""
    c = len(group_aus(GROUP))
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randint(0, 256, (size.batch, 3, size.img, size.img), generator=gen).float().to(device)
    y = torch.randint(-1, 2, (size.batch, c), generator=gen).to(device)
    out = {}
    for mode in MODES:
        torch.manual_seed(0)
        model = MultiViewNet((backbone, backbone), c).to(device).train()
        xm = x
        if mode.endswith("channels_last"):
            model = model.to(memory_format=torch.channels_last)
            xm = x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        crit, bal = MultiViewLoss(), torch.Generator()

        def step():
            with _autocast(device, mode):
                l1, l2 = model(xm)
            loss = crit(l1.float(), l2.float(), y, model.classifier_weights(), generator=bal)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        out[mode] = size.batch / _timed(step, size, device)
        if mode == "bf16+channels_last":
            model.eval()
            with torch.no_grad():
                out["infer_bf16"] = size.batch / _timed(lambda: model.probs(xm), size, device, autocast=mode)
        model = opt = None          # freed before the next mode's model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _timed(fn, size: Size, device: torch.device, autocast: str | None = None) -> float:
    """Seconds per call of ``fn`` after ``size.warmup`` untimed calls."""
    ctx = (lambda: _autocast(device, autocast)) if autocast else contextlib.nullcontext
    with ctx():
        for _ in range(size.warmup):
            fn()
        _sync(device)
        t = time.perf_counter()
        for _ in range(size.steps):
            fn()
        _sync(device)
    return (time.perf_counter() - t) / size.steps


def build_stores(root: Path, n: int, img: int) -> dict[str, Workspace]:
    """Smooth random pictures (JPEG-like content), a face box filling each, and
    a ``box1.0`` crop store per codec (raw, jpeg) in workspaces with the same split A."""
    rng = np.random.default_rng(0)
    data = root / "data"
    faces = []
    for i in range(n):
        name = f"images/optimization/{i:06d}.png"
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (img // 8 + 1, img // 8 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((img, img), Image.Resampling.BILINEAR).save(data / name)
        face = dict.fromkeys(FACE_COLUMNS, np.nan)
        face.update(image=name, width=img, height=img, n_faces=1, score=1.0, x0=0, y0=0, x1=img, y1=img)
        faces.append(face)
    faces = pd.DataFrame(faces, columns=FACE_COLUMNS)
    labels = pd.DataFrame(rng.integers(-1, 2, (n, len(AUS_2020))).astype(np.int8), columns=au_columns(AUS_2020))
    labels.insert(0, "image", faces["image"])
    stores = {}
    for codec in ("raw", "jpeg"):
        ws = Workspace.for_profile("bench", root=root / codec)
        build_crop_store(data, faces, ws.crops("box1.0", img), "box1.0", img, progress=False, codec=codec)
        write_csv(ws.split("A"), expand_variants(labels, 1))
        stores[codec] = ws
    return stores


def loader_rate(ws: Workspace, size: Size, workers: int, device: torch.device) -> float:
    """Images/s of the training loader plus on-device augmentation."""
    aus = group_aus(GROUP)
    cfg, gen = default_augment(GROUP), torch.Generator(device=device).manual_seed(0)
    loader = make_loader(ws, "A", GROUP, size.img, size.batch, train=True, num_workers=workers, style="box1.0")
    set_epoch(loader, 0)
    n, t = 0, None
    for i, (x, y) in enumerate(loader):
        if i == 1:   # after the workers' start-up
            _sync(device)
            t, n = time.perf_counter(), 0
        x, y = augment_batch(x.to(device, non_blocking=True), y.to(device, non_blocking=True), aus, cfg, gen)
        n += len(x)
        if i >= size.loader_batches:
            break
    _sync(device)
    return n / (time.perf_counter() - t)


def mtcnn_rate(size: Size, device: torch.device) -> float:
    """Images/s of batched MTCNN on the device (sample photos, one size)."""
    from benchmarks.bench_faces import sample_images

    images = sample_images(size.mtcnn_images, size.mtcnn_size)
    dev = str(device)
    detect_faces(images[:2], device=dev, batch_size=2, progress=False)   # load the weights, warm up
    t = time.perf_counter()
    detect_faces(images, device=dev, batch_size=32, progress=False)
    _sync(device)
    return len(images) / (time.perf_counter() - t)


def paper_runs(profile: str = "paper") -> list[dict]:
    """Every 04_train run of the profile: name, backbone, epochs, train images and evaluated rows per epoch."""
    prof = load_profile(profile)
    runs = []
    for step in prof.steps:
        if step.stem != "04_train":
            continue
        p = resolve(prof, "04_train", step.parameters)
        overrides = p.get("overrides") or {}
        train = PAPER_IMAGES["A"] + (PAPER_IMAGES["C"] if p.get("stage") == "pretrain" else 0)
        views = MULTICROP_VIEWS if overrides.get("multicrop", True) else 1
        evaluated = (PAPER_IMAGES["B"] + (PAPER_IMAGES["H"] if p.get("heldout") else 0)) * (1 + views)
        runs.append({"name": p.get("run_name") or step.name, "backbone": p["backbones"][0], "epochs": int(p["epochs"]),
                     "train_images": train, "eval_forwards": evaluated})
    return runs


def project_hours(runs: list[dict], rates: dict, mtcnn_ips: float) -> dict:
    """GPU-hours per run (training at the best mode, evaluation at the inference rate),
    the noisy-set prediction (effb4 base model) and face detection (A + B + noisy)."""
    hours = {}
    for r in runs:
        rate = rates[r["backbone"]]
        per_epoch = r["train_images"] / max(rate[m] for m in MODES) + r["eval_forwards"] / rate["infer_bf16"]
        hours[r["name"]] = r["epochs"] * per_epoch / 3600
    hours["03_noisy_filter"] = PAPER_IMAGES["NOISY"] / rates["efficientnet_b4"]["infer_bf16"] / 3600
    faces = PAPER_IMAGES["A"] + PAPER_IMAGES["B"] // 4 + PAPER_IMAGES["NOISY"]
    hours["02_split (MTCNN)"] = faces / mtcnn_ips / 3600
    return hours


def measure(toy: bool = False, device: str = "auto") -> dict:
    """Every figure of the module docstring; prints them as it goes."""
    size = TOY if toy else FULL
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {dev} ({name}), {'toy' if toy else 'full'} size: {size.img} px, batch {size.batch}", flush=True)
    rates = {}
    for paper_bb, bb in size.backbones.items():
        t = time.perf_counter()
        rates[paper_bb] = train_rates(bb, size, dev)
        print(f"  {bb} pair: " + ", ".join(f"{k} {v:.1f} img/s" for k, v in rates[paper_bb].items())
              + f" ({time.perf_counter() - t:.0f} s)", flush=True)
    loader = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        stores = build_stores(Path(tmp), size.loader_images, size.img)
        print(f"  crop stores {sorted(stores)} of {size.loader_images} images built in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        for codec, ws in stores.items():
            for w in size.workers:
                loader[(codec, w)] = loader_rate(ws, size, w, dev)
                print(f"  loader {codec} store, {w} workers: {loader[(codec, w)]:.0f} img/s", flush=True)
    mtcnn = mtcnn_rate(size, dev)
    print(f"  MTCNN batched: {mtcnn:.1f} img/s", flush=True)
    hours = project_hours(paper_runs(), rates, mtcnn)
    return {"device": f"{dev} ({name})", "size": size, "rates": rates, "loader": loader, "mtcnn": mtcnn,
            "hours": hours}


def rows(res: dict) -> list[dict]:
    size, rates = res["size"], res["rates"]
    out = []
    for paper_bb, bb in size.backbones.items():
        r = rates[paper_bb]
        out.append(row(f"train {bb} pair, {size.img} px, batch {size.batch}: bf16+channels_last vs fp32 img/s",
                       ", ".join(f"{m} {r[m]:.1f}" for m in MODES) + f"; inference bf16 {r['infer_bf16']:.1f}",
                       r["bf16+channels_last"] / r["fp32"], expect=">= 1 on a GPU"))
    fastest = max(r[m] for r in rates.values() for m in MODES)
    for (codec, w), ips in res["loader"].items():
        out.append(row(f"loader {codec} store, {w} workers vs fastest training rate ({fastest:.0f} img/s)",
                       f"{ips:.0f} vs {fastest:.0f} img/s", ips / fastest, at_least=1))
    out.append(row(f"MTCNN batched on {res['device']}", f"{res['mtcnn']:.1f} img/s", None))
    total = sum(res["hours"].values())
    detail = ", ".join(f"{k} {v:.2f}" for k, v in res["hours"].items())
    out.append(row("paper profile projected GPU-hours (sum; per run)", f"{total:.1f} h: {detail}", None,
                   expect="fill in from a GPU run"))
    return out


def run(quick: bool = False, device: str = "auto") -> list[dict]:
    """Rows for ``python -m benchmarks --gpu`` (``quick``: the toy size)."""
    return rows(measure(toy=quick, device=device))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--toy", action="store_true", help="toy size (CPU, seconds)")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu")
    a = ap.parse_args(argv)
    for r in run(a.toy, a.device):
        print(f"{r['name']}: {r['measured']}" + ("" if r["ratio"] is None else f" (ratio {r['ratio']:.3g})"))


if __name__ == "__main__":
    main()
