"""Noisy-set inference: images/s with 1 and 2 ``torchrun`` processes.

Builds a small SynthAU workspace (``--images`` noisy images, ground-truth
faces, one crop store, splits), saves an untrained two-view base model as
epoch 1 of a run directory (the speed of inference does not depend on the
weights), then times the real command of the kit::

    torchrun --standalone --nproc-per-node N -m aulib.noisy --run-dir RUN --epoch 1 --workspace WS

for N = 1 and 2, interleaved, best of ``--repeats``, every process with
``OMP_NUM_THREADS=1`` (N processes use N cores). Start-up (interpreter,
imports, process group, reading the split) is measured by rerunning the same
command once the predictions exist (it then predicts nothing) and is
subtracted. Scaling efficiency = (img/s with 2) / (2 x img/s with 1); 1.0 is
perfect; on a machine with 2 cores shared with other work expect less.

    .venv/bin/python benchmarks/bench_noisy.py [--images 4096] [--repeats 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

GROUP = "17au"
REPO = Path(__file__).resolve().parent.parent   # torchrun's workers import benchmarks.bench_noisy from here


def build_workspace(root: Path, n_noisy: int, img_size: int, n_optimization: int = 64):
    """A SynthAU workspace at ``root`` with ``n_noisy`` noisy images, the
    ground-truth face cache, the crop store of ``GROUP`` at ``img_size`` and
    the split files (docs/layout.md). Returns the :class:`Workspace`."""
    from aulib.aus import BUILTIN_CROP
    from aulib.data.crops import build_crop_store
    from aulib.data.faces.cache import build_face_cache
    from aulib.data.sources import prepare_labels
    from aulib.data.splits import labelled_images, make_splits
    from aulib.data.sources.synthau.generate import generate
    from aulib.workspace import Workspace

    ws = Workspace.for_profile(root.name, root=root)
    generate(ws.data, counts={"optimization": n_optimization, "noisy": n_noisy}, progress=False)
    prepare_labels(ws, "synthau", progress=False)
    images = labelled_images(ws)
    faces, _ = build_face_cache(ws.data, images, ws.faces, method="ground_truth", progress=False)
    style = BUILTIN_CROP[GROUP]
    build_crop_store(ws.data, faces, ws.crops(style, img_size), style, img_size, images=images, progress=False)
    with warnings.catch_warnings():   # a 64-image optimization split leaves B without some positives
        warnings.simplefilter("ignore", UserWarning)
        make_splits(ws)
    return ws


def save_base_run(ws, img_size: int, backbones=("lcnet_050", "lcnet_050"), run_name: str = "bench_base"):
    """A run directory holding ``config.yaml`` and an untrained
    ``checkpoints/epoch001.pt`` (the formats :func:`aulib.infer.load_model` reads)."""
    import torch

    from aulib.model.config import TrainConfig
    from aulib.io import write_torch, write_yaml
    from aulib.model.network import create_model

    cfg = TrainConfig(run_name=run_name, workspace=str(ws.root), group=GROUP, backbones=list(backbones),
                      img_size=img_size, epochs=1, multicrop=False).resolved()
    run_dir = ws.run(run_name)
    write_yaml(run_dir / "config.yaml", cfg.to_dict())
    torch.manual_seed(0)
    write_torch(run_dir / "checkpoints" / "epoch001.pt", {"model": create_model(cfg).state_dict(), "epoch": 1})
    return run_dir


def torchrun_command(nproc: int, ws, run_dir: Path, chunk_rows: int, batch_size: int) -> list[str]:
    """``torchrun ... -m aulib.noisy`` (the kit's own command line)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "aulib.noisy", "--run-dir", str(run_dir), "--epoch", "1",
            "--workspace", str(ws.root), "--chunk-rows", str(chunk_rows), "--batch-size", str(batch_size),
            "--device", "cpu"]


