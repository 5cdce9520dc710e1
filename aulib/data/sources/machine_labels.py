"""Machine labels: OpenFace 2 and py-feat (Fex) output tables as label tables (docs/noisy_labels.md).

A lab's unlabelled video, labelled by a tool, is the noisy set of the paper's
filtering step (notebook 03_noisy_filter); a small manually coded set (a
generic CSV, :mod:`.generic_csv`) is the optimization table (A/B).

Tables, one CSV per video or image folder (``tables``, a glob under the data root):

* ``tool: openface`` -- OpenFace 2 ``FeatureExtraction`` output: ``frame``
  (1-based), optional ``face_id``, ``timestamp``, ``confidence``, ``success``,
  ``AU01_r`` … (intensity 0-5), ``AU01_c`` … (presence 0/1); the header may
  have a space after each comma (as OpenFace writes it). Presence is
  ``AUxx_c``, or ``AUxx_r >= intensity_threshold`` when that is set (AUs with
  only a ``_c`` column, AU28, keep ``_c``). OpenFace 2 outputs no AU 11, 13,
  16, 18, 22, 24, 27, 43, 51-64: the table has no column for them, and a group
  that needs one is refused by name (:func:`aulib.data.labels.require_au_columns`).
* ``tool: fex`` -- py-feat's Fex CSV: ``input`` (the file), ``frame`` (0-based
  video frame; the image's position for pictures), ``FaceRectX``,
  ``FaceRectY``, ``FaceRectWidth``, ``FaceRectHeight``, ``FaceScore``,
  ``AU01`` … probabilities; presence is ``AUxx >= probability``.

Rows -> pictures of the data root: a row's ``input`` column (Fex, and the kit's
own ``--format openface`` output) names the file; its path is matched under
``media`` by its longest tail that exists (an absolute path from another
machine works); without ``input`` an OpenFace table ``<name>.csv`` is the
output for the video ``<media>/<name>.<ext>`` or the image folder
``<media>/<name>/`` (frame k = the k-th image in name order, as OpenFace's
``-fdir`` reads them). A video frame becomes the image key
``<video>#<0-based frame>`` (:func:`aulib.data.images.frame_ref`, as DISFA's).

Counted and left out (the report's counts, never silent): rows the tool failed
on (``success`` 0, or no face: Fex's ``FaceScore`` 0 or empty AUs), rows under
``min_confidence`` (OpenFace ``confidence``, Fex ``FaceScore``), frames with
more than one face (which face the labels belong to is unknown), labels without
a frame (past the video's end, a missing file).
"""
from __future__ import annotations

import glob as _glob
import io
import os
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ...aus import CATALOG
from ..images import VIDEO_SUFFIXES, ImageReadError, frame_ref, open_video
from ..labels import LabelReport, decode_utf8
from .generic_csv import au_heading, read_generic_csv
from .native import Problems, assemble

TOOLS = ("openface", "fex")
SETTINGS = {"tool": "openface", "tables": "openface/*.csv", "media": "", "split": "noisy",
            "manual": "labels.csv", "truth": "", "intensity_threshold": None, "probability": 0.5,
            "min_confidence": 0.8}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: First frame number of each tool's ``frame`` column.
FIRST_FRAME = {"openface": 1, "fex": 0}


def tool_tables(root: Path, settings: dict) -> list[Path]:
    """The tool's CSV files (``tables``, a glob or a file under the data root)."""
    spec = Path(str(settings["tables"]))
    spec = spec if spec.is_absolute() else root / spec
    return sorted(Path(p) for p in _glob.glob(str(spec))) if _glob.has_magic(str(spec)) else \
        ([spec] if spec.is_file() else [])


def inputs(root: Path, settings: dict) -> list[Path]:
    extra = [root / settings[k] for k in ("manual", "truth") if settings.get(k) and (root / settings[k]).is_file()]
    media = root / (settings["media"] or ".")
    return tool_tables(root, settings) + extra + ([media] if settings["media"] and media.is_dir() else [])


def read_tool_csv(path: Path) -> pd.DataFrame:
    """A tool's CSV as str fields, headers stripped (OpenFace's ``frame, face_id``), ``_line`` 1-based."""
    text = decode_utf8(path, path.read_bytes())
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: cannot read as a comma-separated table ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    repeated = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if repeated:
        raise ValueError(f"{path}: column(s) {repeated} appear more than once; keep one")
    df.insert(0, "_line", np.arange(2, len(df) + 2))
    return df


