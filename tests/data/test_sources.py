"""prepare_labels on tiny fake data roots written with the label writers."""
import numpy as np
import pandas as pd
import pytest

from aulib.data import labels as L
from aulib.data.sources import emotionet as E
from aulib.data.sources import generic_csv as G
from aulib.data import sources as S
from aulib.workspace import Workspace

SIZES = {"optimization": 12, "noisy": 9, "validation": 4, "test": 5}


def table(split, n, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.integers(-1, 2, (n, len(L.AU_COLUMNS))).astype(np.int8), columns=L.AU_COLUMNS)
    df.insert(0, "image", [f"images/{split}/{i:06d}.jpg" for i in range(n)])
    return df


def touch_images(root, df):
    for img in df["image"]:
        (root / img).parent.mkdir(parents=True, exist_ok=True)
        (root / img).write_bytes(b"")


def fake_synthau(root, sizes=SIZES):
    """A SynthAU-style data root (layout of docs/layout.md) with empty images."""
    tables = {}
    for k, (split, n) in enumerate(sizes.items()):
        df = table(split, n, seed=k)
        touch_images(root, df)
        url = f"http://synthau.invalid/{split}/"
        if split == "noisy":
            E.write_emotionet_automatic(df, root / "labels" / "noisy.txt", url)
            true = table(split, n, seed=99)
            G.write_generic_csv(true, root / "labels" / "noisy_true.csv")
            tables["noisy_true"] = true
        else:
            E.write_emotionet_manual(df, root / "labels" / f"{split}.csv", url)
        tables[split] = df
    (root / "synthau.yaml").write_text("profile: test\n")
    return tables


