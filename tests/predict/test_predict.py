"""Prediction on new photos and videos with chosen models (aulib.predict).

The chosen models are built here: tiny MultiViewNets (timm ``test_efficientnet``,
random weights) saved as run directories with checkpoints, and chosen-model
YAMLs written by hand, so every AU's run, epoch and threshold is known.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from aulib.data.faces.align import crop_face
from aulib.data.images import load_rgb
from aulib.infer import load_model
from aulib.io import write_yaml
from aulib.predict.predictor import Predictor, errors_path, read_predictions
from aulib.predict.formats import LANDMARK_NAMES, decision_column, face_of, prob_column
from aulib.predict.inputs import expand_inputs, sample_photos
from aulib.select.ensemble import LinearEnsemble
from chosen_models import AUS6, AUS17, chosen6, chosen17, make_run


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ws")
    make_run(root, "r17a", "17au", 48, "aligned")
    make_run(root, "r17b", "17au", 40, "aligned")
    make_run(root, "r6", "6au", 48, "box1.5")
    write_yaml(root / "chosen" / "17au.yaml", chosen17())
    write_yaml(root / "chosen" / "6au.yaml", chosen6())
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    grace, astronaut = sample_photos(folder)
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(grace.read_bytes()[:2000])  # truncated JPEG
    return grace, astronaut, corrupt


@pytest.fixture(scope="module")
def predictor(ws):
    return Predictor([ws / "chosen" / "17au.yaml", ws / "chosen" / "6au.yaml"], device="cpu", progress=False)


@pytest.fixture(scope="module")
def photo_results(predictor, photos, tmp_path_factory):
    """The photo folder (grace_hopper.jpg, astronaut.png, corrupt.jpg) in one batch; rows sorted by name."""
    annotated = tmp_path_factory.mktemp("annotated")
    results, errors = predictor.predict_paths([photos[0].parent], annotate_dir=annotated,
                                              relative_to=photos[0].parent)
    order = results["image"].map({"grace_hopper.jpg": 0, "astronaut.png": 1})
    return results.iloc[np.argsort(order.to_numpy())].reset_index(drop=True), errors, annotated


def test_one_face_per_photo_23_probabilities(photo_results, photos, predictor):
    results, _, _ = photo_results
    assert list(results.columns) == predictor.columns
    assert results["image"].tolist() == ["grace_hopper.jpg", "astronaut.png"]   # relative to the folder
    assert results["n_faces"].tolist() == [1, 1] and results["face"].tolist() == [0, 0]
    assert results["frame"].isna().all()
    p = results[[prob_column(a) for a in AUS17 + AUS6]].to_numpy(np.float64)
    assert p.shape == (2, 23) and np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert (results["score"] > 0.9).all()
    # the boxes are where the faces are (grace_hopper: face around x 175-355, y 120-340)
    g = results.iloc[0]
    assert 150 < g.x0 < 200 and 320 < g.x1 < 380 and 100 < g.y0 < 150


def test_decisions_follow_chosen_thresholds(photo_results, predictor):
    results, _, _ = photo_results
    thr = predictor.thresholds
    assert list(thr.index) == AUS17 + AUS6
    for a in AUS17 + AUS6:
        expected = (results[prob_column(a)] >= thr[a]).astype(int)
        assert results[decision_column(a)].astype(int).tolist() == expected.tolist()
    j_on, j_off = AUS17[0], AUS17[1]          # thresholds 0.0 and 2.0 in _chosen17
    assert results[decision_column(j_on)].tolist() == [1, 1] and results[decision_column(j_off)].tolist() == [0, 0]


def test_each_au_comes_from_its_chosen_run_epoch_and_crop(photo_results, ws, photos):
    results, _, _ = photo_results
    img = load_rgb(photos[0])
    face = face_of(results.iloc[0])
    for run, epoch, size, style, aus, au in (("r17a", 1, 48, "aligned", AUS17, AUS17[0]),
                                             ("r17b", 2, 40, "aligned", AUS17, AUS17[1]),
                                             ("r6", 2, 48, "box1.5", AUS6, 53)):
        crop, status = crop_face(img, face, style, size)
        assert status == "ok"
        model = load_model(ws / "train" / run, epoch)
        p = model.probs(torch.from_numpy(crop.copy()).permute(2, 0, 1)[None]).numpy()[0]
        assert results.iloc[0][prob_column(au)] == pytest.approx(float(p[aus.index(au)]), abs=1e-5)


def test_corrupt_file_reported_batch_continues(photo_results, photos):
    _, errors, _ = photo_results
    assert errors["image"].tolist() == ["corrupt.jpg"]
    assert "truncated" in errors["reason"].iloc[0] and str(photos[2]) in errors["reason"].iloc[0]


def test_annotate_writes_one_image_per_input(photo_results, photos):
    _, _, annotated = photo_results
    files = sorted(p.name for p in annotated.iterdir())
    assert files == ["astronaut.png", "grace_hopper.jpg"]   # each keeps its extension
    drawn = np.asarray(Image.open(annotated / "grace_hopper.jpg"))
    assert drawn.shape == load_rgb(photos[0]).shape
    assert not np.array_equal(drawn, load_rgb(photos[0]))  # something was drawn


def test_batching_does_not_change_results(ws, photos, photo_results):
    results, _, _ = photo_results
    small = Predictor([ws / "chosen" / "17au.yaml", ws / "chosen" / "6au.yaml"], device="cpu",
                      batch_size=1, chunk_size=1, progress=False)
    again, _ = small.predict_images([load_rgb(photos[0]), photos[1]])
    assert again["image"].tolist() == ["array[0]", str(photos[1])]
    cols = [c for c in results.columns if c.endswith("_prob")]
    np.testing.assert_allclose(again[cols].to_numpy(float), results[cols].to_numpy(float), atol=1e-5)


def test_picture_without_face_gets_an_empty_row(predictor):
    res, err = predictor.predict_images([np.full((120, 160, 3), 127, np.uint8)])
    assert len(err) == 0 and len(res) == 1
    row = res.iloc[0]
    assert row["n_faces"] == 0 and pd.isna(row["face"]) and pd.isna(row["AU01_prob"]) and pd.isna(row["AU01_c"])


def test_video_frames_sampled_at_rate(predictor, photos, tmp_path):
    import cv2

    face = np.asarray(Image.fromarray(load_rgb(photos[0])).resize((200, 240)))
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (200, 240))
    assert writer.isOpened()
    for i in range(25):                      # 2.5 s at 10 fps
        writer.write(np.ascontiguousarray(np.roll(face, i, axis=1)[:, :, ::-1]))
    writer.release()
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 50)
    res, err = predictor.predict_paths([path, tmp_path / "broken.mp4"], video_fps=2)
    assert err["image"].tolist() == [str(tmp_path / "broken.mp4")] and "video" in err["reason"].iloc[0]
    assert res["frame"].tolist() == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(res["time_s"], [0, 0.5, 1.0, 1.5, 2.0])
    assert (res["n_faces"] == 1).all() and res["AU56_prob"].notna().all()


def test_folder_inputs_and_missing_paths(tmp_path, photos):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.PNG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    items, errors = expand_inputs([tmp_path, tmp_path / "nope.jpg", tmp_path / "empty"])
    assert items == [tmp_path / "sub" / "a.PNG"]
    assert [e.source for e in errors] == [str(tmp_path / "nope.jpg"), str(tmp_path / "empty")]


def test_ensemble_combines_runs(ws, photos, photo_results):
    chosen = chosen17()
    coef = np.tile([[0.7, 0.4]], (17, 1))
    intercept = np.linspace(-0.5, 0.5, 17)
    chosen["ensemble"] = LinearEnsemble(coef, intercept, tuple(AUS17), ("r17a", "r17b"),
                                        epochs=np.tile([[1, 2]], (17, 1))).to_dict()
    path = ws / "chosen_ens" / "17au.yaml"
    write_yaml(path, chosen)
    res, _ = Predictor([path], workspace=ws, device="cpu", progress=False).predict_images([photos[0]])
    img = load_rgb(photos[0])
    face = face_of(photo_results[0].iloc[0])
    runs = []
    for run, epoch, size in (("r17a", 1, 48), ("r17b", 2, 40)):
        x = torch.from_numpy(crop_face(img, face, "aligned", size)[0].copy()).permute(2, 0, 1)[None]
        runs.append(load_model(ws / "train" / run, epoch).probs(x).numpy())
    expected = LinearEnsemble.from_dict(chosen["ensemble"]).predict(runs)[0]
    np.testing.assert_allclose(res[[prob_column(a) for a in AUS17]].to_numpy(float)[0], expected, atol=1e-5)


def test_multicrop_averages_the_views_its_training_produced(ws, photos, photo_results):
    """Multi-crop averages the views a run's training produces (aulib.infer.multicrop.run_views): the
    6-AU run never saw a flip, so its multi-crop is the image alone (same probabilities); the 17-AU
    runs trained with flips average image and flip (other probabilities); the shape stays."""
    res, _ = Predictor([ws / "chosen" / "17au.yaml", ws / "chosen" / "6au.yaml"], device="cpu", multicrop=True,
                       progress=False).predict_images([photos[0]])
    for aus, same in ((AUS6, True), (AUS17, False)):
        cols = [prob_column(a) for a in aus]
        assert set(cols) <= set(res.columns)
        single, multi = photo_results[0].iloc[0][cols].to_numpy(float), res.iloc[0][cols].to_numpy(float)
        assert np.all((multi >= 0) & (multi <= 1)) and np.allclose(single, multi, atol=1e-6) == same, aus


def test_bad_chosen_files_fail_clearly(ws, tmp_path):
    bad = chosen17()
    bad["aus"] = AUS6
    write_yaml(ws / "chosen" / "bad_aus.yaml", bad)
    with pytest.raises(ValueError, match=r"bad_aus\.yaml.*do not match group 17au"):
        Predictor([ws / "chosen" / "bad_aus.yaml"], device="cpu")
    with pytest.raises(ValueError, match=r"both cover AUs"):
        Predictor([ws / "chosen" / "17au.yaml", ws / "chosen" / "17au.yaml"], device="cpu")
    missing_ckpt = chosen17()
    missing_ckpt["per_au"][3]["epoch"] = 7
    write_yaml(ws / "chosen" / "bad_epoch.yaml", missing_ckpt)
    with pytest.raises(FileNotFoundError, match=r"bad_epoch\.yaml: AU 5 .*epoch007\.pt.*epochs \[1, 2\]"):
        Predictor([ws / "chosen" / "bad_epoch.yaml"], device="cpu")
    moved = tmp_path / "elsewhere" / "chosen" / "6au.yaml"
    write_yaml(moved, chosen6())
    with pytest.raises(FileNotFoundError, match=r"6au\.yaml: run 'r6' has no .*--workspace"):
        Predictor([moved], device="cpu")
    assert Predictor([moved], workspace=ws, device="cpu").aus == tuple(AUS6)   # found with the workspace
    wrong_group = chosen6()
    wrong_group["runs"]["r6"]["dir"] = "train/r17a"
    write_yaml(ws / "chosen" / "wrong_run.yaml", wrong_group)
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(ValueError, match=r"wrong_run\.yaml: run 'r6' predicts AUs"):
        warnings.simplefilter("always")
        Predictor([ws / "chosen" / "wrong_run.yaml"], device="cpu")
    assert any("config.yaml says 'aligned'" in str(w.message) for w in caught)


def test_inputs_deduplicated_by_resolved_path_in_order(tmp_path, photos):
    """Issue 15.9: ``DIR DIR/a.jpg`` gave every file of DIR twice or more."""
    (tmp_path / "sub").mkdir()
    a, b = tmp_path / "sub" / "a.png", tmp_path / "b.jpg"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    (tmp_path / "link.jpg").symlink_to(b)
    arr = np.zeros((30, 30, 3), np.uint8)
    items, errors = expand_inputs([b, tmp_path, arr, tmp_path / "sub" / ".." / "sub" / "a.png", str(a), arr])
    assert items[0] == b and items[1] == a and items[2] is arr and items[3] is arr and len(items) == 4
    assert errors == []


def test_sample_photos_leave_no_temporary_folder(tmp_path, monkeypatch):
    """Issue 15.9: every 08_predict run left an aulib_photos_* folder in /tmp."""
    import tempfile

    monkeypatch.setenv("AULIB_ROOT", str(tmp_path / "repo"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    first = sample_photos()
    assert first == sample_photos() and first[0] == tmp_path / "repo" / "runs" / "sample_photos" / "grace_hopper.jpg"
    assert all(p.is_file() for p in first) and list((tmp_path / "tmp").iterdir()) == []


def _tiny_and_strip(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    tiny, strip = folder / "tiny.png", folder / "strip.png"
    Image.fromarray(rng.integers(0, 255, (12, 15, 3), dtype=np.uint8)).save(tiny)
    Image.fromarray(rng.integers(0, 255, (40, 3000, 3), dtype=np.uint8)).save(strip)
    return tiny, strip


def test_tiny_pictures_are_errors_not_a_lost_batch(predictor, photos, tmp_path):
    """Issue 15.1: a picture under 20 px (or a tiny video) is an errors row
    naming it; the photos around it are still predicted."""
    import cv2

    tiny, strip = _tiny_and_strip(tmp_path)
    clip = tmp_path / "tiny.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (16, 16))
    for _ in range(5):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    res, err = predictor.predict_images([photos[0], tiny, np.zeros((10, 400, 3), np.uint8), strip, clip])
    assert res["image"].tolist() == [str(photos[0]), str(strip)] and res["n_faces"].tolist() == [1, 0]
    assert err["image"].tolist() == [str(tiny), "array[2]", str(clip)]
    assert err["reason"].str.contains("under 20 px").all() and "15x12" in err["reason"].iloc[0]


@pytest.mark.slow
def test_cli_tiny_images_and_folder_with_its_file(ws, photos, tmp_path):
    """Issue 15.1 and 15.9 through the CLI: exit 1 (not 2), a results CSV, the
    tiny image in the errors CSV by name, and ``DIR DIR/file`` giving one row per file."""
    folder = tmp_path / "in"
    folder.mkdir()
    grace = folder / "grace_hopper.jpg"
    grace.write_bytes(photos[0].read_bytes())
    tiny, strip = _tiny_and_strip(folder)
    out = tmp_path / "out.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AULIB_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "aulib.predict", str(folder), str(grace), str(tiny),
                           "--model", str(ws / "chosen" / "17au.yaml"), "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "tiny.png" in proc.stdout
    res = read_predictions(out)
    assert res["image"].tolist() == [str(grace), str(strip)] and res["n_faces"].tolist() == [1, 0]
    err = pd.read_csv(errors_path(out))
    assert err["image"].tolist() == [str(tiny)] and "under 20 px" in err["reason"].iloc[0]


@pytest.mark.slow
def test_cli_writes_results_errors_and_annotations(ws, photos, tmp_path):
    out = tmp_path / "out" / "results.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AULIB_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "aulib.predict", str(photos[0]), str(photos[2]),
                           "--model", str(ws / "chosen" / "17au.yaml"), "--model", str(ws / "chosen" / "6au.yaml"),
                           "--out", str(out), "--annotate", str(tmp_path / "ann"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr            # 1: finished, but an input failed
    assert "corrupt.jpg" in proc.stdout
    res = read_predictions(out)
    assert len(res) == 1 and len([c for c in res.columns if c.endswith("_prob")]) == 23
    assert str(res["AU01_c"].dtype) == "Int8"
    err = pd.read_csv(errors_path(out))
    assert err["image"].tolist() == [str(photos[2])]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["grace_hopper.jpg"]


def test_plot_faces_draws_each_face(photo_results, predictor, photos):
    import matplotlib

    matplotlib.use("Agg")
    from aulib.predict.plot import plot_faces

    results, _, _ = photo_results
    fig = plot_faces(results, predictor.thresholds, root=photos[0].parent)
    axes = fig.axes
    assert len(axes) == 4 and len(axes[0].images) == 1 and len(axes[2].images) == 1
    assert len(axes[1].patches) == 23                       # one bar per AU
    assert plot_faces(results.iloc[:0], predictor.thresholds) is None


def test_au_label_names_each_present_au_with_its_probability():
    from aulib.predict.inputs import au_label

    assert au_label(0, [12, 25], [0.8, 0.93]) == "#0\nAU25 Lips part 0.93\nAU12 Lip corner puller 0.80"
    assert au_label(1, []) == "#1 no AU"


def test_training_dataset_from_the_01_data_stamp_else_the_generated_synthau(tmp_path):
    from aulib.predict.predictor import training_dataset
    from aulib.workspace import Workspace

    ws = Workspace(tmp_path, tmp_path / "results")
    assert training_dataset(tmp_path) is None
    write_yaml(ws.data / "synthau.yaml", {"profile": "demo"})
    assert training_dataset(tmp_path) == "synthau"
    write_yaml(ws.stamp("01_data"), {"fingerprint": "x", "parameters": {"dataset": "emotionet"}})
    assert training_dataset(tmp_path) == "emotionet"


def test_synthau_models_say_so_on_the_picture_the_figure_and_the_summary(ws, photos, tmp_path, capsys):
    """Issue 25.5: AU names and probabilities beside the face, the 5 landmarks
    as dots, a note across the picture when the models were trained on
    SynthAU; no errors file when nothing failed (a stale one is removed)."""
    import matplotlib

    matplotlib.use("Agg")
    from aulib.predict.plot import plot_faces

    marker = ws / "data" / "synthau.yaml"
    write_yaml(marker, {"profile": "demo"})
    try:
        pred = Predictor([ws / "chosen" / "17au.yaml"], device="cpu", progress=False)
        assert pred.datasets == {ws / "chosen" / "17au.yaml": "synthau"} and "SynthAU" in pred.note
        out = tmp_path / "res.csv"
        errors_path(out).write_text("image,frame,reason\nold.jpg,,gone\n")
        results, errors = pred.predict_to_csv([photos[0]], out, annotate_dir=tmp_path / "ann")
    finally:
        marker.unlink()
    assert len(errors) == 0 and out.exists() and not errors_path(out).exists()
    printed = capsys.readouterr().out
    assert "note: Models trained on SynthAU" in printed and "_errors" not in printed
    drawn = np.asarray(Image.open(tmp_path / "ann" / "grace_hopper.jpg")).astype(int)
    plain = load_rgb(photos[0]).astype(int)
    row = results.iloc[0]
    for i, name in enumerate(LANDMARK_NAMES):           # a yellow dot on each landmark
        x, y = int(round(row[f"{name}_x"])), int(round(row[f"{name}_y"]))
        r, g, b = drawn[y, x]
        assert r > 200 and g > 180 and b < 90, (i, drawn[y, x], plain[y, x])
    bottom = drawn[-8:, :, :]                           # the note's black band across the picture
    assert (bottom.max(axis=2) < 60).mean() > 0.5 and (bottom[..., 0] > 200).any()
    fill = (np.abs(drawn - [200, 30, 30]).max(axis=2) < 40) & (np.abs(plain - [200, 30, 30]).max(axis=2) >= 40)
    x0, y0, x1, y1 = (int(row[c]) for c in ("x0", "y0", "x1", "y1"))
    inside = fill[y0 + 8:y1 - 8, x0 + 8:x1 - 8].sum()
    assert fill.sum() > 3000 and inside < 0.02 * fill.sum()        # the label block is beside the face, not on it
    fig = plot_faces(results, pred.thresholds, root=None)
    assert "SynthAU" in fig._suptitle.get_text()
    assert fig.axes[1].get_yticklabels()[0].get_text() == "AU01 Inner brow raiser"
    assert len(fig.axes[0].collections) == 1 and len(fig.axes[0].collections[0].get_offsets()) == 5
    # models whose data set is unknown (the other tests' workspace): no note
    plain_pred = Predictor([ws / "chosen" / "17au.yaml"], device="cpu", progress=False)
    assert plain_pred.note is None
    res2, _ = plain_pred.predict_images([photos[0]])
    assert plot_faces(res2, plain_pred.thresholds)._suptitle is None
