"""Reading run directories: complete epochs only, clear errors for bad files."""
import io

import numpy as np
import pandas as pd
import pytest

from aulib.io import read_yaml, write_csv, write_npy, write_yaml
from aulib.runs import list_runs, load_run_preds, read_log, select_runs
from aulib.workspace import Workspace
from synthetic_runs import write_synthetic_run


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_synthetic_run(ws.run("r17"), "17au", epochs=5, n_images=20, n_heldout=30, seed=1)
    write_synthetic_run(ws.run("r6"), "6au", epochs=3, n_images=20, heldout=None, seed=2)
    return ws


def test_load_run_preds_shapes_and_labels(ws):
    rp = load_run_preds(ws.run("r17"), "B")
    assert rp.run_name == "r17" and rp.aus[:3] == (1, 2, 4) and len(rp.aus) == 17
    assert rp.epochs.tolist() == [1, 2, 3, 4, 5]
    assert rp.probs.shape == (5, 80, 17) and rp.probs.dtype == np.float32
    assert rp.labels.dtype == np.int8 and set(np.unique(rp.labels)) == {-1, 0, 1}
    assert rp.index[["image", "variant"]].groupby("image").size().eq(4).all()
    raw = np.load(ws.run("r17") / "preds" / "B_epoch003.npy")
    np.testing.assert_array_equal(rp.probs[2], raw.astype(np.float32))
    held = load_run_preds(ws.run("r17"), "test")
    assert held.probs.shape == (5, 30, 17)
    assert rp.at_epochs([4, 2]).probs.shape == (2, 80, 17)


def test_only_complete_epochs_are_loaded(ws):
    run = ws.run("r17")
    log = read_log(run)
    write_csv(run / "log.csv", log[log["epoch"] <= 3])  # epochs 4, 5 have preds but no log row yet
    (run / "preds" / "B_epoch002.npy").unlink()  # epoch 2 logged but its file is gone
    rp = load_run_preds(run, "B")
    assert rp.epochs.tolist() == [1, 3]
    with pytest.raises(FileNotFoundError, match=r"epochs \[4\]"):
        load_run_preds(run, "B", epochs=[4])


def test_bad_prediction_file_is_named(ws):
    run = ws.run("r17")
    write_npy(run / "preds" / "B_epoch002.npy", np.zeros((79, 17), np.float16))
    with pytest.raises(ValueError, match=r"B_epoch002\.npy holds float16 \(79, 17\)"):
        load_run_preds(run, "B")
    write_npy(run / "preds" / "B_epoch002.npy", np.full((80, 17), 2.0, np.float16))
    with pytest.raises(ValueError, match=r"B_epoch002\.npy has values outside \[0, 1\]"):
        load_run_preds(run, "B")
    (run / "preds" / "B_epoch002.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match=r"cannot read .*B_epoch002\.npy"):
        load_run_preds(run, "B")
    write_npy(run / "preds" / "B_epoch002.npy", np.full((80, 17), 0.5, np.float16))
    data = (run / "preds" / "B_epoch002.npy").read_bytes()
    (run / "preds" / "B_epoch002.npy").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"cannot read .*B_epoch002\.npy.*not fully written"):
        load_run_preds(run, "B")                                        # float32: loaded, then cast
    from aulib.select.choose import load_candidates
    with pytest.raises(ValueError, match=r"cannot read .*B_epoch002\.npy.*truncated"):
        load_candidates([run], "B")                                     # float16 stack: read straight into it


def test_bad_index_and_missing_split(ws):
    run = ws.run("r17")
    with pytest.raises(FileNotFoundError, match=r"has predictions for splits \['B', 'test'\]"):
        load_run_preds(run, "validation")
    idx = pd.read_csv(run / "preds" / "B_index.csv")
    idx.loc[5, "AU4"] = 999
    write_csv(run / "preds" / "B_index.csv", idx)
    with pytest.raises(ValueError, match="line 7, column AU4 holds 999"):
        load_run_preds(run, "B")
    write_csv(run / "preds" / "B_index.csv", idx.drop(columns="AU4"))
    with pytest.raises(ValueError, match="but the run's group has"):
        load_run_preds(run, "B")


