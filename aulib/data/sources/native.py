"""What the native-layout readers (BP4D, DISFA, Aff-Wild2) share.

* :func:`numbered_files`: one directory scan -> ``{frame number: file name}``
  for files named by a number (``0001.jpg`` and ``1.jpg`` both give 1).
* :func:`code_values`: label text (N, A) -> int8 codes through a small
  ``{text: code}`` map, vectorized over the distinct values; a bad value is
  named (file, line, column) as every reader of the kit does.
* :func:`assemble`: frames, AU codes, subjects -> a label table of the
  contract (:mod:`aulib.data.labels`) with its :class:`LabelReport`, counting
  labels without a frame and frames without labels (not fatal).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ...aus import AU_NAMES, au_column
from ..labels import CATALOG_COLUMNS, PROBLEM_COLUMNS, LabelReport, decode_utf8, warn_degenerate_aus
from .text import entry_problem, raise_first, outside_root

#: The code :func:`code_values` gives a value outside its map.
BAD = -128
_NUMBERED = re.compile(r"^(\d+)\.(jpg|jpeg|png|bmp)$", re.IGNORECASE)


class Ignored:
    """What a reader passed over (folders and files not in the data set's
    naming, folders linked out of the data root), for its report's notes:
    how many and which, never dropped silently."""

    #: Names shown per reason in a note.
    SHOWN = 8

    def __init__(self):
        self.by_reason: dict[str, list[str]] = {}

    def add(self, why: str, names: Sequence[str]) -> None:
        if len(names):
            self.by_reason.setdefault(why, []).extend(str(n) for n in names)

    def notes(self) -> list[str]:
        """One note per reason: ``ignored <n> <why>: <first names> ...``."""
        out = []
        for why, names in self.by_reason.items():
            more = f" ... (+{len(names) - self.SHOWN})" if len(names) > self.SHOWN else ""
            out.append(f"ignored {len(names)} {why}: {', '.join(names[:self.SHOWN])}{more}")
        return out


def numbered_files(folder: Path, root: Path | None = None, ignored: Ignored | None = None) -> dict[int, str]:
    """``{number: file name}`` of the image files named by a number in
    ``folder`` (one scan; zero-padded or not); empty when the folder is absent.
    Two names for one number (``1.jpg`` and ``0001.jpg``) keep the first in
    name order. With ``root``, a file must be usable as
    :mod:`aulib.data.labels` checks it (a regular file; a link only to a file
    inside ``root``), and ``folder`` itself must lie inside ``root`` (a folder
    linked out of it is not read). ``ignored`` collects what was passed over
    (names relative to ``root``)."""
    root_real = os.path.realpath(root) if root is not None else None
    rel = os.path.relpath(folder, root) if root is not None else str(folder)
    if root_real is not None and os.path.isdir(folder) and outside_root(folder, root_real):
        if ignored is not None:
            ignored.add("frame folder(s) linked outside the data root (links are followed only inside it; "
                        "copy the frames in)", [rel])
        return {}
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except PermissionError:
        raise PermissionError(f"cannot read frame folder {folder} (permission denied): make it readable by this "
                              "user, or set label_settings: {frames: <folder>} to a readable copy") from None
    out: dict[int, str] = {}
    odd, unusable = [], []
    for e in entries:
        m = _NUMBERED.match(e.name)
        if e.is_dir(follow_symlinks=False) or not m:
            odd.append(f"{rel}/{e.name}")
        elif root_real is None or entry_problem(e, root_real) == "":
            out.setdefault(int(m.group(1)), e.name)
        else:
            unusable.append(f"{rel}/{e.name}")
    if ignored is not None:
        ignored.add("entries of frame folders not named <number>.jpg|jpeg|png|bmp", odd)
        ignored.add("frame files that are links out of the data root, dangling links or not regular files",
                    unusable)
    return out


def _uniform(body: list[str], width: int) -> bool:
    """Every line non-blank with exactly ``width - 1`` commas (counted on the bytes, vectorized)."""
    b = np.frombuffer("\n".join(body).encode(), np.uint8)
    ends = np.append(np.flatnonzero(b == 10), len(b))
    commas = np.concatenate([[0], np.cumsum(b == 44)])[ends]
    per_line = np.diff(np.concatenate([[0], commas]))
    lengths = np.diff(np.concatenate([[-1], ends])) - 1
    return bool((per_line == width - 1).all() and (lengths > 0).all())


def _all_ints(joined: str, n: int) -> np.ndarray | None:
    """The ``n`` comma-separated integers of ``joined`` parsed in C, or None
    when any field is not a plain integer (the caller then reads the text)."""
    if "." in joined or "e" in joined.lower():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = np.fromstring(joined, dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
    return out if len(out) == n else None


def read_fields(path: Path, header: bool) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A small comma-separated file of numbers, without pandas' per-file cost.

    Returns ``(header fields, raw (N, C): str, or int64 when every field is
    an integer (parsed in C), 1-based line numbers (N,),
    short (N,) bool: the line had fewer fields, padded with '')``; blank lines
    are dropped; a line with more fields than the first raises naming it;
    text must be UTF-8 (:func:`aulib.data.labels.decode_utf8`).
    """
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found")
    text = decode_utf8(path, path.read_bytes())
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    head: list[str] = []
    start = 0
    if header:
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines):
            raise ValueError(f"{path}: the file is empty")
        head = [h.strip() for h in lines[start].split(",")]
        start += 1
    body = lines[start:]
    while body and not body[-1].strip():
        body.pop()
    width = len(head) if header else (body[0].count(",") + 1 if body else 0)
    if body and _uniform(body, width):    # the usual file: parsed in C
        joined = ",".join(body)
        ints = _all_ints(joined, len(body) * width)
        raw = (ints if ints is not None else np.array(joined.split(","), dtype=str)).reshape(len(body), width)
        if ints is None and (" " in text or "\t" in text):
            raw = np.char.strip(raw)
        return head, raw, np.arange(start + 1, start + len(body) + 1, dtype=np.int64), np.zeros(len(body), bool)
    rows, numbers = [], []
    for k, ln in enumerate(body):
        if ln.strip():
            rows.append(ln.split(","))
            numbers.append(start + k + 1)
    counts = np.array([len(r) for r in rows], np.int64)
    long = np.flatnonzero(counts > width)
    if len(long):
        raise ValueError(f"{path}: line {numbers[long[0]]} has {counts[long[0]]} comma-separated fields, "
                         f"{'the header has' if header else 'the first line has'} {width}; every line needs the "
                         "same number of fields")
    short = counts < width
    if short.any():
        rows = [r + [""] * (width - len(r)) for r in rows]
    raw = np.array(rows, dtype=str).reshape(len(rows), width)
    return head, np.char.strip(raw), np.array(numbers, np.int64), short


