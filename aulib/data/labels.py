"""Label files in, one label table out (and back).

A *label table* is a pandas DataFrame with column ``image`` (POSIX path
relative to the data root) followed by one int8 column ``AU<n>`` per AU the
source labels, any subset of the FACS catalog :data:`aulib.aus.AU_NAMES`
in catalog (number) order: ``1`` present, ``0`` absent, ``-1`` unknown.
EmotioNet and SynthAU tables have the 23 of :data:`aulib.aus.AUS_2020`
(``AU1`` … ``AU56``), a BP4D table its 12. One row an image; images are
unique. A group needs a column for each of its AUs (:func:`require_au_columns`).

Source formats (docs/layout.md):

- EmotioNet manual (optimization) CSV: ``URL,URL orig,'AU 1','AU 2',…``,
  values ``0``, ``1``, ``999`` -- :func:`read_emotionet_manual`.
- EmotioNet automatic (noisy) list: tab-separated, no header, ``URL``,
  ``URL orig`` then 60 values for AU1 … AU60 -- :func:`read_emotionet_automatic`.
- Generic CSV: ``image,AU1,AU2,…`` (any AUs of the catalog), unknown as
  ``999``, ``-1`` or empty, optional ``subject`` and ``split`` columns --
  :func:`read_generic_csv`.

Every reader returns ``(table, LabelReport)``. Missing or repeated
columns, wrong field counts and text that is not UTF-8 always raise (no
latin-1/cp1252 guess: EmotioNet URLs are ASCII, so a non-UTF-8 byte means a
damaged or re-encoded file, and a guessed decoding would turn image names
into other, wrong names instead of an error naming the line). A bad value or a duplicate image raises a
``ValueError`` naming file, line (1-based, as in an editor) and column, or,
with ``on_error="skip"``, drops the row (keeps the first of duplicates) and
lists it in the report. Rows whose image file is missing are always skipped
and counted, never silently (``check_files=False`` keeps them).

EmotioNet URLs map to local files by the URL's file name inside ``image_dir``
under the data root, or by any callable ``url -> path relative to the root``.
"""
from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import unquote

import numpy as np
import pandas as pd

from .. import io as aio
from ..aus import AU_NAMES, AUS_2020, CATALOG, GROUPS, au_column, parse_au_column

#: The AU columns of an EmotioNet / SynthAU label table (the 23 of AUS_2020), in challenge order.
AU_COLUMNS: list[str] = [au_column(a) for a in AUS_2020]
LABEL_COLUMNS: list[str] = ["image"] + AU_COLUMNS
#: Every AU column a label table may have, in catalog order.
CATALOG_COLUMNS: list[str] = [au_column(a) for a in CATALOG]
#: EmotioNet's code for an unknown label.
EMOTIONET_UNKNOWN = 999
#: Number of AU value columns (AU1 … AU60) in an EmotioNet automatic list.
AUTOMATIC_N_AUS = 60
PROBLEM_COLUMNS = ["file", "line", "column", "value", "reason"]
_ALLOWED = "0, 1, 999 (unknown), -1 (unknown) or empty (unknown)"

ImageMapper = Callable[[str], str]


