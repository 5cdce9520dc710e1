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

The field's data sets (:data:`DATASETS`: BP4D, DISFA, Aff-Wild2) add, projected to each one's size
(``python benchmarks/bench_scale.py --datasets``, :func:`dataset_lines`):

- ``labels_csv``   ``read_generic_csv`` of ``image,subject,AU...`` (12 AUs): the stand-in for the native
  readers until they land (their own reading-speed cases are theirs);
- ``kfold_splits`` ``make_splits`` of one fold of the 3-fold subject-exclusive protocol (41 subjects),
  split files written (B and H x 4 variants);
- ``kfold_share``  fold 1's face cache and two 224 px jpeg crop stores (bookkeeping at full row count, the
  crop itself stubbed), then per fold k > 1 ``share_data`` and 02_split's calls, counting detections and crops;
- ``video_mjpg`` / ``video_xvid``  DISFA's frames from an AVI written by ``cv2.VideoWriter`` (1024 x 768):
  decode sequentially vs seek to every frame, and whether a seek lands on the frame asked for;
- ``choice_runs``  the choice from files, as 06_choose does it: 2 runs x 100 epochs of float16 predictions,
  ``load_candidates`` + ``choose(threshold)``, 12 AUs.

The growth exponent of each stage is the log-log slope of seconds (and of
memory above the process's floor) against size, fitted over the sizes; the
projection to the paper's sizes (``PAPER``) extrapolates from the largest
size with that slope. One thread per process (``OMP_NUM_THREADS=1``).

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--stage NAME ...] [--datasets]
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
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: Sizes measured per stage (full run, ``--quick``), in the stage's unit.
SIZES = {"labels": ([10_000, 100_000, 1_000_000], [2_000, 8_000]),
         "faces": ([4_000, 16_000, 64_000], [1_000, 4_000]),
         "crops": ([256, 1_024, 4_096], [24, 96]),
         "splits": ([2_500, 8_000, 25_000], [500, 2_000]),
         "noisy": ([10_000, 100_000, 1_000_000], [2_000, 8_000]),
         "choice": ([2_500, 8_000, 25_000], [250, 1_000]),
         "labels_csv": ([10_000, 40_000, 150_000], [2_000, 8_000]),
         "kfold_splits": ([10_000, 40_000, 150_000], [2_000, 8_000]),
         "kfold_share": ([5_000, 20_000, 60_000], [1_000, 4_000]),
         "video": ([50, 150, 450], [20, 60]),
         "choice_runs": ([4_000, 12_000, 40_000], [1_000, 4_000])}
#: The paper's size of each stage (EmotioNet 2020: ~950k noisy and ~25k manual images; B = 10 % x 4).
PAPER = {"labels": 950_000, "faces": 975_000, "crops": 975_000, "splits": 25_000, "noisy": 950_000,
         "choice": 2_500}
UNIT = {"labels": "rows", "faces": "images", "crops": "images", "splits": "images", "noisy": "images x 17 AUs",
        "choice": "B images (x4 rows, 100 epochs, 17 AUs)", "labels_csv": "rows", "kfold_splits": "frames",
        "kfold_share": "frames", "video": "frames", "choice_runs": "rows (2 runs x 100 epochs x 12 AUs)"}
#: The field's data sets: frames, subjects, folds (ME-GraphAU's lists for BP4D and DISFA; Aff-Wild2: the AU
#: set, 541 videos of about 2.6M frames, stellagra/AutomaticFaceAnalysis README.md quoting the Aff-Wild2
#: page, test partition included, so an upper bound of Train + Validation; subjects: one per video at most),
#: the AUs of the group, whether frames come from videos, and the share of frames a fold trains on
#: (3 folds: 2/3; Aff-Wild2: Train of Train + Validation, assumed 3/4, not a published figure).
DATASETS = {"bp4d": {"frames": 146_847, "subjects": 41, "folds": 3, "aus": 12, "video": False, "train": 2 / 3},
            "disfa": {"frames": 130_814, "subjects": 27, "folds": 3, "aus": 8, "video": True, "train": 2 / 3},
            "affwild2": {"frames": 2_600_000, "subjects": 541, "folds": 1, "aus": 12, "video": False,
                         "train": 3 / 4}}
