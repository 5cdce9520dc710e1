"""Reading run directories: predictions, logs, configs, run listings (file
names from :class:`aulib.workspace.RunDir`).

A run directory (docs/layout.md, "Run directory") holds ``config.yaml``,
``log.csv`` (one row per finished epoch), ``preds/<split>_index.csv``
(``image, variant`` and the group's AU label columns, -1 unknown) and
``preds/<split>_epoch<NNN>.npy`` (float16 (N, C) probabilities, rows in
index order); the index is written and parsed by :mod:`aulib.pred_index`.
Everything after training (Figure 2, checkpoint and threshold
choice, ensembles, tables) reads runs through this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .aus import AUGroup, au_columns, au_columns_in
from .io import read_yaml
from .metrics import in_unit_interval
from .model.config import ablations_of, config_group
from .pred_index import copy_of, parsed_index
from .workspace import RunDir, Workspace


@dataclass
class RunPreds:
    """Per-epoch probabilities of one run on one split.

    ``epochs`` (E,) epoch numbers (1-based); ``labels`` (N, C) int8 (1, 0,
    -1 unknown); ``probs`` (E, N, C) float32 (any array the choice code can
    slice by epoch, a ``np.memmap`` included); ``index`` the split's index
    table (``image``, ``variant``, AU columns), row i matching ``probs[:, i]``.
    """

    run_name: str
    run_dir: Path
    split: str
    aus: tuple[int, ...]
    epochs: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    index: pd.DataFrame
    config: dict = field(default_factory=dict, repr=False)

    def at_epochs(self, epochs) -> "RunPreds":
        """The same run restricted to ``epochs`` (each must be present)."""
        epochs = np.asarray(epochs, dtype=np.int64)
        pos = {int(e): i for i, e in enumerate(self.epochs)}
        missing = [int(e) for e in epochs if int(e) not in pos]
        if missing:
            raise KeyError(f"run {self.run_name} has no {self.split} predictions for epochs {missing}")
        take = [pos[int(e)] for e in epochs]
        return RunPreds(self.run_name, self.run_dir, self.split, self.aus, epochs, self.labels,
                        self.probs[take], self.index, self.config)


def read_config(run_dir) -> dict:
    """``config.yaml`` of a run as a dict (clear error when missing/bad)."""
    path = RunDir(run_dir).config
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run directory "
                                "(train it with notebooks/04_train.ipynb or python -m aulib.train)")
    cfg = read_yaml(path)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} must hold a mapping of config keys, got {type(cfg).__name__}")
    return cfg


def read_log(run_dir) -> pd.DataFrame:
    """``log.csv`` of a run (one row per finished epoch); an empty frame with
    an ``epoch`` column when the run has not finished an epoch yet. A log
    without an ``epoch`` column gets one (1, 2, ... in row order)."""
    return RunDir(run_dir).read_log()


def pred_epochs(run_dir, split: str) -> list[int]:
    """Epoch numbers that have a ``preds/<split>_epoch<NNN>.npy`` file."""
    return RunDir(run_dir).pred_epochs(split)


def pred_splits(run_dir) -> list[str]:
    """Splits a run has predictions for (those with an index file)."""
    return RunDir(run_dir).pred_splits()


def read_index(run_dir, split: str, aus=None, copy: bool = True) -> pd.DataFrame:
    """``preds/<split>_index.csv``; checks the AU columns (against ``aus`` if
    given) and the label codes. Runs evaluated on one split hold the same
    index: a file whose bytes equal one read before is not parsed again
    (:func:`aulib.pred_index.parsed_index`); each call gets its own copy
    (``copy`` False: the shared table, not to be changed)."""
    path = RunDir(run_dir).index(split)
    if not path.exists():
        have = pred_splits(run_dir)
        raise FileNotFoundError(f"{path} not found; run {Path(run_dir).name} has predictions for splits {have}")
    index = parsed_index(path)
    cols = au_columns_in(index.columns)
    if aus is not None and cols != au_columns(aus):
        raise ValueError(f"{path} has AU columns {cols}, but the run's group has {au_columns(aus)}")
    return copy_of(index) if copy else index


def index_shape(run_dir, split: str) -> tuple[int, int]:
    """(rows, AU columns) of ``preds/<split>_index.csv``, checked as
    :func:`read_index` does (no copy of the table)."""
    index = read_index(run_dir, split, copy=False)
    return len(index), len(au_columns_in(index.columns))


def run_group(config: dict, run_dir=None) -> AUGroup:
    """The :class:`aulib.aus.AUGroup` of a run from its config alone: name
    ``group``, AUs ``aus`` (an older config without them: the built-in
    group's), crop ``crop_style`` (else the built-in group's, else aligned)."""
    where = str(Path(run_dir or ".") / "config.yaml")
    if "group" not in config:
        raise ValueError(f"{where} has no 'group'")
    return config_group(str(config["group"]), config.get("aus") or None, config.get("crop_style"), where)


def run_aus(config: dict, run_dir=None) -> tuple[int, ...]:
    """AU numbers of a run: config ``aus`` if present, else its built-in ``group``'s."""
    if config.get("aus"):
        return tuple(int(a) for a in config["aus"])
    if "group" not in config:
        raise ValueError(f"{Path(run_dir or '.') / 'config.yaml'} has neither 'group' nor 'aus'")
    return run_group(config, run_dir).aus