# ------------------------------------------------------------------ report
@dataclass
class LabelReport:
    """What a reader kept and what it skipped or noticed.

    ``problems``: one row per problem with ``file``, ``line`` (1-based line
    in the file), ``column``, ``value``, ``reason``. ``read`` rows were read,
    ``kept`` of them are in the table, ``skipped`` were dropped.
    """

    source: str
    read: int = 0
    kept: int = 0
    skipped: int = 0
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    notes: list[str] = field(default_factory=list)
    #: What a native reader counted rather than refused, e.g. ``labels without
    #: a frame``, ``frames without labels``, ``rows without a valid label``.
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few human-readable lines: counts, problems by reason, notes."""
        lines = [f"{self.source}: read {self.read} rows, kept {self.kept}, skipped {self.skipped}"]
        if self.counts:
            lines.append("  counted: " + ", ".join(f"{v} {k}" for k, v in self.counts.items()))
        if len(self.problems):
            reasons = self.problems["reason"].str.split(" \\(").str[0]
            for reason, n in reasons.value_counts().items():
                first = self.problems[reasons == reason].iloc[0]
                where = f"{Path(str(first['file'])).name}:{first['line']}"
                if first["column"]:
                    where += f" column {first['column']!r}"
                lines.append(f"  {n} x {reason} (first at {where}, value {first['value']!r})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ------------------------------------------------------------------ paths
def safe_relative_path(path: str, what: str = "image path") -> str:
    """Normalise a path that must stay inside the data root to POSIX form.

    Raises ValueError for empty, absolute (``/x``, ``C:\\x``) paths and any
    ``..`` component.
    """
    text = str(path).strip().replace("\\", "/")
    if not text:
        raise ValueError(f"empty {what}")
    if text.startswith("/") or text[1:2] == ":":
        raise ValueError(f"{what} {path!r} is absolute; paths must be relative to the data root")
    parts = text.split("/")
    if ".." in parts:
        raise ValueError(f"{what} {path!r} leaves the data root ('..'); paths must stay inside it")
    norm = "/".join(p for p in parts if p not in ("", "."))
    if not norm:
        raise ValueError(f"{what} {path!r} names the data root itself, not a file")
    return norm


def url_file_name(url: str) -> str:
    """File name of a URL: ``http://h/a/b%20c.jpg?x=1`` -> ``b c.jpg``."""
    name = str(url).strip().split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1]
    return unquote(name) if "%" in name else name


def _folder(image_dir) -> str:
    text = str(image_dir).strip().replace("\\", "/").rstrip("/")
    return "" if text in ("", ".") else safe_relative_path(text, "image_dir")


def _url_mapper(image_dir: str | os.PathLike | ImageMapper) -> ImageMapper:
    if callable(image_dir):
        return image_dir
    folder = _folder(image_dir)
    return lambda url: posixpath.join(folder, url_file_name(url))


def _entry_problem(entry: os.DirEntry, root_real: str) -> str:
    """'' when a directory entry is a readable regular file inside the data
    root, else why not (a link is followed only when its target is inside)."""
    if not entry.is_symlink():
        return "" if entry.is_file(follow_symlinks=False) else "not a regular file"
    target = os.path.realpath(entry.path)
    if not os.path.exists(target):
        return f"dangling symbolic link (to {os.readlink(entry.path)!r}); fix or remove the link"
    if os.path.commonpath([target, root_real]) != root_real:
        return (f"symbolic link to {target}, outside the data root; links are followed only inside it: copy "
                "the file in, or point data_root at a folder that holds the target")
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


def _file_problems(data_root: Path, images: Sequence[str]) -> list[str]:
    """Per image: '' when ``data_root / image`` is a regular file inside the
    data root (one directory scan a folder, no per-file stat), else the reason
    it is not usable."""
    listing: dict[str, dict[str, os.DirEntry]] = {}
    loose: dict[str, dict[str, str]] = {}
    root_real = os.path.realpath(data_root)
    out: list[str] = []
    for img in images:
        parent, name = posixpath.split(img)
        if parent not in listing:
            try:
                with os.scandir(data_root / parent) as it:
                    listing[parent] = {e.name: e for e in it}
            except (FileNotFoundError, NotADirectoryError):
                listing[parent] = {}
        entry = listing[parent].get(name)
        if entry is None:
            if parent not in loose:      # built once per folder, on its first miss
                loose[parent] = {_loose(n): n for n in listing[parent]}
            out.append("image file not found" + _name_hint(name, loose[parent]))
        else:
            why = _entry_problem(entry, root_real)
            out.append(f"image file unusable: {why}" if why else "")
    return out


def _existing(data_root: Path, images: Sequence[str]) -> np.ndarray:
    """bool per image: is ``data_root / image`` a usable file (see :func:`_file_problems`)."""
    return np.array([p == "" for p in _file_problems(data_root, images)], bool)


# ------------------------------------------------------------------ values
def _parse_values(raw: np.ndarray) -> np.ndarray:
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


