"""SynthAU: the embedded synthetic AU data set, written in the EmotioNet formats.

``generate(root, profile="demo", seed=0)`` writes (docs/layout.md, "SynthAU
data root")::

    images/<split>/<6-digit id>.jpg      128x128 RGB JPEG
    labels/optimization.csv              EmotioNet manual format (~1.5 % unknown)
    labels/noisy.txt                     EmotioNet automatic format (weak annotator)
    labels/noisy_true.csv                generic CSV: the true labels of the noisy images
    labels/validation.csv, labels/test.csv   EmotioNet manual format
    faces.csv                            ground-truth face cache (box, 5 landmarks)
    synthau.yaml                         profile, seed, counts, generator version (written last)

Splits and sizes: ``PROFILES``. Labels, AU effect sizes and the weak annotator
are described in :mod:`aulib.data.sources.synthau.au_model`; the drawing in
:mod:`aulib.data.sources.synthau.face`. The test split carries challenge-style
degradations (down-sampling, black-square occlusion) on part of its images.

Determinism: image ``i`` of ``split`` draws everything from generators seeded
with ``(seed, split code, i, stream)`` (stream 0 labels, 1 face and scene,
2 degradation), so the same seed gives byte-identical label files and the
same pixels, and any image regenerates alone (:func:`render_image`).

Command line: ``python -m aulib.data.sources.synthau --root DIR --profile demo|ci --seed N``.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from PIL import Image

from .... import io as aio
from ....aus import AUS_2020
from ....progress import progress as progress_bar
from ..emotionet import write_emotionet_automatic, write_emotionet_manual
from ..generic_csv import write_generic_csv
from . import au_model as L
from .face import render_face, sample_identity, sample_scene

#: Raised whenever the drawn labels or images change; a complete root of another version is refused
#: (:func:`generate`). The versions: docs/decisions.md, "SynthAU's label model, version by version".
GENERATOR_VERSION = 5
SPLITS = ("optimization", "noisy", "validation", "test")
_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}
PROFILES: dict[str, dict[str, int]] = {
    "demo": {"optimization": 3000, "noisy": 4000, "validation": 250, "test": 500},
    "ci": {"optimization": 600, "noisy": 1500, "validation": 200, "test": 300},
}
IMAGE_SIZE = 128
JPEG_QUALITY = 90
URL_HOST = "http://synthau.invalid"
MARKER = "synthau.yaml"
#: Share of test images down-sampled only / occluded only / both.
TEST_DEGRADE = {"downsample": 0.25, "occlude": 0.20, "both": 0.10}

FACE_COLUMNS = (["image", "width", "height", "n_faces", "score", "x0", "y0", "x1", "y1"]
                + [f"lm{k}_{c}" for k in range(5) for c in ("x", "y")])


def image_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """Generator of one image's draws: stream 0 labels, 1 face/scene, 2 degradation."""
    return np.random.default_rng([int(seed), _SPLIT_CODE[split], int(index), int(stream)])


def image_name(split: str, index: int) -> str:
    """Path of an image relative to the data root: ``images/<split>/000012.jpg``."""
    return f"images/{split}/{index:06d}.jpg"


def split_labels(seed: int, split: str, n: int) -> dict[str, np.ndarray]:
    """Label-side draws of the first ``n`` images of a split.

    Returns ``labels`` int8 (n, 23) true labels, ``intensity`` float32 (n, 23),
    ``emotion`` (n,), ``written`` int8 (n, 23) the labels as written to the
    split's label file (unknowns in optimization, weak annotator in noisy).
    """
    u = np.stack([image_rng(seed, split, i, 0).random(L.N_UNIFORMS) for i in range(n)]) if n else \
        np.zeros((0, L.N_UNIFORMS))
    labels, intensity, emotion = L.true_labels(u)
    if split == "optimization":
        written = np.where(L.unknown_mask(u), -1, labels).astype(np.int8)
    elif split == "noisy":
        written = L.weak_labels(u, labels, intensity)
    else:
        written = labels.copy()
    return {"labels": labels, "intensity": intensity, "emotion": emotion, "written": written}


