"""BP4D, DISFA and Aff-Wild2 read as they ship (tests/helpers/native_layouts.py writes them)."""
import numpy as np
import pytest

from aulib.aus import AU_NAMES
from aulib.data import sources as S
from aulib.data.images import frame_ref, image_size, load_rgb, open_video, parse_frame_ref, resolve_image
from aulib.workspace import Workspace

from native_layouts import write_affwild2, write_bp4d, write_disfa, write_video


def ws_for(tmp_path):
    return Workspace.for_profile("ci", root=tmp_path / "ws")


def assert_table(ws, split, written):
    """The workspace table holds exactly the frames the layout labels, with
    their labels for every catalog AU, and subjects.csv their subjects."""
    table = S.load_labels(ws, split).set_index("image")
    want = written.labels[split]
    assert sorted(table.index) == sorted(want)
    for image, codes in want.items():
        for au, code in codes.items():
            if au in AU_NAMES:
                assert table.loc[image, f"AU{au}"] == code, (image, au)
    subjects = S.load_subjects(ws)
    assert {i: subjects[i] for i in want} == {i: written.subjects[i] for i in want}


def test_bp4d_native_layout(tmp_path):
    written = write_bp4d(tmp_path / "BP4D", frames=6, tasks=("T1",))
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "bp4d", written.root)
    assert list(reports) == ["optimization"]
    assert_table(ws, "optimization", written)
    rep = reports["optimization"]
    assert rep.counts == written.counts["optimization"]
    assert "counted: 6 labels without a frame, 6 frames without labels" in rep.summary()
    table = S.load_labels(ws, "optimization")
    assert (table["AU2"] == -1).any()       # the 9s are unknown
    if 7 not in AU_NAMES:                   # before the FACS catalog: AU7/14/23 noted, not read
        assert any("[7, 14, 23]" in n for n in rep.notes)
    # zero-padded and unpadded frame names are both found
    assert any(i.endswith("/0240.jpg") for i in table["image"]) and any(i.endswith("/240.jpg") for i in table["image"])


def test_bp4d_bad_value_is_named(tmp_path):
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001", "M011"), frames=4, tasks=("T1",))
    path = written.root / "AUCoding" / "AU_OCC" / "M011_T1.csv"
    lines = path.read_text().splitlines()
    fields = lines[2].split(",")
    fields[3] = "7"
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    ws = ws_for(tmp_path)
    with pytest.raises(ValueError, match=r"M011_T1\.csv: line 3, column '4': bad label value \(expected 0, 1 or 9"):
        S.prepare_labels(ws, "bp4d", written.root)
    reports = S.prepare_labels(ws, "bp4d", written.root, on_error="skip")
    p = reports["optimization"].problems
    assert p[["line", "column", "value"]].values.tolist() == [[3, "4", "7"]]
    with pytest.raises(ValueError, match=r"unknown label setting\(s\) \['frame_dir'\] for dataset 'bp4d'"):
        S.prepare_labels(ws, "bp4d", written.root, settings={"frame_dir": "x"})
    with pytest.raises(ValueError, match=r"read from its own layout"):
        S.prepare_labels(ws, "bp4d", written.root, optimization="x.csv")


def test_disfa_native_layout_from_videos(tmp_path):
    written = write_disfa(tmp_path / "DISFA", frames=6)
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "disfa", written.root)
    assert_table(ws, "optimization", written)
    assert reports["optimization"].counts == written.counts["optimization"] == \
        {"labels without a frame": 6, "frames without labels": 6}
    table = S.load_labels(ws, "optimization")
    assert all(parse_frame_ref(i) for i in table["image"])
    # the threshold is a setting: at 1, intensity 1 counts as present
    S.prepare_labels(ws, "disfa", written.root, settings={"threshold": 1})
    assert (S.load_labels(ws, "optimization")["AU1"] >= table["AU1"]).all()
    assert (S.load_labels(ws, "optimization")["AU1"] > table["AU1"]).any()


