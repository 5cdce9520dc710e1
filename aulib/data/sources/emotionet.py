"""EmotioNet's label files (docs/emotionet.md, docs/layout.md), read and written.

- Manual (optimization / validation) CSV: ``URL,URL orig,'AU 1','AU 2',…``,
  values ``0``, ``1``, ``999`` -- :func:`read_emotionet_manual`.
- Automatic (noisy) list: tab-separated, no header, ``URL``, ``URL orig``
  then 60 values for AU1 … AU60 -- :func:`read_emotionet_automatic`.

URLs map to local files by the URL's file name inside ``image_dir`` under the
data root, or by any callable ``url -> path relative to the root``. The
writers (SynthAU writes its data in these formats) take a label table.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd

from ... import io as aio
from ...aus import AUS_2020, au_column
from ..labels import AU_COLUMNS, LabelReport, refuse_repeated_columns, require_au_columns, validate_label_table
from .text import (EMOTIONET_UNKNOWN, ImageMapper, clean_header, image_folder, parse_values, read_text_table,
                   to_table)

#: Number of AU value columns (AU1 … AU60) in an EmotioNet automatic list.
AUTOMATIC_N_AUS = 60


def url_file_name(url: str) -> str:
    """File name of a URL: ``http://h/a/b%20c.jpg?x=1`` -> ``b c.jpg``."""
    name = str(url).strip().split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1]
    return unquote(name) if "%" in name else name


def _url_mapper(image_dir: str | os.PathLike | ImageMapper) -> ImageMapper:
    if callable(image_dir):
        return image_dir
    folder = image_folder(image_dir)
    return lambda url: posixpath.join(folder, url_file_name(url))


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
    df = read_text_table(path, ",", header=True)
    header = {clean_header(c): c for c in df.columns if not c.startswith("_")}
    wanted = {f"AU {a}": au_column(a) for a in AUS_2020}
    refuse_repeated_columns(path, df.attrs["header"], lambda c: clean_header(c).replace(" ", ""),
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
    table = to_table(df, header["URL"], [header[w] for w in wanted], list(wanted.values()), mapper,
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
        df = read_text_table(p, "\t", header=False)
        width = df.shape[1] - 3
        if width != n_fields:
            raise ValueError(f"{p}: {width} tab-separated fields per line, expected {n_fields} (URL, URL orig, "
                             f"then {AUTOMATIC_N_AUS} values for AU1 ... AU{AUTOMATIC_N_AUS}); is the file "
                             "tab-separated?")
        df.columns = ["_file", "_line", "_short"] + names
        if len(df):
            head = df.iloc[0, 5:].astype(str)
            if head.str.contains("AU", case=False).any() and (parse_values(head.to_numpy()[None]) == 2).any():
                df = df.iloc[1:]
                notes.append(f"{p.name}: line 1 read as a header")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    source = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files ({', '.join(p.name for p in paths)})"
    report = LabelReport(source=source, notes=notes)
    table = to_table(df, "URL", AU_COLUMNS, AU_COLUMNS, _url_mapper(image_dir), Path(data_root),
                      check_files, on_error, report)
    return table, report


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


