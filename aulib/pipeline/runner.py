"""Run the numbered notebooks headless, in order, from a profile.

``python -m aulib.pipeline --profile demo|ci|paper|PATH.yaml [--data-root DIR] [--force]``

The profile (format and resolution: :mod:`aulib.pipeline.profile`) lists the
steps: which notebook to run with which parameters. A notebook may appear
several times (``04_train`` once per training run), each step with a unique
``name``. Every step gets every parameter its notebook declares, resolved
(built-in defaults -> common -> defaults[<stem>] -> the step's own ->
``--data-root``), so a notebook resolves nothing more. ``seeds: [...]`` makes
every 04_train step one step per seed (:func:`aulib.pipeline.profile.seed_name`).
``tables`` (with the seeds' ``seed_replicas``) is written to
``<workspace>/table_spec.yaml`` for ``07_tables``. A profile with
``protocol: {kfold: K}`` (or ``{folds: bp4d_3fold}``, a published protocol)
runs the steps once per fold (workspaces ``<workspace>/fold<k>/``, 02_split
given ``kfold`` or ``folds``, and ``fold``) and writes
``<workspace>/results/tables/kfold_<group>.csv|md`` and the benchmark tables
(:mod:`aulib.pipeline.kfold`).

Executed copies go to ``runs/<profile>/notebooks/<step>.ipynb``. A step is up
to date, and skipped, when its stamp (``<step>.stamp.yaml``) holds the same
fingerprint (:mod:`aulib.pipeline.fingerprint`: notebook source, resolved
parameters, input files outside the workspace, the step before), so changing
a step or its data reruns it and every step after it. ``--force`` reruns
everything. The runner stops at the first failing notebook and prints the
failing cell, the exception (a torchrun child's own, with its rank) and the
executed notebook's path.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from ..environment import write_environment
from ..io import read_yaml, write_yaml
from ..progress import HEADLESS_ENV
from ..workspace import Workspace, repo_root
from .fingerprint import fingerprint, identity, input_files
from . import kfold
from .profile import Profile, Step, declared_parameters, load_profile, resolve


def plan(profile: Profile, ws: Workspace, extra: dict) -> list[tuple[Step, Path, dict]]:
    """Every step's notebook path and fully resolved parameters (``extra``:
    values given on the command line, which win)."""
    out = []
    for step in profile.steps:
        nb_path = repo_root() / "notebooks" / step.notebook
        values = resolve(profile, step.stem, step.parameters, extra)
        if "workspace" in declared_parameters(step.stem):
            values["workspace"] = str(ws.root)
        out.append((step, nb_path, values))
    return out


def _shown(profile: Profile, step: Step, values: dict) -> dict:
    """The values of a step that differ from the built-in defaults (for the log line)."""
    base = profile.base.get(step.stem, {})
    return {k: v for k, v in values.items() if k not in ("workspace", "profile") and base.get(k) != v}


def failure_message(step_name: str, error: BaseException, out_nb: Path) -> str:
    """What the runner prints when a step fails: the failing cell's source (a
    notebook error), then the exception (type and message; a torchrun
    child's own, with its rank, see :mod:`aulib.train.errors`), last the
    executed notebook's path."""
    ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
    lines = [f"\n[fail] {step_name}"]
    if ename is not None and getattr(error, "source", None) is not None:
        lines[0] += f": cell {getattr(error, 'exec_count', '?')} raised"
        lines += ["       cell source:"] + ["         " + ln for ln in str(error.source).splitlines()]
    else:
        ename, evalue = type(error).__name__, str(error)
        lines[0] += ": the notebook did not finish"
    lines += [f"       {ename}: " + "\n       ".join(str(evalue).splitlines() or [""]),
              f"       executed notebook (full traceback): {out_nb}"]
    return "\n".join(lines)


def run(profile_name: str, data_root: str | None = None, force: bool = False,
        only: list[str] | None = None, workspace: str | None = None, results: str | None = None) -> Workspace:
    """Execute a profile's notebooks in order; returns the workspace. With
    ``protocol: {kfold: K}`` once per fold in ``<workspace>/fold<k>/``, then
    the k-fold summary tables (:mod:`aulib.pipeline.kfold`)."""
    profile = load_profile(profile_name)
    ws = Workspace.for_profile(profile.name, root=workspace, results=results)
    extra = {"data_root": data_root} if data_root else {}
    t_all = time.time()
    if profile.kfold:

        for k in range(1, profile.kfold + 1):
            print(f"=== fold {k} of {profile.kfold}", flush=True)
            if k > 1:
                kfold.share_data(kfold.fold_workspace(ws, 1), kfold.fold_workspace(ws, k))
            _run_steps(profile, kfold.fold_workspace(ws, k), {**extra, **profile.fold_parameters(k)}, force, only)
        if only is None:
            for group, (csv, _) in kfold.write_kfold_summaries(ws, profile.kfold).items():
                print(f"k-fold summary ({group}): {csv}")
    else:
        _run_steps(profile, ws, extra, force, only)
    print(f"\nPipeline '{profile.name}' finished in {(time.time() - t_all) / 60:.1f} min.")
    print(f"  figures:  {ws.figures}")
    print(f"  tables:   {ws.tables}")
    print(f"  notebooks (executed): {ws.notebooks}")
    return ws


@contextlib.contextmanager
def _headless_kernels():
    """Kernels started inside get ``AULIB_HEADLESS=1`` (text progress bars, see
    :mod:`aulib.progress`); this process's environment is restored after."""
    old = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = old


def _run_steps(profile: Profile, ws: Workspace, extra: dict, force: bool, only: list[str] | None) -> None:
    """Execute the steps of ``profile`` in workspace ``ws`` (``extra``: given values)."""
    import papermill  # heavy optional (notebooks extra): only when notebooks run

    steps = plan(profile, ws, extra)
    ws.notebooks.mkdir(parents=True, exist_ok=True)
    if profile.tables:
        write_yaml(ws.root / "table_spec.yaml", profile.table_spec())
    write_environment(ws.root / "environment.txt")
    previous = ""
    for step, nb_path, params in steps:
        inputs = identity(input_files(params))
        fp = fingerprint(nb_path, params, inputs, previous)
        previous_fp, previous = previous, fp
        out_nb = ws.notebooks / f"{step.name}.ipynb"
        stamp = ws.notebooks / f"{step.name}.stamp.yaml"
        selected = only is None or any(o in step.name for o in only)
        if not selected:
            continue
        if not force and stamp.exists() and out_nb.exists() and (read_yaml(stamp) or {}).get("fingerprint") == fp:
            print(f"[skip] {step.name}: up to date", flush=True)
            continue
        print(f"[run ] {step.name}  {json.dumps(_shown(profile, step, params), default=str)}", flush=True)
        t0 = time.time()
        try:
            with _headless_kernels():
                papermill.execute_notebook(str(nb_path), str(out_nb), parameters=params, kernel_name="python3",
                                           cwd=str(nb_path.parent), progress_bar=False, log_output=False)
        except Exception as e:  # any failure: say what was raised and where the executed copy is
            if stamp.exists():
                stamp.unlink()
            print(failure_message(step.name, e, out_nb), file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        write_yaml(stamp, {"fingerprint": fp, "seconds": round(time.time() - t0, 1), "parameters": params,
                          "inputs": inputs, "previous": previous_fp})
        print(f"[done] {step.name} in {time.time() - t0:.0f} s", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aulib.pipeline", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo", help="demo | ci | paper | path to a profile YAML")
    ap.add_argument("--data-root", default=None, help="data root given to every notebook that takes data_root")
    ap.add_argument("--force", action="store_true", help="rerun steps that are up to date")
    ap.add_argument("--only", default=None, help="comma-separated substrings of step names to run")
    ap.add_argument("--workspace", default=None, help="workspace folder (default runs/<profile>)")
    ap.add_argument("--results", default=None, help="results folder (default: results/ for demo)")
    a = ap.parse_args(argv)
    run(a.profile, data_root=a.data_root, force=a.force, only=a.only.split(",") if a.only else None,
        workspace=a.workspace, results=a.results)