# ------------------------------------------------------------------ parsing
def _decode_utf8(path: Path, data: bytes) -> str:
    """The text of a label file; a ValueError naming the file, line, column
    and byte offset of the first byte that is not UTF-8 (BOM allowed)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        utf16 = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ValueError(
            f"{path}: line {line}, column {column} (byte offset {e.start}): byte "
            f"{data[e.start:e.start + 1]!r} is not UTF-8 text{utf16}; save the file as UTF-8 (e.g. "
            f"'CSV UTF-8' in a spreadsheet, or iconv -f cp1252 -t utf-8). The encoding is the whole "
            "file's, so on_error='skip' does not skip it") from None


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


def _read_text_table(path: Path, sep: str, header: bool) -> pd.DataFrame:
    """All fields as str plus ``_file``, ``_line`` (1-based line in the file)
    and ``_short`` (the line has fewer fields than the table); blank lines
    dropped. ``attrs["header"]``: the header's names as written (repeats kept)."""
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found")
    kind = "tab" if sep == "\t" else "comma"
    data = path.read_bytes()
    text = _decode_utf8(path, data)
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


def _clean_header(name: str) -> str:
    return str(name).strip().strip("'\"").strip()


def _refuse_repeated_columns(path: Path, raw_header: Sequence[str], canon: Callable[[str], str],
                             used: Sequence[str]) -> None:
    """ValueError naming the file and the columns when two header names mean
    the same used column (``'AU 12'`` twice, ``AU 12`` and ``AU12``)."""
    where: dict[str, list[int]] = {}
    for k, name in enumerate(raw_header):
        where.setdefault(canon(name), []).append(k)
    for name in used:
        if len(where.get(name, [])) > 1:
            cols = " and ".join(f"{k + 1} ({raw_header[k].strip()!r})" for k in where[name])
            raise ValueError(f"{path}: column {name!r} appears more than once, as columns {cols} of the "
                             "header; keep one (the reader would have to guess which is right)")


def _raise_first(problems: list[dict]) -> None:
    p = problems[0]
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    raise ValueError(f"{p['file']}: line {p['line']}, column {p['column']!r}: {p['reason']}, found "
                     f"{p['value']!r}{more}; fix the file or pass on_error='skip' to drop such rows")


def _to_table(df: pd.DataFrame, key_col: str, source_cols: Sequence[str], value_names: Sequence[str],
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
    codes = _parse_values(raw)
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
        _raise_first(problems)

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
        why = _file_problems(data_root, [images[i] for i in idx])
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


class LabelWarning(UserWarning):
    """A label file the kit reads but whose labels cannot teach or test an AU."""


def warn_degenerate_aus(table: pd.DataFrame, aus: Sequence[str], report: LabelReport) -> list[str]:
    """Warn (and note in ``report``) about the AU columns ``aus`` of a label
    file that are never labelled (every row unknown) or always present (every
    known label 1): such an AU can be neither learned nor scored from this
    file. Returns the messages."""
    if not len(table):
        return []
    values = table[list(aus)].to_numpy() if len(aus) else np.zeros((len(table), 0), np.int8)
    known, pos = (values != -1).sum(0), (values == 1).sum(0)
    never = [c for c, k in zip(aus, known) if k == 0]
    always = [c for c, k, p in zip(aus, known, pos) if k > 0 and p == k]
    out = []
    if never:
        out.append(f"{report.source}: AU column(s) {never} are never labelled (every one of the {len(table)} rows "
                   "unknown); models cannot learn or be scored on them from this file")
    if always:
        out.append(f"{report.source}: AU column(s) {always} are present on every labelled row; with no negative, "
                   "thresholds and F1 on them mean nothing; check the file's 0/1 coding")
    for msg in out:
        warnings.warn(msg, LabelWarning, stacklevel=3)
        report.notes.append(msg.split(": ", 1)[1])
    return out


# ------------------------------------------------------------------ readers
def read_emotionet_manual(path, data_root, image_dir: str | os.PathLike | ImageMapper = "",
                          check_files: bool = True, on_error: str = "raise") -> tuple[pd.DataFrame, LabelReport]:
    """Read an EmotioNet manual (optimization/validation) CSV.

    Columns ``URL``, ``URL orig``, then ``'AU 1'`` … (quoted or unquoted;
    all 23 challenge AUs required, other AUs ignored), values 0/1/999.
    Each image is ``image_dir/<file name of the URL>`` under ``data_root``
    (or ``image_dir(url)`` when it is a callable).
    Returns ``(label table, LabelReport)``.
    """
    path, data_root = Path(path), Path(data_root)
    mapper = _url_mapper(image_dir)
    df = _read_text_table(path, ",", header=True)
    header = {_clean_header(c): c for c in df.columns if not c.startswith("_")}
    wanted = {f"AU {a}": au_column(a) for a in AUS_2020}
    _refuse_repeated_columns(path, df.attrs["header"], lambda c: _clean_header(c).replace(" ", ""),
                             ["URL", "URLorig"] + [w.replace(" ", "") for w in wanted])
    missing = [name for name in ["URL"] + list(wanted) if name not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(repr(m) for m in missing)}; an EmotioNet "
                         "manual file has the header URL,URL orig,'AU 1','AU 2',... with one column for each "
                         f"of the 23 AUs {list(AUS_2020)} and values 0, 1, 999")
    report = LabelReport(source=str(path))
    extra = [h for h in header if h not in wanted and h not in ("URL", "URL orig")]
    if extra:
        report.notes.append(f"ignored column(s) {extra} (not among the 23 challenge AUs)")
    table = _to_table(df, header["URL"], [header[w] for w in wanted], list(wanted.values()), mapper,
                      data_root, check_files, on_error, report)
    return table, report