def test_an_index_written_by_another_tool_reads_as_the_kits(ws):
    """The parser is told the index's types (image text, variant and AUs integers); a file it cannot
    read so (a byte-order mark and CRLF lines, labels written 1.0 / 0.0, a label 300) reads as before:
    the same labels, or the line and column of the bad value."""
    run = ws.run("r17")
    path = run / "preds" / "B_index.csv"
    want = load_run_preds(run, "B")
    idx = pd.read_csv(path)
    au = [c for c in idx.columns if c.startswith("AU")]
    path.write_bytes(b"\xef\xbb\xbf" + idx.astype({c: float for c in au}).to_csv(index=False, lineterminator="\r\n")
                     .encode())
    got = load_run_preds(run, "B")
    assert np.array_equal(got.labels, want.labels) and got.index["image"].tolist() == want.index["image"].tolist()
    idx.loc[3, "AU2"] = 300
    write_csv(path, idx)
    with pytest.raises(ValueError, match="line 5, column AU2 holds 300"):
        load_run_preds(run, "B")


def test_list_and_select_runs(ws, tmp_path):
    table = list_runs(ws)
    assert table["name"].tolist() == ["r17", "r6"]
    assert table.set_index("name").loc["r17", "epochs_done"] == 5
    assert table.set_index("name").loc["r17", "heldout"] == "test"
    assert table.set_index("name").loc["r6", "splits"] == "B"
    assert [p.name for p in select_runs(ws, "6au")] == ["r6"]
    assert [p.name for p in select_runs(ws, None, ["r6", "r17"])] == ["r6", "r17"]
    with pytest.raises(FileNotFoundError, match="runs \\['nope'\\] not found"):
        select_runs(ws, None, ["nope"])
    with pytest.raises(ValueError, match="not of group '17au'"):
        select_runs(ws, "17au", ["r6"])
    assert list_runs(tmp_path / "empty").empty
    assert read_log(tmp_path / "no_run").empty


def test_list_runs_names_ablations_of_new_and_old_configs(tmp_path):
    ws = Workspace(tmp_path, tmp_path / "results")
    for name, extra in (("new", {"ablate": ["mv"]}), ("old", {"use_cr": False, "use_mv": True}), ("none", {})):
        run = write_synthetic_run(ws.run(name), "6au", epochs=2, n_images=10, heldout=None)
        write_yaml(run / "config.yaml", {**read_yaml(run / "config.yaml"), **extra})
    assert list_runs(ws).set_index("name")["ablate"].to_dict() == {"new": "mv", "none": "", "old": "cr"}


def _count_index_parses(monkeypatch) -> list:
    """The index files pandas parses from now on (every CSV but the logs), in a fresh process's cache."""
    from aulib import pred_index

    pred_index._INDEXES.clear()
    parsed, real = [], pd.read_csv

    def counted(src, *a, **k):
        if not str(src).endswith("log.csv"):
            parsed.append(src)
        return real(src, *a, **k)

    monkeypatch.setattr(pred_index.pd, "read_csv", counted)
    return parsed


def test_runs_sharing_an_index_parse_it_once_and_a_changed_index_is_read_again(ws, monkeypatch):
    """Runs evaluated on one split hold the same index: it is parsed once per content; a file of the
    same size whose bytes differ is parsed again; each run gets its own copy of the table. Runs written
    before index twins (none here) are the case: with twins nothing is parsed (next test)."""
    import shutil

    from aulib.select.choose import load_candidates

    for twin in ws.run("r17").glob("preds/*_index.npz"):
        twin.unlink()
    shutil.copytree(ws.run("r17"), ws.run("r17b"))
    write_yaml(ws.run("r17b") / "config.yaml", {**read_yaml(ws.run("r17") / "config.yaml"), "run_name": "r17b"})
    parsed = _count_index_parses(monkeypatch)
    runs, cands = load_candidates([ws.run("r17"), ws.run("r17b")], "B")
    assert len(parsed) == 1 and cands.probs.shape == (10, 80, 17)
    runs[0].index["subject"] = "s1"                                      # a run's own copy
    assert "subject" not in runs[1].index.columns
    path = ws.run("r17b") / "preds" / "B_index.csv"
    size, idx = path.stat().st_size, pd.read_csv(path)
    idx.loc[idx["AU1"].eq(0).idxmax(), "AU1"] = 1
    write_csv(path, idx)
    assert path.stat().st_size == size                                   # same size, other bytes
    changed = load_run_preds(ws.run("r17b"), "B")
    assert len(parsed) == 3                                              # (one read_csv above is the test's)
    assert (changed.labels != runs[0].labels).sum() == 1