def degrade_test_image(img: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Challenge-style degradation of a test image (uint8 (H, W, 3)).

    Returns the image and the kind applied: ``none``, ``downsample`` (down-scale
    by 2-4 with area averaging, up-scale bilinear), ``occlude`` (a black square
    of 20-40 % of the side centred inside the face box) or ``both``.
    """
    u = rng.random(6)
    p = TEST_DEGRADE
    if u[0] < p["downsample"]:
        kind = "downsample"
    elif u[0] < p["downsample"] + p["occlude"]:
        kind = "occlude"
    elif u[0] < p["downsample"] + p["occlude"] + p["both"]:
        kind = "both"
    else:
        return img, "none"
    h, w = img.shape[:2]
    if kind in ("downsample", "both"):
        f = 2.0 + 2.0 * u[1]
        small = Image.fromarray(img).resize((max(1, round(w / f)), max(1, round(h / f))), Image.BOX)
        img = np.asarray(small.resize((w, h), Image.BILINEAR))
    if kind in ("occlude", "both"):
        img = img.copy()
        side = int(round((0.2 + 0.2 * u[2]) * min(h, w)))
        cx = box[0] + u[3] * (box[2] - box[0])
        cy = box[1] + u[4] * (box[3] - box[1])
        x0 = int(np.clip(cx - side / 2, 0, w - side))
        y0 = int(np.clip(cy - side / 2, 0, h - side))
        img[y0:y0 + side, x0:x0 + side] = 0
    return img, kind


def render_image(seed: int, split: str, index: int, intensity: np.ndarray,
                 size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Image ``index`` of ``split`` from its AU intensities (23,) in ``AUS_2020``
    order: ``(image uint8 (size, size, 3), box (4,), landmarks (5, 2), degradation)``
    where ``degradation`` is ``none`` outside the test split."""
    rng = image_rng(seed, split, index, 1)
    identity, scene = sample_identity(rng), sample_scene(rng)
    aus = {au: float(v) for au, v in zip(AUS_2020, intensity) if v > 0}
    img, box, lm = render_face(identity, aus, scene, size=size)
    kind = "none"
    if split == "test":
        img, kind = degrade_test_image(img, box, image_rng(seed, split, index, 2))
    return img, box, lm, kind


def _write_jpeg(path: Path, img: np.ndarray) -> None:
    # Encode in memory, then write to a temporary name and rename into place
    # (atomic; not fsynced one by one: the marker written last vouches for them).
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=JPEG_QUALITY)
    aio.write_bytes(path, buf.getvalue(), fsync=False)   # a temporary name unique to this process and call


def _face_rows(names, boxes: np.ndarray, lms: np.ndarray, size: int) -> pd.DataFrame:
    n = len(names)
    data = np.concatenate([boxes, lms.reshape(n, 10)], axis=1).round(2) if n else np.zeros((0, 14))
    df = pd.DataFrame(data, columns=FACE_COLUMNS[5:])
    df.insert(0, "image", list(names))
    df.insert(1, "width", size)
    df.insert(2, "height", size)
    df.insert(3, "n_faces", 1)
    df.insert(4, "score", 1.0)
    return df


def _label_writers():
    return write_emotionet_manual, write_emotionet_automatic, write_generic_csv


def _resolve_counts(profile: str, counts: Mapping[str, int] | None) -> dict[str, int]:
    if counts is None:
        if profile not in PROFILES:
            raise ValueError(f"unknown SynthAU profile {profile!r}; choose one of {sorted(PROFILES)} "
                             "or pass counts={split: n}")
        return dict(PROFILES[profile])
    bad = set(counts) - set(SPLITS)
    if bad:
        raise ValueError(f"unknown SynthAU split(s) {sorted(bad)} in counts; splits are {list(SPLITS)}")
    out = {s: int(counts.get(s, 0)) for s in SPLITS}
    if any(v < 0 for v in out.values()):
        raise ValueError(f"counts must be >= 0, got {out}")
    return out


def _check_existing(root: Path, params: dict) -> dict | None:
    """The stored summary when ``root`` already holds this exact data set."""
    marker = root / MARKER
    if not marker.exists():
        return None
    meta = aio.read_yaml(marker) or {}
    differ = [k for k in params if meta.get(k) != params[k]]
    if differ:
        what = ", ".join(f"{k}={meta.get(k)!r} (requested {params[k]!r})" for k in differ)
        raise FileExistsError(
            f"{root} already holds a complete SynthAU data set with {what}. "
            "Choose another --root, or delete that folder to regenerate it.")
    return dict(meta)