def read_emotionet_automatic(path, data_root, image_dir: str | os.PathLike | ImageMapper = "",
                             check_files: bool = True, on_error: str = "raise") -> tuple[pd.DataFrame, LabelReport]:
    """Read EmotioNet automatic (noisy) lists.

    Tab-separated, ``URL``, ``URL orig`` then 60 values AU1 … AU60 (0/1/999;
    AUs outside the 23 ignored). An optional header line is tolerated.
    ``path`` may be a list of files: they are concatenated, and an image in
    two files is a duplicate like one listed twice in a file. Images map as
    in :func:`read_emotionet_manual`. Returns ``(label table, LabelReport)``.
    """
    paths = [Path(p) for p in ([path] if isinstance(path, (str, os.PathLike)) else path)]
    if not paths:
        raise ValueError("read_emotionet_automatic: no files given")
    n_fields = 2 + AUTOMATIC_N_AUS
    names = ["URL", "URL orig"] + [f"AU{a}" for a in range(1, AUTOMATIC_N_AUS + 1)]
    frames, notes = [], []
    for p in paths:
        df = _read_text_table(p, "\t", header=False)
        width = df.shape[1] - 3
        if width != n_fields:
            raise ValueError(f"{p}: {width} tab-separated fields per line, expected {n_fields} (URL, URL orig, "
                             f"then {AUTOMATIC_N_AUS} values for AU1 ... AU{AUTOMATIC_N_AUS}); is the file "
                             "tab-separated?")
        df.columns = ["_file", "_line", "_short"] + names
        if len(df):
            head = df.iloc[0, 5:].astype(str)
            if head.str.contains("AU", case=False).any() and (_parse_values(head.to_numpy()[None]) == 2).any():
                df = df.iloc[1:]
                notes.append(f"{p.name}: line 1 read as a header")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    source = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files ({', '.join(p.name for p in paths)})"
    report = LabelReport(source=source, notes=notes)
    table = _to_table(df, "URL", AU_COLUMNS, AU_COLUMNS, _url_mapper(image_dir), Path(data_root),
                      check_files, on_error, report)
    return table, report


#: Optional columns of a generic CSV kept beside the labels: the person in
#: the image (subject-exclusive splits) and the split the row belongs to.
META_COLUMNS = ("subject", "split")
#: ``split`` column values -> label-table split.
SPLIT_VALUES = {"train": "optimization", "optimization": "optimization", "test": "test",
                "validation": "validation", "val": "validation"}


