"""Any code's per-epoch predictions read into the benchmark's arrays
(:class:`aulib.report.benchmark.FoldInputs`), every file checked.

Layout (docs/audit.md)::

    PREDS/[<fold>/]<model>/test_epoch<N>.csv    one per epoch: the test fold
    PREDS/[<fold>/]<model>/val_epoch<N>.csv     optional: a held-out part of the training subjects

A prediction file has an ``image`` column and one probability column per AU
(``AU1`` or ``AU01``: any case, leading zeros); other columns are ignored.
The label table: ``image`` and the AU columns, 1 present, 0 absent, -1 (or
empty) unknown, and optionally ``subject``; or the subjects in their own CSV
(``image, subject``). Every error is an :class:`AuditError` naming the file,
the line (1 is the header) and the AU where there is one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..report.benchmark import ALL_RUNS, FoldInputs, ModelPreds

PRED_FILE = re.compile(r"^(test|val)_epoch(\d+)\.csv$")
AU_COLUMN = re.compile(r"^au0*(\d+)$", re.I)


class AuditError(ValueError):
    """Bad input of the audit: the message names the file, line and AU."""


def _shown(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def au_of(name) -> int | None:
    """AU number of a column name (``AU1``, ``AU01``, ``au12``), else None."""
    m = AU_COLUMN.match(str(name).strip())
    return int(m.group(1)) if m else None


def _read(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"image": str, "subject": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise AuditError(f"{path}: cannot be read as CSV ({' '.join(str(err).split())})") from None
    if "image" not in df.columns:
        raise AuditError(f"{path}: no 'image' column (columns: {list(df.columns)[:8]}); a file needs image, AU...")
    dup = df["image"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise AuditError(f"{path}: line {i + 2} repeats image {df['image'].iloc[i]!r}")
    return df


def _au_columns(path: Path, df: pd.DataFrame) -> dict[int, str]:
    cols = {}
    for c in df.columns:
        a = au_of(c)
        if a is not None:
            if a in cols:
                raise AuditError(f"{path}: AU{a} appears twice (columns {cols[a]!r} and {c!r})")
            cols[a] = c
    if not cols:
        raise AuditError(f"{path}: no AU column (name them AU1, AU01, ...; columns: {list(df.columns)[:8]})")
    return cols


@dataclass
class Labels:
    """The label table: ``codes`` (images x AUs) int8 1/0/-1 indexed by image;
    ``subjects`` image -> subject (or None)."""

    path: Path
    codes: pd.DataFrame
    subjects: pd.Series | None


def read_labels(path, subjects=None) -> Labels:
    """The label CSV (and the subjects CSV, when given) checked."""
    path = Path(path)
    df = _read(path)
    cols = _au_columns(path, df)
    codes = {}
    for a, c in sorted(cols.items()):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = (v.notna() & ~v.isin([1, 0, -1])) | (df[c].notna() & v.isna())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AuditError(f"{path}: line {i + 2}, AU{a}: label {_shown(df[c].iloc[i])}; labels are 1 (present), "
                             "0 (absent) or -1 / empty (unknown)")
        codes[a] = v.fillna(-1).to_numpy(np.int8)
    table = pd.DataFrame(codes, index=pd.Index(df["image"].astype(str), name="image"))
    subj = df.set_index("image")["subject"].astype(str) if "subject" in df.columns else None
    if subjects is not None:
        s = _read(Path(subjects))
        if "subject" not in s.columns:
            raise AuditError(f"{subjects}: no 'subject' column; the subjects file has image, subject")
        subj = s.set_index("image")["subject"].astype(str)
    return Labels(path, table, subj)


@dataclass
class EpochFile:
    path: Path
    split: str
    epoch: int


def find_files(model_dir: Path) -> list[EpochFile]:
    """The model folder's prediction files, by split and epoch."""
    out = []
    for p in sorted(model_dir.glob("*.csv")):
        m = PRED_FILE.match(p.name)
        if not m:
            raise AuditError(f"{p}: a prediction file is named test_epoch<N>.csv or val_epoch<N>.csv")
        out.append(EpochFile(p, m.group(1), int(m.group(2))))
    return sorted(out, key=lambda f: (f.split, f.epoch))


