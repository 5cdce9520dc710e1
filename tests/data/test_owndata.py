"""Own data: generic CSV with subjects / split column / absolute paths, profile
AU groups, subject-exclusive splits and the k-fold protocol (issue 14.2)."""
import warnings

import numpy as np
import pandas as pd
import pytest

from aulib import aus
from aulib.model.config import TrainConfig
from aulib.data.sources import generic_csv as G
from aulib.data import sources as S
from aulib.data.splits import kfold_split, make_splits, read_split, split_optimization, subject_overlap
from aulib.workspace import Workspace

DISFA12 = [1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26]


def user_csv(root, n_subjects=12, per=10, seed=0, split=False, absolute=False):
    """A user's data root: frames/<subject>/<k>.jpg (empty files) and labels.csv
    with image, subject[, split] and the 12 DISFA AUs."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for k in range(per):
            img = root / "frames" / f"S{s:02d}" / f"{k:03d}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            img.write_bytes(b"")
            row = {"image": str(img) if absolute else f"frames/S{s:02d}/{k:03d}.jpg", "subject": f"S{s:02d}"}
            if split:
                row["split"] = "test" if s >= n_subjects - 2 else "train"
            row.update({f"AU{a}": int(v) for a, v in zip(DISFA12, rng.random(12) < 0.3)})
            rows.append(row)
    df = pd.DataFrame(rows)
    df.to_csv(root / "labels.csv", index=False)
    return df


def test_profile_groups_are_values():
    own = aus.parse_groups({"disfa12": {"aus": DISFA12, "crop": "aligned"}})
    assert own == {"disfa12": aus.AUGroup("disfa12", tuple(DISFA12), "aligned")}
    assert aus.group_aus("disfa12", own) == tuple(DISFA12) and aus.group_crop("disfa12", own) == "aligned"
    assert aus.parse_groups({"disfa12": {"aus": DISFA12[:3]}})["disfa12"].aus == tuple(DISFA12[:3])  # no registry
    assert aus.group_crop("6au") == "box1.5" and "box1.5" in aus.crop_styles()
    with pytest.raises(ValueError, match="'17au' is a built-in group"):
        aus.make_group("17au", DISFA12)
    with pytest.raises(ValueError, match=r"AU 99 is not in the kit's FACS catalog"):
        aus.make_group("bp4d", [1, 99])
    with pytest.raises(ValueError, match="'box' is not a crop style"):
        aus.parse_groups({"x": {"aus": [1], "crop": "box"}})
    with pytest.raises(ValueError, match="keys 'aus'"):
        aus.parse_groups({"x": [1, 2]})
    with pytest.raises(ValueError, match="declare it in the profile"):
        aus.group_aus("disfa12")                    # a profile's group is known only where it is passed


def test_run_config_records_aus_and_crop():
    from aulib.model.config import notebook_config

    own = aus.parse_groups({"disfa12": {"aus": DISFA12, "crop": "aligned"}})
    cfg = notebook_config("ws", group="disfa12", groups=own)
    assert cfg.aus == DISFA12 and cfg.crop_style == "aligned" and cfg.au_group == own["disfa12"]
    # a fresh process (torchrun child, later stage) knows the group from config.yaml alone
    again = TrainConfig.from_dict(cfg.to_dict()).resolved()
    assert again.to_dict() == cfg.to_dict()
    with pytest.raises(ValueError, match="unknown AU group 'disfa12'"):
        TrainConfig(group="disfa12").resolved()     # without its AUs the name means nothing
    with pytest.raises(ValueError, match="differ from group '6au'"):
        TrainConfig(group="6au", aus=[1, 2]).resolved()
    with pytest.raises(ValueError, match="differ from the profile's group 'disfa12'"):
        notebook_config("ws", group="disfa12", groups=own, overrides={"aus": [1, 2]})


def test_generic_csv_subject_split_and_absolute_paths(tmp_path):
    root = tmp_path / "mine"
    src = user_csv(root, n_subjects=4, per=3, split=True, absolute=True)
    df, rep = G.read_generic_csv(root / "labels.csv", root)
    assert df["image"].tolist() == [f"frames/S{s:02d}/{k:03d}.jpg" for s in range(4) for k in range(3)]
    assert df["subject"].tolist() == src["subject"].tolist()
    assert set(df["split"]) == {"optimization", "test"}
    assert not any("subject" in n for n in rep.notes)          # not reported as an ignored column
    # an absolute path outside the data root, an unknown split, an empty subject: each named
    for text, message in ((f"image,AU1\n{tmp_path / 'x.jpg'},1\n", "lies outside the data root"),
                          ("image,subject,split,AU1\nframes/S00/000.jpg,S0,dev,1\n",
                           r"line 2, column 'split': 'dev' is not a split"),
                          ("image,subject,AU1\nframes/S00/000.jpg,,1\n", r"line 2, column 'subject' is empty")):
        (root / "bad.csv").write_text(text)
        with pytest.raises(ValueError, match=message):
            G.read_generic_csv(root / "bad.csv", root)


def test_prepare_csv_split_column_and_subjects(tmp_path):
    root = tmp_path / "mine"
    user_csv(root, n_subjects=6, per=4, split=True)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    reports = S.prepare_labels(ws, "csv", root, optimization="labels.csv")
    assert set(reports) == {"optimization", "test"}
    assert len(S.load_labels(ws, "optimization")) == 16 and len(S.load_labels(ws, "test")) == 8
    subjects = S.load_subjects(ws)
    assert len(subjects) == 24 and subjects["frames/S05/000.jpg"] == "S05"
    with pytest.raises(ValueError, match="also has its own label file"):
        S.prepare_labels(ws, "csv", root, optimization="labels.csv", test="labels.csv")
    pd.read_csv(root / "labels.csv").drop(columns=["subject", "split"]).to_csv(root / "plain.csv", index=False)
    S.prepare_labels(ws, "csv", root, optimization="plain.csv")
    assert S.load_subjects(ws) is None and not S.available_splits(ws) == ["optimization", "test"]


def test_splits_are_subject_exclusive(tmp_path):
    root = tmp_path / "mine"
    user_csv(root, n_subjects=20, per=8)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    S.prepare_labels(ws, "csv", root, optimization="labels.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # AUs the CSV never labels are not warned about
        make_splits(ws, seed=0, frac_b=0.2, frac_holdout=0.2)
    subj = S.load_subjects(ws)
    per_split = {n: set(subj[read_split(n, ws=ws)["image"]]) for n in ("A", "B", "H")}
    assert per_split["A"].isdisjoint(per_split["B"]) and per_split["A"].isdisjoint(per_split["H"])
    assert per_split["B"].isdisjoint(per_split["H"]) and 3 <= len(per_split["B"]) <= 5 <= len(per_split["A"]) - 5
    assert subject_overlap(ws) == {}
    # the old, image-level split would mix subjects (what the test guards against)
    table = S.load_labels(ws, "optimization")
    parts = split_optimization(table, frac_b=0.2, frac_holdout=0.2, seed=0)
    assert not set(subj[parts["A"]["image"]]).isdisjoint(subj[parts["B"]["image"]])


def test_kfold_folds_partition_subjects(tmp_path):
    root = tmp_path / "mine"
    user_csv(root, n_subjects=9, per=6, seed=1)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    S.prepare_labels(ws, "csv", root, optimization="labels.csv")
    table, subj = S.load_labels(ws, "optimization"), S.load_subjects(ws)
    tests = []
    for fold in (1, 2, 3):
        parts = kfold_split(table, 3, fold, frac_b=0.2, seed=0, subjects=subj[table["image"]].to_numpy())
        held = set(subj[parts["H"]["image"]])
        assert held.isdisjoint(subj[parts["A"]["image"]]) and held.isdisjoint(subj[parts["B"]["image"]])
        assert sum(len(p) for p in parts.values()) == len(table)
        tests.append(held)
    assert set().union(*tests) == set(subj) and sum(map(len, tests)) == 9    # the test folds partition
    make_splits(ws, kfold=3, fold=2, frac_b=0.2)
    assert set(subj[read_split("H", ws=ws)["image"]]) == tests[1]
    with pytest.raises(ValueError, match="set frac_holdout to 0"):
        make_splits(ws, kfold=3, fold=1, frac_holdout=0.1)
    with pytest.raises(ValueError, match=r"fold must be one of 1..3"):
        kfold_split(table, 3, 4)
    with pytest.raises(ValueError, match="cannot split 2 subject"):
        kfold_split(table.iloc[:12], 3, 1, subjects=subj[table["image"].iloc[:12]].to_numpy())


def test_cross_fitted_folds_keep_subjects_together(tmp_path):
    """The honest estimate's folds (aulib.select.folds) follow subjects when the
    workspace has them: B's 4 copies of an image and all images of a subject share a fold."""
    from aulib.select.choose import Candidates
    from aulib.select.folds import add_subjects, fold_groups, group_folds

    root = tmp_path / "mine"
    user_csv(root, n_subjects=6, per=3)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    S.prepare_labels(ws, "csv", root, optimization="labels.csv")
    table = S.load_labels(ws, "optimization")
    index = table[["image"]].loc[table.index.repeat(4)].reset_index(drop=True)
    index["variant"] = np.tile(np.arange(4), len(table))
    cands = Candidates("B", (1,), [("r", 1)], np.zeros((len(index), 1), np.int8),
                       np.zeros((1, len(index), 1), np.float32), add_subjects(index, ws))
    folds = group_folds(cands.groups(), 3, seed=0)
    per_subject = pd.Series(folds).groupby(index["subject"].to_numpy()).nunique()
    assert (per_subject == 1).all() and len(set(folds)) == 3      # no subject straddles two folds
    with pytest.warns(UserWarning, match="only 6 groups"):        # 6 subjects, 10 folds asked: 6 folds
        assert len(set(group_folds(cands.groups(), 10))) == 6
    with pytest.raises(ValueError, match="at least 2 groups"):
        group_folds(np.array(["S1"] * 8), 5)
    one = index[index["subject"] == "S00"].reset_index(drop=True)
    with pytest.warns(UserWarning, match="holds one subject"):     # B of one subject: folds by image
        assert (fold_groups(one) == one["image"].to_numpy()).all()
    plain = Workspace.for_profile("plain", root=tmp_path / "ws2")
    assert "subject" not in add_subjects(index.drop(columns="subject"), plain).columns