def _numbers(df: pd.DataFrame, col: str, path: Path, problems: Problems, what: str) -> np.ndarray:
    """float64 of a column; a non-number is a problem (file, line, column) and NaN."""
    text = df[col].str.strip()
    out = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    for r in np.flatnonzero(np.isnan(out) & (text != "").to_numpy() & ~text.str.lower().isin(["nan"]).to_numpy()):
        problems.add(path, df["_line"].iloc[r], col, text.iloc[r], f"not a number (expected {what})")
    return out


def au_columns(path: Path, columns, tool: str, intensity_threshold) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """``({AU: column used}, {AU: 'presence' | 'intensity' | 'probability'}, notes)`` of a tool table.
    An AU heading outside the kit's catalog is refused by name."""
    pres, inten, prob, outside = {}, {}, {}, []
    for c in columns:
        hit = au_heading(c)
        if hit is None:
            continue
        au, kind = hit
        if au not in CATALOG:
            outside.append(c)
        elif tool == "fex":
            if c.upper() == f"AU{au:02d}" or c.upper() == f"AU{au}":
                prob[au] = c
        elif kind == "intensity":
            inten[au] = c
        else:
            pres[au] = c
    if outside:
        raise ValueError(f"{path}: column(s) {outside} name AUs outside the kit's FACS catalog {list(CATALOG)}")
    notes = []
    if tool == "fex":
        used, kinds = prob, {a: "probability" for a in prob}
    elif intensity_threshold is None:
        used, kinds = pres, {a: "presence" for a in pres}
        if not pres and inten:
            raise ValueError(f"{path}: only intensity columns ({sorted(inten.values())[:3]} ...); set "
                             "label_settings: {intensity_threshold: <0-5>} to read AUxx_r >= it as present")
    else:
        used = {**pres, **inten}
        kinds = {a: ("intensity" if a in inten else "presence") for a in used}
        only_c = sorted(a for a in pres if a not in inten)
        if only_c:
            notes.append(f"AU(s) {only_c} have no _r column: presence read from _c")
    if not used:
        want = "AU01, AU02, ... probabilities" if tool == "fex" else "AU01_c ... (or AU01_r ...)"
        raise ValueError(f"{path}: no AU column ({want}); is this a {tool} table? (label_settings: {{tool: ...}})")
    order = sorted(used, key=CATALOG.index)
    return {a: used[a] for a in order}, kinds, notes


def _locate(value: str, root: Path, media: str, cache: dict) -> str | None:
    """A tool's ``input`` path -> a path relative to the data root that exists
    (its longest tail under ``media``), None when none does."""
    if value in cache:
        return cache[value]
    parts = [p for p in PurePosixPath(value.replace("\\", "/")).parts if p not in ("/", "")]
    if parts and parts[0].endswith(":"):
        parts = parts[1:]
    base = PurePosixPath(media) if media else PurePosixPath()
    found = None
    for k in range(len(parts)):
        rel = (base / PurePosixPath(*parts[k:])).as_posix()
        if ".." not in PurePosixPath(rel).parts and (root / rel).is_file():
            found = rel
            break
    cache[value] = found
    return found


def _folder_images(folder: Path) -> list[str]:
    """Image file names of a folder in name order (OpenFace ``-fdir``'s order)."""
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _n_frames(root: Path, rel: str, notes: list) -> int:
    try:
        return open_video(root / rel).n_frames
    except ImageReadError as e:
        notes.append(str(e))
        return 0


def _keys(df: pd.DataFrame, frame: np.ndarray, path: Path, root: Path, settings: dict, check_files: bool,
          notes: list) -> tuple[np.ndarray, str]:
    """Image key per row ('' when the row's picture is not on disk) and the table's subject name."""
    tool, media = settings["tool"], settings["media"] or ""
    first = FIRST_FRAME[tool]
    keys = np.full(len(df), "", dtype=object)
    if "input" in df.columns:
        cache: dict = {}
        inputs_ = df["input"].str.strip().to_numpy()
        lengths: dict[str, int] = {}
        for value in pd.unique(inputs_):
            rows = np.flatnonzero(inputs_ == value)
            rel = _locate(str(value), root, media, cache) if check_files else \
                (PurePosixPath(media) / PurePosixPath(str(value).replace("\\", "/")).name).as_posix()
            if rel is None:
                continue
            if rel.lower().endswith(VIDEO_SUFFIXES):
                if rel not in lengths:
                    lengths[rel] = _n_frames(root, rel, notes) if check_files else 1 << 62
                idx = frame[rows] - first
                ok = (idx >= 0) & (idx < lengths[rel]) & np.isfinite(idx)
                keys[rows[ok]] = [frame_ref(rel, int(i)) for i in idx[ok]]
            else:
                keys[rows] = rel
        return keys, path.stem
    if tool == "fex":
        raise ValueError(f"{path}: no 'input' column; py-feat's Fex tables name each row's file in 'input'")
    base = (PurePosixPath(media) / path.stem).as_posix() if media else path.stem
    videos = [base + s for s in VIDEO_SUFFIXES if (root / (base + s)).is_file()]
    idx = frame - first
    if videos:
        n = _n_frames(root, videos[0], notes) if check_files else 1 << 62
        ok = np.isfinite(idx) & (idx >= 0) & (idx < n)
        keys[ok] = [frame_ref(videos[0], int(i)) for i in idx[ok]]
    elif (root / base).is_dir():
        names = _folder_images(root / base)
        ok = np.isfinite(idx) & (idx >= 0) & (idx < len(names))
        keys[ok] = [f"{base}/{names[int(i)]}" for i in idx[ok]]
    else:
        notes.append(f"{path.name}: no video {base}.<{'|'.join(s[1:] for s in VIDEO_SUFFIXES)}> and no image "
                     f"folder {base}/ under {root}; its rows are counted as labels without a frame")
    return keys, path.stem


