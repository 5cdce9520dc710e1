"""Run the numbered notebooks headless, in order, from a profile.

``python -m aulib.pipeline --profile demo|ci|paper|PATH.yaml [--data-root DIR] [--force] [--list | --dry-run]``
(arguments, ``--list`` and ``--dry-run``: :mod:`aulib.pipeline.cli`).

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
given ``kfold`` or ``folds``, and ``fold``), then one step more in
``<workspace>``: notebook ``09_kfold_summary``
(:func:`aulib.pipeline.kfold.summary_step`), which writes
``<workspace>/results/tables/kfold_<group>.csv|md`` and the benchmark tables.
It is a step like the others (stamp, skipped when up to date: its
fingerprint chains on from every fold's last step); ``--only`` selects it
also through a step it is made from (06_choose, 07_tables: the last step).
The runner runs notebooks and nothing else: it imports no stage that makes
a result.

Before any step, a profile that does not parse or is refused, and a data
root that does not hold the data set (:func:`aulib.pipeline.fingerprint.check_data_root`),
are answered in one line (exit 1), never a traceback.

Executed copies go to ``runs/<profile>/notebooks/<step>.ipynb``. A step is up
to date, and skipped, when its stamp (``<step>.stamp.yaml``) holds the same
fingerprint (:mod:`aulib.pipeline.fingerprint`: notebook source, resolved
parameters, input files outside the workspace, the step before), so changing
a step or its data reruns it and every step after it. ``--force`` reruns
everything. The runner stops at the first failing notebook and prints the
failing cell, the exception (a torchrun child's own, with its rank) and the
executed notebook's path.

Stopped by SIGTERM or Ctrl-C (SIGINT), the runner prints one line naming the
step it was in and the workspace (the steps finished are kept), then ends
with the signal's usual status (:func:`_stop_line`).

One runner per workspace: the runner holds :class:`aulib.lock.WorkspaceLock`
(``<workspace>/.pipeline.lock``) for the whole run, so a second runner on the
same workspace is refused at once, naming the holder (pid, host, start time);
a lock left by a dead runner is taken over.

While it runs it prints ``step k/N`` before each step with the ETA of the
steps left (from the durations their stamps recorded), and echoes what the
notebook prints (its epoch lines, as they happen; ``quiet=True`` /
``--quiet`` turns that off). Kernels are started with CurveZMQ transport
encryption when the kernel supports it (ipykernel's "running over TCP
without encryption" warning is then not printed), and with
``AULIB_HEADLESS=1`` (text progress lines, :mod:`aulib.progress`).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from ..environment import write_environment
from ..io import write_yaml
from ..lock import WorkspaceLock
from ..progress import HEADLESS_ENV, format_duration
from ..signals import sigterm_as_exit
from ..workspace import Workspace
from . import cli, kfold
from .publish import publish as publish_results
from .fingerprint import StepState, step_states
from .profile import Profile, load_profile, plan, shown_parameters


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
        only: list[str] | None = None, workspace: str | None = None, results: str | None = None,
        quiet: bool = False, publish: bool = False) -> Workspace:
    """Execute a profile's notebooks in order; returns the workspace. With
    ``protocol: {kfold: K}`` once per fold in ``<workspace>/fold<k>/``, then
    the k-fold summary's step in ``<workspace>``. ``quiet``: do
    not echo what the notebooks print. ``publish``: then copy the
    workspace's results over the project's ``results/``
    (:mod:`aulib.pipeline.publish`), refused while a step is out of date."""
    profile = load_profile(profile_name)
    ws = Workspace.for_profile(profile.name, root=workspace, results=results)
    extra = {"data_root": data_root} if data_root else {}
    plan(profile, ws, extra)          # every step's values checked before anything is written
    cli.check_data_roots(profile, ws, extra)      # a wrong data root: refused before anything runs
    with _stop_line(ws), WorkspaceLock(ws):     # one runner per workspace, for every step and fold
        _run_profile(profile, ws, extra, force, only, quiet)
        if publish:
            stale = cli.stale_steps(profile, ws, extra)
            if stale:
                raise PublishRefused(f"not published: step(s) {', '.join(stale)} of {ws.root} are not up to date; "
                                     f"run python -m aulib.pipeline --profile {profile.name} --publish without --only")
            try:
                print(publish_results(ws.results).summary(), flush=True)
            except (FileNotFoundError, ValueError) as e:
                raise PublishRefused(str(e)) from None
    return ws


class PublishRefused(RuntimeError):
    """``--publish`` while the workspace is not up to date (nothing was copied)."""


#: Where the runner is: the step running (None between steps) and its workspace.
_AT: dict = {"step": None, "workspace": None}


@contextlib.contextmanager
def _stop_line(ws: Workspace):
    """SIGTERM or Ctrl-C: one line on stderr naming the step (``_AT``) and the
    workspace, then the process ends as that signal ends it (SIGTERM: killed by
    it, as without this; Ctrl-C: KeyboardInterrupt goes on)."""
    _AT.update(step=None, workspace=ws.root)
    try:
        with sigterm_as_exit():
            yield
    except (KeyboardInterrupt, SystemExit) as e:
        sig = signal.SIGINT if isinstance(e, KeyboardInterrupt) else signal.SIGTERM
        if isinstance(e, SystemExit) and e.code != 128 + signal.SIGTERM:
            raise
        where = f"during step {_AT['step']}" if _AT["step"] else "between steps"
        print(f"\npython -m aulib.pipeline: stopped by {sig.name} {where} (workspace {_AT['workspace']}); "
              "the steps finished are kept: rerun the same command to continue", file=sys.stderr, flush=True)
        if sig == signal.SIGINT:
            raise
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise


def _run_profile(profile: Profile, ws: Workspace, extra: dict, force: bool, only: list[str] | None,
                 quiet: bool) -> None:
    t_all = time.time()
    running = [s for *_, states in cli.passes(profile, ws, extra) for s in cli.to_run(states, force, only)]
    progress = _Progress(len(running), running)
    folds = cli.workspaces(profile, ws, extra)
    done = []
    for k, (heading, fws, given) in enumerate(folds, 1):
        if heading:
            print(f"=== {heading}", flush=True)
        if k > 1:
            kfold.share_data(folds[0][1], fws)
        if profile.tables:
            write_yaml(fws.root / "table_spec.yaml", profile.table_spec())
        write_environment(fws.root / "environment.txt")
        done.append(_run_steps(profile, fws, step_states(plan(profile, fws, given), fws), force, only, progress, quiet))
    if profile.kfold:
        summary = cli.summary_states(profile, ws, extra, done)
        if any(cli.selected(s, only) for s in summary):
            print(f"=== {cli.SUMMARY_HEADING}", flush=True)
            _run_steps(profile, ws, summary, force, only, progress, quiet)
        else:
            print(f"k-fold summaries not rewritten: --only selected no step they are made from "
                  f"({', '.join(kfold.SUMMARY_STEMS)})", flush=True)
    print(f"\nPipeline '{profile.name}' finished in {(time.time() - t_all) / 60:.1f} min.")
    print(f"  figures:  {ws.figures}")
    print(f"  tables:   {ws.tables}")
    print(f"  notebooks (executed): {ws.notebooks}")


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


class _Progress:
    """Step counter and ETA of one pipeline run: ``total`` steps expected to
    run, their states (for the durations their stamps recorded), each known
    by its name and workspace (the folds run the same steps; a pass's states
    are planned again when it starts)."""

    def __init__(self, total: int, states: list[StepState]):
        self.total, self.k = total, 0
        self.left = {self.key(s): s.last_seconds for s in states}
        self.taken: list[float] = []

    @staticmethod
    def key(state: StepState) -> tuple:
        return state.step.name, str(state.parameters.get("workspace"))

    def start(self, state: StepState) -> str:
        self.k += 1
        self.left.pop(self.key(state), None)
        return f"step {self.k}/{max(self.total, self.k)}"

    def eta(self, state: StepState) -> str:
        """ETA of the steps from ``state`` on: recorded durations; a step that
        never ran here counts as the mean of those finished in this run."""
        mine = [state.last_seconds] + [v for k, v in self.left.items() if k != self.key(state)]
        mean = sum(self.taken) / len(self.taken) if self.taken else None
        if all(v is None for v in mine) and mean is None:
            return ""
        est = sum(v if v is not None else (mean or 0.0) for v in mine)
        return f"  (pipeline ETA {format_duration(est)})"


class _Echo:
    """A file-like object that writes a step's printed output to ``stream``,
    each line indented (papermill's stdout_file / stderr_file)."""

    def __init__(self, stream, prefix: str = "      | "):
        self.stream, self.prefix, self.at_start = stream, prefix, True

    def write(self, text: str) -> int:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.strip():        # blank progress refreshes: nothing to show
            return len(text)
        out = []
        for line in text.splitlines(keepends=True):
            if self.at_start:
                out.append(self.prefix)
            out.append(line)
            self.at_start = line.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _kernel_config():
    """Kernel-manager settings: CurveZMQ keys when the kernel declares support
    (``transport_encryption: auto``), so ipykernel does not warn of plain TCP."""
    from traitlets.config import Config  # comes with papermill (notebooks extra)

    return Config({"KernelManager": {"transport_encryption": "auto"}})


def _run_steps(profile: Profile, ws: Workspace, states: list[StepState], force: bool, only: list[str] | None,
               progress: _Progress | None = None, quiet: bool = False) -> list[StepState]:
    """Execute the steps of ``states`` (planned in workspace ``ws``) that
    ``force`` and ``only`` select and that are out of date; returns ``states``."""
    import papermill  # heavy optional (notebooks extra): only when notebooks run

    if progress is None:
        progress = _Progress(len(cli.to_run(states, force, only)), cli.to_run(states, force, only))
    ws.notebooks.mkdir(parents=True, exist_ok=True)
    echo = {} if quiet else {"stdout_file": _Echo(sys.stdout), "stderr_file": _Echo(sys.stderr)}
    for state in states:
        step, nb_path, params = state.step, state.notebook, state.parameters
        out_nb, stamp = ws.executed(step.name), ws.stamp(step.name)
        if not cli.selected(state, only):
            continue
        if not force and state.up_to_date:
            print(f"[skip] {step.name}: up to date", flush=True)
            continue
        eta = progress.eta(state)
        print(f"[run ] {progress.start(state)} {step.name}  "
              f"{json.dumps(shown_parameters(profile, step, params), default=str)}{eta}", flush=True)
        t0 = time.time()
        _AT.update(step=step.name, workspace=ws.root)
        try:
            with _headless_kernels():
                papermill.execute_notebook(str(nb_path), str(out_nb), parameters=params, kernel_name="python3",
                                           cwd=str(nb_path.parent), progress_bar=False, log_output=False,
                                           config=_kernel_config(), **echo)
        except Exception as e:  # any failure: say what was raised and where the executed copy is
            if stamp.exists():
                stamp.unlink()
            print(failure_message(step.name, e, out_nb), file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        _AT["step"] = None
        seconds = time.time() - t0
        progress.taken.append(seconds)
        write_yaml(stamp, {"fingerprint": state.fingerprint, "seconds": round(seconds, 1), "parameters": params,
                          "inputs": state.inputs, "previous": state.previous})
        print(f"[done] {step.name} in {format_duration(seconds)}", flush=True)
    return states


def run_args(args) -> None:
    """Run from parsed :func:`aulib.pipeline.cli.build_parser` arguments."""
    try:
        run(args.profile, data_root=args.data_root, force=args.force, only=cli.only_list(args),
            workspace=args.workspace, results=args.results, quiet=args.quiet, publish=args.publish)
    except cli.USER_ERRORS + (PublishRefused,) as e:   # a refused profile, data root or publish, another
        cli.refuse(e)                                  # runner on this workspace: one line, no traceback


def main(argv=None) -> None:
    """``python -m aulib.pipeline``: ``--list`` / ``--dry-run`` print (:func:`aulib.pipeline.cli.describe`), else run."""
    args = cli.build_parser().parse_args(argv)
    if not cli.answer(args):
        run_args(args)
