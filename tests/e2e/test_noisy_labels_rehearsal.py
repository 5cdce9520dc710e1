"""The noisy-label rehearsal (issue 35.2): the paper's filtering step on a lab's own data, through the
whole pipeline with a profile derived by code from the shipped noisy_labels template, from outside the repo.

The lab's data, written by the test as a user would have it: SynthAU optimization images as the manually
coded set (``coded/<n>.jpg`` and ``labels.csv``), SynthAU noisy images as an unlabelled video
(``videos/day1.avi``, MJPG, written with OpenCV), its "machine labels" as an OpenFace 2 CSV
(``openface/day1.csv``, OpenFace's header) with a known error rate against SynthAU's true labels, plus a few
frames the tool failed on or was unsure of. The truth of the video's frames (``truth.csv``) lets 03 measure the
filter: how right the machine labels were, how right the labels C keeps are. MTCNN finds the faces.
Cost: 526 s measured on 2 cores shared with about 15 other busy processes (load average 15); seven notebook
steps at toy size (160 coded images, 160 video frames, 32 px, a 15-epoch base model, 1-epoch pretrain and
finetune), most of it kernel start-ups, MTCNN and the base model."""
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from aulib.data.sources import emotionet as E
from aulib.data.sources.generic_csv import read_generic_csv
from aulib.data.sources.synthau.generate import generate
from aulib.workspace import repo_root
from template_profiles import run_pipeline, write_profile

TEMPLATE = repo_root() / "notebooks" / "profiles" / "noisy_labels_template.yaml"
N_CODED, N_FRAMES, ERROR_RATE = 160, 160, 0.2
OPENFACE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)


