"""Paper scale: a measured cost model of every stage that needs no GPU.

Each stage runs at three (or more) sizes, each size in its own process (its
peak memory is its own: ``ru_maxrss``), on synthetic inputs made here:

- ``labels``  ``read_emotionet_automatic`` on a tab-separated automatic list (URL, URL orig, 60 values 0/1/999);
- ``faces``   ``build_face_cache``'s own work (the detector replaced by a stub that returns a face
  at once: MTCNN's per-image cost is ``bench_faces``'s), checkpointing the cache as it goes;
- ``crops``   ``build_crop_store`` at 224 px from 512 px JPEG photos, codec raw and jpeg (quality 90),
  bytes per crop and read (decode) images/s on one core;
- ``splits``  ``split_optimization`` (iterative stratification, 23 AUs) of the optimization set;
- ``noisy``   ``filter_noisy`` over 17 AUs;
- ``choice``  ``best_threshold`` over 100 epochs of B (images x 4 degraded copies) x 17 AUs, then the per-AU best epoch.

The growth exponent of each stage is the log-log slope of seconds (and of
memory above the process's floor) against size, fitted over the sizes; the
projection to the paper's sizes (``PAPER``) extrapolates from the largest
size with that slope. One thread per process (``OMP_NUM_THREADS=1``).

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--stage NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: Sizes measured per stage (full run, ``--quick``), in the stage's unit.
SIZES = {"labels": ([10_000, 100_000, 1_000_000], [2_000, 8_000]),
         "faces": ([4_000, 16_000, 64_000], [1_000, 4_000]),
         "crops": ([256, 1_024, 4_096], [24, 96]),
         "splits": ([2_500, 8_000, 25_000], [500, 2_000]),
         "noisy": ([10_000, 100_000, 1_000_000], [2_000, 8_000]),
         "choice": ([2_500, 8_000, 25_000], [250, 1_000])}
#: The paper's size of each stage (EmotioNet 2020: ~950k noisy and ~25k manual images; B = 10 % x 4).
PAPER = {"labels": 950_000, "faces": 975_000, "crops": 975_000, "splits": 25_000, "noisy": 950_000,
         "choice": 2_500}
UNIT = {"labels": "rows", "faces": "images", "crops": "images", "splits": "images", "noisy": "images x 17 AUs",
        "choice": "B images (x4 rows, 100 epochs, 17 AUs)"}
CROP = 224
EPOCHS = 100
N_AUS = 17


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- inputs

def write_automatic_list(path: Path, n: int, seed: int = 0, block: int = 100_000) -> None:
    """A synthetic EmotioNet automatic list of ``n`` lines (written in blocks: little memory)."""
    rng = np.random.default_rng(seed)
    values = np.array(["0", "1", "999"])
    with open(path, "w") as f:
        for s in range(0, n, block):
            k = min(block, n - s)
            codes = values[rng.choice(3, size=(k, 60), p=[0.8, 0.15, 0.05])]
            lines = [f"http://e.invalid/n/{s + i:07d}.jpg\thttp://orig.invalid/{s + i:07d}.jpg\t" + "\t".join(row)
                     for i, row in enumerate(codes.tolist())]
            f.write("\n".join(lines) + "\n")


def _label_table(n: int, seed: int = 0):
    import pandas as pd

    from aulib.aus import AUS_2020, au_columns

    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.01, 0.3, len(AUS_2020))
    codes = (rng.random((n, len(AUS_2020))) < prevalence).astype(np.int8)
    codes[rng.random(codes.shape) < 0.05] = -1
    df = pd.DataFrame(codes, columns=au_columns(AUS_2020))
    df.insert(0, "image", [f"images/optimization/{i:07d}.jpg" for i in range(n)])
    return df


def _face_rows(names, side: int):
    """Face-cache rows: the astronaut's face (skimage) in every ``side`` px photo."""
    import pandas as pd

    from aulib.data.faces.columns import BOX_COLUMNS, CACHE_COLUMNS, LANDMARK_COLUMNS

    s = side / 512
    box = np.array([181.05, 62.16, 267.75, 172.05]) * s
    lms = np.array([205.01, 101.73, 246.76, 103.71, 224.67, 128.96, 201.72, 139.25, 245.27, 141.86]) * s
    df = pd.DataFrame({"image": list(names), "width": side, "height": side, "n_faces": 1, "score": 0.99,
                       "status": "ok"})
    df[BOX_COLUMNS] = box
    df[LANDMARK_COLUMNS] = lms
    return df[CACHE_COLUMNS]


