import warnings

import numpy as np
import pandas as pd
import pytest

from aulib.aus import AUS_2020, au_columns
from aulib.data.splits import (check_split, example_rows, expand_variants, labelled_images, make_splits, read_split,
                               split_optimization, split_summary)
from aulib.workspace import Workspace

COLS = au_columns(AUS_2020)


def label_table(n=1000, seed=0, unknown=0.1):
    """Imbalanced multi-label table: prevalences from 0.4% to 50%, some unknowns."""
    rng = np.random.default_rng(seed)
    prev = np.geomspace(0.004, 0.5, len(COLS))
    lab = (rng.random((n, len(COLS))) < prev).astype(np.int8)
    lab[rng.random(lab.shape) < unknown] = -1
    df = pd.DataFrame(lab, columns=COLS)
    df.insert(0, "image", [f"images/optimization/{i:06d}.jpg" for i in range(n)])
    return df


def positives(df):
    return (df[COLS] == 1).sum().to_numpy()


def test_proportions_and_partition():
    df = label_table(1000)
    parts = split_optimization(df, None, frac_b=0.1, seed=0)
    assert set(parts) == {"A", "B"}
    assert abs(len(parts["B"]) / len(df) - 0.1) <= 0.01
    images = pd.concat([parts["A"]["image"], parts["B"]["image"]])
    assert sorted(images) == sorted(df["image"]) and not images.duplicated().any()
    # rows keep their labels
    merged = parts["B"].merge(df, on="image", suffixes=("", "_src"))
    assert (merged[COLS].to_numpy() == merged[[c + "_src" for c in COLS]].to_numpy()).all()


def test_every_au_with_two_positives_has_positives_in_b():
    df = label_table(400, seed=3)
    n_pos = positives(df)
    assert (n_pos == 2).any() or (n_pos < 5).any()  # the table has rare AUs to test against
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = split_optimization(df, None, frac_b=0.1, seed=1)
    in_b, in_a = positives(parts["B"]), positives(parts["A"])
    ok = n_pos >= 2
    assert (in_b[ok] > 0).all() and (in_a[ok] > 0).all()
    # stratified: common AUs get close to 10% of their positives in B
    common = n_pos >= 100
    assert np.all(np.abs(in_b[common] / n_pos[common] - 0.1) < 0.03)


def test_rare_au_forced_into_b_and_unknown_is_not_positive():
    df = label_table(300, seed=2)
    df[COLS[0]] = 0
    df.loc[[5, 17], COLS[0]] = 1          # exactly two positives
    df.loc[::3, COLS[0]] = np.where(df.loc[::3, COLS[0]] == 1, 1, -1)
    parts = split_optimization(df, [1, 2, 4], frac_b=0.1, seed=0)
    assert (parts["B"][COLS[0]] == 1).sum() == 1 and (parts["A"][COLS[0]] == 1).sum() == 1


def test_warns_naming_au_with_one_positive():
    df = label_table(300, seed=2)
    df[COLS[3]] = -1
    df.loc[7, COLS[3]] = 1
    with pytest.warns(UserWarning, match="AU5"):
        split_optimization(df, None, seed=0)


def test_holdout_split():
    df = label_table(1000, seed=4)
    parts = split_optimization(df, None, frac_b=0.1, frac_holdout=0.1, seed=0)
    assert set(parts) == {"A", "B", "H"}
    assert abs(len(parts["H"]) - 100) <= 10 and abs(len(parts["B"]) - 100) <= 10
    assert sum(len(p) for p in parts.values()) == 1000
    assert positives(parts["H"])[positives(df) >= 3].min() > 0


@pytest.mark.filterwarnings("ignore:AU")
def test_deterministic_per_seed():
    df = label_table(500, seed=5)
    a = split_optimization(df, None, seed=7)["B"]["image"].tolist()
    b = split_optimization(df, None, seed=7)["B"]["image"].tolist()
    c = split_optimization(df, None, seed=8)["B"]["image"].tolist()
    assert a == b and a != c


def test_bad_arguments():
    df = label_table(50)
    with pytest.raises(ValueError, match="frac_b"):
        split_optimization(df, None, frac_b=1.2)
    with pytest.raises(ValueError, match="AU99"):
        split_optimization(df, [99])
    dup = pd.concat([df, df.iloc[:1]])
    with pytest.raises(ValueError, match="more than once"):
        split_optimization(dup, None)


