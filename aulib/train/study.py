"""The loss-weight study: one profile run retrained under several ``(w_mv, w_cr)``
settings and seeds, and its table (``results/tables/loss_weights.csv`` + ``.md``).

``python -m aulib.train.study --workspace W [--profile demo] [--like 12au_effnet_plain]
[--settings mlcr,kit,none] [--seeds 0 1] [--out DIR] [--table-only]``

Every run copies the config of the profile's 04_train step ``--like`` (group,
backbones, epochs, size, batch, lr, held-out split), changing only ``w_mv``,
``w_cr``, ``seed`` and ``run_name`` (``lw_<setting>_s<seed>``). Settings
(:func:`parse_setting`): ``kit`` 1/1 (the default), ``none`` 0/0, ``mlcr``
(MLCR's 400/100 carried over to aulib's normalisation, :func:`mlcr_weights`),
``mlcr_raw`` (400/100 as numbers), or literal ``<w_mv>/<w_cr>``. Runs resume,
so the command can be rerun or split over processes (one ``--settings`` each)
and finished with ``--table-only``.
"""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..aus import au_columns
from ..data.splits import read_split
from ..io import read_yaml, write_csv, write_text
from ..pipeline.profile import load_profile, resolve
from ..report.tables import to_markdown
from ..workspace import RunDir, Workspace
from ..model.config import TrainConfig, notebook_config
from ..model.losses import balance_mask
from .loop import train

#: MLCR's released weights (``main.py``: lambda_multi_view, lambda_co_regularization).
MLCR_MV, MLCR_CR = 400.0, 100.0
SETTINGS = ("mlcr", "kit", "none", "mlcr_raw")
#: Last-epoch log columns of the table: (log column, table column); ``{h}`` is the held-out split.
COLUMNS = (("B_final", "B final"), ("B_f1", "B F1"), ("{h}_final", "held-out final"),
           ("{h}_f1", "held-out F1"), ("bce", "BCE"), ("mv", "|cos| (mv)"), ("cr", "JS (cr)"))


def effective_labels(labels: np.ndarray, batch_size: int, alpha: float = 0.2, seed: int = 0,
                     epochs: int = 1) -> tuple[float, float]:
    """Mean and s.d. over training batches of ``c = kept / batch_size``, the BCE
    labels per image that :func:`aulib.model.losses.balance_mask` keeps (known,
    balanced); labels int (N, C), 1 / 0 / -1. Full batches of a seeded shuffle,
    as the training loader draws them. ``c`` converts a per-label mean BCE
    (aulib) into a per-image sum (MLCR): ``sum / B = c * mean``."""
    y = torch.as_tensor(np.asarray(labels, dtype=np.int8))
    n, k = len(y), len(y) // batch_size
    if k == 0:
        raise ValueError(f"{n} training rows give no full batch of {batch_size}")
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    batches = torch.stack([y[torch.as_tensor(rng.permutation(n)[:k * batch_size])].view(k, batch_size, -1)
                           for _ in range(epochs)]).view(-1, batch_size, y.shape[1])  # (epochs * k, B, C)
    side = batches.permute(1, 0, 2).reshape(batch_size, -1)  # every batch's AUs side by side: one mask call
    kept = balance_mask(side, alpha, gen).view(batch_size, -1, y.shape[1]).sum(dim=(0, 2)).double() / batch_size
    return float(kept.mean()), float(kept.std()) if len(kept) > 1 else 0.0


def mlcr_weights(c: float, mv: float = MLCR_MV, cr: float = MLCR_CR) -> tuple[float, float]:
    """MLCR's weights in aulib's normalisation: ``(2 mv / c, 2 cr / c)``.

    MLCR minimises ``(S1/B + S2/B)/2 + mv L_mv + cr L_cr`` (S: a view's BCE
    summed over kept labels, B the batch size); aulib ``S1/K + S2/K + w_mv
    L_mv + w_cr L_cr`` (K kept labels). With ``S/B = c S/K`` (c = K/B), MLCR's
    loss is ``c/2`` times aulib's with ``w = 2 mv / c, 2 cr / c``; AdamW is
    blind to that overall factor (up to its eps)."""
    if c <= 0:
        raise ValueError(f"effective labels per image must be > 0, got {c}")
    return 2.0 * mv / c, 2.0 * cr / c


def parse_setting(text: str, c: float | None = None) -> tuple[str, float, float]:
    """``kit`` | ``none`` | ``mlcr`` (needs ``c``) | ``mlcr_raw`` | ``<w_mv>/<w_cr>`` -> (name, w_mv, w_cr)."""
    fixed = {"kit": (1.0, 1.0), "none": (0.0, 0.0), "mlcr_raw": (MLCR_MV, MLCR_CR)}
    if text in fixed:
        return (text, *fixed[text])
    if text == "mlcr":
        if c is None:
            raise ValueError("setting 'mlcr' needs the effective labels per image c (effective_labels)")
        return (text, *mlcr_weights(c))
    mv, sep, cr = text.partition("/")
    try:
        w_mv, w_cr = float(mv), float(cr)
    except ValueError:
        sep = ""
    if not sep:
        raise ValueError(f"setting {text!r}: use one of {list(SETTINGS)} or '<w_mv>/<w_cr>' (e.g. 10/2.5)")
    return f"{w_mv:g}_{w_cr:g}", w_mv, w_cr


