"""Shared parsing of delimited label files, for the readers of :mod:`aulib.data.sources`.

Every reader returns ``(table, LabelReport)``. Missing or repeated
columns, wrong field counts and text that is not UTF-8 always raise (no
latin-1/cp1252 guess: EmotioNet URLs are ASCII, so a non-UTF-8 byte means a
damaged or re-encoded file, and a guessed decoding would turn image names
into other, wrong names instead of an error naming the line). A bad value or a duplicate image raises a
``ValueError`` naming file, line (1-based, as in an editor) and column, or,
with ``on_error="skip"``, drops the row (keeps the first of duplicates) and
lists it in the report. Rows whose image file is missing are always skipped
and counted, never silently (``check_files=False`` keeps them); links out of
the data root, devices and dangling links are not images.
"""
from __future__ import annotations

import csv
import io
import os
import posixpath
import unicodedata
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..labels import (CATALOG_COLUMNS, PROBLEM_COLUMNS, LabelReport, decode_utf8, safe_relative_path,
                      warn_degenerate_aus)

#: EmotioNet's code for an unknown label (also read as unknown in a generic CSV).
EMOTIONET_UNKNOWN = 999
_ALLOWED = "0, 1, 999 (unknown), -1 (unknown) or empty (unknown)"

ImageMapper = Callable[[str], str]


def image_folder(image_dir) -> str:
    text = str(image_dir).strip().replace("\\", "/").rstrip("/")
    return "" if text in ("", ".") else safe_relative_path(text, "image_dir")


def outside_root(path, root_real: str) -> str:
    """'' when ``path`` (a folder or file, links resolved) lies inside the
    data root ``root_real``, else why it is refused: links are followed only
    inside the data root, for files and folders alike."""
    target = os.path.realpath(path)
    if os.path.commonpath([target, root_real]) == root_real:
        return ""
    return (f"symbolic link to {target}, outside the data root; links are followed only inside it: copy "
            "it in, or point data_root at a folder that holds the target")


def entry_problem(entry: os.DirEntry, root_real: str) -> str:
    """'' when a directory entry is a readable regular file inside the data
    root, else why not (a link is followed only when its target is inside)."""
    if not entry.is_symlink():
        return "" if entry.is_file(follow_symlinks=False) else "not a regular file"
    target = os.path.realpath(entry.path)
    if not os.path.exists(target):
        return f"dangling symbolic link (to {os.readlink(entry.path)!r}); fix or remove the link"
    why = outside_root(target, root_real)
    if why:
        return why
    return "" if os.path.isfile(target) else f"symbolic link to {target}, which is not a regular file"


def _loose(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip()).casefold()


def _name_hint(name: str, loose: dict[str, str]) -> str:
    """A hint when a missing file name differs from a present one only by
    surrounding spaces, Unicode normalisation (NFC vs NFD) or case;
    ``loose``: {loosened name: name} of the folder."""
    have = loose.get(_loose(name))
    if have is None:
        return ""
    kinds = []
    if have.strip() != have or name.strip() != name:
        kinds.append("leading/trailing spaces")
    if unicodedata.normalize("NFC", have) != have or unicodedata.normalize("NFC", name) != name:
        kinds.append("Unicode normalisation (NFC vs NFD: an accent stored as one or two code points)")
    if not kinds:
        kinds.append("upper/lower case")
    return (f" (the folder has {have!r}, which differs only by {' and '.join(kinds)}; rename the file "
            "or fix the label file so the names match exactly)")


