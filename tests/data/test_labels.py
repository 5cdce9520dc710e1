"""Label readers and writers on small hand-written files (EmotioNet manual,
EmotioNet automatic, generic CSV), malformed input included."""
import re

import numpy as np
import pandas as pd
import pytest

from aulib.aus import AUS_2020
from aulib.data import labels as L
from aulib.data.sources import emotionet as E
from aulib.data.sources import generic_csv as G

AUS = list(AUS_2020)
MANUAL_HEADER = "URL,URL orig," + ",".join(f"'AU {a}'" for a in AUS)


def make_root(tmp_path, names, folder="images"):
    root = tmp_path / "root"
    (root / folder).mkdir(parents=True, exist_ok=True)
    for n in names:
        (root / folder / n).write_bytes(b"")
    return root


def manual_line(name, values):
    return f"http://ex.invalid/a/{name},http://orig.invalid/{name}," + ",".join(str(v) for v in values)


def automatic_line(name, values23, fill=999):
    row = [fill] * 60
    for a, v in zip(AUS, values23):
        row[a - 1] = v
    return "\t".join([f"http://ex.invalid/{name}", f"http://orig.invalid/{name}"] + [str(v) for v in row])


def random_table(n, seed=0, folder="images"):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.integers(-1, 2, (n, len(AUS))).astype(np.int8), columns=L.AU_COLUMNS)
    df.insert(0, "image", [f"{folder}/{i:04d}.jpg" for i in range(n)])
    return df


