"""Faults of native layouts and data roots, as a BP4D / DISFA / Aff-Wild2 user
meets them: repeated frames, folders outside the naming, folder links out of
the data root, the other DISFA camera, truncated videos, wrong and unreadable
data roots, refused profiles, ``--only`` of the last step
(tests/helpers/native_layouts.py writes the layouts; about 10 s in all)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aulib.data import sources as S
from aulib.data.images import load_rgb, resolve_image
from aulib.pipeline import fingerprint as F
from aulib.workspace import Workspace

from native_layouts import write_affwild2, write_bp4d, write_disfa

REPO = Path(__file__).resolve().parents[2]


def ws_for(tmp_path):
    return Workspace.for_profile("ci", root=tmp_path / "ws")


def notes_of(report) -> str:
    return "\n".join(report.notes)


# ------------------------------------------------------------------ repeated frames
def _repeat_frame(written, name="F001_T1.csv"):
    """Append a line repeating the first frame number of ``name`` with other labels; returns its line number."""
    path = written.root / "AUCoding" / "AU_OCC" / name
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[1:] = ["1" if f == "0" else "0" for f in fields[1:]]
    lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return len(lines), fields[0]


def test_bp4d_frame_listed_twice_is_named_by_file_and_line(tmp_path):
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001", "M007"), tasks=("T1",), frames=4, missing=0,
                         unlabelled=0)
    line, frame = _repeat_frame(written)
    ws = ws_for(tmp_path)
    with pytest.raises(ValueError, match=rf"F001_T1\.csv: line {line}, column '0'.*frame listed twice"):
        S.prepare_labels(ws, "bp4d", written.root)
    reports = S.prepare_labels(ws, "bp4d", written.root, on_error="skip")
    problems = reports["optimization"].problems
    assert problems[["line", "column", "value"]].values.tolist() == [[line, "0", frame]]
    assert problems["file"].iloc[0].endswith("F001_T1.csv")
    assert "frame listed twice" in reports["optimization"].summary()
    table = S.load_labels(ws, "optimization").set_index("image")
    key = f"img/F001/T1/{frame}.jpg"
    assert table.index.is_unique and key in table.index
    for au, code in written.labels["optimization"][key].items():     # the first line's labels are kept
        if f"AU{au}" in table.columns:
            assert table.loc[key, f"AU{au}"] == code


def _run_cells(nb: Path, values: dict, upto: int) -> dict:
    """Execute the first ``upto`` code cells of a notebook in one namespace,
    the parameters cell's values replaced by ``values`` (as papermill does)."""
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    ns: dict = {}
    exec("".join(cells[0]["source"]), ns)
    ns.update(values)
    for cell in cells[1:upto]:
        exec("".join(cell["source"]), ns)
    return ns


def test_on_error_skip_is_a_01_data_setting_a_profile_sets(tmp_path):
    """docs/bp4d.md's ``on_error: skip``: a profile's common section reaches
    notebook 01_data's reader, which then keeps the first of a repeated frame."""
    from aulib.pipeline.profile import load_profile, plan
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001", "M007"), tasks=("T1",), frames=4, missing=0,
                         unlabelled=0)
    line, _ = _repeat_frame(written)
    profile = tmp_path / "mine.yaml"
    profile.write_text(f"profile: mine\nextends: bp4d\ncommon: {{on_error: skip, data_root: {written.root}}}\n")
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    steps = plan(load_profile(profile), ws, {})
    assert [p["on_error"] for s, _, p in steps if s.stem == "01_data"] == ["skip"]
    ns = _run_cells(REPO / "notebooks" / "01_data.ipynb", {"profile": str(profile), "workspace": str(ws.root)}, 3)
    assert ns["reports"]["optimization"].problems["line"].tolist() == [line]
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: bad\nextends: bp4d\ncommon: {on_error: ignore}\n")
    with pytest.raises(ValueError, match=r"on_error"):
        load_profile(bad)


# ------------------------------------------------------------------ what a reader passes over
def test_disfa_subject_folders_outside_the_naming_are_reported(tmp_path):
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013", "SN018"), frames=3, extra=0)
    labels = written.root / "ActionUnit_Labels"
    (labels / "SN013").rename(labels / "SN10")
    (labels / "SN018").rename(labels / "sn018")
    (labels / "SN002" / "SN002_au3.txt").write_text("1,0\n")
    (labels / "README.txt").write_text("x")
    reports = S.prepare_labels(ws_for(tmp_path), "disfa", written.root)
    notes = notes_of(reports["optimization"])
    assert "ignored 3 entries of ActionUnit_Labels that are no subject folder" in notes
    assert "README.txt, SN10, sn018" in notes
    assert "SN002/SN002_au3.txt" in notes
    assert "LeftVideoSN013_comp.avi, LeftVideoSN018_comp.avi" in notes   # videos of no labelled subject
    shutil.rmtree(labels / "SN002")
    with pytest.raises(FileNotFoundError, match=r"no DISFA subject folders.*SN10, sn018"):
        S.prepare_labels(ws_for(tmp_path), "disfa", written.root)


