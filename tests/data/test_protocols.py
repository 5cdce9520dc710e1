"""Published protocols (issue 24, point 3): BP4D's and DISFA's subject-exclusive
3 folds as ME-GraphAU lists them, Aff-Wild2's official split, by name."""
import warnings

import numpy as np
import pandas as pd
import pytest

from aulib.data import protocols as P
from aulib.data import sources as S
from aulib.data.labels import write_label_table
from aulib.data.splits import make_splits, protocol_split, read_split
from aulib.io import write_csv
from aulib.workspace import Workspace

BP4D12 = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def bp4d_table(per=4, seed=0, drop=()):
    """A BP4D-like label table: every listed subject but ``drop``, ``per`` frames each."""
    rng = np.random.default_rng(seed)
    subjects = [s for part in P.PROTOCOLS["bp4d_3fold"].parts for s in part if s not in drop]
    rows = [{"image": f"{s}/T1/{k}.jpg", "subject": s} for s in subjects for k in range(per)]
    df = pd.DataFrame(rows)
    for a in BP4D12:
        df[f"AU{a}"] = (rng.random(len(df)) < 0.4).astype(np.int8)
    return df


def test_the_published_lists():
    bp4d, disfa = P.PROTOCOLS["bp4d_3fold"], P.PROTOCOLS["disfa_3fold"]
    assert [len(p) for p in bp4d.parts] == [14, 14, 13] and len({s for p in bp4d.parts for s in p}) == 41
    assert [len(p) for p in disfa.parts] == [9, 9, 9] and len({s for p in disfa.parts for s in p}) == 27
    # fold 1 tests on part 3, fold 2 on part 2, fold 3 on part 1 (ME-GraphAU)
    assert bp4d.test_subjects(1)[0] == "F007" and bp4d.test_subjects(3)[0] == "F001"
    assert disfa.test_subjects(1) == ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004")
    assert disfa.test_subjects(2)[0] == "SN013" and set(disfa.train_subjects(1)) == set(disfa.parts[0] + disfa.parts[1])
    assert P.PROTOCOLS["affwild2_official"].n_folds == 1
    with pytest.raises(ValueError, match=r"unknown protocol folds 'bp4d'; the kit knows \['affwild2_official'"):
        P.get_protocol("bp4d")
    with pytest.raises(ValueError, match=r"fold must be one of 1..3"):
        bp4d.test_part(4)


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_fold_k_tests_on_its_listed_subjects(fold):
    df = bp4d_table()
    p = P.PROTOCOLS["bp4d_3fold"]
    parts = protocol_split("bp4d_3fold", fold, df, df["subject"].to_numpy(), frac_b=0.2)
    subj = df.set_index("image")["subject"]
    held = set(subj[parts["H"]["image"]])
    a, b = set(subj[parts["A"]["image"]]), set(subj[parts["B"]["image"]])
    assert held == set(p.test_subjects(fold))                      # exactly the published test part
    assert a | b == set(p.train_subjects(fold)) and not a & b       # B subject-exclusive, from the other parts
    assert 4 <= len(b) <= 7                                         # frac_b of the 27-28 training subjects
    assert list(parts["H"].columns) == list(df.columns)


def test_missing_subjects_are_counted_and_an_empty_test_part_refused():
    part3 = P.PROTOCOLS["bp4d_3fold"].parts[2]
    df = bp4d_table(drop=("F001", "M011"))
    with pytest.warns(UserWarning, match=r"fold 1: 2 of its 41 listed subjects are not in the data \(F001, M011\)"):
        protocol_split("bp4d_3fold", 1, df, df["subject"].to_numpy())
    df = bp4d_table(drop=part3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"fold 1 tests on part 3 \(F007, .*none of whose subjects is in the data"):
            protocol_split("bp4d_3fold", 1, df, df["subject"].to_numpy())
        assert len(protocol_split("bp4d_3fold", 2, df, df["subject"].to_numpy())["H"]) == 14 * 4
    with pytest.raises(ValueError, match="names its test folds by subject, but the label tables have no subjects"):
        protocol_split("bp4d_3fold", 1, df, None)
    extra = pd.concat([bp4d_table(), bp4d_table().assign(subject="X999", image=lambda d: "x/" + d["image"])])
    with pytest.warns(UserWarning, match=r"1 subject\(s\) of the data are in none of its parts \(X999\)"):
        parts = protocol_split("bp4d_3fold", 1, extra, extra["subject"].to_numpy())
    assert sum(map(len, parts.values())) == len(extra) // 2          # X999's images are left out


def test_make_splits_with_named_folds_and_the_official_split(tmp_path):
    ws = Workspace.for_profile("b", root=tmp_path / "ws")
    df = bp4d_table()
    write_label_table(df, ws.labels("optimization"))
    write_csv(S.subjects_path(ws), df[["image", "subject"]])
    make_splits(ws, folds="bp4d_3fold", fold=3, frac_b=0.2, b_copies=4)
    subj = S.load_subjects(ws)
    h = read_split("H", ws=ws)
    assert set(subj[h["image"]]) == set(P.PROTOCOLS["bp4d_3fold"].parts[0])
    assert (h["variant"] == 0).all() and set(read_split("B", ws=ws)["variant"]) == {0, 1, 2, 3}  # H as the images are
    with pytest.raises(ValueError, match="names the test folds; set kfold and frac_holdout to 0"):
        make_splits(ws, folds="bp4d_3fold", fold=1, kfold=3)
    # Aff-Wild2: H is the Validation_Set table as it is, A/B from Train_Set
    ws2 = Workspace.for_profile("aw", root=tmp_path / "ws2")
    train, val = df[df["subject"].str.startswith("F")], df[df["subject"].str.startswith("M")]
    write_label_table(train, ws2.labels("optimization"))
    write_csv(S.subjects_path(ws2), df[["image", "subject"]])
    with pytest.raises(ValueError, match=r"reports on the 'validation' label table; the workspace has none"):
        make_splits(ws2, folds="affwild2_official", fold=1)
    write_label_table(val, ws2.labels("validation"))
    make_splits(ws2, folds="affwild2_official", fold=1, frac_b=0.2, b_copies=1)
    h = read_split("H", ws=ws2)
    assert h["image"].tolist() == val["image"].tolist()
    a_b = pd.concat([read_split("A", ws=ws2), read_split("B", ws=ws2)])
    assert sorted(a_b["image"]) == sorted(train["image"])