# --------------------------------------------------------------------------- stages (child side)

def stage_labels(n: int, tmp: Path) -> dict:
    from aulib.data.labels import read_emotionet_automatic

    path = tmp / "automatic.txt"
    write_automatic_list(path, n)
    floor = _rss_mib()
    t = time.perf_counter()
    table, _ = read_emotionet_automatic(path, tmp, image_dir="images/noisy", check_files=False)
    seconds = time.perf_counter() - t
    assert len(table) == n
    return {"seconds": seconds, "floor_mib": floor, "input_mb": path.stat().st_size / 1e6}


def stage_faces(n: int, tmp: Path) -> dict:
    import aulib.data.faces.cache as F

    (tmp / "images").mkdir()
    names = [f"images/{i:07d}.jpg" for i in range(n)]
    for name in names:
        (tmp / name).touch()
    rows = _face_rows(["x"], 512).drop(columns="image").iloc[0].to_dict()

    def instant_detector(paths, **kw):        # MTCNN's cost is measured by bench_faces
        import pandas as pd

        out = pd.DataFrame([{"image": str(p), **rows} for p in paths])
        out.attrs["errors"] = {}
        return out

    F.detect_faces = instant_detector
    floor = _rss_mib()
    t = time.perf_counter()
    cache, _ = F.build_face_cache(tmp, names, tmp / "faces.csv", method="mtcnn", progress=False)
    seconds = time.perf_counter() - t
    assert len(cache) == n
    return {"seconds": seconds, "floor_mib": floor}


def stage_crops(n: int, tmp: Path, codec: str) -> dict:
    import skimage.data
    from PIL import Image

    from aulib.data.crops import build_crop_store

    (tmp / "images").mkdir()
    first = tmp / "images" / "0000000.jpg"
    Image.fromarray(skimage.data.astronaut()).save(first, quality=90)
    names = [f"images/{i:07d}.jpg" for i in range(n)]
    for name in names[1:]:
        os.link(first, tmp / name)               # n files, one photo's bytes on disk
    faces = _face_rows(names, 512)
    floor = _rss_mib()
    t = time.perf_counter()
    store = build_crop_store(tmp, faces, tmp / "store", "aligned", CROP, progress=False, codec=codec, quality=90)
    seconds = time.perf_counter() - t
    peak = _rss_mib()      # the build's peak; reading below maps the store's pages (page cache, not RAM needed)
    files = [p for p in (tmp / "store").iterdir()]
    pixels = tmp / "store" / ("pixels.u8" if codec == "raw" else "pixels.jpg")
    rows = np.random.default_rng(0).permutation(n)
    t = time.perf_counter()
    for s in range(0, n, 256):                   # batches of 256 shuffled rows, as the loader reads them
        store.images[np.sort(rows[s:s + 256])].sum()
    read_s = time.perf_counter() - t
    return {"seconds": seconds, "floor_mib": floor, "peak_mib": peak, "bytes_per_crop": pixels.stat().st_size / n,
            "store_bytes": sum(p.stat().st_size for p in files), "read_img_s": n / read_s}


def stage_splits(n: int, tmp: Path) -> dict:
    from aulib.data.splits import split_optimization

    labels = _label_table(n)
    floor = _rss_mib()
    t = time.perf_counter()
    parts = split_optimization(labels, frac_b=0.1, seed=0)
    seconds = time.perf_counter() - t
    assert sum(len(p) for p in parts.values()) == n
    return {"seconds": seconds, "floor_mib": floor}


