"""From a data set's own label files to the workspace label tables.

``prepare_labels(ws, dataset, data_root, **files)`` reads the source files of
one data set and writes ``ws.labels(split)`` (docs/layout.md) for every split
it has, returning one :class:`~aulib.data.labels.LabelReport` per split.

Data sets and their default files (every path overridable by keyword, e.g.
``optimization="my/opt.csv"``; relative paths are taken under ``data_root``):

``synthau`` (data root default ``ws.data``; generated when missing)::

    labels/optimization.csv   manual      images under images/optimization/
    labels/noisy.txt          automatic   images/noisy/
    labels/noisy_true.csv     generic     (true labels of the noisy images)
    labels/validation.csv     manual      images/validation/
    labels/test.csv           manual      images/test/

``emotionet`` (data root required)::

    optimization.csv          manual      images/optimization/   (required)
    noisy/*.txt               automatic   images/noisy/
    validation.csv            manual      images/validation/
    test.csv                  manual      images/test/

``csv``: one generic CSV per split (``optimization=...`` required, others
optional), image paths relative to ``data_root``.

Image folders are overridable with ``image_dirs={split: folder}``.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..aus import AU_NAMES, AUS_2020
from . import synth
from .labels import (LabelReport, label_counts, read_emotionet_automatic, read_emotionet_manual,
                     read_generic_csv, read_label_table, write_label_table)

#: Every split a workspace can hold a label table for.
SPLITS = ("optimization", "noisy", "noisy_true", "validation", "test")
DATASETS = ("synthau", "emotionet", "csv")
#: SynthAU profiles the generator knows; other kit profiles use ``demo`` data.

_READERS = {"manual": read_emotionet_manual, "automatic": read_emotionet_automatic, "generic": read_generic_csv}

#: {dataset: {split: (default file or glob, format, default image folder)}}
LAYOUTS: dict[str, dict[str, tuple[str, str, str]]] = {
    "synthau": {
        "optimization": ("labels/optimization.csv", "manual", "images/optimization"),
        "noisy": ("labels/noisy.txt", "automatic", "images/noisy"),
        "noisy_true": ("labels/noisy_true.csv", "generic", ""),
        "validation": ("labels/validation.csv", "manual", "images/validation"),
        "test": ("labels/test.csv", "manual", "images/test"),
    },
    "emotionet": {
        "optimization": ("optimization.csv", "manual", "images/optimization"),
        "noisy": ("noisy/*.txt", "automatic", "images/noisy"),
        "validation": ("validation.csv", "manual", "images/validation"),
        "test": ("test.csv", "manual", "images/test"),
    },
    "csv": {split: ("", "generic", "") for split in SPLITS if split != "noisy_true"},
}


def resolve_data_root(ws, dataset: str, data_root=None) -> Path:
    """The data root of a data set: ``data_root`` if given, else ``ws.data``
    for SynthAU; other data sets must name theirs."""
    if data_root is not None:
        return Path(data_root)
    if dataset != "synthau":
        raise ValueError(f"dataset {dataset!r} needs data_root: the folder that holds its images "
                         "(and, for emotionet, its label files)")
    return Path(ws.data)


def _resolve_files(spec, data_root: Path) -> list[Path]:
    """A path, a glob or a list of them -> existing files (relative to data_root)."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        p = p if p.is_absolute() else data_root / p
        if glob.has_magic(str(p)):
            out += sorted(Path(m) for m in glob.glob(str(p)))
        elif p.exists():
            out.append(p)
    return out


