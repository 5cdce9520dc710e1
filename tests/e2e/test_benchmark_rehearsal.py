"""The benchmark profiles rehearsed as their pages tell a user (issue 24, point 6).

For BP4D, DISFA and Aff-Wild2: SynthAU written by test code in the data set's
native layout (tests/helpers/native_layouts.py: BP4D's AU_OCC CSVs with 9s, DISFA's
intensity files and left-camera AVIs, Aff-Wild2's text files with -1 rows and
frame folders), subjects from the published fold lists; then the two commands
of the data set's page (docs/<dataset>.md, step 2) exactly as written, with
only the page's example paths replaced: the shipped profile derived at toy
size by code, MTCNN faces, the profile passed by path from outside the repo.
It must end in the benchmark table: each selection rule on the test fold and
on B per run and across runs, per test fold and their mean, beside the
published rows; the public rule equals a loop over each run's epochs with
scikit-learn's f1_score on the prediction files, and ``python -m aulib.audit``
reproduces the table from those files exported as CSVs."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from aulib.aus import au_columns
from aulib.io import read_yaml
from aulib.report import benchmark as BM
from aulib.runs import complete_epochs
from aulib.workspace import repo_root
from native_layouts import write_affwild2, write_bp4d, write_disfa
from test_rehearsal import write_weights

#: data set -> (example data root on its page, group, folds, writer of its native layout at toy size)
CASES = {
    "bp4d": ("/data/BP4D", "bp4d12", 3,
             lambda root: write_bp4d(root, subjects=("F001", "M007", "F018", "M011", "F003", "M010",
                                                     "F007", "F015", "F006"), tasks=("T1", "T2"), frames=7)),
    "disfa": ("/data/DISFA", "disfa8", 3,
              lambda root: write_disfa(root, subjects=("SN002", "SN010", "SN001", "SN013", "SN018", "SN011",
                                                       "SN003", "SN029", "SN023"), frames=14)),
    "affwild2": ("/data/Aff-Wild2", "affwild12", 1,
                 lambda root: write_affwild2(root, train=("video1", "video2_left", "video2_right", "video4",
                                                          "video6", "video7"),
                                             validation=("video3", "video5_left", "video8"), frames=16)),
}


def page_commands(dataset: str) -> list[str]:
    """The two commands of step 2 (rehearsal) of docs/<dataset>.md."""
    text = (repo_root() / "docs" / f"{dataset}.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    rehearse = next(b for b in blocks if "aulib.pipeline.rehearsal" in b)
    return [line.strip() for line in rehearse.strip().splitlines()]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_weights(tmp_path_factory.mktemp("weights"))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(CASES))
def test_benchmark_profile_rehearsed_from_its_native_layout(dataset, tmp_path, weights):
    example_root, group, n_folds, write = CASES[dataset]
    root = tmp_path / "data" / dataset
    write(root)
    assert not (root / "faces.csv").exists()
    weight_file, hf_home = weights
    commands = page_commands(dataset)
    assert len(commands) == 2 and f"--profile {dataset} " in commands[0]
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env.pop("AULIB_PROFILE", None)
    t0 = time.time()
    for command in commands:
        argv = [str(root) if a == example_root else f"{tmp_path}/{a[5:]}" if a.startswith("/tmp/")
                else a.replace("/weights/efficientnet_b4.safetensors", str(weight_file)) for a in shlex.split(command)]
        assert argv[:2] == ["python", "-m"]
        done = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=tmp_path, capture_output=True, text=True)
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        assert done.returncode == 0, f"{argv}\n{done.stderr[-6000:]}"
    print(f"{dataset} rehearsal took {(time.time() - t0) / 60:.1f} min")

    ws = tmp_path / f"{dataset}_rehearsal"
    folds = sorted(p.name for p in ws.glob("fold*"))
    assert folds == [f"fold{k}" for k in range(1, n_folds + 1)]
    faces = pd.read_csv(ws / "fold1" / "faces.csv")
    assert (faces["status"] == "ok").mean() > 0.5                               # MTCNN found the faces
    table = pd.read_csv(ws / "results" / "tables" / f"benchmark_{dataset}_{group}.csv")
    text = (ws / "results" / "tables" / f"benchmark_{dataset}_{group}.md").read_text()
    print(text)
    kit = table[table["kind"] == "kit"]
    assert list(dict.fromkeys(kit["fold"])) == ([*folds, "mean"] if n_folds > 1 else folds), kit
    assert (kit["images"] > 0).all(), kit
    check_public_rule_and_audit(ws, folds, group, table, dataset, tmp_path, env)
    published = table[table["kind"] == "published"]
    if dataset == "affwild2":
        assert published.empty or published["published F1"].notna().all()
    else:
        assert {"JAA-Net", "FMAE-IAT"} <= {m.split(" ")[0] for m in published["fold"]}, published
        assert published["published F1"].notna().all() and published["source"].str.len().gt(0).all()


def _mean_f1(y: np.ndarray, p: np.ndarray) -> float:
    known = y >= 0
    return float(np.mean([f1_score(y[known[:, j], j], p[known[:, j], j] >= 0.5, zero_division=0)
                          for j in range(y.shape[1])]))


def check_public_rule_and_audit(ws, folds, group, table, dataset, tmp_path, env):
    """The public-rule column against a loop over each run's epochs (sklearn, at
    0.5, on the test fold's images as they are), and the audit of the exported files."""
    kit = table[table["kind"] == "kit"].set_index(["fold", "model"])
    for fold in folds:
        chosen = read_yaml(ws / fold / "chosen" / f"{group}.yaml")
        runs = chosen["choice"]["candidates"]
        assert chosen["choice"]["criterion"] == "f1"                        # the profile's criterion
        rules = [f"{r} on {w}" for r in BM.RULES for w in ("test", "B")]
        assert kit.loc[[(fold, r) for r in runs], [*rules, BM.NO_CHOICE]].notna().all().all(), kit
        for run in runs:
            d = ws / fold / "train" / run
            index = pd.read_csv(d / "preds" / "H_index.csv")
            rows = (index["variant"] == 0).to_numpy()
            y = index[au_columns(chosen["aus"])].to_numpy()[rows]
            on_test = [_mean_f1(y, np.load(d / "preds" / f"H_epoch{e:03d}.npy").astype(np.float64)[rows])
                       for e in complete_epochs(d, "H")]
            assert kit.loc[(fold, run), "public rule on test"] == pytest.approx(100 * max(on_test), abs=1e-9)
            assert kit.loc[(fold, run), BM.NO_CHOICE] == pytest.approx(100 * on_test[-1], abs=1e-9)
    out = tmp_path / "exported"
    for argv in (["export", "--workspace", str(ws), "--group", group, "--out", str(out)],
                 ["--preds", str(out), "--labels", str(out / "labels.csv"), "--subjects", str(out / "subjects.csv"),
                  "--out", str(out / "table"), "--dataset", DATASETS[dataset]]):
        done = subprocess.run([sys.executable, "-m", "aulib.audit", *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    audited = pd.read_csv(out / "table" / "benchmark_audit.csv")
    pd.testing.assert_frame_equal(audited, table, check_exact=False, rtol=0, atol=1e-9)


#: data set -> its name in the published table
DATASETS = {"bp4d": "BP4D", "disfa": "DISFA", "affwild2": "Aff-Wild2"}