def check_group_aus(runs) -> None:
    """Runs (:class:`RunPreds`) that name one group must predict the same AUs:
    a profile's own group is defined by each run's config.yaml, so two runs
    of one name from differently defined groups are a ValueError naming both
    config files (they cannot be compared in one table)."""
    first: dict = {}
    for r in runs:
        name = r.config.get("group")
        seen = first.setdefault(name, r)
        if tuple(seen.aus) != tuple(r.aus):
            raise ValueError(f"group {name!r} is defined twice: {RunDir(seen.run_dir).config} has AUs "
                             f"{list(seen.aus)}, {RunDir(r.run_dir).config} has {list(r.aus)}; runs compared in one "
                             "table must predict one group's AUs (give the other group another name)")


def complete_epochs(run_dir, split: str = "B", epochs=None) -> list[int]:
    """Epochs of a run with both a ``log.csv`` row and a ``split`` prediction
    file; ``epochs`` given: those, checked to be complete."""
    run_dir = Path(run_dir)
    logged = RunDir(run_dir).logged_epochs()
    done = [e for e in pred_epochs(run_dir, split) if e in logged]
    if epochs is None:
        return done
    want = [int(e) for e in np.atleast_1d(epochs)]
    missing = sorted(set(want) - set(done))
    if missing:
        raise FileNotFoundError(f"run {run_dir.name}: epochs {missing} have no complete {split} predictions "
                                f"(complete: {done})")
    return want


def _read_preds(path: Path, out: np.ndarray) -> tuple | None:
    """Read the .npy file ``path`` into ``out``: straight from the file into
    ``out``'s memory where dtype and shape match (one copy, as ``np.load``),
    else read once and cast (another float type, column-major order).
    Returns None, or the file's (dtype, shape) when it
    is not a float array of ``out``'s shape (``out`` untouched)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(f))
        if tuple(shape) != out.shape or dtype.kind != "f":
            return dtype, tuple(shape)
        if dtype == out.dtype and not fortran and out.flags.c_contiguous:
            complete = f.readinto(memoryview(out).cast("B")) == out.nbytes
        else:                                           # another float type or column-major: read once, cast
            data = np.fromfile(f, dtype, count=out.size)
            complete = data.size == out.size
            if complete:
                out[...] = data.reshape(shape[::-1]).T if fortran else data.reshape(shape)
    if not complete:
        raise ValueError("the file is shorter than its header says (truncated: not fully written)")
    return None


def missing_pred_epochs(run_dir, split: str, epochs, multicrop: bool = False) -> tuple[str, list[int], list[int]]:
    """(file stem, ``epochs`` distinct and sorted, those of them without a prediction file) of a run's
    ``split`` predictions. Raises FileNotFoundError, naming the run and epochs, when a missing epoch's
    checkpoint was pruned (nothing can make its predictions)."""
    rd = RunDir(run_dir)
    name = rd.pred_name(split, multicrop)
    want = sorted({int(e) for e in np.atleast_1d(epochs)})
    missing = sorted(set(want) - set(rd.pred_epochs(name)))
    gone = sorted(set(missing) - set(rd.checkpoint_epochs())) if missing else []
    if gone:
        raise FileNotFoundError(
            f"run {rd.path.name} has no {name} predictions at epochs {gone} and no checkpoint to predict them "
            f"from (keep_checkpoints: {read_config(run_dir).get('keep_checkpoints')!r}); keep every checkpoint "
            f"(keep_checkpoints: all, the default) or score {split} every epoch (eval_splits: [B, {split}])")
    return name, want, missing


def load_run_preds(run_dir, split: str = "B", epochs=None, out: np.ndarray | None = None) -> RunPreds:
    """Probabilities of every complete epoch of a run on ``split``.

    An epoch is complete when it has both a row in ``log.csv`` and a
    prediction file. Each file is checked: shape (N, C) with N rows of the
    index and C AUs of the group, finite values in [0, 1]. ``epochs``
    restricts to a subset (each must be complete). ``out``: an (E, N, C)
    float array to fill (e.g. a slice of a stack of several runs, float16
    as the files are); default a new float32 array.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    aus = run_aus(config, run_dir)
    index = read_index(run_dir, split, aus)
    labels = index[au_columns(aus)].to_numpy(np.int8)
    rd = RunDir(run_dir)
    done = complete_epochs(run_dir, split, epochs)
    n, c = labels.shape
    if out is None:
        probs = np.empty((len(done), n, c), np.float32)
    elif out.shape != (len(done), n, c) or out.dtype.kind != "f":
        raise ValueError(f"out must be a float array of shape {(len(done), n, c)} for run {run_dir.name}, "
                         f"got {out.dtype} {out.shape}")
    else:
        probs = out
    for i, e in enumerate(done):
        path = rd.preds(split, e)
        try:
            wrong = _read_preds(path, probs[i])
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise ValueError(f"cannot read {path}: {err}; delete it and rerun epoch {e} "
                             "(or resume the run) to rewrite it") from err
        if wrong is not None:
            raise ValueError(f"{path} holds {wrong[0]} {wrong[1]}; expected float (N={n}, C={c}) as in "
                             f"preds/{split}_index.csv; the file does not belong to this run's index")
        if not in_unit_interval(probs[i]):
            raise ValueError(f"{path} has values outside [0, 1] or NaN; it is not a probability file")
    return RunPreds(str(config.get("run_name", run_dir.name)), run_dir, split, tuple(aus),
                    np.asarray(done, dtype=np.int64), labels, probs, index, config)