STYLES = 2          # aligned and box1.5: two crop stores per size
B_FRAC, B_COPIES = 0.1, 4
#: 12 of the catalog's AUs for the generic-CSV stand-in (BP4D's AU7/14/23 are not in it before the catalog lands).
AUS_12 = (1, 2, 4, 6, 9, 10, 12, 15, 17, 24, 25, 26)
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
    from aulib.data.sources.emotionet import read_emotionet_automatic

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
    return {"seconds": seconds, "floor_mib": floor, "disk_bytes_per_row": (tmp / "faces.csv").stat().st_size / n}


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
    from aulib.aus import BUILTIN_GROUPS
    from aulib.noisy import filter_noisy

    noisy = _label_table(n)
    noisy.insert(1, "variant", 0)
    probs = np.random.default_rng(1).random((n, len(BUILTIN_GROUPS["17au"]))).astype(np.float32)
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


# --------------------------------------------------------------------------- the field's data sets (child side)

def _subject_of(n: int, subjects: int = 41) -> np.ndarray:
    """Subject of each of ``n`` frames: ``subjects`` contiguous runs, as sequences are."""
    return np.array([f"S{s:03d}" for s in range(subjects)])[np.arange(n) * subjects // n]


def stage_labels_csv(n: int, tmp: Path) -> dict:
    """``read_generic_csv`` of ``image,subject,AU...`` (12 AUs, 0/1, 999 unknown)."""
    from aulib.data.sources.generic_csv import read_generic_csv

    rng = np.random.default_rng(0)
    codes = np.where(rng.random((n, len(AUS_12))) < 0.03, 999, rng.random((n, len(AUS_12))) < 0.2).astype(int)
    subjects = _subject_of(n)
    path = tmp / "labels.csv"
    with open(path, "w") as f:
        f.write("image,subject," + ",".join(f"AU{a}" for a in AUS_12) + "\n")
        for s in range(0, n, 100_000):
            f.write("\n".join(f"{subjects[i]}/T1/{i:07d}.jpg,{subjects[i]}," + ",".join(map(str, row))
                              for i, row in zip(range(s, s + 100_000), codes[s:s + 100_000].tolist())) + "\n")
    floor = _rss_mib()
    t = time.perf_counter()
    table, _ = read_generic_csv(path, tmp, check_files=False)
    seconds = time.perf_counter() - t
    assert len(table) == n
    return {"seconds": seconds, "floor_mib": floor, "input_mb": path.stat().st_size / 1e6,
            "disk_bytes_per_row": path.stat().st_size / n}


def _workspace_with_labels(n: int, tmp: Path, subjects: int = 41):
    from aulib.data.labels import write_label_table
    from aulib.data.sources import subjects_path
    from aulib.io import write_csv
    from aulib.workspace import Workspace

    ws = Workspace(tmp / "ws", tmp / "ws" / "results")
    df = _label_table(n)
    write_label_table(df, ws.labels("optimization"))
    write_csv(subjects_path(ws), pd_frame({"image": df["image"], "subject": _subject_of(n, subjects)}))
    return ws


def pd_frame(cols: dict):
    import pandas as pd

    return pd.DataFrame(cols)


def stage_kfold_splits(n: int, tmp: Path) -> dict:
    """``make_splits`` of fold 1 of 3 (subject-exclusive, 41 subjects): the folds, A/B of the training folds,
    the split files (B and H x 4 variants)."""
    from aulib.data.splits import make_splits

    ws = _workspace_with_labels(n, tmp)
    floor = _rss_mib()
    t = time.perf_counter()
    paths = make_splits(ws, seed=0, frac_b=B_FRAC, b_copies=B_COPIES, kfold=3, fold=1)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "floor_mib": floor,
            "disk_bytes_per_row": sum(Path(p).stat().st_size for p in paths.values()) / n}