def test_bp4d_and_affwild2_entries_outside_the_naming_are_reported(tmp_path):
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001",), tasks=("T1",), frames=3, missing=0, unlabelled=0)
    (written.root / "AUCoding" / "AU_OCC" / "README.txt").write_text("x")
    shutil.copytree(written.root / "img" / "F001" / "T1", written.root / "img" / "F001" / "T8")
    (written.root / "img" / "F001" / "T1" / "Thumbs.db").write_bytes(b"x")
    notes = notes_of(S.prepare_labels(ws_for(tmp_path), "bp4d", written.root)["optimization"])
    assert "ignored 1 entries of AUCoding/AU_OCC that are not <Subject>_<Task>.csv label files: README.txt" in notes
    assert "without a label file <Subject>_<Task>.csv: F001/T8" in notes
    assert "not named <number>.jpg|jpeg|png|bmp: img/F001/T1/Thumbs.db" in notes
    written = write_affwild2(tmp_path / "AffWild2", train=("video1",), validation=("video3",), frames=5)
    shutil.copytree(written.root / "cropped_aligned" / "video1", written.root / "cropped_aligned" / "video99")
    (written.root / "annotations" / "AU_Detection_Challenge" / "Train_Set" / "notes.md").write_text("x")
    reports = S.prepare_labels(ws_for(tmp_path), "affwild2", written.root)
    notes = notes_of(reports["optimization"])
    assert "frame folders of cropped_aligned without an AU annotation file" in notes and "video99" in notes
    assert "that are no <video>.txt annotation file: notes.md" in notes


# ------------------------------------------------------------------ folder links
def test_folders_linked_out_of_the_data_root_are_refused(tmp_path):
    """A frame folder (BP4D), a video folder (DISFA) or an image folder (a
    generic CSV) that is a link out of the data root is not read, as a file link is not."""
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001", "M007"), tasks=("T1",), frames=3, missing=0,
                         unlabelled=0)
    task = written.root / "img" / "M007" / "T1"
    task.rename(tmp_path / "elsewhere")
    task.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "bp4d", written.root)
    assert set(S.load_subjects(ws)) == {"F001"}
    assert reports["optimization"].counts["labels without a frame"] == 3
    assert "frame folder(s) linked outside the data root" in notes_of(reports["optimization"])
    inside = written.root / "img" / "F001" / "T2"       # a link inside the root is followed
    inside.symlink_to(written.root / "img" / "F001" / "T1", target_is_directory=True)
    shutil.copy(written.root / "AUCoding" / "AU_OCC" / "F001_T1.csv", written.root / "AUCoding" / "AU_OCC" / "F001_T2.csv")
    S.prepare_labels(ws, "bp4d", written.root)
    assert (S.load_labels(ws, "optimization")["image"].str.startswith("img/F001/T2/")).sum() == 3

    written = write_disfa(tmp_path / "DISFA", subjects=("SN002",), frames=2, extra=0)
    videos = written.root / "Video_LeftCamera"
    videos.rename(tmp_path / "videos")
    videos.symlink_to(tmp_path / "videos", target_is_directory=True)
    with pytest.raises(FileNotFoundError, match=r"its folder Video_LeftCamera is a symbolic link to .*outside the data root"):
        S.prepare_labels(ws, "disfa", written.root)

    root = tmp_path / "own"
    (root / "faces").mkdir(parents=True)
    frame = sorted((tmp_path / "elsewhere").glob("*.jpg"))[0]
    shutil.copy(frame, root / "faces" / "a.jpg")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "labels.csv").write_text(f"image,AU1\nfaces/a.jpg,1\nlinked/{frame.name},0\n")
    reports = S.prepare_labels(ws, "csv", root, labels_csv="labels.csv")
    assert S.load_labels(ws, "optimization")["image"].tolist() == ["faces/a.jpg"]
    assert reports["optimization"].skipped == 1


# ------------------------------------------------------------------ DISFA camera
def test_disfa_right_camera_setting(tmp_path):
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013"), frames=3, extra=0, camera="right",
                          videos="Videos_RightCamera")
    ws = ws_for(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"LeftVideo<SN>_comp\.avi.*camera: left\|right"):
        S.prepare_labels(ws, "disfa", written.root)
    S.prepare_labels(ws, "disfa", written.root, settings={"camera": "right"})
    table = S.load_labels(ws, "optimization")
    assert sorted(table["image"]) == sorted(written.labels["optimization"])
    assert table["image"].str.startswith("Videos_RightCamera/RightVideoSN").all()
    with pytest.raises(ValueError, match=r"camera='top'.*'left'.*'right'"):
        S.prepare_labels(ws, "disfa", written.root, settings={"camera": "top"})


