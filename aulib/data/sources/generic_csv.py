"""The generic label CSV (docs/own_data.md): ``image[,subject][,split],AU1,AU2,…``, read and written.

AU headings in any common spelling (``AU1``, ``AU01``, ``au1``, ``AU 1``,
``AU_1``, ``AU1_c``) are read and the mapping noted; intensity columns
(``AU1_r``) need a threshold; a heading that looks like an AU outside the
catalog is refused by name.
"""
from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ...aus import CATALOG, au_column
from ..labels import CATALOG_COLUMNS, LabelReport, refuse_repeated_columns, safe_relative_path, write_label_table
from .text import (EMOTIONET_UNKNOWN, ImageMapper, clean_header, image_folder, read_text_table,
                   to_table)


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
    m = _AU_HEADING.match(clean_header(name))
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
            unknown.append(clean_header(heading))
            continue
        mapped.setdefault(au_column(au), []).append(heading)
        kinds[au_column(au)] = kind
    if unknown:
        raise ValueError(f"{path}: column(s) {unknown} look like AU columns, but those AUs are not in the kit's AU "
                         f"catalog {list(CATALOG)}; remove or rename them (nothing is dropped silently)")
    for col, headings in mapped.items():
        if len(headings) > 1:
            cols = " and ".join(repr(clean_header(h)) for h in headings)
            raise ValueError(f"{path}: columns {cols} both name {col}; keep one (the reader would have to guess "
                             "which is right)")
    intensity = sorted((c for c, k in kinds.items() if k == "intensity"), key=CATALOG_COLUMNS.index)
    if intensity and intensity_threshold is None:
        raise ValueError(f"{path}: column(s) {[clean_header(mapped[c][0]) for c in intensity]} hold AU intensities "
                         "(an _r suffix), not occurrence labels; give an occurrence column (AU1 or AU1_c, values "
                         "0/1), or read the intensities with a threshold: prepare_labels(..., settings="
                         "{'intensity_threshold': 0.5}) (profile: common: {label_settings: {intensity_threshold: "
                         "...}}), present when intensity >= threshold")
    notes = []
    renamed = [f"{clean_header(h[0])!r} as {c}" for c, h in mapped.items() if clean_header(h[0]) != c]
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
        raise ValueError(f"{path}: line {int(df['_line'].iloc[r])}, column {clean_header(heading)!r}: "
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
    df = read_text_table(path, ",", header=True)
    header = {clean_header(c).replace(" ", ""): c for c in df.columns if not c.startswith("_")}
    def canon(name: str) -> str:
        hit = au_heading(name)
        return au_column(hit[0]) if hit else clean_header(name).replace(" ", "")

    refuse_repeated_columns(path, df.attrs["header"], canon, ["image", *META_COLUMNS] + CATALOG_COLUMNS)
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
    used = {"image", *META_COLUMNS} | {clean_header(h).replace(" ", "") for h in au_cols.values()}
    extra = [h for h in header if h not in used]
    if extra:
        report.notes.append(f"ignored column(s) {extra} (not 'image', 'subject', 'split' or an AU of the "
                            "FACS catalog)")
    folder = image_folder(image_dir)

    def to_path(image: str) -> str:
        return _inside_root(image, folder, data_root)

    table = to_table(df, header["image"], [au_cols[c] for c in present], present, to_path, data_root,
                      check_files, on_error, report)
    return _meta_columns(df, header, table, to_path, path), report


def write_generic_csv(df: pd.DataFrame, path) -> None:
    """Write a label table as a generic CSV ``image,AU1,…`` (unknown as -1)."""
    write_label_table(df, path)