def assert_same(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    assert all(a[c].dtype == np.int8 for c in L.AU_COLUMNS)


def test_prepare_synthau_from_existing_root(tmp_path):
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    tables = fake_synthau(ws.data)
    reports = S.prepare_labels(ws, "synthau")
    assert list(reports) == list(S.SPLITS)
    for split, df in tables.items():
        assert reports[split].kept == len(df) and reports[split].skipped == 0
        assert_same(S.load_labels(ws, split), df)
    assert S.available_splits(ws) == list(S.SPLITS)
    summary = S.report_table(reports)
    assert summary.loc["noisy", "kept"] == SIZES["noisy"] and summary["skipped"].sum() == 0


def test_prepare_synthau_generates_when_missing(tmp_path, monkeypatch):
    import aulib.data.sources.synthau.generate as synth

    calls = []

    def fake_generate(root, profile="demo", seed=0, progress=True):
        calls.append((profile, seed))
        fake_synthau(root)
        return {}

    monkeypatch.setattr(synth, "generate", fake_generate)
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    S.prepare_labels(ws, "synthau", synth_profile="ci", seed=3, progress=False)
    assert calls == [("ci", 3)]
    S.prepare_labels(ws, "synthau", synth_profile="ci", seed=3, progress=False)
    assert len(calls) == 1, "an existing SynthAU root must not be regenerated"


def test_prepare_emotionet_default_layout_and_stale_tables(tmp_path):
    root = tmp_path / "emotionet"
    opt = table("optimization", 10, 1)
    touch_images(root, opt)
    E.write_emotionet_manual(opt, root / "optimization.csv", "http://e.invalid/x/")
    n1, n2 = table("noisy", 6, 2), table("noisy", 12, 3).iloc[6:]
    touch_images(root, pd.concat([n1, n2]))
    E.write_emotionet_automatic(n1, root / "noisy" / "part1.txt", "http://e.invalid/n/")
    E.write_emotionet_automatic(n2, root / "noisy" / "part2.txt", "http://e.invalid/n/")
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    L.write_label_table(table("test", 3, 4), ws.labels("test"))  # left over from another data set
    reports = S.prepare_labels(ws, "emotionet", data_root=root)
    assert set(reports) == {"optimization", "noisy"}
    assert_same(S.load_labels(ws, "optimization"), opt)
    assert_same(S.load_labels(ws, "noisy"), pd.concat([n1, n2]))
    assert not ws.labels("test").exists(), "a stale label table must not survive"
    # a missing image is skipped and counted, not silent
    (root / "images" / "optimization" / "000004.jpg").unlink()
    reports = S.prepare_labels(ws, "emotionet", data_root=root)
    assert reports["optimization"].skipped == 1 and len(S.load_labels(ws, "optimization")) == 9


def test_prepare_emotionet_overrides_and_errors(tmp_path):
    root = tmp_path / "e"
    opt = table("optimization", 5, 1)
    opt["image"] = opt["image"].str.replace("images/optimization/", "photos/")
    touch_images(root, opt)
    E.write_emotionet_manual(opt, root / "lists" / "opt.csv", "http://e.invalid/x/")
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    with pytest.raises(FileNotFoundError, match=r"optimization\.csv; put the file there, or point notebook "
                                                r"01_data's data_root parameter .*common: \{data_root"):
        S.prepare_labels(ws, "emotionet", data_root=root)
    reports = S.prepare_labels(ws, "emotionet", data_root=root, optimization="lists/opt.csv",
                               image_dirs={"optimization": "photos"})
    assert reports["optimization"].kept == 5
    with pytest.raises(ValueError, match="needs data_root"):
        S.prepare_labels(ws, "emotionet")
    with pytest.raises(ValueError, match=r"unknown split\(s\) \['optimisation'\]"):
        S.prepare_labels(ws, "emotionet", data_root=root, optimisation="x.csv")
    with pytest.raises(ValueError, match="unknown dataset"):
        S.prepare_labels(ws, "affectnet", data_root=root)
    with pytest.raises(FileNotFoundError, match="test: 'nope.csv' matches no file"):
        S.prepare_labels(ws, "emotionet", data_root=root, optimization="lists/opt.csv",
                         image_dirs={"optimization": "photos"}, test="nope.csv")


def test_prepare_csv(tmp_path):
    root = tmp_path / "mine"
    opt, test = table("optimization", 7, 5), table("test", 3, 6)
    touch_images(root, pd.concat([opt, test]))
    G.write_generic_csv(opt, tmp_path / "opt.csv")
    (tmp_path / "test.csv").write_text("image,AU12\n" + "\n".join(f"{i},1" for i in test["image"]) + "\n")
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    # issue 15.9 / 14.2: the message names the real ways (01_data's labels_csv, prepare_labels' keyword)
    with pytest.raises(ValueError, match=r"01_data's labels_csv parameter.*prepare_labels\(ws, 'csv', "
                                         r"data_root, optimization='path/to/labels\.csv'\)"):
        S.prepare_labels(ws, "csv", data_root=root, test=tmp_path / "test.csv")
    reports = S.prepare_labels(ws, "csv", data_root=root, optimization=tmp_path / "opt.csv",
                               test=tmp_path / "test.csv")
    assert set(reports) == {"optimization", "test"}
    assert_same(S.load_labels(ws, "optimization"), opt)
    t = S.load_labels(ws, "test")
    assert (t["AU12"] == 1).all() and list(t.columns) == ["image", "AU12"]   # the file's AUs only
    with pytest.raises(ValueError, match="unknown split"):
        S.load_labels(ws, "train")


def test_report_helpers(tmp_path):
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    tables = fake_synthau(ws.data)
    (ws.data / "images" / "test" / "000001.jpg").unlink()
    reports = S.prepare_labels(ws, "synthau")
    problems = S.problems_table(reports)
    assert problems[["split", "line", "reason"]].values.tolist() == [["test", 3, "image file not found"]]
    prev = S.prevalence_table(ws)
    assert list(prev.columns) == ["name", "group"] + list(S.SPLITS)
    v = tables["noisy"]["AU12"].to_numpy()
    assert prev.loc[12, "noisy"] == pytest.approx((v == 1).sum() / (v >= 0).sum())
    assert prev.loc[52, "group"] == "6au" and prev.loc[12, "name"] == "Lip corner puller"
    assert S.resolve_data_root(ws, "synthau") == ws.data
    assert S.resolve_data_root(ws, "csv", tmp_path) == tmp_path
