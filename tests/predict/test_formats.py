"""Issue 35.3: predictions written as the field writes them (``--format aulib|openface|fex``), read back
through the kit's own OpenFace / Fex readers (round trip); annotated pictures keep their extension;
``--help`` without torch. A 6-AU chosen model written by test code, two real photos and a short MJPG AVI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aulib.data.images import load_rgb
from aulib.data.sources import machine_labels as M
from aulib.io import write_yaml
from aulib.predict.predictor import read_predictions
from aulib.predict.formats import LANDMARK_COLUMNS, OPENFACE_META, thresholds_path
from aulib.predict.inputs import sample_photos
from aulib.workspace import repo_root
from chosen_models import AUS6, chosen6, make_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "AULIB_PROGRESS": "0", "PYTHONPATH": str(repo_root())}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    import torch
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ws")
    make_run(root, "r6", "6au", 48, "box1.5")
    write_yaml(root / "chosen" / "6au.yaml", chosen6())
    return root


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A data root: a.jpg and a.png (two pictures, one stem), sub/astronaut.png, clip.avi (8 frames, 4 fps)."""
    import cv2
    root = tmp_path_factory.mktemp("media")
    grace, astronaut = sample_photos(root / "sub")
    Image.open(grace).save(root / "a.jpg")
    Image.open(grace).convert("RGB").save(root / "a.png")
    face = np.asarray(Image.fromarray(load_rgb(grace)).resize((200, 240)))
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (200, 240))
    for i in range(8):
        writer.write(np.ascontiguousarray(np.roll(face, 3 * i, axis=1)[:, :, ::-1]))
    writer.release()
    (grace.parent / "grace_hopper.jpg").unlink()
    return root


def _predict(ws, media, out, fmt, annotate=None):
    cmd = [sys.executable, "-m", "aulib.predict", str(media), "--model", str(ws / "chosen" / "6au.yaml"),
           "--out", str(out), "--device", "cpu", "--format", fmt]
    res = subprocess.run(cmd + (["--annotate", str(annotate)] if annotate else []), env=ENV,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def outputs(ws, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    _predict(ws, media, out / "kit.csv", "aulib", annotate=out / "ann")
    _predict(ws, media, out / "of.csv", "openface")
    _predict(ws, media, out / "fex.csv", "fex")
    return out


def test_help_does_not_import_torch():
    code = ("import runpy, sys\nsys.argv = ['aulib.predict', '--help']\ntry:\n    runpy.run_module('aulib.predict', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--format {aulib,openface,fex}" in res.stdout and "TORCH False" in res.stdout


def test_kit_format_columns_decimals_thresholds_and_annotations(outputs):
    text = (outputs / "kit.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert header[:10] == ["image", "frame", "time_s", "face", "n_faces", "score", "x0", "y0", "x1", "y1"]
    assert header[10:20] == LANDMARK_COLUMNS and LANDMARK_COLUMNS[0] == "left_eye_x"
    assert header[20:] == [f"AU{a}_prob" for a in AUS6] + [f"AU{a}_c" for a in AUS6]
    floats = [f for line in text.splitlines()[1:] for f in line.split(",") if "." in f and f.replace(".", "").isdigit()]
    assert floats and all(len(f.split(".")[1]) == 4 for f in floats)            # 4 decimals, not float64's 17
    res = read_predictions(outputs / "kit.csv")
    assert len(res) == 3 + 4 and str(res["AU51_c"].dtype) == "Int8"              # 3 photos + 4 sampled frames
    thr = pd.read_csv(thresholds_path(outputs / "kit.csv"))
    assert thr["AU"].tolist() == [f"AU{a}" for a in AUS6] and (thr["threshold"] == 0.5).all()
    assert thr["name"].iloc[0] == "Head turn left" and (thr["run"] == "r6").all()
    names = sorted(p.name for p in (outputs / "ann").iterdir())
    assert {"a.jpg", "a.png", "astronaut.png"} <= set(names)                      # a.png, a.jpg both kept
    assert sum(n.startswith("clip_frame") and n.endswith(".jpg") for n in names) == 4


def test_openface_header_as_openface_writes_it(outputs):
    head = (outputs / "of.csv").read_text().splitlines()[0]
    assert head.startswith("frame, face_id, timestamp, confidence, success, input, AU51_c, AU51_prob, AU52_c")
    df = M.read_tool_csv(outputs / "of.csv")
    assert list(df.columns[1:7]) == OPENFACE_META
    video = df[df["input"].str.endswith("clip.avi")]
    assert video["frame"].astype(int).tolist() == [1, 3, 5, 7]                    # decode index 0, 2, 4, 6 + 1
    assert video["timestamp"].astype(float).tolist() == [0.0, 0.5, 1.0, 1.5]


def _kit_by_image(outputs, media):
    res = read_predictions(outputs / "kit.csv")
    res["key"] = [f"{Path(i).relative_to(media).as_posix()}" + ("" if pd.isna(f) else f"#{int(f)}")
                  for i, f in zip(res["image"], res["frame"])]
    return res.set_index("key")


@pytest.mark.parametrize("tool", ["openface", "fex"])
def test_round_trip_through_the_kits_readers(outputs, media, tool):
    """--format openface / fex, read back as label tables: the same pictures and video frames (``clip.avi#k``),
    the kit's decisions (OpenFace's AUxx_c) or its probabilities >= 0.5 (Fex)."""
    settings = {**M.SETTINGS, "tool": tool, "tables": str(outputs / ("of.csv" if tool == "openface" else "fex.csv")),
                "split": "optimization", "manual": "", "min_confidence": 0.5}
    table, report = M.read_tool_labels(media, settings)
    kit = _kit_by_image(outputs, media)
    assert sorted(table["image"]) == sorted(kit.index)
    assert {"clip.avi#0", "clip.avi#2", "clip.avi#4", "clip.avi#6", "a.jpg", "a.png", "sub/astronaut.png"} == \
        set(table["image"])
    kit = kit.loc[table["image"]]
    for a in AUS6:
        want = kit[f"AU{a}_c"].astype(int) if tool == "openface" else (kit[f"AU{a}_prob"] >= 0.5).astype(int)
        assert table[f"AU{a}"].tolist() == want.tolist()
    assert report.kept == 7 and report.counts["rows the tool failed on"] == 0