def stage_noisy(n: int, tmp: Path) -> dict:
    from aulib.aus import GROUPS
    from aulib.noisy import filter_noisy

    noisy = _label_table(n)
    noisy.insert(1, "variant", 0)
    probs = np.random.default_rng(1).random((n, len(GROUPS["17au"]))).astype(np.float32)
    floor = _rss_mib()
    t = time.perf_counter()
    filter_noisy(noisy, probs, "17au", threshold=0.5, confidence=0.7)
    return {"seconds": time.perf_counter() - t, "floor_mib": floor}


def stage_choice(n: int, tmp: Path, epochs: int = EPOCHS) -> dict:
    from aulib.select.threshold import best_threshold

    rows = 4 * n
    rng = np.random.default_rng(0)
    y = (rng.random((rows, N_AUS)) < 0.15).astype(np.int8)
    labels = np.where(rng.random(y.shape) < 0.1, -1, y).astype(np.int8)
    probs = np.empty((epochs, rows, N_AUS), np.float16)    # as the run directory stores them
    for e in range(epochs):
        probs[e] = 1 / (1 + np.exp(-(y * 2 - 1) * (0.3 + e / epochs) - rng.normal(size=y.shape)))
    floor = _rss_mib()
    t = time.perf_counter()
    _, score = best_threshold(labels, probs)
    np.nanargmax(score, axis=0)
    return {"seconds": time.perf_counter() - t, "floor_mib": floor}


STAGES = {"labels": stage_labels, "faces": stage_faces, "crops_raw": lambda n, tmp: stage_crops(n, tmp, "raw"),
          "crops_jpeg": lambda n, tmp: stage_crops(n, tmp, "jpeg"), "splits": stage_splits,
          "noisy": stage_noisy, "choice": stage_choice}