def timed_command(cmd: list[str]) -> float:
    """Wall seconds of ``cmd`` (one thread per process, progress bars off);
    raises with the command's output when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "AULIB_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def measure(n_images: int = 4096, img_size: int = 64, batch_size: int = 256, repeats: int = 2,
            chunks_per_process: int = 4) -> dict:
    """Seconds (best of ``repeats``) and images/s of the noisy-set prediction
    with 1 and 2 processes; start-up seconds of each; scaling efficiency."""
    from aulib.io import read_npy

    out: dict = {"images": n_images, "img_size": img_size, "batch_size": batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ws = build_workspace(Path(tmp) / "bench_noisy", n_images, img_size)
        run_dir = save_base_run(ws, img_size)
        out["setup_s"] = time.perf_counter() - t
        chunk_rows = max(1, -(-n_images // (2 * chunks_per_process)))   # 2 x chunks_per_process chunks
        preds = run_dir / "preds" / "noisy_epoch001.npy"
        total = {1: float("inf"), 2: float("inf")}
        startup = {1: float("inf"), 2: float("inf")}
        for _ in range(repeats):
            for nproc in (1, 2):
                shutil.rmtree(run_dir / "preds", ignore_errors=True)
                cmd = torchrun_command(nproc, ws, run_dir, chunk_rows, batch_size)
                total[nproc] = min(total[nproc], timed_command(cmd))
                if read_npy(preds).shape[0] != n_images:
                    raise RuntimeError(f"{preds} does not hold {n_images} rows")
                startup[nproc] = min(startup[nproc], timed_command(cmd))   # predictions exist: start-up only
    for nproc in (1, 2):
        work = max(total[nproc] - startup[nproc], 1e-9)
        out[nproc] = {"total_s": total[nproc], "startup_s": startup[nproc], "predict_s": work,
                      "images_per_s": n_images / work, "images_per_s_with_startup": n_images / total[nproc]}
    out["efficiency"] = out[2]["images_per_s"] / (2 * out[1]["images_per_s"])
    out["efficiency_with_startup"] = out[2]["images_per_s_with_startup"] / (2 * out[1]["images_per_s_with_startup"])
    return out


def report(r: dict) -> None:
    print(f"noisy set: {r['images']} SynthAU images, {GROUP} crops {r['img_size']} px, 2 x lcnet_050, "
          f"batch {r['batch_size']}, OMP_NUM_THREADS=1 per process, CPU (workspace built in {r['setup_s']:.1f} s)")
    print(f"{'processes':<10}{'total s':>9}{'start-up s':>12}{'predict s':>11}{'img/s':>9}{'img/s incl. start-up':>22}")
    for nproc in (1, 2):
        m = r[nproc]
        print(f"{nproc:<10}{m['total_s']:>9.2f}{m['startup_s']:>12.2f}{m['predict_s']:>11.2f}"
              f"{m['images_per_s']:>9.0f}{m['images_per_s_with_startup']:>22.0f}")
    print(f"scaling efficiency (img/s with 2) / (2 x img/s with 1): {r['efficiency']:.2f} "
          f"({r['efficiency_with_startup']:.2f} with start-up)")


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: 1024 images once (``quick``) or 4096 best of 2."""
    from benchmarks import row

    r = measure(n_images=1024 if quick else 4096, repeats=1 if quick else 2)
    report(r)
    one, two = r[1], r[2]
    return [row("noisy-set inference: torchrun 2 vs 1 process (efficiency)",
                f"1 process {one['images_per_s']:.0f} img/s, 2 processes {two['images_per_s']:.0f} img/s "
                f"({r['images']} img; start-up {one['startup_s']:.1f} / {two['startup_s']:.1f} s excluded, "
                f"efficiency with it {r['efficiency_with_startup']:.2f})",
                r["efficiency"], expect=f"<= 1 on {os.cpu_count()} cores")]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4096, help="noisy images to predict")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    r = measure(a.images, a.img_size, a.batch_size, a.repeats)
    report(r)
    return r


if __name__ == "__main__":
    main()