def _stub_crops(size: int):
    """``aulib.data.crops._crop_rows`` without decoding or cropping: every row one fixed JPEG (bookkeeping only)."""
    import aulib.data.crops as CR
    from aulib.data.packed import encode_jpeg

    blob = encode_jpeg(np.full((size, size, 3), 128, np.uint8), 90)
    calls = []

    def crop_rows(task):
        rows = task[5]
        calls.append(len(rows))
        crcs = np.full(len(rows), zlib.crc32(blob), dtype=np.uint32)
        return np.asarray(rows, dtype=np.int64), ["ok"] * len(rows), [blob] * len(rows), crcs

    CR._crop_rows = crop_rows
    return calls


def stage_kfold_share(n: int, tmp: Path) -> dict:
    """Fold 1: face cache (detector stubbed) and two 224 px jpeg stores (crop stubbed) of ``n`` frames;
    then fold 2: ``share_data`` and 02_split's ``build_face_cache`` / ``build_crop_store``, with the
    detections and crops they ask for counted. ``seconds`` is fold 2's (the per-fold cost)."""
    import aulib.data.faces.cache as F
    from aulib.data.crops import build_crop_store
    from aulib.pipeline.kfold import fold_workspace, share_data
    from aulib.workspace import Workspace

    rows = _face_rows(["x"], 512).drop(columns="image").iloc[0].to_dict()
    detected = []

    def instant_detector(paths, **kw):
        import pandas as pd

        detected.append(len(paths))
        out = pd.DataFrame([{"image": str(p), **rows} for p in paths])
        out.attrs["errors"] = {}
        return out

    F.detect_faces = instant_detector
    cropped = _stub_crops(CROP)
    names = [f"S{i * 41 // n:03d}/T1/{i:07d}.jpg" for i in range(n)]
    root = tmp / "data"
    ws = Workspace(tmp / "ws", tmp / "ws" / "results")
    one, two = fold_workspace(ws, 1), fold_workspace(ws, 2)

    def step_02_split(fws):
        cache, _ = F.build_face_cache(root, names, fws.faces, method="mtcnn", progress=False)
        for style in ("aligned", "box1.5"):
            build_crop_store(root, cache, fws.crops(style, CROP), style, CROP, images=names, progress=False,
                             codec="jpeg", quality=90)

    t = time.perf_counter()
    step_02_split(one)
    fold1_s = time.perf_counter() - t
    detect_1, crop_1 = sum(detected), sum(cropped)
    floor = _rss_mib()
    t = time.perf_counter()
    shared = share_data(one, two)
    share_s = time.perf_counter() - t
    step_02_split(two)
    seconds = time.perf_counter() - t
    same = [os.stat(f).st_ino == os.stat(one.root / f.relative_to(two.root)).st_ino for f in shared]
    new_bytes = sum(f.stat().st_size for f in two.root.rglob("*") if f.is_file() and f.stat().st_nlink == 1)
    return {"seconds": seconds, "floor_mib": floor, "share_s": share_s, "fold1_bookkeeping_s": fold1_s,
            "files_shared": len(shared), "still_linked": int(sum(same)), "fold2_new_bytes": new_bytes,
            "fold1_detected": detect_1, "fold1_cropped": crop_1, "fold2_detected": sum(detected) - detect_1,
            "fold2_cropped": sum(cropped) - crop_1,
            "fold1_disk_bytes": sum(f.stat().st_size for f in one.root.rglob("*") if f.is_file())}