def test_chosen_file_of_an_own_group_loads_without_the_profile(tmp_path):
    """A later stage (predict, tables) in a fresh process knows a profile's group from chosen/<group>.yaml."""
    from aulib.io import write_yaml
    from aulib.select.chosen import load_chosen

    path = tmp_path / "chosen" / "disfa12.yaml"
    write_yaml(path, {"group": "disfa12", "aus": DISFA12, "ensemble": None,
                      "runs": {"r": {"dir": "train/r", "backbones": ["a", "a"], "img_size": 32, "crop_style": "box1.3"}},
                      "per_au": [{"au": a, "run": "r", "epoch": 1, "threshold": 0.5} for a in DISFA12]})
    model = load_chosen(path, check_files=False)
    assert model.aus == DISFA12 and model.au_group == aus.AUGroup("disfa12", tuple(DISFA12), "box1.3")


def test_linear_ensemble_on_rows_of_one_subject_falls_back_to_row_folds():
    """Table 1's cross-fit trains the ensemble on B minus one fold: with 2 subjects in B, one subject."""
    from aulib.select.ensemble import fit_linear_ensemble

    rng = np.random.default_rng(0)
    labels = (rng.random((40, 2)) < 0.5).astype(np.int8)
    probs = [np.clip(labels * 0.6 + rng.random((40, 2)) * 0.4, 0.01, 0.99) for _ in range(2)]
    with pytest.warns(UserWarning, match="one subject"):
        ens, oof = fit_linear_ensemble(probs, labels, groups=np.array(["S1"] * 40), folds=5)
    assert oof.shape == (40, 2) and np.isfinite(oof).all()
