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
optional; relative paths are taken under ``data_root``), image paths
relative to ``data_root``. A ``split`` column in the optimization CSV
(``train`` / ``validation`` / ``test``) sends each row to that split's table
instead. A ``subject`` column is written to ``labels/subjects.csv``
(``image, subject``), which makes every split subject-exclusive
(:mod:`aulib.data.splits`).

Image folders are overridable with ``image_dirs={split: folder}``.

Native layouts, read as the data sets ship them (one module each; their
folder names and options are ``settings={...}``, defaults in the module's
``SETTINGS``; every table gets subjects):

``bp4d`` (:mod:`.bp4d`)        AUCoding/AU_OCC/<Subject>_<Task>.csv, frames img/<Subject>/<Task>/<n>.jpg
``disfa`` (:mod:`.disfa`)      ActionUnit_Labels/<SN>/<SN>_au<N>.txt, frames from
                               Video_LeftCamera/LeftVideo<SN>_comp.avi (or the right camera's)
``affwild2`` (:mod:`.affwild2`)  annotations/AU_Detection_Challenge/{Train,Validation}_Set/<video>.txt, cropped_aligned/
``machine_labels`` (:mod:`.machine_labels`)  OpenFace 2 / py-feat (Fex) CSVs of your videos as the noisy set,
                 a generic CSV of manual codes as the optimization table (docs/noisy_labels.md)

:data:`SOURCES` is the one table of data sets: a new data set is one module
and one entry there.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from ... import io as aio
from ...aus import AU_NAMES, BUILTIN_GROUPS, CATALOG
from ...settings import SettingError
from ..labels import LabelReport, label_counts, read_label_table, write_label_table
from .emotionet import read_emotionet_automatic, read_emotionet_manual
from .generic_csv import read_generic_csv
from . import affwild2, bp4d, disfa, machine_labels
from .synthau import generate as synth

#: Every split a workspace can hold a label table for.
SPLITS = ("optimization", "noisy", "noisy_true", "validation", "test")
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


@dataclass(frozen=True)
class Source:
    """One data set the kit reads.

    ``read(data_root, settings, check_files, on_error) -> ({split: table},
    {split: LabelReport})`` for a native layout; ``layout`` (``{split: (file
    or glob, format, image folder)}``) for the label-file data sets read by
    the EmotioNet / generic readers. ``settings``: the reader's options and
    their defaults; ``inputs(root, settings)``: the files whose change makes
    the labels change (step fingerprints).
    """

    name: str
    layout: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    read: Callable | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    inputs: Callable | None = None
    needs_root: bool = True
    #: Tables a native reader writes (a layout's are its keys).
    tables: tuple[str, ...] = ("optimization",)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.layout) if self.layout else self.tables


#: The data sets, by name (docs/layout.md, docs/bp4d.md, docs/disfa.md, docs/affwild2.md, docs/noisy_labels.md).
SOURCES: dict[str, Source] = {
    "synthau": Source("synthau", LAYOUTS["synthau"], needs_root=False),
    "emotionet": Source("emotionet", LAYOUTS["emotionet"]),
    "csv": Source("csv", LAYOUTS["csv"], settings={"intensity_threshold": None}),
    "bp4d": Source("bp4d", read=bp4d.read, settings=bp4d.SETTINGS, inputs=bp4d.inputs),
    "disfa": Source("disfa", read=disfa.read, settings=disfa.SETTINGS, inputs=disfa.inputs),
    "affwild2": Source("affwild2", read=affwild2.read, settings=affwild2.SETTINGS, inputs=affwild2.inputs,
                       tables=("optimization", "validation")),
    "machine_labels": Source("machine_labels", read=machine_labels.read, settings=machine_labels.SETTINGS,
                             inputs=machine_labels.inputs, tables=("optimization", "noisy", "noisy_true")),
}
DATASETS = tuple(SOURCES)


def source_settings(dataset: str, settings: Mapping | None) -> dict:
    """The reader options of a data set: its defaults updated by ``settings``
    (an unknown key is a ValueError naming the keys there are)."""
    source = SOURCES[dataset]
    given = dict(settings or {})
    unknown = sorted(set(given) - set(source.settings))
    if unknown:
        have = sorted(source.settings) or "none"
        raise SettingError(f"unknown label setting(s) {unknown} for dataset {dataset!r}; its settings are {have}")
    return {**source.settings, **given}