def read_tool_table(path: Path, root: Path, settings: dict, check_files: bool, problems: Problems):
    """One tool CSV -> ``(image keys, int8 codes (N, A), AUs, subject, counts, notes, rows read)``
    of the rows kept (module docstring); a bad value is a problem named by file, line and column."""
    tool = settings["tool"]
    df = read_tool_csv(path)
    cols, kinds, notes = au_columns(path, list(df.columns), tool, settings["intensity_threshold"])
    need = ["frame"] + (["success", "confidence"] if tool == "openface" else ["FaceScore"])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} of a {tool} table "
                         + ("(OpenFace 2: frame, face_id, timestamp, confidence, success, AU01_r ..., AU01_c ...)"
                            if tool == "openface" else "(py-feat Fex: frame, FaceRectX/Y/Width/Height, FaceScore, "
                            "AU01 ..., input)"))
    frame = _numbers(df, "frame", path, problems, "a frame number")
    conf = _numbers(df, "confidence" if tool == "openface" else "FaceScore", path, problems, "a confidence 0-1")
    values = np.stack([_numbers(df, c, path, problems, "a number") for c in cols.values()], axis=1)
    bad_frame = np.isfinite(frame) & ((frame != np.round(frame)) | (frame < FIRST_FRAME[tool]))
    for r in np.flatnonzero(bad_frame):
        problems.add(path, df["_line"].iloc[r], "frame", df["frame"].iloc[r],
                     f"bad frame number (expected a whole number >= {FIRST_FRAME[tool]})")
    if tool == "openface":
        success = _numbers(df, "success", path, problems, "0 or 1")
        failed = ~(success == 1)
        c_cols = [k for k, a in enumerate(cols) if kinds[a] == "presence"]
        pres = values[:, c_cols]
        bad_c = np.isfinite(pres) & ~np.isin(pres, (0.0, 1.0))
        for r, k in zip(*np.nonzero(bad_c)):
            problems.add(path, df["_line"].iloc[r], list(cols.values())[c_cols[k]], pres[r, k],
                         "bad presence value (expected 0 or 1)")
        threshold = np.array([settings["intensity_threshold"] if kinds[a] == "intensity" else 0.5 for a in cols])
    else:
        failed = ~(conf > 0) | np.isnan(values).all(axis=1)
        threshold = np.full(len(cols), float(settings["probability"]))
    bad = np.zeros(len(df), bool)
    for p in problems.rows:
        if p["file"] == str(path):
            bad |= (df["_line"].to_numpy() == p["line"])
    bad |= ~np.isfinite(frame) | bad_frame
    low = ~failed & ~bad & (conf < float(settings["min_confidence"]))
    keys, subject = _keys(df, np.where(np.isfinite(frame), frame, -1), path, root, settings, check_files, notes)
    good = ~failed & ~bad & ~low
    no_frame = good & (keys == "")
    good &= keys != ""
    _, inverse, per_key = np.unique(keys[good], return_inverse=True, return_counts=True)
    several = per_key[inverse] > 1
    rows = np.flatnonzero(good)[~several]
    codes = np.where(np.isnan(values[rows]), -1, values[rows] >= threshold[None, :]).astype(np.int8)
    counts = {"rows the tool failed on": int((failed & ~bad).sum()),
              f"rows under min_confidence {settings['min_confidence']:g}": int(low.sum()),
              "rows of frames with several faces": int(several.sum()), "labels without a frame": int(no_frame.sum())}
    how = {"presence": "_c", "intensity": f"_r >= {settings['intensity_threshold']}",
           "probability": f">= {settings['probability']}"}
    notes = notes + [f"{path.name}: " + "; ".join(f"{k} {how[k]}: AU{sorted(a for a in cols if kinds[a] == k)}"
                                                  for k in how if any(v == k for v in kinds.values()))]
    return list(keys[rows]), codes, list(cols), subject, counts, notes, len(df)


