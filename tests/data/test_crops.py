"""Crop store (aulib.data.crops): round trip, resume after SIGKILL, workers,
bad files, parameter mismatch. No face detector: face rows are given."""
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aulib.data import crops as C
from aulib.data import images as I
from aulib.data.faces import align as FA
from aulib.data.faces import cache as FC
from aulib.data.faces import columns as FCOL

# The astronaut's face in skimage.data.astronaut() (512 x 512): box and landmarks.
ASTRONAUT_BOX = np.array([181.05, 62.16, 267.75, 172.05])
ASTRONAUT_LMS = np.array([[205.01, 101.73], [246.76, 103.71], [224.67, 128.96], [201.72, 139.25], [245.27, 141.86]])


def _face_row(image, scale, shift, n_faces=1):
    box = ASTRONAUT_BOX * scale + np.tile(shift, 2)
    lms = ASTRONAUT_LMS * scale + shift
    row = {"image": image, "width": 0, "height": 0, "n_faces": n_faces, "score": 0.99, "status": "ok"}
    row.update(zip(FCOL.BOX_COLUMNS, box))
    row.update(zip(FCOL.LANDMARK_COLUMNS, lms.reshape(-1)))
    return row


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Nine images (one without a face, one corrupt, one a text file), their face cache CSV."""
    import skimage.data

    root = tmp_path_factory.mktemp("data")
    (root / "images").mkdir()
    astronaut = skimage.data.astronaut()
    rows = []
    for k in range(9):
        side = 96 + 16 * k
        scale = side / 512
        img = np.asarray(Image.fromarray(astronaut).resize((side, side), Image.Resampling.BILINEAR))
        img = np.roll(img, 3 * k, axis=1)
        name = f"images/{k:02d}.{'png' if k % 2 else 'jpg'}"
        Image.fromarray(img).save(root / name)
        row = _face_row(name, scale, np.array([3.0 * k, 0.0]))
        row.update(width=side, height=side)
        rows.append(row)
    rows[4].update(n_faces=0, status="no_face", **{c: np.nan for c in FCOL.BOX_COLUMNS + FCOL.LANDMARK_COLUMNS})
    data = (root / rows[6]["image"]).read_bytes()
    (root / rows[6]["image"]).write_bytes(data[: len(data) // 2])          # truncated JPEG
    (root / rows[7]["image"]).write_text("this is not an image")            # not an image
    faces = pd.DataFrame(rows, columns=FCOL.CACHE_COLUMNS)
    faces_csv = root / "faces.csv"
    faces.to_csv(faces_csv, index=False)
    return root, faces_csv


def test_round_trip_equals_crop_face(tmp_path, dataset):
    root, faces_csv = dataset
    faces = FC.read_face_cache(faces_csv)
    for style in ("aligned", "box1.5"):
        store = C.build_crop_store(root, faces_csv, tmp_path / style, style, 40, chunk=4, progress=False)
        assert (store.style, store.size, len(store)) == (style, 40, 9)
        assert store.images.shape == (9, 40, 40, 3) and store.images.dtype == np.uint8
        assert store.status.tolist() == ["ok"] * 4 + ["no_face", "ok", "unreadable", "unreadable", "ok"]
        for k, row in enumerate(faces.to_dict("records")):
            if store.status[k] == "unreadable":
                assert not store.images[k].any()
                continue
            expected, status = FA.crop_face(I.load_rgb(root / row["image"]), row, style, 40)
            assert status == store.status[k]
            np.testing.assert_array_equal(store.images[k], expected)
        with pytest.raises(TypeError):          # read-only: no item assignment
            store.images[0] = 0


def test_rows_and_pickle(tmp_path, dataset):
    root, faces_csv = dataset
    images = ["images/03.png", "images/00.jpg", "images/08.jpg"]
    store = C.build_crop_store(root, faces_csv, tmp_path / "s", "box1.5", 24, images=images, progress=False)
    assert store.index["image"].tolist() == images
    np.testing.assert_array_equal(store.rows(["images/08.jpg", "images/03.png"]), [2, 0])
    assert store.rows([]).dtype == np.int64
    with pytest.raises(KeyError, match="images/05.png"):
        store.rows(["images/00.jpg", "images/05.png"])
    blob = pickle.dumps(store)
    assert len(blob) < 1000   # by path, not the pixels
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.images, store.images)


def _store_bytes(directory):
    return ((directory / "pixels.u8").read_bytes(), (directory / "index.csv").read_text(),
            (directory / "meta.yaml").read_text())


def test_resume_after_sigkill_matches_uninterrupted_build(tmp_path, dataset, monkeypatch):
    root, faces_csv = dataset
    killed = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from aulib.data import crops
        real, calls = crops._crop_rows, []
        def crop_then_die(task):
            calls.append(1)
            if len(calls) == 3:          # two chunks committed, killed inside the third
                os.kill(os.getpid(), signal.SIGKILL)
            return real(task)
        crops._crop_rows = crop_then_die
        crops.build_crop_store({str(root)!r}, {str(faces_csv)!r}, {str(killed)!r}, "aligned", 32,
                               chunk=2, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert C.rows_done(killed) == 4
    with pytest.raises(RuntimeError, match="rerun build_crop_store"):
        C.CropStore(killed)

    seen = []
    real = C._crop_rows
    monkeypatch.setattr(C, "_crop_rows", lambda task: (seen.extend(task[5]), real(task))[1])
    store = C.build_crop_store(root, faces_csv, killed, "aligned", 32, chunk=2, progress=False)
    assert sorted(seen) == list(range(4, 9))   # only the rows not done
    assert len(store) == 9

    monkeypatch.setattr(C, "_crop_rows", real)
    whole = C.build_crop_store(root, faces_csv, tmp_path / "whole", "aligned", 32, chunk=2, progress=False)
    assert _store_bytes(killed) == _store_bytes(whole.dir)


def test_worker_processes_give_the_same_bytes(tmp_path, dataset):
    root, faces_csv = dataset
    serial = C.build_crop_store(root, faces_csv, tmp_path / "serial", "box1.5", 32, chunk=3, progress=False)
    pooled = C.build_crop_store(root, faces_csv, tmp_path / "pooled", "box1.5", 32, chunk=3, num_workers=2,
                                progress=False)
    assert _store_bytes(serial.dir) == _store_bytes(pooled.dir)


def test_finished_store_is_reopened_not_rebuilt(tmp_path, dataset, monkeypatch):
    root, faces_csv = dataset
    C.build_crop_store(root, faces_csv, tmp_path / "s", "aligned", 16, progress=False)

    def fail(task):
        raise AssertionError("a finished store must not be cropped again")

    monkeypatch.setattr(C, "_crop_rows", fail)
    assert len(C.build_crop_store(root, faces_csv, tmp_path / "s", "aligned", 16, progress=False)) == 9


def test_other_parameters_in_the_same_folder_are_refused(tmp_path, dataset):
    root, faces_csv = dataset
    out = tmp_path / "s"
    C.build_crop_store(root, faces_csv, out, "aligned", 16, progress=False)
    with pytest.raises(ValueError, match="overwrite=True"):
        C.build_crop_store(root, faces_csv, out, "aligned", 24, progress=False)
    with pytest.raises(ValueError, match="style"):
        C.build_crop_store(root, faces_csv, out, "box1.5", 16, progress=False)
    with pytest.raises(ValueError, match="images_sha1"):
        C.build_crop_store(root, faces_csv, out, "aligned", 16, images=["images/00.jpg"], progress=False)
    moved = FC.read_face_cache(faces_csv)
    moved["x0"] += 5
    with pytest.raises(ValueError, match="faces_sha1"):
        C.build_crop_store(root, moved, out, "aligned", 16, progress=False)
    store = C.build_crop_store(root, faces_csv, out, "aligned", 24, overwrite=True, progress=False)
    assert store.size == 24 and store.images.shape == (9, 24, 24, 3)


def test_bad_arguments(tmp_path, dataset):
    root, faces_csv = dataset
    with pytest.raises(KeyError, match="images/99.jpg"):
        C.build_crop_store(root, faces_csv, tmp_path / "s", "aligned", 16, images=["images/99.jpg"])
    with pytest.raises(ValueError, match="crop style"):
        C.build_crop_store(root, faces_csv, tmp_path / "s", "square", 16)
    with pytest.raises(FileNotFoundError, match="build_crop_store"):
        C.CropStore(tmp_path / "nothing")


# --------------------------------------------------------------------------- codec jpeg

def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_jpeg_store_round_trip_is_close_to_raw_and_smaller(tmp_path, dataset):
    root, faces_csv = dataset
    raw = C.build_crop_store(root, faces_csv, tmp_path / "raw", "aligned", 64, chunk=4, progress=False)
    jpg = C.build_crop_store(root, faces_csv, tmp_path / "jpg", "aligned", 64, chunk=4, progress=False,
                             codec="jpeg", quality=90)
    assert (jpg.codec, raw.codec) == ("jpeg", "raw") and jpg.status.tolist() == raw.status.tolist()
    assert jpg.images.shape == raw.images.shape and jpg.images.dtype == np.uint8
    every = jpg.images[np.arange(9)]
    assert every.shape == (9, 64, 64, 3) and every.dtype == np.uint8
    np.testing.assert_array_equal(jpg.images[[5, 0, 5]], every[[5, 0, 5]])   # any order, repeats
    np.testing.assert_array_equal(jpg.images[3], every[3])
    for k in range(9):
        if raw.status[k] == "unreadable":
            assert every[k].max() <= 2        # black stays (almost) black
        else:
            assert _psnr(every[k], raw.images[k]) > 33, k
    assert (tmp_path / "jpg" / "pixels.jpg").stat().st_size < (tmp_path / "raw" / "pixels.u8").stat().st_size / 5
    assert not (tmp_path / "jpg" / "journal.bin").exists()
    again = pickle.loads(pickle.dumps(jpg))
    assert len(pickle.dumps(jpg.images)) < 1000      # by path: workers reopen the file
    np.testing.assert_array_equal(again.images[np.arange(9)], every)


def test_jpeg_resume_after_sigkill_and_torn_tail(tmp_path, dataset):
    root, faces_csv = dataset
    killed = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from aulib.data import crops
        real, calls = crops._append, []
        def append_then_die(path, data):
            real(path, data)
            calls.append(path.name)
            if calls.count("journal.bin") == 2:    # two chunks committed, the third never starts
                os.kill(os.getpid(), signal.SIGKILL)
        crops._append = append_then_die
        crops.build_crop_store({str(root)!r}, {str(faces_csv)!r}, {str(killed)!r}, "aligned", 32,
                               chunk=2, progress=False, codec="jpeg")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert C.rows_done(killed) == 4
    with pytest.raises(RuntimeError, match="4 of 9 rows done"):
        C.CropStore(killed)
    with open(killed / "pixels.jpg", "ab") as f:       # a chunk appended but never journalled
        f.write(b"\xff" * 1000)
    with open(killed / "journal.bin", "ab") as f:      # and a torn journal record
        f.write(b"\x01" * 7)

    seen = []
    real = C._crop_rows
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(C, "_crop_rows", lambda task: (seen.extend(task[5]), real(task))[1])
        store = C.build_crop_store(root, faces_csv, killed, "aligned", 32, chunk=2, progress=False, codec="jpeg")
    assert sorted(seen) == list(range(4, 9))
    whole = C.build_crop_store(root, faces_csv, tmp_path / "whole", "aligned", 32, chunk=2, progress=False,
                               codec="jpeg")
    np.testing.assert_array_equal(store.images[np.arange(9)], whole.images[np.arange(9)])
    assert store.status.tolist() == whole.status.tolist()
    assert (killed / "pixels.jpg").stat().st_size == (tmp_path / "whole" / "pixels.jpg").stat().st_size


def test_jpeg_workers_give_the_same_pixels(tmp_path, dataset):
    root, faces_csv = dataset
    serial = C.build_crop_store(root, faces_csv, tmp_path / "a", "box1.5", 32, chunk=3, codec="jpeg", progress=False)
    pooled = C.build_crop_store(root, faces_csv, tmp_path / "b", "box1.5", 32, chunk=3, codec="jpeg",
                                num_workers=2, progress=False)
    np.testing.assert_array_equal(serial.images[np.arange(9)], pooled.images[np.arange(9)])


def test_store_of_another_codec_or_quality_is_refused(tmp_path, dataset):
    root, faces_csv = dataset
    C.build_crop_store(root, faces_csv, tmp_path / "r", "aligned", 16, progress=False)
    with pytest.raises(ValueError, match="codec"):
        C.build_crop_store(root, faces_csv, tmp_path / "r", "aligned", 16, codec="jpeg", progress=False)
    C.build_crop_store(root, faces_csv, tmp_path / "j", "aligned", 16, codec="jpeg", quality=90, progress=False)
    with pytest.raises(ValueError, match="quality"):
        C.build_crop_store(root, faces_csv, tmp_path / "j", "aligned", 16, codec="jpeg", quality=80, progress=False)
    with pytest.raises(ValueError, match="codec"):
        C.build_crop_store(root, faces_csv, tmp_path / "j", "aligned", 16, progress=False)
    with pytest.raises(ValueError, match="unknown crop-store codec"):
        C.build_crop_store(root, faces_csv, tmp_path / "x", "aligned", 16, codec="webp")
    with pytest.raises(ValueError, match="quality must be"):
        C.build_crop_store(root, faces_csv, tmp_path / "x", "aligned", 16, codec="jpeg", quality=0)
    store = C.build_crop_store(root, faces_csv, tmp_path / "j", "aligned", 16, codec="jpeg", quality=80,
                               overwrite=True, progress=False)
    assert store.meta["quality"] == 80 and not (tmp_path / "j" / "pixels.u8").exists()
