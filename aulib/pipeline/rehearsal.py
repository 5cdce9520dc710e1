"""A shipped GPU profile rehearsed: the same steps and settings at toy size, on CPU.

``rehearsal_profile(profile, weights=...) -> dict`` derives a profile from a
shipped one (``paper``, ``bp4d``, ``disfa``, ``affwild2``: notebooks/profiles/)
or a profile file by code, so the two cannot drift. Only these
differ (:data:`CHANGED`): crop size (``02_split.sizes``, every ``img_size``),
epochs (every ``epochs`` / ``base_epochs``, capped), the machine's processes
(``nproc``, torchrun's, gloo when there is no GPU; every ``num_workers``,
capped), ImageNet weight paths (a run's
``pretrained: true`` becomes the file given for its backbone in ``weights``;
backbones without a file keep ``true``, the timm / Hugging Face cache), the
data root (``common.data_root``) and the profile's name and description.

Command line (rehearse your own paper set-up on a slice before spending GPU
hours; ``--rows`` copies that many optimization rows, and noisy lines, with
their images, into a small data root beside the profile)::

    python -m aulib.pipeline.rehearsal --data-root /data/emotionet --out /tmp/rehearsal.yaml \\
        [--profile paper] [--rows 300 200] [--weights efficientnet_b4=/w/effb4.safetensors] \\
        [--img-size 32] [--epochs 1]
    python -m aulib.pipeline --profile /tmp/rehearsal.yaml

(``--rows`` slices EmotioNet's layout; the benchmark profiles rehearse on a whole data root.)
"""
from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

from .. import io as aio
from .profile import find_profile

#: The keys a rehearsal changes, wherever they appear; everything else is paper.yaml's.
CHANGED = ("sizes", "img_size", "epochs", "base_epochs", "nproc", "num_workers", "pretrained")
#: Top-level / ``common`` keys a rehearsal sets.
CHANGED_TOP = ("profile", "description", "data_root")


def _backbones(step: dict, defaults: dict) -> list[str]:
    params = step.get("parameters") or {}
    stem = Path(step["notebook"]).stem
    return [str(b) for b in params.get("backbones") or defaults.get(stem, {}).get("backbones") or []]


def _shrink(mapping: dict, img_size: int, epochs: int, nproc: int, workers: int, weight: str | None) -> None:
    """Apply the rehearsal's values to the CHANGED keys of one mapping (in place, recursively)."""
    for key, value in list(mapping.items()):
        if isinstance(value, dict):
            _shrink(value, img_size, epochs, nproc, workers, weight)
        elif key == "sizes":
            mapping[key] = [img_size]
        elif key == "img_size":
            mapping[key] = img_size
        elif key in ("epochs", "base_epochs") and value is not None:
            mapping[key] = min(int(value), epochs)
        elif key == "nproc":
            mapping[key] = nproc
        elif key == "num_workers" and value is not None:
            mapping[key] = min(int(value), workers)
        elif key == "pretrained" and value is True and weight:
            mapping[key] = weight


def rehearsal_profile(profile: str | Path = "paper", weights: dict[str, str] | None = None, *,
                      img_size: int = 32, epochs: int = 1, nproc: int = 2, workers: int = 2,
                      data_root: str | None = None,
                      name: str = "rehearsal") -> dict:
    """The profile mapping of a rehearsal of ``profile`` (a shipped profile's
    name, default ``paper``, or a profile file): same steps, settings and tables; crops of
    ``img_size`` px, at most ``epochs`` epochs a run, ``nproc`` processes
    (torchrun), at most ``workers`` loader / crop-building processes,
    ``weights`` ({backbone name: weight file}) for the runs that take
    ImageNet weights (other backbones: the timm cache), ``data_root`` in
    ``common``. Write it with :func:`aulib.io.write_yaml`."""
    src = find_profile(profile)
    paper = aio.read_yaml(src) or {}
    if paper.get("extends"):
        raise ValueError(f"{src}: rehearsal_profile needs a profile without 'extends' (got extends: "
                         f"{paper['extends']}); give the file it extends, or merge the two")
    weights = {str(k): str(Path(v).expanduser().resolve()) for k, v in (weights or {}).items()}
    out = copy.deepcopy(paper)
    out["profile"] = name
    out["description"] = (f"Rehearsal of {src.name} ({paper.get('profile', src.stem)}): its steps and settings "
                          f"at {img_size} px, <= {epochs} epoch(s), {nproc} processes, <= {workers} workers; "
                          "made by aulib.pipeline.rehearsal.")
    if data_root is not None:
        out["common"] = {**(out.get("common") or {}), "data_root": str(data_root)}
    defaults = out.get("defaults") or {}
    for step in out.get("steps") or []:
        bbs = _backbones(step, defaults)
        files = {weights[b] for b in bbs if b in weights}
        if len(files) > 1 or (files and len(set(bbs)) > 1):
            raise ValueError(f"{src}: step {step.get('name', step['notebook'])} pairs backbones {bbs}; give "
                             "pretrained per view by hand (overrides: {pretrained: [file1, file2]})")
        _shrink(step, img_size, epochs, nproc, workers, files.pop() if files else None)
    for section in (defaults, out.get("step_overrides") or {}):
        _shrink(section, img_size, epochs, nproc, workers, None)
    return out


