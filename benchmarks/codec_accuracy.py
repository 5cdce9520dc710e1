"""Does a JPEG crop store cost accuracy? The same small training run from a raw and a jpeg store.

Builds a SynthAU ``ci`` workspace (ground-truth faces, aligned crops, splits A
and B), trains the same 17au run (two ``test_efficientnet`` backbones, the
``ci`` profile's settings, fixed seed) once from the raw store and once from
a jpeg store of the same crops, and prints B's final score per epoch of both.

    .venv/bin/python benchmarks/codec_accuracy.py [--epochs 3] [--size 48] [--quality 90]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path


def workspace(root: Path, size: int, codec: str, quality: int, data=None):
    """A ci workspace at ``root`` with the aligned store of ``codec``; ``data``: reuse that workspace's data."""
    from aulib.data.crops import build_crop_store
    from aulib.data.faces.cache import build_face_cache
    from aulib.data.sources import prepare_labels
    from aulib.data.splits import labelled_images, make_splits
    from aulib.data.sources.synthau.generate import generate
    from aulib.workspace import Workspace

    ws = Workspace.for_profile("ci", root=root)
    if data is None:
        generate(ws.data, profile="ci", progress=False)
        prepare_labels(ws, "synthau", synth_profile="ci", progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            make_splits(ws, seed=0)
    else:
        shutil.copytree(data.root, ws.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("crops", "train"))
    images = labelled_images(ws)
    faces, _ = build_face_cache(ws.data, images, ws.faces, method="ground_truth", progress=False)
    build_crop_store(ws.data, faces, ws.crops("aligned", size), "aligned", size, images=images, progress=False,
                     codec=codec, quality=quality)
    return ws


def measure(epochs: int = 3, size: int = 48, quality: int = 90) -> dict:
    """B final score per epoch, {codec: [scores]}, and bytes per crop of each store."""
    import pandas as pd

    from aulib.model.config import TrainConfig
    from aulib.data.crops import CropStore
    from aulib.train.loop import train

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw_ws = None
        for codec in ("raw", "jpeg"):
            ws = workspace(Path(tmp) / codec, size, codec, quality, data=raw_ws)
            raw_ws = raw_ws or ws
            cfg = TrainConfig(run_name=f"codec_{codec}", workspace=str(ws.root), group="17au",
                              backbones=["test_efficientnet", "test_efficientnet"], img_size=size, epochs=epochs,
                              batch_size=32, lr=0.005, seed=0, multicrop=False)
            run_dir = train(cfg)
            log = pd.read_csv(run_dir / "log.csv")
            store = CropStore(ws.crops("aligned", size))
            pixels = store.dir / ("pixels.u8" if codec == "raw" else "pixels.jpg")
            out[codec] = {"B_final": log["B_final"].round(4).tolist(), "bytes_per_crop": pixels.stat().st_size / len(store)}
            print(f"{codec:>5}: B final by epoch {out[codec]['B_final']}, "
                  f"{out[codec]['bytes_per_crop']:.0f} bytes/crop ({len(store)} crops of {size} px)", flush=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args(argv)
    return measure(a.epochs, a.size, a.quality)


if __name__ == "__main__":
    main()
