"""Issue 26.3 and 26.9: AU headings in any common spelling are read or refused
by name; names that differ by a space or normalisation get a hint; links out
of the data root, dangling links and devices are not images; degenerate AU
columns are warned."""
import os
import unicodedata

import pytest

from aulib.data import labels as L
from aulib.data.sources import generic_csv as G
from aulib.data import sources as S
from aulib.workspace import Workspace


def root_with(tmp_path, names):
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    for n in names:
        (root / "images" / n).write_bytes(b"x")
    return root


@pytest.mark.parametrize("h1,h2,h4", [("AU1", "AU2", "AU4"), ("AU01", "AU02", "AU04"), ("au1", "au2", "au4"),
                                      ("AU 1", "AU 2", "AU 4"), ("AU1_c", "AU02_c", "au_4")])
def test_au_heading_spellings_are_read(tmp_path, h1, h2, h4):
    root = root_with(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    (root / "g.csv").write_text(f"image,subject,{h1},{h2},{h4},AU5\n"
                                "images/a.jpg,s1,1,0,1,0\nimages/b.jpg,s2,0,1,0,1\nimages/c.jpg,s2,1,1,-1,0\n")
    df, rep = G.read_generic_csv(root / "g.csv", root)
    assert df["AU1"].tolist() == [1, 0, 1] and df["AU2"].tolist() == [0, 1, 1] and df["AU4"].tolist() == [1, 0, -1]
    if h1 != "AU1":
        assert any(f"{h1!r} as AU1" in n for n in rep.notes)
    assert not any("ignored column" in n for n in rep.notes)


def test_two_spellings_of_one_au_are_refused(tmp_path):
    root = root_with(tmp_path, ["a.jpg"])
    (root / "g.csv").write_text("image,AU1,AU01\nimages/a.jpg,1,0\n")
    with pytest.raises(ValueError, match=r"column 'AU1' appears more than once, as columns 2 \('AU1'\) and 3 "
                                         r"\('AU01'\)"):
        G.read_generic_csv(root / "g.csv", root)


def test_intensity_columns_refused_or_thresholded(tmp_path):
    root = root_with(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    (root / "g.csv").write_text("image,AU1_r,AU2\nimages/a.jpg,0.4,1\nimages/b.jpg,2.5,0\nimages/c.jpg,,1\n")
    with pytest.raises(ValueError, match=r"\['AU1_r'\] hold AU intensities.*intensity_threshold"):
        G.read_generic_csv(root / "g.csv", root)
    df, rep = G.read_generic_csv(root / "g.csv", root, intensity_threshold=2)
    assert df["AU1"].tolist() == [0, 1, -1]
    assert any("read as present when >= 2" in n for n in rep.notes)
    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    S.prepare_labels(ws, "csv", root, optimization="g.csv", settings={"intensity_threshold": 2})
    assert S.load_labels(ws, "optimization")["AU1"].tolist() == [0, 1, -1]


def test_au_heading_outside_catalog_refused_by_name(tmp_path):
    root = root_with(tmp_path, ["a.jpg"])
    (root / "g.csv").write_text("image,AU1,AU99\nimages/a.jpg,1,0\n")
    with pytest.raises(ValueError, match=r"\['AU99'\] look like AU columns.*not in the kit's AU catalog"):
        G.read_generic_csv(root / "g.csv", root)


@pytest.mark.parametrize("on_disk,in_csv,hint", [
    ("a.jpg ", "a.jpg", "leading/trailing spaces"),
    (unicodedata.normalize("NFD", "José.jpg"), unicodedata.normalize("NFC", "José.jpg"), "NFC vs NFD"),
])
def test_near_miss_names_get_a_hint(tmp_path, on_disk, in_csv, hint):
    root = root_with(tmp_path, [on_disk, "b.jpg"])
    (root / "g.csv").write_text(f"image,AU1\nimages/{in_csv},1\nimages/b.jpg,0\n", encoding="utf-8")
    _, rep = G.read_generic_csv(root / "g.csv", root)
    reason = rep.problems["reason"].iloc[0]
    assert reason.startswith("image file not found (the folder has") and hint in reason


def test_links_out_of_the_root_dangling_links_and_devices_are_not_images(tmp_path):
    root = root_with(tmp_path, ["ok.jpg", "ok2.jpg"])
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"x")
    (root / "images" / "inside.jpg").symlink_to(root / "images" / "ok.jpg")
    (root / "images" / "out.jpg").symlink_to(outside)
    (root / "images" / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (root / "images" / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(root / "images" / "fifo.jpg")
    rows = "".join(f"images/{n},1\n" for n in ["ok.jpg", "inside.jpg", "out.jpg", "dangling.jpg", "zero.jpg",
                                                "fifo.jpg"])
    (root / "g.csv").write_text("image,AU1\n" + rows + "images/ok2.jpg,0\n")
    df, rep = G.read_generic_csv(root / "g.csv", root)
    assert df["image"].tolist() == ["images/ok.jpg", "images/inside.jpg", "images/ok2.jpg"]
    reasons = dict(zip(rep.problems["value"], rep.problems["reason"]))
    assert "outside the data root" in reasons["images/out.jpg"]
    assert "dangling symbolic link" in reasons["images/dangling.jpg"]
    assert "symbolic link to /dev/zero, outside the data root" in reasons["images/zero.jpg"]
    assert "not a regular file" in reasons["images/fifo.jpg"]


def test_never_labelled_and_always_present_aus_are_warned(tmp_path):
    root = root_with(tmp_path, ["a.jpg", "b.jpg"])
    (root / "g.csv").write_text("image,AU1,AU2,AU4\nimages/a.jpg,1,-1,1\nimages/b.jpg,1,,0\n")
    with pytest.warns(L.LabelWarning) as caught:
        _, rep = G.read_generic_csv(root / "g.csv", root)
    text = " ".join(str(w.message) for w in caught)
    assert "['AU2'] are never labelled" in text and "['AU1'] are present on every labelled row" in text
    assert "AU4" not in text
    assert any("never labelled" in n for n in rep.notes)