def prepare_labels(ws, dataset: str = "synthau", data_root=None, *, synth_profile: str = "demo",
                   seed: int = 0, image_dirs: dict[str, str] | None = None, check_files: bool = True,
                   on_error: str = "raise", progress: bool = True, **files) -> dict[str, LabelReport]:
    """Read a data set's label files and write the workspace label tables.

    ``dataset``: ``synthau``, ``emotionet`` or ``csv`` (default files in the
    module docstring). ``files``: ``{split: path | glob | list}`` overriding
    the defaults; ``image_dirs``: ``{split: folder under data_root}``.
    For ``synthau`` the data root (default ``ws.data``) is generated with
    :func:`aulib.data.synth.generate` (``synth_profile``, ``seed``) when it
    holds no ``synthau.yaml``. ``check_files`` / ``on_error`` go to the
    readers. Label tables of splits the data set does not have are removed
    from the workspace, so the tables always match the current source.

    Returns ``{split: LabelReport}`` for every split written.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    layout = LAYOUTS[dataset]
    unknown = sorted(set(files) - set(layout))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown} for dataset {dataset!r}; its splits are {list(layout)}")
    bad_dirs = sorted(set(image_dirs or {}) - set(layout))
    if bad_dirs:
        raise ValueError(f"image_dirs names unknown split(s) {bad_dirs}; the splits are {list(layout)}")

    data_root = resolve_data_root(ws, dataset, data_root)
    if dataset == "synthau" and not (data_root / "synthau.yaml").exists():
        synth.generate(data_root, profile=synth_profile, seed=seed, progress=progress)
    if dataset == "csv" and "optimization" not in files:
        raise ValueError("dataset 'csv' needs the generic CSV of the optimization split, given by keyword: "
                         "prepare_labels(ws, 'csv', data_root, optimization='path/to/optimization.csv') "
                         "(and optionally noisy=, validation=, test=). Notebook 01_data has no parameter for "
                         "label files: call prepare_labels from Python, or use dataset='emotionet' with "
                         "optimization.csv under data_root")

    reports: dict[str, LabelReport] = {}
    for split, (default, fmt, image_dir) in layout.items():
        spec = files.get(split, default)
        paths = _resolve_files(spec, data_root) if spec else []
        if not paths:
            if split == "optimization":
                raise FileNotFoundError(
                    f"no optimization label file for dataset {dataset!r}: looked for {data_root / str(spec)}; "
                    "put the file there, or point notebook 01_data's data_root parameter (profile YAML: "
                    "common: {data_root: ...}) at the folder that holds it; from Python, "
                    "prepare_labels(..., optimization='path/to/file') reads another file")
            if split in files:
                raise FileNotFoundError(f"{split}: {spec!r} matches no file under {data_root}")
            if Path(ws.labels(split)).exists():
                Path(ws.labels(split)).unlink()
            continue
        if fmt != "automatic" and len(paths) > 1:
            raise ValueError(f"{split}: {spec!r} matches {len(paths)} files; give one {fmt} file")
        reader = _READERS[fmt]
        folder = (image_dirs or {}).get(split, image_dir)
        table, report = reader(paths if fmt == "automatic" else paths[0], data_root, image_dir=folder,
                               check_files=check_files, on_error=on_error)
        write_label_table(table, ws.labels(split))
        reports[split] = report
    return reports


def load_labels(ws, split: str) -> pd.DataFrame:
    """The workspace label table of a split (image, AU1 … AU56 as int8)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; label tables exist for {list(SPLITS)}")
    return read_label_table(ws.labels(split))


def available_splits(ws) -> list[str]:
    """Splits that have a label table in the workspace, in :data:`SPLITS` order."""
    return [s for s in SPLITS if Path(ws.labels(s)).exists()]


def report_table(reports: dict[str, LabelReport]) -> pd.DataFrame:
    """One row per split: read, kept, skipped and problem count."""
    rows = [{"split": s, "read": r.read, "kept": r.kept, "skipped": r.skipped, "problems": len(r.problems)}
            for s, r in reports.items()]
    return pd.DataFrame(rows, columns=["split", "read", "kept", "skipped", "problems"]).set_index("split")


def problems_table(reports: dict[str, LabelReport]) -> pd.DataFrame:
    """Every problem of every report, with a leading ``split`` column."""
    frames = [r.problems.assign(split=s) for s, r in reports.items() if len(r.problems)]
    cols = ["split", "file", "line", "column", "value", "reason"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def prevalence_table(ws, splits: Sequence[str] | None = None) -> pd.DataFrame:
    """Share of positives among known labels per AU (rows) and split (columns),
    for the splits with a label table, plus the AU's group and name."""
    splits = available_splits(ws) if splits is None else list(splits)
    out = pd.DataFrame(index=pd.Index(list(AUS_2020), name="AU"))
    out["name"] = [AU_NAMES[a] for a in AUS_2020]
    out["group"] = label_counts(load_labels(ws, splits[0]))["group"] if splits else ""
    for split in splits:
        out[split] = label_counts(load_labels(ws, split))["prevalence"]
    return out