def lab_data(tmp_path):
    import cv2
    synth = tmp_path / "synthau"
    generate(synth, profile="ci", seed=5, progress=False, size=96,
             counts={"optimization": N_CODED, "noisy": N_FRAMES, "validation": 0, "test": 0})
    coded, _ = E.read_emotionet_manual(synth / "labels" / "optimization.csv", synth, image_dir="images/optimization")
    true, _ = read_generic_csv(synth / "labels" / "noisy_true.csv", synth)
    noisy, _ = E.read_emotionet_automatic([synth / "labels" / "noisy.txt"], synth, image_dir="images/noisy")
    true = true.set_index("image").loc[noisy["image"]].reset_index()
    aus = yaml.safe_load(TEMPLATE.read_text())["groups"]["lab12"]["aus"]
    root = tmp_path / "my lab"
    rows = []
    for n, img in enumerate(coded["image"]):
        (root / "coded").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(synth / img, root / "coded" / f"{n:04d}.jpg")
        rows.append({"image": f"coded/{n:04d}.jpg",
                     **{f"AU{a}": ("" if coded[f"AU{a}"].iloc[n] == -1 else int(coded[f"AU{a}"].iloc[n])) for a in aus}})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)

    (root / "videos").mkdir()
    writer = cv2.VideoWriter(str(root / "videos" / "day1.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 96))
    for img in true["image"]:
        writer.write(cv2.imread(str(synth / img)))
    writer.release()

    rng = np.random.default_rng(0)
    t = np.stack([true[f"AU{a}"].to_numpy() if f"AU{a}" in true else rng.integers(0, 2, len(true))
                  for a in OPENFACE_AUS], axis=1).clip(0, 1)
    flip = rng.random(t.shape) < ERROR_RATE
    machine = np.where(flip, 1 - t, t)
    confidence = np.full(len(true), 0.93)
    success = np.ones(len(true), int)
    confidence[:4], success[4:7] = 0.4, 0                  # the tool unsure on 4 frames, lost the face on 3
    head = ["frame", "face_id", "timestamp", "confidence", "success"] + \
        [f"AU{a:02d}_r" for a in OPENFACE_AUS if a != 28] + [f"AU{a:02d}_c" for a in OPENFACE_AUS]
    lines = [", ".join(head)]
    for k in range(len(true)):
        intensity = [f"{(1.5 + (k % 3)) * machine[k, j]:.2f}" for j, a in enumerate(OPENFACE_AUS) if a != 28]
        lines.append(", ".join([str(k + 1), "0", f"{k / 10:.3f}", f"{confidence[k]:.2f}", str(success[k])]
                               + intensity + [str(int(v)) for v in machine[k]]))
    (root / "openface").mkdir()
    (root / "openface" / "day1.csv").write_text("\n".join(lines) + "\n")
    truth = pd.DataFrame({"image": [f"videos/day1.avi#{k}" for k in range(len(true))]})
    for a in aus:
        truth[f"AU{a}"] = true[f"AU{a}"].astype(int).replace(-1, "").to_numpy()
    truth.to_csv(root / "truth.csv", index=False)
    group = [OPENFACE_AUS.index(a) for a in aus]
    known = true[[f"AU{a}" for a in aus]].to_numpy() >= 0
    measured = float((machine[:, group] == t[:, group])[known].mean())
    return root, aus, measured


def derived_profile(tmp_path):
    """The shipped template with only data paths, sizes, epochs (and tiny CPU backbones) changed."""
    t = yaml.safe_load(TEMPLATE.read_text())
    t["profile"] = "mine"
    t["common"]["label_settings"]["truth"] = "truth.csv"
    t["defaults"]["02_split"].update(sizes=[32], num_workers=0)
    # a base model that has learned something (3 epochs leave every probability near 0.5: C empty)
    t["defaults"]["03_noisy_filter"].update(base_epochs=15, backbones=["test_efficientnet", "test_efficientnet"],
                                            img_size=32, batch_size=32, lr=0.01)
    t["defaults"]["04_train"].update(img_size=32, batch_size=32, lr=0.005,
                                     backbones=["test_efficientnet", "test_efficientnet"],
                                     overrides={"pretrained": False, "multicrop": False, "num_workers": 0})
    for step in t["steps"]:
        if step["notebook"] == "04_train.ipynb":
            step["parameters"]["epochs"] = 1
    return write_profile(t, tmp_path), t


@pytest.mark.slow
def test_noisy_labels_rehearsal(tmp_path):
    root, aus, machine_accuracy = lab_data(tmp_path)
    profile, t = derived_profile(tmp_path)
    ws = tmp_path / "workspace"
    run_pipeline(profile, root, ws, tmp_path)

    noisy = pd.read_csv(ws / "labels" / "noisy.csv")
    assert len(noisy) == N_FRAMES - 7 and noisy["image"].str.startswith("videos/day1.avi#").all()
    faces = pd.read_csv(ws / "faces.csv")
    assert (faces["n_faces"] > 0).mean() > 0.5                  # MTCNN found faces (no ground truth given)
    report = pd.read_csv(ws / "results" / "tables" / "noisy_filter_lab12.csv").set_index("au")
    c = pd.read_csv(ws / "splits" / "C_lab12.csv")
    truth = pd.read_csv(ws / "labels" / "noisy_true.csv").set_index("image")
    cols = [f"AU{a}" for a in aus]
    lab, tru = c[cols].to_numpy(), truth.loc[c["image"], cols].to_numpy()
    kept = (lab >= 0) & (tru >= 0)
    positives = kept & (lab == 1)
    precision = float((tru[positives] == 1).mean()) if positives.any() else float("nan")
    tool, tool_truth = noisy[cols].to_numpy(), truth.loc[noisy["image"], cols].to_numpy()
    tool_precision = float((tool_truth[(tool == 1) & (tool_truth >= 0)] == 1).mean())
    acc_before, acc_after = float(report.loc["mean", "acc_before"]), float(report.loc["mean", "acc_after"])
    print(f"\nnoisy-label rehearsal: machine labels right {machine_accuracy:.3f} (error rate {ERROR_RATE} drawn), "
          f"03 measured {acc_before:.3f} before the filter; C keeps {int(report.loc['mean', 'labels_after'])} of "
          f"{int(report.loc['mean', 'labels_before'])} labels, right {float((lab == tru)[kept].mean()):.3f} "
          f"(AU mean {acc_after:.3f}); precision of the positives: the tool's {tool_precision:.3f}, C's {precision:.3f}")
    assert abs(acc_before - (1 - ERROR_RATE)) < 0.05             # 03 measures the error rate the test drew
    assert 0 < len(c) <= len(noisy) and acc_after > acc_before    # C keeps labels, righter than the tool's
    pretrain = yaml.safe_load((ws / "train" / "lab12_pretrain" / "config.yaml").read_text())
    assert pretrain["train_splits"] == ["A", "C_lab12"] and pretrain["aus"] == aus
    finetune = yaml.safe_load((ws / "train" / "lab12_finetune" / "config.yaml").read_text())
    assert finetune["train_splits"] == ["A"] and finetune["init_from"].endswith("lab12_pretrain")
    assert (ws / "chosen" / "lab12.yaml").exists()
