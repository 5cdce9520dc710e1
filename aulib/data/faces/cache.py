"""The face cache ``faces.csv``: built once per image (resumable), read back checked.

:func:`build_face_cache` detects faces with MTCNN (:mod:`aulib.data.faces.detect`)
or copies a ground-truth cache (SynthAU ships ``data_root/faces.csv``);
:class:`FaceReport` says what the build found.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from aulib.io import write_csv

from ..images import resolve_image
from .columns import CACHE_COLUMNS, FACE_COLUMNS
from .detect import MIN_FACE_PX, progress_bar, detect_faces

@dataclass
class FaceReport:
    """What a face-cache build found, image names per outcome."""

    ok: list[str] = field(default_factory=list)            # exactly one face
    zero_faces: list[str] = field(default_factory=list)    # readable, no face
    several_faces: list[str] = field(default_factory=list)  # largest kept
    too_small: list[str] = field(default_factory=list)      # shorter side < MIN_FACE_PX, no search
    unreadable: dict[str, str] = field(default_factory=dict)  # image -> reason

    @classmethod
    def from_cache(cls, df: pd.DataFrame, errors: Mapping[str, str] | None = None) -> "FaceReport":
        errors = dict(errors or {})
        status = df["status"] if "status" in df else np.where(df["n_faces"] > 0, "ok", "no_face")
        report = cls()
        for image, n, st in zip(df["image"], df["n_faces"], status):
            if st == "unreadable":
                report.unreadable[image] = errors.get(image, "unreadable")
            elif st == "too_small":
                report.too_small.append(image)
            elif n == 0:
                report.zero_faces.append(image)
            elif n == 1:
                report.ok.append(image)
            else:
                report.several_faces.append(image)
        return report

    @property
    def counts(self) -> dict[str, int]:
        return {"ok": len(self.ok), "zero_faces": len(self.zero_faces),
                "several_faces": len(self.several_faces), "too_small": len(self.too_small),
                "unreadable": len(self.unreadable)}

    def summary(self, examples: int = 5) -> str:
        """A few lines: the count of each outcome and some image names."""
        total = sum(self.counts.values())
        lines = [f"{total} images: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items())]
        for name, items in (("zero faces (centre crop fallback)", self.zero_faces),
                            ("several faces (largest kept)", self.several_faces),
                            (f"too small to search, under {MIN_FACE_PX} px (centre crop fallback)", self.too_small)):
            if items:
                more = f" ... (+{len(items) - examples})" if len(items) > examples else ""
                lines.append(f"  {name}: {', '.join(items[:examples])}{more}")
        if self.unreadable:
            lines.append("  unreadable (black crop):")
            lines += [f"    {k}: {v}" for k, v in list(self.unreadable.items())[:examples]]
            if len(self.unreadable) > examples:
                lines.append(f"    ... (+{len(self.unreadable) - examples})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def read_face_cache(path) -> pd.DataFrame:
    """Read a face cache CSV; checks the columns of docs/layout.md and adds
    ``status`` when absent (``ok`` if ``n_faces > 0`` else ``no_face``)."""
    df = pd.read_csv(path, dtype={"image": str, "status": str}, keep_default_na=False,
                     na_values={c: ["", "nan", "NaN"] for c in FACE_COLUMNS[4:]})
    missing = [c for c in FACE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"face cache {path} lacks columns {missing}; expected {FACE_COLUMNS}")
    if df["image"].duplicated().any():
        dup = df.loc[df["image"].duplicated(), "image"].tolist()[:5]
        raise ValueError(f"face cache {path} lists images more than once, e.g. {dup}")
    for col in ("width", "height", "n_faces"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            raise ValueError(f"face cache {path}: column {col!r} must be an integer on every row; "
                             f"images {df['image'][bad].tolist()[:5]} are not")
    if "status" not in df.columns:
        df["status"] = np.where(df["n_faces"].astype(int) > 0, "ok", "no_face")
    return df[CACHE_COLUMNS].astype({"width": "int64", "height": "int64", "n_faces": "int64"})


def build_face_cache(data_root, images: Sequence[str], out_csv, method: str = "mtcnn",
                     ground_truth_csv=None, device: str = "cpu", batch_size: int = 16,
                     resume: bool = True, progress: bool = True, chunk: int = 256,
                     max_side: int | None = 1024, min_face_frac: float | None = None,
                     stall_minutes: float | None = None) -> tuple[pd.DataFrame, FaceReport]:
    """Write the face cache ``out_csv`` for ``images`` (paths relative to
    ``data_root``) and return it with a :class:`FaceReport`.

    ``method="mtcnn"`` detects faces (see :func:`detect_faces`), ``chunk``
    images at a time, rewriting ``out_csv`` atomically after a chunk unless
    the last rewrite was under 10x its own duration ago (so rewrites cost at
    most ~10 % of the time, not O(N^2) on a million images); with
    ``resume`` the rows already in ``out_csv`` are kept (except unreadable
    ones, which are retried), so an interrupted build continues where it
    stopped (rows are reused whatever made them: pass ``resume=False`` after
    changing the method); a cache that already holds exactly ``images``
    (none unreadable) is returned as it is, not rewritten. ``method="ground_truth"`` copies the rows of ``ground_truth_csv``
    (default ``data_root/faces.csv``), every image must be listed there.
    ``stall_minutes``: :func:`detect_faces`' watchdog. The cache holds the rows
    of ``images`` in their order, nothing else.
    """
    images = [str(i) for i in images]
    if len(set(images)) != len(images):
        dup = pd.Series(images)[pd.Series(images).duplicated()].tolist()[:5]
        raise ValueError(f"images are listed more than once, e.g. {dup}")
    paths = [resolve_image(data_root, i) for i in images]

    if method == "ground_truth":
        gt_path = Path(ground_truth_csv) if ground_truth_csv else Path(data_root) / "faces.csv"
        gt = read_face_cache(gt_path).set_index("image", drop=False)
        missing = [i for i in images if i not in gt.index]
        if missing:
            raise KeyError(f"{len(missing)} of {len(images)} images are not in the ground-truth face "
                           f"cache {gt_path}, e.g. {missing[:5]}; use method='mtcnn' or fix the list")
        df = gt.loc[images, CACHE_COLUMNS].reset_index(drop=True)
        write_csv(out_csv, df)
        return df, FaceReport.from_cache(df)
    if method != "mtcnn":
        raise ValueError(f"unknown face method {method!r}; choose 'mtcnn' or 'ground_truth'")

    done: dict[str, dict] = {}
    if resume and Path(out_csv).exists():
        old = read_face_cache(out_csv)
        if old["image"].tolist() == images and not (old["status"] == "unreadable").any():
            return old, FaceReport.from_cache(old)   # complete: not rewritten (a k-fold's shared link stays one file)
        wanted = set(images)
        done = {r["image"]: r for r in old.to_dict("records")
                if r["image"] in wanted and r["status"] != "unreadable"}
    todo = [k for k, i in enumerate(images) if i not in done]
    errors: dict[str, str] = {}
    bar = progress_bar(total=len(images), desc="faces", disable=not progress)
    bar.update(len(images) - len(todo))
    next_write, write_s = 0.0, 0.0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        found = detect_faces([paths[k] for k in part], device=device, batch_size=batch_size,
                             progress=False, max_side=max_side, min_face_frac=min_face_frac,
                             stall_minutes=stall_minutes)
        for k, row in zip(part, found.to_dict("records")):
            if row["status"] == "unreadable":
                errors[images[k]] = found.attrs["errors"].get(str(paths[k]), "unreadable")
            row["image"] = images[k]
            done[images[k]] = row
        if time.perf_counter() >= next_write:   # checkpoint, at most ~10 % of the time: O(N) writing in all
            t = time.perf_counter()
            _write_cache(out_csv, [done[i] for i in images if i in done])
            write_s = time.perf_counter() - t
            next_write = time.perf_counter() + 10 * write_s
        bar.update(len(part))
    bar.close()
    df = _write_cache(out_csv, [done[i] for i in images])
    return df, FaceReport.from_cache(df, errors)


def _write_cache(path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=CACHE_COLUMNS)
    df = df.astype({"width": "int64", "height": "int64", "n_faces": "int64"})
    write_csv(path, df)
    return df