# ------------------------------------------------------------------ manual
def test_manual_reads_values_and_999(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg"])
    v1 = [1] * 23
    v2 = [0] * 22 + [999]
    (root / "opt.csv").write_text("\n".join([MANUAL_HEADER, manual_line("a.jpg", v1), manual_line("b.jpg", v2)]))
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    assert list(df.columns) == ["image"] + L.AU_COLUMNS
    assert df["image"].tolist() == ["images/a.jpg", "images/b.jpg"]
    assert (df.iloc[0, 1:] == 1).all()
    assert df.loc[1, "AU56"] == -1 and (df.iloc[1, 1:-1] == 0).all()
    assert all(df[c].dtype == np.int8 for c in L.AU_COLUMNS)
    assert (rep.read, rep.kept, rep.skipped, len(rep.problems)) == (2, 2, 0, 0)


def test_manual_accepts_unquoted_headers_and_ignores_other_aus(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    header = "URL,URL orig," + ",".join(f"AU {a}" for a in AUS) + ",AU 7"
    (root / "opt.csv").write_text(header + "\n" + manual_line("a.jpg", [0] * 23 + [1]))
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    assert len(df) == 1 and (df.iloc[0, 1:] == 0).all()
    assert any("AU 7" in n for n in rep.notes)


def test_manual_missing_columns_named(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    header = MANUAL_HEADER.replace(",'AU 4'", "").replace(",'AU 52'", "")
    (root / "opt.csv").write_text(header + "\n" + manual_line("a.jpg", [0] * 21))
    with pytest.raises(ValueError) as e:
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    msg = str(e.value)
    assert "opt.csv" in msg and "'AU 4'" in msg and "'AU 52'" in msg and "'AU 1'" not in msg.split("missing")[1][:20]
    assert "URL orig" in msg  # says what is expected


def test_manual_bad_value_names_file_line_column(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    bad = [0] * 23
    bad[AUS.index(12)] = 7
    lines = [MANUAL_HEADER, manual_line("a.jpg", [0] * 23), "", manual_line("b.jpg", bad),
             manual_line("c.jpg", [1] * 23)]
    (root / "opt.csv").write_text("\n".join(lines))
    with pytest.raises(ValueError) as e:
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    msg = str(e.value)
    # line 4: header is line 1, a blank line 3 does not shift the count
    assert "opt.csv" in msg and "line 4" in msg and "'AU 12'" in msg and "'7'" in msg
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images", on_error="skip")
    assert df["image"].tolist() == ["images/a.jpg", "images/c.jpg"]
    assert rep.skipped == 1 and rep.problems.iloc[0]["line"] == 4 and rep.problems.iloc[0]["column"] == "'AU 12'"
    assert "bad label value" in rep.summary()


def test_duplicate_image_names_both_lines(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg"])
    lines = [MANUAL_HEADER, manual_line("a.jpg", [0] * 23), manual_line("b.jpg", [0] * 23),
             manual_line("a.jpg", [1] * 23)]
    (root / "opt.csv").write_text("\n".join(lines))
    with pytest.raises(ValueError) as e:
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    msg = str(e.value)
    assert "opt.csv: line 4" in msg and "line 2" in msg and "images/a.jpg" in msg
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images", on_error="skip")
    assert df["image"].tolist() == ["images/a.jpg", "images/b.jpg"]
    assert (df.iloc[0, 1:] == 0).all()  # the first one is kept
    assert rep.skipped == 1 and "duplicate image" in rep.problems.iloc[0]["reason"]


def test_missing_image_files_are_counted_not_silent(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    lines = [MANUAL_HEADER, manual_line("a.jpg", [0] * 23), manual_line("gone.jpg", [0] * 23)]
    (root / "opt.csv").write_text("\n".join(lines))
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    assert df["image"].tolist() == ["images/a.jpg"]
    assert rep.skipped == 1
    p = rep.problems.iloc[0]
    assert (p["line"], p["value"], p["reason"]) == (3, "images/gone.jpg", "image file not found")
    assert "1 x image file not found" in rep.summary() and "opt.csv:3" in rep.summary()
    df, rep = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images", check_files=False)
    assert len(df) == 2 and rep.skipped == 0
    # nothing found at all: the image folder is probably wrong -> clear error
    with pytest.raises(FileNotFoundError, match="check data_root and image_dir"):
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="elsewhere")


def test_url_mapping_callable_and_traversal(tmp_path):
    root = make_root(tmp_path, ["a.jpg"], folder="imgs/x")
    (root / "opt.csv").write_text(MANUAL_HEADER + "\n" + manual_line("a.jpg", [0] * 23))
    df, _ = E.read_emotionet_manual(root / "opt.csv", root, image_dir=lambda url: "imgs/x/" + url.split("/")[-1])
    assert df["image"].tolist() == ["imgs/x/a.jpg"]
    with pytest.raises(ValueError, match=r"opt.csv: line 2, column 'URL'.*leaves the data root"):
        E.read_emotionet_manual(root / "opt.csv", root, image_dir=lambda url: "../secret.jpg")
    with pytest.raises(ValueError, match="image_dir.*leaves the data root"):
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="../imgs")


def test_url_file_name():
    assert E.url_file_name("http://h.invalid/a/b%20c.jpg?x=1#f") == "b c.jpg"
    assert E.url_file_name("  http://h/x.png ") == "x.png"


# ------------------------------------------------------------------ automatic
def test_automatic_reads_60_columns_header_and_several_files(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    v = [1, 0, 999] + [0] * 20
    header = "\t".join(["URL", "URL orig"] + [f"AU{a}" for a in range(1, 61)])
    (root / "n1.txt").write_text(header + "\n" + automatic_line("a.jpg", v, fill=7) + "\n")
    (root / "n2.txt").write_text(automatic_line("b.jpg", [1] * 23) + "\n" + automatic_line("c.jpg", [0] * 23))
    df, rep = E.read_emotionet_automatic([root / "n1.txt", root / "n2.txt"], root, image_dir="images")
    assert df["image"].tolist() == ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    # values of AUs outside the 23 (here 7) are ignored
    assert df.loc[0, ["AU1", "AU2", "AU4"]].tolist() == [1, 0, -1]
    assert (df.iloc[1, 1:] == 1).all() and (df.iloc[2, 1:] == 0).all()
    assert any("header" in n for n in rep.notes) and rep.kept == 3


def test_automatic_errors_name_file_and_line(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg"])
    bad = [0] * 23
    bad[AUS.index(26)] = 7
    (root / "n.txt").write_text(automatic_line("a.jpg", [0] * 23) + "\n" + automatic_line("b.jpg", bad) + "\n")
    with pytest.raises(ValueError) as e:
        E.read_emotionet_automatic(root / "n.txt", root, image_dir="images")
    assert re.search(r"n\.txt: line 2, column 'AU26'.*'7'", str(e.value))
    # duplicates across files name both files and lines
    (root / "m.txt").write_text(automatic_line("a.jpg", [1] * 23) + "\n")
    (root / "n.txt").write_text(automatic_line("b.jpg", [0] * 23) + "\n" + automatic_line("a.jpg", [0] * 23))
    with pytest.raises(ValueError) as e:
        E.read_emotionet_automatic([root / "m.txt", root / "n.txt"], root, image_dir="images")
    assert "n.txt: line 2" in str(e.value) and "m.txt: line 1" in str(e.value)
    # wrong field count (comma-separated by mistake)
    (root / "c.txt").write_text(automatic_line("a.jpg", [0] * 23).replace("\t", ","))
    with pytest.raises(ValueError, match=r"c\.txt: 1 tab-separated fields per line, expected 62"):
        E.read_emotionet_automatic(root / "c.txt", root, image_dir="images")
    # a short line
    short = automatic_line("b.jpg", [0] * 23).rsplit("\t", 5)[0]
    (root / "s.txt").write_text(automatic_line("a.jpg", [0] * 23) + "\n" + short + "\n")
    with pytest.raises(ValueError, match=r"s\.txt: line 2.*too few fields"):
        E.read_emotionet_automatic(root / "s.txt", root, image_dir="images")


# ------------------------------------------------------------------ generic
def test_generic_subset_unknown_codes_and_notes(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    (root / "g.csv").write_text("image,AU1,AU12,extra\nimages/a.jpg,1,999,x\nimages/b.jpg,-1,,y\n"
                                "images/c.jpg,0,1,z\n")
    df, rep = G.read_generic_csv(root / "g.csv", root)
    assert df["AU1"].tolist() == [1, -1, 0] and df["AU12"].tolist() == [-1, -1, 1]
    assert list(df.columns) == ["image", "AU1", "AU12"]          # exactly the file's AUs, no filler columns
    notes = " ".join(rep.notes)
    assert "extra" in notes and "AU2" not in notes
    df2, _ = G.read_generic_csv(root / "g.csv", tmp_path, image_dir="root")
    assert df2["image"].tolist() == ["root/images/a.jpg", "root/images/b.jpg", "root/images/c.jpg"]


def test_generic_path_traversal_and_missing_columns(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    (tmp_path / "secret.jpg").write_bytes(b"")
    (root / "g.csv").write_text("image,AU1\nimages/a.jpg,1\n../secret.jpg,0\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 3, column 'image'.*leaves the data root"):
        G.read_generic_csv(root / "g.csv", root)
    (root / "g.csv").write_text("image,AU1\nimages/a.jpg,1\n/etc/passwd,0\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 3, column 'image'.*absolute"):
        G.read_generic_csv(root / "g.csv", root)
    df, rep = G.read_generic_csv(root / "g.csv", root, on_error="skip")
    assert df["image"].tolist() == ["images/a.jpg"] and rep.skipped == 1
    (root / "h.csv").write_text("file,AU1\na.jpg,1\n")
    with pytest.raises(ValueError, match=r"h\.csv: missing column\(s\) 'image'.*image,AU1,AU2"):
        G.read_generic_csv(root / "h.csv", root)
    (root / "k.csv").write_text("image,label\nimages/a.jpg,1\n")
    with pytest.raises(ValueError, match=r"k\.csv: missing column.*AU1 \.\.\. AU56"):
        G.read_generic_csv(root / "k.csv", root)


def test_on_error_must_be_known(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    (root / "g.csv").write_text("image,AU1\nimages/a.jpg,1\n")
    with pytest.raises(ValueError, match="on_error"):
        G.read_generic_csv(root / "g.csv", root, on_error="ignore")


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("fmt", ["manual", "automatic", "generic"])
def test_writer_reader_round_trip(tmp_path, fmt):
    table = random_table(40, seed=3, folder="images/opt")
    root = make_root(tmp_path, [p.split("/")[-1] for p in table["image"]], folder="images/opt")
    path = root / "labels" / f"x.{fmt}"
    if fmt == "manual":
        E.write_emotionet_manual(table, path, "http://synthau.invalid/opt/")
        assert path.read_text().splitlines()[0] == MANUAL_HEADER
        back, rep = E.read_emotionet_manual(path, root, image_dir="images/opt")
    elif fmt == "automatic":
        E.write_emotionet_automatic(table, path, "http://synthau.invalid/opt/")
        first = path.read_text().splitlines()[0].split("\t")
        assert len(first) == 62 and first[0] == "http://synthau.invalid/opt/0000.jpg" and first[2 + 2] == "999"
        back, rep = E.read_emotionet_automatic(path, root, image_dir="images/opt")
    else:
        G.write_generic_csv(table, path)
        back, rep = G.read_generic_csv(path, root)
    assert rep.kept == 40 and rep.skipped == 0
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert all(back[c].dtype == np.int8 for c in L.AU_COLUMNS)
    assert not list(path.parent.glob(".*")), "temporary file left behind"


def test_label_table_round_trip_and_validation(tmp_path):
    table = random_table(10)
    L.write_label_table(table, tmp_path / "labels" / "optimization.csv")
    back = L.read_label_table(tmp_path / "labels" / "optimization.csv")
    assert all(back[c].dtype == np.int8 for c in L.AU_COLUMNS)
    assert np.array_equal(back[L.AU_COLUMNS].to_numpy(), table[L.AU_COLUMNS].to_numpy())
    assert back["image"].tolist() == table["image"].tolist()
    bad = table.copy()
    bad["AU25"] = bad["AU25"].astype(int)
    bad.loc[3, "AU25"] = 999
    with pytest.raises(ValueError, match=r"row 3 .*'AU25'.*999"):
        L.validate_label_table(bad)
    dup = table.copy()
    dup.loc[7, "image"] = dup.loc[2, "image"]
    with pytest.raises(ValueError, match="rows 2 and 7"):
        L.write_label_table(dup, tmp_path / "d.csv")
    assert not (tmp_path / "d.csv").exists()
    with pytest.raises(ValueError, match=r"missing column\(s\) \['AU<n> \(at least one\)'\]"):
        L.validate_label_table(table[["image"]])
    with pytest.raises(ValueError, match=r"\['AU99'\] name AUs outside the kit's FACS catalog"):
        L.validate_label_table(table.assign(AU99=0))
    esc = table.copy()
    esc.loc[0, "image"] = "../x.jpg"
    with pytest.raises(ValueError, match="row 0.*leaves the data root"):
        L.validate_label_table(esc)
    with pytest.raises(FileNotFoundError, match="notebook 01_data"):
        L.read_label_table(tmp_path / "nope.csv")


def test_label_counts():
    table = random_table(50, seed=5)
    counts = L.label_counts(table)
    values = table[L.AU_COLUMNS].to_numpy()
    assert counts["positive"].tolist() == (values == 1).sum(0).tolist()
    assert counts["negative"].tolist() == (values == 0).sum(0).tolist()
    assert counts["unknown"].tolist() == (values == -1).sum(0).tolist()
    assert counts.loc[1, "prevalence"] == pytest.approx((values[:, 0] == 1).sum() / (values[:, 0] >= 0).sum())
    assert counts.loc[51, "group"] == "6au" and counts.loc[43, "group"] == "17au"


def test_safe_relative_path():
    assert L.safe_relative_path("a/./b.jpg") == "a/b.jpg"
    assert L.safe_relative_path("a\\b.jpg") == "a/b.jpg"
    for bad in ("../a.jpg", "a/../../b.jpg", "/a.jpg", "C:\\a.jpg", "", "."):
        with pytest.raises(ValueError):
            L.safe_relative_path(bad)


def test_short_lines_are_errors_not_unknowns(tmp_path):
    root = make_root(tmp_path, ["a.jpg", "b.jpg", "c,d.jpg"])
    (root / "g.csv").write_text("image,AU1,AU2\nimages/a.jpg,1,0\nimages/b.jpg,1\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 3.*too few fields \(expected 3\)"):
        G.read_generic_csv(root / "g.csv", root)
    df, rep = G.read_generic_csv(root / "g.csv", root, on_error="skip")
    assert df["image"].tolist() == ["images/a.jpg"] and rep.skipped == 1
    # quoted fields (a comma inside a name) keep the line numbers right
    (root / "q.csv").write_text('image,AU1,AU2\n"images/c,d.jpg",1,0\n\nimages/b.jpg,1\n')
    with pytest.raises(ValueError, match=r"q\.csv: line 4.*too few fields"):
        G.read_generic_csv(root / "q.csv", root)
    df, _ = G.read_generic_csv(root / "q.csv", root, on_error="skip")
    assert df["image"].tolist() == ["images/c,d.jpg"]


def test_byte_order_mark_and_extra_fields(tmp_path):
    root = make_root(tmp_path, ["a.jpg"])
    (root / "opt.csv").write_text("\ufeff" + MANUAL_HEADER + "\n" + manual_line("a.jpg", [1] * 23) + "\n",
                                  encoding="utf-8")
    df, _ = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    assert (df.iloc[0, 1:] == 1).all()
    (root / "x.csv").write_text(MANUAL_HEADER + "\n" + manual_line("a.jpg", [1] * 24) + ",1\n")
    with pytest.raises(ValueError, match=r"x\.csv: line 2 has 27 comma-separated fields, the header has 25"):
        E.read_emotionet_manual(root / "x.csv", root, image_dir="images")
    (root / "y.csv").write_text("image,AU1\nimages/a.jpg,1\nimages/a.jpg,1,0\n")
    with pytest.raises(ValueError, match=r"y\.csv.*line 3"):
        G.read_generic_csv(root / "y.csv", root)


# ------------------------------------------------------------------ hostile files (issue 15)
def test_non_utf8_file_names_file_line_and_fix(tmp_path):
    """A cp1252 file used to give a bare UnicodeDecodeError, with on_error='skip' too."""
    root = make_root(tmp_path, ["a.jpg", "caf\u00e9.jpg"])
    text = "\n".join([MANUAL_HEADER, manual_line("a.jpg", [1] * 23), manual_line("caf\u00e9.jpg", [0] * 23)])
    (root / "opt.csv").write_bytes(text.encode("cp1252"))
    for on_error in ("raise", "skip"):
        with pytest.raises(ValueError, match=r"opt\.csv: line 3, column 24 \(byte offset \d+\): byte b'\\xe9' "
                                             r"is not UTF-8.*save the file as UTF-8"):
            E.read_emotionet_manual(root / "opt.csv", root, image_dir="images", on_error=on_error)
    (root / "g.csv").write_text("image,AU1\nimages/a.jpg,1\n", encoding="utf-16")
    with pytest.raises(ValueError, match=r"g\.csv: line 1, column 1 .*UTF-16"):
        G.read_generic_csv(root / "g.csv", root)
    (root / "n.txt").write_bytes(automatic_line("a.jpg", [1] * 23).encode() + b"\n\x80\n")
    with pytest.raises(ValueError, match=r"n\.txt: line 2, column 1 "):
        E.read_emotionet_automatic(root / "n.txt", root, image_dir="images", on_error="skip")
    (root / "t.csv").write_bytes(b"image,AU1\nimages/caf\xe9.jpg,1\n")
    with pytest.raises(ValueError, match=r"t\.csv: line 2, column 11 .*not UTF-8"):
        L.read_label_table(root / "t.csv")
    # the same file saved as UTF-8 reads, the accented name included
    (root / "opt.csv").write_text(text, encoding="utf-8")
    df, _ = E.read_emotionet_manual(root / "opt.csv", root, image_dir="images")
    assert df["image"].tolist() == ["images/a.jpg", "images/caf\u00e9.jpg"]


@pytest.mark.parametrize("second", ["'AU 12'", "AU 12", "AU12"])
def test_repeated_au_column_is_refused(tmp_path, second):
    """Two columns for one AU used to read the first copy silently."""
    root = make_root(tmp_path, ["a.jpg"])
    (root / "opt.csv").write_text(MANUAL_HEADER + f",{second}\n" + manual_line("a.jpg", [0] * 23 + [1]))
    with pytest.raises(ValueError, match=r"opt\.csv: column 'AU12' appears more than once, as columns 10 "
                                         rf"\(\"'AU 12'\"\) and 26 \({re.escape(repr(second))}\)"):
        E.read_emotionet_manual(root / "opt.csv", root, image_dir="images", on_error="skip")
    (root / "g.csv").write_text(f"image,AU12,AU1,{second.strip(chr(39))}\nimages/a.jpg,1,0,0\n")
    with pytest.raises(ValueError, match=r"g\.csv: column 'AU12' appears more than once, as columns 2"):
        G.read_generic_csv(root / "g.csv", root)
    (root / "t.csv").write_text("image,AU1,AU1\nimages/a.jpg,1,0\n")
    with pytest.raises(ValueError, match=r"t\.csv: column 'AU1' appears more than once"):
        L.read_label_table(root / "t.csv")
    (root / "u.csv").write_text("image,image,AU1\nimages/a.jpg,x.jpg,1\n")
    with pytest.raises(ValueError, match=r"u\.csv: column 'image' appears more than once"):
        G.read_generic_csv(root / "u.csv", root)


# --------------------------------------------------------------------------- tables beyond the 23 (issue 24, point 1)
BP4D12 = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def test_a_bp4d_table_has_its_12_aus_in_catalog_order(tmp_path):
    from aulib.data.splits import check_split
    from aulib.report.figure1 import plot_label_counts

    root = make_root(tmp_path, ["a.jpg", "b.jpg"])
    shuffled = [24, 7, 1, 23, 2, 4, 6, 10, 12, 14, 15, 17]          # any column order in the file
    (root / "bp4d.csv").write_text("image," + ",".join(f"AU{a}" for a in shuffled) + "\n"
                                   "images/a.jpg," + ",".join("1" if a in (7, 14, 23) else "0" for a in shuffled) + "\n"
                                   "images/b.jpg," + ",".join(["0"] * 12) + "\n")
    df, _ = G.read_generic_csv(root / "bp4d.csv", root)
    assert list(df.columns) == ["image"] + [f"AU{a}" for a in BP4D12]
    L.write_label_table(df, tmp_path / "opt.csv")
    back = L.read_label_table(tmp_path / "opt.csv")
    assert list(back.columns) == list(df.columns) and back.loc[0, ["AU7", "AU14", "AU23"]].tolist() == [1, 1, 1]
    counts = L.label_counts(back)
    assert list(counts.index) == list(BP4D12) and counts.loc[14, "positive"] == 1
    fig = plot_label_counts(back)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "12 expression AUs" in texts and [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(a) for a in BP4D12]
    from aulib.data.splits import covered_groups
    assert covered_groups(back)[0] == "bp4d12" and "17au" not in covered_groups(back)   # what notebook 02 shows
    assert covered_groups(pd.DataFrame(columns=["image"] + L.AU_COLUMNS))[:3] == ["17au", "6au", "23au"]
    # every consumer refuses a group AU the table lacks, naming the AU and the table
    with pytest.raises(ValueError, match=r"opt\.csv: no label column \['AU25'\] for AU\(s\) \[25\]"):
        L.label_counts(back, [1, 25], source=str(tmp_path / "opt.csv"))
    split = back.assign(variant=0)
    with pytest.raises(ValueError, match=r"splits/H\.csv: no label column \['AU9', 'AU25', 'AU26'\] for AU\(s\) \[9, 25, 26\]"):
        check_split(split, "disfa8", source="splits/H.csv")
    with pytest.raises(ValueError, match=r"for AU\(s\) \[9, 25, 26\]; the table labels AUs \[1, 2, 4, 6, 7"):
        from aulib.data.splits import split_optimization
        split_optimization(back, "disfa8")
    # an EmotioNet table refuses the BP4D group by its missing AUs
    emo = pd.DataFrame({"image": ["x.jpg"], **{c: [0] for c in L.AU_COLUMNS}})
    with pytest.raises(ValueError, match=r"AU\(s\) \[7, 14, 23\]"):
        check_split(emo.assign(variant=0), "bp4d12")
    with pytest.raises(ValueError, match="needs its column|no label column"):
        E.write_emotionet_manual(back, tmp_path / "m.csv", "http://x/")