def _inside_root(image: str, folder: str, root: Path) -> str:
    """A generic CSV's image field -> path relative to the data root: relative
    paths are taken under ``folder``; absolute ones must lie inside ``root``."""
    image = image.strip()
    rel = image.replace("\\", "/")
    if not (rel.startswith("/") or rel[1:2] == ":"):
        return posixpath.join(folder, image)
    try:
        return Path(os.path.abspath(image)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        raise ValueError(f"absolute path {image!r} lies outside the data root {root}; give paths relative "
                         "to the data root, or point data_root at a folder that contains the images") from None


def _meta_columns(df: pd.DataFrame, header: dict, table: pd.DataFrame, to_path: ImageMapper,
                  path: Path) -> pd.DataFrame:
    """``table`` with the generic CSV's ``subject`` / ``split`` columns (str)
    appended, taken from the first row of each kept image."""
    meta = [m for m in META_COLUMNS if m in header]
    if not meta:
        return table
    row_of: dict[str, int] = {}
    for i, key in enumerate(df[header["image"]].to_numpy()):
        try:
            row_of.setdefault(safe_relative_path(to_path(str(key))), i)
        except ValueError:
            continue
    rows = np.array([row_of[img] for img in table["image"]], np.int64)
    for m in meta:
        values = df[header[m]].to_numpy(str)[rows] if len(rows) else np.zeros(0, str)
        values = np.char.strip(values.astype(str))
        empty = np.flatnonzero(values == "")
        if len(empty):
            raise ValueError(f"{path}: line {int(df['_line'].iloc[rows[empty[0]]])}, column {m!r} is empty; "
                             f"give every row a {m} or drop the column")
        if m == "split":
            low = np.char.lower(values)
            bad = np.flatnonzero(~np.isin(low, list(SPLIT_VALUES)))
            if len(bad):
                raise ValueError(f"{path}: line {int(df['_line'].iloc[rows[bad[0]]])}, column 'split': "
                                 f"{str(values[bad[0]])!r} is not a split; use one of {sorted(SPLIT_VALUES)}")
            values = np.array([SPLIT_VALUES[v] for v in low], dtype=object)
        table[m] = pd.Series(values, dtype=object).astype(str).to_numpy()
    return table


#: An AU column heading in any common spelling: ``AU1``, ``AU01``, ``au1``,
#: ``AU 1``, ``AU_1``, ``AU1_c`` (occurrence), ``AU1_r`` (intensity).
_AU_HEADING = re.compile(r"^au[\s_\-]*0*(?P<au>\d+)(?:[\s_\-]*(?P<kind>c|r|occ|int|occurrence|intensity))?$",
                         re.IGNORECASE)
_INTENSITY_KINDS = ("r", "int", "intensity")


def au_heading(name: str) -> tuple[int, str] | None:
    """``(AU number, 'occurrence' | 'intensity')`` of a column heading that
    names an AU in a common spelling, None for any other heading."""
    m = _AU_HEADING.match(_clean_header(name))
    if not m:
        return None
    kind = "intensity" if (m.group("kind") or "").lower() in _INTENSITY_KINDS else "occurrence"
    return int(m.group("au")), kind


def _generic_au_columns(path: Path, raw_header: Sequence[str], header: dict, intensity_threshold) -> \
        tuple[dict[str, str], dict[str, float], list[str]]:
    """Map a generic CSV's headings to label columns: ``{AU<n>: heading}``,
    ``{AU<n>: threshold}`` for intensity columns, and notes. A heading that
    looks like an AU is read or refused here, never dropped."""
    mapped: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    unknown: list[str] = []
    for key, heading in header.items():
        hit = au_heading(heading)
        if hit is None:
            continue
        au, kind = hit
        if au not in CATALOG:
            unknown.append(_clean_header(heading))
            continue
        mapped.setdefault(au_column(au), []).append(heading)
        kinds[au_column(au)] = kind
    if unknown:
        raise ValueError(f"{path}: column(s) {unknown} look like AU columns, but those AUs are not in the kit's AU "
                         f"catalog {list(CATALOG)}; remove or rename them (nothing is dropped silently)")
    for col, headings in mapped.items():
        if len(headings) > 1:
            cols = " and ".join(repr(_clean_header(h)) for h in headings)
            raise ValueError(f"{path}: columns {cols} both name {col}; keep one (the reader would have to guess "
                             "which is right)")
    intensity = sorted((c for c, k in kinds.items() if k == "intensity"), key=CATALOG_COLUMNS.index)
    if intensity and intensity_threshold is None:
        raise ValueError(f"{path}: column(s) {[_clean_header(mapped[c][0]) for c in intensity]} hold AU intensities "
                         "(an _r suffix), not occurrence labels; give an occurrence column (AU1 or AU1_c, values "
                         "0/1), or read the intensities with a threshold: prepare_labels(..., settings="
                         "{'intensity_threshold': 0.5}) (profile: common: {label_settings: {intensity_threshold: "
                         "...}}), present when intensity >= threshold")
    notes = []
    renamed = [f"{_clean_header(h[0])!r} as {c}" for c, h in mapped.items() if _clean_header(h[0]) != c]
    if renamed:
        notes.append("read column(s) " + ", ".join(renamed))
    if intensity:
        notes.append(f"intensity column(s) {intensity} read as present when >= {intensity_threshold}")
    return ({c: h[0] for c, h in mapped.items()},
            {c: float(intensity_threshold) for c in intensity}, notes)


def _threshold_values(df: pd.DataFrame, heading: str, threshold: float, path: Path) -> None:
    """Turn an intensity column of ``df`` into 1/0 (empty, -1, 999 stay unknown) in place."""
    text = df[heading].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce")
    unknown = (text == "") | values.isin([-1, EMOTIONET_UNKNOWN])
    bad = values.isna() & ~unknown
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: line {int(df['_line'].iloc[r])}, column {_clean_header(heading)!r}: "
                         f"{text.iloc[r]!r} is not an intensity; expected a number, or empty/-1/999 for unknown")
    df[heading] = np.where(unknown, "-1", np.where(values >= threshold, "1", "0"))