def _frame(i: int, w: int = 1024, h: int = 768) -> np.ndarray:
    """Frame ``i`` of the test video: a moving gradient with its number written on it (BGR)."""
    import cv2

    x = np.arange(w, dtype=np.int32)[None, :] + 7 * i
    y = np.arange(h, dtype=np.int32)[:, None]
    img = np.stack([np.broadcast_to(c % 256, (h, w)) for c in (x + y, 2 * x, y + 3 * i)], -1).astype(np.uint8)
    cv2.putText(img, f"{i:05d}", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 6, (255, 255, 255), 12)
    return img


def stage_video(n: int, tmp: Path, fourcc: str) -> dict:
    """Decode an AVI of ``n`` 1024 x 768 frames (20 fps, as DISFA's left camera) written with ``fourcc``:
    sequentially, and by seeking to every frame (``CAP_PROP_POS_FRAMES``) in shuffled order; a seek is
    right when its frame equals the sequentially decoded one."""
    import cv2

    cv2.setNumThreads(1)
    path = tmp / f"video_{fourcc}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 20, (1024, 768))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {fourcc}")
    for i in range(n):
        writer.write(_frame(i))
    writer.release()
    floor = _rss_mib()
    cap = cv2.VideoCapture(str(path))
    seq = []
    t = time.perf_counter()
    while True:
        ok, img = cap.read()
        if not ok:
            break
        seq.append(img[::16, ::16].copy())
    seconds = time.perf_counter() - t
    cap.release()
    order = np.random.default_rng(0).permutation(len(seq))
    cap = cv2.VideoCapture(str(path))
    right = 0
    t = time.perf_counter()
    for i in order:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, img = cap.read()
        right += bool(ok) and np.array_equal(img[::16, ::16], seq[i])
    seek_s = time.perf_counter() - t
    cap.release()
    return {"seconds": seconds, "floor_mib": floor, "frames_read": len(seq), "seek_s": seek_s,
            "seek_right": right / max(1, len(seq)), "seq_fps": len(seq) / seconds, "seek_fps": len(seq) / seek_s,
            "disk_bytes_per_row": path.stat().st_size / n}


def stage_choice_runs(n: int, tmp: Path, epochs: int = EPOCHS) -> dict:
    """06_choose's choice from files: 2 runs x ``epochs`` float16 prediction files of ``n`` rows x 12 AUs,
    ``load_candidates`` then ``choose(threshold)``."""
    import pandas as pd

    from aulib.aus import au_columns
    from aulib.io import write_csv, write_yaml
    from aulib.pred_index import write_index
    from aulib.select.choose import choose, load_candidates
    from aulib.workspace import RunDir

    rng = np.random.default_rng(0)
    c = len(AUS_12)
    y = (rng.random((n, c)) < 0.15).astype(np.int8)
    labels = np.where(rng.random(y.shape) < 0.1, -1, y).astype(np.int8)
    index = pd.DataFrame(labels, columns=au_columns(AUS_12))
    index.insert(0, "variant", np.arange(n) % B_COPIES)
    index.insert(0, "image", [f"f/{i // B_COPIES:07d}.jpg" for i in range(n)])
    dirs = []
    for r in range(2):
        rd = RunDir(tmp / f"run{r}")
        rd.preds_dir.mkdir(parents=True)
        write_yaml(rd.config, {"run_name": f"run{r}", "aus": list(AUS_12), "group": None})
        write_csv(rd.log, pd.DataFrame({"epoch": np.arange(1, epochs + 1)}))
        write_index(rd.index("B"), index)
        for e in range(1, epochs + 1):
            p = 1 / (1 + np.exp(-(y * 2 - 1) * (0.3 + e / epochs) - rng.normal(size=y.shape)))
            np.save(rd.preds("B", e), p.astype(np.float16))
        dirs.append(rd.path)
    floor = _rss_mib()
    t = time.perf_counter()
    _, cands = load_candidates(dirs, "B")
    choose(cands, "threshold")
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "floor_mib": floor, "disk_bytes_per_row": 2 * epochs * c * 2}