# ------------------------------------------------------------------ truncated videos, unreadable rows
def test_truncated_video_frames_past_the_damage_are_labels_without_a_frame(tmp_path):
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002", "SN013"), frames=16, extra=0)
    video = written.root / "Video_LeftCamera" / "LeftVideoSN013_comp.avi"
    os.truncate(video, video.stat().st_size // 2)
    ws = ws_for(tmp_path)
    reports = S.prepare_labels(ws, "disfa", written.root)
    rep = reports["optimization"]
    assert "its header counts 16 frames but only the first" in notes_of(rep)
    assert 0 < rep.counts["labels without a frame"] < 16
    for image in S.load_labels(ws, "optimization")["image"]:        # every kept frame decodes
        load_rgb(resolve_image(written.root, image))


def test_unreadable_images_are_in_no_split(tmp_path):
    """Rows the face cache or a crop store marks unreadable (black crops) are
    neither trained on nor scored: no split holds them, left_out.csv lists them."""
    from aulib.data.splits import LEFT_OUT, left_out_summary, make_splits
    written = write_bp4d(tmp_path / "BP4D", tasks=("T1",), frames=4, missing=0, unlabelled=0)
    ws = ws_for(tmp_path)
    S.prepare_labels(ws, "bp4d", written.root)
    images = S.load_labels(ws, "optimization")["image"].tolist()
    bad = [images[0], images[9], images[-1]]
    store = ws.crops("aligned", 32)
    store.mkdir(parents=True)
    pd.DataFrame({"row": range(len(images)), "image": images, "crc32": 0,
                  "status": ["unreadable" if i in bad[:2] else "ok" for i in images]}).to_csv(store / "index.csv",
                                                                                               index=False)
    ws.faces.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image": images, "n_faces": 1,
                  "status": ["unreadable" if i == bad[2] else "ok" for i in images]}).to_csv(ws.faces, index=False)
    make_splits(ws, folds="bp4d_3fold", fold=1, frac_b=0.25, b_copies=1)
    in_splits = set().union(*(set(pd.read_csv(ws.split(n))["image"]) for n in ("A", "B", "H")))
    assert in_splits == set(images) - set(bad)
    left = pd.read_csv(ws.split(LEFT_OUT))
    assert sorted(left["image"]) == sorted(bad)
    assert "3 unreadable image(s)" in left_out_summary(ws)
    (store / "index.csv").unlink()
    ws.faces.unlink()
    make_splits(ws, folds="bp4d_3fold", fold=1, frac_b=0.25, b_copies=1)
    assert not ws.split(LEFT_OUT).exists() and "none" in left_out_summary(ws)


# ------------------------------------------------------------------ data roots
@pytest.mark.parametrize("dataset", ["bp4d", "disfa", "affwild2", "emotionet", "csv"])
def test_a_wrong_data_root_is_never_walked(tmp_path, monkeypatch, dataset):
    """A data root that does not hold the data set (here an unrelated tree) is
    refused by the runner's check naming the root and --data-root; the step
    fingerprints never walk it."""
    tree = tmp_path / "unrelated"
    for k in range(30):
        (tree / f"d{k}" / "sub").mkdir(parents=True)
        (tree / f"d{k}" / "sub" / "f.bin").write_bytes(b"x")
    monkeypatch.setattr(F, "_walk", lambda *a, **k: pytest.fail("the data root was walked"))
    values = {"dataset": dataset, "data_root": str(tree), "labels_csv": "labels.csv"}
    F.identity(F.input_files(values))
    with pytest.raises(F.DataRootError, match=rf"data root {tree} .*--data-root"):
        F.check_data_root(values)


def test_a_generic_csv_root_is_walked_and_an_unreadable_folder_is_named(tmp_path, monkeypatch, capsys):
    from aulib.pipeline import cli
    root = tmp_path / "own"
    (root / "faces").mkdir(parents=True)
    (root / "faces" / "a.jpg").write_bytes(b"x")
    (root / "locked").mkdir()
    (root / "labels.csv").write_text("image,AU1\nfaces/a.jpg,1\n")
    values = {"dataset": "csv", "data_root": str(root), "labels_csv": "labels.csv"}
    assert root in F.input_files(values)
    F.check_data_root(values)
    scandir = os.scandir

    def denied(path):        # tests run as root, where chmod 000 does not deny: deny as the kernel would
        if Path(path) == root / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(F.os, "scandir", denied)
    with pytest.raises(F.DataRootError, match=rf"cannot read folder {root / 'locked'} \(permission denied\)"):
        F.identity(F.input_files(values))
    profile = tmp_path / "own.yaml"
    profile.write_text("profile: own\nextends: demo\ncommon: {dataset: csv, labels_csv: labels.csv}\n")
    args = cli.build_parser().parse_args(["--profile", str(profile), "--data-root", str(root), "--workspace",
                                          str(tmp_path / "ws"), "--dry-run"])
    with pytest.raises(SystemExit) as e:
        cli.answer(args)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot read folder" in err and "--data-root" in err and "Traceback" not in err


