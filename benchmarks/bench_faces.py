"""Batched MTCNN (aulib.data.faces.detect.detect_faces) against one image at a time.

Both modes run the same detector on the same images (copies and variants of
the sample photos at one fixed size: flips, brightness, small rotations), timed
in one process, interleaved, best of ``--repeats`` (a shared machine is
noisy); peak memory (max RSS) of each mode is measured in a fresh process.
Prints images/s of each mode, their ratio, and the peak RSS above the
process's size after import and warm-up.

Modes: ``one_at_a_time`` (detect_faces, one image per call),
``mtcnn_per_image`` (the bare facenet-pytorch call per image), ``batched``
(detect_faces, ``--batch-size`` per call) and ``batched_fast``: batches with
MTCNN's smallest face raised to 1/6 of the image's shorter side
(``detect_faces(min_face_frac=1/6)``; images where it finds no face are retried at the
default 20 px). The face cache keeps only the largest face: any face that
large is still found and the others are retried, so the kept face is the
same; the landmark shift it causes is printed beside MTCNN's own jitter (the
same image rescaled by 2 %).

    .venv/bin/python benchmarks/bench_faces.py [--n 32] [--size 512] [--batch-size 16] [--threads 1]
        [--device cpu] [--repeats 3]
"""
from __future__ import annotations

import argparse
import multiprocessing
import queue as queue_module
import resource
import time

import numpy as np


def sample_images(n: int, size: int) -> list[np.ndarray]:
    """``n`` RGB ``(size, size, 3)`` variants of grace_hopper.jpg and the astronaut."""
    import matplotlib.cbook as cbook
    import skimage.data
    from PIL import Image

    from aulib.data.images import load_rgb

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


MODES = ("one_at_a_time", "mtcnn_per_image", "batched", "batched_fast")


FAST_FRAC = 1 / 6   # detect_faces(min_face_frac=...) of the batched_fast mode


def detect_fast(images, batch_size: int, device: str) -> list:
    """Landmarks (5, 2) of the largest face per image (None: no face) with
    ``aulib.data.faces.detect.detect_faces(min_face_frac=FAST_FRAC)``."""
    from aulib.data.faces.columns import LANDMARK_COLUMNS
    from aulib.data.faces.detect import detect_faces

    df = detect_faces(images, device=device, batch_size=batch_size, progress=False, min_face_frac=FAST_FRAC)
    lms = df[LANDMARK_COLUMNS].to_numpy(np.float64).reshape(len(images), 5, 2)
    return [None if n == 0 else lm for n, lm in zip(df["n_faces"], lms)]