STAGES = {"labels": stage_labels, "faces": stage_faces, "crops_raw": lambda n, tmp: stage_crops(n, tmp, "raw"),
          "crops_jpeg": lambda n, tmp: stage_crops(n, tmp, "jpeg"), "splits": stage_splits,
          "noisy": stage_noisy, "choice": stage_choice, "labels_csv": stage_labels_csv,
          "kfold_splits": stage_kfold_splits, "kfold_share": stage_kfold_share,
          "video_mjpg": lambda n, tmp: stage_video(n, tmp, "MJPG"),
          "video_xvid": lambda n, tmp: stage_video(n, tmp, "XVID"), "choice_runs": stage_choice_runs}
#: Stages of the EmotioNet projection (``measure``'s default) and of the data-set projection (``--datasets``).
PAPER_STAGES = ("labels", "faces", "crops_raw", "crops_jpeg", "splits", "noisy", "choice")
DATASET_STAGES = ("labels_csv", "faces", "crops_jpeg", "kfold_splits", "kfold_share", "video_mjpg", "video_xvid",
                  "choice_runs")


def child(stage: str, n: int, epochs: int) -> dict:
    """Run one stage at size ``n`` in this process; its figures and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        fn = STAGES[stage]
        out = fn(n, Path(tmp), epochs) if stage in ("choice", "choice_runs") else fn(n, Path(tmp))
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


def project(points: list[dict], n_target: float, key: str = "seconds") -> tuple[float, float, float, float]:
    """``(seconds, peak MiB, time exponent, memory exponent)`` at ``n_target``, extrapolated from the
    largest measured size with the fitted exponents (time never below linear: fixed costs flatten
    small-size slopes; memory above the process's floor)."""
    n = [p["n"] for p in points]
    sec = [p[key] for p in points]
    extra = [max(p["peak_mib"] - p["floor_mib"], 0.0) for p in points]
    k_t, k_m = slope(n, sec), slope(n, extra)
    last = points[-1]
    grow = n_target / last["n"]
    t = last[key] * grow ** max(k_t if np.isfinite(k_t) else 1.0, 1.0)
    m = last["floor_mib"] + extra[-1] * grow ** max(k_m if np.isfinite(k_m) else 1.0, 0.0)
    return t, m, k_t, k_m


def fit(points: list[dict], paper_n: int) -> dict:
    """Growth exponents of time and memory above the floor, and the projection to ``paper_n``."""
    t_paper, m_paper, k_t, k_m = project(points, paper_n)
    last = points[-1]
    out = {"time_exponent": k_t, "memory_exponent": k_m, "paper_n": paper_n, "paper_seconds": t_paper,
           "paper_peak_mib": m_paper, "paper_core_hours": t_paper / 3600}
    if "bytes_per_crop" in last:
        out["paper_disk_gb"] = last["bytes_per_crop"] * paper_n / 1e9
        out["bytes_per_crop"] = last["bytes_per_crop"]
        out["read_img_s"] = float(np.median([p["read_img_s"] for p in points]))
    return out


def _base(stage: str) -> str:
    """The :data:`SIZES` entry of a stage (``crops_raw`` -> ``crops``, ``video_xvid`` -> ``video``)."""
    return stage.split("_")[0] if stage.split("_")[0] in ("crops", "video") else stage


def measure(quick: bool = False, stages=None) -> dict:
    """Every stage at its sizes; returns ``{stage: {"points": [...], "fit": {...}}}``."""
    epochs = 10 if quick else EPOCHS
    out = {}
    for stage in stages or PAPER_STAGES:
        base = _base(stage)
        sizes = SIZES[base][1 if quick else 0]
        t = time.perf_counter()
        points = [measure_one(stage, n, epochs) for n in sizes]
        paper_n = PAPER.get(base, sizes[-1])
        out[stage] = {"points": points, "fit": fit(points, paper_n), "wall_s": time.perf_counter() - t,
                      "epochs": epochs}
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
                     f"{f['memory_exponent']:.2f} | {f['paper_n']:,} {UNIT[_base(stage)]} | {disk} | "
                     f"{f['paper_peak_mib'] / 1024:.2f} GiB | {f['paper_core_hours']:.3g} |")
    return lines