def read_probs(f: EpochFile, labels: Labels, aus: list[int] | None, images: pd.Index | None):
    """(images in file order or ``images``' order, aus, probs (N, C) float64) of one file, checked."""
    df = _read(f.path)
    cols = _au_columns(f.path, df)
    aus = sorted(cols) if aus is None else aus
    for a in aus:
        if a not in cols:
            raise AuditError(f"{f.path}: AU{a} is missing (the model's other files have it; columns: "
                             f"{list(df.columns)[:10]})")
        if a not in labels.codes.columns:
            raise AuditError(f"{f.path}: AU{a} has no column in the label table {labels.path}")
    extra = sorted(set(cols) - set(aus))
    if extra:
        listed = ", ".join(f"AU{a}" for a in aus)
        raise AuditError(f"{f.path}: AU{extra[0]} is not in the model's other files ({listed})")
    known = df["image"].isin(labels.codes.index)
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise AuditError(f"{f.path}: line {i + 2}: image {df['image'].iloc[i]!r} is not in the label table "
                         f"{labels.path}")
    raw = df[[cols[a] for a in aus]]
    probs = raw.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad_nan, bad_range = np.isnan(probs), (probs < 0) | (probs > 1)
    for bad, what in ((bad_nan, "is not a number (NaN or text)"), (bad_range, "is outside [0, 1]")):
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise AuditError(f"{f.path}: line {i + 2}, AU{aus[j]}: probability {_shown(raw.iat[i, j])} {what}")
    img = pd.Index(df["image"].astype(str))
    if images is not None:
        if len(img) != len(images) or not img.isin(images).all():
            gone = images[~images.isin(img)]
            extra_img = img[~img.isin(images)]
            what = (f"lacks image {gone[0]!r}" if len(gone) else f"has image {extra_img[0]!r}")
            raise AuditError(f"{f.path}: {what}, which the model's first {f.split} file does not "
                             "(every epoch of a split must predict the same images)")
        probs = probs[img.get_indexer(images)]
        img = images
    return img, aus, probs


def read_model(model_dir: Path, labels: Labels, aus=None, test_images=None, val_images=None):
    """One model folder: {split: (images, probs (E, N, C))}, its AUs and epochs."""
    files = find_files(model_dir)
    if not any(f.split == "test" for f in files):
        raise AuditError(f"{model_dir}: no test_epoch<N>.csv file")
    epochs = {s: [f.epoch for f in files if f.split == s] for s in ("test", "val")}
    if epochs["val"] and epochs["val"] != epochs["test"]:
        only = sorted(set(epochs["test"]) ^ set(epochs["val"]))[0]
        split = "test" if only in epochs["test"] else "val"
        other = "val" if split == "test" else "test"
        raise AuditError(f"{model_dir}: epoch {only} has a {split}_epoch file but no {other}_epoch file; "
                         "give both splits for the same epochs")
    out = {}
    for split, images in (("test", test_images), ("val", val_images)):
        stack = []
        for f in (f for f in files if f.split == split):
            images, aus, p = read_probs(f, labels, aus, images)
            stack.append(p)
        if stack:
            out[split] = (images, np.stack(stack))
    return out, aus, epochs["test"]


def model_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def read_fold(fold_dir: Path, labels: Labels, criterion: str) -> FoldInputs:
    """The arrays of one fold folder (one subfolder per model)."""
    dirs = model_dirs(fold_dir)
    if not dirs:
        raise AuditError(f"{fold_dir}: no model folder (PREDS/[<fold>/]<model>/test_epoch<N>.csv)")
    aus, test_img, val_img, models = None, None, None, {}
    for d in dirs:
        preds, aus, _ = read_model(d, labels, aus, test_img, val_img)
        test_img = preds["test"][0]
        if "val" in preds:
            val_img = preds["val"][0]
        models[d.name] = preds
    has_val = [("val" in p) for p in models.values()]
    if any(has_val) and not all(has_val):
        name = [n for n, p in models.items() if "val" not in p][0]
        raise AuditError(f"{fold_dir / name}: no val_epoch<N>.csv files, which the fold's other models have")
    inputs = {n: ModelPreds(p["test"][1], p["val"][1] if "val" in p else None, True) for n, p in models.items()}
    if len(inputs) > 1:
        cat = lambda s: np.concatenate([p[s][1] for p in models.values()])       # noqa: E731
        inputs[ALL_RUNS] = ModelPreds(cat("test"), cat("val") if all(has_val) else None, False)
    codes = labels.codes[aus]
    if labels.subjects is None:
        raise AuditError(f"{labels.path}: no 'subject' column and no --subjects file; the intervals resample subjects")
    missing = ~test_img.isin(labels.subjects.index)
    if missing.any():
        raise AuditError(f"image {test_img[np.flatnonzero(missing)[0]]!r} of {dirs[0]}/test_epoch*.csv has no subject "
                         "(the label table's subject column or the --subjects file)")
    return FoldInputs(tuple(aus), codes.loc[test_img].to_numpy(np.int8),
                      labels.subjects.reindex(test_img).to_numpy(str),
                      codes.loc[val_img].to_numpy(np.int8) if all(has_val) else None, inputs, criterion)


def read_folds(preds, labels: Labels, criterion: str = "f1") -> dict[str, FoldInputs]:
    """{fold: FoldInputs} of ``preds``: fold folders holding model folders, or model folders (one fold, ``test``)."""
    preds = Path(preds)
    if not preds.is_dir():
        raise AuditError(f"{preds}: not a folder (PREDS/[<fold>/]<model>/test_epoch<N>.csv)")
    subs = model_dirs(preds)
    nested = subs and all(model_dirs(s) and not list(s.glob("*.csv")) for s in subs)
    if nested:
        return {s.name: read_fold(s, labels, criterion) for s in subs}
    return {"test": read_fold(preds, labels, criterion)}