def read_generic_csv(path, data_root, image_dir: str | os.PathLike = "", check_files: bool = True,
                     on_error: str = "raise", intensity_threshold: float | None = None
                     ) -> tuple[pd.DataFrame, LabelReport]:
    """Read a generic CSV ``image[,subject][,split],AU1,AU2,…``.

    ``image`` is a path relative to ``data_root / image_dir``, or an absolute
    path inside ``data_root``; any AUs of the FACS catalog (the table has
    the file's AU columns, in catalog order; other columns are ignored with a note);
    unknown as 999, -1 or empty. AU headings may be spelled ``AU1``,
    ``AU01``, ``au1``, ``AU 1``, ``AU_1`` or ``AU1_c`` (the report notes the
    mapping); intensity columns (``AU1_r``) are refused unless
    ``intensity_threshold`` is given (present when intensity >= it); a heading
    that looks like an AU outside the catalog is refused by name. Optional
    ``subject`` (who is in the image)
    and ``split`` (``train``/``optimization``, ``validation``/``val``,
    ``test``) come back as extra str columns after the AU columns.
    Returns ``(label table, LabelReport)``.
    """
    path, data_root = Path(path), Path(data_root)
    df = _read_text_table(path, ",", header=True)
    header = {_clean_header(c).replace(" ", ""): c for c in df.columns if not c.startswith("_")}
    def canon(name: str) -> str:
        hit = au_heading(name)
        return au_column(hit[0]) if hit else _clean_header(name).replace(" ", "")

    _refuse_repeated_columns(path, df.attrs["header"], canon, ["image", *META_COLUMNS] + CATALOG_COLUMNS)
    au_cols, thresholds, spelling_notes = _generic_au_columns(path, df.attrs["header"], header, intensity_threshold)
    present = [c for c in CATALOG_COLUMNS if c in au_cols]
    if "image" not in header or not present:
        missing = (["'image'"] if "image" not in header else []) + ([] if present else ["AU1 ... AU56 (any)"])
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; a generic label CSV has the header "
                         "image,AU1,AU2,... (image paths relative to the data root, any AUs of the FACS "
                         f"catalog {list(CATALOG)}; optional subject and split columns) and values 1, 0, or "
                         "999/-1/empty for unknown")
    for col, threshold in thresholds.items():
        _threshold_values(df, au_cols[col], threshold, path)
    report = LabelReport(source=str(path), notes=list(spelling_notes))
    used = {"image", *META_COLUMNS} | {_clean_header(h).replace(" ", "") for h in au_cols.values()}
    extra = [h for h in header if h not in used]
    if extra:
        report.notes.append(f"ignored column(s) {extra} (not 'image', 'subject', 'split' or an AU of the "
                            "FACS catalog)")
    folder = _folder(image_dir)

    def to_path(image: str) -> str:
        return _inside_root(image, folder, data_root)

    table = _to_table(df, header["image"], [au_cols[c] for c in present], present, to_path, data_root,
                      check_files, on_error, report)
    return _meta_columns(df, header, table, to_path, path), report