def code_values(raw: np.ndarray, codes: Mapping[str, int]) -> np.ndarray:
    """Strings (N, A) -> int8 (N, A) via ``codes`` (text stripped; ``'1.0'``
    reads as ``'1'``); :data:`BAD` marks a value not in ``codes``."""
    if raw.size == 0:
        return np.zeros(raw.shape, np.int8)
    raw = np.asarray(raw)
    int_keys = {int(k): v for k, v in codes.items() if k.lstrip("-").isdigit()}
    if int_keys and len(int_keys) == len(codes):      # all-integer codes: a lookup table, no string sort
        try:
            ints = raw.astype(np.int64)
        except ValueError:
            ints = None
        if ints is not None:
            lo = min(int_keys)
            table = np.full(max(int_keys) - lo + 1, BAD, np.int8)
            for k, v in int_keys.items():
                table[k - lo] = v
            inside = (ints >= lo) & (ints <= max(int_keys))
            out = np.full(raw.shape, BAD, np.int8)
            out[inside] = table[ints[inside] - lo]
            return out
    uniq, inv = np.unique(raw.astype(str), return_inverse=True)
    out = np.full(len(uniq), BAD, np.int8)
    for k, text in enumerate(uniq):
        t = text.strip()
        if t not in codes:
            try:
                f = float(t)
                t = str(int(f)) if f.is_integer() else t
            except ValueError:
                pass
        if t in codes:
            out[k] = codes[t]
    return out[inv.reshape(raw.shape)]


