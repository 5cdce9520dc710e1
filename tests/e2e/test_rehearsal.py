"""The paper profile rehearsed: derived from paper.yaml by code (only the
rehearsal keys differ), and run end to end (slow) on SynthAU laid out as a
user lays out EmotioNet from the README: MTCNN faces, the paper's backbones
with ImageNet-route weights from a file and from a Hugging Face cache,
torchrun with 2 processes on gloo, H held out, Tables 1-3 written."""
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from aulib.aus import AUS_2020
from aulib.data.sources.synthau import generate as synth
from aulib.data.sources import prepare_labels
from aulib.pipeline import load_profile
from aulib.pipeline.profile import find_profile
from aulib.pipeline.rehearsal import CHANGED, CHANGED_TOP, main, rehearsal_profile, slice_data_root
from aulib.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def _leaves(node, path=()):
    """{key path: value} of every leaf of nested dicts and lists."""
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in _leaves(val, path + (key,)).items()}
    if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        return {k: v for i, val in enumerate(node) for k, v in _leaves(val, path + (i,)).items()}
    return {path: node}


def _changed(path) -> bool:
    return any(k in CHANGED for k in path) or path[-1] in CHANGED_TOP


def test_every_other_key_is_paper_yamls(tmp_path):
    paper = yaml.safe_load(find_profile("paper").read_text())
    w = tmp_path / "effb4.safetensors"
    w.write_bytes(b"x")
    reh = rehearsal_profile(weights={"efficientnet_b4": str(w)}, data_root=str(tmp_path))
    a, b = _leaves(paper), _leaves(reh)
    assert {p: v for p, v in a.items() if not _changed(p)} == {p: v for p, v in b.items() if not _changed(p)}
    assert {p for p in a if _changed(p)} <= set(b)           # nothing of the paper's dropped
    assert reh["defaults"]["04_train"]["nproc"] == 2 and reh["defaults"]["02_split"]["sizes"] == [32]
    assert max(v for p, v in b.items() if p[-1] in ("epochs", "base_epochs")) == 1
    assert max(v for p, v in b.items() if p[-1] == "num_workers") == 2
    pre = {s["name"]: s["parameters"]["overrides"].get("pretrained") for s in reh["steps"]
           if "overrides" in s.get("parameters", {})}
    assert pre["17au_effb4_plain"] == str(w) and pre["17au_r101_plain"] is True   # file / cache route
    assert pre["17au_effb4_finetune"] is None                 # fine-tuned from its pretrain run, as in paper
    assert reh["common"] == {**paper["common"], "data_root": str(tmp_path)}


def test_written_profile_loads_and_cli_slices_a_data_root(tmp_path):
    root = tmp_path / "emo"
    write_emotionet_layout(root, 12, 9)
    out = tmp_path / "r.yaml"
    assert main(["--data-root", str(root), "--out", str(out), "--rows", "5", "4", "--img-size", "40"]) == 0
    sliced = tmp_path / "r_data"
    reports = prepare_labels(Workspace.for_profile("r", root=tmp_path / "ws"), "emotionet", sliced, progress=False)
    assert {s: (r.read, r.kept) for s, r in reports.items()} == {"optimization": (5, 5), "noisy": (4, 4)}
    assert (sliced / "noisy" / "list_1.txt").read_bytes() == b"".join(
        (root / "noisy" / "list_1.txt").read_bytes().splitlines(keepends=True)[:4])
    profile = load_profile(str(out))
    assert profile.name == "rehearsal" and profile.common["data_root"] == str(sliced)
    assert profile.defaults["04_train"]["img_size"] == 40
    assert [s.name for s in profile.steps] == [s.name for s in load_profile("paper").steps]
    with pytest.raises(FileExistsError, match="already holds a data root"):
        slice_data_root(root, sliced, 5, 4)


# ----------------------------------------------------------------- the user's files

AU_NAMES = [f"'AU {a}'" for a in AUS_2020]


def _code(v: int) -> int:
    return 999 if v < 0 else int(v)