def test_an_index_twin_gives_the_csvs_table_and_is_dropped_once_the_csv_changes(ws, monkeypatch):
    """The kit writes each index with a binary twin holding its checked parse: read through the twin, the
    table equals the CSV's parse (dtypes included) and no CSV is parsed. The twin is not used once the
    CSV is rewritten (a same-size edit, written atomically or in place with its modification time put
    back), copied elsewhere or the twin is damaged: then the CSV is parsed, and a bad label is named."""
    import os
    import shutil
    import time

    from aulib.pred_index import _checked, _read_csv
    from aulib.select.choose import load_candidates
    from aulib.workspace import RunDir

    rd = RunDir(ws.run("r17"))
    assert rd.index_twin("B").is_file() and rd.index_twin("test").is_file()
    want = _checked(_read_csv(rd.index("B").read_bytes()), rd.index("B"))
    parsed = _count_index_parses(monkeypatch)
    runs, cands = load_candidates([ws.run("r17")], "B")
    assert parsed == []
    pd.testing.assert_frame_equal(runs[0].index, want)
    assert str(runs[0].index["image"].dtype) == str(want["image"].dtype) and runs[0].labels.dtype == np.int8

    path = rd.index("B")
    raw = bytearray(path.read_bytes())
    at = raw.index(b",0\n") + 1                                          # the last label of a row, a 0 -> 7
    line = raw[:at].count(b"\n") + 1
    stat = path.stat()
    time.sleep(0.05)                                                     # past the file system's clock tick
    with open(path, "r+b") as f:                                         # in place: the same inode and size
        f.seek(at)
        f.write(b"7")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))              # its modification time put back
    with pytest.raises(ValueError, match=rf"B_index\.csv: line {line}, column AU43 holds 7"):
        load_run_preds(ws.run("r17"), "B")
    assert len(parsed) == 1
    raw[at:at + 1] = b"1"
    write_csv(path, pd.read_csv(io.BytesIO(bytes(raw))))                  # the kit's atomic write, same size
    assert (load_run_preds(ws.run("r17"), "B").labels != want.filter(like="AU").to_numpy()).sum() == 1
    assert len(parsed) == 3                                              # (one of them the line above's)

    shutil.copytree(ws.run("r6"), ws.run("r6copy"))                     # a copy: its twins are not trusted
    load_run_preds(ws.run("r6copy"), "B")
    assert len(parsed) == 4
    RunDir(ws.run("r6")).index_twin("B").write_bytes(b"PK\x03\x04 damaged")
    pd.testing.assert_frame_equal(load_run_preds(ws.run("r6"), "B").index, load_run_preds(ws.run("r6copy"), "B").index)


def test_an_index_the_typed_parse_does_not_take_gets_no_twin(tmp_path):
    """A table with another column or an empty image is written as given, without a twin (a stale one
    is removed), and reads as its CSV does; labels written 1.0 / 0.0 get a twin equal to the CSV's
    parse; a label 1.5 is named."""
    from aulib.pred_index import _checked, _INDEXES, _read_csv, parsed_index, write_index
    from aulib.workspace import RunDir

    path = RunDir(tmp_path / "run").index("B")
    good = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "variant": [0, 0], "AU1": [1, -1], "AU2": [0, 1]})
    for table in (good.assign(subject=["s1", "s2"]), good.assign(image=["a.jpg", None])):
        write_index(path, good)
        assert RunDir.twin_of(path).is_file()
        write_index(path, table)
        assert not RunDir.twin_of(path).exists()
        assert parsed_index(path).columns.tolist() == table.columns.tolist()
    write_index(path, good.astype({"AU1": float}))
    assert b"1.0" in path.read_bytes() and RunDir.twin_of(path).is_file()
    _INDEXES.clear()
    pd.testing.assert_frame_equal(parsed_index(path), _checked(_read_csv(path.read_bytes()), path))
    with pytest.raises(ValueError, match=r"line 2, column AU1 holds 1\.5"):
        write_index(path, good.astype({"AU1": float}).assign(AU1=[1.5, 0.0]))