def landmark_shift(images, batch_size: int, device: str) -> dict:
    """How far ``batched_fast`` moves the landmarks from ``batched``, and how
    far the default detector moves them when the image is rescaled by 2 %
    (MTCNN's own jitter): median and max over images of the largest landmark
    displacement divided by the inter-ocular distance."""
    from PIL import Image

    from aulib.data.faces.columns import LANDMARK_COLUMNS
    from aulib.data.faces.detect import _min_face, detect_faces

    ref = detect_faces(images, device=device, batch_size=batch_size, progress=False)[LANDMARK_COLUMNS]
    ref = ref.to_numpy(np.float64).reshape(len(images), 5, 2)
    h, w = images[0].shape[:2]
    small = [np.asarray(Image.fromarray(im).resize((round(w * 0.98), round(h * 0.98)), Image.Resampling.BILINEAR))
             for im in images]
    rescaled = detect_faces(small, device=device, batch_size=batch_size, progress=False)[LANDMARK_COLUMNS]
    rescaled = rescaled.to_numpy(np.float64).reshape(len(images), 5, 2) * [w / small[0].shape[1], h / small[0].shape[0]]
    fast = np.array([np.full((5, 2), np.nan) if lm is None else np.asarray(lm, dtype=np.float64)
                     for lm in detect_fast(images, batch_size, device)])

    def shift(other):
        iod = np.linalg.norm(ref[:, 1] - ref[:, 0], axis=1)
        d = np.abs(other - ref).max(axis=(1, 2)) / iod
        d = d[np.isfinite(d)]
        return {"median": float(np.median(d)) if len(d) else np.nan, "max": float(d.max()) if len(d) else np.nan,
                "compared": int(len(d))}

    return {"fast": shift(fast), "jitter": shift(rescaled), "min_face_size": _min_face((h, w), FAST_FRAC)}


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _detect(mode: str, images, batch_size: int, device: str) -> int:
    """Run one mode over all images; returns how many had a face."""
    from aulib.data.faces.detect import _mtcnn, detect_faces

    if mode == "batched":
        found = int((detect_faces(images, device=device, batch_size=batch_size, progress=False)["n_faces"] > 0).sum())
    elif mode == "batched_fast":
        found = sum(lm is not None for lm in detect_fast(images, batch_size, device))
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

    from aulib.data.faces.detect import detect_faces

    if threads:
        torch.set_num_threads(threads)
    images = sample_images(n, size)
    detect_faces(images[:2], device=device, batch_size=2, progress=False)   # load weights, warm up
    detect_fast(images[:2], 2, device)
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
    queue.put((best, found, landmark_shift(images, args.batch_size, args.device)))


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
    while True:   # a child that dies (an exception, out of memory) must not leave us waiting forever
        try:
            out = queue.get(timeout=1)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} failed in its process (exit code {proc.exitcode})") from None
    proc.join()
    return out


def measure(n: int = 32, size: int = 512, batch_size: int = 16, threads: int = 1, device: str = "cpu",
            repeats: int = 3, memory_per_mode: bool = True) -> dict:
    """Time every mode (and, with ``memory_per_mode``, its peak RSS in a fresh
    process); prints the table and returns {mode: figures} plus
    ``landmark_shift`` (:func:`landmark_shift`)."""
    args = argparse.Namespace(n=n, size=size, batch_size=batch_size, threads=threads, device=device,
                              repeats=repeats)
    best, found, shift = _in_child(_time_modes, args)
    nan = (float("nan"), float("nan"))
    memory = {mode: _in_child(_peak_memory, mode, args) if memory_per_mode else nan for mode in MODES}
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
    fast = results["batched_fast"]["images_per_s"] / results["one_at_a_time"]["images_per_s"]
    f, j = shift["fast"], shift["jitter"]
    print(f"batched_fast (min_face_size {shift['min_face_size']} px) / one-at-a-time throughput: {fast:.2f}x; "
          f"landmark shift / inter-ocular distance: median {f['median']:.3f}, max {f['max']:.3f} "
          f"(MTCNN's own jitter, image rescaled by 2 %: median {j['median']:.3f}, max {j['max']:.3f})")
    results["landmark_shift"] = shift
    return results


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: 16 images once, no per-mode memory
    processes (``quick``), or 32 images best of 3."""
    from benchmarks import row

    n = 16 if quick else 32
    r = measure(n=n, repeats=1 if quick else 3, memory_per_mode=not quick)
    one, batched, fast = (r[m]["images_per_s"] for m in ("one_at_a_time", "batched", "batched_fast"))
    shift = r["landmark_shift"]
    what = f"{n} photos 512 px, batch 16, 1 thread"
    return [row("face pre-processing: batched MTCNN vs one image at a time",
                f"{batched:.1f} vs {one:.1f} img/s ({what})", batched / one, at_least=3),
            row(f"face pre-processing: batched, min face {shift['min_face_size']} px vs one at a time",
                f"{fast:.1f} vs {one:.1f} img/s; landmark shift {shift['fast']['median']:.3f} IOD "
                f"(median; MTCNN jitter {shift['jitter']['median']:.3f})", fast / one, at_least=3)]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    return measure(args.n, args.size, args.batch_size, args.threads, args.device, args.repeats)


if __name__ == "__main__":
    main()