def file_problems(data_root: Path, images: Sequence[str]) -> list[str]:
    """Per image: '' when ``data_root / image`` is a regular file inside the
    data root (one directory scan a folder, no per-file stat), else the reason
    it is not usable."""
    listing: dict[str, dict[str, os.DirEntry]] = {}
    loose: dict[str, dict[str, str]] = {}
    linked: dict[str, str] = {}          # folder -> why it is refused (a link out of the data root)
    root_real = os.path.realpath(data_root)
    out: list[str] = []
    for img in images:
        parent, name = posixpath.split(img)
        if parent not in listing:
            linked[parent] = outside_root(data_root / parent, root_real) if parent else ""
            try:
                with os.scandir(data_root / parent) as it:
                    listing[parent] = {} if linked[parent] else {e.name: e for e in it}
            except (FileNotFoundError, NotADirectoryError):
                listing[parent] = {}
            except PermissionError:
                raise PermissionError(f"cannot read folder {data_root / parent} (permission denied): make it "
                                      "readable by this user, or point data_root at a copy that is") from None
        if linked[parent]:
            out.append(f"image file unusable: its folder {parent} is a {linked[parent]}")
            continue
        entry = listing[parent].get(name)
        if entry is None:
            if parent not in loose:      # built once per folder, on its first miss
                loose[parent] = {_loose(n): n for n in listing[parent]}
            out.append("image file not found" + _name_hint(name, loose[parent]))
        else:
            why = entry_problem(entry, root_real)
            out.append(f"image file unusable: {why}" if why else "")
    return out


def _existing(data_root: Path, images: Sequence[str]) -> np.ndarray:
    """bool per image: is ``data_root / image`` a usable file (see :func:`file_problems`)."""
    return np.array([p == "" for p in file_problems(data_root, images)], bool)


def parse_values(raw: np.ndarray) -> np.ndarray:
    """Strings (N, C) -> int8 codes (N, C): 1, 0, -1 unknown; 2 marks a bad value."""
    if raw.size == 0:
        return np.zeros(raw.shape, np.int8)
    uniq, inv = np.unique(raw.astype(str), return_inverse=True)
    codes = np.full(len(uniq), 2, np.int8)
    for k, text in enumerate(uniq):
        t = text.strip()
        if t == "":
            codes[k] = -1
            continue
        try:
            v = float(t)
        except ValueError:
            continue
        if v in (0.0, 1.0):
            codes[k] = int(v)
        elif v in (-1.0, float(EMOTIONET_UNKNOWN)):
            codes[k] = -1
    return codes[inv.reshape(raw.shape)]


def _records(data: bytes, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """(first line, number of fields) of every record of a delimited file's
    bytes, 1-based lines; a quote-aware scan only when the file has quotes."""
    if b'"' not in data:
        lines = data.split(b"\n")
        if lines and lines[-1] in (b"", b"\r"):
            lines.pop()
        counts = np.array([ln.count(sep.encode()) + 1 if ln.strip(b"\r") else 0 for ln in lines], np.int64)
        return np.arange(1, len(lines) + 1), counts
    starts, counts = [], []
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""), delimiter=sep)
    line = 1
    for row in reader:
        starts.append(line)
        counts.append(len(row))
        line = reader.line_num + 1
    return np.array(starts, np.int64), np.array(counts, np.int64)


def read_text_table(path: Path, sep: str, header: bool) -> pd.DataFrame:
    """All fields as str plus ``_file``, ``_line`` (1-based line in the file)
    and ``_short`` (the line has fewer fields than the table); blank lines
    dropped. ``attrs["header"]``: the header's names as written (repeats kept)."""
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found")
    kind = "tab" if sep == "\t" else "comma"
    data = path.read_bytes()
    text = decode_utf8(path, data)
    try:
        with warnings.catch_warnings():  # lines with extra fields are reported below, by line
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None, dtype=str,
                             keep_default_na=False, skip_blank_lines=False, index_col=False, engine="c")
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: cannot parse as {kind}-separated values ({e}); "
                         "every line needs the same number of fields") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    df.columns = [str(c) for c in df.columns]
    raw_header = next(csv.reader(io.StringIO(text), delimiter=sep), []) if header else []
    starts, counts = _records(data, sep)
    if header:
        starts, counts = starts[1:], counts[1:]
    if len(starts) != len(df):  # unusual quoting: fall back to counting rows
        starts, counts = np.arange(len(df)) + (2 if header else 1), np.full(len(df), df.shape[1])
    fields = list(df.columns)
    long = np.flatnonzero(counts > len(fields))
    if len(long):
        raise ValueError(f"{path}: line {starts[long[0]]} has {counts[long[0]]} {kind}-separated fields, "
                         f"{'the header has' if header else 'line 1 has'} {len(fields)}; every line needs "
                         "the same number of fields")
    blank = (counts == 0) | (df[fields] == "").all(axis=1).to_numpy()
    df.insert(0, "_short", counts < len(fields))
    df.insert(0, "_line", starts)
    df.insert(0, "_file", str(path))
    df = df[~blank].reset_index(drop=True)
    df.attrs["header"] = raw_header
    return df


