"""Test helper: synthetic fold workspaces of the benchmark's selection audit (report/, audit/).

:func:`write_fold` writes one fold: run ``_r`` good on B at epoch 1 and on H at
epoch 3, run ``_s`` without information, their prediction files, and the
choice 06_choose makes on B."""
import numpy as np
import pandas as pd

from aulib.aus import au_columns, group_aus
from aulib.io import write_csv, write_npy, write_yaml
from aulib.pred_index import write_index
from aulib.select.choose import choose_for_workspace, save_chosen
from aulib.workspace import RunDir, Workspace

GROUP = "disfa8"
AUS = group_aus(GROUP)
RUNS = (f"{GROUP}_r", f"{GROUP}_s")


def _probs(y, good, rng):
    """Probabilities that separate ``y`` perfectly (good) or carry no information."""
    if good:
        return np.where(y == 1, 0.75, 0.25) + rng.uniform(-0.05, 0.05, y.shape)
    return rng.uniform(0.05, 0.95, y.shape)


def write_fold(ws: Workspace, fold: int, epochs: int = 3, best_b: int = 1, best_h: int = 3, criterion="f1"):
    """One fold workspace: run ``_r`` (good on B at epoch 1, on H at epoch 3) and
    run ``_s`` (no information), with B and H predictions for every epoch
    (and empty checkpoints); splits/H.csv and labels/subjects.csv."""
    rng = np.random.default_rng(fold)
    subjects, labels = {}, {}
    for split, n_subj in (("B", 6), ("H", 9)):
        images = [f"{split}/s{fold}{split}{s}/{k}.jpg" for s in range(n_subj) for k in range(8)]
        subjects.update({img: img.split("/")[1] for img in images})
        y = (rng.random((len(images), len(AUS))) < 0.4).astype(np.int8)
        y[0], y[1] = 1, 0                                          # both classes of every AU
        y[2, 0] = -1                                               # an unknown label
        labels[split] = pd.concat([pd.DataFrame({"image": images, "variant": 0}),
                                   pd.DataFrame(y, columns=au_columns(AUS))], axis=1)
    write_csv(ws.split("H"), labels["H"])
    write_csv(ws.labels("subjects"), pd.DataFrame({"image": list(subjects), "subject": list(subjects.values())}))
    for name in RUNS:
        rd = RunDir(ws.run(name))
        for split, best in (("B", best_b), ("H", best_h)):
            index = labels[split]
            write_index(rd.index(split), index)
            y = index[au_columns(AUS)].to_numpy()
            for e in range(1, epochs + 1):
                write_npy(rd.preds(split, e), _probs(y, name.endswith("_r") and e == best, rng).astype(np.float16))
        write_csv(rd.log, pd.DataFrame({"epoch": np.arange(1, epochs + 1)}))
        write_yaml(rd.config, {"run_name": rd.name, "group": GROUP, "backbones": ["synthetic"], "img_size": 64,
                               "crop_style": "aligned", "epochs": epochs, "heldout": "H"})
        for e in range(1, epochs + 1):
            rd.checkpoint(e).parent.mkdir(parents=True, exist_ok=True)
            rd.checkpoint(e).write_bytes(b"")
    _, chosen = choose_for_workspace(ws, GROUP, folds=3, criterion=criterion)    # 06_choose: chosen on B
    save_chosen(ws.chosen(GROUP), chosen)