def like_config(ws_root, profile: str = "demo", like: str = "12au_effnet_plain") -> TrainConfig:
    """The resolved config of the profile's 04_train step named ``like``."""
    prof = load_profile(profile)
    steps = {s.name.removeprefix("04_train__"): s for s in prof.steps if s.stem == "04_train"}
    if like not in steps:
        raise ValueError(f"profile {profile!r} has no 04_train step {like!r}; its steps: {sorted(steps)}")
    p = resolve(prof, "04_train", steps[like].parameters)
    keys = set(inspect.signature(notebook_config).parameters) - {"workspace"}
    return notebook_config(ws_root, **{k: v for k, v in p.items() if k in keys}, groups=prof.groups)


def study_configs(base: TrainConfig, settings: list[tuple[str, float, float]], seeds) -> dict[str, list]:
    """{setting name: [TrainConfig per seed]}: ``base`` with the setting's weights,
    the seed and run name ``lw_<setting>_s<seed>``; each scores the held-out
    split every epoch (the study reads it from log.csv)."""
    out = {}
    evals = ["B"] + ([base.heldout] if base.heldout else [])
    for name, w_mv, w_cr in settings:
        out[name] = [TrainConfig.from_dict({**base.to_dict(), "w_mv": w_mv, "w_cr": w_cr, "seed": int(s),
                                            "run_name": f"lw_{name}_s{s}", "eval_splits": evals}).resolved()
                     for s in seeds]
    return out


def study_table(runs: dict[str, list]) -> pd.DataFrame:
    """One row per run (last logged epoch), then a ``mean`` row per setting of several runs.

    runs: {setting: [run directory, ...]}. Columns: setting, seed, w_mv, w_cr,
    epochs, then :data:`COLUMNS` (held-out = the config's ``heldout``)."""
    rows = []
    for name, dirs in runs.items():
        for d in dirs:
            rd = RunDir(d)
            cfg, log = read_yaml(rd.config) or {}, rd.read_log()
            if not len(log):
                raise ValueError(f"{rd.log}: no finished epoch; train the run (or drop setting {name!r})")
            last = log.iloc[-1]
            cols = {t: float(last.get(c.format(h=cfg.get("heldout")), np.nan)) for c, t in COLUMNS}
            rows.append({"setting": name, "seed": str(cfg.get("seed")), "w_mv": float(cfg["w_mv"]),
                         "w_cr": float(cfg["w_cr"]), "epochs": int(last["epoch"]), **cols})
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no runs given to study_table")
    several = df[df.groupby("setting")["setting"].transform("size") > 1]
    means = several.groupby("setting", sort=False).agg(
        {"w_mv": "first", "w_cr": "first", "epochs": "min", **{t: "mean" for _, t in COLUMNS}}).reset_index()
    means.insert(1, "seed", "mean")
    return pd.concat([df, means], ignore_index=True)


def write_study(df: pd.DataFrame, out_dir, caption: str = "") -> tuple[Path, Path]:
    """``loss_weights.csv`` and ``.md`` (``caption`` above the table) in ``out_dir``."""
    out = Path(out_dir)
    csv, md = out / "loss_weights.csv", out / "loss_weights.md"
    write_csv(csv, df)
    write_text(md, (caption.strip() + "\n\n" if caption else "") + to_markdown(df) + "\n")
    return csv, md


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aulib.train.study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, help="workspace with the profile's splits and crops (02_split)")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--like", default="12au_effnet_plain", help="the profile's 04_train step whose config is copied")
    ap.add_argument("--settings", default="mlcr,kit,none", help=f"comma-separated: {', '.join(SETTINGS)}, or w_mv/w_cr")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default=None, help="folder of loss_weights.csv/.md (default: the workspace's tables)")
    ap.add_argument("--table-only", action="store_true", help="train nothing; tabulate the runs that exist")
    a = ap.parse_args(argv)

    ws = Workspace.for_profile(a.profile, root=a.workspace)
    base = like_config(ws.root, a.profile, a.like)
    labels = read_split(base.train_splits[0], base.aus, ws=ws)[au_columns(base.aus)]
    c, sd = effective_labels(labels.to_numpy(), base.batch_size, base.alpha, seed=0, epochs=base.epochs)
    print(f"effective BCE labels per image c = {c:.3f} (s.d. {sd:.3f} over batches of {base.batch_size}, "
          f"{len(base.aus)} AUs, alpha {base.alpha})", flush=True)
    configs = study_configs(base, [parse_setting(s.strip(), c) for s in a.settings.split(",")], a.seeds)
    for cfgs in configs.values():
        for cfg in cfgs:
            if not a.table_only:
                print(f"[study] {cfg.run_name}: w_mv {cfg.w_mv:.4g}, w_cr {cfg.w_cr:.4g}, seed {cfg.seed}", flush=True)
                train(cfg, resume=True)
    runs = {n: [ws.run_dir(cfg.run_name).path for cfg in cfgs if ws.run_dir(cfg.run_name).log.exists()]
            for n, cfgs in configs.items()}
    caption = (f"Loss weights, `{a.like}` of the `{a.profile}` profile ({base.epochs} epochs), last epoch; "
               f"`mlcr` = MLCR's 400/100 at aulib's normalisation (c = {c:.2f} kept BCE labels per image).")
    csv, md = write_study(study_table({n: d for n, d in runs.items() if d}), a.out or ws.tables, caption)
    print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