def _url_file(url: str) -> str:
    return url.strip().strip('"').split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def slice_data_root(src: str | Path, dst: str | Path, optimization: int, noisy: int) -> dict[str, int]:
    """Copy the first ``optimization`` rows of ``src/optimization.csv`` and the
    first ``noisy`` lines of ``src/noisy/*.txt`` (in file order), with the
    images their URLs name, into ``dst`` (same EmotioNet layout). Lines are
    copied byte for byte; an image that is missing is left out (01_data
    reports the row). Returns {split: lines written}."""
    src, dst = Path(src), Path(dst)
    if (dst / "optimization.csv").exists():
        raise FileExistsError(f"{dst} already holds a data root; delete it or give another --slice-dir")
    opt = src / "optimization.csv"
    if not opt.is_file():
        raise FileNotFoundError(f"no {opt}: --data-root must hold the EmotioNet layout of "
                                "docs/emotionet.md (optimization.csv, noisy/*.txt, images/...)")
    counts = {}
    lines = opt.read_bytes().splitlines(keepends=True)
    counts["optimization"] = _copy_rows(lines[:1], lines[1:1 + optimization], b",", "optimization",
                                        src, dst, dst / "optimization.csv")
    left = noisy
    counts["noisy"] = 0
    for lst in sorted((src / "noisy").glob("*.txt")):
        if left <= 0:
            break
        rows = lst.read_bytes().splitlines(keepends=True)[:left]
        n = _copy_rows([], rows, b"\t", "noisy", src, dst, dst / "noisy" / lst.name)
        counts["noisy"], left = counts["noisy"] + n, left - n
    return counts


def _copy_rows(header: list[bytes], rows: list[bytes], sep: bytes, split: str, src: Path, dst: Path,
               out: Path) -> int:
    (dst / "images" / split).mkdir(parents=True, exist_ok=True)
    for row in rows:
        name = _url_file(row.split(sep, 1)[0].decode("utf-8", "replace"))
        image = src / "images" / split / name
        if name and image.is_file() and not (dst / "images" / split / name).exists():
            shutil.copy2(image, dst / "images" / split / name)
    with aio.atomic_path(out) as tmp:
        tmp.write_bytes(b"".join(header + rows))
    return len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aulib.pipeline.rehearsal", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True, help="the data root of the profile's data set (EmotioNet: "
                    "docs/emotionet.md; BP4D, DISFA, Aff-Wild2: docs/bp4d.md, docs/disfa.md, docs/affwild2.md)")
    ap.add_argument("--out", required=True, help="profile YAML to write (outside the repository is fine)")
    ap.add_argument("--profile", default="paper", help="shipped profile name (paper, bp4d, disfa, affwild2) or a "
                    "profile file to rehearse (default paper)")
    ap.add_argument("--weights", action="append", default=[], metavar="BACKBONE=FILE",
                    help="ImageNet weight file of a backbone (repeatable); others: the timm / HF cache")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--nproc", type=int, default=2, help="torchrun processes per run")
    ap.add_argument("--workers", type=int, default=2, help="cap on every num_workers (loaders, crop building)")
    ap.add_argument("--rows", type=int, nargs=2, metavar=("OPTIMIZATION", "NOISY"), default=None,
                    help="rehearse on a slice: copy this many rows (and their images) to --slice-dir")
    ap.add_argument("--slice-dir", default=None, help="where --rows writes the slice (default <out>_data/)")
    a = ap.parse_args(argv)
    bad = [w for w in a.weights if "=" not in w]
    if bad:
        ap.error(f"--weights takes BACKBONE=FILE, got {bad}")
    weights = dict(w.split("=", 1) for w in a.weights)
    missing = [f for f in weights.values() if not Path(f).expanduser().is_file()]
    if missing:
        ap.error(f"weight file(s) {missing} do not exist")
    out = Path(a.out).expanduser().resolve()
    data_root = Path(a.data_root).expanduser().resolve()
    if a.rows:
        data_root_out = Path(a.slice_dir).resolve() if a.slice_dir else out.with_name(out.stem + "_data")
        counts = slice_data_root(data_root, data_root_out, *a.rows)
        print(f"slice of {data_root}: {counts} -> {data_root_out}")
        data_root = data_root_out
    profile = rehearsal_profile(a.profile, weights, img_size=a.img_size, epochs=a.epochs, nproc=a.nproc,
                                workers=a.workers, data_root=str(data_root))
    aio.write_yaml(out, profile)
    print(f"wrote {out}\nrun it: {sys.executable} -m aulib.pipeline --profile {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