def test_disfa_label_line_k_is_video_frame_k_minus_1(tmp_path):
    """Frames numbered visibly (grey level 8 * frame index); the image key of
    label line k (frame number k, 1-based) decodes to the video's frame k - 1,
    read on sequentially or after a seek."""
    root = tmp_path / "DISFA"
    n = 24
    frames = [np.full((64, 80, 3), 8 * k, np.uint8) for k in range(n)]
    write_video(root / "Video_LeftCamera" / "LeftVideoSN002_comp.avi", frames)
    folder = root / "ActionUnit_Labels" / "SN002"
    folder.mkdir(parents=True)
    for au in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26):
        (folder / f"SN002_au{au}.txt").write_text("".join(f"{k},{k % 6}\n" for k in range(1, n + 1)))
    ws = ws_for(tmp_path)
    S.prepare_labels(ws, "disfa", root)
    table = S.load_labels(ws, "optimization")
    assert len(table) == n
    for line in [1, 2, 3, 10, 4, 24, 5]:          # in order, then back and forth (seeks)
        key = table["image"].iloc[line - 1]
        assert key == frame_ref("Video_LeftCamera/LeftVideoSN002_comp.avi", line - 1)
        img = load_rgb(resolve_image(root, key))
        assert img.shape == (64, 80, 3) and image_size(resolve_image(root, key)) == (64, 80)
        assert abs(float(img.mean()) - 8 * (line - 1)) < 3, (line, img.mean())
    assert open_video(root / "Video_LeftCamera" / "LeftVideoSN002_comp.avi").seeks >= 2
    with pytest.raises(ValueError, match=r"frame 24 \(0-based\) is past the end"):
        load_rgb(resolve_image(root, frame_ref("Video_LeftCamera/LeftVideoSN002_comp.avi", 24)))


def test_affwild2_native_layout(tmp_path):
    written = write_affwild2(tmp_path / "AffWild2", frames=5)
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "affwild2", written.root)
    assert set(reports) == {"optimization", "validation"}
    for split in reports:
        assert_table(ws, split, written)
        assert reports[split].counts == written.counts[split]
    subjects = set(S.load_subjects(ws))
    assert "video2" in subjects and "video2_left" not in subjects
    # the first ABAW's AU_Set naming
    base = written.root / "annotations"
    (base / "AU_Detection_Challenge").rename(base / "AU_Set")
    (base / "AU_Set" / "Train_Set").rename(base / "AU_Set" / "Training_Set")
    S.prepare_labels(ws, "affwild2", written.root)
    assert len(S.load_labels(ws, "optimization")) == written.n("optimization")