def _run_root(ws_or_dir) -> Path:
    return ws_or_dir.train if isinstance(ws_or_dir, Workspace) else Path(ws_or_dir)


def list_runs(ws_or_dir) -> pd.DataFrame:
    """One row per run directory under a workspace's ``train/`` (or a folder):
    ``name, dir, group, backbones, stage, img_size, crop_style, epochs``
    (planned), ``epochs_done`` (log rows), ``heldout``, ``splits``, ``ablate``
    (comma-separated ablations), then
    every boolean config key (ablation flags such as the loss switches)."""
    root = _run_root(ws_or_dir)
    rows = []
    for d in sorted(p for p in root.iterdir() if RunDir(p).config.exists()) if root.is_dir() else []:
        cfg = read_config(d)
        row = {
            "name": str(cfg.get("run_name", d.name)), "dir": str(d), "group": cfg.get("group"),
            "backbones": "+".join(map(str, cfg.get("backbones") or [])), "stage": cfg.get("stage"),
            "img_size": cfg.get("img_size"), "crop_style": cfg.get("crop_style"), "epochs": cfg.get("epochs"),
            "epochs_done": len(read_log(d)), "heldout": heldout_split(cfg), "splits": ",".join(pred_splits(d)),
            "ablate": ",".join(ablations_of(cfg)),
        }
        row.update({k: v for k, v in cfg.items() if isinstance(v, bool) and k not in row})
        rows.append(row)
    cols = ["name", "dir", "group", "backbones", "stage", "img_size", "crop_style", "epochs", "epochs_done",
            "heldout", "splits", "ablate"]
    return pd.DataFrame(rows, columns=cols + sorted({k for r in rows for k in r} - set(cols)))


def heldout_split(config: dict) -> str | None:
    """The held-out split named in a run config (``heldout``: a name or a
    list, first taken), or None."""
    h = config.get("heldout")
    if isinstance(h, (list, tuple)):
        h = h[0] if h else None
    return str(h) if h else None


def select_runs(ws_or_dir, group: str | None = None, names=None) -> list[Path]:
    """Run directories of ``group`` (all groups when None), or exactly the
    runs in ``names`` (each must exist and, if ``group`` is given, belong to it)."""
    root = _run_root(ws_or_dir)
    table = list_runs(root)
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        known = dict(zip(table["name"], table["dir"]))
        missing = [n for n in names if n not in known]
        if missing:
            raise FileNotFoundError(f"runs {missing} not found under {root}; runs there: {sorted(known)}")
        sel = table.set_index("name").loc[names]
        if group is not None and (sel["group"] != group).any():
            wrong = sel.index[sel["group"] != group].tolist()
            raise ValueError(f"runs {wrong} are not of group {group!r}")
        return [Path(known[n]) for n in names]
    if group is not None:
        table = table[table["group"] == group]
    return [Path(d) for d in table["dir"]]
