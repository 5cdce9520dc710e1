"""The label table: one contract for every data set (docs/layout.md).

A *label table* is a pandas DataFrame with column ``image`` (POSIX path
relative to the data root) followed by one int8 column ``AU<n>`` per AU the
source labels, any subset of the FACS catalog :data:`aulib.aus.AU_NAMES`
in catalog (number) order: ``1`` present, ``0`` absent, ``-1`` unknown.
EmotioNet and SynthAU tables have the 23 of :data:`aulib.aus.AUS_2020`
(``AU1`` … ``AU56``), a BP4D table its 12. One row an image; images are
unique. A group needs a column for each of its AUs (:func:`require_au_columns`).

Here: the columns and checks (:func:`validate_label_table`), the workspace
table files (:func:`read_label_table`, :func:`write_label_table`), what a
reader reports (:class:`LabelReport`, :class:`LabelWarning`) and per-AU
counts. The readers of each data set's own files are in
:mod:`aulib.data.sources` (shared parsing: :mod:`aulib.data.sources.text`).
"""
from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .. import io as aio
from ..aus import AU_NAMES, AUS_2020, BUILTIN_GROUPS, CATALOG, au_column, parse_au_column

#: The AU columns of an EmotioNet / SynthAU label table (the 23 of AUS_2020), in challenge order.
AU_COLUMNS: list[str] = [au_column(a) for a in AUS_2020]
LABEL_COLUMNS: list[str] = ["image"] + AU_COLUMNS
#: Every AU column a label table may have, in catalog order.
CATALOG_COLUMNS: list[str] = [au_column(a) for a in CATALOG]
PROBLEM_COLUMNS = ["file", "line", "column", "value", "reason"]


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


def decode_utf8(path: Path, data: bytes) -> str:
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


def refuse_repeated_columns(path: Path, raw_header: Sequence[str], canon: Callable[[str], str],
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
    text = decode_utf8(path, path.read_bytes())
    refuse_repeated_columns(path, next(csv.reader(io.StringIO(text)), []), str.strip, ["image"] + CATALOG_COLUMNS)
    df = pd.read_csv(io.StringIO(text), dtype={"image": str}, keep_default_na=False)
    return validate_label_table(df, source=str(path))


def write_label_table(df: pd.DataFrame, path) -> None:
    """Atomically write a label table as CSV ``image,AU<n>,…`` (its AU columns; unknown as -1)."""
    aio.write_csv(path, validate_label_table(df, source=f"label table for {path}"))


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
    group = ["17au" if a in BUILTIN_GROUPS["17au"] else "6au" if a in BUILTIN_GROUPS["6au"] else "" for a in aus]
    out = pd.DataFrame({"positive": pos, "negative": neg, "unknown": (values == -1).sum(0),
                        "prevalence": prevalence, "group": group}, index=pd.Index(list(aus), name="AU"))
    return out
