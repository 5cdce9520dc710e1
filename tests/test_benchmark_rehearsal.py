"""The benchmark profiles rehearsed as their pages tell a user (issue 24, point 6).

For BP4D, DISFA and Aff-Wild2: SynthAU written by test code in the data set's
native layout (tests/native_layouts.py: BP4D's AU_OCC CSVs with 9s, DISFA's
intensity files and left-camera AVIs, Aff-Wild2's text files with -1 rows and
frame folders), subjects from the published fold lists; then the two commands
of the data set's page (docs/<dataset>.md, step 2) exactly as written, with
only the page's example paths replaced: the shipped profile derived at toy
size by code, MTCNN faces, the profile passed by path from outside the repo.
It must end in the benchmark table: three numbers per test fold and their
mean, beside the published rows."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import pandas as pd
import pytest

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
    assert list(kit["fold"]) == [*folds, "mean"], kit
    systems = ["as public codes", "honest", "no choice", "optimism"]
    assert kit[systems].notna().all().all() and (kit["images"] > 0).all(), kit
    published = table[table["kind"] == "published"]
    if dataset == "affwild2":
        assert published.empty or published["published F1"].notna().all()
    else:
        assert {"JAA-Net", "FMAE-IAT"} <= {m.split(" ")[0] for m in published["fold"]}, published
        assert published["published F1"].notna().all() and published["source"].str.len().gt(0).all()