def test_affwild2_bad_line_named(tmp_path):
    written = write_affwild2(tmp_path / "AffWild2", train=("video1",), validation=("video3",), frames=5)
    path = written.root / "annotations" / "AU_Detection_Challenge" / "Train_Set" / "video1.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("0", "2", 1) if "0" in lines[4] else "2" + lines[4][1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"video1\.txt: line 5, column .*bad label value \(expected 0, 1 or -1"):
        S.prepare_labels(ws_for(tmp_path), "affwild2", written.root)


def test_disfa_video_frames_through_mtcnn_and_crop_store(tmp_path):
    """Native DISFA -> prepare_labels -> face cache (MTCNN) -> crop store, the
    crops read straight from the AVI."""
    from aulib.data.crops import CropStore, build_crop_store
    from aulib.data.faces.cache import build_face_cache
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013"), frames=4, extra=1)
    ws = ws_for(tmp_path)
    S.prepare_labels(ws, "disfa", written.root)
    images = S.load_labels(ws, "optimization")["image"].tolist()
    faces, report = build_face_cache(written.root, images, tmp_path / "faces.csv", progress=False)
    assert report.counts["ok"] + report.counts["several_faces"] >= len(images) - 1, report.summary()
    store = build_crop_store(written.root, faces, tmp_path / "crops", "aligned", 32, images=images, progress=False)
    assert isinstance(store, CropStore) and len(store) == len(images)
    assert (store.status != "unreadable").all()
    crops = np.asarray(store.images[:len(images)])
    assert crops.reshape(len(images), -1).std(axis=1).min() > 5     # real faces, not black fallbacks


@pytest.mark.parametrize("dataset,protocol,writer", [("bp4d", "bp4d_3fold", write_bp4d),
                                                     ("disfa", "disfa_3fold", write_disfa)])
def test_written_layouts_run_every_published_fold(tmp_path, dataset, protocol, writer):
    """The test-side layouts use subjects of the published lists: every fold
    has test and training subjects, each part two of them."""
    from aulib.data.protocols import fold_rows, get_protocol
    kwargs = {"tasks": ("T1",), "frames": 2, "missing": 0, "unlabelled": 0} if dataset == "bp4d" else \
        {"frames": 2, "extra": 0}
    written = writer(tmp_path / dataset, **kwargs)
    ws = ws_for(tmp_path)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        S.prepare_labels(ws, dataset, written.root)
    subjects = S.load_subjects(ws)
    images = S.load_labels(ws, "optimization")["image"]
    p = get_protocol(protocol)
    for fold in range(1, p.n_folds + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # most listed subjects are absent at test size
            test, train = fold_rows(p, fold, subjects[images].to_numpy())
        assert len(set(subjects[images][test])) == 2 and len(set(subjects[images][train])) == 4
        assert not (test & train).any() and (test | train).all()


@pytest.mark.parametrize("page,writer,prefix", [("bp4d", write_bp4d, "/data/BP4D/"), ("disfa", write_disfa, "/data/DISFA/"),
                                                ("affwild2", write_affwild2, "/data/AffWild2/")])
def test_data_set_page_layout_is_what_the_writers_write(tmp_path, page, writer, prefix):
    """Each data-set page's tree names files the test-side writer of that
    layout writes, and its command runs the page's profile on that root."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / f"{page}.md").read_text()
    block = re.search(r"Put them\s+under one data root:\n\s*```\n(.*?)```", text, re.S).group(1)
    kwargs = {"frames": 2, "tasks": ("T1",), "missing": 0, "unlabelled": 0} if page == "bp4d" else \
        {"frames": 2, "extra": 0} if page == "disfa" else {"frames": 3, "missing": 0, "unlabelled": 0}
    written = writer(tmp_path / page, **kwargs)
    for line in block.strip().splitlines():
        rel = line.split()[0].replace(prefix, "")
        pattern = re.sub(r"<[^>]+>", "*", rel)
        pattern = re.sub(r"\d{3,}(?=\.jpg)", "*", pattern)           # any frame number
        pattern = re.sub(r"SN\d{3}", "SN*", re.sub(r"[FM]\d{3}", "*", pattern))
        assert list(written.root.glob(pattern)), f"docs/{page}.md names {rel}; the writer writes no such file"
    assert f"python -m aulib.pipeline --profile {page} --data-root {prefix.rstrip('/')}" in text


def test_disfa_extracted_frames_setting(tmp_path):
    """images: frames reads <frames>/<SN>/<f-1>.png (0-based, padded or not)."""
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013"), frames=3, extra=0)
    root = written.root
    for sn, pad in (("SN002", False), ("SN013", True)):
        folder = root / "frames" / sn
        folder.mkdir(parents=True)
        for k in range(3 if sn == "SN002" else 2):               # SN013's last frame not extracted
            (folder / (f"{k:04d}.png" if pad else f"{k}.png")).write_bytes(b"x")
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "disfa", root, settings={"images": "frames", "frames": "frames"})
    table = S.load_labels(ws, "optimization")
    assert sorted(table["image"]) == ["frames/SN002/0.png", "frames/SN002/1.png", "frames/SN002/2.png",
                                      "frames/SN013/0000.png", "frames/SN013/0001.png"]
    assert reports["optimization"].counts["labels without a frame"] == 1
    by_image = table.set_index("image")
    want = written.labels["optimization"]
    assert by_image.loc["frames/SN013/0001.png", "AU12"] == \
        want["Video_LeftCamera/LeftVideoSN013_comp.avi#1"][12]


def test_step_fingerprint_inputs_are_the_native_files(tmp_path):
    """01_data reruns when a native label file or a frame folder changes:
    the fingerprint's inputs are the data set's own files."""
    from aulib.pipeline.fingerprint import input_files
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001",), tasks=("T1",), frames=2, missing=0, unlabelled=0)
    got = input_files({"dataset": "bp4d", "data_root": str(written.root)})
    assert written.root / "AUCoding" / "AU_OCC" / "F001_T1.csv" in got and written.root / "img" in got
    got = input_files({"dataset": "bp4d", "data_root": str(written.root), "label_settings": {"frames": "other"}})
    assert written.root / "img" not in got
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002",), frames=2, extra=0)
    got = input_files({"dataset": "disfa", "data_root": str(written.root)})
    assert written.root / "ActionUnit_Labels" / "SN002" / "SN002_au26.txt" in got
    assert written.root / "Video_LeftCamera" in got


def test_native_frames_linked_out_of_the_root_are_not_frames(tmp_path):
    """A frame (BP4D) or video (DISFA) that is a link to outside the data root
    is not read: its labels are counted as labels without a frame."""
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001",), tasks=("T1",), frames=3, missing=0, unlabelled=0)
    frame = written.root / "img" / "F001" / "T1" / "240.jpg"
    outside = tmp_path / "outside.jpg"
    frame.rename(outside)
    frame.symlink_to(outside)
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "bp4d", written.root)
    assert "img/F001/T1/240.jpg" not in set(S.load_labels(ws, "optimization")["image"])
    assert reports["optimization"].counts["labels without a frame"] == 1
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013"), frames=2, extra=0)
    video = written.root / "Video_LeftCamera" / "LeftVideoSN013_comp.avi"
    video.rename(tmp_path / "v.avi")
    video.symlink_to(tmp_path / "v.avi")
    reports = S.prepare_labels(ws, "disfa", written.root)
    assert set(S.load_subjects(ws)) == {"SN002"}
    assert reports["optimization"].counts["labels without a frame"] == 2
    assert any("outside the data root" in n for n in reports["optimization"].notes)