# --------------------------------------------------------------------------- the field's data sets (projection)

def _ds_sizes(ds: dict) -> dict:
    """Rows each stage handles for data set ``ds``, per fold: frames, B rows (10 % of a fold's training
    frames x 4 variants) and test rows (the test fold, or Aff-Wild2's Validation, x 4 variants as
    make_splits writes H); A, B and H images."""
    frames = ds["frames"]
    train = frames * ds["train"]
    test = frames - train
    return {"frames": frames, "b_rows": round(train * B_FRAC) * B_COPIES, "h_rows": round(test) * B_COPIES,
            "a_images": round(train * (1 - B_FRAC)), "b_images": round(train * B_FRAC), "h_images": round(test)}


def dataset_rows(r: dict, name: str) -> list[dict]:
    """Per stage at data set ``name``'s full size: what is counted, seconds (1 core), disk bytes, peak MiB."""
    ds, size = DATASETS[name], _ds_sizes(DATASETS[name])
    frames, folds, c = size["frames"], ds["folds"], ds["aus"]
    out = []

    def add(stage, what, n, times=1, disk=None, scale=1.0, key="seconds", note=""):
        if stage not in r:
            return
        t, m, _, _ = project(r[stage]["points"], n, key)
        last = r[stage]["points"][-1]
        if stage == "choice_runs":   # memory: the float16 stack (linear) + the chunked search's fixed working set
            stack = lambda k: 2 * r[stage].get("epochs", EPOCHS) * k * len(AUS_12) * 2 / 2**20  # noqa: E731
            m = last["floor_mib"] + max(last["peak_mib"] - last["floor_mib"] - stack(last["n"]), 0) \
                + stack(n) * EPOCHS / r[stage].get("epochs", EPOCHS)
        if disk is None:
            disk = last.get("disk_bytes_per_row", 0) * n
        out.append({"stage": stage, "what": what, "n": n, "seconds": t * times * scale, "disk": disk * times,
                    "peak_mib": m, "note": note})

    add("labels_csv", "labels: generic-CSV reader (stand-in for the native reader)", frames)
    add("faces", "face cache: bookkeeping (MTCNN not included)", frames,
        note=f"MTCNN on a CPU: {frames / 37 / 3600:.1f}-{frames / 11 / 3600:.1f} core-h (11-37 img/s, faces line)")
    if "crops_jpeg" in r:
        t, m, _, _ = project(r["crops_jpeg"]["points"], frames)
        bpc = r["crops_jpeg"]["points"][-1]["bytes_per_crop"]
        out.append({"stage": "crops_jpeg", "what": f"crop stores: jpeg q90, 224 px, {STYLES} styles", "n": frames,
                    "seconds": STYLES * t, "disk": STYLES * bpc * frames, "peak_mib": m, "note": "read from JPEG files"})
    if ds["video"]:
        for stage in ("video_mjpg", "video_xvid"):
            if stage not in r:
                continue
            passes = 1 + STYLES    # the face cache and each crop store read every frame once
            avi = r[stage]["points"][-1]["disk_bytes_per_row"] * frames / 1e9
            add(stage, f"frames decoded from the AVI ({stage[6:].upper()}), sequentially, x{passes} passes", frames,
                times=passes, disk=0, note=f"nothing written; an AVI like ours holds {avi:.0f} GB")
            add(stage, f"the same by seeking to every frame, x{passes} passes", frames, times=passes, key="seek_s",
                disk=0, note=f"seek lands on the asked frame: {r[stage]['points'][-1]['seek_right']:.0%}")
    what = "splits: the k-fold plan, fold's A/B, split files (B, H x 4)" if folds > 1 else \
        "splits: A/B of Train, split files (stand-in: make_splits of one fold)"
    add("kfold_splits", what + f", x{folds} fold(s)", frames, times=folds)
    if folds > 1:
        add("kfold_share", f"k-fold sharing: share_data + 02_split's faces and crops, x{folds - 1} folds", frames,
            times=folds - 1, disk=0,
            note="measured: 0 detections, 0 crops, every shared file still a hard link, "
                 f"{r['kfold_share']['points'][-1]['fold2_new_bytes'] if 'kfold_share' in r else '?'} new bytes")
    if "choice_runs" in r:
        ep = r["choice_runs"].get("epochs", EPOCHS)
        scale = (EPOCHS / ep) * (c / len(AUS_12))
        per_fold = f", x{folds} folds" if folds > 1 else ""
        add("choice_runs", f"per-AU choice on B: 2 runs x 100 epochs, {c} AUs{per_fold}", size["b_rows"], times=folds,
            scale=scale, disk=2 * EPOCHS * size["b_rows"] * c * 2,
            note="memory at 12 AUs, 2 runs")
        add("choice_runs", f"the same on the test rows (choice 'as the public codes do'){per_fold}",
            size["h_rows"], times=folds, scale=scale, disk=2 * EPOCHS * size["h_rows"] * c * 2,
            note="if H is scored every epoch")
    return out