def source_inputs(dataset: str, data_root, settings: Mapping | None = None) -> list[Path]:
    """Files and folders a data set's labels are read from (for fingerprints)."""
    source = SOURCES.get(dataset or "synthau")
    root = Path(data_root)
    if source is None or source.inputs is None:
        layout = source.layout if source else {}
        patterns = [spec for spec, _, _ in layout.values() if spec] or ["*.csv", "*.txt"]
        files = {m for pat in patterns for m in root.glob(pat) if m.is_file()}
        folders = {root / d for _, _, d in layout.values() if d and (root / d).is_dir()}
        return sorted(files | folders)
    return source.inputs(root, source_settings(dataset, settings))


def resolve_data_root(ws, dataset: str, data_root=None) -> Path:
    """The data root of a data set: ``data_root`` if given, else ``ws.data``
    for SynthAU; other data sets must name theirs."""
    if data_root is not None:
        return Path(data_root)
    if SOURCES[dataset].needs_root:
        raise ValueError(f"dataset {dataset!r} needs data_root: the folder that holds its images "
                         "and label files")
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


def _read_layout(dataset: str, data_root: Path, files: dict, image_dirs: dict | None, settings: dict,
                 check_files: bool, on_error: str):
    """Tables and reports of a label-file data set (synthau, emotionet, csv)."""
    layout = SOURCES[dataset].layout
    tables: dict[str, pd.DataFrame] = {}
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
            continue
        if fmt != "automatic" and len(paths) > 1:
            raise ValueError(f"{split}: {spec!r} matches {len(paths)} files; give one {fmt} file")
        reader = _READERS[fmt]
        folder = (image_dirs or {}).get(split, image_dir)
        extra = {"intensity_threshold": settings["intensity_threshold"]} if fmt == "generic" and \
            settings.get("intensity_threshold") is not None else {}
        table, report = reader(paths if fmt == "automatic" else paths[0], data_root, image_dir=folder,
                               check_files=check_files, on_error=on_error, **extra)
        tables[split], reports[split] = table, report
    return tables, reports


def prepare_labels(ws, dataset: str = "synthau", data_root=None, *, synth_profile: str = "demo",
                   seed: int = 0, image_dirs: dict[str, str] | None = None, check_files: bool = True,
                   on_error: str = "raise", progress: bool = True, labels_csv=None,
                   settings: Mapping | None = None, **files) -> dict[str, LabelReport]:
    """Read a data set's label files and write the workspace label tables.

    ``dataset``: a name of :data:`SOURCES` (default files in the module
    docstring). ``files``: ``{split: path | glob | list}`` overriding
    the defaults; ``image_dirs``: ``{split: folder under data_root}``.
    ``settings``: the data set's reader options (``SETTINGS`` of its module,
    e.g. ``{"threshold": 2}`` for DISFA, ``{"intensity_threshold": 2}`` for
    a generic CSV with ``AU1_r`` columns).
    For ``synthau`` the data root (default ``ws.data``) is generated with
    :func:`aulib.data.sources.synthau.generate.generate` (``synth_profile``, ``seed``) when it
    holds no ``synthau.yaml``. ``labels_csv`` (notebook 01_data's parameter):
    the generic CSV of a ``csv`` data set, the same as ``optimization=``.
    ``check_files`` / ``on_error`` go to the
    readers. Label tables of splits the data set does not have are removed
    from the workspace, so the tables always match the current source.

    Returns ``{split: LabelReport}`` for every split written.
    """
    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    source = SOURCES[dataset]
    options = source_settings(dataset, settings)
    if labels_csv:
        if dataset != "csv":
            raise ValueError(f"labels_csv={str(labels_csv)!r} is the label file of dataset 'csv', but dataset is "
                             f"{dataset!r}; set dataset: csv, or remove labels_csv")
        if files.get("optimization"):
            raise ValueError("give the generic CSV once: labels_csv or optimization=, not both")
        files["optimization"] = labels_csv
    if source.read is not None and (files or image_dirs):
        raise ValueError(f"dataset {dataset!r} is read from its own layout under data_root; name its folders "
                         f"with settings={{...}} (its settings: {sorted(source.settings)}), not "
                         f"{sorted(files) + sorted(image_dirs or {})}")
    unknown = sorted(set(files) - set(source.splits))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown} for dataset {dataset!r}; its splits are {list(source.splits)}")
    bad_dirs = sorted(set(image_dirs or {}) - set(source.splits))
    if bad_dirs:
        raise ValueError(f"image_dirs names unknown split(s) {bad_dirs}; the splits are {list(source.splits)}")

    data_root = resolve_data_root(ws, dataset, data_root)
    if dataset == "synthau" and not (data_root / "synthau.yaml").exists():
        synth.generate(data_root, profile=synth_profile, seed=seed, progress=progress)
    if dataset == "csv" and not files.get("optimization"):
        raise ValueError("dataset 'csv' needs the generic CSV of the labels: notebook 01_data's labels_csv "
                         "parameter (profile YAML: common: {labels_csv: labels.csv}, relative to data_root), "
                         "or prepare_labels(ws, 'csv', data_root, optimization='path/to/labels.csv') "
                         "(and optionally noisy=, validation=, test=)")

    if source.read is not None:
        tables, reports = source.read(data_root, options, check_files=check_files, on_error=on_error)
    else:
        tables, reports = _read_layout(dataset, data_root, files, image_dirs, options, check_files, on_error)
    tables, reports = _split_by_column(tables, reports)
    for split in SPLITS:
        if split in tables:
            write_label_table(tables[split], ws.labels(split))
        elif Path(ws.labels(split)).exists():
            Path(ws.labels(split)).unlink()
    _write_subjects(ws, tables)
    return reports


