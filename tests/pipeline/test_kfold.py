"""Fold k > 1 of the k-fold protocol reads fold 1's faces and crops: after
:func:`aulib.pipeline.kfold.share_data`, the 02_split calls find everything
done, detect no face, crop nothing and leave the shared (hard-linked) files
one file on disk."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from PIL import Image

import aulib.data.crops as CR
from aulib.data.crops import build_crop_store
from aulib.data.faces import cache as FC
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.pipeline.kfold import fold_workspace, share_data
from aulib.workspace import Workspace


def _instant(paths, **kw):
    rows = []
    for p in paths:
        row = dict.fromkeys(FACE_COLUMNS, np.nan)
        row.update(image=str(p), width=40, height=40, n_faces=1, score=0.99, status="ok",
                   x0=8.0, y0=8.0, x1=32.0, y1=32.0)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["errors"] = {}
    return out


def _refuse(*args, **kw):
    raise AssertionError("fold 2 detected or cropped again")


def test_second_fold_detects_and_crops_nothing(tmp_path, monkeypatch):
    root = tmp_path / "data"
    names = [f"images/{i:03d}.png" for i in range(6)]
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / name)
    ws = Workspace(tmp_path / "ws", tmp_path / "ws" / "results")
    one, two = fold_workspace(ws, 1), fold_workspace(ws, 2)

    def step_02_split(fws):            # what notebook 02_split does with faces and crops
        cache, _ = FC.build_face_cache(root, names, fws.faces, method="mtcnn", progress=False)
        store = build_crop_store(root, cache, fws.crops("box1.5", 16), "box1.5", 16, images=names,
                                 progress=False, codec="jpeg")
        return cache, store

    monkeypatch.setattr(FC, "detect_faces", _instant)
    cache1, store1 = step_02_split(one)
    shared = share_data(one, two)
    assert two.faces in shared and two.crops("box1.5", 16) / "pixels.jpg" in shared

    monkeypatch.setattr(FC, "detect_faces", _refuse)
    monkeypatch.setattr(CR, "_crop_rows", _refuse)
    cache2, store2 = step_02_split(two)
    pd.testing.assert_frame_equal(cache2, cache1)
    assert np.array_equal(store2.images[np.arange(len(names))], store1.images[np.arange(len(names))])
    # still one file each: the complete face cache is not rewritten, the store not rebuilt
    for f in [one.faces, *sorted(one.crops("box1.5", 16).iterdir())]:
        twin = two.root / f.relative_to(one.root)
        assert os.stat(twin).st_ino == os.stat(f).st_ino, f"{twin} is no longer {f}"
