"""A split plan that leaves B, H or a fold with too few subjects or images is
refused at 02_split, before anything is written, naming the counts and what
to change (a generic CSV of 2 subjects; the own-data template's kfold 3 with
4 subjects)."""
import warnings

import numpy as np
import pandas as pd
import pytest

from aulib.data import sources as S
from aulib.data.splits import make_splits
from aulib.workspace import Workspace


def _own_data(tmp_path, n_subjects: int, per: int = 10) -> Workspace:
    """A user's data root of ``n_subjects`` (frames/<subject>/<k>.jpg, labels.csv), labels read into a workspace."""
    root, rng, rows = tmp_path / "data", np.random.default_rng(0), []
    for s in range(n_subjects):
        for k in range(per):
            img = root / "frames" / f"S{s}" / f"{k}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            img.write_bytes(b"")
            rows.append({"image": f"frames/S{s}/{k}.jpg", "subject": f"S{s}",
                         **{f"AU{a}": int(v) for a, v in zip((1, 2, 4), rng.random(3) < 0.4)}})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    ws = Workspace.for_profile("mine", root=tmp_path / "ws")
    S.prepare_labels(ws, "csv", root, optimization="labels.csv")
    return ws


def test_two_subjects_leave_b_empty_and_are_refused_before_writing(tmp_path):
    ws = _own_data(tmp_path, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            make_splits(ws, frac_b=0.1)
    msg = str(info.value)
    assert "leaves B with 0 image(s) of 0 subject(s) (of 2 subjects" in msg
    assert "raise frac_b (now 0.1)" in msg and "more subjects" in msg
    assert not ws.split("A").exists() and not ws.split("B").exists()


def test_template_kfold_3_with_4_subjects_is_refused_in_the_fold_it_breaks(tmp_path):
    ws = _own_data(tmp_path, 4)
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fold in (1, 2, 3):
            try:
                make_splits(ws, kfold=3, fold=fold, frac_b=0.2)
            except ValueError as e:
                failed.append(str(e))
    assert failed and all(m.startswith("fold ") and "of kfold 3 leaves B with 0 image(s)" in m for m in failed)
    assert not ws.split("B").exists() or len(failed) < 3


def test_more_folds_than_subjects_names_the_limit(tmp_path):
    ws = _own_data(tmp_path, 4)
    with pytest.raises(ValueError, match=r"cannot split 4 subject\(s\) into 50 splits .*kfold <= 4"):
        make_splits(ws, kfold=50, fold=1)


def test_b_of_one_subject_is_warned(tmp_path):
    ws = _own_data(tmp_path, 6)
    with pytest.warns(UserWarning, match="B holds a single subject"):
        make_splits(ws, frac_b=0.2)