# ------------------------------------------------------------------ label tables
def table_au_columns(df: pd.DataFrame, source: str = "label table") -> list[str]:
    """The ``AU<n>`` columns of a table, in catalog order. A column named like
    an AU (``AU99``) whose AU is not in the FACS catalog is a ValueError
    naming ``source``."""
    aus = []
    for c in df.columns:
        try:
            aus.append(parse_au_column(str(c)))
        except ValueError:
            continue
    unknown = [a for a in aus if a not in AU_NAMES]
    if unknown:
        raise ValueError(f"{source}: column(s) {[au_column(a) for a in unknown]} name AUs outside the kit's FACS "
                         f"catalog {list(CATALOG)}; rename or drop them")
    return [au_column(a) for a in CATALOG if a in aus]


def require_au_columns(df: pd.DataFrame, aus, source: str = "label table") -> list[str]:
    """The columns of AU numbers ``aus`` (e.g. a group's); a ValueError naming
    every AU the table ``source`` has no column for, and the AUs it has."""
    cols = [au_column(a) for a in aus]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        have = [parse_au_column(c) for c in table_au_columns(df, source)]
        raise ValueError(f"{source}: no label column {missing} for AU(s) {[parse_au_column(c) for c in missing]}; the table "
                         f"labels AUs {have}; choose a group of those AUs (e.g. bp4d12 for BP4D, disfa8 for DISFA) "
                         "or a data set that labels them")
    return cols


def validate_label_table(df: pd.DataFrame, source: str = "label table") -> pd.DataFrame:
    """Check a label table and return it normalised: column ``image`` then its
    AU columns (any AUs of the FACS catalog, at least one) in catalog order
    (other columns dropped), int8 values, index 0..N-1.

    Raises ValueError naming ``source``, row (0-based, as in the DataFrame;
    line = row + 2 in its CSV) and column for a missing ``image`` or no AU
    column, AUs outside the catalog, values other than 1/0/-1, image paths
    that leave the data root, duplicate images.
    """
    au_cols = table_au_columns(df, source)
    missing = [c for c in ["image"] if c not in df.columns] + ([] if au_cols else ["AU<n> (at least one)"])
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; a label table has columns image, then one "
                         f"AU<n> column per AU it labels (e.g. {', '.join(AU_COLUMNS[:3])}, ...) with values "
                         "1, 0, -1 (unknown)")
    out = pd.DataFrame({"image": pd.Series(df["image"].to_numpy(), dtype=object).astype(str)})
    for col in au_cols:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        bad = ~np.isin(values, (-1.0, 0.0, 1.0))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{source}: row {r} (line {r + 2} of its CSV), column {col!r}: value "
                             f"{df[col].iloc[r]!r} is not a label; expected 1, 0 or -1 (unknown)")
        out[col] = values.astype(np.int8)
    for r, img in enumerate(out["image"]):
        try:
            safe_relative_path(img)
        except ValueError as e:
            raise ValueError(f"{source}: row {r}, column 'image': {e}") from None
    dup = out["image"].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(out["image"].to_numpy() == out["image"].iloc[int(np.flatnonzero(dup)[0])])
        raise ValueError(f"{source}: image {out['image'].iloc[rows[0]]!r} appears in rows {rows[0]} and "
                         f"{rows[1]}; each image may appear once")
    return out


