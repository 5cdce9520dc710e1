"""The own-data rehearsal (issue 14, points 2 and 4): a user's DISFA-style data
set -- SynthAU images copied into a folder tree of their own, a generic CSV
with subjects and 12 DISFA AUs, no faces.csv -- run through the whole pipeline
with a profile derived by code from the shipped template, from outside the repo."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aulib.data.sources import emotionet as E
from aulib.data.sources.synthau.generate import generate
from aulib.workspace import repo_root
from template_profiles import run_pipeline, user_env, write_profile

TEMPLATE = repo_root() / "notebooks" / "profiles" / "own_data_template.yaml"
N_SUBJECTS, PER_SUBJECT = 15, 14          # 210 images


def user_data(tmp_path):
    """SynthAU optimization images as a user would have them: frames/<subject>/<n>.jpg
    and annotations/labels.csv (image, subject, the template group's AUs; unknown empty)."""
    synth = tmp_path / "synthau"
    generate(synth, profile="ci", seed=3, progress=False, size=96,
             counts={"optimization": N_SUBJECTS * PER_SUBJECT, "noisy": 0, "validation": 0, "test": 0})
    table, _ = E.read_emotionet_manual(synth / "labels" / "optimization.csv", synth, image_dir="images/optimization")
    aus = yaml.safe_load(TEMPLATE.read_text())["groups"]["disfa12"]["aus"]
    root = tmp_path / "my data"
    rows = []
    for i, (img, sub) in enumerate(zip(table["image"], np.repeat(np.arange(N_SUBJECTS), PER_SUBJECT))):
        rel = f"frames/SN{sub:03d}/{i % PER_SUBJECT:04d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(synth / img, root / rel)
        rows.append({"image": rel, "subject": f"SN{sub:03d}",
                     **{f"AU{a}": ("" if table[f"AU{a}"].iloc[i] == -1 else int(table[f"AU{a}"].iloc[i]))
                        for a in aus}})
    (root / "annotations").mkdir()
    pd.DataFrame(rows).to_csv(root / "annotations" / "labels.csv", index=False)
    assert not (root / "faces.csv").exists()
    return root


def derived_profile(tmp_path):
    """The shipped template with only data paths, sizes, epochs (and tiny CPU backbones) changed."""
    t = yaml.safe_load(TEMPLATE.read_text())
    t["profile"] = "mine"
    t["common"]["labels_csv"] = "annotations/labels.csv"
    t["defaults"]["02_split"].update(sizes=[32], num_workers=0)
    t["defaults"]["04_train"].update(epochs=1, img_size=32, batch_size=32,
                                     overrides={"pretrained": False, "multicrop": False, "num_workers": 0})
    for step in t["steps"]:
        if step["notebook"] == "04_train.ipynb":
            step["parameters"]["backbones"] = ["test_efficientnet", "test_efficientnet"]
    return write_profile(t, tmp_path), t


@pytest.mark.slow
def test_own_data_rehearsal(tmp_path):
    root = user_data(tmp_path)
    profile, t = derived_profile(tmp_path)
    ws = tmp_path / "workspace"
    run_pipeline(profile, root, ws, tmp_path)
    k = t["protocol"]["kfold"]
    subjects = pd.read_csv(ws / "fold1" / "labels" / "subjects.csv", dtype=str).set_index("image")["subject"]
    tests = []
    for fold in range(1, k + 1):
        fws = ws / f"fold{fold}"
        faces = pd.read_csv(fws / "faces.csv")
        if fold > 1:                                                # fold 1's crops are reused, not rebuilt
            store = Path("crops") / "aligned_32" / "pixels.u8"
            assert (fws / store).stat().st_ino == (ws / "fold1" / store).stat().st_ino
        assert (faces["n_faces"] > 0).mean() > 0.5                 # MTCNN found faces (no ground truth given)
        split_subjects = {s: set(subjects[pd.read_csv(fws / "splits" / f"{s}.csv")["image"]]) for s in "ABH"}
        assert all(split_subjects[a].isdisjoint(split_subjects[b]) for a, b in ("AB", "AH", "BH"))
        tests.append(split_subjects["H"])
        config = yaml.safe_load((fws / "train" / "disfa12_effnet" / "config.yaml").read_text())
        assert config["aus"] == t["groups"]["disfa12"]["aus"] and config["crop_style"] == "aligned"
        assert (fws / "results" / "tables" / "table1_disfa12.csv").exists()
        assert (fws / "chosen" / "disfa12.yaml").exists()
    assert set().union(*tests) == set(subjects) and sum(map(len, tests)) == N_SUBJECTS   # folds partition subjects
    summary = pd.read_csv(ws / "results" / "tables" / "kfold_disfa12.csv")
    assert summary["fold"].astype(str).tolist() == ["1", "2", "3", "mean"]
    f1_cols = [f"F1 AU{a}" for a in t["groups"]["disfa12"]["aus"]]
    assert set(f1_cols) <= set(summary.columns)
    assert summary["Final score"].iloc[-1] == pytest.approx(summary["Final score"].iloc[:-1].mean())
    assert summary["images"].iloc[-1] == N_SUBJECTS * PER_SUBJECT
    # predict with fold 1's chosen 12 AU model in a fresh process: the chosen file alone describes the group
    out = tmp_path / "pred.csv"
    res = subprocess.run([sys.executable, "-m", "aulib.predict", str(root / "frames" / "SN000"), "--model",
                          str(ws / "fold1" / "chosen" / "disfa12.yaml"), "--out", str(out), "--device", "cpu"],
                         cwd=tmp_path, env=user_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    pred = pd.read_csv(out)
    aus = t["groups"]["disfa12"]["aus"]
    assert len(pred) >= PER_SUBJECT and [c for c in pred.columns if c.startswith("AU")] == \
        [f"AU{a:02d}_prob" for a in aus] + [f"AU{a:02d}_c" for a in aus]
