"""``python -m aulib.audit`` (issue 32, point 5): the benchmark table of any
code's per-epoch predictions. Files written as another codebase would write
them (pandas, ``AU01`` names, image paths as strings), bad input named by
file, line and AU, and the kit's own table reproduced from its prediction
files exported as CSVs. Cost: about 40 s (three synthetic fold workspaces)."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from aulib.audit.cli import main
from aulib.audit.inputs import AuditError
from aulib.audit.run import audit
from aulib.pipeline.kfold import fold_workspace
from aulib.report.kfold import write_kfold_summaries
from aulib.report import benchmark as BM
from aulib.workspace import Workspace, repo_root
from benchmark_folds import GROUP, write_fold

BP4D = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def write_other_codebase(root, epochs=4, val=True, seed=0):
    """What a training loop of another code writes: per epoch and split a
    pandas frame of sigmoid outputs (float32) with ``AU01``-style names and the
    image paths of its data lists; labels with ``AU1`` names and subjects."""
    rng = np.random.default_rng(seed)
    subjects = {"test": ["F001", "M007", "F018", "M011"], "val": ["F003", "M010"]}
    images = {s: [f"{subj}/T{t}/{k:04d}.jpg" for subj in subjects[s] for t in (1, 2) for k in range(6)]
              for s in subjects}
    y = {s: (rng.random((len(images[s]), len(BP4D))) < 0.35).astype(int) for s in images}
    labels = pd.concat([pd.DataFrame({"image": images[s], "subject": [i.split("/")[0] for i in images[s]]})
                        .join(pd.DataFrame(y[s], columns=[f"AU{a}" for a in BP4D])) for s in images])
    labels.to_csv(root / "labels.csv", index=False)
    for model, skill in (("resnet50", 1.2), ("swin_base", 0.6)):
        out = root / "preds" / model
        out.mkdir(parents=True)
        for epoch in range(1, epochs + 1):
            for s in (("test", "val") if val else ("test",)):
                logits = skill * epoch / epochs * (2 * y[s] - 1) + rng.normal(0, 1, y[s].shape)
                probs = (1 / (1 + np.exp(-logits))).astype(np.float32)
                frame = pd.DataFrame(probs, columns=[f"AU{a:02d}" for a in BP4D])
                frame.insert(0, "image", images[s])
                frame.to_csv(out / f"{s}_epoch{epoch}.csv", index=False)
    return root / "preds", root / "labels.csv"


def _mean_f1(y, p):
    return np.mean([f1_score(y[:, j], p[:, j] >= 0.5, zero_division=0) for j in range(y.shape[1])])


def test_another_codebases_files_are_audited_from_the_command_line(tmp_path):
    preds, labels = write_other_codebase(tmp_path)
    help_ = subprocess.run([sys.executable, "-c", "import runpy, sys; sys.argv = ['aulib.audit', '--help']\n"
                            "try:\n    runpy.run_module('aulib.audit', run_name='__main__')\nexcept SystemExit:\n"
                            "    assert 'torch' not in sys.modules, 'torch imported'\n    print('no torch')"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root())})
    assert help_.returncode == 0 and "--preds" in help_.stdout and "no torch" in help_.stdout, help_.stderr
    done = subprocess.run([sys.executable, "-m", "aulib.audit", "--preds", str(preds), "--labels", str(labels),
                           "--out", str(tmp_path / "table"), "--dataset", "BP4D"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo_root())})
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(tmp_path / "table" / "benchmark_audit.csv")
    kit = df[df["kind"] == "kit"].set_index("model")
    assert list(kit.index) == ["resnet50", "swin_base", BM.ALL_RUNS] and (kit["fold"] == "test").all()
    assert kit[[c for c in BM.COLUMNS if c != BM.NO_CHOICE]].notna().all().all()
    assert kit.loc[["resnet50", "swin_base"], BM.NO_CHOICE].notna().all()
    # the public rule: a loop over the model's epochs with scikit-learn, at 0.5
    lab = pd.read_csv(labels).set_index("image")
    for model in ("resnet50", "swin_base"):
        files = [pd.read_csv(preds / model / f"test_epoch{e}.csv") for e in range(1, 5)]
        y = lab.loc[files[0]["image"], [f"AU{a}" for a in BP4D]].to_numpy()
        on_test = [_mean_f1(y, f[[f"AU{a:02d}" for a in BP4D]].to_numpy()) for f in files]
        assert kit.loc[model, "public rule on test"] == pytest.approx(100 * max(on_test), abs=1e-10)
        assert kit.loc[model, BM.NO_CHOICE] == pytest.approx(100 * on_test[-1], abs=1e-10)
    assert "MDHR" in set(df["fold"])
    assert "public rule" in (tmp_path / "table" / "benchmark_audit.md").read_text()


def test_the_docs_snippet_saves_files_the_audit_reads(tmp_path):
    """docs/audit.md's training-loop snippet, run as written on a tiny model, then audited."""
    import re

    import torch

    code = re.findall(r"```python\n(.*?)```", (repo_root() / "docs" / "audit.md").read_text(), re.S)[0]
    space = {}
    exec(compile(code, "docs/audit.md", "exec"), space)
    torch.manual_seed(0)
    model = torch.nn.Linear(5, len(space["AUS"]))
    rng = np.random.default_rng(0)
    rows = []
    for split, subjects in (("test", ["S1", "S2", "S3"]), ("val", ["S4", "S5"])):
        names = [f"{s}/{k}.png" for s in subjects for k in range(4)]
        x = torch.tensor(rng.normal(size=(len(names), 5)), dtype=torch.float32)
        loader = [(x[i:i + 3], names[i:i + 3]) for i in range(0, len(names), 3)]
        out = tmp_path / "PREDS" / "mymodel"
        out.mkdir(parents=True, exist_ok=True)
        for epoch in (1, 2):
            space["save_epoch"](model, loader, str(out), split, epoch)
        y = rng.integers(0, 2, (len(names), len(space["AUS"])))
        rows.append(pd.DataFrame(y, columns=[f"AU{a}" for a in space["AUS"]]).assign(
            image=names, subject=[n.split("/")[0] for n in names]))
    pd.concat(rows).to_csv(tmp_path / "labels.csv", index=False)
    csv, _ = audit(tmp_path / "PREDS", tmp_path / "labels.csv", tmp_path / "out", n_boot=20)
    kit = pd.read_csv(csv).set_index("model")
    assert kit.loc["mymodel", ["public rule on test", "public rule on B", BM.NO_CHOICE]].notna().all()