def write_emotionet_layout(root: Path, n_opt: int, n_noisy: int, seed: int = 3) -> None:
    """SynthAU faces and labels in docs/emotionet.md's layout (step 1),
    written here (csv module, PIL), not by the kit's writers; no faces.csv."""
    for split, n in (("optimization", n_opt), ("noisy", n_noisy)):
        lab = synth.split_labels(seed, split, n)
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            img = synth.render_image(seed, split, i, lab["intensity"][i])[0]
            name = f"{split[:3]}_{i:05d}.jpg"
            Image.fromarray(img).save(root / "images" / split / name, quality=90)
            url = f"http://emotionet.invalid/{split}/{i % 7}/{name}"
            rows.append([url, f"http://orig.invalid/{name}", [_code(v) for v in lab["written"][i]]])
        if split == "optimization":
            with open(root / "optimization.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["URL", "URL orig"] + AU_NAMES)
                w.writerows([u, o] + v for u, o, v in rows)
        else:                                  # two automatic lists, 60 values AU1..AU60 each
            (root / "noisy").mkdir(exist_ok=True)
            col = {a: j for j, a in enumerate(AUS_2020)}
            for part, chunk in ((1, rows[: n // 2]), (2, rows[n // 2:])):
                with open(root / "noisy" / f"list_{part}.txt", "w", newline="") as f:
                    for u, o, v in chunk:
                        f.write("\t".join([u, o] + [str(v[col[a]]) if a in col else "999"
                                                    for a in range(1, 61)]) + "\n")


def write_weights(tmp: Path) -> tuple[Path, Path]:
    """Random-init ImageNet-route weights, both ways a user gives them:
    efficientnet_b4 as a file, resnet101 in a Hugging Face hub cache
    (blobs/, snapshots/<rev>/model.safetensors -> blob, refs/main)."""
    import timm
    from safetensors.torch import save_file

    def state(name):
        return {k: v.contiguous() for k, v in timm.create_model(name).state_dict().items()}

    file = tmp / "weights" / "efficientnet_b4.safetensors"
    file.parent.mkdir(parents=True)
    save_file(state("efficientnet_b4"), str(file))
    hf_home = tmp / "hf"
    repo = hf_home / "hub" / f"models--timm--{timm.models.get_pretrained_cfg('resnet101').hf_hub_id.split('/')[1]}"
    blob = repo / "blobs" / "tmp.safetensors"
    blob.parent.mkdir(parents=True)
    save_file(state("resnet101"), str(blob))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    blob = blob.rename(blob.with_name(digest))
    rev = "0" * 40
    (repo / "snapshots" / rev).mkdir(parents=True)
    (repo / "snapshots" / rev / "model.safetensors").symlink_to(os.path.relpath(blob, repo / "snapshots" / rev))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    return file, hf_home


@pytest.mark.slow
def test_paper_path_rehearsed_end_to_end(tmp_path):
    """docs/emotionet.md step 3, its two commands as written: a
    slice of 200 optimization rows and 100 noisy lines of a larger data root."""
    data = tmp_path / "emotionet"
    write_emotionet_layout(data, 230, 120)
    assert not (data / "faces.csv").exists()
    weight_file, hf_home = write_weights(tmp_path)
    profile = tmp_path / "rehearsal.yaml"
    subprocess.run([sys.executable, "-m", "aulib.pipeline.rehearsal", "--data-root", str(data), "--out",
                    str(profile), "--rows", "200", "100", "--weights", f"efficientnet_b4={weight_file}"],
                   check=True, cwd=tmp_path)
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    for key in ("AULIB_PROFILE", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # torchrun sets the threads itself
        env.pop(key, None)
    ws = tmp_path / "ws"
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "aulib.pipeline", "--profile", str(profile), "--workspace", str(ws)],
                          env=env, cwd=tmp_path, capture_output=True, text=True)
    minutes = (time.time() - t0) / 60
    print(done.stdout[-3000:], done.stderr[-6000:], f"rehearsal took {minutes:.1f} min", sep="\n")
    assert done.returncode == 0, done.stderr[-6000:]

    faces = pd.read_csv(ws / "faces.csv")
    assert len(faces) == 200 + 100 and (faces["status"] == "ok").mean() > 0.5       # MTCNN found faces
    assert sorted(p.name for p in (ws / "crops").iterdir()) == ["aligned_32", "box1.5_32"]
    assert (ws / "splits" / "H.csv").exists() and not (ws / "splits" / "test.csv").exists()
    for run in ("17au_effb4_plain", "17au_r101_plain", "12au_effb4_no_cr"):
        cfg = yaml.safe_load((ws / "train" / run / "config.yaml").read_text())
        assert cfg["backbones"][0] in ("efficientnet_b4", "resnet101") and cfg["img_size"] == 32
        assert (cfg["heldout"], cfg["eval_splits"]) == ("H", ["B"]) and len(pd.read_csv(ws / "train" / run / "log.csv")) == 1
    assert yaml.safe_load((ws / "train" / "17au_effb4_plain" / "config.yaml").read_text())["pretrained"] == str(
        weight_file)
    assert yaml.safe_load((ws / "train" / "17au_r101_plain" / "config.yaml").read_text())["pretrained"] is True
    executed = (ws / "notebooks" / "04_train__17au_r101_plain.ipynb").read_text()
    assert "Setting OMP_NUM_THREADS" in executed        # torchrun's banner: more than one process

    tables = ws / "results" / "tables"
    for name in ("table1_17au", "table1_6au", "table3"):
        t = pd.read_csv(tables / f"{name}.csv")
        filled = t[["B Final", "B cross-fit Final", "Held-out F1", "Held-out Final"]].to_numpy(float)
        assert len(t) >= 2 and np.isfinite(filled).all(), f"{name} has empty cells:\n{t}"
    for run, name in (("17au_effb4_plain", "H"), ("17au_effb4_finetune", "H_mc")):   # predicted from checkpoints
        assert list((ws / "train" / run / "preds").glob(f"{name}_epoch*.npy")), (run, name)
    t2 = pd.read_csv(tables / "table2.csv")
    ours = t2[t2["source"] == "aulib"]
    assert len(ours) == 2 and ours[["Mean Accuracy", "F1", "Final score"]].isna().all().all()
    assert ours["note"].str.contains("no split 'validation'|no split 'test'").all()
    shutil.rmtree(ws / "train")                  # ~8 GB of checkpoints