def test_wrong_and_unreadable_roots_and_bad_profiles_answer_in_one_line(tmp_path):
    """``python -m aulib.pipeline`` with a wrong data root (/proc: unreadable
    folders, not the data set) or a profile that does not parse exits 1 with
    one line naming the root or the file and line, before it imports the runner
    (about 2 s: three processes)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("profile: x\ncommon: !!python/object/apply:os.system ['echo pwned']\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("profile: x\ncommon: [a\n")
    cases = [(["--profile", "disfa", "--data-root", "/proc"], r"data root /proc holds no disfa label files"),
             (["--profile", str(hostile)], rf"{hostile}: line 2, column 9: .*!!python"),
             (["--profile", str(broken), "--dry-run"], rf"{broken}: line 3, column 1: ")]
    for argv, pattern in cases:
        r = subprocess.run([sys.executable, "-m", "aulib.pipeline", *argv, "--workspace", str(tmp_path / "ws")],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(pattern, lines[0]), r.stderr
    assert not (tmp_path / "ws").exists()


# ------------------------------------------------------------------ --only of the last step
def test_only_the_last_step_rewrites_the_kfold_summaries(tmp_path, monkeypatch, capsys):
    """``--only 07_tables`` selects the k-fold summary's step (09_kfold_summary) too: it is made
    from 07_tables' output; ``--only 02_split`` does not, and says so."""
    from aulib.pipeline import cli, runner
    from aulib.pipeline.profile import load_profile
    written = write_bp4d(tmp_path / "BP4D", tasks=("T1",), frames=2, missing=0, unlabelled=0)
    calls = []
    monkeypatch.setattr(runner, "_run_steps", lambda profile, ws, states, force, only, *a, **k: calls.append(
        (ws.root.name, [s.step.name for s in cli.to_run(states, force, only)])) or states)
    profile = load_profile("bp4d")
    ws = Workspace.for_profile("bp4d", root=tmp_path / "ws")
    runner._run_profile(profile, ws, {"data_root": str(written.root)}, False, ["07_tables"], True)
    assert calls == [(f"fold{k}", ["07_tables"]) for k in (1, 2, 3)] + [("ws", ["09_kfold_summary"])]
    calls.clear()
    runner._run_profile(profile, ws, {"data_root": str(written.root)}, False, ["02_split"], True)
    assert calls == [(f"fold{k}", ["02_split"]) for k in (1, 2, 3)]
    assert "k-fold summaries not rewritten" in capsys.readouterr().out


def test_an_unreadable_frame_folder_is_named_with_the_setting(tmp_path, monkeypatch):
    """A frame folder another user keeps to themselves (0700) stops 01_data
    naming the folder and the setting, not with a bare PermissionError."""
    from aulib.data.sources import native
    written = write_bp4d(tmp_path / "BP4D", subjects=("F001",), tasks=("T1",), frames=2, missing=0, unlabelled=0)
    scandir = os.scandir

    def denied(path):        # tests run as root, where chmod 000 does not deny: deny as the kernel would
        if Path(path).name == "T1":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(native.os, "scandir", denied)
    with pytest.raises(PermissionError, match=r"cannot read frame folder .*img/F001/T1 .*label_settings: \{frames"):
        S.prepare_labels(ws_for(tmp_path), "bp4d", written.root)


def test_a_refused_label_setting_is_one_line_before_any_step(tmp_path, capsys):
    from aulib.pipeline import cli
    written = write_disfa(tmp_path / "DISFA", subjects=("SN002",), frames=2, extra=0)
    for settings, message in (("{camera: top}", "camera='top'"), ("{camra: right}", r"unknown label setting\(s\) \['camra'\]")):
        profile = tmp_path / "mine.yaml"
        profile.write_text(f"profile: mine\nextends: disfa\ncommon: {{label_settings: {settings}}}\n")
        args = cli.build_parser().parse_args(["--profile", str(profile), "--data-root", str(written.root),
                                              "--workspace", str(tmp_path / "ws")])
        with pytest.raises(SystemExit):
            cli.answer(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), err