def dataset_lines(r: dict) -> list[str]:
    """One Markdown table per data set: stage, rows, time (1 core), disk, peak RAM at full size."""
    lines = []
    for name, ds in DATASETS.items():
        size = _ds_sizes(ds)
        lines += ["", f"**{name}**: {ds['frames']:,} frames, {ds['subjects']} subjects, "
                      f"{ds['folds']} fold(s); B {size['b_rows']:,} rows, test rows {size['h_rows']:,}", "",
                  "| stage | rows | time (1 core) | disk | peak RAM | note |", "|---|---|---|---|---|---|"]
        for row in dataset_rows(r, name):
            sec = row["seconds"]
            t = f"{sec / 3600:.2f} h" if sec >= 3600 else f"{sec / 60:.1f} min" if sec >= 60 else f"{sec:.1f} s"
            lines.append(f"| {row['what']} | {row['n']:,} | {t} | {row['disk'] / 1e9:.2f} GB | "
                         f"{row['peak_mib'] / 1024:.2f} GiB | {row['note']} |")
    return lines


#: Training images/s of ONE backbone, AMP, NCHW, on one RTX 3090 (PyTorch 1.12, CUDA 11.3), at its
#: benchmark size and batch: huggingface/pytorch-image-models results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv
#: (efficientnet_b4 293.1 img/s at 320 px, batch 96; resnet101 568.98 img/s at 224 px, batch 256).
TIMM_TRAIN_RTX3090 = {"efficientnet_b4": (293.1, 320), "resnet101": (568.98, 224)}
#: Assumed: inference (forward only) ~3x the training rate (a step is forward + backward ~ 3 forwards).
INFER_OVER_TRAIN = 3.0
#: benchmarks/README.md's own assumption for the efficientnet_b4 pair at 224 px per GPU (pessimistic bound).
README_EFFB4_PAIR = 125.0
MULTICROP_VIEWS = 4


def pair_rates(source: str = "timm") -> dict:
    """Two-view pair images/s at 224 px per GPU: (train, inference). ``timm``: the RTX 3090 figures scaled by
    pixels to 224 px and halved (two backbones see every image); ``readme``: effb4 pair 125 img/s, the
    resnet101 pair in the timm ratio."""
    timm = {bb: rate * (px / 224) ** 2 / 2 for bb, (rate, px) in TIMM_TRAIN_RTX3090.items()}
    if source == "readme":
        k = README_EFFB4_PAIR / timm["efficientnet_b4"]
        timm = {bb: v * k for bb, v in timm.items()}
    return {bb: (v, v * INFER_OVER_TRAIN) for bb, v in timm.items()}


