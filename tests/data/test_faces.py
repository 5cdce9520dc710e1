"""Image decoding, face detection, face cache, alignment and crops (aulib.data.images, aulib.data.faces).

Real photos that ship with the dependencies: matplotlib's grace_hopper.jpg and
scikit-image's astronaut. MTCNN runs on a handful of images only.
"""
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from aulib.data import images as I
from aulib.data.faces import align as FA
from aulib.data.faces import cache as FC
from aulib.data.faces import columns as FCOL
from aulib.data.faces import detect as FD

torch.set_num_threads(1)


def _grace():
    import matplotlib.cbook as cbook

    return I.load_rgb(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _astronaut():
    import skimage.data

    return skimage.data.astronaut()


def _rotate(img, degrees):
    """Counter-clockwise rotation about the centre, same size, black corners."""
    return np.asarray(Image.fromarray(img).rotate(degrees, resample=Image.Resampling.BILINEAR))


def _landmarks(row):
    return np.array([row[c] for c in FCOL.LANDMARK_COLUMNS], dtype=float).reshape(5, 2)


def _box(row):
    return np.array([row[c] for c in FCOL.BOX_COLUMNS], dtype=float)


def _eye_angle(landmarks):
    """Angle of the eye line in degrees (0 = level; image y points down)."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return np.degrees(np.arctan2(ry - ly, rx - lx))


@pytest.fixture(scope="module")
def photos():
    g, a = _grace(), _astronaut()
    small = np.asarray(Image.fromarray(a).resize((300, 300), Image.Resampling.BILINEAR))
    return {"grace": g, "astronaut": a, "grace_flip": g[:, ::-1].copy(), "astronaut_flip": a[:, ::-1].copy(),
            "astronaut_small": small, "grace_rot20": _rotate(g, 20)}


@pytest.fixture(scope="module")
def detected(photos):
    """One batched call over images of three sizes (batches of 4 at most)."""
    df = FD.detect_faces(list(photos.values()), batch_size=4, progress=False)
    return {name: row for name, row in zip(photos, df.to_dict("records"))}


def _gaussian_dots(shape, points, sigma):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    img = np.zeros(shape, dtype=np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.repeat((np.clip(img, 0, 1) * 255).round().astype(np.uint8)[:, :, None], 3, axis=2)


def _centroid(gray, x, y, radius):
    y0, y1 = int(y - radius), int(y + radius) + 1
    x0, x1 = int(x - radius), int(x + radius) + 1
    win = gray[y0:y1, x0:x1].astype(np.float64)
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    return (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()


# --------------------------------------------------------------------------- detection

def test_one_face_detected_in_each_photo(detected):
    for name in ("grace", "astronaut"):
        row = detected[name]
        assert row["status"] == "ok" and row["n_faces"] == 1, name
        assert row["score"] > 0.95
        x0, y0, x1, y1 = _box(row)
        lm = _landmarks(row)
        # The landmarks sit inside the box: eyes above nose above mouth.
        assert (lm[:, 0] > x0).all() and (lm[:, 0] < x1).all() and (lm[:, 1] > y0).all() and (lm[:, 1] < y1).all()
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    assert (detected["grace"]["width"], detected["grace"]["height"]) == (512, 600)


def test_batched_detection_equals_one_at_a_time(photos, detected):
    mtcnn = FD._mtcnn("cpu")
    for name, img in photos.items():
        boxes, probs, points = mtcnn.detect(img, landmarks=True)
        row = detected[name]
        assert row["n_faces"] == len(boxes), name
        np.testing.assert_allclose(_box(row), np.asarray(boxes[0], float), atol=1.0, err_msg=name)
        np.testing.assert_allclose(_landmarks(row), np.asarray(points[0], float), atol=1.0, err_msg=name)


def test_large_images_are_downscaled_and_mapped_back(photos, detected):
    big = np.asarray(Image.fromarray(photos["astronaut"]).resize((1024, 1024), Image.Resampling.BICUBIC))
    row = FD.detect_faces([big], max_side=512, progress=False).iloc[0]
    assert (row["width"], row["height"]) == (1024, 1024)
    np.testing.assert_allclose(_box(row), 2 * _box(detected["astronaut"]), atol=6)
    np.testing.assert_allclose(_landmarks(row), 2 * _landmarks(detected["astronaut"]), atol=6)


def test_several_faces_keep_the_largest(photos):
    a = photos["astronaut"]
    small = np.asarray(Image.fromarray(a).resize((256, 256), Image.Resampling.BILINEAR))
    canvas = np.zeros((512, 768, 3), dtype=np.uint8)
    canvas[:, :512] = a
    canvas[128:384, 512:] = small
    row = FD.detect_faces([canvas], progress=False).iloc[0]
    assert row["n_faces"] == 2
    assert row["x1"] < 512   # the full-size face on the left


def test_blank_image_has_no_face():
    rng = np.random.default_rng(0)
    row = FD.detect_faces([np.full((64, 80, 3), 128, np.uint8) + rng.integers(0, 3, (64, 80, 3), dtype=np.uint8)],
                         progress=False).iloc[0]
    assert row["n_faces"] == 0 and row["status"] == "no_face"
    assert np.isnan(_box(row)).all() and np.isnan(_landmarks(row)).all()


# --------------------------------------------------------------------------- loading

def test_load_rgb_converts_modes_and_orientation(tmp_path):
    gray = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    out = I.load_rgb(tmp_path / "gray.png")
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8 and (out[..., 0] == gray).all()

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    out = I.load_rgb(tmp_path / "alpha.png")
    assert (out[:4] == [200, 0, 0]).all() and (out[4:] == 255).all()

    Image.new("CMYK", (12, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    out = I.load_rgb(tmp_path / "cmyk.jpg")
    assert out.shape == (6, 12, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60

    Image.fromarray((np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)).save(tmp_path / "deep.png")
    out = I.load_rgb(tmp_path / "deep.png")
    assert out.shape == (8, 8, 3) and out.min() == 0 and out.max() == 255

    im = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = im.getexif()
    exif[0x0112] = 6   # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif)
    assert I.load_rgb(tmp_path / "rotated.jpg").shape == (40, 20, 3)
    assert I.image_size(tmp_path / "rotated.jpg") == (40, 20)


def test_load_rgb_errors_name_the_file(tmp_path, photos):
    Image.fromarray(photos["astronaut"]).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("not an image")
    for name in ("truncated.jpg", "notes.jpg", "missing.jpg"):
        with pytest.raises(I.ImageReadError, match=name):
            I.load_rgb(tmp_path / name)
    with pytest.raises(I.ImageReadError, match="decompression"):
        I.load_rgb(tmp_path / "full.jpg", max_pixels=1000)


def test_resolve_image_rejects_paths_leaving_the_root(tmp_path):
    assert I.resolve_image(tmp_path, "images/a.jpg") == tmp_path / "images" / "a.jpg"
    for bad in ("/etc/passwd", "../a.jpg", "images/../../a.jpg"):
        with pytest.raises(ValueError, match="relative"):
            I.resolve_image(tmp_path, bad)


# --------------------------------------------------------------------------- face cache

@pytest.fixture()
def data_root(tmp_path, photos):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    Image.fromarray(photos["grace"]).save(root / "images" / "grace.jpg", quality=95)
    Image.fromarray(photos["astronaut"]).save(root / "images" / "astronaut.png")
    data = (root / "images" / "grace.jpg").read_bytes()
    (root / "images" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "images" / "notes.jpg").write_text("not an image")
    Image.new("L", (48, 40), 90).save(root / "images" / "blank.png")
    return root


IMAGES = ["images/grace.jpg", "images/truncated.jpg", "images/astronaut.png", "images/notes.jpg",
          "images/blank.png"]


def test_face_cache_reports_and_survives_bad_files(tmp_path, data_root):
    out = tmp_path / "faces.csv"
    df, report = FC.build_face_cache(data_root, IMAGES, out, progress=False)
    assert df["image"].tolist() == IMAGES
    assert df["status"].tolist() == ["ok", "unreadable", "ok", "unreadable", "no_face"]
    assert report.counts == {"ok": 2, "zero_faces": 1, "several_faces": 0, "too_small": 0, "unreadable": 2}
    assert "truncated.jpg" in report.unreadable["images/truncated.jpg"]
    assert "images/blank.png" in report.summary() and "2 unreadable" in report.summary()
    assert (df.loc[df["status"] == "unreadable", "n_faces"] == 0).all()
    saved = FC.read_face_cache(out)
    assert list(saved.columns) == FCOL.CACHE_COLUMNS
    pd.testing.assert_frame_equal(saved, df, check_dtype=False)


def _tiny_and_strips(folder):
    """Images MTCNN cannot search as they are: 15x12 and 300x19 (shorter side
    under 20 px) and a 3000x40 strip (1024x14 once shrunk to max_side)."""
    rng = np.random.default_rng(0)
    names = {"images/tiny.png": (12, 15), "images/thin.png": (19, 300), "images/strip.png": (40, 3000)}
    for name, (h, w) in names.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return list(names)


def test_tiny_images_and_strips_are_counted_not_fatal(tmp_path, data_root):
    """Issue 15.1: one tiny image used to kill the whole build with
    ``torch.cat(): expected a non-empty list of Tensors``."""
    images = ["images/grace.jpg", *_tiny_and_strips(data_root), "images/astronaut.png"]
    out = tmp_path / "faces.csv"
    df, report = FC.build_face_cache(data_root, images, out, batch_size=4, progress=False)
    assert df["status"].tolist() == ["ok", "too_small", "too_small", "no_face", "ok"]
    assert df["width"].tolist()[1:4] == [15, 300, 3000] and (df["n_faces"][1:4] == 0).all()
    assert report.too_small == ["images/tiny.png", "images/thin.png"]
    assert report.counts["ok"] == 2 and report.counts["zero_faces"] == 1
    assert "images/tiny.png" in report.summary() and "too small" in report.summary()
    pd.testing.assert_frame_equal(FC.read_face_cache(out), df, check_dtype=False)
    # the same in one detect_faces call with the fast size rule; reasons name the file
    fast = FD.detect_faces([data_root / i for i in images], progress=False, min_face_frac=1 / 6)
    assert fast["status"].tolist() == df["status"].tolist()
    assert "tiny.png" in fast.attrs["errors"][str(data_root / "images/tiny.png")]
    crop, status = FA.crop_face(I.load_rgb(data_root / "images/tiny.png"), df.iloc[1], "aligned", 32)
    assert crop.shape == (32, 32, 3) and status == "no_face"


def test_detection_size_keeps_strips_searchable(photos):
    assert FD._target_size(40, 3000, 1024) == (20, 1500)      # not (14, 1024): an empty MTCNN pyramid
    assert FD._target_size(2048, 1024, 1024) == (1024, 512)
    assert FD.too_small((19, 300)) and FD.too_small((20, 20)) is None
    images = [np.zeros((12, 15, 3), np.uint8), photos["grace"], np.zeros((40, 3000, 3), np.uint8)]
    found = FD.detect_all_faces(images)
    assert found[0] == [] and found[2] == [] and len(found[1]) == 1


def test_face_cache_resumes_without_redetecting(tmp_path, data_root, monkeypatch):
    out = tmp_path / "faces.csv"
    df, _ = FC.build_face_cache(data_root, IMAGES[:3], out, progress=False)
    real = FD.detect_faces
    seen = []

    def counting(paths, **kw):
        seen.extend(str(p) for p in paths)
        return real(paths, **kw)

    monkeypatch.setattr(FC, "detect_faces", counting)
    df2, report = FC.build_face_cache(data_root, IMAGES, out, progress=False)
    # Only the new images and the earlier unreadable one are looked at again.
    assert sorted(seen) == sorted(str(data_root / i) for i in ["images/truncated.jpg", "images/notes.jpg",
                                                                "images/blank.png"])
    pd.testing.assert_frame_equal(df2.iloc[:3].reset_index(drop=True), df, check_dtype=False)
    assert report.counts["unreadable"] == 2


def test_face_cache_writes_in_chunks(tmp_path, data_root, monkeypatch):
    out = tmp_path / "faces.csv"
    calls = []
    real = FC.write_csv

    def spy(path, frame):
        calls.append(len(frame))
        real(path, frame)

    monkeypatch.setattr(FC, "write_csv", spy)
    FC.build_face_cache(data_root, IMAGES, out, chunk=2, progress=False)
    assert calls[:3] == [2, 4, 5]


def test_face_cache_from_ground_truth(tmp_path, data_root):
    gt = pd.DataFrame({c: [1.0, 2.0] for c in FCOL.FACE_COLUMNS})
    gt["image"] = ["images/a.jpg", "images/b.jpg"]
    gt["n_faces"] = [1, 0]
    gt.to_csv(data_root / "faces.csv", index=False)
    df, report = FC.build_face_cache(data_root, ["images/b.jpg", "images/a.jpg"], tmp_path / "f.csv",
                                    method="ground_truth")
    assert df["image"].tolist() == ["images/b.jpg", "images/a.jpg"]
    assert df["status"].tolist() == ["no_face", "ok"]
    assert report.counts["ok"] == 1 and report.counts["zero_faces"] == 1
    with pytest.raises(KeyError, match="images/c.jpg"):
        FC.build_face_cache(data_root, ["images/a.jpg", "images/c.jpg"], tmp_path / "f.csv", method="ground_truth")
    with pytest.raises(ValueError, match="more than once"):
        FC.build_face_cache(data_root, ["images/a.jpg", "images/a.jpg"], tmp_path / "f.csv", method="ground_truth")


# --------------------------------------------------------------------------- alignment and crops

def test_similarity_transform_recovers_a_known_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = np.radians(33), 1.7, np.array([12.0, -5.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    M = FA.similarity_transform(src, src @ R.T + t)
    np.testing.assert_allclose(M, np.hstack([R, t[:, None]]), atol=1e-9)
    mirrored = src * [-1, 1]
    M = FA.similarity_transform(mirrored, src)
    assert np.linalg.det(M[:, :2]) > 0   # never a reflection
    with pytest.raises(ValueError, match="coincide"):
        FA.similarity_transform(np.ones((5, 2)), src)


@pytest.mark.parametrize("scale", [1.7, 5.0])   # 5.0: the image is box-reduced before warping
def test_align_face_puts_landmarks_on_the_template(scale):
    size = 112
    angle = np.radians(30)
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (FA.ALIGN_TEMPLATE * size - size / 2) @ R.T + scale * size / 2 + 40
    side = int(scale * size + 80)
    img = _gaussian_dots((side, side), landmarks, sigma=1.5 * scale)
    crop = FA.align_face(img, landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    for x, y in FA.ALIGN_TEMPLATE * size:
        cx, cy = _centroid(crop[..., 0], x, y, radius=5)
        assert abs(cx - x) < 0.5 and abs(cy - y) < 0.5


def test_aligned_eyes_land_on_the_template(photos, detected):
    size = 112
    for name in ("grace", "astronaut", "grace_rot20"):
        lm = _landmarks(detected[name])
        moved = FA.apply_transform(FA.align_matrix(lm, size), lm)
        eye_error = np.linalg.norm(moved[:2] - FA.ALIGN_TEMPLATE[:2] * size, axis=1)
        assert eye_error.max() <= 3.0, (name, eye_error)


def test_box_crop_contains_the_detected_box(photos, detected):
    size = 112
    for name in ("grace", "astronaut"):
        box = _box(detected[name])
        corners = np.array([box[:2], box[2:]])
        mapped = FA.apply_transform(FA.box_matrix(box, size, 1.5), corners)
        margin = size * (1 - 1 / 1.5) / 2 - 1e-6
        assert (mapped >= margin).all() and (mapped <= size - margin).all()
        crop, status = FA.crop_face(photos[name], detected[name], "box1.5", size)
        assert status == "ok" and crop.shape == (size, size, 3)


def test_box_crop_centres_the_box_and_pads_black():
    img = _gaussian_dots((100, 120), [(20.0, 30.0)], sigma=2.0)
    crop = FA.box_crop(img, (10.0, 20.0, 30.0, 40.0), 60, scale=1.5)   # half the square is outside
    cx, cy = _centroid(crop[..., 0], 30, 30, radius=8)
    assert abs(cx - 30) < 0.3 and abs(cy - 30) < 0.3
    assert (crop[:4] == 0).all() and (crop[:, :4] == 0).all()


def test_box_crop_keeps_roll_aligned_crop_removes_it(photos, detected):
    img, row = photos["grace_rot20"], detected["grace_rot20"]
    assert abs(_eye_angle(_landmarks(row))) > 15
    size = 160
    box, _ = FA.crop_face(img, row, "box1.5", size)
    aligned, _ = FA.crop_face(img, row, "aligned", size)
    found = FD.detect_faces([box, aligned], progress=False)
    box_lm, aligned_lm = _landmarks(found.iloc[0]), _landmarks(found.iloc[1])
    assert abs(_eye_angle(box_lm)) > 15
    assert abs(_eye_angle(aligned_lm)) < 4
    eye_error = np.linalg.norm(aligned_lm[:2] - FA.ALIGN_TEMPLATE[:2] * size, axis=1)
    assert eye_error.max() < 6


def test_crop_face_fallbacks(photos, detected):
    img = photos["grace"]   # 600 x 512
    row = dict(detected["grace"])
    no_face = {**row, "n_faces": 0, **{c: np.nan for c in FCOL.BOX_COLUMNS + FCOL.LANDMARK_COLUMNS}}
    crop, status = FA.crop_face(img, no_face, "aligned", 64)
    assert status == "no_face"
    np.testing.assert_array_equal(crop, FA.box_crop(img, (0, 44, 512, 556), 64, scale=1.0))
    no_lm = {**row, **{c: np.nan for c in FCOL.LANDMARK_COLUMNS}}
    crop, status = FA.crop_face(img, no_lm, "aligned", 64)
    assert status == "no_landmarks"
    np.testing.assert_array_equal(crop, FA.box_crop(img, _box(row), 64, scale=1.0))
    crop, status = FA.crop_face(img, row, "box1.25", 64)
    np.testing.assert_array_equal(crop, FA.box_crop(img, _box(row), 64, scale=1.25))
    with pytest.raises(ValueError, match="crop style"):
        FA.crop_face(img, row, "tight", 64)


def test_min_face_rule_keeps_the_largest_face(photos, detected):
    """min_face_frac=1/6 (3x faster on CPU) finds the same face: boxes within
    10 % of the face size, eyes within 8 % of the inter-ocular distance; a
    blank image still goes through the 20 px fallback search."""
    blank = np.full((200, 200, 3), 128, np.uint8)
    df = FD.detect_faces(list(photos.values()) + [blank], batch_size=4, progress=False, min_face_frac=1 / 6)
    for name, row in zip(list(photos) + ["blank"], df.to_dict("records")):
        if name == "blank":
            assert row["n_faces"] == 0 and row["status"] == "no_face"
            continue
        ref = detected[name]
        assert row["n_faces"] >= 1, name
        size = ref["x1"] - ref["x0"]
        assert np.abs(_box(row) - _box(ref)).max() < 0.10 * size, name
        eyes = lambda r: np.array([[r["lm0_x"], r["lm0_y"]], [r["lm1_x"], r["lm1_y"]]])  # noqa: E731
        iod = np.linalg.norm(eyes(ref)[1] - eyes(ref)[0])
        assert np.linalg.norm(eyes(row) - eyes(ref), axis=1).max() < 0.08 * iod, name


def test_face_cache_checkpoints_cost_a_bounded_share_of_the_time(tmp_path, monkeypatch):
    """A million-image cache must not be rewritten after every chunk (O(N^2)):
    with a fast detector and a slow write, most chunks skip the checkpoint."""
    (tmp_path / "images").mkdir()
    names = [f"images/{i:04d}.jpg" for i in range(200)]
    for name in names:
        (tmp_path / name).touch()

    def instant(paths, **kw):
        out = pd.DataFrame([{"image": str(p), "width": 8, "height": 8, "n_faces": 0, "score": np.nan,
                             "status": "no_face"} for p in paths], columns=FCOL.CACHE_COLUMNS)
        out.attrs["errors"] = {}
        return out

    calls = []
    real = FC.write_csv

    def slow(path, frame):
        calls.append(len(frame))
        time.sleep(0.02)
        real(path, frame)

    monkeypatch.setattr(FC, "detect_faces", instant)
    monkeypatch.setattr(FC, "write_csv", slow)
    df, _ = FC.build_face_cache(tmp_path, names, tmp_path / "faces.csv", chunk=2, progress=False)
    assert len(df) == 200 and calls[0] == 2 and calls[-1] == 200
    assert len(calls) < 20          # 100 chunks, old code: 101 writes
