"""Batched MTCNN (aulib.data.faces.detect_faces) against one image at a time.

Both modes run the same detector on the same images (copies and variants of
the sample photos at one fixed size: flips, brightness, small rotations), timed
in one process, interleaved, best of ``--repeats`` (a shared machine is
noisy); peak memory (max RSS) of each mode is measured in a fresh process.
Prints images/s of each mode, their ratio, and the peak RSS above the
process's size after import and warm-up.

    .venv/bin/python benchmarks/bench_faces.py [--n 32] [--size 512] [--batch-size 16] [--threads 1]
        [--device cpu] [--repeats 3]
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import numpy as np


def sample_images(n: int, size: int) -> list[np.ndarray]:
    """``n`` RGB ``(size, size, 3)`` variants of grace_hopper.jpg and the astronaut."""
    import matplotlib.cbook as cbook
    import skimage.data
    from PIL import Image

    from aulib.data.faces import load_rgb

    grace = load_rgb(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[44:556]   # 512 x 512
    bases = [Image.fromarray(grace), Image.fromarray(skimage.data.astronaut())]
    out = []
    for k in range(n):
        im = bases[k % 2].resize((size, size), Image.Resampling.BILINEAR)
        im = im.rotate([0, 5, -5, 10, -10, 15, -15, 0][(k // 2) % 8], resample=Image.Resampling.BILINEAR)
        a = np.asarray(im).astype(np.float32) * (0.7 + 0.1 * ((k // 16) % 5))
        a = np.clip(a, 0, 255).astype(np.uint8)
        out.append(a[:, ::-1].copy() if (k // 4) % 2 else a)
    return out


MODES = ("one_at_a_time", "mtcnn_per_image", "batched")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _detect(mode: str, images, batch_size: int, device: str) -> int:
    """Run one mode over all images; returns how many had a face."""
    from aulib.data.faces import _mtcnn, detect_faces

    if mode == "batched":
        found = int((detect_faces(images, device=device, batch_size=batch_size, progress=False)["n_faces"] > 0).sum())
    elif mode == "one_at_a_time":
        found = sum(int(detect_faces([img], device=device, batch_size=1, progress=False)["n_faces"].iloc[0] > 0)
                    for img in images)
    else:   # the bare facenet-pytorch call, one image per call
        detector = _mtcnn(device)
        found = sum(int(detector.detect(img)[0] is not None) for img in images)
    if device != "cpu":
        import torch

        torch.cuda.synchronize()
    return found


def _setup(n: int, size: int, threads: int, device: str):
    import torch

    from aulib.data.faces import detect_faces

    if threads:
        torch.set_num_threads(threads)
    images = sample_images(n, size)
    detect_faces(images[:2], device=device, batch_size=2, progress=False)   # load weights, warm up
    return images


def _time_modes(args, queue) -> None:
    """All modes in one process, interleaved, ``repeats`` times: best seconds per mode."""
    images = _setup(args.n, args.size, args.threads, args.device)
    best = {m: float("inf") for m in MODES}
    found = {}
    for _ in range(args.repeats):
        for mode in MODES:
            t = time.perf_counter()
            found[mode] = _detect(mode, images, args.batch_size, args.device)
            best[mode] = min(best[mode], time.perf_counter() - t)
    queue.put((best, found))


def _peak_memory(mode: str, args, queue) -> None:
    """One mode in a fresh process: max RSS, and its rise above the warmed-up process."""
    images = _setup(args.n, args.size, args.threads, args.device)
    base = _max_rss_mib()
    _detect(mode, images, args.batch_size, args.device)
    queue.put((_max_rss_mib(), _max_rss_mib() - base))


def _in_child(target, *args):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    best, found = _in_child(_time_modes, args)
    memory = {mode: _in_child(_peak_memory, mode, args) for mode in MODES}
    print(f"{args.n} images {args.size}x{args.size}, batch_size {args.batch_size}, device {args.device}, "
          f"torch threads {args.threads or 'default'}, best of {args.repeats}")
    print(f"{'mode':<16}{'s':>8}{'img/s':>9}{'faces':>7}{'peak RSS MiB':>14}{'above warm':>12}")
    results = {}
    for mode in MODES:
        results[mode] = {"seconds": best[mode], "images_per_s": args.n / best[mode], "faces_found": found[mode],
                         "peak_rss_mib": memory[mode][0], "peak_above_warm_mib": memory[mode][1]}
        r = results[mode]
        print(f"{mode:<16}{r['seconds']:>8.2f}{r['images_per_s']:>9.2f}{r['faces_found']:>7}"
              f"{r['peak_rss_mib']:>14.0f}{r['peak_above_warm_mib']:>12.0f}")
    ratio = results["batched"]["images_per_s"] / results["one_at_a_time"]["images_per_s"]
    print(f"batched / one-at-a-time throughput: {ratio:.2f}x")
    return results


if __name__ == "__main__":
    main()