def bp4d_runs(scenario: str) -> list[dict]:
    """The runs one BP4D fold trains (assumption: the paper's 17au sequence mapped to bp4d12).
    ``base``: the two base pairs (efficientnet_b4, resnet101), 100 epochs on A, multi-crop B every epoch
    (Table 1's baseline and ensemble). ``paper``: also, per backbone, pretrain 10 epochs (on A: BP4D has no
    noisy set C; no multi-crop) and finetune 100 epochs, as notebooks/profiles/paper.yaml's 17au runs."""
    runs = [{"backbone": bb, "epochs": 100, "multicrop": True} for bb in ("efficientnet_b4", "resnet101")]
    if scenario == "paper":
        for bb in ("efficientnet_b4", "resnet101"):
            runs += [{"backbone": bb, "epochs": 10, "multicrop": False},
                     {"backbone": bb, "epochs": 100, "multicrop": True}]
    return runs


def bp4d_gpu_hours(scenario: str = "base", source: str = "timm", h_every_epoch: str = "no") -> float:
    """GPU-hours of a 3-fold BP4D run: per fold and run, epochs x (A / train rate + evaluated forwards /
    inference rate); evaluated: B rows x (1 + 4 views with multi-crop) every epoch, and the test fold H
    every epoch when ``h_every_epoch`` is ``x4`` (as make_splits writes it, x4 variants, multi-crop) or
    ``v0`` (variant 0 only, no multi-crop: images as they are); ``no``: H only at the chosen epochs
    (x4 variants, one view, at most 12 epochs per run, counted)."""
    ds = DATASETS["bp4d"]
    size = _ds_sizes(ds)
    rates = pair_rates(source)
    total = 0.0
    for run in bp4d_runs(scenario):
        train, infer = rates[run["backbone"]]
        views = 1 + MULTICROP_VIEWS if run["multicrop"] else 1
        evaluated = size["b_rows"] * views
        if h_every_epoch == "x4":
            evaluated += size["h_rows"] * views
        elif h_every_epoch == "v0":
            evaluated += size["h_images"]
        per_epoch = size["a_images"] / train + evaluated / infer
        total += run["epochs"] * per_epoch
        if h_every_epoch == "no":      # H x 4 variants, one view, at <= 12 chosen epochs of the run
            total += 12 * size["h_rows"] / infer
    return ds["folds"] * total / 3600


def gpu_lines() -> list[str]:
    lines = ["| runs per fold (3 folds) | H scored | GPU-h, timm RTX 3090 rates | GPU-h, README's 125 img/s |",
             "|---|---|---|---|"]
    for scenario, label in (("base", "2 base pairs x 100 epochs"),
                            ("paper", "6: base, pretrain 10 + finetune 100, per backbone")):
        for h, hl in (("no", "at the chosen epochs"), ("v0", "every epoch, variant 0"),
                      ("x4", "every epoch, x4 variants, multi-crop")):
            lines.append(f"| {label} | {hl} | {bp4d_gpu_hours(scenario, 'timm', h):.0f} | "
                         f"{bp4d_gpu_hours(scenario, 'readme', h):.0f} |")
    r = pair_rates("timm")
    lines.append("")
    lines.append("Pair rates used (img/s per GPU at 224 px, train / inference): " + ", ".join(
        f"{bb} {t:.0f} / {i:.0f}" for bb, (t, i) in r.items()))
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
    ap.add_argument("--datasets", action="store_true",
                    help="the field's data sets (BP4D, DISFA, Aff-Wild2): their stages, projected to each one")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.n, a.epochs)))
        return None
    if a.datasets:
        r = measure(a.quick, a.stage or DATASET_STAGES)
        print("\n".join(dataset_lines(r)))
        print("\nBP4D, 3 folds, GPU-hours of the paper's recipe (assumptions: bench_scale.bp4d_runs, pair_rates)")
        print("\n".join(gpu_lines()))
        return r
    r = measure(a.quick, a.stage)
    print("\n".join(projection_lines(r)))
    return r


if __name__ == "__main__":
    main()
