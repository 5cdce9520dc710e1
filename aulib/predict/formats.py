"""Prediction tables as the field writes them (docs/layout.md, "Predictions").

* ``aulib`` (the kit's own, :class:`~aulib.predict.predictor.Predictor`'s
  table): ``image, frame, time_s, face, n_faces, score, x0, y0, x1, y1``, the
  5 landmarks by name (:data:`LANDMARK_NAMES`), then ``AU01_prob`` …
  (probabilities) and ``AU01_c`` … (0/1 decisions, ``prob >= threshold``), AU
  columns zero-padded and in number order.
* ``openface`` (OpenFace 2's ``FeatureExtraction`` CSV): ``frame`` (1-based:
  a video's decode position + 1; pictures numbered 1, 2, … in table order, as
  OpenFace numbers a ``-fdir`` folder), ``face_id``, ``timestamp`` (s),
  ``confidence`` (the face detector's score, MTCNN's, not OpenFace's tracker
  confidence), ``success`` (1 a face, 0 none), ``input`` (the file), then per
  AU ``AU01_c`` (decision) and beside it ``AU01_prob`` (the probability: the
  kit has no intensities, so no ``_r``); the header has OpenFace's space after
  each comma.
* ``fex`` (py-feat's Fex CSV): ``frame`` (0-based video frame; pictures
  numbered 0, 1, … as py-feat does), ``FaceRectX, FaceRectY, FaceRectWidth,
  FaceRectHeight, FaceScore`` (0 where no face was found), the named
  landmarks, ``AU01`` … probabilities, ``input``, ``approx_time`` (s, videos).

Every float is written with :data:`DECIMALS` decimals; the thresholds the
decisions used go beside the CSV (:func:`thresholds_path`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..aus import AU_NAMES, parse_au_column
from ..data.faces.columns import LANDMARK_COLUMNS as DETECTOR_LANDMARKS
from ..io import atomic_path

FORMATS = ("aulib", "openface", "fex")
#: The 5 MTCNN landmarks, named as seen in the picture (``left_eye``: the eye
#: at the image's left, the subject's right eye).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
LANDMARK_COLUMNS = [f"{n}_{axis}" for n in LANDMARK_NAMES for axis in ("x", "y")]
DECIMALS = 4
OPENFACE_META = ["frame", "face_id", "timestamp", "confidence", "success", "input"]
FEX_BOX = ["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight", "FaceScore"]
_PROB = re.compile(r"^AU(\d+)_prob$")


def au_name(au: int) -> str:
    """``AU01``: the zero-padded name OpenFace and py-feat use."""
    return f"AU{int(au):02d}"


def prob_column(au: int) -> str:
    return f"{au_name(au)}_prob"


def decision_column(au: int) -> str:
    return f"{au_name(au)}_c"


def table_aus(results: pd.DataFrame) -> list[int]:
    """The AUs of a kit predictions table (its ``AUxx_prob`` columns), in number order."""
    return sorted(int(m.group(1)) for c in results.columns if (m := _PROB.match(str(c))))


def _picture_numbers(results: pd.DataFrame, first: int) -> np.ndarray:
    """A number per row: the video frame + ``first``, or the picture's position (from ``first``)."""
    pictures = results["image"].astype(str) + "\0" + results["frame"].fillna(-1).astype("int64").astype(str)
    position = pd.factorize(pictures)[0] + first
    frame = results["frame"].to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(frame), position, frame + first).astype(np.int64)


def to_openface(results: pd.DataFrame) -> pd.DataFrame:
    """The kit's predictions table as an OpenFace 2-style table (module docstring)."""
    face = results["n_faces"].to_numpy() > 0
    out = pd.DataFrame({"frame": _picture_numbers(results, 1),
                        "face_id": results["face"].fillna(0).astype(np.int64).to_numpy(),
                        "timestamp": results["time_s"].fillna(0.0).to_numpy(float),
                        "confidence": np.where(face, results["score"].to_numpy(float), 0.0),
                        "success": face.astype(np.int64), "input": results["image"].astype(str).to_numpy()})
    for a in table_aus(results):
        out[decision_column(a)] = results[decision_column(a)].astype("Int8")
        out[prob_column(a)] = results[prob_column(a)].to_numpy(float)
    return out


def to_fex(results: pd.DataFrame) -> pd.DataFrame:
    """The kit's predictions table as a py-feat Fex-style table (module docstring)."""
    face = results["n_faces"].to_numpy() > 0
    x0, y0 = results["x0"].to_numpy(float), results["y0"].to_numpy(float)
    out = pd.DataFrame({"frame": _picture_numbers(results, 0), "FaceRectX": x0, "FaceRectY": y0,
                        "FaceRectWidth": results["x1"].to_numpy(float) - x0,
                        "FaceRectHeight": results["y1"].to_numpy(float) - y0,
                        "FaceScore": np.where(face, results["score"].to_numpy(float), 0.0)})
    for c in LANDMARK_COLUMNS:
        out[c] = results[c].to_numpy(float)
    for a in table_aus(results):
        out[au_name(a)] = results[prob_column(a)].to_numpy(float)
    out["input"] = results["image"].astype(str).to_numpy()
    out["approx_time"] = results["time_s"].to_numpy(float)
    return out


def face_of(row) -> dict:
    """A predictions row (mapping) as a face of the face cache (``score``, box,
    ``lm0_x … lm4_y``, ``n_faces``), e.g. for :func:`aulib.data.faces.align.crop_face`."""
    face = {c: row[c] for c in ("score", "x0", "y0", "x1", "y1")}
    face.update({lm: row[name] for lm, name in zip(DETECTOR_LANDMARKS, LANDMARK_COLUMNS)})
    return {**face, "n_faces": 1}


def in_format(results: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """``results`` (the kit's table) in format ``fmt`` of :data:`FORMATS`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown predictions format {fmt!r}; choose one of {list(FORMATS)}")
    return results if fmt == "aulib" else to_openface(results) if fmt == "openface" else to_fex(results)


def write_predictions(results: pd.DataFrame, path, fmt: str = "aulib") -> Path:
    """Atomically write ``results`` in format ``fmt``, floats with :data:`DECIMALS`
    decimals (OpenFace's header with a space after each comma)."""
    table = in_format(results, fmt)
    path = Path(path)
    with atomic_path(path) as tmp:
        text = table.to_csv(index=False, float_format=f"%.{DECIMALS}f")
        if fmt == "openface":
            head, _, body = text.partition("\n")
            text = ", ".join(head.split(",")) + "\n" + body
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def thresholds_path(out_csv) -> Path:
    """Where the thresholds of ``out_csv``'s decisions go: ``<stem>_thresholds.csv`` beside it."""
    out_csv = Path(out_csv)
    return out_csv.with_name(f"{out_csv.stem}_thresholds.csv")


def thresholds_table(models: pd.DataFrame) -> pd.DataFrame:
    """Per AU (``AU01``, …): its name, the decision threshold and the chosen run(s)
    it came from (``models``: :meth:`Predictor.table`)."""
    out = models.reset_index()
    out.insert(0, "AU", [au_name(a) for a in out.pop("au")])
    out["name"] = [AU_NAMES.get(parse_au_column(a), "") for a in out["AU"]]
    return out.round({"threshold": 6})


__all__ = ["FORMATS", "LANDMARK_NAMES", "LANDMARK_COLUMNS", "DECIMALS", "au_name", "prob_column",
           "decision_column", "table_aus", "face_of", "to_openface", "to_fex", "in_format", "write_predictions",
           "thresholds_path", "thresholds_table"]