def whole_numbers(text: np.ndarray) -> np.ndarray:
    """int64 of strings of digits, -1 where a string is not a whole number >= 0."""
    if text.dtype.kind in "iu":
        return np.where(text >= 0, text, -1).astype(np.int64)
    try:
        out = text.astype(np.int64)
        if (out >= 0).all():
            return out
    except ValueError:
        pass
    ok = np.char.isdigit(text) & (np.char.str_len(text) < 18)
    out = np.full(len(text), -1, np.int64)
    if ok.any():
        out[ok] = text[ok].astype(np.int64)
    return out


class Problems:
    """Bad lines of a reader, named as :mod:`aulib.data.sources.text` names them."""

    def __init__(self, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error, self.rows = on_error, []

    def add(self, file, line, column, value, reason) -> None:
        self.rows.append({"file": str(file), "line": int(line), "column": str(column), "value": str(value),
                          "reason": reason})

    def bad_values(self, file, lines: np.ndarray, columns: Sequence[str], raw: np.ndarray, codes: np.ndarray,
                   allowed: str) -> np.ndarray:
        """Record every value coded :data:`BAD`; returns the bool rows that hold one."""
        for r, c in zip(*np.nonzero(codes == BAD)):
            self.add(file, lines[r], columns[c], raw[r, c], f"bad label value (expected {allowed})")
        return (codes == BAD).any(axis=1)

    def repeated(self, file, lines: np.ndarray, column: str, text: np.ndarray, frame: np.ndarray,
                 bad: np.ndarray) -> np.ndarray:
        """bool rows whose frame number an earlier good row of the file already
        listed, each recorded (file, line) as ``frame listed twice``: with
        ``on_error='skip'`` the first is kept, else :meth:`check` raises."""
        good = np.flatnonzero(~bad)
        dup = np.zeros(len(frame), bool)
        if len(good):
            _, first = np.unique(frame[good], return_index=True)
            dup[good] = True
            dup[good[first]] = False
        for r in np.flatnonzero(dup):
            self.add(file, lines[r], column, text[r], "frame listed twice (kept the first)")
        return dup

    def check(self) -> None:
        """Raise on the first problem unless ``on_error='skip'``."""
        if self.rows and self.on_error == "raise":
            raise_first(self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=PROBLEM_COLUMNS)


def assemble(source: str, images: Sequence[str], codes: np.ndarray, aus: Sequence[int],
             subjects: Sequence[str], read: int, problems: Problems, counts: Mapping[str, int],
             notes: Sequence[str] = ()) -> tuple[pd.DataFrame, LabelReport]:
    """A label table (``image``, the AU columns, ``subject``) and its report.

    ``codes`` int8 (N, len(aus)) 1/0/-1 for ``images`` (N,); AUs outside the
    kit's catalog are left out with a note; the table has the source's AU
    columns only, in catalog order. ``read``: label rows read; ``counts``: what was
    counted rather than refused (labels without a frame, frames without labels,
    rows without a valid label), shown in the report's summary.
    """
    report = LabelReport(source=source, notes=list(notes))
    report.counts = {k: int(v) for k, v in counts.items()}
    outside = [a for a in aus if a not in AU_NAMES]
    if outside:
        report.notes.append(f"AU(s) {outside} of the source are not in the kit's AU catalog: not read")
    table = pd.DataFrame({"image": pd.Series(list(images), dtype=object).astype(str)})
    col_of = {au_column(a): k for k, a in enumerate(aus) if a in AU_NAMES}
    for col in (c for c in CATALOG_COLUMNS if c in col_of):       # the source's AUs, in catalog order
        table[col] = codes[:, col_of[col]]
    table["subject"] = pd.Series(list(subjects), dtype=object).astype(str).to_numpy()
    report.read, report.kept = int(read), len(table)
    report.skipped = report.read - report.kept
    report.problems = problems.frame()
    warn_degenerate_aus(table, [c for c in CATALOG_COLUMNS if c in col_of], report)
    return table, report