def generate(root, profile: str = "demo", seed: int = 0, progress: bool = True,
             counts: Mapping[str, int] | None = None, size: int = IMAGE_SIZE) -> dict:
    """Write a SynthAU data root (layout in the module docstring).

    ``counts`` ({split: n}) overrides the profile's sizes (tests use it).
    Rerunning on a complete root with the same profile, seed, counts and
    generator version does nothing and returns the stored summary; a root
    holding a different SynthAU set raises ``FileExistsError``.

    Returns the summary: ``counts``, ``prevalence`` per AU (true labels, all
    splits), ``unknown_rate`` of the optimization file, ``noisy_accuracy``
    (mean and per AU, weak vs true labels), ``test_degraded`` (share) and
    ``seconds`` taken.
    """
    root = Path(root)
    sizes = _resolve_counts(profile, counts)
    params = {"profile": profile, "seed": int(seed), "counts": sizes,
              "generator_version": GENERATOR_VERSION, "image_size": int(size)}
    done = _check_existing(root, params)
    if done is not None:
        return done
    write_manual, write_automatic, write_generic = _label_writers()

    t0 = time.perf_counter()
    all_true, face_frames, degraded = [], [], 0
    summary: dict = dict(params)
    for split in SPLITS:
        n = sizes[split]
        lab = split_labels(seed, split, n)
        names = [image_name(split, i) for i in range(n)]
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        boxes, lms = np.zeros((n, 4)), np.zeros((n, 5, 2))
        bar = progress_bar(range(n), desc=f"SynthAU {split}", disable=not progress, unit="img")
        for i in bar:
            img, boxes[i], lms[i], kind = render_image(seed, split, i, lab["intensity"][i], size=size)
            degraded += kind != "none"
            _write_jpeg(root / names[i], img)
        face_frames.append(_face_rows(names, boxes, lms, size))
        all_true.append(lab["labels"])

        url = f"{URL_HOST}/{split}/"
        table = L.label_table(names, lab["written"])
        path = root / "labels" / ("noisy.txt" if split == "noisy" else f"{split}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        if split == "noisy":
            write_automatic(table, path, url)
            write_generic(L.label_table(names, lab["labels"]), root / "labels" / "noisy_true.csv")
            acc = L.per_au_accuracy(lab["written"], lab["labels"]) if n else np.full(len(AUS_2020), np.nan)
            summary["noisy_accuracy"] = {"mean": round(float(np.mean(acc)), 4),
                                         "per_au": {int(a): round(float(v), 4) for a, v in zip(AUS_2020, acc)}}
        else:
            write_manual(table, path, url)
        if split == "optimization":
            summary["unknown_rate"] = round(float((lab["written"] == -1).mean()), 4) if n else 0.0

    aio.write_csv(root / "faces.csv", pd.concat(face_frames, ignore_index=True))
    true = np.concatenate(all_true)
    summary["prevalence"] = {int(a): round(float(v), 4) for a, v in zip(AUS_2020, true.mean(0))} if len(true) else {}
    summary["test_degraded"] = round(degraded / sizes["test"], 4) if sizes["test"] else 0.0
    aio.write_yaml(root / MARKER, summary)  # last: marks the root complete
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aulib.data.sources.synthau",
                                 description="Generate the SynthAU data set (EmotioNet-format labels).")
    ap.add_argument("--root", required=True, help="data root to write (created if missing)")
    ap.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    try:
        s = generate(args.root, profile=args.profile, seed=args.seed, progress=not args.no_progress)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = sum(s["counts"].values())
    secs = s.get("seconds")
    timing = f" in {secs:.1f} s ({1000 * secs / max(n, 1):.2f} ms/image)" if secs is not None else " (already complete)"
    print(f"SynthAU {args.profile} seed {args.seed}: {n} images{timing} -> {args.root}")
    print(f"noisy label accuracy (mean over AUs): {s['noisy_accuracy']['mean']:.3f}")
    print("prevalence: " + ", ".join(f"AU{a} {100 * v:.1f}%" for a, v in s["prevalence"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