def test_without_a_held_out_part_the_table_says_what_it_cannot_separate(tmp_path):
    preds, labels = write_other_codebase(tmp_path, val=False)
    csv, md = audit(preds, labels, tmp_path / "out", n_boot=50)
    kit = pd.read_csv(csv).set_index("model")
    assert kit["public rule on test"].notna().all() and kit["public rule on B"].isna().all()
    assert kit.loc["resnet50", BM.NO_CHOICE] > 0
    assert "no held-out part of the training subjects was given" in md.read_text()


def _break(preds, labels, how):
    f = preds / "resnet50" / "test_epoch2.csv"
    df = pd.read_csv(f)
    if how == "image":
        df.loc[3, "image"] = "F999/T1/0001.jpg"
    elif how == "au":
        df = df.drop(columns=["AU07"])
    elif how == "range":
        df.loc[4, "AU10"] = 1.5
    elif how == "nan":
        df.loc[5, "AU12"] = np.nan
    elif how == "epochs":
        (preds / "resnet50" / "val_epoch3.csv").unlink()
        return
    df.to_csv(f, index=False)


@pytest.mark.parametrize("how, message", [
    ("image", r"test_epoch2.csv: line 5: image 'F999/T1/0001.jpg' is not in the label table"),
    ("au", r"test_epoch2.csv: AU7 is missing"),
    ("range", r"test_epoch2.csv: line 6, AU10: probability 1.5 is outside \[0, 1\]"),
    ("nan", r"test_epoch2.csv: line 7, AU12: probability nan is not a number"),
    ("epochs", r"resnet50: epoch 3 has a test_epoch file but no val_epoch file"),
])
def test_bad_input_is_named_by_file_line_and_au(tmp_path, how, message):
    preds, labels = write_other_codebase(tmp_path)
    _break(preds, labels, how)
    with pytest.raises(AuditError, match=message):
        audit(preds, labels, tmp_path / "out", n_boot=10)


def test_bad_labels_and_the_command_line_exit_status(tmp_path, capsys):
    preds, labels = write_other_codebase(tmp_path)
    lab = pd.read_csv(labels)
    lab.loc[2, "AU4"] = 9
    lab.to_csv(labels, index=False)
    assert main(["--preds", str(preds), "--labels", str(labels), "--out", str(tmp_path / "o")]) == 2
    assert "labels.csv: line 4, AU4: label 9" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_audit_reproduces_the_kits_table_from_exported_predictions(tmp_path):
    ws = Workspace(tmp_path / "ws", tmp_path / "ws" / "results")
    for k in (1, 2, 3):
        write_fold(fold_workspace(ws, k), k)
    kit_csv, _ = write_kfold_summaries(ws, 3, "disfa_3fold")[f"benchmark_{GROUP}"]
    assert main(["export", "--workspace", str(ws.root), "--group", GROUP, "--out", str(tmp_path / "x")]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["fold1", "fold2", "fold3", "labels.csv",
                                                                   "subjects.csv"]
    csv, _ = audit(tmp_path / "x", tmp_path / "x" / "labels.csv", tmp_path / "t",
                   subjects=tmp_path / "x" / "subjects.csv", dataset="DISFA", criterion="f1")
    pd.testing.assert_frame_equal(pd.read_csv(csv), pd.read_csv(kit_csv), check_exact=False, rtol=0, atol=1e-10)