def clean_header(name: str) -> str:
    return str(name).strip().strip("'\"").strip()


def raise_first(problems: list[dict]) -> None:
    p = problems[0]
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    raise ValueError(f"{p['file']}: line {p['line']}, column {p['column']!r}: {p['reason']}, found "
                     f"{p['value']!r}{more}; fix the file or pass on_error='skip' to drop such rows")


def to_table(df: pd.DataFrame, key_col: str, source_cols: Sequence[str], value_names: Sequence[str],
              to_path: ImageMapper, data_root: Path, check_files: bool, on_error: str,
              report: LabelReport) -> pd.DataFrame:
    """Shared body of every reader.

    ``df``: raw string fields with ``_file``/``_line``; ``key_col`` holds the
    URL or image; ``source_cols`` the values of AU columns ``value_names``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    n = len(df)
    files, line = df["_file"].to_numpy(), df["_line"].to_numpy()
    problems: list[dict] = []

    def problem(i, column, value, reason):
        problems.append({"file": files[i], "line": int(line[i]), "column": column, "value": str(value),
                         "reason": reason})

    bad = df["_short"].to_numpy().copy()
    width = sum(not str(c).startswith("_") for c in df.columns)
    for i in np.flatnonzero(bad):
        problem(i, "", "", f"too few fields (expected {width})")
    raw = df[list(source_cols)].to_numpy(str) if n else np.zeros((0, len(source_cols)), str)
    codes = parse_values(raw)
    codes[bad] = -1
    for r, c in zip(*np.nonzero(codes == 2)):
        problem(r, source_cols[c], raw[r, c], f"bad label value (expected {_ALLOWED})")
        bad[r] = True

    images = [""] * n
    keys = df[key_col].to_numpy()
    for i in np.flatnonzero(~bad):
        try:
            images[i] = safe_relative_path(to_path(str(keys[i])))
        except ValueError as e:
            problem(i, key_col, keys[i], f"image path rejected: {e}")
            bad[i] = True
    if problems and on_error == "raise":
        raise_first(problems)

    keep = ~bad
    first: dict[str, int] = {}
    for i in np.flatnonzero(keep):
        j = first.setdefault(images[i], i)
        if j != i:
            if on_error == "raise":
                raise ValueError(f"{files[i]}: line {int(line[i])}, column {key_col!r}: image {images[i]!r} "
                                 f"repeats {files[j]}: line {int(line[j])}; each image may appear once "
                                 "(pass on_error='skip' to keep the first)")
            problem(i, key_col, images[i], f"duplicate image (first at {Path(str(files[j])).name}:"
                                           f"{int(line[j])}, kept that one)")
            keep[i] = False

    if check_files and keep.any():
        idx = np.flatnonzero(keep)
        why = file_problems(data_root, [images[i] for i in idx])
        exists = np.array([w == "" for w in why], bool)
        if not exists.any() and not any(w.startswith("image file unusable") for w in why):
            raise FileNotFoundError(
                f"none of the {len(idx)} images of {report.source} exist under {data_root} (first looked for "
                f"{data_root / images[idx[0]]}); check data_root and image_dir, or pass check_files=False")
        for k in np.flatnonzero(~exists):
            problem(idx[k], key_col, images[idx[k]], why[k])
        keep[idx[~exists]] = False

    table = pd.DataFrame({"image": pd.Series([images[i] for i in np.flatnonzero(keep)], dtype=object).astype(str)})
    col_of = {name: k for k, name in enumerate(value_names)}
    for col in (c for c in CATALOG_COLUMNS if c in col_of):      # the source's AUs, in catalog order
        table[col] = codes[keep, col_of[col]]
    report.read, report.kept, report.skipped = n, int(keep.sum()), int(n - keep.sum())
    report.problems = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    warn_degenerate_aus(table, list(value_names), report)
    return table