def read_tool_labels(root: Path, settings: dict, check_files: bool = True, on_error: str = "raise"
                     ) -> tuple[pd.DataFrame, LabelReport]:
    """Every tool table of ``settings['tables']`` -> one label table (with ``subject``:
    the table's name, one per video or folder) and its report."""
    if settings["tool"] not in TOOLS:
        raise ValueError(f"label setting tool={settings['tool']!r}: use one of {list(TOOLS)}")
    paths = tool_tables(root, settings)
    if not paths:
        raise FileNotFoundError(f"no {settings['tool']} table matches {root / str(settings['tables'])}; put the "
                                "tool's CSVs there or set label_settings: {tables: <glob under the data root>}")
    problems = Problems(on_error)
    parts, counts, notes, read_rows = [], {}, [], 0
    for path in paths:
        keys, codes, aus, subject, c, n, n_rows = read_tool_table(path, root, settings, check_files, problems)
        problems.check()
        parts.append((keys, codes, aus, subject))
        counts = {k: counts.get(k, 0) + v for k, v in c.items()}
        notes += n
        read_rows += n_rows
    aus = sorted(set().union(*(p[2] for p in parts)), key=CATALOG.index)
    images, blocks, subjects = [], [], []
    for keys, codes, have, subject in parts:
        block = np.full((len(keys), len(aus)), -1, np.int8)
        block[:, [aus.index(a) for a in have]] = codes
        images += keys
        blocks.append(block)
        subjects += [subject] * len(keys)
    dup = pd.Series(images).duplicated().to_numpy()
    if dup.any():
        raise ValueError(f"frame {images[int(np.flatnonzero(dup)[0])]} is labelled by two tables; give each video "
                         "or folder one table")
    source = str(root / str(settings["tables"]))
    table, report = assemble(source, images, np.concatenate(blocks), aus, subjects, read_rows, problems, counts, notes)
    if check_files and read_rows and not len(table):
        raise FileNotFoundError(f"none of the {read_rows} rows of {source} was kept ({report.counts}); check "
                                "label_settings media (the folder the videos or image folders are in) and "
                                "min_confidence")
    return table, report


def read(root: Path, settings: dict, check_files: bool = True, on_error: str = "raise"):
    """``({split: table}, {split: report})``: the tool's labels as the ``split``
    table (``noisy`` by default), the ``manual`` generic CSV as the optimization
    table, and the optional ``truth`` generic CSV (true labels of the tool's
    frames) as ``noisy_true``."""
    split = settings["split"]
    if split not in ("noisy", "optimization"):
        raise ValueError(f"label setting split={split!r}: the tool's labels are the 'noisy' set (filtered by "
                         "03_noisy_filter) or the 'optimization' table")
    tool, tool_report = read_tool_labels(root, settings, check_files, on_error)
    tables, reports = {split: tool}, {split: tool_report}
    if split == "noisy":
        if not settings["manual"]:
            raise ValueError("the tool's labels are the noisy set, so the manually coded labels are needed as the "
                             "optimization table: label_settings: {manual: labels.csv} (a generic CSV, "
                             "docs/own_data.md), or {split: optimization} to train on the tool's labels")
        tables["optimization"], reports["optimization"] = read_generic_csv(
            root / settings["manual"], root, check_files=check_files, on_error=on_error)
    elif settings["manual"] and settings["manual"] != SETTINGS["manual"]:
        raise ValueError("label settings split=optimization and manual=... both name the optimization table; "
                         "give one")
    if settings["truth"]:
        if split != "noisy":
            raise ValueError("label setting truth (true labels of the tool's frames) needs split: noisy")
        truth, treport = read_generic_csv(root / settings["truth"], root, check_files=False, on_error=on_error)
        missing = sorted(set(tool["image"]) - set(truth["image"]))
        if missing:
            raise ValueError(f"{root / settings['truth']}: no true labels for {len(missing)} of the tool's frames, "
                             f"e.g. {missing[0]!r}; the truth file must label every frame the tool's table keeps")
        tables["noisy_true"] = truth[truth["image"].isin(set(tool["image"]))].reset_index(drop=True)
        reports["noisy_true"] = treport
    if split == "noisy" and "subject" not in tables["optimization"].columns:
        tables = {k: t.drop(columns=["subject"], errors="ignore") for k, t in tables.items()}
    elif "noisy_true" in tables:              # every table has subjects, or none (labels/subjects.csv)
        tables["noisy_true"]["subject"] = tables["noisy_true"]["image"].map(dict(zip(tool["image"], tool["subject"])))
    return tables, reports