def test_expand_variants():
    df = label_table(10)
    out = expand_variants(df, 4)
    assert len(out) == 40 and list(out.columns[:2]) == ["image", "variant"]
    assert out["variant"].tolist()[:8] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert (out.groupby("image")["variant"].apply(sorted).apply(tuple) == (0, 1, 2, 3)).all()
    assert (out[COLS].to_numpy()[::4] == df[COLS].to_numpy()).all()


def _workspace_with_splits(tmp_path, n_opt: int, other: str, n_other: int, seed: int, **kw):
    """A workspace with an optimization table of ``n_opt`` images and a ``other``
    label table of ``n_other``, split by make_splits(**kw). Returns (ws, paths, other table)."""
    from aulib.data.labels import write_label_table

    ws = Workspace.for_profile("ci", root=tmp_path / "ws")
    write_label_table(label_table(n_opt, seed=seed), ws.labels("optimization"))
    table = label_table(n_other, seed=seed + 7)
    table["image"] = table["image"].str.replace("optimization", other)
    write_label_table(table, ws.labels(other))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = make_splits(ws, seed=0, frac_b=0.1, b_copies=4, **kw)
    return ws, paths, table


def test_make_splits_and_read_split(tmp_path):
    ws, paths, test = _workspace_with_splits(tmp_path, 200, "test", 30, seed=1)
    assert set(paths) == {"A", "B", "test"}
    a, b, t = (read_split(n, ws=ws) for n in ("A", "B", "test"))
    assert len(b) == 4 * 20 and set(b["variant"]) == {0, 1, 2, 3}
    assert len(a) == 180 and set(a["variant"]) == {0}
    assert len(t) == 30 and set(t["variant"]) == {0}   # SynthAU's test: the generator degraded it already
    assert not set(a["image"]) & set(b["image"])
    assert b[COLS].dtypes.eq(np.int8).all()
    summary = split_summary(ws)
    assert list(summary.index) == ["A", "B", "test"]
    assert summary.loc["test", "rows"] == 30 and summary.loc["test", "images"] == 30
    assert summary.loc["B", "rows"] == 80 and summary.loc["B", "images"] == 20
    assert summary.loc["A", "AU25"] == (a["AU25"] == 1).sum()
    assert labelled_images(ws) == list(label_table(200, seed=1)["image"]) + list(test["image"])
    sub = read_split(ws.split("B"), aus="6au")
    assert list(sub.columns) == ["image", "variant", "AU51", "AU52", "AU53", "AU54", "AU55", "AU56"]


@pytest.mark.parametrize("other", ["validation", "test"])
def test_heldout_split_h_is_degraded_like_b(tmp_path, other):
    """H gets B's variants 0..3 (same degraded copies), so B and H differ only in which
    images the choices saw; validation, SynthAU's (already degraded) test and A stay single copies."""
    ws, _, _ = _workspace_with_splits(tmp_path, 300, other, 20, seed=2, frac_holdout=0.1)
    b, h, a, v = (read_split(n, ws=ws) for n in ("B", "H", "A", other))
    for split in (b, h):
        per_image = split.groupby("image")["variant"].apply(tuple)
        assert (per_image == (0, 1, 2, 3)).all()
    assert len(h) == 4 * h["image"].nunique()
    assert set(a["variant"]) == {0} and set(v["variant"]) == {0} and len(v) == 20
    assert not set(h["image"]) & (set(a["image"]) | set(b["image"]))


def test_read_split_errors(tmp_path):
    df = expand_variants(label_table(5), 1)
    bad = df.copy()
    bad.loc[2, "AU4"] = 7
    with pytest.raises(ValueError, match="row 2 column AU4"):
        check_split(bad, source="x.csv")
    bad = df.copy()
    bad.loc[1, "image"] = "../escape.jpg"
    with pytest.raises(ValueError, match="leaves the data root"):
        check_split(bad)
    with pytest.raises(ValueError, match="'variant'"):
        check_split(df.drop(columns="variant"))
    with pytest.raises(ValueError, match="repeats image"):
        check_split(pd.concat([df, df.iloc[:1]], ignore_index=True))
    with pytest.raises(ValueError, match=r"\['AU99'\]"):
        check_split(df, aus=[99])
    with pytest.raises(FileNotFoundError, match="make_splits"):
        read_split(tmp_path / "none.csv")


def test_example_rows_puts_head_tilts_first():
    df = expand_variants(label_table(40, seed=0), 1)
    df[["AU55", "AU56"]] = 0
    df.loc[30, "AU56"] = 1
    df.loc[35, "AU55"] = 1
    rows = example_rows(df, (55, 56), n=4)
    assert rows["image"].tolist() == [df.loc[30, "image"], df.loc[35, "image"], df.loc[0, "image"], df.loc[1, "image"]]