def _split_by_column(tables: dict[str, pd.DataFrame], reports: dict[str, LabelReport]):
    """Rows of the optimization table with a ``split`` column go to the table
    of that split (a split that also has its own file is a ValueError)."""
    opt = tables.get("optimization")
    if opt is None or "split" not in opt.columns:
        return tables, reports
    source = reports["optimization"].source
    for split, part in opt.groupby("split", sort=False):
        if split != "optimization" and split in tables:
            raise ValueError(f"{source}: its split column sends rows to {split!r}, which also has its own label "
                             "file; use one or the other")
    out = {k: v for k, v in tables.items() if k != "optimization"}
    for split, part in opt.groupby("split", sort=False):
        out[split] = part.drop(columns="split").reset_index(drop=True)
        if split != "optimization":
            reports[split] = LabelReport(source=f"{source} (split column)", read=len(part), kept=len(part))
    if "optimization" not in out:
        raise ValueError(f"{source}: the split column names no 'train' (optimization) row; "
                         "the kit trains and chooses on the optimization split")
    reports["optimization"].notes.append(
        "split column: " + ", ".join(f"{k} {len(v)}" for k, v in out.items() if k in SPLITS))
    return out, reports


def subjects_path(ws) -> Path:
    """``labels/subjects.csv`` of a workspace (``image, subject``)."""
    return Path(ws.labels("subjects"))


def _write_subjects(ws, tables: dict[str, pd.DataFrame]) -> None:
    """Write ``labels/subjects.csv`` from the tables' ``subject`` columns
    (removed when none has one). All tables or none must have subjects."""
    have = {k: "subject" in t.columns for k, t in tables.items()}
    path = subjects_path(ws)
    if not any(have.values()):
        if path.exists():
            path.unlink()
        return
    if not all(have.values()):
        raise ValueError(f"label files of {sorted(k for k, v in have.items() if v)} have a subject column but "
                         f"those of {sorted(k for k, v in have.items() if not v)} do not; give every file one")
    both = pd.concat([t[["image", "subject"]] for t in tables.values()], ignore_index=True)
    aio.write_csv(path, both.drop_duplicates("image"))


def load_subjects(ws) -> pd.Series | None:
    """image -> subject (str) of a workspace, or None when its labels have no subjects."""
    path = subjects_path(ws)
    if not path.exists():
        return None
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.Series(df["subject"].to_numpy(), index=df["image"].to_numpy(), name="subject")


def load_labels(ws, split: str) -> pd.DataFrame:
    """The workspace label table of a split (image and its AU columns as int8)."""
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
    """Share of positives among known labels per AU (rows: every AU a table
    labels, in catalog order) and split (columns; NaN where a split's table
    has no column for the AU), for the splits with a label table, plus the
    AU's group and name."""
    splits = available_splits(ws) if splits is None else list(splits)
    counts = {split: label_counts(load_labels(ws, split), source=str(ws.labels(split))) for split in splits}
    aus = [a for a in CATALOG if any(a in c.index for c in counts.values())]
    out = pd.DataFrame(index=pd.Index(aus, name="AU"))
    out["name"] = [AU_NAMES[a] for a in aus]
    out["group"] = ["17au" if a in BUILTIN_GROUPS["17au"] else "6au" if a in BUILTIN_GROUPS["6au"] else "" for a in aus]
    for split, c in counts.items():
        out[split] = c["prevalence"].reindex(aus)
    return out