def read_label_table(path) -> pd.DataFrame:
    """Read a workspace label table (``labels/<split>.csv``), validated, int8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label table {path} not found: build it first (notebook 01_data, "
                                "aulib.data.sources.prepare_labels)")
    text = _decode_utf8(path, path.read_bytes())
    _refuse_repeated_columns(path, next(csv.reader(io.StringIO(text)), []), str.strip, ["image"] + CATALOG_COLUMNS)
    df = pd.read_csv(io.StringIO(text), dtype={"image": str}, keep_default_na=False)
    return validate_label_table(df, source=str(path))


def write_label_table(df: pd.DataFrame, path) -> None:
    """Atomically write a label table as CSV ``image,AU<n>,…`` (its AU columns; unknown as -1)."""
    aio.write_csv(path, validate_label_table(df, source=f"label table for {path}"))


# ------------------------------------------------------------------ writers
def _urls(df: pd.DataFrame, url_prefix: str) -> list[str]:
    return [url_prefix + posixpath.basename(img) for img in df["image"]]


def _emotionet_codes(df: pd.DataFrame, source: str) -> np.ndarray:
    """int16 (N, 23): the table's labels with unknown as 999 (every one of the 23 AUs needs its column)."""
    values = df[require_au_columns(df, AUS_2020, source)].to_numpy(np.int16)
    return np.where(values == -1, EMOTIONET_UNKNOWN, values)


def write_emotionet_manual(df: pd.DataFrame, path, url_prefix: str) -> None:
    """Write a label table as an EmotioNet manual CSV: ``URL,URL orig,'AU 1',…``
    (the 23 AUs), values 0/1/999; ``URL`` = ``url_prefix`` + the image's file name."""
    df = validate_label_table(df, source=f"label table for {path}")
    urls = _urls(df, url_prefix)
    out = pd.DataFrame(_emotionet_codes(df, f"label table for {path}"), columns=[f"'AU {a}'" for a in AUS_2020])
    out.insert(0, "URL orig", urls)
    out.insert(0, "URL", urls)
    aio.write_csv(path, out)


def write_emotionet_automatic(df: pd.DataFrame, path, url_prefix: str) -> None:
    """Write a label table as an EmotioNet automatic list: tab-separated, no
    header, ``URL<TAB>URL orig`` then 60 values AU1 … AU60 (999 for unknown
    and for the AUs outside the 23)."""
    df = validate_label_table(df, source=f"label table for {path}")
    values = np.full((len(df), AUTOMATIC_N_AUS), EMOTIONET_UNKNOWN, np.int16)
    values[:, [a - 1 for a in AUS_2020]] = _emotionet_codes(df, f"label table for {path}")
    out = pd.DataFrame(values)
    urls = _urls(df, url_prefix)
    out.insert(0, "URL orig", urls)
    out.insert(0, "URL", urls)
    with aio.atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", header=False, index=False)


def write_generic_csv(df: pd.DataFrame, path) -> None:
    """Write a label table as a generic CSV ``image,AU1,…`` (unknown as -1)."""
    write_label_table(df, path)


# ------------------------------------------------------------------ counts
def label_counts(df: pd.DataFrame, aus: Sequence[int] | None = None, source: str = "label table") -> pd.DataFrame:
    """Per-AU label counts of a label table, indexed by AU number.

    ``aus``: the AUs to count (None: every AU column of the table; an AU
    without a column is a ValueError naming it and ``source``). Columns:
    ``positive``, ``negative``, ``unknown`` (int), ``prevalence`` (positive /
    known, NaN when nothing is known), ``group`` (``17au`` or ``6au``; empty
    for AUs in neither).
    """
    cols = table_au_columns(df, source) if aus is None else require_au_columns(df, aus, source)
    aus = [parse_au_column(c) for c in cols]
    values = df[cols].to_numpy()
    pos, neg = (values == 1).sum(0), (values == 0).sum(0)
    known = pos + neg
    with np.errstate(invalid="ignore", divide="ignore"):
        prevalence = np.where(known > 0, pos / np.maximum(known, 1), np.nan)
    group = ["17au" if a in GROUPS["17au"] else "6au" if a in GROUPS["6au"] else "" for a in aus]
    out = pd.DataFrame({"positive": pos, "negative": neg, "unknown": (values == -1).sum(0),
                        "prevalence": prevalence, "group": group}, index=pd.Index(list(aus), name="AU"))
    return out
