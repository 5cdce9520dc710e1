"""Training loop of the multi-view AU model.

``python -m aulib.train --config FILE [key=value ...] [--resume [--extend]] [--overwrite]``
(:mod:`aulib.train.cli`) or, on several GPUs, ``torchrun --nproc-per-node=N -m aulib.train --config FILE``.
In Python: ``train(TrainConfig(...))``. The steps, each a short function:
:func:`build` (data, model, optimisation), :func:`train_one_epoch`,
:func:`evaluate`, :func:`commit_epoch` (write the epoch), :func:`train`, :func:`main`.

Every epoch writes, atomically, into the run directory ``<workspace>/train/<run_name>/``
(docs/layout.md): ``preds/<split>_epoch<NNN>.npy`` for every evaluation split
(and ``<split>_mc`` multi-crop averages), ``checkpoints/epoch<NNN>.pt`` and,
last, a row of ``log.csv`` (epoch, lr, time_s, train losses, per-split mean
acc / F1 / final score, per-AU final score on B ``B_final_AU<n>``), then
older checkpoints are pruned (``keep_checkpoints``); TensorBoard scalars go to
``events/`` and every epoch prints a line with the run's ETA (:mod:`aulib.train.watch`). An epoch is complete when
it has both its log row and its checkpoint; pruning never removes the last
complete one, so a kill between any two writes resumes correctly.

One training process writes a run directory at a time (a lock file beside it,
:mod:`aulib.lock`), and nothing is written into it before the decision
to start, resume or overwrite is made and the run is built. A resume that
asks for another ``epochs`` than config.yaml is refused unless ``extend=True``
(``--extend``).

Resuming (``resume=True``) continues from the last complete epoch and gives
the same weights and predictions as an uninterrupted run (exactly, on CPU):
the checkpoint restores model, optimizer, scheduler and AMP scaler, and every
random draw of epoch ``e`` (shuffle, augmentation, balancing, dropout) comes
from generators seeded by ``(seed, e, rank)``, so nothing depends on what
ran before in the process. The checkpoint's ``rng`` records those seeds and
the generator states at the end of the epoch.

Distributed: ``torchrun`` sets ``WORLD_SIZE``; each rank trains on its
``DistributedSampler`` share with DDP (``batch_size`` is per rank), predicts
a strided share of each evaluation split, and rank 0 writes the reassembled
predictions (all N rows, in split order) and everything else.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..aus import au_columns
from ..data.dataset import make_loader, set_epoch, split_dataframe
from ..data.splits import read_split
from ..data.transforms import augment_batch, resolve_augment
from ..infer.checkpoints import checkpoint_path
from ..infer.sharded import autocast, predict_views
from ..infer.multicrop import run_views
from ..io import read_torch, read_yaml, write_csv, write_npy, write_torch, write_yaml
from ..pred_index import write_index
from ..metrics import score_probs
from ..pipeline.profile import default_profile
from ..progress import progress as _progress
from ..workspace import RunDir, Workspace
from ..model import distributed as dist_utils
from .cli import config_of
from ..model.config import RESUMABLE_CHANGES, TrainConfig
from .errors import record_child_errors
from ..lock import RunLock
from ..model.losses import TERMS, MultiViewLoss, term_weights
from ..model.network import create_model
from .watch import Board, RunClock, epoch_line

def loss_keys() -> tuple[str, ...]:
    """Log columns of the train losses: the total, the BCE, then every term of the loss table."""
    return ("loss", "bce", *TERMS)


def workspace_of(cfg: TrainConfig) -> Workspace:
    """The :class:`aulib.workspace.Workspace` a config trains in (``workspace``
    path, else the default profile's)."""
    return Workspace.for_profile(default_profile(), root=cfg.workspace)


def _epoch_seeds(seed: int, epoch: int, rank: int) -> list[int]:
    """Independent 63-bit seeds for (torch global, augmentation, balancing) of one epoch and rank."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(3, dtype=np.uint64)
    return [int(s) >> 1 for s in state]


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    """Step -> learning-rate factor of ``cfg.schedule`` (a plain function, so
    the scheduler's state dict holds only its step count)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(round(cfg.warmup_epochs * steps_per_epoch)) if cfg.schedule == "cosine" else 0
    step_len = max(1, cfg.lr_step_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.lr_gamma ** (step // step_len)
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return factor


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _augment_config(cfg: TrainConfig):
    return resolve_augment(cfg.augment, cfg.au_group)


def _check_splits(ws, names: list[str]) -> None:
    for name in names:
        if not Path(ws.split(name)).exists():
            hint = ("build it with notebook 03_noisy_filter (aulib.noisy.build_dataset_c)" if name.startswith("C")
                    else "build the splits with notebook 02_split (aulib.data.splits.make_splits)")
            raise FileNotFoundError(f"split {name!r} not found at {ws.split(name)}; {hint}")


def _resolve_init(ws, init_from: str) -> Path:
    p = Path(init_from).expanduser()
    p = p if p.is_absolute() else ws.root / p
    if p.is_dir():
        return checkpoint_path(p, "last")
    if not p.exists():
        raise FileNotFoundError(f"init_from {init_from!r}: {p} does not exist (give a run directory or a .pt file)")
    return p


def _comparable(saved: dict) -> dict:
    """A saved config.yaml as today's TrainConfig writes it (older runs'
    ``use_mv``-style switches become ``ablate``); as it is when it does not load."""
    try:
        return TrainConfig.from_dict(saved).to_dict()
    except (TypeError, ValueError):
        return saved


@dataclass
class RunPlan:
    """What :func:`plan_run_dir` decided, before anything is written: continue
    after epoch ``start`` (0: from scratch); ``config``: the config.yaml to write
    once the run is built (a fresh run, or an extended one), else None;
    ``remove_old``: delete the existing directory first (overwrite)."""

    start: int
    config: dict | None = None
    remove_old: bool = False


def _epochs_refusal(rd: RunDir, saved: int, asked: int, done: int) -> str:
    state = f"finished all {done} epochs" if done >= saved else f"has {done} of its {saved} epochs"
    return (f"cannot resume run {rd.name} ({rd.path}) with epochs {asked}: its config.yaml has epochs {saved} "
            f"and it {state}. To train it to {asked} epochs (the learning-rate schedule is recomputed for the "
            f"new total), ask for it by name: extend=True (python -m aulib.train ... --resume --extend); to start "
            f"it again, overwrite=True (--overwrite); to keep it as it is, ask for epochs={saved} (a profile "
            f"that lost its 'epochs' key asks for the default, {TrainConfig().epochs})")


def plan_run_dir(rd: RunDir, cfg: TrainConfig, resume: bool, overwrite: bool, extend: bool = False) -> RunPlan:
    """Decide how a run directory is (re)used; reads it and writes nothing.

    New: a fresh run. ``overwrite``: a fresh run over the old one. ``resume``:
    continue after the last complete epoch; a config.yaml that differs (other
    than :data:`RESUMABLE_CHANGES`) is refused, and so is another ``epochs``
    unless ``extend`` (never fewer epochs than are finished)."""
    if not rd.config.exists():
        return RunPlan(0, cfg.to_dict())
    if overwrite:
        return RunPlan(0, cfg.to_dict(), remove_old=True)
    if not resume:
        raise FileExistsError(f"run directory {rd.path} already exists; resume=True (--resume) continues it, "
                              f"overwrite=True (--overwrite) starts it again, or choose another run_name")
    saved = _comparable(read_yaml(rd.config) or {})
    new = cfg.to_dict()
    diff = {k: (saved.get(k), new.get(k)) for k in sorted(set(saved) | set(new))
            if k not in RESUMABLE_CHANGES and saved.get(k) != new.get(k)}
    if diff:
        raise ValueError(f"cannot resume {rd.path}: its config.yaml differs from this config in "
                         + ", ".join(f"{k} (saved {a!r}, now {b!r})" for k, (a, b) in diff.items())
                         + "; use another run_name, or overwrite=True to start again")
    done = rd.last_complete_epoch()
    if saved.get("epochs") == new["epochs"]:
        return RunPlan(done)
    if not extend:
        raise ValueError(_epochs_refusal(rd, saved.get("epochs"), new["epochs"], done))
    if new["epochs"] < done:
        raise ValueError(f"cannot change run {rd.name} to {new['epochs']} epochs: it has finished {done}; "
                         f"overwrite=True (--overwrite) starts it again")
    if cfg.schedule != "constant":
        warnings.warn(f"extending {rd.name} from {saved.get('epochs')} to {new['epochs']} epochs: the "
                      f"{cfg.schedule} schedule is recomputed for the new total", stacklevel=5)
    return RunPlan(done, new)


def _apply_plan(rd: RunDir, plan: RunPlan, keep) -> None:
    """Rank 0, once the run is built: carry out what :func:`plan_run_dir` decided."""
    if plan.remove_old:
        shutil.rmtree(rd.path)
    if plan.config is not None:
        write_yaml(rd.config, plan.config)
    _prune_checkpoints(rd, keep)     # finishes a commit that was killed before its pruning


def _prune_checkpoints(rd: RunDir, keep) -> None:
    """Delete checkpoints beyond ``keep_checkpoints`` among the complete epochs
    (log row and checkpoint); never the last complete one, which resume needs,
    nor one of a later epoch."""
    if keep == "all":
        return
    n = 1 if keep == "last" else int(keep)
    done = rd.last_complete_epoch()
    for e in [e for e in rd.checkpoint_epochs() if e <= done][:-n]:
        rd.checkpoint(e).unlink(missing_ok=True)


def _split_metrics(name: str, labels: np.ndarray, probs: np.ndarray, aus, per_au: bool) -> dict:
    scores, summary = score_probs(labels, probs, 0.5, aus)
    row = {f"{name}_{k}": summary[k] for k in ("acc", "f1", "final")}
    if per_au:
        row.update({f"{name}_final_AU{a}": float(scores.loc[a, "final"]) for a in aus})
    return row


@dataclass
class Run:
    """Everything one training run holds between epochs (built by :func:`build`).
    ``model`` is what trains (DDP-wrapped under torchrun), ``core`` the bare model."""

    cfg: TrainConfig
    rd: RunDir
    device: torch.device
    aus: list
    train_loader: object
    steps: int
    aug_cfg: object
    eval_tables: dict
    eval_loaders: dict
    model: torch.nn.Module
    core: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    use_amp: bool
    criterion: MultiViewLoss
    aug_gen: torch.Generator
    bal_gen: torch.Generator
    board: Board | None = None


def _build_data(cfg: TrainConfig, ws: Workspace, aus: list, world: int):
    """Train loader, its batches per epoch, evaluation tables and loaders."""
    train_table = (split_dataframe(ws, cfg.train_splits) if len(cfg.train_splits) > 1
                   else cfg.train_splits[0])
    train_loader = make_loader(ws, train_table, cfg.au_group, cfg.img_size, cfg.batch_size, train=True,
                               num_workers=cfg.num_workers, seed=cfg.seed, distributed=world > 1,
                               style=cfg.crop_style, stall_minutes=cfg.stall_minutes)
    eval_tables = {s: read_split(s, aus, ws=ws) for s in cfg.eval_splits}
    # seed 0: the degraded copies (variants) of an evaluation split are the same for every run
    eval_loaders = {s: make_loader(ws, t, cfg.au_group, cfg.img_size, cfg.eval_batch_size, train=False,
                                   num_workers=cfg.num_workers, seed=0, distributed=world > 1,
                                   style=cfg.crop_style, stall_minutes=cfg.stall_minutes)
                    for s, t in eval_tables.items()}
    steps = len(train_loader) if cfg.max_train_batches is None else min(len(train_loader), cfg.max_train_batches)
    if steps == 0:
        raise ValueError(f"training splits {cfg.train_splits} give no batch of {cfg.batch_size}")
    return train_loader, steps, eval_tables, eval_loaders


def build(cfg: TrainConfig, ws: Workspace, rd: RunDir, start: int, device: torch.device) -> Run:
    """Data, model (fresh, ``init_from`` or resumed from epoch ``start``),
    optimizer, schedule, AMP scaler and loss of a run."""
    world = dist_utils.world_size()
    aus = list(cfg.aus)
    train_loader, steps, eval_tables, eval_loaders = _build_data(cfg, ws, aus, world)
    aug_cfg = _augment_config(cfg)
    torch.manual_seed(cfg.seed)
    fresh_weights = start == 0 and not cfg.init_from  # otherwise ImageNet weights would be overwritten
    model = create_model(cfg if fresh_weights else {**cfg.to_dict(), "pretrained": False}).to(device)
    if start == 0 and cfg.init_from:
        state = read_torch(_resolve_init(ws, cfg.init_from))
        try:
            model.load_state_dict(state.get("model", state))
        except RuntimeError as err:
            raise ValueError(f"init_from {cfg.init_from!r} does not fit this model ({cfg.backbones}, "
                             f"group {cfg.group}): {err}") from None
    optimizer = _optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps))
    use_amp = device.type == "cuda" and cfg.amp in ("auto", True)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported())
    if start > 0:
        ckpt = read_torch(rd.checkpoint(start), map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
    core = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    criterion = MultiViewLoss(alpha=cfg.alpha, mv_absolute=cfg.mv_absolute, ablate=cfg.ablate,
                              weights=term_weights(cfg))
    return Run(cfg, rd, device, aus, train_loader, steps, aug_cfg, eval_tables, eval_loaders, model, core,
               optimizer, scheduler, scaler, use_amp, criterion, torch.Generator(), torch.Generator())


def train_one_epoch(run: Run, epoch: int) -> dict:
    """One epoch of optimisation; returns ``{"lr": lr of the last step, <loss_keys()>: epoch means over ranks}``."""
    cfg, device = run.cfg, run.device
    s_torch, s_aug, s_bal = _epoch_seeds(cfg.seed, epoch, dist_utils.rank())
    torch.manual_seed(s_torch)
    run.aug_gen.manual_seed(s_aug)
    run.bal_gen.manual_seed(s_bal)
    set_epoch(run.train_loader, epoch)
    run.model.train()
    keys = loss_keys()
    sums = torch.zeros(len(keys), dtype=torch.float64, device=device)
    bar = _progress(total=run.steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                    disable=not (cfg.progress and dist_utils.is_main()), leave=False)
    for i, (x, y) in enumerate(run.train_loader):
        if i >= run.steps:
            break
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if run.aug_cfg is not None:
            x, y = augment_batch(x, y, run.aus, run.aug_cfg, run.aug_gen)
        with autocast(device) if run.use_amp else contextlib.nullcontext():
            l1, l2 = run.model(x)
        parts = run.criterion(l1, l2, y, run.core.classifier_weights(), generator=run.bal_gen)
        lr_now = run.optimizer.param_groups[0]["lr"]
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(parts["total"]).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        step = torch.stack([parts["total"].detach(), parts["bce"], *(parts[k].detach() for k in TERMS)])
        sums += step.double()
        if run.board is not None:
            run.board.step(epoch, i, dict(zip(keys, step)), lr_now)
        bar.update(1)
    bar.close()
    losses = (dist_utils.all_reduce_mean(sums) / run.steps).tolist()
    return {"lr": lr_now, **dict(zip(keys, losses))}


def evaluate(run: Run) -> dict[str, np.ndarray]:
    """Probabilities (N, C) of every evaluation split (and ``<split>_mc``), all rows on every rank."""
    preds = {}
    for s, loader in run.eval_loaders.items():
        single, mc = predict_views(run.core, loader, run.device, run.cfg.multicrop, run.aus, progress=False,
                                   views=run_views(run.cfg))
        n = len(run.eval_tables[s])
        preds[s] = dist_utils.gather_strided(single, n, run.device)
        if mc is not None:
            preds[f"{s}_mc"] = dist_utils.gather_strided(mc, n, run.device)
    return preds


def commit_epoch(run: Run, epoch: int, row: dict, preds: dict, log: pd.DataFrame) -> pd.DataFrame:
    """Rank 0: score and write the epoch's predictions, its checkpoint, then its
    ``log.csv`` row (marking the epoch complete), then prune older checkpoints;
    returns the log. Killed between any two steps, resume continues from the
    last epoch with both its log row and its checkpoint, which is never pruned."""
    cfg, rd = run.cfg, run.rd
    for name, p in preds.items():
        labels = run.eval_tables[name.removesuffix("_mc")][au_columns(run.aus)].to_numpy(np.int8)
        row.update(_split_metrics(name, labels, p, run.aus, per_au=name == "B"))
        write_npy(rd.preds(name, epoch), p.astype(np.float16))
    write_torch(rd.checkpoint(epoch), {
        "model": run.core.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "epoch": epoch,
        "rng": {"seed": cfg.seed, "epoch": epoch, "world_size": dist_utils.world_size(),
                "torch": torch.get_rng_state(), "augment": run.aug_gen.get_state(),
                "balance": run.bal_gen.get_state()},
        "config": cfg.to_dict()})
    log = pd.concat([log, pd.DataFrame([row])], ignore_index=True) if len(log) else pd.DataFrame([row])
    write_csv(rd.log, log)
    _prune_checkpoints(rd, cfg.keep_checkpoints)
    return log


def _write_indexes(run: Run) -> None:
    for s, t in run.eval_tables.items():
        for name in [s] + ([f"{s}_mc"] if run.cfg.multicrop else []):
            if not run.rd.index(name).exists():
                write_index(run.rd.index(name), t[["image", "variant"] + au_columns(run.aus)])


def _fit(run: Run, start: int, last: int, on_epoch_end) -> None:
    """Epochs ``start + 1 .. last``: train, evaluate, commit."""
    if dist_utils.is_main():
        _write_indexes(run)
    log = run.rd.read_log()
    log = log[log["epoch"] <= start] if len(log) else log
    clock = RunClock(last)
    for epoch in range(start + 1, last + 1):
        t0 = time.time()
        losses = train_one_epoch(run, epoch)
        t_train = time.time() - t0
        row = {"epoch": epoch, "lr": losses.pop("lr"), "time_s": 0.0, **losses}
        preds = evaluate(run)
        row["time_s"] = round(time.time() - t0, 3)
        clock.epoch_done(row["time_s"])
        if dist_utils.is_main():
            log = commit_epoch(run, epoch, row, preds, log)
            if run.board is not None:
                run.board.epoch({**row, "img_per_s": run.steps * _images_per_step(run) / max(t_train, 1e-9)})
            if run.cfg.progress:
                print(epoch_line(run.cfg.run_name, epoch, run.cfg.epochs, row, TERMS, clock.eta_s(epoch)), flush=True)
            if on_epoch_end is not None:
                on_epoch_end(log)
        dist_utils.barrier()


def _images_per_step(run: Run) -> int:
    """Images one optimisation step takes over all processes."""
    return run.cfg.batch_size * dist_utils.world_size()


def _take_lock(rd: RunDir) -> RunLock | None:
    """The run directory's lock for this process (None: lent by the launcher, ``AULIB_RUN_LOCK_TOKEN``)."""
    lock = RunLock(rd)
    return None if lock.lent_by_launcher() else lock.acquire()


def train(cfg: TrainConfig, resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          on_epoch_end=None, extend: bool = False) -> Path:
    """Train (or resume) the run of ``cfg``; returns its run directory.

    resume: continue from the last complete epoch (a run that has not started
    starts; a finished one returns at once). overwrite: delete an existing run
    directory first. Without either, an existing run directory is an error.
    extend: let ``resume`` give a run another number of ``epochs`` than its
    config.yaml (without it that is refused: a finished run is never extended
    by accident). stop_after: stop after this epoch (a later ``resume`` continues).
    on_epoch_end: called on rank 0 as ``on_epoch_end(log DataFrame)`` after every epoch.

    One process writes a run directory at a time (:class:`aulib.lock.RunLock`,
    rank 0 under torchrun); nothing in it is written before the run is built.
    """
    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    if cfg.workspace is not None and not isinstance(cfg.workspace, str):
        cfg.workspace = str(getattr(cfg.workspace, "root", cfg.workspace))
    cfg = cfg.resolved()
    device = dist_utils.resolve_device(cfg.device)
    initialised = dist_utils.setup(device, cfg.dist_timeout_min)
    deterministic = torch.are_deterministic_algorithms_enabled()
    locks, boards = [], contextlib.ExitStack()
    try:
        ws = workspace_of(cfg)
        _check_splits(ws, cfg.train_splits + cfg.eval_splits + ([cfg.heldout] if cfg.heldout else []))
        rd = ws.run_dir(cfg.run_name)

        def decide() -> RunPlan:
            locks.append(_take_lock(rd))
            return plan_run_dir(rd, cfg, resume, overwrite, extend)

        plan = dist_utils.on_main(decide)
        last = min(cfg.epochs, stop_after or cfg.epochs)
        if plan.start >= last:
            if dist_utils.is_main():
                _apply_plan(rd, plan, cfg.keep_checkpoints)
            return rd.path
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch.backends.cudnn.benchmark = True
        run = build(cfg, ws, rd, plan.start, device)
        if dist_utils.is_main():
            _apply_plan(rd, plan, cfg.keep_checkpoints)
            run.board = boards.enter_context(contextlib.closing(
                Board(rd, cfg.tensorboard, plan.start, run.steps, _images_per_step(run), cfg.log_every, device,
                      quiet=not cfg.progress)))
        dist_utils.barrier()
        _fit(run, plan.start, last, on_epoch_end)
        return rd.path
    finally:
        boards.close()
        for lock in locks:
            if lock is not None:
                lock.release()
        torch.use_deterministic_algorithms(deterministic)
        dist_utils.cleanup(initialised)


@record_child_errors
def main(args) -> None:
    """Train the run of parsed command-line ``args`` (:func:`aulib.train.cli.parse_args`;
    ``python -m aulib.train``); a torchrun child's exception goes to its error file."""
    cfg = config_of(args)
    run_dir = train(cfg, resume=args.resume, overwrite=args.overwrite, stop_after=args.stop_after,
                    extend=args.extend)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run directory: {run_dir}", file=sys.stderr)