def child(stage: str, n: int, epochs: int) -> dict:
    """Run one stage at size ``n`` in this process; its figures and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        fn = STAGES[stage]
        out = fn(n, Path(tmp), epochs) if stage == "choice" else fn(n, Path(tmp))
    out.update(stage=stage, n=n)
    out.setdefault("peak_mib", _rss_mib())
    return out


# --------------------------------------------------------------------------- parent side

def measure_one(stage: str, n: int, epochs: int = EPOCHS) -> dict:
    """``child(stage, n)`` in a fresh process (one thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "AULIB_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--child", stage, "--n", str(n), "--epochs", str(epochs)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def slope(x, y) -> float:
    """Least-squares slope of log(y) on log(x) (NaN with fewer than 2 positive points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0)
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else float("nan")


def fit(points: list[dict], paper_n: int) -> dict:
    """Growth exponents of time and memory above the floor, and the projection to ``paper_n``."""
    n = [p["n"] for p in points]
    sec = [p["seconds"] for p in points]
    extra = [max(p["peak_mib"] - p["floor_mib"], 0.0) for p in points]
    k_t, k_m = slope(n, sec), slope(n, extra)
    last = points[-1]
    grow = paper_n / last["n"]
    # time: never below linear growth from the largest size (fixed costs flatten small-size slopes)
    t_paper = last["seconds"] * grow ** max(k_t, 1.0)
    m_paper = last["floor_mib"] + extra[-1] * grow ** max(k_m if np.isfinite(k_m) else 1.0, 0.0)
    out = {"time_exponent": k_t, "memory_exponent": k_m, "paper_n": paper_n, "paper_seconds": t_paper,
           "paper_peak_mib": m_paper, "paper_core_hours": t_paper / 3600}
    if "bytes_per_crop" in last:
        out["paper_disk_gb"] = last["bytes_per_crop"] * paper_n / 1e9
        out["bytes_per_crop"] = last["bytes_per_crop"]
        out["read_img_s"] = float(np.median([p["read_img_s"] for p in points]))
    return out


def measure(quick: bool = False, stages=None) -> dict:
    """Every stage at its sizes; returns ``{stage: {"points": [...], "fit": {...}}}``."""
    epochs = 10 if quick else EPOCHS
    out = {}
    for stage in stages or STAGES:
        base = stage.split("_")[0]
        sizes = SIZES[base][1 if quick else 0]
        t = time.perf_counter()
        points = [measure_one(stage, n, epochs) for n in sizes]
        paper_n = PAPER[base]
        out[stage] = {"points": points, "fit": fit(points, paper_n), "wall_s": time.perf_counter() - t}
        if quick and stage == "choice":   # 10 epochs measured: the paper's 100 are 10x the work
            out[stage]["fit"]["paper_seconds"] *= EPOCHS / epochs
            out[stage]["fit"]["paper_core_hours"] *= EPOCHS / epochs
        f = out[stage]["fit"]
        print(f"{stage:<11} " + "  ".join(f"n={p['n']:,}: {p['seconds']:.2f} s, {p['peak_mib']:.0f} MiB"
                                           for p in points)
              + f"  | time ~ n^{f['time_exponent']:.2f}, memory ~ n^{f['memory_exponent']:.2f}", flush=True)
    return out


def projection_lines(r: dict) -> list[str]:
    """The paper-scale table (Markdown)."""
    lines = ["| stage | measured sizes | time exponent | memory exponent | paper size | disk | peak RAM | core-hours |",
             "|---|---|---|---|---|---|---|---|"]
    for stage, res in r.items():
        f, pts = res["fit"], res["points"]
        disk = f"{f['paper_disk_gb']:.0f} GB ({f['bytes_per_crop'] / 1e3:.1f} kB/crop)" if "paper_disk_gb" in f else "-"
        lines.append(f"| {stage} | {pts[0]['n']:,} - {pts[-1]['n']:,} | {f['time_exponent']:.2f} | "
                     f"{f['memory_exponent']:.2f} | {f['paper_n']:,} {UNIT[stage.split('_')[0]]} | {disk} | "
                     f"{f['paper_peak_mib'] / 1024:.2f} GiB | {f['paper_core_hours']:.3g} |")
    return lines


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: one per stage (time exponent <= 1.2: n log n reads 1.1-1.13
    over these sizes, plus a shared machine's noise; paper-scale RAM <= 32 GB), and the jpeg store
    beside the raw one."""
    from benchmarks import row

    r = measure(quick)
    print("\n".join(projection_lines(r)))
    rows = []
    for stage, res in r.items():
        f, pts = res["fit"], res["points"]
        ok_mem = f["paper_peak_mib"] <= 32 * 1024
        rows.append(row(f"scale: {stage} time exponent (log-log slope; paper-scale RAM "
                        f"{f['paper_peak_mib'] / 1024:.1f} GiB{'' if ok_mem else ' > 32 GB'})",
                        f"{pts[0]['n']:,} -> {pts[-1]['n']:,}: {pts[0]['seconds']:.2f} -> {pts[-1]['seconds']:.2f} s; "
                        f"paper {f['paper_n']:,}: {f['paper_core_hours']:.3g} core-h", f["time_exponent"],
                        at_most=1.2))
    if "crops_raw" in r and "crops_jpeg" in r:
        raw, jpg = r["crops_raw"]["fit"], r["crops_jpeg"]["fit"]
        rows.append(row("scale: jpeg / raw crop-store bytes at 224 px (quality 90)",
                        f"{jpg['bytes_per_crop'] / 1e3:.1f} vs {raw['bytes_per_crop'] / 1e3:.1f} kB/crop; "
                        f"{jpg['paper_disk_gb']:.0f} vs {raw['paper_disk_gb']:.0f} GB per style at paper scale",
                        jpg["bytes_per_crop"] / raw["bytes_per_crop"], at_most=0.2))
        rows.append(row("scale: jpeg store read (decode) img/s on 1 core, x16 cores vs 1,000 img/s needed",
                        f"jpeg {jpg['read_img_s']:,.0f} img/s, raw {raw['read_img_s']:,.0f} img/s per core",
                        16 * jpg["read_img_s"] / 1000, at_least=3))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stage", action="append", choices=list(STAGES), default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.n, a.epochs)))
        return None
    r = measure(a.quick, a.stage)
    print("\n".join(projection_lines(r)))
    return r


if __name__ == "__main__":
    main()
